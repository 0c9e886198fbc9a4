"""How well a ranking finds known (planted) label errors. numpy only.

Scores follow the library's convention: lower = more likely wrong, so an
image is "predicted bad" when its score is low.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np
import numpy.typing as npt


def _bad_first(scores: npt.ArrayLike) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    return np.where(np.isnan(s), np.inf, s)  # unscored images rank last


def auroc(scores: npt.ArrayLike, is_bad: npt.ArrayLike) -> float:
    """Probability that a random bad image scores lower than a random good
    one (ties count half): the Mann-Whitney statistic. NaN when either group
    is empty."""
    s = -_bad_first(scores)  # higher = more suspicious
    y = np.asarray(is_bad, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # average ranks over ties
    start = 0
    for end in range(1, len(s) + 1):
        if end == len(s) or sorted_s[end] != sorted_s[start]:
            ranks[order[start:end]] = (start + end + 1) / 2.0
            start = end
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def precision_at_k(scores: npt.ArrayLike, is_bad: npt.ArrayLike, k: Optional[int] = None) -> float:
    """Fraction of bad images among the k lowest-scored (k defaults to the
    number of bad images, i.e. R-precision)."""
    y = np.asarray(is_bad, dtype=bool)
    k = int(y.sum()) if k is None else int(k)
    if k <= 0:
        return float("nan")
    order = np.argsort(_bad_first(scores), kind="stable")
    return float(y[order[:k]].mean())


def average_precision(scores: npt.ArrayLike, is_bad: npt.ArrayLike) -> float:
    """Average precision of ranking bad images first (area under the
    precision-recall curve, step-wise)."""
    y = np.asarray(is_bad, dtype=bool)
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(_bad_first(scores), kind="stable")
    hits = y[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].sum() / n_pos)


def ranking_report(scores: npt.ArrayLike, is_bad: npt.ArrayLike, ks: Sequence[int] = ()) -> Dict[str, float]:
    """AUROC, AP, R-precision and precision at each k in ``ks``."""
    out = {
        "auroc": auroc(scores, is_bad),
        "average_precision": average_precision(scores, is_bad),
        "r_precision": precision_at_k(scores, is_bad),
    }
    for k in ks:
        out[f"precision@{k}"] = precision_at_k(scores, is_bad, k)
    return out
