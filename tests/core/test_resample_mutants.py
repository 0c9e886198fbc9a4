"""LowResProbs edge cases the mutation run of ``core/resample.py`` showed
untested, above all the pruning of ``argmax_at``: a class may be skipped only
where it provably cannot be the maximum nor tie with it.

Oracles are written from the module's math, not read from the library: at
its own size (identity geometry) every weight is 1 or 0, so a pixel's value of
class c is ``float32(p_c) / float32(sum_k p_k)`` (one rounding); elsewhere an
explicit float32 bilinear interpolation, each operation rounded, as the
module docstring defines it. Argmax is plain ``np.argmax`` (first maximum).
"""

import numpy as np
import pytest

from segqual_fo.core import LowResProbs, pixel_evidence
from segqual_fo.errors import InvalidProbabilitiesError

F32 = np.float32


# --------------------------------------------------------------------------
# argmax_at: near-ties the pruning margins must keep


def _near_tie_probs(h=3, w=4):
    """(5,h,w) float32 probabilities, the same vector at every stored pixel:
    classes 0 and 1 are consecutive float32 values (class 0 below), and
    dividing by the stored sum (just below 1) lands both in the binade above
    0.25, whose spacing is twice theirs: both round to the same quotient.
    So the first maximum is class 0 although all its corners are below
    class 1's: a pruning without its margins (class 0 skipped because its
    largest corner is below class 1's smallest) returns class 1."""
    a = F32(0.24990237)
    r = F32(0.1664901)
    vec = np.array([a, np.nextafter(a, F32(1)), r, r, r], dtype=F32)
    return np.broadcast_to(vec[:, None, None], (5, h, w)).copy()


def _identity_values(p):
    """The oracle at identity geometry: p / float32(sum), each value one
    float32 rounding."""
    s = p.astype(np.float64).sum(axis=0).astype(F32)
    return p / s


def test_near_tie_precondition():
    # the oracle itself: a tie between 0 and 1, both above the other classes
    v = _identity_values(_near_tie_probs())
    assert (v[0] == v[1]).all() and (v[1] > v[2]).all()
    p = _near_tie_probs()
    assert (p[0] < p[1]).all()  # class 0's largest corner is below class 1's smallest


def test_argmax_at_keeps_a_class_that_ties_after_the_division():
    p = _near_tie_probs()
    lr = LowResProbs(p, p.shape[1:])
    v = _identity_values(p).reshape(5, -1)
    pixels = np.arange(v.shape[1])
    pred, pmax = lr.argmax_at(pixels)
    np.testing.assert_array_equal(pred, np.zeros(pixels.size))  # the first of the tied classes
    np.testing.assert_array_equal(pmax, v.max(axis=0))
    # label 1 with its own value: that value is the maximum, but class 0
    # reaches it too, so the label does not settle the argmax
    lab = np.ones(pixels.size, dtype=np.intp)
    s = lr.gather(lab.reshape(p.shape[1:])).reshape(-1)
    np.testing.assert_array_equal(s, v[1])
    pred, pmax = lr.argmax_at(pixels, labels=lab, scores=s)
    np.testing.assert_array_equal(pred, np.zeros(pixels.size))
    np.testing.assert_array_equal(pmax, v[0])


def test_pixel_evidence_reports_the_first_of_tied_classes_as_dense_does():
    p = _near_tie_probs()
    lr = LowResProbs(p, p.shape[1:])
    labels = np.ones(p.shape[1:], dtype=np.uint8)
    ev = pixel_evidence(labels, lr, with_argmax=True)
    assert (ev.pred == 0).all()  # every pixel an issue: its label is not the first maximum
    np.testing.assert_array_equal(ev.pred_prob, _identity_values(p)[0])
    dense = pixel_evidence(labels, lr.dense(), with_argmax=True)
    np.testing.assert_array_equal(ev.pred, dense.pred)


def test_argmax_at_does_not_prune_at_the_bottom_of_the_float_range():
    # subnormal float32 values (u = 2**-149), unnormalised sums (what
    # validate(check_sums=False) lets through). Class 0 is 3u at both stored
    # pixels, class 1 is 5u and 4u: class 0's largest corner is below class
    # 1's smallest, yet halfway between the two stored pixels (x = 3 of 7:
    # sx = 3.5 * 2 / 7 - 0.5 = 0.5) every product rounds to an even multiple
    # of u: class 0 is 1.5u + 1.5u -> 2u + 2u = 4u, class 1 is 2.5u + 2u ->
    # 2u + 2u = 4u, the sum 4u + 3.5u -> 4u + 4u = 8u. Both values are
    # exactly 0.5, a tie the first class wins; relative margins mean
    # nothing there, so no class may be skipped.
    u = F32(2.0**-149)
    p = np.array([[[3, 3]], [[5, 4]]], dtype=F32) * u
    lr = LowResProbs(p, (1, 7))
    pixels = np.arange(7)
    expected = np.array([1, 1, 1, 0, 1, 1, 1])
    pred, pmax = lr.argmax_at(pixels)
    np.testing.assert_array_equal(pred, expected)
    assert pmax[3] == 0.5
    lab = np.ones(7, dtype=np.intp)
    s = lr.gather(lab.reshape(1, 7)).reshape(-1)
    assert s[3] == 0.5
    pred, pmax = lr.argmax_at(pixels, labels=lab, scores=s)
    np.testing.assert_array_equal(pred, expected)
    assert pmax[3] == 0.5
    # and through pixel_evidence with unchecked sums, as the dense path gives
    ev = pixel_evidence(lab.reshape(1, 7), lr, check_probs="none", with_argmax=True)
    np.testing.assert_array_equal(ev.pred[0], expected)


def test_argmax_at_with_more_classes_than_uint16_counts():
    # K = 65537 (argmax_at itself has no class limit; the scoring functions
    # stop at 65534), stored 1x2 read at 1 x 2**20 (wide enough for a chunk
    # of chunk_pixels to hold both pixels asked for). The last pixel's cell
    # is stored pixel 1 alone (class 0 certain: one live class); pixel 0's
    # spans both stored pixels, where classes 0 and 1 share stored pixel 0
    # (two live classes). Pixels are processed by their number of live
    # classes, K - n_live: keys that do not fit uint16.
    k, wide = 65537, 2**20
    p = np.zeros((k, 1, 2), dtype=F32)
    p[0, 0, 0] = p[1, 0, 0] = 0.5
    p[0, 0, 1] = 1
    lr = LowResProbs(p, (1, wide))
    assert lr.chunk_pixels >= 2
    pred, pmax = lr.argmax_at(np.array([0, wide - 1]))
    np.testing.assert_array_equal(pred, [0, 0])  # 0.5 and 0.5 at pixel 0: the first class
    np.testing.assert_array_equal(pmax, F32([0.5, 1]))
    # class 1 ahead at pixel 0
    p[1, 0, 0] = 0.75
    p[0, 0, 0] = 0.25
    pred, pmax = LowResProbs(p, (1, wide)).argmax_at(np.array([wide - 1, 0]))
    np.testing.assert_array_equal(pred, [0, 1])
    np.testing.assert_array_equal(pmax, F32([1, 0.75]))


# --------------------------------------------------------------------------
# values and dtypes of gather / at / dense against an explicit bilinear


def _taps(n_in, n_out, dtype):
    """Per output index: (i0, i1, 1 - f, f) from the module's formula."""
    out = []
    for x in range(n_out):
        s = (x + 0.5) * n_in / n_out - 0.5
        i0 = int(np.floor(s))
        f = s - i0
        if s < 0:
            i0, f = 0, 0.0
        if i0 >= n_in - 1:
            i0, f = n_in - 1, 0.0
        out.append((i0, min(i0 + 1, n_in - 1), dtype.type(1.0 - f), dtype.type(f)))
    return out


def _bilinear_oracle(p, shape):
    """(K,H,W) values, one pixel at a time: top/bot/interp of p_k over
    interp of the stored sum, each operation rounded in the computation
    dtype."""
    dtype = np.dtype(np.float64 if p.dtype == np.float64 else F32)
    vals = p.astype(dtype)
    sums = (p.sum(axis=0, dtype=np.uint32) if p.dtype == np.uint8 else vals.sum(axis=0, dtype=np.float64)).astype(dtype)
    k = p.shape[0]
    out = np.empty((k, *shape), dtype=dtype)
    for y, (r0, r1, v0, v1) in enumerate(_taps(p.shape[1], shape[0], dtype)):
        for x, (c0, c1, u0, u1) in enumerate(_taps(p.shape[2], shape[1], dtype)):
            def interp(a):
                top = a[r0, c0] * u0 + a[r0, c1] * u1
                bot = a[r1, c0] * u0 + a[r1, c1] * u1
                return top * v0 + bot * v1

            den = interp(sums)
            for c in range(k):
                out[c, y, x] = interp(vals[c]) / den
    return out


@pytest.mark.parametrize("dtype", [np.uint8, np.float16, np.float32, np.float64])
@pytest.mark.parametrize("small, full", [((3, 4), (7, 10)), ((4, 3), (4, 3)), ((5, 6), (3, 4)), ((1, 3), (2, 7))])
def test_values_and_dtypes_equal_an_explicit_bilinear(rng, dtype, small, full):
    x = rng.random((4, *small))
    p = x / x.sum(axis=0)
    p = np.round(p * 255).astype(np.uint8) if dtype == np.uint8 else p.astype(dtype)
    expected = _bilinear_oracle(p, full)
    lr = LowResProbs(p, full)
    assert lr.dtype == expected.dtype
    d = lr.dense()
    assert d.dtype == expected.dtype and d.shape == expected.shape
    np.testing.assert_array_equal(d, expected)
    n = full[0] * full[1]
    pixels = rng.integers(0, n, size=2 * n)
    got = lr.at(pixels)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected.reshape(4, -1)[:, pixels])
    labels = rng.integers(0, 4, size=full)
    got = lr.gather(labels)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, np.take_along_axis(expected, labels[None], 0)[0])
    pred, pmax = lr.argmax_at(pixels)
    assert pmax.dtype == expected.dtype
    np.testing.assert_array_equal(pmax, expected.reshape(4, -1).max(axis=0)[pixels])
    np.testing.assert_array_equal(pred, expected.reshape(4, -1).argmax(axis=0)[pixels])


# --------------------------------------------------------------------------
# validate(): what is refused, and the index the error carries


def _uint8_with_sum(k, total, where=(1, 2)):
    """(K,3,4) uint8, every stored pixel summing to 255 except ``where``,
    which sums to ``total``."""
    p = np.zeros((k, 3, 4), dtype=np.uint8)
    p[0] = 255
    p[:, where[0], where[1]] = 0
    rest = total
    for c in range(k):
        p[c, where[0], where[1]] = min(rest, 255)
        rest -= int(p[c, where[0], where[1]])
    assert int(p[:, where[0], where[1]].sum()) == total
    return p


@pytest.mark.parametrize("k", [3, 20])
def test_uint8_sums_are_accepted_within_255_plus_minus_k(k):
    for total in (255 - k, 255 + k):
        LowResProbs(_uint8_with_sum(k, total), (6, 8)).validate()
    for total in (255 - k - 1, 255 + k + 1, 100):
        with pytest.raises(InvalidProbabilitiesError, match=rf"row 1, col 2.*sum to {total}, not about 255") as err:
            LowResProbs(_uint8_with_sum(k, total), (6, 8)).validate(index=7)
        assert err.value.index == 7


def test_uint8_zero_sum_is_refused_whatever_k():
    # K = 300: 255 +- K would admit a sum of 0 (and of 1); a zero sum has no
    # renormalisation, so it is refused on its own, and a sum of 1 is not
    k = 300
    with pytest.raises(InvalidProbabilitiesError, match="sum to 0") as err:
        LowResProbs(_uint8_with_sum(k, 0), (6, 8)).validate(index=3)
    assert err.value.index == 3
    LowResProbs(_uint8_with_sum(k, 1), (6, 8)).validate()


def test_float_sums_are_checked_by_default():
    p = np.full((3, 2, 2), 1.0, dtype=F32)  # sums of 3
    lr = LowResProbs(p, (4, 4))
    with pytest.raises(InvalidProbabilitiesError, match="sum to 3"):
        lr.validate()
    lr.validate(check_sums=False)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("check_sums", [True, False])
def test_non_finite_values_are_refused_with_their_position(bad, check_sums):
    p = np.full((3, 2, 4), 1 / 3, dtype=F32)
    p[2, 1, 3] = bad
    with np.errstate(invalid="ignore"):  # inf * 0 in the interpolated sums
        lr = LowResProbs(p, (4, 8))
    with pytest.raises(InvalidProbabilitiesError, match=r"holds NaN or infinite values \(first at class 2, row 1, col 3") as err:
        lr.validate("probs", check_sums=check_sums, index=5)
    assert err.value.index == 5
    assert str(err.value).startswith("probs ")


def test_negative_values_are_refused_naming_the_first_negative():
    # zeros and values below 1 come first in the array: the message names
    # the negative one
    p = np.full((3, 2, 4), 0.5, dtype=F32)
    p[0, 0, 0] = 0
    p[1, 1, 2] = -0.25
    with pytest.raises(InvalidProbabilitiesError, match=r"negative values \(first -0.25 at class 1, row 1, col 2") as err:
        LowResProbs(p, (4, 8)).validate(check_sums=False, index=9)
    assert err.value.index == 9


@pytest.mark.parametrize("total, hint", [(3.0, "look like logits"), (1.5, "look like logits"), (1.0105, "look like logits"), (1.005, "Renormalise them"), (0.5, "Renormalise them")])
def test_a_single_bad_float_sum_is_named_with_its_pixel_and_index(total, hint):
    p = np.full((2, 3, 4), 0.5, dtype=np.float64)
    p[:, 2, 1] = total / 2
    with pytest.raises(InvalidProbabilitiesError, match=rf"at pixel \(row 2, col 1, .*sum to {total:g}, expected 1.*{hint}") as err:
        LowResProbs(p, (6, 8)).validate(index=11)
    assert err.value.index == 11


@pytest.mark.parametrize(
    "buf",
    [np.zeros((6, 8), np.float64), np.zeros((6, 8), np.float16), np.zeros((8, 6), F32), np.zeros((6, 9), F32), np.zeros((6, 8), F32)[:, ::-1]],
    ids=["float64", "float16", "transposed-shape", "wrong-width", "not-contiguous"],
)
def test_gather_ignores_an_out_array_it_cannot_fill(rng, buf):
    # only a C-contiguous (H,W) array of the computation dtype is filled;
    # any other is left alone and a fresh result returned
    p = rng.random((3, 3, 4))
    p = (p / p.sum(axis=0)).astype(F32)
    lr = LowResProbs(p, (6, 8))
    labels = rng.integers(0, 3, size=(6, 8))
    expected = np.take_along_axis(_bilinear_oracle(p, (6, 8)), labels[None], 0)[0]
    before = buf.copy()
    got = lr.gather(labels, out=buf)
    assert got.dtype == F32 and got.shape == (6, 8) and got is not buf
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(buf, before)


def test_pixel_labels_and_scores_of_any_shape_are_read_flat(rng):
    # pixels (and argmax_at's labels and scores) are read in row-major order
    # whatever their shape, one chunk at a time
    p = rng.random((3, 4, 5))
    p = (p / p.sum(axis=0)).astype(F32)
    lr = LowResProbs(p, (8, 10))
    flat = rng.integers(0, 80, size=4000)
    assert lr.chunk_pixels < flat.size  # several chunks
    grid = flat.reshape(1000, 4)
    np.testing.assert_array_equal(lr.at(grid), lr.at(flat))
    np.testing.assert_array_equal(lr.at(flat), _bilinear_oracle(p, (8, 10)).reshape(3, -1)[:, flat])
    lab = rng.integers(0, 3, size=flat.size)
    s = np.take_along_axis(lr.at(flat), lab[None], 0)[0]
    expected = lr.argmax_at(flat, labels=lab, scores=s)
    got = lr.argmax_at(grid, labels=lab.reshape(1000, 4), scores=s.reshape(1000, 4))
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    v = _bilinear_oracle(p, (8, 10)).reshape(3, -1)[:, flat]
    np.testing.assert_array_equal(expected[0], v.argmax(axis=0))
