"""TEST HELPER: a slow, plain reference of segqual_fo's scores (an oracle).

This module is not part of the library and must never import ``segqual_fo``:
it recomputes the numbers from the math in DESIGN.md and the documented
semantics of ``segqual_fo/core/issues.py`` and ``segqual_fo/core/pooling.py``,
so that tests comparing the library with it catch wrong answers rather than
the library agreeing with itself. It is validated against cleanlab (the
reference implementation, used as a test-time oracle only; none of its code
is copied here) in ``tests/core/test_reference.py``.

Clarity beats speed: images and pixels are visited in Python loops, sums use
``math.fsum`` (correctly rounded) and nothing is vectorised cleverly. Use it
on small inputs only (a few thousand pixels).

Legend: N images, K classes, H x W pixels (each image may have its own size);
"grid" is the pixel grid the confident-learning statistics live on: the
image itself, or its f x f blocks with ``downsample=f``.

Semantics reproduced (see the docstrings of the library modules):

- pixel score ``s = p[label]`` (self-confidence); ignored pixels (label in
  ``ignore``) get NaN and are excluded from every count, threshold and mask;
- softmin: ``sum(s * softmax((1 - s) / T))`` over the valid pixels, NaN when
  there is none;
- confident learning over the whole dataset, on the grid:
  ``t_k = mean(s | label = k)`` clipped below at 2e-6 (2e-6 for a class no
  valid grid pixel carries, +inf for an ignored value that is also a
  probability channel); ``T = #{valid grid pixels: j = argmax != label and
  p[j] >= t_j - 1e-6}``; the T valid grid pixels with the lowest ``s`` are
  flagged, ties broken by image index, then row-major position; at full
  resolution a pixel is an issue when its grid cell is flagged, it is valid
  and its own argmax (first maximum) differs from its label;
- ``num_pixel_issues`` image score: ``1 - issues / valid pixels`` (NaN when
  no pixel is valid);
- ``downsample=f``: H and W must be divisible by f (else ValueError, like
  the library and cleanlab); a block's probabilities are the mean of its
  f*f pixels, renormalised; its label is the mean of its VALID labels
  rounded half to even (``np.round``, as cleanlab); a block is valid when it
  holds at least one valid pixel and its rounded label is not itself an
  ignored value (the library's rule for ignored values inside 0..K-1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import List, Sequence, Tuple

import numpy as np

CONFIDENT_THRESHOLD_MIN = 2e-6
THRESHOLD_TOLERANCE = 1e-6


def _as_image_lists(labels, pred_probs) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """Lists of (H,W) int64 labels and (K,H,W) float64 probabilities."""
    labs = [np.asarray(lab).astype(np.int64) for lab in labels]
    probs = [np.asarray(p).astype(np.float64) for p in pred_probs]
    if len(labs) != len(probs):
        raise ValueError(f"{len(labs)} label masks but {len(probs)} probability arrays")
    for i, (lab, p) in enumerate(zip(labs, probs)):
        if lab.ndim != 2 or p.ndim != 3 or p.shape[1:] != lab.shape:
            raise ValueError(f"image {i}: labels {lab.shape} do not fit pred_probs {p.shape}")
        if p.shape[0] != probs[0].shape[0]:
            raise ValueError(f"image {i}: {p.shape[0]} classes, image 0 has {probs[0].shape[0]}")
    return labs, probs


def first_argmax(column: Sequence[float]) -> int:
    """Index of the first maximum of a 1-D sequence (the tie rule)."""
    best = 0
    for k in range(1, len(column)):
        if column[k] > column[best]:
            best = k
    return best


def round_half_even(value: Fraction) -> int:
    """``np.round`` of a rational: nearest integer, halves to the even one."""
    return round(value)  # Fraction.__round__ rounds half to even


def softmin_value(scores: Sequence[float], temperature: float) -> float:
    """``sum(s * softmax((1 - s) / T))`` of a list of scores; NaN if empty.

    The softmax is shifted by its largest exponent (that of the minimum
    score) so the largest weight is exactly 1: nothing overflows, and weights
    that underflow to 0 are negligible next to it.
    """
    scores = [float(s) for s in scores]
    if not scores:
        return float("nan")
    exponents = [(1.0 - s) / temperature for s in scores]
    top = max(exponents)
    weights = [math.exp(e - top) for e in exponents]
    return math.fsum(s * w for s, w in zip(scores, weights)) / math.fsum(weights)


@dataclass
class GridImage:
    """One image on the statistics grid (plain Python lists, row-major).

    Attributes:
        labels: grid labels (int; meaningless where not valid)
        valid: grid validity
        probs: per grid cell, the K probabilities
        shape: grid (h, w)
    """

    labels: List[List[int]]
    valid: List[List[bool]]
    probs: List[List[List[float]]]
    shape: Tuple[int, int]


def to_grid(labels: np.ndarray, probs: np.ndarray, ignore: Sequence[int], factor: int) -> GridImage:
    """One image's grid: itself (factor 1) or its factor x factor blocks."""
    ignore = set(int(v) for v in ignore)
    k, h, w = probs.shape
    if h % factor or w % factor:
        raise ValueError(f"a {h}x{w} image is not divisible by downsample={factor}")
    gh, gw = h // factor, w // factor
    g_labels = [[0] * gw for _ in range(gh)]
    g_valid = [[False] * gw for _ in range(gh)]
    g_probs = [[None] * gw for _ in range(gh)]
    for bi in range(gh):
        for bj in range(gw):
            cells = [
                (r, c)
                for r in range(bi * factor, (bi + 1) * factor)
                for c in range(bj * factor, (bj + 1) * factor)
            ]
            if factor == 1:  # the pixel itself, as given (no renormalisation)
                g_probs[bi][bj] = [float(probs[kk, bi, bj]) for kk in range(k)]
            else:  # block probabilities: mean over the block's pixels, renormalised
                mean = [math.fsum(probs[kk, r, c] for r, c in cells) / len(cells) for kk in range(k)]
                total = math.fsum(mean)
                g_probs[bi][bj] = [m / total for m in mean]
            # block label: rounded mean of the valid labels only
            valid_labels = [int(labels[r, c]) for r, c in cells if int(labels[r, c]) not in ignore]
            if valid_labels:
                lab = round_half_even(Fraction(sum(valid_labels), len(valid_labels)))
                # (factor 1: lab is the pixel's label.) A rounded block label
                # that is itself ignored leaves the block out too.
                g_labels[bi][bj] = lab
                g_valid[bi][bj] = lab not in ignore
    return GridImage(g_labels, g_valid, g_probs, (gh, gw))


@dataclass
class Reference:
    """Everything the reference computes for a dataset.

    Attributes:
        pixel_scores: per image, (H,W) float64 self-confidence, NaN if ignored
        valid: per image, (H,W) bool of scored pixels
        argmax: per image, (H,W) first-maximum class
        num_valid: (N,) valid pixels per image
        thresholds: (K,) confident thresholds
        num_issues: T, grid pixels to flag
        flagged: per image, (h,w) bool of flagged grid cells
        issues: per image, (H,W) bool confident-learning issue mask
        softmin_scores: (N,) softmin image scores at ``temperature``
        num_pixel_issues_scores: (N,) issue-count image scores
        labels: per image, the (H,W) labels as given
        temperature: the softmin temperature used
        grids: per image, its :class:`GridImage`
    """

    pixel_scores: List[np.ndarray]
    valid: List[np.ndarray]
    argmax: List[np.ndarray]
    num_valid: np.ndarray
    thresholds: np.ndarray
    num_issues: int
    flagged: List[np.ndarray]
    issues: List[np.ndarray]
    softmin_scores: np.ndarray
    num_pixel_issues_scores: np.ndarray
    labels: List[np.ndarray]
    temperature: float
    grids: List[GridImage] = field(repr=False)

    def image_scores(self, method: str) -> np.ndarray:
        if method == "softmin":
            return self.softmin_scores
        if method == "num_pixel_issues":
            return self.num_pixel_issues_scores
        raise ValueError(f"unknown method {method!r}")

    def threshold_issues(self, threshold: float) -> List[np.ndarray]:
        """Softmin's issue masks: valid pixels with ``s < threshold`` whose
        argmax is another class (``iter_label_quality`` docstring)."""
        out = []
        for s, valid, am, lab in zip(self.pixel_scores, self.valid, self.argmax, self.labels):
            m = np.zeros(s.shape, dtype=bool)
            for r in range(s.shape[0]):
                for c in range(s.shape[1]):
                    m[r, c] = bool(valid[r, c] and s[r, c] < threshold and am[r, c] != lab[r, c])
            out.append(m)
        return out


def reference(
    labels,
    pred_probs,
    *,
    ignore: Sequence[int] = (),
    downsample: int = 1,
    temperature: float = 0.1,
) -> Reference:
    """Computes every score of the dataset the slow, obvious way.

    Args:
        labels: (N,H,W) array or a sequence of (H,W) integer arrays
        pred_probs: (N,K,H,W) array or a sequence of (K,H,W) arrays
            (float; computed in float64)
        ignore (()): label value(s) to exclude (an int or a collection)
        downsample (1): block size f of the confident-learning grid
        temperature (0.1): softmin temperature

    Returns:
        a :class:`Reference`
    """
    labs, probs = _as_image_lists(labels, pred_probs)
    ignore = () if ignore is None else tuple(int(v) for v in np.ravel(ignore))
    num_classes = probs[0].shape[0]

    # -- full resolution: pixel scores, validity, argmax, softmin ----------
    pixel_scores, valids, argmaxes, num_valid, softmins = [], [], [], [], []
    for lab, p in zip(labs, probs):
        h, w = lab.shape
        s = np.full((h, w), np.nan)
        valid = np.zeros((h, w), dtype=bool)
        am = np.zeros((h, w), dtype=np.int64)
        for r in range(h):
            for c in range(w):
                am[r, c] = first_argmax(p[:, r, c].tolist())
                if int(lab[r, c]) in ignore:
                    continue
                if not 0 <= lab[r, c] < num_classes:
                    raise ValueError(f"label {lab[r, c]} is neither a class nor ignored")
                valid[r, c] = True
                s[r, c] = p[lab[r, c], r, c]
        pixel_scores.append(s)
        valids.append(valid)
        argmaxes.append(am)
        num_valid.append(int(valid.sum()))
        softmins.append(softmin_value(s[valid].tolist(), temperature))

    # -- the grid: per-class thresholds (dataset-wide) ---------------------
    grids = [to_grid(lab, p, ignore, downsample) for lab, p in zip(labs, probs)]
    per_class = [[] for _ in range(num_classes)]
    for g in grids:
        for r in range(g.shape[0]):
            for c in range(g.shape[1]):
                if g.valid[r][c]:
                    y = g.labels[r][c]
                    per_class[y].append(g.probs[r][c][y])
    thresholds = np.empty(num_classes)
    for k in range(num_classes):
        if k in ignore:
            thresholds[k] = math.inf  # an ignored channel never counts
        elif per_class[k]:
            thresholds[k] = max(math.fsum(per_class[k]) / len(per_class[k]), CONFIDENT_THRESHOLD_MIN)
        else:
            thresholds[k] = CONFIDENT_THRESHOLD_MIN

    # -- T and the ranking --------------------------------------------------
    num_issues = 0
    ranked = []  # (score, image, row, col): sorting gives the tie order
    for i, g in enumerate(grids):
        for r in range(g.shape[0]):
            for c in range(g.shape[1]):
                if not g.valid[r][c]:
                    continue
                col, y = g.probs[r][c], g.labels[r][c]
                j = first_argmax(col)
                if j != y and col[j] >= thresholds[j] - THRESHOLD_TOLERANCE:
                    num_issues += 1
                ranked.append((col[y], i, r, c))
    ranked.sort()
    flagged = [np.zeros(g.shape, dtype=bool) for g in grids]
    for _, i, r, c in ranked[:num_issues]:
        flagged[i][r, c] = True

    # -- back to full resolution -------------------------------------------
    issues, npi = [], []
    for i, lab in enumerate(labs):
        h, w = lab.shape
        m = np.zeros((h, w), dtype=bool)
        for r in range(h):
            for c in range(w):
                m[r, c] = bool(
                    flagged[i][r // downsample, c // downsample]
                    and valids[i][r, c]
                    and argmaxes[i][r, c] != lab[r, c]
                )
        issues.append(m)
        npi.append(1.0 - m.sum() / num_valid[i] if num_valid[i] else float("nan"))

    return Reference(
        pixel_scores=pixel_scores,
        valid=valids,
        argmax=argmaxes,
        num_valid=np.array(num_valid),
        thresholds=thresholds,
        num_issues=num_issues,
        flagged=flagged,
        issues=issues,
        softmin_scores=np.array(softmins, dtype=np.float64),
        num_pixel_issues_scores=np.array(npi, dtype=np.float64),
        labels=labs,
        temperature=temperature,
        grids=grids,
    )
