"""The chunked heatmap equals the whole-image float64 expression, bit for bit.

``heatmap_image`` once computed ``rint(clip(nan_to_num(1 - s.astype(float64)),
0, 1) * 255)`` over the whole image; it now works in cache-sized chunks with
``fmax``/``fmin`` instead of ``nan_to_num`` + ``clip``. The outputs must not
change, so the old expression is kept here as the oracle and compared on:
every float32 in [0, 1] at a fixed bit-pattern stride, the 2,000 float32s
around each of the 255 rounding ties ``(v + 0.5) / 255`` (where a different
evaluation order would flip a value), every float16, and the special values.
"""

import numpy as np
import pytest

from segqual_fo.writers import files
from segqual_fo.writers.files import heatmap_image


def old_heatmap(pixel_scores):
    """The previous implementation, verbatim (the oracle)."""
    bad = 1.0 - pixel_scores.astype(np.float64)
    np.nan_to_num(bad, copy=False, nan=0.0)
    np.clip(bad, 0.0, 1.0, out=bad)
    return np.rint(bad * 255).astype(np.uint8)


ONE_BITS = int(np.array(1.0, np.float32).view(np.uint32))


def _floats(bits):
    return np.asarray(bits, dtype=np.uint32).view(np.float32)


def test_every_float32_in_unit_interval_at_a_stride():
    # 0 .. 1 by bit pattern, every 97th value (11 million values, all
    # exponents and mantissa patterns), plus 1.0 itself
    s = _floats(np.append(np.arange(0, ONE_BITS, 97, dtype=np.uint32), ONE_BITS))
    img = s.reshape(1, -1)
    np.testing.assert_array_equal(heatmap_image(img), old_heatmap(img))


def test_float32_neighbourhoods_of_every_rounding_tie():
    # 255 * (1 - s) = v + 0.5 at s = 1 - (v + 0.5) / 255: take the 1,000
    # float32s on either side of each such s
    ties = (1.0 - (np.arange(255) + 0.5) / 255).astype(np.float32)
    centre = ties.view(np.uint32).astype(np.int64)
    bits = (centre[:, None] + np.arange(-1000, 1001)[None, :]).ravel()
    s = _floats(np.clip(bits, 0, ONE_BITS))
    img = s.reshape(255, -1)
    out = heatmap_image(img)
    np.testing.assert_array_equal(out, old_heatmap(img))
    assert set(np.unique(out)) == set(range(256))  # every value is reached


def test_every_float16_and_float64_samples():
    s16 = np.arange(1 << 16, dtype=np.uint16).view(np.float16).reshape(256, 256)  # incl. NaN, inf, negatives
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(heatmap_image(s16), old_heatmap(s16))
    s64 = np.random.default_rng(0).uniform(-0.1, 1.1, size=(300, 301))
    np.testing.assert_array_equal(heatmap_image(s64), old_heatmap(s64))


def test_special_values():
    tiny = np.finfo(np.float32).smallest_subnormal
    s = np.array(
        [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, tiny, -tiny, 1.0, np.nextafter(np.float32(1), np.float32(2)),
         np.nextafter(np.float32(1), np.float32(0)), 2.0, -2.0, np.finfo(np.float32).max, -np.finfo(np.float32).max],
        dtype=np.float32,
    )  # fmt: skip
    np.testing.assert_array_equal(heatmap_image(s.reshape(3, 5)), old_heatmap(s.reshape(3, 5)))


@pytest.mark.parametrize("shape", [(0, 0), (1, 1), (3, 7), (1, files._HEATMAP_CHUNK + 1), (257, 129)])
def test_chunk_boundaries_shapes_and_layouts(shape):
    rng = np.random.default_rng(1)
    s = rng.uniform(-0.05, 1.05, size=shape).astype(np.float32)
    if s.size:
        s.flat[:: 7] = np.nan
    np.testing.assert_array_equal(heatmap_image(s), old_heatmap(s))
    assert heatmap_image(s).shape == shape and heatmap_image(s).dtype == np.uint8
    t = s.T  # not C-contiguous
    np.testing.assert_array_equal(heatmap_image(t), old_heatmap(t))
    if s.ndim == 2 and s.shape[1] > 2:
        v = s[:, ::2]  # strided
        np.testing.assert_array_equal(heatmap_image(v), old_heatmap(v))
