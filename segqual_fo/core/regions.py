"""Issue regions: per-region evidence and the region confidence.

Legend: K classes, H x W pixels, R regions.

An issue region is one 8-connected group of issue pixels (found by
:func:`segqual_fo.writers.regions.find_regions`). Inside one image, most
regions are the model's mistakes (thin bands along object boundaries,
classes the model confuses everywhere); a few are the annotation's. Each
region gets a ``confidence`` in [0, 1]: an estimate of the probability that
it is an annotation error rather than a model error, from component-level
evidence in the spirit of Rottmann & Reese (2022, "Automated detection of
label errors in semantic segmentation datasets via deep learning and
uncertainty quantification"), combined by a fixed formula (no labelled
errors needed).

Local evidence (:func:`region_features`, one image, cheap: read on the
region's bounding box plus one pixel; :func:`components_features` gives the
same values for all of an image's regions in one pass):

- ``area``: pixels in the region;
- ``mean_score`` / ``min_score``: self-confidence of the given class over
  the region (low: the model is sure the label is wrong there);
- ``ring_given`` / ``ring_predicted``: share of the region's outer ring
  (valid pixels 8-adjacent to it) labelled with the region's given /
  predicted class. A model error along a boundary lies between the two
  labelled classes (both shares high); a wrong or dropped object is
  enclosed by other classes;
- ``ring_score``: mean self-confidence on that ring (does the model agree
  with the labels right around the region?);
- ``thickness``: area / boundary pixels (1 for a one-pixel line; blobs of
  radius r have about r/2): boundary bleed is thin.

Dataset evidence (:func:`region_confidence`, at the end of a run): how
common the region's (given, predicted) pair is among all issue pixels of the
run (the model's usual confusions are likely its own), with the region's own
pixels left out.

# Algorithm

``confidence = sigmoid(sum_j w_j * x_j + b)`` with the terms ``x_j`` of
:data:`WEIGHTS` (see :func:`region_logits`). The weights were fitted once
(pairwise ranking: the planted region above the others of its image) on the
tune half of ``benchmarks/bench_detection.py`` (real CamVid labels and a
real model's probabilities, planted errors) and are fixed here; the intercept
puts the benchmark's share of annotation-error regions at about the mean
confidence. The number is a ranking score first: use it to order regions
within an image and across images; as a probability it is only as right as
the benchmark is typical.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Tuple

import numpy as np
import numpy.typing as npt

#: Local per-region features, in the order :func:`region_features` returns them.
LOCAL_FEATURES = ("area", "mean_score", "min_score", "ring_given", "ring_predicted", "ring_score", "thickness")

#: Floor of a score inside a logarithm (scores are uint8-quantised often).
_SCORE_FLOOR = 1e-3


@dataclass(frozen=True)
class ConfidenceWeights:
    """Weights of the region confidence's terms (see :func:`region_logits`)."""

    log_area: float
    log_mean_score: float
    ring_given: float
    ring_predicted: float
    ring_mixed: float
    ring_score: float
    log_thickness: float
    pair_rarity: float
    bias: float


#: The fixed weights: 0.84 x (1, -1, 0, 0, 2, -2, -2, 0.25) and the bias
#: -9.6. The direction (1, -1, ..., 0.25) is the best of a small grid (hit@1
#: + hit@3 on the tune half of ``benchmarks/bench_detection.py``, softmin,
#: 10 seeds); the scale and bias are a logistic fit of "is the planted
#: region" on it over the regions of the tune half's planted images (base
#: rate about 4%). ``ring_given`` and ``ring_predicted`` alone did not help
#: there (weight 0); they are stored as evidence all the same.
WEIGHTS = ConfidenceWeights(
    log_area=0.84,
    log_mean_score=-0.84,
    ring_given=0.0,
    ring_predicted=0.0,
    ring_mixed=1.68,
    ring_score=-1.68,
    log_thickness=-1.68,
    pair_rarity=0.21,
    bias=-9.6,
)


def _dilate8(mask: np.ndarray) -> np.ndarray:
    """3 x 3 binary dilation (8-connectivity), zero outside the array."""
    out = mask.copy()
    out[1:, :] |= mask[:-1, :]
    out[:-1, :] |= mask[1:, :]
    rows = out.copy()
    out[:, 1:] |= rows[:, :-1]
    out[:, :-1] |= rows[:, 1:]
    return out


def _inner_boundary(mask: np.ndarray) -> int:
    """Pixels of ``mask`` with a 4-neighbour outside it (or at the array edge)."""
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    inner[0, :] = inner[-1, :] = False
    inner[:, 0] = inner[:, -1] = False
    return int(np.count_nonzero(mask)) - int(np.count_nonzero(inner))


def region_features(
    region: npt.NDArray[np.bool_],
    labels: np.ndarray,
    pixel_scores: npt.NDArray[np.floating],
    given: int,
    predicted: int,
) -> Dict[str, float]:
    """Local evidence of one region (see the module docstring).

    The arrays are a window of the image around the region: its bounding
    box grown by one pixel where the image allows (a ring pixel outside the
    image does not exist and is not counted).

    Args:
        region: (h,w) bool, the region's pixels in the window
        labels: (h,w) given class indices in the window
        pixel_scores: (h,w) self-confidence in the window, NaN where ignored
        given: the region's given class
        predicted: the region's predicted class

    Returns:
        a dict with the keys of :data:`LOCAL_FEATURES`
    """
    inside = pixel_scores[region]
    area = int(inside.size)
    ring = _dilate8(region) & ~region & ~np.isnan(pixel_scores)
    n_ring = int(np.count_nonzero(ring))
    if n_ring:
        ring_labels = labels[ring]
        ring_given = float(np.count_nonzero(ring_labels == given)) / n_ring
        ring_predicted = float(np.count_nonzero(ring_labels == predicted)) / n_ring
        ring_score = float(pixel_scores[ring].mean(dtype=np.float64))
    else:  # the region fills its window (e.g. the whole image)
        ring_given = ring_predicted = 0.0
        ring_score = 1.0
    # the window's edge is not the region's boundary (np.pad costs ~35 us)
    padded = np.zeros((region.shape[0] + 2, region.shape[1] + 2), dtype=bool)
    padded[1:-1, 1:-1] = region
    if area and np.isnan(inside).any():  # issue pixels are never ignored; others may be
        inside = inside[~np.isnan(inside)]
    return {
        "area": area,
        # in the scores' own dtype, as the regions field always had it
        "mean_score": float(inside.mean()) if inside.size else float("nan"),
        "min_score": float(inside.min()) if inside.size else float("nan"),
        "ring_given": ring_given,
        "ring_predicted": ring_predicted,
        "ring_score": ring_score,
        "thickness": area / max(_inner_boundary(padded), 1),
    }


def components_features(
    components: np.ndarray,
    ids: np.ndarray,
    labels: np.ndarray,
    pred: np.ndarray,
    pixel_scores: npt.NDArray[np.floating],
) -> Tuple[np.ndarray, np.ndarray, Dict[str, np.ndarray]]:
    """Given class, predicted class and local evidence of many regions of
    one image at once: for each region, the most common of its labels and
    of its predictions (``np.bincount(values).argmax()``: the smallest on
    ties) and what :func:`region_features` gives on its window, value for
    value.

    One pass over the image instead of a dozen numpy calls per region (an
    image of the benchmark has hundreds of regions). The means and minima
    are still taken per region, by the same numpy calls on the same values
    in the same (raster) order, so they round as before; everything else
    is counts.

    Args:
        components: (H,W) integer component ids, 0 outside every region
            (8-connected components, e.g. from OpenCV)
        ids: (R,) ascending ids of the regions to describe
        labels: (H,W) given class indices (non-negative)
        pred: (H,W) predicted class indices (non-negative at the regions'
            pixels)
        pixel_scores: (H,W) pixel scores, NaN where ignored

    Returns:
        ``(given, predicted, features)``: (R,) int64 majority classes, and
        (R,) arrays under the names of :data:`LOCAL_FEATURES`
    """
    h, w = components.shape
    comp = components.reshape(-1)
    ids = np.asarray(ids, dtype=np.intp)
    r_count = ids.size
    slot = np.full(int(comp.max()) + 2, -1, dtype=np.intp)
    slot[ids] = np.arange(r_count)
    # each region's pixels, in raster order
    nonzero = components != 0
    px = np.flatnonzero(nonzero)
    reg = slot.take(comp.take(px))
    keep = reg >= 0
    px, reg = px[keep], reg[keep]
    order = np.argsort(reg, kind="stable")
    px, reg = px.take(order), reg.take(order)
    area = np.bincount(reg, minlength=r_count)
    bounds = np.concatenate([[0], np.cumsum(area)])
    lab_flat, pred_flat = labels.reshape(-1), pred.reshape(-1)
    given = _majorities(reg, lab_flat.take(px), r_count)
    predicted = _majorities(reg, pred_flat.take(px), r_count)
    scores = pixel_scores.reshape(-1)

    # boundary pixels: a 4-neighbour outside the region (any issue pixel
    # 4-adjacent to a region is in it) or outside the image
    inside = np.zeros((h + 2, w + 2), dtype=bool)
    inside[1:-1, 1:-1] = nonzero
    flat_in = inside.reshape(-1)
    y, x = np.divmod(px, w)
    pp = (y + 1) * (w + 2) + (x + 1)
    interior = flat_in.take(pp - (w + 2))
    interior &= flat_in.take(pp + (w + 2))
    interior &= flat_in.take(pp - 1)
    interior &= flat_in.take(pp + 1)
    boundary = area - np.bincount(reg[interior], minlength=r_count)

    # ring pixels: valid pixels outside every region 8-adjacent to one; a
    # ring pixel belongs to the ring of each region among its neighbours
    ring_mask = _dilate8(inside)[1:-1, 1:-1] & ~nonzero
    with np.errstate(invalid="ignore"):
        ring_mask &= ~np.isnan(pixel_scores)
    rp = np.flatnonzero(ring_mask)
    padded = np.zeros((h + 2, w + 2), dtype=components.dtype)
    padded[1:-1, 1:-1] = components
    flat_pad = padded.reshape(-1)
    ry, rx = np.divmod(rp, w)
    rpp = (ry + 1) * (w + 2) + (rx + 1)
    offsets = [dy * (w + 2) + dx for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    nb = np.stack([flat_pad.take(rpp + o) for o in offsets], axis=1)  # (n, 8) neighbours' components
    nb.sort(axis=1)
    fresh = nb > 0
    fresh[:, 1:] &= nb[:, 1:] != nb[:, :-1]  # each component once per ring pixel
    which, col = np.nonzero(fresh)  # row-major: ring pixels in raster order
    ring_reg = slot.take(nb[which, col])
    asked = ring_reg >= 0  # not the regions left out (too small)
    which, ring_reg = which[asked], ring_reg[asked]
    ring_px = rp.take(which)
    order = np.argsort(ring_reg, kind="stable")
    ring_reg, ring_px = ring_reg.take(order), ring_px.take(order)
    n_ring = np.bincount(ring_reg, minlength=r_count)
    ring_bounds = np.concatenate([[0], np.cumsum(n_ring)])
    ring_lab = lab_flat.take(ring_px)
    n_given = np.bincount(ring_reg[ring_lab == given.take(ring_reg)], minlength=r_count)
    n_pred = np.bincount(ring_reg[ring_lab == predicted.take(ring_reg)], minlength=r_count)

    region_scores = scores.take(px)
    ring_scores = scores.take(ring_px)
    # means as ndarray.mean() computes them: numpy's (pairwise) sum of the
    # same values in the same order, one call per region, then divided by
    # the count in float64 and rounded to the scores' dtype; minima are
    # exact whatever the order
    exact_mean = region_scores.dtype in (np.float32, np.float64)
    nan_regions = np.zeros(r_count, dtype=bool)
    if np.isnan(region_scores).any():  # issue pixels are never ignored; others may be
        nan_regions[reg[np.isnan(region_scores)]] = True
    sums = np.empty(r_count, dtype=np.float64)
    ring_sums = np.zeros(r_count, dtype=np.float64)
    mean_score = np.empty(r_count, dtype=np.float64)
    min_score = np.full(r_count, np.nan)
    add = np.add.reduce
    for j in range(r_count):
        vals = region_scores[bounds[j] : bounds[j + 1]]
        if nan_regions[j] or not exact_mean:
            vals = vals[~np.isnan(vals)]
            mean_score[j] = float(vals.mean()) if vals.size else float("nan")
            min_score[j] = float(vals.min()) if vals.size else float("nan")
            sums[j] = np.nan
        else:
            sums[j] = add(vals)
        if n_ring[j]:
            ring_sums[j] = add(ring_scores[ring_bounds[j] : ring_bounds[j + 1]], dtype=np.float64)
    plain = ~np.isnan(sums)
    if plain.any():
        mean_score[plain] = (sums[plain] / area[plain]).astype(region_scores.dtype)
        min_score[plain] = np.minimum.reduceat(region_scores, bounds[:-1])[plain]  # every region has pixels
    has_ring = n_ring > 0
    ring_count = np.maximum(n_ring, 1).astype(np.float64)
    out = {
        "area": area.astype(np.float64),
        "mean_score": mean_score,
        "min_score": min_score,
        "ring_given": np.where(has_ring, n_given / ring_count, 0.0),
        "ring_predicted": np.where(has_ring, n_pred / ring_count, 0.0),
        "ring_score": np.where(has_ring, ring_sums / ring_count, 1.0),
        "thickness": area / np.maximum(boundary, 1),
    }
    return given, predicted, out


def _majorities(reg: np.ndarray, values: np.ndarray, r_count: int) -> np.ndarray:
    """Per region (``reg`` sorted), the most common value, the smallest on
    ties: ``np.bincount(values).argmax()`` of each region's values."""
    if reg.size == 0:
        return np.zeros(r_count, dtype=np.int64)
    span = int(values.max()) + 1
    codes, counts = np.unique(reg.astype(np.int64) * span + values, return_counts=True)
    code_reg = codes // span
    first = np.flatnonzero(np.concatenate([[True], code_reg[1:] != code_reg[:-1]]))
    top = np.maximum.reduceat(counts, first)
    # the first (smallest) value reaching the top count of its region
    hit = np.flatnonzero(counts == top[np.repeat(np.arange(first.size), np.diff(np.append(first, codes.size)))])
    hit_reg = code_reg[hit]
    firsts = hit[np.concatenate([[True], hit_reg[1:] != hit_reg[:-1]])]
    out = np.zeros(r_count, dtype=np.int64)
    out[code_reg[firsts]] = codes[firsts] % span
    return out


def pair_rarity(
    confusion: np.ndarray, given: np.ndarray, predicted: np.ndarray, area: np.ndarray
) -> npt.NDArray[np.float64]:
    """``-log P(given, predicted)`` among the run's issue pixels, with each
    region's own pixels left out (a large annotation error must not make
    its own pair look common).

    Args:
        confusion: (K,K) issue-pixel counts ``[given, predicted]``
        given: (R,) given classes
        predicted: (R,) predicted classes
        area: (R,) region areas

    Returns:
        (R,) float64, >= 0 (Laplace-smoothed over the K * K pairs)
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    k = confusion.shape[0]
    given = np.asarray(given, dtype=np.intp)
    predicted = np.asarray(predicted, dtype=np.intp)
    area = np.asarray(area, dtype=np.float64)
    pair = np.maximum(confusion[given, predicted] - area, 0.0)
    total = np.maximum(confusion.sum() - area, 0.0)
    return -np.log((pair + 1.0) / (total + k * k))


def region_logits(
    features: Mapping[str, np.ndarray],
    rarity: Optional[np.ndarray] = None,
    weights: ConfidenceWeights = WEIGHTS,
) -> npt.NDArray[np.float64]:
    """The linear evidence ``sum_j w_j * x_j + b`` of regions.

    Terms: ``log(area)``, ``log(max(mean_score, 1e-3))``, ``ring_given``,
    ``ring_predicted``, ``min(ring_given, ring_predicted)`` (the region lies
    between its two classes), ``ring_score``, ``log(thickness)`` and the
    pair rarity (0 when ``rarity`` is None: the local part alone, as used
    to keep an image's regions).

    Args:
        features: arrays (R,) under the names of :data:`LOCAL_FEATURES`
        rarity (None): (R,) :func:`pair_rarity`
        weights: the weights

    Returns:
        (R,) float64
    """
    f = {k: np.asarray(features[k], dtype=np.float64) for k in LOCAL_FEATURES if k != "min_score"}
    w = weights
    z = (
        w.log_area * np.log(np.maximum(f["area"], 1.0))
        + w.log_mean_score * np.log(np.maximum(f["mean_score"], _SCORE_FLOOR))
        + w.ring_given * f["ring_given"]
        + w.ring_predicted * f["ring_predicted"]
        + w.ring_mixed * np.minimum(f["ring_given"], f["ring_predicted"])
        + w.ring_score * f["ring_score"]
        + w.log_thickness * np.log(np.maximum(f["thickness"], 1.0))
        + w.bias
    )
    if rarity is not None:
        z = z + w.pair_rarity * np.asarray(rarity, dtype=np.float64)
    return z


def sigmoid(z: np.ndarray) -> npt.NDArray[np.float64]:
    """Logistic function, stable for large ``|z|``."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def region_confidence(
    features: Mapping[str, np.ndarray],
    given: np.ndarray,
    predicted: np.ndarray,
    confusion: Optional[np.ndarray] = None,
    weights: ConfidenceWeights = WEIGHTS,
) -> npt.NDArray[np.float64]:
    """Confidence in [0, 1] that each region is an annotation error.

    Args:
        features: arrays (R,) under the names of :data:`LOCAL_FEATURES`
            (``min_score`` may be absent)
        given: (R,) given class of each region
        predicted: (R,) predicted class of each region
        confusion (None): (K,K) issue-pixel counts ``[given, predicted]`` of
            the whole run; None: local evidence only
        weights: the formula's weights (default :data:`WEIGHTS`)

    Returns:
        (R,) float64 in [0, 1]

    Example::

        >>> import numpy as np
        >>> f = dict(area=[400, 20], mean_score=[0.01, 0.05], ring_given=[0.1, 0.5],
        ...          ring_predicted=[0.0, 0.5], ring_score=[0.9, 0.5], thickness=[5.0, 1.2])
        >>> c = region_confidence(f, [1, 1], [2, 0], confusion=np.ones((3, 3)))
        >>> bool(c[0] > c[1])
        True
    """
    rarity = None
    if confusion is not None:
        rarity = pair_rarity(confusion, given, predicted, np.asarray(features["area"]))
    return sigmoid(region_logits(features, rarity, weights))
