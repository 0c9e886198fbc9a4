"""Summaries of pixel label issues: which classes get confused, per class
(drop-in for cleanlab's ``segmentation.summary``; :func:`display_issues`
lives in :mod:`segqual_fo.core.display`).

Legend: N images, K classes, H x W pixels. Vectorised per image (one
bincount per image, no per-pixel Python loop).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import numpy.typing as npt

from segqual_fo.core._inputs import ImageSource, PerImageOutput, normalize_ignore_index
from segqual_fo.core.resample import LowResProbs
from segqual_fo.errors import InvalidInputError, InvalidLabelsError, ShapeMismatchError

#: Columns of :func:`common_label_issues`' table, in cleanlab's order.
COMMON_ISSUE_COLUMNS = ("given_label", "predicted_label", "num_pixel_issues")

#: cleanlab's default number of rows of :func:`common_label_issues` (and of
#: images shown by ``display_issues``) when ``top`` is None.
DEFAULT_TOP = 20


def _issue_pixels(issues_i, labels_i, probs_i, index: int, ignore=()):
    """(mask, given class, argmax class) of the issue pixels of one image,
    leaving out pixels whose label is an ignored value."""
    m = np.asarray(issues_i, dtype=bool)
    lab = np.asarray(labels_i)
    # a LowResProbs is read at the issue pixels only (same values as dense)
    p = probs_i if isinstance(probs_i, LowResProbs) else np.asarray(probs_i)
    if m.shape != lab.shape or p.shape[1:] != lab.shape:
        raise ShapeMismatchError(
            f"image {index}: issues {m.shape}, labels {lab.shape} and pred_probs "
            f"{p.shape} do not describe the same (H, W).",
            index=index,
        )
    if ignore:
        m = m & ~np.isin(lab, ignore)
    given = lab[m].astype(np.intp)
    if not given.size:
        pred = np.empty(0, dtype=np.intp)
    elif isinstance(p, LowResProbs):
        pred = p.at(np.flatnonzero(m.reshape(-1))).argmax(axis=0)
    else:
        pred = p[:, m].argmax(axis=0)
    return m, given, pred


def issue_confusion_matrix(
    issues: Any,
    labels: Any,
    pred_probs: Any,
    *,
    num_classes: Optional[int] = None,
    ignore_index: Any = None,
) -> npt.NDArray[np.int64]:
    """Counts issue pixels by (given class, predicted class).

    Args:
        issues: bool masks ((N,H,W) or sequence of (H,W)), e.g. from
            :func:`~segqual_fo.core.filter.find_label_issues`
        labels: the labels the masks were computed from
        pred_probs: the probabilities ((N,K,H,W) or sequence of (K,H,W))
        num_classes (None): K, read from ``pred_probs`` by default
        ignore_index (None): label value(s) whose pixels are never counted

    Returns:
        (K,K) int64 matrix ``M[given, predicted]``

    Raises:
        InvalidLabelsError: for an issue pixel whose label is neither a class
            nor ignored
    """
    source = ImageSource(labels, pred_probs)
    k = num_classes or source.num_classes
    ignore = normalize_ignore_index(ignore_index)
    if len(issues) != source.n:
        raise ShapeMismatchError(f"issues holds {len(issues)} images, labels {source.n}.")
    counts = np.zeros(k * k, dtype=np.int64)
    for i in range(source.n):
        _, given, pred = _issue_pixels(issues[i], source.labels(i), source.probs(i), i, ignore)
        if given.size:
            if given.max() >= k or given.min() < 0:
                bad = np.unique(given[(given < 0) | (given >= k)])[:10]
                raise InvalidLabelsError(
                    f"labels[{i}] has issue pixels labelled {', '.join(map(str, bad))}, outside "
                    f"the classes 0..{k - 1}. Pass ignore_index=[...] if these mark "
                    "unlabelled/void pixels.",
                    index=i,
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
    class), skipping zero counts and excluded predicted classes; ``top=None``
    keeps every row. The plain-data form of :func:`common_label_issues` (the
    FiftyOne layer stores and shows it)."""
    m = np.asarray(matrix, dtype=np.int64).copy()
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise InvalidInputError(
            f"matrix has shape {m.shape}; expected a square (K, K) confusion matrix "
            "M[given, predicted], as issue_confusion_matrix returns."
        )
    k = m.shape[0]
    names = [str(i) for i in range(k)] if class_names is None else list(class_names)
    if len(names) != k:
        raise InvalidInputError(f"class_names has {len(names)} names for {k} classes.")
    if exclude is not None and len(exclude):
        # values that are no class exclude nothing (as in cleanlab)
        ex = [int(e) for e in np.ravel(exclude) if 0 <= int(e) < k]
        m[:, ex] = 0
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
    top: Optional[int] = None,
    verbose: bool = True,
    ignore_index: Any = None,
):
    """The most common (given class, predicted class) swaps among issues.

    Drop-in for ``cleanlab.segmentation.summary.common_label_issues``: the
    same table (a pandas DataFrame, equal to cleanlab's) and the same
    printing; it also takes images of different sizes and ignored values.
    Counting is vectorised (one bincount per image).

    Args:
        issues: bool issue masks, (N,H,W) or a sequence of (H,W)
        labels: the labels, (N,H,W) or a sequence of (H,W)
        pred_probs: the probabilities, (N,K,H,W) or a sequence of (K,H,W);
            a pixel's predicted class is their argmax
        class_names (None): names of the K classes, shown instead of the
            class indices ("0".."K-1")
        exclude (None): predicted classes not to count
        top (None): number of rows to keep; None keeps 20, as in cleanlab
        verbose (True): print one line per row (nothing when False)
        ignore_index (None): label value(s) whose pixels are never counted
            (beyond cleanlab)

    Returns:
        ``pandas.DataFrame`` with columns ``given_label``,
        ``predicted_label``, ``num_pixel_issues`` (int), one row per swap
        with at least one issue pixel, most frequent first (ties by given,
        then predicted class)

    Raises:
        ShapeMismatchError, InvalidLabelsError, InvalidInputError: for
            masks, labels and probabilities that do not fit, issue pixels
            labelled outside 0..K-1 (and not ignored), or ``class_names``
            of another length than K

    Example::

        >>> import numpy as np
        >>> labels = np.array([[[0, 1], [1, 1]]])
        >>> probs = np.array([[[[0.9, 0.9], [0.2, 0.8]], [[0.1, 0.1], [0.8, 0.2]]]])
        >>> issues = np.array([[[False, True], [False, False]]])
        >>> common_label_issues(issues, labels, probs, class_names=["sky", "road"], verbose=False)
          given_label predicted_label  num_pixel_issues
        0        road             sky                 1
    """
    import pandas as pd  # lazily: the core needs only numpy

    rows = confusion_rows(
        issue_confusion_matrix(issues, labels, pred_probs, ignore_index=ignore_index),
        class_names=class_names,
        exclude=exclude,
        top=DEFAULT_TOP if top is None else top,
    )
    frame = pd.DataFrame([[r[c] for c in COMMON_ISSUE_COLUMNS] for r in rows], columns=list(COMMON_ISSUE_COLUMNS))
    if verbose:
        for r in rows:
            print(
                f"Class '{r['given_label']}' is potentially mislabeled as class "
                f"'{r['predicted_label']}' for {r['num_pixel_issues']} pixels in the dataset"
            )
    return frame


def filter_by_class(
    class_index: Any, issues: Any, labels: Any, pred_probs: Any, *, ignore_index: Any = None
) -> Any:
    """Keeps the issues whose given or predicted class is ``class_index``.

    Drop-in for ``cleanlab.segmentation.summary.filter_by_class``; also takes
    images of different sizes.

    Args:
        class_index: a class index (or a list of them); values that are no
            class keep nothing
        issues: bool issue masks, (N,H,W) or a sequence of (H,W)
        labels: the labels, (N,H,W) or a sequence of (H,W)
        pred_probs: the probabilities, (N,K,H,W) or a sequence of (K,H,W)
        ignore_index (None): label value(s) whose pixels are never kept
            (beyond cleanlab)

    Returns:
        bool masks shaped like ``issues``: (N,H,W) when all images share a
        size, else a list of (H,W) arrays
    """
    ignore = normalize_ignore_index(ignore_index)
    source = ImageSource(labels, pred_probs)
    if len(issues) != source.n:
        raise ShapeMismatchError(f"issues holds {len(issues)} images, labels {source.n}.")
    out = PerImageOutput(source, dtype=bool)
    for i in range(source.n):
        m, given, pred = _issue_pixels(issues[i], source.labels(i), source.probs(i), i, ignore)
        keep = np.zeros(m.shape, dtype=bool)
        keep[m] = np.isin(given, class_index) | np.isin(pred, class_index)
        out[i] = keep
    return out.result()
