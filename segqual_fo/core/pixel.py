"""Per-pixel evidence for one image: self-confidence and the model's argmax.

Why one module of this size: validation (labels, dtypes, sums, unnormalised
scores) and the scoring it guards read the same arrays in the same pass;
kept together, the fast path reads the probabilities once. Probabilities at
the model's resolution (:class:`~segqual_fo.core.resample.LowResProbs`) are
scored here too, by the same rules, so the two paths cannot drift apart.

Legend: K classes, H x W pixels. ``labels`` is (H,W) of class indices (or
ignored values), ``pred_probs`` is (K,H,W).

Dtype policy (like scikit-image's ``_supported_float_type``): float64 input
is computed in float64, float32 in float32, float16 is converted to float32,
and uint8 (probabilities quantised as ``round(p * 255)``) is divided by its
per-pixel sum, i.e. ``p / 255`` renormalised, in float32. Sums that decide
rankings or thresholds are accumulated in float64 by the callers.

Validation here is the single place where one image's values are checked;
it is cheap enough to run on every image (no extra pass over the K channels
beyond what scoring needs, except a row-sampled sum check):

- labels must be integers in ``0..K-1`` or ignored;
- self-confidence values must be finite and within [0, 1] (checked on every
  pixel); when the argmax is computed, every pixel's maximum is checked for
  NaN too;
- per-pixel probability sums must be 1 (within 1e-3; 1e-2 for float16) on
  about one row in eight (eight evenly spread bands), which catches logits, a
  wrong layout or unnormalised scores without a second full pass.
  ``check_probs="full"`` checks every pixel.

Unnormalised scores (``allow_unnormalized=True``, what the cleanlab-compatible
functions pass): finite, non-negative class scores whose sums are not 1 are
used as given, as cleanlab does, and flagged in
:attr:`PixelEvidence.unnormalized` so the caller can warn once. NaN, infinite
and negative values are still errors; once an image is flagged every value of
its batch is checked for them (a full pass, on this path only). Integer and
bool arrays are accepted too (computed in float64); uint8 keeps its meaning
of quantised probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

from segqual_fo.core.resample import LowResProbs
from segqual_fo.errors import (
    InvalidInputError,
    InvalidLabelsError,
    InvalidProbabilitiesError,
    ShapeMismatchError,
)

CHECK_PROBS_MODES = ("sample", "full", "none")


@dataclass
class PixelEvidence:
    """What the probabilities say about the labels of one image, or of a
    batch of same-size images (then every array has a leading B axis).

    Attributes:
        pixel_scores: (H,W) self-confidence ``pred_probs[label, h, w]`` in
            the computation dtype (float32, or float64 for float64 input);
            NaN on ignored pixels
        labels: (H,W) class indices with ignored pixels set to 0 (use
            ``valid`` to tell them apart)
        valid: (H,W) bool mask of scored pixels, or None when every pixel is
            scored
        pred: (H,W) argmax class (first maximum on ties; uint8, or uint16 for
            K > 254), only when requested
        pred_prob: (H,W) probability of the argmax class, only when requested
        probs: the (K,H,W) probabilities in the computation dtype (a view of
            the input when no conversion was needed), or the
            :class:`~segqual_fo.core.resample.LowResProbs` that was scored
        unnormalized: None when the probabilities sum to 1 (as far as
            checked); with ``allow_unnormalized=True`` and scores that do
            not, a bool per image (a 0-d array for one image, (B,) for a
            batch) marking the images found unnormalised
        unnormalized_note: where the first unnormalised image goes wrong,
            for the caller's warning (None when ``unnormalized`` is None)
    """

    pixel_scores: npt.NDArray[np.floating]
    labels: npt.NDArray[np.integer]
    valid: Optional[npt.NDArray[np.bool_]]
    pred: Optional[npt.NDArray[np.integer]] = None
    pred_prob: Optional[npt.NDArray[np.floating]] = None
    probs: Optional[Union[npt.NDArray[np.floating], LowResProbs]] = None
    unnormalized: Optional[npt.NDArray[np.bool_]] = None
    unnormalized_note: Optional[str] = None

    @property
    def num_valid(self) -> int:
        """Number of scored pixels (of the whole batch, for a batch)."""
        return int(self.pixel_scores.size if self.valid is None else np.count_nonzero(self.valid))

    @property
    def disagree(self) -> npt.NDArray[np.bool_]:
        """Valid pixels whose argmax is not the given label."""
        if self.pred is None:
            raise ValueError("pixel_evidence(..., with_argmax=True) is needed for disagree")
        d = self.pred != self.labels
        if self.valid is not None:
            d &= self.valid
        return d


def class_dtype(num_classes: int) -> np.dtype:
    """Smallest unsigned dtype holding 0..K-1 plus a sentinel (its max)."""
    if num_classes <= 254:
        return np.dtype(np.uint8)
    if num_classes <= 65534:
        return np.dtype(np.uint16)
    raise InvalidInputError(f"{num_classes} classes are more than the 65534 supported.")


def _is_raw_integer(dtype: np.dtype) -> bool:
    """Integer or bool scores other than uint8 (which means quantised
    probabilities): accepted as raw scores with ``allow_unnormalized``."""
    dtype = np.dtype(dtype)
    return dtype.kind in "biu" and dtype != np.uint8


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype pixel scores are computed in for probabilities of ``dtype``."""
    if np.dtype(dtype) == np.float64 or _is_raw_integer(dtype):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


class _Namer:
    """Names image b of a batch in messages: ``labels[7]`` or ``labels``."""

    def __init__(self, index: Optional[int], batched: bool):
        self.index = index
        self.batched = batched

    def position(self, b: int) -> Optional[int]:
        if self.index is None:
            return b if self.batched else None
        return self.index + b

    def __call__(self, name: str, b: int = 0) -> str:
        pos = self.position(b)
        return name if pos is None else f"{name}[{pos}]"


@lru_cache(maxsize=16)
def _flat_offsets(batch: int, num_classes: int, hw: int) -> np.ndarray:
    """(B, H*W) offsets of pixel (b, q) of class 0 in a flat (B,K,H,W) array."""
    out = (np.arange(batch, dtype=np.intp) * (num_classes * hw))[:, None] + np.arange(
        hw, dtype=np.intp
    )
    out.flags.writeable = False
    return out


def _bad_label_message(lab: np.ndarray, num_classes: int, where: str) -> str:
    bad = np.unique(lab[(lab < 0) | (lab >= num_classes)])
    shown = ", ".join(str(v) for v in bad[:10]) + (", ..." if bad.size > 10 else "")
    return (
        f"{where} holds values [{shown}] that are neither classes 0..{num_classes - 1} "
        f"(K={num_classes} from pred_probs) nor ignored. Pass ignore_index=[{shown}] if "
        "these mark unlabelled/void pixels, or check that the class order and K match "
        "the probability channels."
    )


def _prepare_labels(
    lab: np.ndarray, num_classes: int, ignore: Tuple[int, ...], name: _Namer
) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Batch version of :func:`prepare_labels` on (B,H,W)."""
    if lab.shape[1] == 0 or lab.shape[2] == 0:
        raise InvalidLabelsError(
            f"{name('labels')} is empty (shape {lab.shape[1:]}).", index=name.position(0)
        )
    kind = lab.dtype.kind
    if kind == "b":
        lab = lab.view(np.uint8)
    elif kind == "f":
        bad_img = ~(np.isfinite(lab) & (lab == np.round(lab))).reshape(len(lab), -1).all(axis=1)
        if bad_img.any():
            b = int(np.argmax(bad_img))
            raise InvalidLabelsError(
                f"{name('labels', b)} holds non-integer values; labels must be class "
                "indices (integers), e.g. the result of argmax or a decoded mask PNG.",
                index=name.position(b),
            )
        lab = lab.astype(np.int64)
    elif kind not in "iu":
        raise InvalidLabelsError(
            f"{name('labels')} has dtype {lab.dtype}; expected an integer array of class "
            "indices.",
            index=name.position(0),
        )
    valid = None
    if ignore:
        invalid = lab == ignore[0] if len(ignore) == 1 else np.isin(lab, ignore)
        if invalid.any():
            valid = ~invalid
            lab = np.where(invalid, np.zeros((), lab.dtype), lab)
    if lab.min() < 0 or lab.max() >= num_classes:
        for b in range(len(lab)):
            if lab[b].min() < 0 or lab[b].max() >= num_classes:
                raise InvalidLabelsError(
                    _bad_label_message(lab[b], num_classes, name("labels", b)),
                    index=name.position(b),
                )
    return lab, valid


def prepare_labels(
    labels: np.ndarray,
    num_classes: int,
    ignore: Tuple[int, ...] = (),
    *,
    index: Optional[int] = None,
) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Validates one (H,W) label mask; returns (class map, valid mask or None).

    Ignored pixels get class 0 in the returned map and False in ``valid``.

    Raises:
        InvalidLabelsError: for non-integer labels or values that are neither
            a class in ``0..K-1`` nor in ``ignore``
    """
    name = _Namer(index, batched=False)
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise ShapeMismatchError(f"{name('labels')} has shape {lab.shape}; expected (H, W).", index=index)
    lab, valid = _prepare_labels(lab[None], num_classes, ignore, name)
    return lab[0], None if valid is None else valid[0]


def _as_compute_probs(p: np.ndarray, name: _Namer, raw_integers: bool = False) -> Tuple[np.ndarray, float]:
    """(B,K,H,W) probabilities in the computation dtype, and the sum tolerance."""
    dt = p.dtype
    if dt == np.float64 or dt == np.float32:
        return np.ascontiguousarray(p), 1e-3
    if raw_integers and _is_raw_integer(dt):
        return p.astype(np.float64), 1e-3
    if dt == np.float16:
        return p.astype(np.float32), 1e-2
    if dt == np.uint8:
        k = p.shape[1]
        sums = p.sum(axis=1, dtype=np.uint32)
        # round(p * 255) keeps each channel within 0.5 of the truth, so the sum
        # is 255 +- K/2; allow K for truncating quantisers.
        bad = (sums == 0) | (np.abs(sums.astype(np.int64) - 255) > k)
        if bad.any():
            b, h, w = np.argwhere(bad)[0]
            raise InvalidProbabilitiesError(
                f"{name('pred_probs', b)} is uint8 but its channels at pixel (row {h}, col "
                f"{w}) sum to {int(sums[b, h, w])}, not about 255. uint8 probabilities must "
                "be round(probability * 255); store floats otherwise.",
                index=name.position(b),
            )
        out = p.astype(np.float32)
        # a division, not a multiplication by 1 / sum: integers are exact in
        # float32, so each value is q / sum rounded once (the reciprocal
        # rounds twice, 1 ulp off for about a quarter of the values)
        out /= sums.astype(np.float32)[:, None]
        return out, 1e-3
    raise InvalidProbabilitiesError(
        f"{name('pred_probs')} has dtype {dt}; expected float16/32/64 probabilities or "
        "uint8 quantised probabilities (round(p * 255)).",
        index=name.position(0),
    )


def _row_bands(p: np.ndarray) -> Tuple[np.ndarray, int]:
    """A (B, K, 8, band, W) strided view of eight evenly spread row bands
    covering about 1/8 of the rows of a (B,K,H,W) array, without copying;
    plus the gap between band starts.

    Contiguous bands are cheaper to read than every 8th row (the hardware
    prefetcher follows them), at the same coverage.
    """
    b, k, h, w = p.shape
    gap, band = h // 8, max(1, h // 64)
    s_b, s_k, s_h, s_w = p.strides
    view = np.lib.stride_tricks.as_strided(
        p, shape=(b, k, 8, band, w), strides=(s_b, s_k, gap * s_h, s_h, s_w), writeable=False
    )
    return view, gap


def _first_bad_sum(p: np.ndarray, tol: float, full: bool):
    """Checks that per-pixel sums of (B,K,H,W) ``p`` are 1 within ``tol``
    (sampled rows unless ``full``).

    Returns None when they are (the fast path: one reduction over the sampled
    rows), else ``(flags, b, row, col)``: a (B,) bool of the images with a
    bad sum among the checked pixels, and the first such pixel.
    """
    sampled = not full and p.shape[2] >= 16
    sub, gap = _row_bands(p) if sampled else (p, 0)
    sums = sub.sum(axis=1, dtype=np.float64 if p.dtype == np.float64 else np.float32)
    sums -= 1
    np.abs(sums, out=sums)
    if sums.max() <= tol:  # NaN fails this too
        return None
    bad = ~(sums <= tol)
    pos = np.argwhere(bad)[0]
    b = int(pos[0])
    if sampled:
        row, w = int(pos[1]) * gap + int(pos[2]), int(pos[3])
    else:
        row, w = int(pos[1]), int(pos[2])
    return bad.reshape(len(bad), -1).any(axis=1), b, row, w


def _raise_bad_sum(p: np.ndarray, b: int, row: int, w: int, tol: float, name: _Namer) -> None:
    """Raises the error explaining why pixel (row, w) of image b does not sum to 1."""
    where = name("pred_probs", b)
    col = p[b, :, row, w]
    total = float(col.sum(dtype=np.float64))
    if not np.isfinite(col).all():
        raise InvalidProbabilitiesError(
            f"{where} holds NaN or infinite values (first at row {row}, col {w}). "
            "Check the model output that produced these probabilities.",
            index=name.position(b),
        )
    hint = (
        "These look like logits or unnormalised scores: apply a softmax over the "
        "class axis first (compute_label_quality(..., logits=True) does it)"
        if (col < 0).any() or total > 1 + 10 * tol
        else "Renormalise them over the class axis"
    )
    raise InvalidProbabilitiesError(
        f"{where}: class probabilities at pixel (row {row}, col {w}) sum to "
        f"{total:.6g}, expected 1 (+-{tol:g}). {hint}; if the array is laid out "
        "(H, W, K), transpose it to (K, H, W).",
        index=name.position(b),
    )


def _check_sums(p: np.ndarray, tol: float, name: _Namer, full: bool) -> None:
    """Raises if per-pixel sums of (B,K,H,W) ``p`` are not 1 (sampled rows)."""
    found = _first_bad_sum(p, tol, full)
    if found is not None:
        _raise_bad_sum(p, *found[1:], tol, name)


def _check_finite_nonnegative(p: np.ndarray, name: _Namer) -> None:
    """Raises for NaN, infinite or negative values anywhere in (B,K,H,W) ``p``:
    what unnormalised scores may not hold (one full pass, warning path only)."""
    flat = p.reshape(len(p), -1)
    lo, hi = flat.min(axis=1), flat.max(axis=1)  # NaN propagates into both
    bad = ~((lo >= 0) & np.isfinite(hi))
    if not bad.any():
        return
    b = int(np.argmax(bad))
    img = p[b]
    if not np.isfinite(lo[b]) or not np.isfinite(hi[b]):
        k, r, c = np.argwhere(~np.isfinite(img))[0]
        raise InvalidProbabilitiesError(
            f"{name('pred_probs', b)} holds NaN or infinite values (first at class {k}, "
            f"row {r}, col {c}). Check the model output that produced these scores.",
            index=name.position(b),
        )
    k, r, c = np.argwhere(img < 0)[0]
    raise InvalidProbabilitiesError(
        f"{name('pred_probs', b)} holds negative values (first {float(img[k, r, c]):.6g} at "
        f"class {k}, row {r}, col {c}). These look like logits: apply a softmax over the "
        "class axis first (compute_label_quality(..., logits=True) does it).",
        index=name.position(b),
    )


def _unnormalized_note(p: np.ndarray, flags: np.ndarray, tol: float, name: _Namer) -> str:
    """Where the first flagged image of (B,K,H,W) ``p`` does not sum to 1."""
    b = int(np.argmax(flags))
    # summed in the dtype the check sums in (_first_bad_sum), so a float32
    # sum that rounding pushed past 1 + tol is found here too
    sums = p[b].sum(axis=0, dtype=np.float64 if p.dtype == np.float64 else np.float32)
    off = np.argwhere(~(np.abs(sums - 1) <= tol))
    if off.size == 0:  # a safety net: every flag above has a pixel found here
        return f"{name('pred_probs', b)} does not sum to 1 over the classes"
    r, c = (int(v) for v in off[0])
    return (
        f"{name('pred_probs', b)}: class scores at pixel (row {r}, col {c}) sum to "
        f"{float(sums[r, c]):.6g}, not 1"
    )


def argmax_first(p: np.ndarray, pmax: np.ndarray, dtype: np.dtype, axis: int = 0) -> np.ndarray:
    """Index of the first maximum along ``axis`` (the class axis).

    Equivalent to ``p.argmax(axis)`` but about 3x faster for C-contiguous
    (K,H,W) or (B,K,H,W) input: numpy's argmax along a non-last axis walks a
    strided copy, while this does K vectorised compare/minimum passes.
    """
    dtype = np.dtype(dtype)
    k = p.shape[axis]
    shape = pmax.shape
    acc = np.full(shape, k, dtype=dtype)
    eq = np.empty(shape, dtype=bool)
    cand = np.empty(shape, dtype=dtype)
    mod = np.iinfo(dtype).max + 1
    lead = (slice(None),) * axis
    for c in range(k):
        np.equal(p[lead + (c,)], pmax, out=eq)
        # cand = c where eq else k, in wrapping unsigned arithmetic
        np.multiply(eq, dtype.type((c - k) % mod), out=cand, dtype=dtype)
        np.add(cand, dtype.type(k), out=cand)
        np.minimum(acc, cand, out=acc)
    return acc


def _argmax(p, pmax, scores, lab, valid, tol, dtype, normalized: bool = True, below=None) -> np.ndarray:
    """Argmax class of (B,K,H,W) ``p`` (first maximum on ties), computed only
    where it can differ from the label.

    Where the label's probability is the maximum (``s == pmax``) the argmax
    is the label, unless another class ties at the maximum; a tie needs two
    classes at ``s``, so ``2 s <= 1 + tol``. Every other pixel (and every
    ignored pixel) is a candidate. A confident model leaves few candidates,
    and gathering their K values beats K passes over the whole image; when
    more than a tenth of the pixels are candidates the dense path is used.
    Unnormalised scores (``normalized=False``) can tie above 1/2, so they
    always take the dense path. With ``below``, only valid pixels scoring
    below it are candidates, and every other pixel gets its label.
    """
    keep = None
    if below is not None:
        with np.errstate(invalid="ignore"):
            keep = scores < below  # the caller's own comparison; NaN (ignored) is False
    if not normalized:
        return _label_outside(argmax_first(p, pmax, dtype, axis=1), lab, keep)
    with np.errstate(invalid="ignore"):
        cand = (pmax > scores) | (scores * 2 <= 1 + tol)
    if valid is not None:
        cand |= ~valid
    if keep is not None:
        cand &= keep
    idx = np.flatnonzero(cand.reshape(-1))
    if idx.size * 10 > cand.size:
        return _label_outside(argmax_first(p, pmax, dtype, axis=1), lab, keep)
    n_img, k = p.shape[:2]
    hw = cand[0].size
    pred = lab.astype(dtype, order="C")  # written through flat views below
    if idx.size:
        flat = p.reshape(n_img, k, hw)
        for b in range(n_img):
            lo, hi = np.searchsorted(idx, [b * hw, (b + 1) * hw])
            if hi > lo:
                q = idx[lo:hi] - b * hw
                sub = flat[b][:, q]  # (K, n)
                pred[b].reshape(-1)[q] = argmax_first(sub, pmax[b].reshape(-1)[q], dtype)
    return pred


def _label_outside(pred: np.ndarray, lab: np.ndarray, keep: Optional[np.ndarray]) -> np.ndarray:
    """``pred`` with the label wherever ``keep`` is False (when given)."""
    if keep is not None:
        np.copyto(pred, lab, where=~keep, casting="unsafe")
    return pred


def pixel_evidence(
    labels: np.ndarray,
    pred_probs: np.ndarray,
    *,
    ignore: Tuple[int, ...] = (),
    with_argmax: bool = False,
    check_probs: str = "sample",
    index: Optional[int] = None,
    out: Optional[np.ndarray] = None,
    allow_unnormalized: bool = False,
    argmax_below: Optional[float] = None,
) -> PixelEvidence:
    """Self-confidence (and optionally argmax) of one image, validated.

    Also takes a batch of same-size images, (B,H,W) labels with (B,K,H,W)
    probabilities, in which case every returned array has a leading B axis
    and ``index`` is the position of the first image (fewer, larger numpy
    calls: faster for small images and with threads).

    Args:
        labels: (H,W) integer class indices
        pred_probs: (K,H,W) probabilities (float16/32/64 or uint8 quantised),
            or a :class:`~segqual_fo.core.resample.LowResProbs` (one image;
            see :func:`_resampled_evidence`)
        ignore (()): mask values to exclude (from
            :func:`segqual_fo.core._inputs.normalize_ignore_index`)
        with_argmax (False): also compute the argmax class and its probability
        check_probs ("sample"): "sample" (sums of 1/8 of the rows), "full"
            (every pixel's sum), or "none"
        index (None): the image's position, used in error messages
        out (None): optional array shaped like ``labels``, of the computation
            dtype, to receive the pixel scores (saves a copy when filling a
            stacked result)
        allow_unnormalized (False): accept finite, non-negative scores that
            do not sum to 1 (and integer scores), used as given and flagged
            in ``unnormalized``, instead of raising
        argmax_below (None): with ``with_argmax``, compute the argmax only
            at the valid pixels whose score is below this (``s <
            argmax_below``, compared as the caller compares); elsewhere
            ``pred`` is the label and ``pred_prob`` is unspecified. For
            callers that read the argmax of low-score pixels only (softmin
            issues), it spares the argmax of the uncertain rest

    Returns:
        a :class:`PixelEvidence`

    Raises:
        ShapeMismatchError, InvalidLabelsError, InvalidProbabilitiesError
    """
    if check_probs not in CHECK_PROBS_MODES:
        raise InvalidInputError(f"check_probs must be one of {CHECK_PROBS_MODES}, got {check_probs!r}.")
    if isinstance(pred_probs, LowResProbs):
        return _resampled_evidence(
            labels,
            pred_probs,
            ignore=ignore,
            with_argmax=with_argmax,
            check_probs=check_probs,
            index=index,
            out=out,
            argmax_below=argmax_below,
        )
    lab = np.asarray(labels)
    p = np.asarray(pred_probs)
    batched = lab.ndim == 3
    name = _Namer(index, batched)
    if not batched:
        if lab.ndim != 2:
            raise ShapeMismatchError(f"{name('labels')} has shape {lab.shape}; expected (H, W).", index=index)
        if p.ndim != 3:
            raise ShapeMismatchError(
                f"{name('pred_probs')} has shape {p.shape}; expected (K, H, W).", index=index
            )
        lab, p = lab[None], p[None]
    elif p.ndim != 4 or p.shape[0] != lab.shape[0]:
        raise ShapeMismatchError(
            f"a batch of labels {lab.shape} needs pred_probs (B, K, H, W); got {p.shape}.",
            index=index,
        )
    if p.shape[2:] != lab.shape[1:]:
        hw = lab.shape[1:]
        hint = ""
        if p.shape[1:3] == hw:
            hint = " It looks like (H, W, K): transpose it to (K, H, W)."
        elif p.shape[2] and p.shape[3] and hw[0] % p.shape[2] == 0 and hw[1] % p.shape[3] == 0:
            hint = (
                " The model output looks lower-resolution: pass LowResProbs(probs, "
                f"({hw[0]}, {hw[1]})) from segqual_fo.core, which reads it at the mask's size."
            )
        raise ShapeMismatchError(
            f"{name('pred_probs')} has shape {p.shape[1:]} but {name('labels')} is {hw}; "
            f"expected (K, {hw[0]}, {hw[1]}).{hint}",
            index=index,
        )
    num_classes = p.shape[1]
    if num_classes < 1:
        raise ShapeMismatchError(f"{name('pred_probs')} has no class channels.", index=index)
    lab, valid = _prepare_labels(lab, num_classes, ignore, name)
    p, tol = _as_compute_probs(p, name, raw_integers=allow_unnormalized)

    n_img, h, w = lab.shape
    hw = h * w
    flat_index = np.multiply(lab.reshape(n_img, hw), hw, dtype=np.intp)
    flat_index += _flat_offsets(n_img, num_classes, hw)
    if out is not None and not batched:
        out = out[None]
    if out is None or out.dtype != p.dtype or out.shape != lab.shape or not out.flags.c_contiguous:
        out = np.empty(lab.shape, dtype=p.dtype)
    scores = out
    # p is C-contiguous here and every index is in range (labels validated):
    # mode="clip" skips numpy's per-element bounds error path (~40% faster)
    np.take(p.reshape(-1), flat_index, out=scores.reshape(n_img, hw), mode="clip")
    if valid is not None:
        np.copyto(scores, 1, where=~valid)
    smin, smax = scores.min(), scores.max()
    unnormalized = None  # (B,) flags once an image is found not to sum to 1
    if not (smin >= 0 and smax <= 1 + tol):
        per_img = scores.reshape(n_img, -1)
        if allow_unnormalized and smin >= 0 and np.isfinite(smax):
            # finite, non-negative, some above 1: unnormalised scores
            unnormalized = per_img.max(axis=1) > 1 + tol
        else:
            # NaN/inf, negative, or above 1: find the image, let the full
            # checks say what is wrong and where, else a plain message
            lo, hi = per_img.min(axis=1), per_img.max(axis=1)
            # raw scores above 1 are allowed: only NaN/inf/negative name the image
            bad = ~((lo >= 0) & (np.isfinite(hi) if allow_unnormalized else hi <= 1 + tol))
            b = int(np.argmax(bad))
            if allow_unnormalized:  # sums are no evidence here: look for the bad value
                _check_finite_nonnegative(p[b : b + 1], _Namer(name.position(b), False))
            if check_probs != "none":
                _check_sums(p[b : b + 1], tol, _Namer(name.position(b), False), full=True)
            raise InvalidProbabilitiesError(
                f"{name('pred_probs', b)} has self-confidence values outside [0, 1] (min "
                f"{per_img[b].min():.6g}, max {per_img[b].max():.6g}): probabilities must be "
                "softmax outputs.",
                index=name.position(b),
            )
    if check_probs != "none":
        found = _first_bad_sum(p, tol, full=check_probs == "full")
        if found is not None:
            if not allow_unnormalized:
                _raise_bad_sum(p, *found[1:], tol, name)
            unnormalized = found[0] if unnormalized is None else unnormalized | found[0]
        if unnormalized is not None:
            _check_finite_nonnegative(p, name)
    if valid is not None:
        scores[~valid] = np.nan

    ev = PixelEvidence(pixel_scores=scores, labels=lab, valid=valid, probs=p)
    if unnormalized is not None:
        ev.unnormalized = unnormalized
        ev.unnormalized_note = _unnormalized_note(p, unnormalized, tol, name)
    if with_argmax:
        pmax = p.max(axis=1)
        if np.isnan(pmax).any():
            b, r, c = np.argwhere(np.isnan(pmax))[0]
            raise InvalidProbabilitiesError(
                f"{name('pred_probs', b)} holds NaN values (first at row {r}, col {c}).",
                index=name.position(b),
            )
        ev.pred = _argmax(
            p,
            pmax,
            scores,
            lab,
            valid,
            tol,
            class_dtype(num_classes),
            normalized=unnormalized is None,
            below=argmax_below,
        )
        ev.pred_prob = pmax
    if not batched:
        ev = PixelEvidence(
            pixel_scores=ev.pixel_scores[0],
            labels=ev.labels[0],
            valid=None if ev.valid is None else ev.valid[0],
            pred=None if ev.pred is None else ev.pred[0],
            pred_prob=None if ev.pred_prob is None else ev.pred_prob[0],
            probs=ev.probs[0],
            unnormalized=None if unnormalized is None else unnormalized[0],
            unnormalized_note=ev.unnormalized_note,
        )
    return ev


def _resampled_evidence(
    labels: np.ndarray,
    probs: LowResProbs,
    *,
    ignore: Tuple[int, ...],
    with_argmax: bool,
    check_probs: str,
    index: Optional[int],
    out: Optional[np.ndarray],
    argmax_below: Optional[float] = None,
) -> PixelEvidence:
    """:func:`pixel_evidence` of one image whose probabilities are stored at
    another resolution: the same evidence as ``probs.dense()`` would give
    (bit for bit), without the K x H x W array.

    What each output needs, and gets:

    - ``pixel_scores``: one value per pixel, its own class's
      (:meth:`LowResProbs.gather`: 8 reads per pixel, whatever K is).
    - ``pred`` (the argmax): interpolated vectors are normalised (to float
      rounding, far below the sum tolerance ``tol``), so another class
      reaches the label's value ``s`` only where ``2 s <= 1 + tol``. Those
      pixels, and the ignored ones, are the candidates the dense path uses
      too (its extra ``pmax > s`` test cannot fire without ``2 s <= 1 +
      tol`` on normalised input); :meth:`LowResProbs.argmax_at` gives
      their argmax and maximum, equal to those of their K values from
      :meth:`LowResProbs.at`, computing only the classes that can reach the
      maximum (most candidates need none: their label's value provably
      is). Everywhere else the argmax is the label. With ``argmax_below``,
      only candidates scoring below it are read.
    - ``pred_prob``: the dense path's ``pmax`` at every pixel: computed at
      the candidates, and equal to ``s`` elsewhere (the label's value is the
      maximum there). Consumers read it only where ``pred != label``
      (:meth:`~segqual_fo.core.issues.IssueFinder.scan`'s cache).
    - ``probs``: the :class:`LowResProbs` itself; the issue count with
      ``downsample > 1`` averages blocks of it strip by strip
      (:func:`~segqual_fo.core.issues.block_mean_probs`).

    Validation is the stored array's (:meth:`LowResProbs.validate`, every
    stored pixel: cheaper than sampling at full resolution). Scores that do
    not sum to 1 are refused whatever ``allow_unnormalized`` says: the
    interpolated values are renormalised by definition, so such input can
    only be logits or a wrong layout, not scores to use as given.
    """
    name = _Namer(index, batched=False)
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise ShapeMismatchError(
            f"{name('labels')} has shape {lab.shape}; expected (H, W) (LowResProbs scores one image at a time).",
            index=index,
        )
    num_classes, h, w = probs.shape
    if lab.shape != (h, w):
        raise ShapeMismatchError(
            f"{name('pred_probs')} is read at {h}x{w} but {name('labels')} is {lab.shape[0]}x{lab.shape[1]}; "
            "build the LowResProbs with the label mask's shape.",
            index=index,
        )
    lab, valid = _prepare_labels(lab[None], num_classes, ignore, name)
    lab, valid = lab[0], None if valid is None else valid[0]
    probs.validate(name("pred_probs"), check_sums=check_probs != "none", index=index)
    tol = probs.sum_tolerance
    scores = probs._gather(lab, out)
    if valid is not None:
        np.copyto(scores, 1, where=~valid)
    smin, smax = scores.min(), scores.max()
    if not (smin >= 0 and smax <= 1 + tol):
        # validated values give [0, 1] by construction; this is reachable
        # only with check_probs="none" (a stored sum of 0 gives 0/0)
        raise InvalidProbabilitiesError(
            f"{name('pred_probs')} has self-confidence values outside [0, 1] (min {smin:.6g}, max "
            f"{smax:.6g}): probabilities must be softmax outputs.",
            index=index,
        )
    if valid is not None:
        scores[~valid] = np.nan
    ev = PixelEvidence(pixel_scores=scores, labels=lab, valid=valid, probs=probs)
    if with_argmax:
        dtype = class_dtype(num_classes)
        with np.errstate(invalid="ignore"):
            cand = scores * 2 <= 1 + tol
        if valid is not None:
            cand |= ~valid
        if argmax_below is not None:
            with np.errstate(invalid="ignore"):
                cand &= scores < argmax_below
        idx = np.flatnonzero(cand.reshape(-1))
        pred = lab.astype(dtype, order="C")  # written through flat views below
        pmax = scores.copy()
        if idx.size:
            # the classes that cannot be the maximum are skipped (validated
            # values are finite, as argmax_at needs); the label's value is
            # the gathered score (NaN where ignored: no shortcut there)
            arg, m = probs.argmax_at(idx, dtype, labels=lab.reshape(-1)[idx], scores=scores.reshape(-1)[idx])
            if np.isnan(m).any():
                r, c = divmod(int(idx[np.argmax(np.isnan(m))]), w)
                raise InvalidProbabilitiesError(
                    f"{name('pred_probs')} holds NaN values (first at row {r}, col {c}).", index=index
                )
            pred.reshape(-1)[idx] = arg
            pmax.reshape(-1)[idx] = m
        ev.pred, ev.pred_prob = pred, pmax
    return ev
