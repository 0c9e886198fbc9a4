"""find_label_issues: arguments users pass and defaults they rely on."""

import os

import numpy as np
import pytest

from segqual_fo.core import DirectoryCache, find_label_issues
from segqual_fo.errors import InvalidInputError
from tests.core.helpers import random_probs


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_batch_size_is_validated(rng, batch_size):
    # accepted for cleanlab compatibility, but a bad value is still refused
    probs = random_probs(rng, (2, 3, 4, 4))
    labels = rng.integers(0, 3, (2, 4, 4))
    with pytest.raises(InvalidInputError, match="batch_size must be a positive integer"):
        find_label_issues(labels, probs, batch_size=batch_size)


def test_downsample_none_is_refused(rng):
    probs = random_probs(rng, (2, 3, 4, 4))
    labels = rng.integers(0, 3, (2, 4, 4))
    with pytest.raises(InvalidInputError, match="downsample must be a positive integer, got None"):
        find_label_issues(labels, probs, downsample=None)


def test_given_directory_cache_receives_one_entry_per_image_and_is_kept(rng, tmp_path):
    # the cache the caller passes is the one used (bounded memory on disk);
    # a given directory is not removed by default (remove=False)
    probs = random_probs(rng, (3, 3, 8, 8))
    labels = rng.integers(0, 3, (3, 8, 8))
    cache_dir = tmp_path / "cache"
    masks = find_label_issues(labels, probs, cache=DirectoryCache(str(cache_dir)))
    assert sorted(os.listdir(cache_dir)) == ["000000000.npz", "000000001.npz", "000000002.npz"]
    np.testing.assert_array_equal(masks, find_label_issues(labels, probs))


def test_default_is_silent(rng, capsys):
    # verbose=False by default (cleanlab prints by default; we do not)
    probs = random_probs(rng, (2, 3, 4, 4))
    labels = rng.integers(0, 3, (2, 4, 4))
    find_label_issues(labels, probs)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    find_label_issues(labels, probs, verbose=True)
    assert "selecting issues" in capsys.readouterr().err


def test_masks_are_bool_for_stacked_and_mixed_sizes(rng):
    stacked = find_label_issues(rng.integers(0, 3, (2, 4, 4)), random_probs(rng, (2, 3, 4, 4)))
    assert stacked.dtype == np.bool_
    mixed = find_label_issues(
        [rng.integers(0, 3, (4, 4)), rng.integers(0, 3, (2, 6))],
        [random_probs(rng, (3, 4, 4)), random_probs(rng, (3, 2, 6))],
    )
    assert [m.dtype for m in mixed] == [np.bool_, np.bool_]
