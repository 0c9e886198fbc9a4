"""Pictures of pixel label issues (drop-in for cleanlab's
``segmentation.summary.display_issues``), with matplotlib.

Legend: N images, K classes, H x W pixels. matplotlib is imported inside
:func:`display_issues` only, so the core stays importable without it.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from segqual_fo.core._inputs import normalize_ignore_index
from segqual_fo.core.pixel import prepare_labels
from segqual_fo.core.summary import DEFAULT_TOP
from segqual_fo.errors import InvalidInputError, ShapeMismatchError

#: Titles of the panels, as cleanlab names them (code that looks for a
#: panel by title keeps working).
GIVEN_TITLE = "Given Labels"
PREDICTED_TITLE = "Argmaxed Prediction Probabilities"
ISSUES_TITLE = "Image {index}: Suggested Errors (in Red)"

#: Colour of ignored pixels in the label panel (light grey, opaque).
IGNORED_COLOR = (0.85, 0.85, 0.85, 1.0)


def class_colors(num_classes: int) -> np.ndarray:
    """(K, 4) RGBA colours, distinct per class.

    Matplotlib's qualitative palettes for up to 20 classes (tab10, tab20);
    beyond that, hues spread by the golden ratio (neighbouring classes get
    far-apart hues) with three alternating lightness levels.
    """
    from matplotlib import colormaps
    from matplotlib.colors import hsv_to_rgb

    k = max(int(num_classes), 0)
    if k <= 10:
        rgb = np.asarray(colormaps["tab10"].colors[:k], dtype=np.float64).reshape(k, 3)
    elif k <= 20:
        rgb = np.asarray(colormaps["tab20"].colors[:k], dtype=np.float64)
    else:
        i = np.arange(k)
        hsv = np.stack([(i * 0.6180339887498949) % 1.0, np.full(k, 0.75), 0.55 + 0.2 * (i % 3)], axis=1)
        rgb = hsv_to_rgb(hsv)
    return np.concatenate([rgb, np.ones((k, 1))], axis=1)


def _num_classes_from_labels(labels: Any, ignore: Sequence[int]) -> int:
    """K when only labels are given: the largest label that is not ignored, + 1."""
    top = -1
    for i in range(len(labels)):
        lab = np.asarray(labels[i])
        if ignore:
            lab = lab[~np.isin(lab, ignore)]
        if lab.size:
            top = max(top, int(np.max(lab)))
    return top + 1


def display_issues(
    issues: Any,
    *,
    labels: Any = None,
    pred_probs: Any = None,
    class_names: Optional[Sequence[Any]] = None,
    exclude: Optional[Sequence[int]] = None,
    top: Optional[int] = None,
    ignore_index: Any = None,
    **kwargs: Any,
) -> None:
    """Shows the images with the most issue pixels, one figure per image.

    Drop-in for ``cleanlab.segmentation.summary.display_issues``: the same
    panels in the same order and with the same titles, for the ``top``
    images ranked by their number of issue pixels. Each figure has one row:
    the given labels (with ``labels``), the model's argmax (with
    ``pred_probs``), and the issue pixels in red. With ``class_names`` and
    a label or prediction panel, a legend figure comes first. Beyond
    cleanlab: images of different sizes (sequences of arrays), and ignored
    label values, drawn light grey and never shown as issues.

    Args:
        issues: bool issue masks, (N,H,W) or a sequence of (H,W), e.g. from
            :func:`~segqual_fo.core.find_label_issues`
        labels (None): the labels, (N,H,W) or a sequence of (H,W)
        pred_probs (None): the probabilities, (N,K,H,W) or a sequence of
            (K,H,W); K also sets the number of colours
        class_names (None): names of the classes, for a legend
        exclude (None): given classes whose issue pixels are not shown
            (needs ``labels``)
        top (None): number of images to show; None shows 20, as in
            cleanlab
        ignore_index (None): label value(s) to draw as ignored
        **kwargs: passed to ``matplotlib.pyplot.show``

    Raises:
        InvalidInputError: (a ``ValueError``) for ``exclude`` without
            ``labels``; ShapeMismatchError and InvalidLabelsError for
            arrays that do not fit or labels outside 0..K-1
        ImportError: when matplotlib is not installed

    Example::

        issues = find_label_issues(labels, pred_probs)
        display_issues(issues, labels=labels, pred_probs=pred_probs, top=5)
    """
    exclude = [] if exclude is None else [int(e) for e in np.ravel(exclude)]
    if labels is None and exclude:
        raise InvalidInputError(
            "exclude filters issues by their given class, so it needs labels: pass "
            "labels=... too, or drop exclude."
        )
    ignore = normalize_ignore_index(ignore_index)
    n = len(issues)
    for name, arrays in (("labels", labels), ("pred_probs", pred_probs)):
        if arrays is not None and len(arrays) != n:
            raise ShapeMismatchError(f"issues holds {n} images but {name} holds {len(arrays)}.")
    top = DEFAULT_TOP if top is None else int(top)
    counts = np.array([np.count_nonzero(issues[i]) for i in range(n)], dtype=np.int64)
    order = np.argsort(-counts, kind="stable")[: max(min(top, n), 0)]

    try:
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap
        from matplotlib.patches import Patch
    except ImportError as e:  # pragma: no cover - matplotlib comes with FiftyOne
        raise ImportError("display_issues needs matplotlib: pip install matplotlib") from e

    panels = 1 + (labels is not None) + (pred_probs is not None)
    colors = None
    if panels > 1:
        if pred_probs is not None:
            if isinstance(pred_probs, np.ndarray):
                k = int(pred_probs.shape[1])
            else:  # a sequence of (K, H, W); an empty one has no K (nothing to draw)
                k = int(np.shape(pred_probs[0])[0]) if n else 0
        else:
            k = _num_classes_from_labels(labels, ignore)
        num_colors = max(k, len(class_names) if class_names is not None else 0)
        # one more row for ignored pixels
        colors = np.concatenate([class_colors(num_colors), [IGNORED_COLOR]])

    if class_names is not None and colors is not None:
        handles = [Patch(color=colors[c], label=str(name)) for c, name in enumerate(class_names)]
        if ignore and labels is not None:
            handles.append(Patch(color=IGNORED_COLOR, label="ignored"))
        legend = plt.figure()
        legend.legend(handles=handles, loc="center", ncol=len(handles), facecolor="white", fontsize=20)
        plt.axis("off")
        plt.show(**kwargs)

    error_cmap = ListedColormap(["none", "red"])
    for i in order:
        i = int(i)
        mask = np.asarray(issues[i], dtype=bool)
        if mask.ndim != 2:
            raise ShapeMismatchError(f"issues[{i}] has shape {mask.shape}; expected (H, W).", index=i)
        _, axes = plt.subplots(1, panels, figsize=(5 * panels, 5), squeeze=False)
        row = axes[0]
        j = 0
        if labels is not None:
            raw = np.asarray(labels[i])
            if raw.shape != mask.shape:
                raise ShapeMismatchError(
                    f"labels[{i}] has shape {raw.shape} but issues[{i}] is {mask.shape}.", index=i
                )
            classes, valid = prepare_labels(raw, len(colors) - 1, ignore, index=i)
            shown = classes if valid is None else np.where(valid, classes, len(colors) - 1)
            row[j].imshow(colors[shown])
            row[j].set_title(GIVEN_TITLE)
            j += 1
            if exclude:
                mask = mask & ~np.isin(raw, exclude)
            if valid is not None:
                mask = mask & valid
        if pred_probs is not None:
            p = np.asarray(pred_probs[i])
            if p.ndim != 3 or p.shape[1:] != mask.shape:
                raise ShapeMismatchError(
                    f"pred_probs[{i}] has shape {p.shape}; expected (K, {mask.shape[0]}, "
                    f"{mask.shape[1]}) to match issues[{i}].",
                    index=i,
                )
            row[j].imshow(colors[p.argmax(axis=0)])
            row[j].set_title(PREDICTED_TITLE)
            j += 1
        row[j].imshow(mask, cmap=error_cmap, vmin=0, vmax=1)
        row[j].set_title(ISSUES_TITLE.format(index=i))
        plt.show(**kwargs)
    return None
