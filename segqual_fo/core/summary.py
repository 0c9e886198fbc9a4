"""Summaries of pixel label issues: which classes get confused, per class.

Legend: N images, K classes, H x W pixels. Vectorised per image (one
bincount per image, no per-pixel Python loop).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import numpy.typing as npt

from segqual_fo.core._inputs import ImageSource, PerImageOutput
from segqual_fo.errors import InvalidInputError, ShapeMismatchError


def _issue_pixels(issues_i, labels_i, probs_i, index: int):
    m = np.asarray(issues_i, dtype=bool)
    lab = np.asarray(labels_i)
    p = np.asarray(probs_i)
    if m.shape != lab.shape or p.shape[1:] != lab.shape:
        raise ShapeMismatchError(
            f"image {index}: issues {m.shape}, labels {lab.shape} and pred_probs "
            f"{p.shape} do not describe the same (H, W).",
            index=index,
        )
    given = lab[m].astype(np.intp)
    pred = p[:, m].argmax(axis=0) if given.size else np.empty(0, dtype=np.intp)
    return m, given, pred


def issue_confusion_matrix(
    issues: Any, labels: Any, pred_probs: Any, *, num_classes: Optional[int] = None
) -> npt.NDArray[np.int64]:
    """Counts issue pixels by (given class, predicted class).

    Args:
        issues: bool masks ((N,H,W) or sequence of (H,W)), e.g. from
            :func:`~segqual_fo.core.filter.find_label_issues`
        labels: the labels the masks were computed from
        pred_probs: the probabilities ((N,K,H,W) or sequence of (K,H,W))
        num_classes (None): K, read from ``pred_probs`` by default

    Returns:
        (K,K) int64 matrix ``M[given, predicted]``
    """
    source = ImageSource(labels, pred_probs)
    k = num_classes or source.num_classes
    if len(issues) != source.n:
        raise ShapeMismatchError(f"issues holds {len(issues)} images, labels {source.n}.")
    counts = np.zeros(k * k, dtype=np.int64)
    for i in range(source.n):
        _, given, pred = _issue_pixels(issues[i], source.labels(i), source.probs(i), i)
        if given.size:
            if given.max() >= k or given.min() < 0:
                raise InvalidInputError(
                    f"labels[{i}] has issue pixels labelled outside 0..{k - 1}.", index=i
                )
            counts += np.bincount(given * k + pred, minlength=k * k)
    return counts.reshape(k, k)


def confusion_rows(
    matrix: npt.ArrayLike,
    *,
    class_names: Optional[Sequence[str]] = None,
    exclude: Optional[Sequence[int]] = None,
    top: Optional[int] = None,
) -> List[Dict[str, Any]]:
    """Rows ``{given_label, predicted_label, num_pixel_issues}`` of a
    confusion matrix, most frequent first (ties by given, then predicted
    class), skipping zero counts and excluded predicted classes."""
    m = np.asarray(matrix, dtype=np.int64).copy()
    k = m.shape[0]
    names = [str(i) for i in range(k)] if class_names is None else list(class_names)
    if len(names) != k:
        raise InvalidInputError(f"class_names has {len(names)} names for {k} classes.")
    if exclude:
        m[:, list(exclude)] = 0
    given, pred = np.nonzero(m)
    counts = m[given, pred]
    order = np.argsort(-counts, kind="stable")
    if top is not None:
        order = order[:top]
    return [
        {"given_label": names[given[j]], "predicted_label": names[pred[j]], "num_pixel_issues": int(counts[j])}
        for j in order
    ]


def common_label_issues(
    issues: Any,
    labels: Any,
    pred_probs: Any,
    *,
    class_names: Optional[Sequence[str]] = None,
    exclude: Optional[Sequence[int]] = None,
    top: Optional[int] = 20,
    verbose: bool = False,
) -> List[Dict[str, Any]]:
    """The most common (given class, predicted class) swaps among issues.

    Same counts as ``cleanlab.segmentation.summary.common_label_issues``,
    returned as a list of dicts (``pandas.DataFrame(rows)`` gives cleanlab's
    table) so the core needs no pandas.

    Args:
        issues: bool issue masks
        labels: the labels
        pred_probs: the probabilities
        class_names (None): names of the K classes (default "0".."K-1")
        exclude (None): predicted classes not to count
        top (20): number of rows to return (None for all)
        verbose (False): print one line per row

    Returns:
        list of ``{"given_label", "predicted_label", "num_pixel_issues"}``
    """
    rows = confusion_rows(
        issue_confusion_matrix(issues, labels, pred_probs),
        class_names=class_names,
        exclude=exclude,
        top=top,
    )
    if verbose:
        for r in rows:
            print(
                f"Class {r['given_label']!r} is potentially mislabeled as class "
                f"{r['predicted_label']!r} for {r['num_pixel_issues']} pixels in the dataset"
            )
    return rows


def filter_by_class(class_index: int, issues: Any, labels: Any, pred_probs: Any) -> Any:
    """Keeps the issues whose given or predicted class is ``class_index``.

    Returns:
        bool masks shaped like ``issues``
    """
    source = ImageSource(labels, pred_probs)
    if len(issues) != source.n:
        raise ShapeMismatchError(f"issues holds {len(issues)} images, labels {source.n}.")
    out = PerImageOutput(source, dtype=bool)
    for i in range(source.n):
        m, given, pred = _issue_pixels(issues[i], source.labels(i), source.probs(i), i)
        keep = np.zeros(m.shape, dtype=bool)
        keep[m] = (given == class_index) | (pred == class_index)
        out[i] = keep
    return out.result()
