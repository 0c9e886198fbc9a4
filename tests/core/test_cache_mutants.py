"""DirectoryCache behaviour that surviving mutants of segqual_fo/core/cache.py
showed untested: the memory budget's bookkeeping (entries put again, a cache
used again after close), closing twice with ``remove=True``, and refusing a
cache file that holds pickled objects. Real files in tmp_path; sizes by hand."""

import os

import numpy as np
import pytest

from segqual_fo.core import DirectoryCache, find_label_issues
from tests.core.helpers import random_probs
from tests.core.test_cache import _entry  # sizes by hand: scores 16 + dis_index 8 + dis_pred 2 + dis_prob 8 + shape 16 = 50 bytes


SIZE = 50


def _files(directory):
    return sorted(os.listdir(directory))


def test_entry_size_is_the_sum_of_its_arrays():
    assert sum(a.nbytes for a in _entry().arrays().values()) == SIZE


def test_putting_a_held_index_again_frees_only_its_own_share(tmp_path):
    # put#7 (`held -= old` became `held = old`): after putting index 0 again,
    # the budget forgot the two other held entries and held a fourth one
    # past the budget instead of writing its file
    d = tmp_path / "c"
    cache = DirectoryCache(str(d), memory_bytes=3 * SIZE)
    for i in range(3):
        cache.put(i, _entry())
    assert _files(d) == []  # three entries fill the budget exactly
    cache.put(0, _entry())  # replaces entry 0: still 3 * SIZE held
    assert _files(d) == []
    cache.put(3, _entry())  # over the budget: goes to a file
    assert _files(d) == ["000000003.npz"]
    got = cache.get(3)
    np.testing.assert_array_equal(got.scores, _entry().scores)
    assert got.shape == (4, 4)
    cache.close()


def test_close_resets_the_budget_for_a_cache_used_again(tmp_path):
    # close#2 (held bytes 1 after close): an entry filling the whole budget
    # went to a file on the next use. close#1 (None): the next put failed.
    d = tmp_path / "c"
    cache = DirectoryCache(str(d), memory_bytes=SIZE)
    cache.put(0, _entry())
    assert _files(d) == []
    cache.close()
    cache.put(0, _entry())
    assert _files(d) == []  # held in memory again, the whole budget free
    np.testing.assert_array_equal(cache.get(0).dis_index, [0, 2])
    cache.close()
    assert _files(d) == []


def test_one_directory_cache_serves_two_runs(rng, tmp_path):
    # close#1: the finder closes its cache at the end of a run; the same
    # DirectoryCache (a kept directory, with a memory budget) passed to a
    # second run raised TypeError (None + size)
    labels = rng.integers(0, 3, (3, 4, 4))
    probs = random_probs(rng, (3, 3, 4, 4), dtype=np.float64, concentration=0.3)
    expected = find_label_issues(labels, probs)
    cache = DirectoryCache(str(tmp_path / "c"), memory_bytes=1 << 20)
    first = find_label_issues(labels, probs, cache=cache)
    second = find_label_issues(labels, probs, cache=cache)
    np.testing.assert_array_equal(first, expected)
    np.testing.assert_array_equal(second, expected)
    assert _files(tmp_path / "c") == []


def test_close_twice_with_remove_is_fine(tmp_path):
    # close#6/#8/#9 (rmtree without ignore_errors): the second close raised
    # FileNotFoundError for the directory the first one removed
    d = tmp_path / "c"
    cache = DirectoryCache(str(d), remove=True)
    cache.put(0, _entry())
    assert _files(d) == ["000000000.npz"]
    cache.close()
    assert not d.exists()
    cache.close()
    assert not d.exists()


def test_close_with_remove_when_the_directory_is_already_gone(tmp_path):
    # the same mutants: a directory removed by someone else before close
    d = tmp_path / "c"
    cache = DirectoryCache(str(d), remove=True)
    os.rmdir(d)
    cache.close()
    assert not d.exists()


def test_a_cache_file_holding_pickled_objects_is_refused(tmp_path):
    # get#10 (allow_pickle=True): a file in the cache directory holding an
    # object array (unpickling it can run any code) was loaded
    d = tmp_path / "c"
    cache = DirectoryCache(str(d))
    cache.put(0, _entry())
    (name,) = _files(d)
    arrays = _entry().arrays()
    arrays["scores"] = np.array([{"not": "an array"}], dtype=object)
    with open(d / name, "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(ValueError, match="allow_pickle"):
        cache.get(0)
    with pytest.raises(ValueError, match="allow_pickle"):
        cache.get(0, keys=("scores",))
    cache.close()
