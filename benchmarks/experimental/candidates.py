"""Experimental label-quality scores, measured against softmin by
``benchmarks/bench_detection.py``. numpy only; nothing here is wired into
:func:`~segqual_fo.core.get_label_quality_scores` yet.

Legend: N images, K classes, H x W pixels. ``labels`` is (H,W) of class
indices (or ignored values), ``pred_probs`` is (K,H,W) softmax probabilities
(float or uint8 quantised, decoded by :func:`~segqual_fo.core.pixel_evidence`).

Every candidate has the same signature::

    candidate(labels, pred_probs, *, ignore=(), dataset_stats=None, **params)
        -> (image_score, pixel_scores)

``image_score`` is a float in [0, 1] (lower = more likely mislabelled; NaN
when every pixel is ignored) and ``pixel_scores`` an (H,W) float array in
[0, 1] (lower = more suspicious, NaN where ignored). Candidates listed in
:data:`NEEDS_DATASET_STATS` read dataset-wide statistics
(:class:`DatasetStats`); :func:`score_dataset` runs them in two passes and,
by default, leaves each image's own contribution out of the statistics it
is scored with (a planted error must not calibrate itself away).

All candidates are built from the same per-pixel *evidence* that the label
is wrong, ``a = w * (1 - s)`` with ``s`` the self-confidence
``pred_probs[label]`` and ``w`` in [0, 1] a candidate-specific weight; the
pixel score is ``1 - a`` and, unless stated otherwise, the image score is
the softmin of the pixel scores (:mod:`segqual_fo.core.pooling`), so every
softmin candidate with ``w = 1`` reduces to the library's softmin score (up
to float rounding).

Benchmark summary (camvid-mini, ``bench_detection.py``): none of these beats
softmin on the held-out half by more than the seed-to-seed spread; see the
benchmark's docstring for the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt

from segqual_fo.core.pixel import PixelEvidence, pixel_evidence
from segqual_fo.core.pooling import softmin_1d

Candidate = Callable[..., Tuple[float, np.ndarray]]


# -- dataset-wide statistics ---------------------------------------------------
@dataclass
class DatasetStats:
    """Additive per-class statistics of a set of images (one image, a
    dataset, or a dataset minus one image: ``total - image``).

    Attributes:
        class_sums: (K,) float64 sum of self-confidence over valid pixels,
            by given class
        class_counts: (K,) int64 valid pixels by given class
        confusion: (K,K) int64 valid pixels by (given class, argmax class)
    """

    class_sums: npt.NDArray[np.float64]
    class_counts: npt.NDArray[np.int64]
    confusion: npt.NDArray[np.int64]

    def __add__(self, other: "DatasetStats") -> "DatasetStats":
        return DatasetStats(
            self.class_sums + other.class_sums,
            self.class_counts + other.class_counts,
            self.confusion + other.confusion,
        )

    def __sub__(self, other: "DatasetStats") -> "DatasetStats":
        return DatasetStats(
            self.class_sums - other.class_sums,
            self.class_counts - other.class_counts,
            self.confusion - other.confusion,
        )

    @property
    def num_classes(self) -> int:
        return len(self.class_counts)

    def thresholds(self) -> npt.NDArray[np.float64]:
        """(K,) per-class confident thresholds ``t_k`` = mean self-confidence
        of the pixels labelled k, shrunk by one pseudo-pixel towards the
        mean over all classes (so a class no other image carries gets the
        overall mean, not confident learning's 2e-6, which would make its
        pixels unsuspicious), clipped below at 2e-6."""
        total_n = self.class_counts.sum()
        overall = self.class_sums.sum() / total_n if total_n > 0 else 1.0
        t = (self.class_sums + overall) / (self.class_counts + 1.0)
        return np.maximum(t, 2e-6)

    def confusion_rates(self, smoothing: float = 1.0) -> npt.NDArray[np.float64]:
        """(K,K) ``P(argmax = j | given = y)``, add-``smoothing`` estimate
        (``smoothing / K`` pseudo-pixels per cell), rows summing to 1."""
        c = self.confusion.astype(np.float64)
        k = self.num_classes
        return (c + smoothing / k) / (c.sum(axis=1, keepdims=True) + smoothing)


def image_stats(
    labels: np.ndarray, pred_probs: np.ndarray, *, ignore: Tuple[int, ...] = ()
) -> DatasetStats:
    """The :class:`DatasetStats` of one image."""
    return _stats_of(pixel_evidence(labels, pred_probs, ignore=tuple(ignore), with_argmax=True))


def _stats_of(ev: PixelEvidence) -> DatasetStats:
    k = ev.probs.shape[0]
    lab = ev.labels.ravel().astype(np.intp)
    s = ev.pixel_scores.ravel()
    if ev.valid is not None:
        v = ev.valid.ravel()
        lab, s, pred = lab[v], s[v], ev.pred.ravel()[v]
    else:
        pred = ev.pred.ravel()
    return DatasetStats(
        class_sums=np.bincount(lab, weights=s.astype(np.float64), minlength=k),
        class_counts=np.bincount(lab, minlength=k).astype(np.int64),
        confusion=np.bincount(lab * k + pred, minlength=k * k).reshape(k, k).astype(np.int64),
    )


def collect_stats(
    labels: Sequence[np.ndarray], pred_probs: Sequence[np.ndarray], *, ignore: Tuple[int, ...] = ()
) -> DatasetStats:
    """Sum of :func:`image_stats` over a dataset (pass 1 of two)."""
    total = None
    for lab, p in zip(labels, pred_probs):
        st = image_stats(lab, p, ignore=ignore)
        total = st if total is None else total + st
    if total is None:
        raise ValueError("collect_stats needs at least one image.")
    return total


def score_dataset(
    candidate: str,
    labels: Sequence[np.ndarray],
    pred_probs: Sequence[np.ndarray],
    *,
    ignore: Tuple[int, ...] = (),
    leave_one_out: bool = True,
    **params,
) -> Tuple[npt.NDArray[np.float64], List[np.ndarray]]:
    """Scores every image with a named candidate, in two passes when it
    needs dataset statistics.

    Args:
        candidate: a key of :data:`CANDIDATES`
        labels: sequence of (H,W) label masks
        pred_probs: sequence of (K,H,W) probabilities
        ignore (()): mask values to exclude
        leave_one_out (True): score image i with the statistics of the
            other images only (the image's own pixels, including any error
            in it, do not calibrate its score)
        **params: the candidate's parameters

    Returns:
        ``(image_scores (N,), [pixel_scores (H,W), ...])``
    """
    if candidate not in CANDIDATES:
        raise ValueError(f"unknown candidate {candidate!r}; one of {sorted(CANDIDATES)}")
    fn = CANDIDATES[candidate]
    labels, pred_probs = list(labels), list(pred_probs)
    if len(labels) != len(pred_probs):
        raise ValueError(f"{len(labels)} label masks but {len(pred_probs)} probability arrays")
    per_image = total = None
    if candidate in NEEDS_DATASET_STATS:
        per_image = [image_stats(lab, p, ignore=ignore) for lab, p in zip(labels, pred_probs)]
        total = per_image[0]
        for st in per_image[1:]:
            total = total + st
    scores = np.empty(len(labels), dtype=np.float64)
    pixels = []
    for i, (lab, p) in enumerate(zip(labels, pred_probs)):
        stats = None
        if total is not None:
            stats = total - per_image[i] if leave_one_out and len(labels) > 1 else total
        scores[i], px = fn(lab, p, ignore=ignore, dataset_stats=stats, **params)
        pixels.append(px)
    return scores, pixels


# -- shared pieces -------------------------------------------------------------
def _evidence(labels, pred_probs, ignore) -> PixelEvidence:
    return pixel_evidence(labels, pred_probs, ignore=tuple(ignore), with_argmax=True)


def _valid(ev: PixelEvidence) -> np.ndarray:
    return np.ones(ev.labels.shape, dtype=bool) if ev.valid is None else ev.valid


def _pool_softmin(pixel_scores: np.ndarray, valid: np.ndarray, temperature: float):
    """Softmin image score of ``pixel_scores`` over ``valid``; the pixel
    scores come back with NaN on ignored pixels."""
    values = pixel_scores[valid]
    out = pixel_scores.astype(np.float32, copy=True)
    out[~valid] = np.nan
    return (softmin_1d(values, temperature) if values.size else float("nan")), out


def _weighted(ev: PixelEvidence, weight: np.ndarray, temperature: float):
    """Softmin of ``1 - weight * (1 - s)``."""
    valid = _valid(ev)
    s = np.where(valid, ev.pixel_scores, 1.0)
    px = 1.0 - np.clip(weight, 0.0, 1.0) * (1.0 - s)
    return _pool_softmin(px, valid, temperature)


def _shift(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``mask`` moved by (dy, dx), False where nothing moved in."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = mask[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def label_boundaries(labels: np.ndarray) -> npt.NDArray[np.bool_]:
    """(H,W) pixels with a 4-neighbour of another mask value (ignored values
    count as values: the edge of a void region is a boundary too)."""
    lab = np.asarray(labels)
    b = np.zeros(lab.shape, dtype=bool)
    dv = lab[1:] != lab[:-1]
    dh = lab[:, 1:] != lab[:, :-1]
    b[1:] |= dv
    b[:-1] |= dv
    b[:, 1:] |= dh
    b[:, :-1] |= dh
    return b


def boundary_distance(boundary: np.ndarray, max_distance: int) -> npt.NDArray[np.int32]:
    """Chessboard distance (pixels) to the nearest True pixel of
    ``boundary``, capped at ``max_distance`` (max_distance dilations)."""
    dist = np.full(boundary.shape, max_distance, dtype=np.int32)
    reached = boundary.copy()
    for d in range(max_distance):
        dist[reached & (dist == max_distance)] = d
        # one 3x3 dilation, separably
        grown = reached.copy()
        grown[1:] |= reached[:-1]
        grown[:-1] |= reached[1:]
        rows = grown.copy()
        grown[:, 1:] |= rows[:, :-1]
        grown[:, :-1] |= rows[:, 1:]
        reached = grown
    return dist


def connected_components(key: np.ndarray, *, connectivity: int = 8) -> Tuple[npt.NDArray[np.int64], int]:
    """Connected regions of equal ``key``; pixels with ``key < 0`` are
    background.

    # Algorithm
    Union-find without a Python loop per pixel. Horizontal runs of equal
    key are merged directly: every pixel's parent is its run's first pixel.
    The remaining edges join runs of equal key in neighbouring rows
    (vertically, and diagonally for 8-connectivity), one edge per pair of
    runs met along a row. Each round, for every edge whose endpoints
    have different roots, the larger root is hooked to the smaller
    (``np.minimum.at``), then every parent pointer is replaced by its parent
    until all point at roots (pointer jumping). Parents only decrease, so
    there are no cycles, and a round without a crossing edge ends it. Each
    root is the smallest flat index of its region, so regions are numbered
    1..n in raster order of their first pixel.

    Args:
        key: (H,W) integer array
        connectivity (8): 4 or 8

    Returns:
        ``(components, n)``: (H,W) int64 region ids 1..n, 0 on background
    """
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    key = np.asarray(key)
    h, w = key.shape
    fg = key >= 0
    index = np.arange(h * w, dtype=np.int64).reshape(h, w)
    run_start = np.ones((h, w), dtype=bool)
    run_start[:, 1:] = (key[:, 1:] != key[:, :-1]) | ~fg[:, 1:]
    parent = np.maximum.accumulate(np.where(run_start, index, 0), axis=1).ravel()
    offsets = [(1, 0)] + ([(1, 1), (1, -1)] if connectivity == 8 else [])
    parent2d = parent.reshape(h, w)
    us, vs = [], []
    for dy, dx in offsets:
        a = (slice(0, h - dy), slice(max(0, -dx), w - max(0, dx)))
        b = (slice(dy, h), slice(max(0, dx), w - max(0, -dx)))
        pa, pb = parent2d[a], parent2d[b]
        # along a row, neighbours in the same pair of runs repeat an edge
        keep = fg[a] & (key[a] == key[b])
        keep[:, 1:] &= (pa[:, 1:] != pa[:, :-1]) | (pb[:, 1:] != pb[:, :-1])
        us.append(pa[keep])
        vs.append(pb[keep])
    u, v = np.concatenate(us), np.concatenate(vs)
    while u.size:
        pu, pv = parent[u], parent[v]
        cross = pu != pv
        if not cross.any():
            break
        u, v, pu, pv = u[cross], v[cross], pu[cross], pv[cross]
        np.minimum.at(parent, np.maximum(pu, pv), np.minimum(pu, pv))
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
    flat_fg = fg.ravel()
    roots = parent[flat_fg]
    uniq = np.unique(roots)
    out = np.zeros(h * w, dtype=np.int64)
    out[flat_fg] = np.searchsorted(uniq, roots) + 1
    return out.reshape(h, w), int(uniq.size)


# -- candidates ------------------------------------------------------------------
def softmin_score(labels, pred_probs, *, ignore=(), dataset_stats=None, temperature: float = 0.1):
    """The library's softmin score (the baseline), for a temperature sweep.

    # Algorithm
    ``image = softmin(s, T)`` over valid pixels, pixel score ``s``; equal to
    ``get_label_quality_scores(method="softmin")``.
    """
    ev = _evidence(labels, pred_probs, ignore)
    valid = _valid(ev)
    return _pool_softmin(np.where(valid, ev.pixel_scores, 1), valid, temperature)


def void_conditional_softmin(
    labels, pred_probs, *, ignore=(), dataset_stats=None, temperature: float = 0.1
):
    """Softmin of self-confidence conditioned on "not an ignored class".

    # Algorithm
    When an ignored value v is also a probability channel (CamVid's void),
    the model's mass on it says "unlabellable", not "another class". The
    self-confidence among the labellable classes is
    ``s' = s / (1 - sum_v p_v)``, in [0, 1] since ``s + sum_v p_v <= 1``;
    where the model puts (almost) all mass on ignored channels it has no
    opinion, and ``s' = 1``. ``image = softmin(s', T)``. Identical to
    softmin when no ignored value is a channel.
    """
    ev = _evidence(labels, pred_probs, ignore)
    k = ev.probs.shape[0]
    chans = [v for v in ignore if 0 <= v < k]
    valid = _valid(ev)
    s = np.where(valid, ev.pixel_scores, 1.0)
    if chans:
        rest = 1.0 - ev.probs[chans].sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.where(rest > 1e-3, np.minimum(s / rest, 1.0), 1.0)
    return _pool_softmin(s, valid, temperature)


def class_calibrated_softmin(
    labels, pred_probs, *, ignore=(), dataset_stats: Optional[DatasetStats] = None, temperature: float = 0.1
):
    """Softmin of self-confidence relative to its class's confident threshold.

    # Algorithm
    Confident learning's per-class threshold ``t_y`` (mean self-confidence
    of the pixels labelled y, over the dataset, see
    :meth:`DatasetStats.thresholds`) says how sure the model usually is of
    class y. ``s' = min(1, s / t_y)``: a pole pixel at s = 0.3 where poles
    average 0.4 is less suspicious than a road pixel at 0.3 where roads
    average 0.95. ``image = softmin(s', T)``. Needs dataset statistics
    (without them, t = 1 and this is softmin).
    """
    ev = _evidence(labels, pred_probs, ignore)
    valid = _valid(ev)
    s = np.where(valid, ev.pixel_scores, 1.0)
    if dataset_stats is not None:
        t = dataset_stats.thresholds()
        s = np.minimum(s / t[ev.labels], 1.0)
    return _pool_softmin(s, valid, temperature)


def confusion_calibrated_softmin(
    labels,
    pred_probs,
    *,
    ignore=(),
    dataset_stats: Optional[DatasetStats] = None,
    temperature: float = 0.1,
    surprise_scale: Optional[float] = None,
):
    """Softmin of evidence weighted by how unusual the disagreement is.

    # Algorithm
    A disagreement the model makes all the time (given "pole", argmax
    "building") is weaker evidence of a label error than a rare one (given
    "road", argmax "car"). From the dataset confusion rates
    ``r(j | y) = P(argmax = j | given = y)`` (:meth:`DatasetStats.confusion_rates`,
    dominated by model errors since label errors are rare), a disagreeing
    pixel (argmax j != label y) gets the weight
    ``w = min(1, -log r(j | y) / L)`` with ``L = surprise_scale``
    (default ``log K``, the surprise of a uniformly random class), an
    agreeing pixel ``w = 1``. Evidence ``a = w (1 - s)``, pixel score
    ``1 - a``, ``image = softmin(1 - a, T)``. Use leave-one-out statistics
    (:func:`score_dataset`): an image's own large error would otherwise make
    its pair look common.
    """
    ev = _evidence(labels, pred_probs, ignore)
    k = ev.probs.shape[0]
    weight = np.ones(ev.labels.shape, dtype=np.float32)
    if dataset_stats is not None:
        scale = float(np.log(k)) if surprise_scale is None else float(surprise_scale)
        rates = dataset_stats.confusion_rates()
        surprise = np.minimum(-np.log(rates) / scale, 1.0).astype(np.float32)
        dis = ev.disagree
        weight[dis] = surprise[ev.labels[dis], ev.pred[dis]]
    return _weighted(ev, weight, temperature)


def boundary_weighted_softmin(
    labels,
    pred_probs,
    *,
    ignore=(),
    dataset_stats=None,
    temperature: float = 0.1,
    boundary_width: int = 2,
):
    """Softmin of evidence down-weighted near label boundaries.

    # Algorithm
    Models and annotators both place object edges within a pixel or two of
    each other, so disagreement right at an edge is expected even for a
    perfect label. With ``d`` the chessboard distance of a pixel to the
    nearest label boundary (a pixel with a 4-neighbour of another mask
    value, :func:`label_boundaries`), ``w = min(1, d / boundary_width)``
    (boundary pixels get 0), ``a = w (1 - s)``,
    ``image = softmin(1 - a, T)``. ``boundary_width = 0`` is softmin.
    """
    ev = _evidence(labels, pred_probs, ignore)
    bw = int(boundary_width)
    if bw <= 0:
        valid = _valid(ev)
        return _pool_softmin(np.where(valid, ev.pixel_scores, 1), valid, temperature)
    dist = boundary_distance(label_boundaries(labels), bw)
    return _weighted(ev, dist.astype(np.float32) / bw, temperature)


def region_score(
    labels,
    pred_probs,
    *,
    ignore=(),
    dataset_stats=None,
    exponent: float = 1.0,
    relative_to: str = "max",
):
    """Region-level evidence: disagreement regions weighted by how much of
    an object they cover.

    # Algorithm
    Disagreement regions are the 8-connected regions of valid pixels with
    the same (given class y, argmax class j), j != y. A region R covering
    most of the labelled object it lies in (a wrongly classed object) or of
    the object the model sees there (a dropped object) is strong evidence;
    a thin sliver of a large object is the usual edge disagreement. With
    ``L(R)`` the labelled region (8-connected, class y) containing R and
    ``P(R)`` the predicted region (8-connected, class j):

        rho(R) = max(|R| / |L(R)|, |R| / |P(R)|)    (relative_to="max";
                 "label" or "pred" use one term)
        a_p = rho(R)**exponent * (1 - s_p)    for p in R, 0 elsewhere
        image = 1 - sum_p a_p / #valid pixels

    The image score is one minus the weighted fraction of mislabelled
    pixels, so it is in [0, 1]; the pixel score is ``1 - a``.
    """
    if relative_to not in ("max", "label", "pred"):
        raise ValueError(f"relative_to must be 'max', 'label' or 'pred', got {relative_to!r}")
    ev = _evidence(labels, pred_probs, ignore)
    valid = _valid(ev)
    n_valid = int(valid.sum())
    lab = ev.labels.astype(np.int64)
    pred = ev.pred.astype(np.int64)
    k = ev.probs.shape[0]
    dis = valid & (pred != lab)
    px = np.where(valid, 1.0, np.nan).astype(np.float32)
    if n_valid == 0:
        return float("nan"), px
    if not dis.any():
        return 1.0, px
    regions, n = connected_components(np.where(dis, lab * k + pred, -1))
    r = regions.ravel()
    area = np.bincount(r, minlength=n + 1).astype(np.float64)
    first = np.full(n + 1, r.size, dtype=np.int64)
    np.minimum.at(first, r, np.arange(r.size))
    rho = np.zeros(n + 1)
    for side, cls in (("label", lab), ("pred", pred)):
        if relative_to in ("max", side):
            # the region lies inside one component of its class on this side;
            # its first pixel tells which
            comps, m = connected_components(np.where(valid, cls, -1))
            size = np.bincount(comps.ravel(), minlength=m + 1)
            rho[1:] = np.maximum(rho[1:], area[1:] / size[comps.ravel()[first[1:]]])
    weight = (rho**exponent)[regions]
    s = np.where(valid, ev.pixel_scores, 1.0)
    a = weight * (1.0 - s)
    px = np.where(valid, 1.0 - a, np.nan).astype(np.float32)
    return float(1.0 - a[valid].sum() / n_valid), px


def excess_disagreement_score(labels, pred_probs, *, ignore=(), dataset_stats=None):
    """Disagreement beyond what the model's own uncertainty predicts.

    # Algorithm
    If the model is calibrated and the label correct, the label is a draw
    from ``p``, so ``E[1 - s] = 1 - sum_k p_k**2`` (the Gini impurity): an
    image the model finds hard disagrees more without being wrong. The
    excess ``e = sum_k p_k**2 - s`` has mean 0 on a correct label and is
    positive where the label is less likely than the model's own spread
    explains. ``image = (1 - mean(e)) / 2`` over valid pixels (in [0, 1],
    ranks like ``-mean(e)``); pixel score ``1 - max(e, 0)``.
    """
    ev = _evidence(labels, pred_probs, ignore)
    valid = _valid(ev)
    p = ev.probs
    gini = np.einsum("khw,khw->hw", p, p, dtype=np.float64)
    s = np.where(valid, ev.pixel_scores, 1.0)
    e = gini - s
    px = np.where(valid, 1.0 - np.clip(e, 0.0, 1.0), np.nan).astype(np.float32)
    if not valid.any():
        return float("nan"), px
    return float((1.0 - e[valid].mean()) / 2.0), px


#: name -> candidate function
CANDIDATES: Dict[str, Candidate] = {
    "softmin": softmin_score,
    "void_conditional_softmin": void_conditional_softmin,
    "class_calibrated_softmin": class_calibrated_softmin,
    "confusion_calibrated_softmin": confusion_calibrated_softmin,
    "boundary_weighted_softmin": boundary_weighted_softmin,
    "region_score": region_score,
    "excess_disagreement": excess_disagreement_score,
}

#: candidates that read ``dataset_stats`` (two passes, see :func:`score_dataset`)
NEEDS_DATASET_STATS = frozenset({"class_calibrated_softmin", "confusion_calibrated_softmin"})
