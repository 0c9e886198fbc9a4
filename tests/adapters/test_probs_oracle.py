"""segqual_fo.adapters.probs against explicit numpy oracles.

The oracles are written out here in float64: a softmax over the class axis,
OpenCV's INTER_LINEAR bilinear resize (half-pixel centres, clamped at the
edges; checked against cv2 itself first), and a renormalisation over the
class axis. Real .npy/.npz files are written to ``tmp_path`` and read back
with :func:`load_probs` (another resolution comes back as a
:class:`~segqual_fo.core.resample.LowResProbs`, compared here through
``np.asarray``, i.e. its dense array). Shapes are deliberately non-square and K differs
from H and W, so a transposed axis or a softmax over the wrong axis changes
the numbers (or the shape). Tolerance 1e-6: the library computes in float32.
"""

import numpy as np
import pytest

from segqual_fo.adapters.probs import load_probs, to_class_first
from segqual_fo.errors import ShapeMismatchError

ATOL = 1e-6


def softmax_oracle(logits, axis=0):
    """exp(x) / sum(exp(x)) over ``axis``, in float64, shifted by the max."""
    x = np.asarray(logits, dtype=np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _axis_taps(n_in, n_out):
    """Source indices and weights along one axis (INTER_LINEAR).

    Output index d samples the input at ``(d + 0.5) * n_in / n_out - 0.5``
    (pixel centres aligned), clamped to [0, n_in - 1].
    """
    src = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    i0 = np.floor(src).astype(np.intp)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, src - i0


def bilinear_oracle(probs, shape):
    """Bilinear resize of a (K,H,W) array to (K, *shape), in float64."""
    p = np.asarray(probs, dtype=np.float64)
    r0, r1, fr = _axis_taps(p.shape[1], shape[0])
    c0, c1, fc = _axis_taps(p.shape[2], shape[1])
    top = p[:, r0][:, :, c0] * (1 - fc) + p[:, r0][:, :, c1] * fc
    bottom = p[:, r1][:, :, c0] * (1 - fc) + p[:, r1][:, :, c1] * fc
    return top * (1 - fr)[:, None] + bottom * fr[:, None]


def renormalise(p):
    return p / p.sum(axis=0, keepdims=True)


def _random_probs(rng, k, h, w):
    x = rng.gamma(0.7, size=(k, h, w)) + 1e-9
    return x / x.sum(axis=0, keepdims=True)


@pytest.mark.parametrize(
    "src, dst",
    [
        ((3, 4), (7, 5)),
        ((5, 7), (3, 2)),
        ((8, 6), (4, 3)),
        ((6, 9), (13, 10)),
        ((1, 3), (4, 2)),
        ((7, 5), (7, 11)),
    ],
)
def test_bilinear_oracle_agrees_with_opencv(rng, src, dst):
    # the oracle's formula must be OpenCV's before it can judge the library
    cv2 = pytest.importorskip("cv2")
    img = rng.random((*src, 5)).astype(np.float32)  # (H, W, channels), as cv2 takes it
    got = cv2.resize(img, (dst[1], dst[0]), interpolation=cv2.INTER_LINEAR)
    expected = bilinear_oracle(img.transpose(2, 0, 1), dst).transpose(1, 2, 0)
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)


def test_bilinear_oracle_hand_values():
    # 1x2 -> 1x4: output centres map to source x = -0.25 (clamped to 0),
    # 0.25, 0.75, 1.25 (clamped to 1)
    p = np.array([[[0.0, 1.0]]])
    np.testing.assert_allclose(bilinear_oracle(p, (1, 4))[0, 0], [0.0, 0.25, 0.75, 1.0])


@pytest.mark.parametrize(
    "stored, target",
    [((6, 9), (13, 10)), ((12, 16), (5, 7)), ((4, 6), (16, 24))],
)
def test_logits_npy_khw_resized(rng, tmp_path, stored, target):
    k = 5
    logits = (rng.normal(size=(k, *stored)) * 3).astype(np.float32)
    path = tmp_path / "logits.npy"
    np.save(path, logits)
    got = load_probs(str(path), logits=True, num_classes=k, target_shape=target, resize=True)
    expected = renormalise(bilinear_oracle(softmax_oracle(logits, axis=0), target))
    assert got.shape == (k, *target)
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)
    np.testing.assert_allclose(np.asarray(got).sum(axis=0), 1.0, rtol=0, atol=ATOL)


def test_logits_npz_hwk_resized(rng, tmp_path):
    k, stored, target = 4, (7, 5), (11, 9)
    logits = rng.normal(size=(*stored, k)) * 4  # (H, W, K), float64
    path = tmp_path / "out.npz"
    np.savez(path, logits=logits, other=np.zeros(3))
    got = load_probs(
        str(path), key="logits", layout="HWK", logits=True, num_classes=k, target_shape=target, resize=True
    )
    expected = renormalise(bilinear_oracle(softmax_oracle(logits, axis=2).transpose(2, 0, 1), target))
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("layout", ["KHW", "HWK"])
def test_logits_without_resize(rng, tmp_path, layout):
    k, h, w = 6, 4, 5
    logits = (rng.normal(size=(k, h, w)) * 5).astype(np.float32)
    stored = logits if layout == "KHW" else logits.transpose(1, 2, 0)
    path = tmp_path / "l.npy"
    np.save(path, stored)
    got = load_probs(str(path), layout=layout, logits=True, num_classes=k, target_shape=(h, w))
    np.testing.assert_allclose(got, softmax_oracle(logits, axis=0), rtol=0, atol=ATOL)
    # in memory, the same
    got = to_class_first(stored, layout=layout, logits=True)
    np.testing.assert_allclose(got, softmax_oracle(logits, axis=0), rtol=0, atol=ATOL)


def test_large_logits_do_not_overflow(rng):
    # a softmax that forgets to subtract the max gives inf/inf = NaN here
    logits = rng.normal(size=(3, 4, 6)).astype(np.float32) * 10 + 500
    got = to_class_first(logits, logits=True)
    np.testing.assert_allclose(got, softmax_oracle(logits), rtol=0, atol=ATOL)


@pytest.mark.parametrize("layout", ["KHW", "HWK"])
def test_uint8_resized(rng, tmp_path, layout):
    k, stored, target = 5, (6, 8), (9, 14)
    q = np.round(_random_probs(rng, k, *stored) * 255).astype(np.uint8)
    sums = q.sum(axis=0, dtype=np.int64)
    # rounding leaves sums of 255 +- a few: renormalisation has work to do
    assert (sums != 255).any()
    path = tmp_path / "q.npz"
    np.savez_compressed(path, probs_u8=q if layout == "KHW" else q.transpose(1, 2, 0))
    got = load_probs(str(path), layout=layout, num_classes=k, target_shape=target, resize=True)
    expected = renormalise(bilinear_oracle(q / 255.0, target))
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)
    np.testing.assert_allclose(np.asarray(got).sum(axis=0), 1.0, rtol=0, atol=ATOL)


def test_uint8_without_resize_keeps_its_distribution(rng, tmp_path):
    # same size: the adapter may hand uint8 on (the core divides by the
    # per-pixel sum) or convert it; either way the distribution is p/sum(p)
    q = np.round(_random_probs(rng, 3, 4, 7) * 255).astype(np.uint8)
    path = tmp_path / "q.npy"
    np.save(path, q)
    got = np.asarray(load_probs(str(path), num_classes=3, target_shape=(4, 7), resize=True), dtype=np.float64)
    np.testing.assert_allclose(renormalise(got), renormalise(q.astype(np.float64)), rtol=0, atol=ATOL)


def test_float16_resized(rng, tmp_path):
    k, stored, target = 7, (5, 6), (10, 3)
    p16 = _random_probs(rng, k, *stored).astype(np.float16)
    # float16 rounding leaves sums off by ~1e-4, far above the tolerance
    assert np.abs(p16.astype(np.float64).sum(axis=0) - 1).max() > 10 * ATOL
    path = tmp_path / "p16.npy"
    np.save(path, p16.transpose(1, 2, 0))
    got = load_probs(str(path), layout="HWK", num_classes=k, target_shape=target, resize=True)
    expected = renormalise(bilinear_oracle(p16, target))
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)


def test_float_probs_of_the_right_size_are_untouched(rng, tmp_path):
    p = _random_probs(rng, 4, 3, 5).astype(np.float32)
    path = tmp_path / "p.npy"
    np.save(path, p.transpose(1, 2, 0))
    got = load_probs(str(path), layout="HWK", num_classes=4, target_shape=(3, 5), resize=True)
    np.testing.assert_array_equal(got, p)


def test_other_resolution_without_resize_is_refused(rng, tmp_path):
    path = tmp_path / "p.npy"
    np.save(path, _random_probs(rng, 3, 4, 5).astype(np.float32))
    with pytest.raises(ShapeMismatchError, match="Pass resize=True"):
        load_probs(str(path), num_classes=3, target_shape=(8, 10))


@pytest.mark.parametrize("k", [1, 3, 600])
def test_any_number_of_classes_resized(rng, tmp_path, k):
    # OpenCV resizes at most 512 channels at once: more are done in chunks,
    # and one channel comes back 2-D from cv2
    p = _random_probs(rng, k, 3, 4).astype(np.float32)
    path = tmp_path / "p.npy"
    np.save(path, p)
    got = load_probs(str(path), num_classes=k, target_shape=(5, 7), resize=True)
    np.testing.assert_allclose(got, renormalise(bilinear_oracle(p, (5, 7))), rtol=0, atol=ATOL)
