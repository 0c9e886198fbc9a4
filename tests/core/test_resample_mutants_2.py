"""LowResProbs.gather cases the second mutation run of ``core/resample.py``
(the functions the first run did not reach) showed untested: labels of a
narrow integer dtype, and images large enough for gather to work in several
strips with a shorter last one.

Oracles are written from the module's math, not read from the library: at
its own size (identity geometry) a pixel's value of class c is ``p_c / S``
(exact here: dyadic values summing to 1); elsewhere a float64 bilinear
interpolation with align_corners=False half-pixel centres, edge clamped, as
the module docstring defines it, written out with plain numpy.
"""

import numpy as np
import pytest

from segqual_fo.core import LowResProbs
from tests.core.test_resample_mutants import _taps


def _dyadic_probs(k, h, w):
    """(K,h,w) float64: at stored pixel i class i % K holds 1/2, the others
    1/(2(K-1)); with K=5 every value is a multiple of 1/8 and every sum is
    exactly 1."""
    p = np.full((k, h, w), 0.5 / (k - 1))
    flat = np.arange(h * w)
    p.reshape(k, -1)[flat % k, flat] = 0.5
    return p


@pytest.mark.parametrize("hw", [(8, 8), (16, 16)])
def test_gather_reads_uint8_labels_without_overflow(rng, hw):
    # the flat index label * h * w is computed in intp: in uint8, 4 * 64
    # wraps to 0 (class 0 read instead of class 4) and 4 * 256 is refused
    k = 5
    p = _dyadic_probs(k, *hw)
    lr = LowResProbs(p, hw)
    labels = rng.integers(0, k, size=hw).astype(np.uint8)
    labels[0, 0] = k - 1
    got = lr.gather(labels)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, np.take_along_axis(p, labels[None].astype(np.intp), 0)[0])
    # all of class 4: the values of that channel
    np.testing.assert_array_equal(lr.gather(np.full(hw, k - 1, dtype=np.uint8)), p[k - 1])


def _axis(n_in, n_out):
    """(i0, i1, w0, w1) per output index, as arrays: the half-pixel-centre
    taps written out in test_resample_mutants._taps, in float64."""
    i0, i1, w0, w1 = zip(*_taps(n_in, n_out, np.dtype(np.float64)))
    return np.array(i0), np.array(i1), np.array(w0), np.array(w1)


def _bilinear_gather(p, labels):
    """Each pixel's interpolated p_label over the interpolated stored sum,
    in float64 (plain numpy, whole image at once)."""
    out_h, out_w = labels.shape
    r0, r1, v0, v1 = _axis(p.shape[1], out_h)
    c0, c1, u0, u1 = _axis(p.shape[2], out_w)

    def interp(a):  # a: (h,w) stored values -> (H,W)
        top = a[r0][:, c0] * u0 + a[r0][:, c1] * u1
        bot = a[r1][:, c0] * u0 + a[r1][:, c1] * u1
        return top * v0[:, None] + bot * v1[:, None]

    num = np.choose(labels, [interp(p[c]) for c in range(p.shape[0])])
    return num / interp(p.sum(axis=0))


def test_gather_over_several_strips_with_a_shorter_last_one(rng):
    # 300 x 256 pixels: strips of 65536 // 256 = 256 rows, then one of 44
    x = rng.random((3, 2, 3))
    p = x / x.sum(axis=0)
    shape = (300, 256)
    labels = rng.integers(0, 3, size=shape)
    got = LowResProbs(p, shape).gather(labels)
    assert got.shape == shape and got.dtype == np.float64
    expected = _bilinear_gather(p, labels)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
    # the last strip's rows hold real values, not a buffer's leftovers
    np.testing.assert_allclose(got[256:], expected[256:], rtol=1e-12, atol=0)
