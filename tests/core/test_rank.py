"""get_label_quality_scores: cleanlab parity, and what cleanlab cannot do."""

import warnings

import numpy as np
import pytest

from segqual_fo.core import METHODS, get_label_quality_scores, issues_from_scores
from segqual_fo.errors import InvalidInputError, ShapeMismatchError
from tests.core.helpers import blob_labels, plausible_model, random_probs

import cleanlab.segmentation.rank as cl_rank  # noqa: E402  (the parity oracle; a hard test dependency)

CASES = [
    # N, K, H, W, dtype, batch_size, downsample (num_pixel_issues only)
    (1, 2, 4, 4, np.float32, None, 1),
    (5, 3, 8, 8, np.float32, 1, 2),
    (7, 5, 16, 12, np.float64, 3, 4),
    (12, 21, 32, 32, np.float32, None, 1),
    (4, 4, 24, 40, np.float64, 100, 8),
]


def _cleanlab(labels, probs, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cl_rank.get_label_quality_scores(labels, probs, verbose=False, n_jobs=1, **kw)


@pytest.mark.parametrize("n,k,h,w,dtype,batch,ds", CASES)
def test_softmin_parity(rng, n, k, h, w, dtype, batch, ds):
    probs = random_probs(rng, (n, k, h, w), dtype=dtype)
    labels = rng.integers(0, k, (n, h, w))
    ours, ours_px = get_label_quality_scores(labels, probs, batch_size=batch)
    ref, ref_px = _cleanlab(labels, probs)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours_px, ref_px, rtol=0, atol=0)


@pytest.mark.parametrize("temperature", [0.01, 0.5, 3.0])
def test_softmin_parity_temperatures(rng, temperature):
    probs = random_probs(rng, (6, 4, 16, 16))
    labels = rng.integers(0, 4, (6, 16, 16))
    ours, _ = get_label_quality_scores(labels, probs, temperature=temperature)
    ref, _ = _cleanlab(labels, probs, temperature=temperature)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("n,k,h,w,dtype,batch,ds", CASES)
def test_num_pixel_issues_parity(rng, n, k, h, w, dtype, batch, ds):
    probs = random_probs(rng, (n, k, h, w), dtype=dtype)
    labels = rng.integers(0, k, (n, h, w))
    ours, ours_px = get_label_quality_scores(
        labels, probs, method="num_pixel_issues", downsample=ds, batch_size=batch
    )
    ref, ref_px = _cleanlab(labels, probs, method="num_pixel_issues", downsample=ds)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours_px, ref_px, rtol=0, atol=0)


def test_parity_on_realistic_model(rng):
    labels = blob_labels(rng, 10, 6, 32, 32)
    probs = plausible_model(rng, labels, 6)
    labels[3, :8, :8] = (labels[3, :8, :8] + 1) % 6  # a planted error
    for method in METHODS:
        ours, _ = get_label_quality_scores(labels, probs, method=method)
        ref, _ = _cleanlab(labels, probs, method=method)
        np.testing.assert_allclose(ours, ref, atol=1e-6)
        assert int(np.argmin(ours)) == 3


def test_memmap_and_sequences_give_the_same(rng, tmp_path):
    probs = random_probs(rng, (6, 3, 10, 10))
    labels = rng.integers(0, 3, (6, 10, 10))
    path = tmp_path / "probs.npy"
    np.save(path, probs)
    mm = np.load(path, mmap_mode="r")
    for method in METHODS:
        a, pa = get_label_quality_scores(labels, probs, method=method)
        b, pb = get_label_quality_scores(labels, mm, method=method)
        c, pc = get_label_quality_scores(list(labels), list(probs), method=method)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
        assert isinstance(pc, np.ndarray) and pc.shape == (6, 10, 10)  # same size: stacked
        np.testing.assert_array_equal(pa, pc)


@pytest.mark.parametrize("method", METHODS)
def test_results_do_not_depend_on_threads_or_batches(rng, method):
    probs = random_probs(rng, (9, 4, 12, 12))
    labels = rng.integers(0, 4, (9, 12, 12))
    ref, _ = get_label_quality_scores(labels, probs, method=method, n_jobs=1, batch_size=1)
    for jobs, batch in [(2, None), (2, 4), (3, 2)]:
        out, _ = get_label_quality_scores(labels, probs, method=method, n_jobs=jobs, batch_size=batch)
        np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("method", METHODS)
def test_mixed_sizes(rng, method):
    shapes = [(8, 8), (12, 6), (8, 8), (4, 10)]
    labels = [rng.integers(0, 3, s) for s in shapes]
    probs = [random_probs(rng, (3,) + s) for s in shapes]
    scores, pixel_scores = get_label_quality_scores(labels, probs, method=method)
    assert isinstance(pixel_scores, list)
    assert [p.shape for p in pixel_scores] == shapes
    if method == "softmin":
        # each image is scored on its own: same as scoring it alone
        for i in range(4):
            alone, _ = get_label_quality_scores([labels[i]], [probs[i]])
            assert scores[i] == alone[0]
    else:
        # same answer as cleanlab on the images padded into one batch? No: padding
        # changes the thresholds. Check the definition instead: 1 - flagged fraction.
        from segqual_fo.core import find_label_issues

        masks = find_label_issues(labels, probs)
        np.testing.assert_allclose(scores, [1 - m.mean() for m in masks])


@pytest.mark.parametrize("method", METHODS)
def test_ignore_index_excludes_pixels(rng, method):
    probs = random_probs(rng, (5, 3, 10, 10))
    labels = rng.integers(0, 3, (5, 10, 10))
    void = labels.copy()
    void[:, :, :3] = 255
    scores, px = get_label_quality_scores(void, probs, method=method, ignore_index=255)
    assert np.isnan(px[:, :, :3]).all() and not np.isnan(px[:, :, 3:]).any()
    if method == "softmin":
        # identical to scoring only the valid columns
        ref, _ = get_label_quality_scores(labels[:, :, 3:], np.ascontiguousarray(probs[:, :, :, 3:]))
        np.testing.assert_allclose(scores, ref, atol=1e-12)
    else:
        from segqual_fo.core import find_label_issues

        m = find_label_issues(void, probs, ignore_index=255)
        assert not m[:, :, :3].any()
        np.testing.assert_allclose(scores, 1 - m[:, :, 3:].reshape(5, -1).mean(1))


def test_ignored_value_that_is_a_class(rng):
    """CamVid style: class 2 is 'void' and also a probability channel."""
    probs = random_probs(rng, (4, 3, 8, 8))
    labels = rng.integers(0, 3, (4, 8, 8))
    scores, px = get_label_quality_scores(labels, probs, ignore_index=2)
    assert np.isnan(px[labels == 2]).all()
    assert np.isfinite(scores).all()


def test_all_ignored_image_scores_nan(rng):
    probs = random_probs(rng, (2, 3, 4, 4))
    labels = np.zeros((2, 4, 4), int)
    labels[1] = 255
    for method in METHODS:
        scores, _ = get_label_quality_scores(labels, probs, method=method, ignore_index=[255])
        assert np.isfinite(scores[0]) and np.isnan(scores[1])


def test_float16_close_to_float32(rng):
    probs = random_probs(rng, (4, 5, 16, 16))
    labels = rng.integers(0, 5, (4, 16, 16))
    a, _ = get_label_quality_scores(labels, probs)
    b, pb = get_label_quality_scores(labels, probs.astype(np.float16))
    assert pb.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=2e-3)


def test_planted_error_ranks_worst(rng):
    labels = blob_labels(rng, 20, 5, 32, 32)
    probs = plausible_model(rng, labels, 5)
    noisy = labels.copy()
    noisy[7, 4:14, 4:14] = (noisy[7, 4:14, 4:14] + 2) % 5
    for method in METHODS:
        scores, _ = get_label_quality_scores(noisy, probs, method=method)
        assert int(np.argmin(scores)) == 7


def test_bad_arguments(rng):
    probs = random_probs(rng, (2, 3, 4, 4))
    labels = rng.integers(0, 3, (2, 4, 4))
    with pytest.raises(InvalidInputError, match="method must be one of"):
        get_label_quality_scores(labels, probs, method="mean")
    with pytest.raises(InvalidInputError, match="temperature"):
        get_label_quality_scores(labels, probs, temperature=0)
    with pytest.raises(InvalidInputError, match="batch_size"):
        get_label_quality_scores(labels, probs, batch_size=0)
    with pytest.raises(ShapeMismatchError, match="3 images but pred_probs holds 2"):
        get_label_quality_scores(np.zeros((3, 4, 4), int), probs)
    with pytest.raises(ShapeMismatchError, match=r"single image.*labels\[None\]"):
        get_label_quality_scores(labels[0], probs)
    with pytest.raises(InvalidInputError, match="empty"):
        get_label_quality_scores([], [])
    with pytest.warns(UserWarning, match="downsample"):
        get_label_quality_scores(labels, probs, downsample=2)


def test_issues_from_scores(rng):
    image_scores = np.array([0.5, 0.05, 0.01, 0.3])
    np.testing.assert_array_equal(issues_from_scores(image_scores, threshold=0.1), [2, 1])
    px = np.array([[[0.05, 0.5], [np.nan, 0.09]]])
    np.testing.assert_array_equal(issues_from_scores(image_scores[:1], px, 0.1), [[[True, False], [False, True]]])
    with pytest.raises(InvalidInputError, match="threshold"):
        issues_from_scores(image_scores, threshold=2)
