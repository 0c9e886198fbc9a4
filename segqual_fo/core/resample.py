"""Probabilities at the model's resolution, interpolated to the mask on demand.

Legend: K classes; h x w the stored (model) resolution; H x W the label
mask's resolution.

Why one module of this size: gather, at, argmax_at and dense must evaluate
the same float expression on the same taps to stay bit-identical, and the
pruning bound of argmax_at rests on that expression; split apart, a change
to one would silently break the others' equality.

Segmentation models output class scores at a stride of 4 or 8, and the
label mask is full size. Resizing every one of the K channels to H x W
(what ``cv2.resize`` on the whole array does) costs K x H x W values per
image, 160 MB at 1024x2048 with K=19, while a pixel's self-confidence needs
one channel. :class:`LowResProbs` holds the (K,h,w) array as stored and
computes interpolated values only where they are asked for:

- :meth:`LowResProbs.gather`: the value of each pixel's own class (4 reads
  of that channel and an interpolated sum per pixel, independent of K);
- :meth:`LowResProbs.at`: all K values at chosen pixels;
- :meth:`LowResProbs.argmax_at`: the largest value and its class at chosen
  pixels (the argmax), computing only the classes that can be the largest;
- :meth:`LowResProbs.dense`: the whole (K,H,W) array, the reference.

All of them evaluate the same float expression, so their values are
bit-identical: scores computed through :meth:`gather` equal scores computed
from :meth:`dense` fed to the same functions as a plain array.

# Algorithm
Geometry is OpenCV's ``INTER_LINEAR`` (half-pixel centres, edge clamped):
output column x samples the stored row at ``sx = (x + 0.5) * w / W - 0.5``
(in float64); ``x0 = floor(sx)``, ``fx = sx - x0``; ``sx < 0`` gives
``x0 = 0, fx = 0`` and ``x0 >= w - 1`` gives ``x0 = w - 1, fx = 0``;
``x1 = min(x0 + 1, w - 1)``. Rows the same. The weights ``1 - fx`` and
``fx`` are computed in float64 and rounded once to the computation dtype.
With ``a, b, c, d`` the stored values at (y0,x0), (y0,x1), (y1,x0), (y1,x1):

    top = a * (1 - fx) + b * fx
    bot = c * (1 - fx) + d * fx
    interp = top * (1 - fy) + bot * fy        (each operation rounded)

The value of class k at a pixel is ``interp(p_k) / interp(S)``, where
``S[y, x] = sum_k p[k, y, x]`` is the stored per-pixel sum. That is the
bilinear resize renormalised per pixel, as before: interpolation is linear,
so ``interp(S) = sum_k interp(p_k)`` exactly in real arithmetic, and the
renormalisation of every full-resolution pixel needs only one interpolated
sum, not K channels. uint8 probabilities (``round(p * 255)``) use the raw
integers: the 1/255 cancels in the ratio. The ratio of two interpolations
with non-negative weights of values ``0 <= p_k <= S`` is in [0, 1] (the
rounded operations are monotone), and a one-hot pixel gives exactly 1.

Compared with ``cv2.resize`` followed by a renormalisation (the previous
definition) the values differ by about 1e-7: OpenCV rounds its source
coordinates and weights to float32 and renormalises with the sum of the
resized channels.

Dtype policy: float64 probabilities are computed in float64, everything
else (float32, float16, uint8) in float32; the stored sums are accumulated
in float64 (uint32 for uint8) and rounded once.

Memory: the stored array is kept in the computation dtype (K x h x w), plus
the horizontally interpolated sums (h x W). :meth:`gather`, :meth:`at` and
:meth:`argmax_at` work in strips, so their temporaries are a few arrays of a
strip's size; only :meth:`dense` (by design) returns K x H x W values.

Validation (:meth:`LowResProbs.validate`) checks the stored values, where
they live: finite, non-negative, per-pixel sums of 1 (within 1e-3; 1e-2 for
float16; 255 +- K for uint8), on every stored pixel (it is cheap at model
resolution). The interpolated values are then normalised by construction.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt

from segqual_fo.errors import InvalidLabelsError, InvalidProbabilitiesError, ShapeMismatchError

_SUPPORTED = (np.dtype(np.uint8), np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
# Pixels per strip of gather() and per chunk of at() (values per chunk for
# at(): K x pixels). Small enough for the temporaries to stay in cache.
_STRIP_PIXELS = 1 << 16
_CHUNK_VALUES = 1 << 20
# argmax_at: a class is skipped when its largest corner value is this much
# (relatively) below another class's smallest one, far above the 6 float
# roundings between the corners and a value; and only where the leading
# value is above these floors (relative to the largest stored sum, and
# absolute), so that no value involved is near the float range's bottom.
_PRUNE_MARGIN = 2.0**-16
_PRUNE_FLOOR_REL = 2.0**-60
_PRUNE_FLOOR_ABS = 2.0**-100


def _axis_taps(n_in: int, n_out: int, dtype: np.dtype):
    """Source indices and weights along one axis (OpenCV's INTER_LINEAR).

    Returns ``(i0, i1, w0, w1)``: (n_out,) intp indices of the two source
    samples and their weights ``1 - f`` and ``f`` in ``dtype``.
    """
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * n_in / n_out - 0.5
    i0 = np.floor(src)
    frac = src - i0
    low = src < 0
    high = i0 >= n_in - 1
    i0[low] = 0
    frac[low] = 0
    i0[high] = n_in - 1
    frac[high] = 0
    i0 = i0.astype(np.intp)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (1.0 - frac).astype(dtype), frac.astype(dtype)


class LowResProbs:
    """One image's (K,h,w) class probabilities, read as (K,H,W) (see the
    module docs for the definition of the interpolated values).

    Behaves like a (K,H,W) array where the library needs it to: ``shape``,
    ``ndim``, ``dtype`` (the computation dtype) and ``np.asarray`` (which
    calls :meth:`dense`, correct but K x H x W in memory; the scoring
    functions never do). Plain attributes only, so it pickles (Dask).

    Args:
        probs: (K,h,w) probabilities as stored: float16/32/64, or uint8
            quantised as ``round(p * 255)``. Logits must be softmaxed first
            (at the stored resolution, as :func:`~segqual_fo.adapters.probs.to_class_first`
            does).
        shape: the target (H, W), usually the label mask's

    Raises:
        ShapeMismatchError: for a probability array that is not (K,h,w) with
            K, h, w >= 1, or a target that is not two positive ints
        InvalidProbabilitiesError: for another dtype

    Example::

        >>> import numpy as np
        >>> p = np.array([[[0.2, 0.6]], [[0.8, 0.4]]])  # K=2, 1x2
        >>> lr = LowResProbs(p, (1, 4))
        >>> lr.shape
        (2, 1, 4)
        >>> lr.gather(np.array([[0, 0, 1, 1]])).round(6).tolist()
        [[0.2, 0.3, 0.5, 0.4]]
    """

    def __init__(self, probs: npt.ArrayLike, shape: Sequence[int]):
        p = np.asarray(probs)
        if p.ndim != 3 or min(p.shape) < 1:
            raise ShapeMismatchError(f"LowResProbs needs (K, h, w) probabilities; got shape {p.shape}.")
        try:
            out_h, out_w = (int(v) for v in shape)
        except (TypeError, ValueError):
            raise ShapeMismatchError(f"LowResProbs needs a target shape (H, W); got {shape!r}.") from None
        if out_h < 1 or out_w < 1:
            raise ShapeMismatchError(f"LowResProbs needs a positive target shape (H, W); got {shape!r}.")
        if p.dtype not in _SUPPORTED:
            raise InvalidProbabilitiesError(
                f"LowResProbs takes float16/32/64 probabilities or uint8 quantised ones "
                f"(round(p * 255)); got dtype {p.dtype}."
            )
        k, h, w = p.shape
        self.stored_dtype = p.dtype
        self.dtype = np.dtype(np.float64 if p.dtype == np.float64 else np.float32)
        self.stored_shape = (h, w)
        self.shape = (k, out_h, out_w)
        # the stored values in the computation dtype, C-contiguous
        self.values = np.ascontiguousarray(p, dtype=self.dtype)
        if p.dtype == np.uint8:
            sums = p.sum(axis=0, dtype=np.uint32)
        else:
            sums = self.values.sum(axis=0, dtype=np.float64)
        #: (h,w) stored per-pixel sums (uint32 for uint8, else float64): what
        #: validate() checks
        self.stored_sums = sums
        self.rows = _axis_taps(h, out_h, self.dtype)
        self.cols = _axis_taps(w, out_w, self.dtype)
        x0, x1, wx0, wx1 = self.cols
        s = sums.astype(self.dtype)
        #: (h,W) the sums interpolated along rows: ``top``/``bot`` of S. C
        #: order: ``s[:, x0]`` comes out column-major, which made every row
        #: read of it a strided one
        rs = s.take(x0, axis=1)
        rs *= wx0
        rs += s.take(x1, axis=1) * wx1
        self.row_sums = rs

    # -- array-like surface ------------------------------------------------
    @property
    def num_classes(self) -> int:
        return self.shape[0]

    @property
    def ndim(self) -> int:
        return 3

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __array__(self, dtype=None, copy=None):
        out = self.dense()
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        k, h, w = self.shape
        return (
            f"LowResProbs(K={k}, stored {self.stored_shape[0]}x{self.stored_shape[1]} "
            f"{self.stored_dtype}, read as {h}x{w} {self.dtype})"
        )

    # -- validation ----------------------------------------------------------
    @property
    def sum_tolerance(self) -> float:
        """Tolerance of the stored per-pixel sums (and of the argmax
        candidates, see :func:`~segqual_fo.core.pixel.pixel_evidence`)."""
        return 1e-2 if self.stored_dtype == np.float16 else 1e-3

    def validate(self, where: str = "pred_probs", *, check_sums: bool = True, index: Optional[int] = None) -> None:
        """Checks the stored values: finite, non-negative, and (``check_sums``)
        per-pixel sums of 1. uint8 sums are always checked (a zero sum has no
        renormalisation), like the full-resolution path does.

        Args:
            where ("pred_probs"): how to name the array in messages
            check_sums (True): check float sums too
            index (None): the image's position, for the error

        Raises:
            InvalidProbabilitiesError: naming the first bad stored pixel
        """
        k, h, w = self.values.shape
        at_res = f"at the stored {h}x{w} resolution"
        if self.stored_dtype == np.uint8:
            sums = self.stored_sums
            bad = (sums == 0) | (np.abs(sums.astype(np.int64) - 255) > k)
            if bad.any():
                r, c = np.argwhere(bad)[0]
                raise InvalidProbabilitiesError(
                    f"{where} is uint8 but its channels at pixel (row {r}, col {c}, {at_res}) "
                    f"sum to {int(sums[r, c])}, not about 255. uint8 probabilities must be "
                    "round(probability * 255); store floats otherwise.",
                    index=index,
                )
            return
        v = self.values
        lo, hi = v.min(), v.max()  # NaN propagates into both
        if not (np.isfinite(lo) and np.isfinite(hi)):
            kk, r, c = np.argwhere(~np.isfinite(v))[0]
            raise InvalidProbabilitiesError(
                f"{where} holds NaN or infinite values (first at class {kk}, row {r}, col {c}, "
                f"{at_res}). Check the model output that produced these probabilities.",
                index=index,
            )
        if lo < 0:
            kk, r, c = np.argwhere(v < 0)[0]
            raise InvalidProbabilitiesError(
                f"{where} holds negative values (first {float(v[kk, r, c]):.6g} at class {kk}, "
                f"row {r}, col {c}, {at_res}). These look like logits: apply a softmax over "
                "the class axis first (compute_label_quality(..., logits=True) does it).",
                index=index,
            )
        if not check_sums:
            return
        tol = self.sum_tolerance
        off = np.abs(self.stored_sums - 1)
        if off.max() > tol:
            r, c = np.argwhere(off > tol)[0]
            total = float(self.stored_sums[r, c])
            hint = (
                "These look like logits or unnormalised scores: apply a softmax over the "
                "class axis first (compute_label_quality(..., logits=True) does it)"
                if total > 1 + 10 * tol
                else "Renormalise them over the class axis"
            )
            raise InvalidProbabilitiesError(
                f"{where}: class probabilities at pixel (row {r}, col {c}, {at_res}) sum to "
                f"{total:.6g}, expected 1 (+-{tol:g}). {hint}; if the array is laid out "
                "(h, w, K), transpose it to (K, h, w).",
                index=index,
            )

    # -- values ----------------------------------------------------------------
    @property
    def chunk_pixels(self) -> int:
        """Pixels whose K values are read at once (by :meth:`at`, and by
        callers that loop over pixels): K x this is at most a quarter of the
        image's area (and 2**20) values, so the temporaries of a chunk stay
        within a few (H,W) arrays whatever K is."""
        k, out_h, out_w = self.shape
        return max(1, min(_CHUNK_VALUES, max(out_h * out_w // 4, 4096)) // k)

    def _den(self, ys: np.ndarray, xs=slice(None)) -> np.ndarray:
        """Interpolated sums at rows ``ys`` (and columns ``xs``, or all)."""
        y0, y1, wy0, wy1 = self.rows
        rs = self.row_sums
        if isinstance(xs, slice):
            return rs[y0[ys]] * wy0[ys, None] + rs[y1[ys]] * wy1[ys, None]
        return rs[y0[ys], xs] * wy0[ys] + rs[y1[ys], xs] * wy1[ys]

    def _den_at(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """``_den(ys, xs)`` read through flat indices (the same values; two
        index arrays into a 2-D array are several times slower)."""
        y0, y1, wy0, wy1 = self.rows
        rs = self.row_sums.reshape(-1)
        out_w = self.shape[2]
        top = rs.take(y0[ys] * out_w + xs)
        top *= wy0[ys]
        bot = rs.take(y1[ys] * out_w + xs)
        bot *= wy1[ys]
        top += bot
        return top

    def gather(self, labels: npt.ArrayLike, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Each pixel's value of its own class: ``dense()[labels[y, x], y, x]``
        without the other K - 1 channels.

        Args:
            labels: (H,W) class indices in ``0..K-1`` (ignored pixels must be
                mapped to a class first, as
                :func:`~segqual_fo.core.pixel.prepare_labels` does)
            out (None): (H,W) C-contiguous array of the computation dtype to
                fill

        Returns:
            (H,W) values in the computation dtype

        Raises:
            ShapeMismatchError, InvalidLabelsError
        """
        k, out_h, out_w = self.shape
        lab = np.asarray(labels)
        if lab.shape != (out_h, out_w):
            raise ShapeMismatchError(f"labels have shape {lab.shape}; this LowResProbs reads as {(out_h, out_w)}.")
        if lab.size and (lab.min() < 0 or lab.max() >= k):
            raise InvalidLabelsError(f"labels hold values outside the classes 0..{k - 1}.")
        return self._gather(lab, out)

    def _gather(self, lab: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
        """:meth:`gather` on labels known to be in range."""
        k, out_h, out_w = self.shape
        h, w = self.stored_shape
        if out is None or out.shape != (out_h, out_w) or out.dtype != self.dtype or not out.flags.c_contiguous:
            out = np.empty((out_h, out_w), dtype=self.dtype)
        flat = self.values.reshape(-1)
        y0, y1, wy0, wy1 = self.rows
        x0, x1, wx0, wx1 = self.cols
        rs = self.row_sums
        dx = x1 - x0  # 0 or 1
        dy = (y1 - y0) * w
        step = max(1, _STRIP_PIXELS // out_w)
        # one set of strip buffers, reused (fresh temporaries of this size
        # cost page faults on every strip)
        n = min(step, out_h) * out_w
        buf_i, buf_j = np.empty(n, np.intp), np.empty(n, np.intp)
        buf_a, buf_b, buf_c = (np.empty(n, self.dtype) for _ in range(3))
        for r0 in range(0, out_h, step):
            r1 = min(r0 + step, out_h)
            ys = slice(r0, r1)
            shape = (r1 - r0, out_w)
            m = shape[0] * out_w
            i, j = buf_i[:m].reshape(shape), buf_j[:m].reshape(shape)
            a, b, c = (x[:m].reshape(shape) for x in (buf_a, buf_b, buf_c))
            np.multiply(lab[ys], h * w, out=i, dtype=np.intp)
            i += (y0[ys] * w)[:, None]
            i += x0
            np.add(i, dx, out=j)
            # labels are in range, so every index is: mode="clip" skips
            # numpy's bounds-error path
            np.take(flat, i, out=a, mode="clip")  # top = a (1 - fx) + b fx
            a *= wx0
            np.take(flat, j, out=b, mode="clip")
            b *= wx1
            a += b
            i += dy[ys, None]
            j += dy[ys, None]
            np.take(flat, i, out=b, mode="clip")  # bot = c (1 - fx) + d fx
            b *= wx0
            np.take(flat, j, out=c, mode="clip")
            c *= wx1
            b += c
            a *= wy0[ys, None]  # top (1 - fy) + bot fy
            b *= wy1[ys, None]
            a += b
            # the same for S; rows taken into the strip buffers, not fancy
            # indexed (rs[y0[ys]] made two fresh strip-sized arrays)
            np.take(rs, y0[ys], axis=0, out=b, mode="clip")
            b *= wy0[ys, None]
            np.take(rs, y1[ys], axis=0, out=c, mode="clip")
            c *= wy1[ys, None]
            b += c
            with np.errstate(invalid="ignore", divide="ignore"):  # 0/0: unvalidated zero sums
                np.divide(a, b, out=out[ys])
        return out

    def at(self, pixels: npt.ArrayLike) -> np.ndarray:
        """All K values at some pixels: ``dense().reshape(K, -1)[:, pixels]``.

        Args:
            pixels: flat (row-major) indices into the (H,W) grid

        Returns:
            (K, n) values in the computation dtype

        Raises:
            InvalidInputError: for an index outside the grid
        """
        k, out_h, out_w = self.shape
        idx = self._pixel_indices(pixels)
        h, w = self.stored_shape
        y0, y1, wy0, wy1 = self.rows
        x0, x1, wx0, wx1 = self.cols
        flat = self.values.reshape(k, h * w)
        out = np.empty((k, idx.size), dtype=self.dtype)
        step = self.chunk_pixels
        for c0 in range(0, idx.size, step):
            ys, xs = np.divmod(idx[c0 : c0 + step], out_w)
            r0, r1 = y0[ys] * w, y1[ys] * w
            a, b = x0[xs], x1[xs]
            u0, u1 = wx0[xs], wx1[xs]
            top = flat.take(r0 + a, axis=1) * u0
            top += flat.take(r0 + b, axis=1) * u1
            bot = flat.take(r1 + a, axis=1) * u0
            bot += flat.take(r1 + b, axis=1) * u1
            top *= wy0[ys]
            bot *= wy1[ys]
            top += bot
            with np.errstate(invalid="ignore", divide="ignore"):
                np.divide(top, self._den(ys, xs), out=out[:, c0 : c0 + top.shape[1]])
        return out

    def _pixel_indices(self, pixels: npt.ArrayLike) -> np.ndarray:
        """Flat pixel indices, checked (see :meth:`at`)."""
        k, out_h, out_w = self.shape
        idx = np.asarray(pixels).reshape(-1)
        if idx.dtype.kind not in "iu":
            raise ShapeMismatchError(f"pixel indices must be integers; got dtype {idx.dtype}.")
        if idx.size and (idx.min() < 0 or idx.max() >= out_h * out_w):
            raise ShapeMismatchError(f"pixel indices must be in 0..{out_h * out_w - 1} (an {out_h}x{out_w} grid).")
        return idx

    def argmax_at(
        self,
        pixels: npt.ArrayLike,
        dtype: npt.DTypeLike = np.intp,
        *,
        labels: Optional[np.ndarray] = None,
        scores: Optional[np.ndarray] = None,
    ) -> Tuple[np.ndarray, np.ndarray]:
        """The largest of the K values at some pixels and its class (the
        first one on ties), computing only the classes that can be it.

        Bit for bit ``(v.argmax(axis=0), v.max(axis=0))`` for ``v =
        self.at(pixels)``, on finite stored values (what :meth:`validate`
        lets through); a pixel whose interpolated sum is 0 has NaN for every
        class, and gets a NaN maximum and an unspecified class.

        # Algorithm
        A pixel's value of class c is ``N_c / D``: ``N_c`` is a weighted
        mean of the stored ``p_c`` at the four corners of the pixel's stored
        cell, ``D`` the same of the stored sums, shared by every class. So
        ``N_c`` lies between the smallest and the largest corner value,
        ``lo_c`` and ``hi_c``, to float rounding (6 roundings of at most
        2**-24 each, and weights that sum to 1 within 2**-24). Two bounds
        follow, each with a relative margin of 2**-16, far above that
        rounding, and each used only where the values involved are far from
        the bottom of the float range (above ``max stored sum * 2**-60`` and
        ``2**-100``; a zero sum, which gives NaN, never qualifies):

        - the label's own value ``s`` (``labels``/``scores`` given): when
          every other class has ``hi_c (1 + 2**-16) < s D (1 - 2**-16)``,
          their values stay strictly below ``s`` after the shared division
          and its rounding, so the maximum is ``s`` and its class the label,
          and nothing else is computed (most low-confidence pixels: the
          model is unsure, not wrong);
        - otherwise, with ``L = max_c lo_c``: a class with ``hi_c (1 +
          2**-16) < L (1 - 2**-16)`` stays strictly below the class that
          reaches ``L``, so it can be neither the maximum nor tie with it.
          The other classes ("live": 2 to 4 of 19 per cell on the
          benchmark) are computed by the same float operations as
          :meth:`at` and compared in class order with ``>``, so the first
          maximum wins as in ``argmax``.

        Args:
            pixels: flat (row-major) indices into the (H,W) grid
            dtype (intp): the class dtype to return
            labels (None): each pixel's label class, with ``scores``
            scores (None): each pixel's value of its label class
                (:meth:`gather`'s); NaN where unknown (e.g. ignored pixels)

        Returns:
            ``(pred, pmax)``: (n,) classes in ``dtype`` and (n,) maxima in
            the computation dtype

        Raises:
            ShapeMismatchError: for an index outside the grid
        """
        idx = self._pixel_indices(pixels)
        k, out_h, out_w = self.shape
        h, w = self.stored_shape
        x0 = self.cols[0]
        y0 = self.rows[0]
        one = self.dtype.type
        up, down = one(1 + _PRUNE_MARGIN), one(1 - _PRUNE_MARGIN)
        floor = one(max(float(self.stored_sums.max()) * _PRUNE_FLOOR_REL, _PRUNE_FLOOR_ABS))
        by_class = self.values.reshape(k, h * w)
        pred = np.empty(idx.size, dtype=dtype)
        pmax = np.empty(idx.size, dtype=self.dtype)
        step = self.chunk_pixels
        for c0 in range(0, idx.size, step):
            q = idx[c0 : c0 + step]
            ys, xs = np.divmod(q, out_w)
            cell = y0.take(ys)
            cell *= w
            cell += x0.take(xs)  # the top-left corner of each pixel's stored cell
            # the chunk's distinct cells (q is usually sorted: a band of rows)
            first_cell = int(cell.min())
            local = cell - first_cell
            seen = np.zeros(int(local.max()) + 1, dtype=bool)
            seen[local] = True
            cells = np.flatnonzero(seen)
            slot = np.empty(seen.size, dtype=np.intp)
            slot[cells] = np.arange(cells.size)
            slot = slot.take(local)  # each pixel's cell among the distinct ones
            cells += first_cell
            cy, cx = np.divmod(cells, w)
            right = cells + (cx < w - 1)  # x1 = min(x0 + 1, w - 1)
            below = (cy < h - 1) * w
            corner = by_class.take(cells, axis=1)  # (K, cells)
            lo, hi = corner.copy(), corner
            for where in (right, cells + below, right + below):
                corner = by_class.take(where, axis=1)
                np.minimum(lo, corner, out=lo)
                np.maximum(hi, corner, out=hi)
            hi *= up
            den = self._den_at(ys, xs)
            rest = slice(None)
            if labels is not None:
                lab = np.asarray(labels).reshape(-1)[c0 : c0 + step]
                s = np.asarray(scores).reshape(-1)[c0 : c0 + step]
                # the largest hi of a class other than the label, per pixel:
                # the cell's largest, or its second largest where the label
                # holds the largest
                top_class = hi.argmax(axis=0)
                top = hi.max(axis=0)
                hi[top_class, np.arange(cells.size)] = -1
                second = hi.max(axis=0)
                hi[top_class, np.arange(cells.size)] = top
                other = np.where(top_class.take(slot) == lab, second.take(slot), top.take(slot))
                with np.errstate(invalid="ignore"):
                    bound = s * den
                    settled = (bound > floor) & (other < bound * down)
                rest = np.flatnonzero(~settled)
                out = c0 + np.flatnonzero(settled)
                pred[out] = lab[settled]
                pmax[out] = s[settled]
            lead = lo.max(axis=0)
            live = hi >= lead * down  # (K, cells)
            live[:, ~(lead > floor)] = True
            got_pred, got_max = self._max_over(live, q[rest], slot[rest], cell[rest], ys[rest], xs[rest], den[rest])
            pred[c0 + np.arange(q.size)[rest]] = got_pred
            pmax[c0 + np.arange(q.size)[rest]] = got_max
        return pred, pmax

    def _max_over(self, live, q, slot, cell, ys, xs, den) -> Tuple[np.ndarray, np.ndarray]:
        """Maximum and first argmax at pixels ``q`` over each pixel's live
        classes (``live``: (K, cells) bool; ``slot``: each pixel's cell),
        computed as :meth:`at` computes values."""
        n = q.size
        if n == 0:
            return np.empty(0, np.intp), np.empty(0, self.dtype)
        k = self.shape[0]
        h, w = self.stored_shape
        hw = h * w
        y0, y1, wy0, wy1 = self.rows
        x0, x1, wx0, wx1 = self.cols
        flat = self.values.reshape(-1)
        live = np.ascontiguousarray(live.T)  # (cells, K): each cell's classes in order
        counts = live.sum(axis=1, dtype=np.intp)
        classes = np.flatnonzero(live.reshape(-1))
        classes %= k
        starts = np.cumsum(counts) - counts
        # pixels by their number of live classes, most first, so that the
        # pixels with more than r live classes are a prefix
        n_live = counts.take(slot)
        order = np.argsort((k - n_live).astype(np.uint16 if k < 65535 else np.uint32), kind="stable")
        n_live = n_live.take(order)
        starts = starts.take(slot.take(order))
        qy, qx = ys.take(order), xs.take(order)
        corner00 = cell.take(order)
        dx = (x1 - x0).take(qx)
        dy = ((y1 - y0) * w).take(qy)
        u0, u1, v0, v1 = wx0.take(qx), wx1.take(qx), wy0.take(qy), wy1.take(qy)
        den = den.take(order)
        prefix = n - np.cumsum(np.bincount(n_live, minlength=int(n_live[0]) + 1))  # pixels with > r classes
        best = arg = None
        with np.errstate(invalid="ignore", divide="ignore"):
            for r in range(int(n_live[0])):
                m = int(prefix[r])
                cls = classes.take(starts[:m] + r)
                i00 = cls * hw
                i00 += corner00[:m]
                top = flat.take(i00) * u0[:m]
                top += flat.take(i00 + dx[:m]) * u1[:m]
                i00 += dy[:m]
                bot = flat.take(i00) * u0[:m]
                bot += flat.take(i00 + dx[:m]) * u1[:m]
                top *= v0[:m]
                bot *= v1[:m]
                top += bot
                top /= den[:m]
                if best is None:
                    best, arg = top, cls
                    continue
                better = top > best[:m]  # strictly: the first maximum stays
                np.copyto(best[:m], top, where=better)
                np.copyto(arg[:m], cls, where=better)
        pred = np.empty(n, dtype=np.intp)
        pmax = np.empty(n, dtype=self.dtype)
        pred[order] = arg
        pmax[order] = best
        return pred, pmax

    def dense_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start..stop-1`` of :meth:`dense`: a C-contiguous
        (K, stop - start, W) array, computed from the stored rows they need
        only. C order matters: numpy's float32 reductions (the block means of
        ``downsample``) round differently on other memory layouts."""
        y0, y1, wy0, wy1 = self.rows
        x0, x1, wx0, wx1 = self.cols
        ys = slice(start, stop)
        lo, hi = int(y0[start]), int(y1[stop - 1]) + 1  # both monotone in y
        band = self.values[:, lo:hi]
        horiz = band[:, :, x0] * wx0
        horiz += band[:, :, x1] * wx1
        top = horiz[:, y0[ys] - lo] * wy0[ys, None]
        bot = horiz[:, y1[ys] - lo] * wy1[ys, None]
        top += bot
        with np.errstate(invalid="ignore", divide="ignore"):
            top /= self._den(ys)
        return np.ascontiguousarray(top)

    def dense(self) -> np.ndarray:
        """The whole (K,H,W) array (the reference definition; K x H x W
        values, so only for small images, tests and fallbacks)."""
        k, out_h, out_w = self.shape
        out = np.empty(self.shape, dtype=self.dtype)
        step = max(1, _CHUNK_VALUES // (k * out_w))
        for r0 in range(0, out_h, step):
            r1 = min(r0 + step, out_h)
            out[:, r0:r1] = self.dense_rows(r0, r1)
        return out

