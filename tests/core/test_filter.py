"""find_label_issues: identical masks to cleanlab, plus streaming guarantees."""

import warnings

import numpy as np
import pytest

from segqual_fo.core import DirectoryCache, find_label_issues
from segqual_fo.errors import ShapeMismatchError
from tests.core.helpers import blob_labels, plausible_model, random_probs

import cleanlab.segmentation.filter as cl_filter  # noqa: E402  (the parity oracle; a hard test dependency)


def _cleanlab(labels, probs, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cl_filter.find_label_issues(labels, probs, verbose=False, n_jobs=1, **kw)


@pytest.mark.parametrize(
    "n,k,h,w,dtype,ds,batch",
    [
        (1, 2, 4, 4, np.float32, 1, None),
        (6, 3, 8, 8, np.float64, 1, 1),
        (5, 5, 16, 12, np.float32, 2, 2),
        (4, 4, 16, 16, np.float64, 4, None),
        (10, 21, 32, 32, np.float32, 1, None),
        (3, 7, 24, 48, np.float32, 8, 5),
    ],
)
def test_identical_masks_to_cleanlab(rng, n, k, h, w, dtype, ds, batch):
    probs = random_probs(rng, (n, k, h, w), dtype=dtype)
    labels = rng.integers(0, k, (n, h, w))
    ours = find_label_issues(labels, probs, downsample=ds, batch_size=batch)
    ref = _cleanlab(labels, probs, downsample=ds)
    assert ours.dtype == bool and ours.shape == ref.shape
    np.testing.assert_array_equal(ours, ref)
    assert ours.any()


def test_identical_on_realistic_model(rng):
    labels = blob_labels(rng, 12, 6, 32, 32)
    probs = plausible_model(rng, labels, 6, strength=2.0)
    labels[2, 10:20, 10:20] = (labels[2, 10:20, 10:20] + 3) % 6
    np.testing.assert_array_equal(find_label_issues(labels, probs), _cleanlab(labels, probs))


def test_thresholds_are_dataset_wide(rng):
    """Scoring images one by one gives different (wrong) answers."""
    labels = blob_labels(rng, 8, 4, 16, 16)
    probs = plausible_model(rng, labels, 4, strength=1.0)
    whole = find_label_issues(labels, probs)
    one_by_one = np.stack([find_label_issues(labels[i : i + 1], probs[i : i + 1])[0] for i in range(8)])
    assert (whole != one_by_one).any()


def test_streaming_cache_on_disk_is_identical(rng, tmp_path):
    probs = random_probs(rng, (6, 4, 12, 12))
    labels = rng.integers(0, 4, (6, 12, 12))
    a = find_label_issues(labels, probs)
    b = find_label_issues(labels, probs, cache=DirectoryCache(str(tmp_path / "cache")))
    np.testing.assert_array_equal(a, b)


def test_ignored_pixels_never_flagged_nor_counted(rng):
    probs = random_probs(rng, (5, 3, 10, 10))
    labels = rng.integers(0, 3, (5, 10, 10))
    void = labels.copy()
    void[:, 5:] = 255
    m = find_label_issues(void, probs, ignore_index=255)
    assert not m[:, 5:].any()
    # the valid half behaves exactly like a dataset made of the valid half
    half = find_label_issues(labels[:, :5], np.ascontiguousarray(probs[:, :, :5]))
    np.testing.assert_array_equal(m[:, :5], half)


def test_downsample_with_ignore_index(rng):
    probs = random_probs(rng, (4, 3, 8, 8))
    labels = rng.integers(0, 3, (4, 8, 8))
    labels[:, :2, :2] = 255
    m = find_label_issues(labels, probs, ignore_index=255, downsample=2)
    assert not m[:, :2, :2].any()


def test_mixed_sizes_return_lists(rng):
    shapes = [(8, 8), (6, 10), (4, 4)]
    labels = [rng.integers(0, 3, s) for s in shapes]
    probs = [random_probs(rng, (3,) + s) for s in shapes]
    masks = find_label_issues(labels, probs)
    assert isinstance(masks, list) and [m.shape for m in masks] == shapes


def test_downsample_must_divide(rng):
    probs = random_probs(rng, (2, 3, 10, 10))
    labels = rng.integers(0, 3, (2, 10, 10))
    with pytest.raises(ShapeMismatchError, match="not divisible by downsample=4"):
        find_label_issues(labels, probs, downsample=4)


def test_ties_are_deterministic(rng):
    """uint8-quantised probabilities tie a lot: results must not depend on
    threads, batches or which images come first in a tie."""
    labels = blob_labels(rng, 12, 4, 16, 16)
    probs = plausible_model(rng, labels, 4, strength=0.5)
    q = np.round(probs * 255).astype(np.uint8)
    ref = find_label_issues(labels, q, n_jobs=1)
    for jobs in (2, 3):
        np.testing.assert_array_equal(find_label_issues(labels, q, n_jobs=jobs), ref)
    np.testing.assert_array_equal(find_label_issues(list(labels), list(q)), ref)
