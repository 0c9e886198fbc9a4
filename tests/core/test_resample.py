"""Probabilities at the model's resolution (:mod:`segqual_fo.core.resample`).

The reference is the full-resolution computation: ``LowResProbs.dense()``
fed to the same functions as a plain array. Scoring a :class:`LowResProbs`
must give the same pixel scores (bit for bit), image scores (within 1e-6;
in practice equal), issue masks, argmax at the issue pixels and regions, for
both methods, several strides, odd sizes, non-integer ratios, K up to 150,
uint8/float16/float32/float64 and ignored values; and the geometry must be
OpenCV's INTER_LINEAR. Logits and files (the adapter's side) are in
``tests/adapters/test_probs_lowres.py``.
"""

import pickle
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segqual_fo import core
from segqual_fo.core import LowResProbs, find_label_issues, get_label_quality_scores, iter_label_quality
from segqual_fo.core.pixel import pixel_evidence
from segqual_fo.core.summary import common_label_issues, filter_by_class, issue_confusion_matrix
from segqual_fo.errors import InvalidLabelsError, InvalidProbabilitiesError, ShapeMismatchError
from tests.core.helpers import (
    assert_lowres_equals_dense,
    fullres_labels,
    lowres_model,
    nearest,
    softmax_probs,
)


def _images(rng, n, k, small, full, dtype, *, ignore=None):
    """n images: LowResProbs of a model at ``small``, labels at ``full``."""
    labels, lowres = [], []
    for _ in range(n):
        stored, truth = lowres_model(rng, k, small, dtype)
        lowres.append(LowResProbs(stored, full))
        labels.append(fullres_labels(rng, truth, full, k, ignore))
    return labels, lowres


CASES = [
    # (K, stored (h, w), mask (H, W), dtype): strides 2, 4, 8, odd sizes and
    # non-integer ratios
    (2, (12, 16), (24, 32), np.float32),
    (5, (10, 14), (37, 53), np.uint8),
    (5, (8, 10), (32, 40), np.float16),
    (19, (6, 8), (48, 64), np.uint8),
    (19, (9, 13), (40, 56), np.float64),
    (150, (5, 7), (37, 53), np.float32),
    (150, (6, 5), (24, 20), np.uint8),
]


@pytest.mark.parametrize("method", core.METHODS)
@pytest.mark.parametrize("k, small, full, dtype", CASES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_scores_masks_pred_regions_equal_the_dense_computation(rng, method, k, small, full, dtype):
    labels, lowres = _images(rng, 3, k, small, full, dtype)
    found = assert_lowres_equals_dense(labels, lowres, method=method)
    assert found > 0  # not a vacuous comparison


@pytest.mark.parametrize("method", core.METHODS)
@pytest.mark.parametrize("ignore", [255, 1], ids=["void-255", "class-1"])
def test_ignored_values(rng, method, ignore):
    labels, lowres = _images(rng, 3, 5, (10, 14), (37, 53), np.uint8, ignore=ignore)
    assert assert_lowres_equals_dense(labels, lowres, method=method, ignore=ignore) > 0
    ev = pixel_evidence(labels[0], lowres[0], ignore=(ignore,), with_argmax=True)
    assert np.isnan(ev.pixel_scores[0, 0]) and not ev.valid[0, 0]


@pytest.mark.parametrize("downsample", [2, 4])
def test_issue_count_with_downsample(rng, downsample):
    labels, lowres = _images(rng, 3, 5, (10, 14), (40, 56), np.uint8, ignore=255)
    assert assert_lowres_equals_dense(labels, lowres, method="num_pixel_issues", ignore=255, downsample=downsample) > 0


def test_mixed_sizes_and_strides(rng):
    labels, lowres = [], []
    for small, full, dtype in [((10, 14), (40, 56), np.uint8), ((6, 8), (48, 64), np.float32), ((8, 8), (13, 29), np.float16)]:
        lab, lr = _images(rng, 1, 4, small, full, dtype)
        labels += lab
        lowres += lr
    for method in core.METHODS:
        assert_lowres_equals_dense(labels, lowres, method=method, ignore=None)


def test_summaries_read_only_the_issue_pixels(rng):
    labels, lowres = _images(rng, 3, 5, (10, 14), (37, 53), np.uint8)
    dense = [lr.dense() for lr in lowres]
    issues = find_label_issues(labels, lowres)
    assert issues.any()
    np.testing.assert_array_equal(
        issue_confusion_matrix(issues, labels, lowres), issue_confusion_matrix(issues, labels, dense)
    )
    assert common_label_issues(issues, labels, lowres).equals(common_label_issues(issues, labels, dense))
    np.testing.assert_array_equal(filter_by_class(2, issues, labels, lowres), filter_by_class(2, issues, labels, dense))


# --------------------------------------------------------------------------
# the three readings are one definition


@settings(max_examples=40)
@given(
    k=st.integers(1, 12),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    out_h=st.integers(1, 40),
    out_w=st.integers(1, 40),
    dtype=st.sampled_from(["uint8", "float16", "float32", "float64"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_gather_at_and_dense_are_bit_identical(k, h, w, out_h, out_w, dtype, seed):
    rng = np.random.default_rng(seed)
    p = softmax_probs(rng.normal(size=(k, h, w)) * 3)
    p = np.round(p * 255).astype(np.uint8) if dtype == "uint8" else p.astype(dtype)
    lr = LowResProbs(p, (out_h, out_w))
    d = lr.dense()
    assert d.shape == lr.shape == (k, out_h, out_w) and d.dtype == lr.dtype
    lab = rng.integers(0, k, size=(out_h, out_w))
    np.testing.assert_array_equal(lr.gather(lab), np.take_along_axis(d, lab[None], 0)[0])
    idx = rng.integers(0, out_h * out_w, size=17)
    np.testing.assert_array_equal(lr.at(idx), d.reshape(k, -1)[:, idx])
    np.testing.assert_array_equal(np.concatenate([lr.dense_rows(0, 1), lr.dense_rows(1, out_h)], axis=1) if out_h > 1 else lr.dense_rows(0, 1), d)
    if dtype == "uint8" and (np.abs(p.sum(0, dtype=np.int64) - 255) > k).any():
        return  # not valid probabilities: validate() would refuse them
    # and pixel_evidence agrees with the dense path, argmax and pmax included
    a = pixel_evidence(lab, lr, with_argmax=True)
    b = pixel_evidence(lab, d, with_argmax=True)
    np.testing.assert_array_equal(a.pixel_scores, b.pixel_scores)
    np.testing.assert_array_equal(a.pred, b.pred)
    np.testing.assert_array_equal(a.pred_prob, b.pred_prob)


# --------------------------------------------------------------------------
# argmax_at: the classes that cannot be the maximum are skipped


def _reference_argmax(lr, pixels):
    """argmax (first maximum) and maximum of all K values, from at()."""
    v = lr.at(pixels)
    return v.argmax(axis=0), v.max(axis=0)


def _assert_argmax_at_exact(lr, pixels, labels=None, scores=None):
    pred, pmax = lr.argmax_at(pixels, np.uint16, labels=labels, scores=scores)
    ref_pred, ref_max = _reference_argmax(lr, pixels)
    assert pred.dtype == np.uint16 and pmax.dtype == lr.dtype
    np.testing.assert_array_equal(pmax, ref_max)  # NaN where the sum is 0, as at() gives
    ok = ~np.isnan(ref_max)
    np.testing.assert_array_equal(pred[ok], ref_pred[ok])


def _stored(rng, k, small, dtype, sharpness):
    p = softmax_probs(rng.normal(size=(k, *small)) * sharpness)
    return np.round(p * 255).astype(np.uint8) if dtype == "uint8" else p.astype(dtype)


@settings(max_examples=60)
@given(
    k=st.sampled_from([1, 2, 3, 5, 19, 40]),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    out_h=st.integers(1, 40),
    out_w=st.integers(1, 40),
    dtype=st.sampled_from(["uint8", "float16", "float32", "float64"]),
    sharpness=st.sampled_from([0.0, 0.3, 3.0, 12.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_argmax_at_is_the_argmax_of_all_k_values(k, h, w, out_h, out_w, dtype, sharpness, seed):
    # sharpness 0 makes every class equal (ties everywhere), 12 one class
    # per stored pixel (most classes skipped); uint8 adds exact ties
    rng = np.random.default_rng(seed)
    lr = LowResProbs(_stored(rng, k, (h, w), dtype, sharpness), (out_h, out_w))
    n = out_h * out_w
    pixels = rng.integers(0, n, size=rng.integers(0, 3 * n))  # unsorted, repeated, maybe none
    _assert_argmax_at_exact(lr, pixels)
    # with each pixel's label and its gathered value (NaN: unknown)
    lab = rng.integers(0, k, size=(out_h, out_w))
    s = lr.gather(lab)
    s[rng.random(s.shape) < 0.1] = np.nan
    _assert_argmax_at_exact(lr, pixels, lab.reshape(-1)[pixels], s.reshape(-1)[pixels])
    # the model's argmax as the label: its value is the maximum everywhere
    lab = lr.dense().argmax(axis=0)
    all_px = np.arange(n)
    _assert_argmax_at_exact(lr, all_px, lab.reshape(-1), lr.gather(lab).reshape(-1))


@pytest.mark.parametrize("dtype", ["uint8", "float16", "float32", "float64"])
@pytest.mark.parametrize(
    "k, small, full",
    [(19, (24, 40), (96, 160)), (19, (13, 17), (101, 67)), (5, (20, 30), (40, 60)), (7, (9, 11), (72, 88)), (150, (12, 16), (48, 64))],
    ids=["stride4", "odd", "stride2", "stride8", "k150"],
)
def test_argmax_at_over_many_chunks(rng, k, small, full, dtype):
    # a plausible model (labelled class boosted), every pixel, in chunks of
    # chunk_pixels; the labels mostly agree with the model
    stored, truth = lowres_model(rng, k, small, np.dtype(dtype).type)
    lr = LowResProbs(stored, full)
    lab = fullres_labels(rng, truth, full, k)
    n = full[0] * full[1]
    assert lr.chunk_pixels < n
    pixels = np.arange(n)
    s = lr.gather(lab).reshape(-1)
    _assert_argmax_at_exact(lr, pixels)
    _assert_argmax_at_exact(lr, pixels, lab.reshape(-1), s)
    low = np.flatnonzero(s * 2 <= 1.001)  # what pixel_evidence asks for
    _assert_argmax_at_exact(lr, low, lab.reshape(-1)[low], s[low])


def test_argmax_at_skips_most_classes_of_a_confident_model(rng, monkeypatch):
    # not a vacuous shortcut: with labels, most pixels are settled by the
    # label's own value; without, few of the 19 classes are computed
    truth = nearest(rng.integers(0, 19, size=(3, 4)), (24, 40))
    x = rng.normal(size=(19, 24, 40)) * 1.5
    np.put_along_axis(x, truth[None], np.take_along_axis(x, truth[None], 0) + 6.0, 0)
    lr = LowResProbs(np.round(softmax_probs(x) * 255).astype(np.uint8), (96, 160))
    lab = nearest(truth, (96, 160)).reshape(-1)
    computed = []
    real = LowResProbs._max_over

    def counting(self, live, q, slot, *args):
        computed.append((q.size, int(live.sum(axis=0).take(slot).sum())))
        return real(self, live, q, slot, *args)

    monkeypatch.setattr(LowResProbs, "_max_over", counting)
    pixels = np.arange(lab.size)
    _assert_argmax_at_exact(lr, pixels, lab, lr.gather(lab.reshape(96, 160)).reshape(-1))
    assert 0 < sum(c[0] for c in computed) < pixels.size / 4
    computed.clear()
    _assert_argmax_at_exact(lr, pixels)
    assert sum(c[0] for c in computed) == pixels.size
    assert sum(c[1] for c in computed) < pixels.size * 19 / 4


def test_argmax_at_exact_ties_give_the_first_class():
    # classes 1 and 3 equal everywhere and leading at some cells: the
    # first of them wins, also when the label is the later one
    rng = np.random.default_rng(5)
    p = softmax_probs(rng.normal(size=(4, 5, 6)))
    p[3] = p[1]
    p[1, :, :3] += 1.0
    p[3, :, :3] += 1.0
    p /= p.sum(axis=0)
    for dtype in (np.float32, np.float64, np.uint8):
        stored = np.round(p * 255).astype(np.uint8) if dtype == np.uint8 else p.astype(dtype)
        lr = LowResProbs(stored, (20, 24))
        lab = np.full((20, 24), 3)
        pixels = np.arange(20 * 24)
        s = lr.gather(lab).reshape(-1)
        _assert_argmax_at_exact(lr, pixels, lab.reshape(-1), s)
        pred, _ = lr.argmax_at(pixels, labels=lab.reshape(-1), scores=s)
        assert (pred.reshape(20, 24)[:, :8] == 1).all()  # left of the stored column 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_argmax_at_near_the_bottom_of_the_float_range(rng, dtype):
    # subnormal and tiny values, and stored pixels whose every class is 0
    # (a zero sum: NaN values, at() and argmax_at alike)
    tiny = np.finfo(dtype).tiny
    p = softmax_probs(rng.normal(size=(4, 6, 7)) * 4).astype(dtype)
    p[:, 0, :] *= tiny  # subnormal or 0
    p[:, 1, :] *= tiny * 2**30
    p[:, 2, 2] = 0
    p[1, 3, 3] = tiny / 4
    lr = LowResProbs(p, (23, 29))
    pixels = np.arange(23 * 29)
    lab = rng.integers(0, 4, size=pixels.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = lr.gather(lab.reshape(23, 29)).reshape(-1)
    _assert_argmax_at_exact(lr, pixels)
    _assert_argmax_at_exact(lr, pixels, lab, s)


def test_argmax_at_checks_the_pixels(rng):
    lr = LowResProbs(_stored(rng, 3, (4, 5), "float32", 1.0), (8, 10))
    with pytest.raises(ShapeMismatchError):
        lr.argmax_at([80])
    with pytest.raises(ShapeMismatchError, match="integers"):
        lr.argmax_at([0.5])
    pred, pmax = lr.argmax_at(np.array([], dtype=np.intp), np.uint8)
    assert pred.shape == pmax.shape == (0,) and pred.dtype == np.uint8


def test_hand_values():
    # 1x2 -> 1x4: x = -0.25 (clamped), 0.25, 0.75, 1.25 (clamped)
    p = np.array([[[0.2, 0.6]], [[0.8, 0.4]]], dtype=np.float64)
    lr = LowResProbs(p, (1, 4))
    np.testing.assert_allclose(lr.dense()[0, 0], [0.2, 0.3, 0.5, 0.6], rtol=0, atol=1e-15)
    np.testing.assert_allclose(lr.gather(np.array([[0, 1, 0, 1]]))[0], [0.2, 0.7, 0.5, 0.4], rtol=0, atol=1e-15)
    # uint8 is read as round(p * 255): the 1/255 cancels in the ratio
    q = np.array([[[51, 153]], [[204, 102]]], dtype=np.uint8)
    np.testing.assert_allclose(LowResProbs(q, (1, 4)).dense()[0, 0], [0.2, 0.3, 0.5, 0.6], rtol=0, atol=1e-6)


def test_renormalises_with_the_interpolated_sum():
    # sums 0.5 and 2 (unnormalised on purpose): every interpolated pixel
    # still sums to 1, as a resize followed by a renormalisation does
    p = np.array([[[0.25, 1.0]], [[0.25, 1.0]]])
    d = LowResProbs(p, (1, 5)).dense()
    np.testing.assert_allclose(d.sum(axis=0), 1.0, rtol=0, atol=1e-15)


@pytest.mark.parametrize(
    "src, dst",
    [((10, 14), (37, 53)), ((4, 4), (16, 16)), ((6, 9), (13, 10)), ((5, 7), (40, 56)), ((1, 3), (4, 7)), ((7, 5), (7, 11)), ((3, 8), (9, 8))],
)
def test_geometry_is_opencv_inter_linear(rng, src, dst):
    cv2 = pytest.importorskip("cv2")
    img = rng.random(src).astype(np.float32)
    # two channels summing to exactly 1 (float64): the renormalisation is
    # a no-op, so channel 0 is the plain bilinear interpolation
    two = np.stack([img, 1 - img.astype(np.float64)])
    got = LowResProbs(two, dst).dense()[0]
    expected = cv2.resize(img, (dst[1], dst[0]), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_identity_is_exact(rng):
    p = softmax_probs(rng.normal(size=(4, 7, 9))).astype(np.float32)
    p /= p.sum(axis=0, dtype=np.float32)
    lr = LowResProbs(p, (7, 9))
    # a = a * 1 + b * 0 exactly; the division by the float32-rounded sum is
    # the only change
    np.testing.assert_array_equal(lr.dense(), p / p.sum(axis=0, dtype=np.float64).astype(np.float32))


# --------------------------------------------------------------------------
# validation, where the values live


def _valid(rng, dtype=np.float32, k=3, small=(4, 5)):
    p = softmax_probs(rng.normal(size=(k, *small)))
    return np.round(p * 255).astype(np.uint8) if dtype == np.uint8 else p.astype(dtype)


def test_bad_values_are_refused_at_the_stored_resolution(rng):
    lab = np.zeros((8, 10), np.int64)
    p = _valid(rng)
    p[1, 2, 3] = np.nan
    with pytest.raises(InvalidProbabilitiesError, match=r"pred_probs\[4\] holds NaN.*class 1, row 2, col 3, at the stored 4x5"):
        pixel_evidence(lab, LowResProbs(p, (8, 10)), index=4)
    p = _valid(rng)
    p[0, 1, 1] = -0.5
    with pytest.raises(InvalidProbabilitiesError, match="negative.*look like logits"):
        pixel_evidence(lab, LowResProbs(p, (8, 10)))
    p = _valid(rng) * 3
    with pytest.raises(InvalidProbabilitiesError, match=r"sum to 3, expected 1.*softmax"):
        pixel_evidence(lab, LowResProbs(p, (8, 10)))
    # the cleanlab-compatible functions accept unnormalised scores as given;
    # interpolated values are renormalised by definition, so not these
    with pytest.raises(InvalidProbabilitiesError, match="sum to 3"):
        get_label_quality_scores([lab], [LowResProbs(p, (8, 10))])
    q = _valid(rng, np.uint8)
    q[:, 0, 0] = 0
    with pytest.raises(InvalidProbabilitiesError, match=r"uint8 but its channels at pixel \(row 0, col 0.*sum to 0"):
        pixel_evidence(lab, LowResProbs(q, (8, 10)), check_probs="none")
    # float sums are not checked with check_probs="none"; a zero sum then
    # gives 0/0, which the range check still catches
    z = _valid(rng)
    z[:, 0, 0] = 0
    with pytest.raises(InvalidProbabilitiesError, match=r"outside \[0, 1\]"):
        pixel_evidence(lab, LowResProbs(z, (8, 10)), check_probs="none")


def test_shape_and_label_errors(rng):
    lr = LowResProbs(_valid(rng), (8, 10))
    with pytest.raises(ShapeMismatchError, match=r"read at 8x10 but labels is 8x11"):
        pixel_evidence(np.zeros((8, 11), np.int64), lr)
    with pytest.raises(ShapeMismatchError, match="one image at a time"):
        pixel_evidence(np.zeros((2, 8, 10), np.int64), lr)
    with pytest.raises(InvalidLabelsError, match=r"labels\[2\] holds values \[7\]"):
        pixel_evidence(np.full((8, 10), 7), lr, index=2)
    with pytest.raises(InvalidLabelsError):
        lr.gather(np.full((8, 10), 3))
    with pytest.raises(ShapeMismatchError):
        lr.at([80])
    with pytest.raises(ShapeMismatchError, match=r"\(K, h, w\)"):
        LowResProbs(np.zeros((3, 4)), (8, 10))
    with pytest.raises(ShapeMismatchError, match="positive target"):
        LowResProbs(_valid(rng), (0, 10))
    with pytest.raises(InvalidProbabilitiesError, match="dtype int32"):
        LowResProbs(np.zeros((3, 4, 5), np.int32), (8, 10))


# --------------------------------------------------------------------------
# memory and plumbing


def test_scoring_never_makes_the_dense_array(rng, monkeypatch):
    labels, lowres = _images(rng, 2, 5, (10, 14), (37, 53), np.uint8)

    def refuse(*a, **k):
        raise AssertionError("the K x H x W array was made")

    monkeypatch.setattr(LowResProbs, "dense", refuse)
    monkeypatch.setattr(LowResProbs, "__array__", refuse)
    for method in core.METHODS:
        get_label_quality_scores(labels, lowres, method=method)
        list(iter_label_quality(labels, lowres, method=method, with_issues=True))
    issues = find_label_issues(labels, lowres)
    issue_confusion_matrix(issues, labels, lowres)


def test_memory_is_bounded_by_the_image_area(rng):
    k, small, full = 150, (32, 64), (256, 512)
    stored, truth = lowres_model(rng, k, small, np.uint8, strength=8.0)
    lab = fullres_labels(rng, truth, full, k)
    lr = LowResProbs(stored, full)
    pixel_evidence(lab, lr, with_argmax=True)  # warm-up (lazy imports, caches)
    tracemalloc.start()
    try:
        ev = pixel_evidence(lab, lr, with_argmax=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    area = full[0] * full[1]
    assert peak < 32 * area, (peak, area)  # a few (H,W) arrays (measured 22 B/pixel); K*H*W*4 is 600 B
    assert ev.pred.shape == full


def test_pickles_and_reads_like_an_array(rng):
    lr = LowResProbs(_valid(rng, np.uint8), (8, 10))
    again = pickle.loads(pickle.dumps(lr))
    np.testing.assert_array_equal(again.dense(), lr.dense())
    assert np.shape(lr) == (3, 8, 10) and lr.ndim == 3 and lr.num_classes == 3 and lr.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(lr), lr.dense())
    assert np.asarray(lr).dtype == np.float32  # the computation dtype, not float64
    assert np.asarray(lr, dtype=np.float64).dtype == np.float64
    half = np.asarray(lr, dtype=np.float16)
    assert half.dtype == np.float16
    np.testing.assert_array_equal(half, lr.dense().astype(np.float16))
    assert "stored 4x5 uint8" in repr(lr)
    assert LowResProbs(_valid(rng, np.float64), (8, 10)).dtype == np.float64


def test_argmax_below_reads_only_low_scores(rng, monkeypatch):
    labels, lowres = _images(rng, 1, 5, (10, 14), (37, 53), np.uint8, ignore=255)
    lab, lr = labels[0], lowres[0]
    read = []
    real_argmax_at = LowResProbs.argmax_at

    def counting_argmax_at(self, pixels, *args, **kwargs):
        read.append(np.asarray(pixels).copy())
        return real_argmax_at(self, pixels, *args, **kwargs)

    monkeypatch.setattr(LowResProbs, "argmax_at", counting_argmax_at)
    full = pixel_evidence(lab, lr, ignore=(255,), with_argmax=True)
    n_full = sum(r.size for r in read)
    read.clear()
    low = pixel_evidence(lab, lr, ignore=(255,), with_argmax=True, argmax_below=0.1)
    got = np.concatenate(read)
    s = full.pixel_scores.reshape(-1)
    assert 0 < got.size < n_full and (s[got] < 0.1).all()
    keep = full.pixel_scores < 0.1
    np.testing.assert_array_equal(low.pred[keep], full.pred[keep])
    np.testing.assert_array_equal(low.pred[~keep], full.labels[~keep])


def test_gather_fills_the_out_array(rng):
    lr = LowResProbs(_valid(rng, np.float32, k=4), (9, 11))
    labels = rng.integers(0, 4, size=(9, 11))
    buf = np.full((9, 11), -1.0, dtype=np.float32)
    got = lr.gather(labels, out=buf)
    expected = np.take_along_axis(lr.dense(), labels[None], axis=0)[0]
    np.testing.assert_array_equal(buf, expected)
    np.testing.assert_array_equal(got, expected)


def test_block_means_over_several_strips_equal_the_dense_ones(rng):
    # K x f x W large enough that the LowResProbs path averages several strips
    from segqual_fo.core.issues import block_mean_probs

    k, f = 150, 2
    lr = LowResProbs(_valid(rng, np.uint8, k=k, small=(16, 128)), (64, 512))
    assert (1 << 20) // (k * f * 512) * f < 64  # more than one strip
    got = block_mean_probs(lr, f)
    np.testing.assert_array_equal(got, block_mean_probs(lr.dense(), f))
    assert got.shape == (k, 32, 256)


def test_an_exact_tie_at_one_half_gives_the_first_class_as_dense_does():
    # two classes at exactly 0.5 everywhere, label 1: the argmax is the
    # first maximum (class 0), so every pixel disagrees with its label
    p = np.full((2, 3, 4), 0.5, dtype=np.float32)
    lr = LowResProbs(p, (7, 9))
    labels = np.ones((7, 9), dtype=np.uint8)
    low = pixel_evidence(labels, lr, with_argmax=True)
    dense = pixel_evidence(labels, lr.dense(), with_argmax=True)
    np.testing.assert_array_equal(low.pred, dense.pred)
    assert (low.pred == 0).all()
