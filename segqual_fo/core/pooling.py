"""Softmin pooling of pixel scores into one image score.

# Algorithm
For the valid pixel scores ``s_1..s_n`` of an image and a temperature ``T``:

    image_score = sum_i s_i * w_i / sum_i w_i,   w_i = exp((min_j s_j - s_i) / T)

which is ``sum(s * softmax((1 - s) / T))``. Any constant shift of the
exponent cancels between numerator and denominator; scores lie in [0, 1], so
for ``T > 1.01/600`` the plain weights ``exp(-s / T)`` neither overflow nor
underflow in float64 and no min pass is needed; for smaller ``T``, and for
unnormalised scores (``shift=True``: they may exceed 1 by any amount), the
exponent is shifted by ``min s`` so the largest weight is exactly 1. Low
``T`` approaches the worst pixel's score, high ``T`` the mean. Computed in
float64 whatever the input dtype.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import numpy.typing as npt

from segqual_fo.core._inputs import check_temperature

# Below this temperature exp(-s/T) could underflow (s <= 1.01), so the
# scores are shifted by their minimum first.
_NO_SHIFT_MIN_TEMPERATURE = 1.01 / 600


def softmin_1d(values: npt.NDArray[np.floating], temperature: float, shift: bool = False) -> float:
    """Softmin of a 1-D array of valid (non-NaN) scores; NaN if empty.

    No argument checking: the fast path used per image by the scorers.
    ``shift=True`` forces the shifted form (scores not bounded by 1).
    """
    if values.size == 0:
        return float("nan")
    # float64 from the start: float32 exp of arguments near -1/T loses ~1e-6.
    # No BLAS (np.dot): its own threads fight the caller's worker threads.
    if temperature > _NO_SHIFT_MIN_TEMPERATURE and not shift:
        # exp((min - s)/T) / sum = exp(-s/T) / sum: the shift cancels, and
        # without it nothing underflows while 1/T < 600 (s is in [0, 1])
        w = np.multiply(values, -1.0 / temperature, dtype=np.float64)
    else:
        w = np.subtract(np.float64(values.min()), values, dtype=np.float64)
        w *= 1.0 / temperature
    np.exp(w, out=w)
    den = w.sum()
    w *= values
    return float(w.sum() / den)


def softmin_rows(
    values: npt.NDArray[np.floating], temperature: float, shift: bool = False
) -> npt.NDArray[np.float64]:
    """Softmin of each row of a (B, P) array without NaN (fast batch path);
    ``shift=True`` forces the shifted form (scores not bounded by 1)."""
    if temperature > _NO_SHIFT_MIN_TEMPERATURE and not shift:
        w = np.multiply(values, -1.0 / temperature, dtype=np.float64)
    else:
        w = np.subtract(values.min(axis=1)[:, None], values, dtype=np.float64)
        w *= 1.0 / temperature
    np.exp(w, out=w)
    den = w.sum(axis=1)
    w *= values
    return w.sum(axis=1) / den


def softmin(
    scores: npt.ArrayLike,
    *,
    temperature: float = 0.1,
    axis: Optional[int] = None,
) -> npt.NDArray[np.float64] | float:
    """Softmin-pools scores in [0, 1]; NaN entries (ignored pixels) are skipped.

    Scores outside [0, 1] (raw, unnormalised ones) pool stably too: the
    exponent is then shifted by their minimum.

    Args:
        scores: array of scores, e.g. an image's (H,W) pixel scores
        temperature (0.1): softmax temperature; must be positive
        axis (None): axis to pool over; None pools all elements

    Returns:
        a float (``axis=None``, or a 1-D input pooled over its axis) or an
        array with ``axis`` removed; NaN where every entry was NaN

    Example::

        >>> softmin([[1.0, 1.0], [1.0, 0.0]], temperature=0.1)  # doctest: +ELLIPSIS
        0.0001...
    """
    t = check_temperature(temperature)
    s = np.asarray(scores, dtype=np.float64)
    if axis is None:
        v = s[~np.isnan(s)]
        # outside [0, 1] (e.g. raw scores) the plain weights can under- or
        # overflow: shift by the minimum, as pooling over an axis always does
        outside = v.size > 0 and not (0.0 <= v.min() and v.max() <= 1.0)
        return softmin_1d(v, t, shift=outside)
    nan = np.isnan(s)
    with np.errstate(invalid="ignore"):
        all_nan = nan.all(axis=axis, keepdims=True)
        smin = np.where(all_nan, 0.0, np.nanmin(np.where(all_nan, 0.0, s), axis=axis, keepdims=True))
        w = np.exp((smin - s) / t)
        w[nan] = 0.0
        num = np.sum(np.where(nan, 0.0, s) * w, axis=axis)
        den = np.sum(w, axis=axis)
        # a 1-D input pooled over its axis gives a numpy scalar: item
        # assignment needs an array, and the caller gets a float (as axis=None)
        out = np.asarray(num / den)
    out[np.squeeze(all_nan, axis=axis)] = np.nan
    return out if out.ndim else float(out)
