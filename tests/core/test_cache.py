"""MemoryCache and DirectoryCache: what is stored, where, and what is removed."""

import os

import numpy as np
import pytest

from segqual_fo.core import DirectoryCache, IssueFinder, MemoryCache, find_label_issues, iter_label_quality
from segqual_fo.core.cache import CacheEntry
from tests.core.helpers import random_probs


def _entry(with_full=False):
    return CacheEntry(
        scores=np.array([[0.5, np.nan], [0.25, 1.0]], dtype=np.float32),
        dis_index=np.array([0, 2], dtype=np.int32),
        dis_pred=np.array([3, 1], dtype=np.uint8),
        dis_prob=np.array([0.5, 0.75], dtype=np.float32),
        shape=(4, 4),
        full_dis_index=np.array([1, 5, 9], dtype=np.int32) if with_full else None,
        full_dis_pred=np.array([2, 2, 0], dtype=np.uint8) if with_full else None,
    )


def _assert_entries_equal(a, b):
    np.testing.assert_array_equal(a.scores, b.scores)
    for name in ("dis_index", "dis_pred", "dis_prob", "full_dis_index", "full_dis_pred"):
        x, y = getattr(a, name), getattr(b, name)
        if x is None:
            assert y is None, name
        else:
            np.testing.assert_array_equal(x, y)
            assert x.dtype == y.dtype, name
    assert a.shape == b.shape and all(type(v) is int for v in b.shape)


@pytest.mark.parametrize("with_full", [False, True])
def test_directory_cache_round_trip(tmp_path, with_full):
    cache = DirectoryCache(str(tmp_path / "c"))
    e = _entry(with_full)
    cache.put(12, e)
    assert os.listdir(tmp_path / "c") == ["000000012.npz"]
    _assert_entries_equal(e, cache.get(12))
    # keys= reads only some arrays; the others come back empty, shape always
    part = cache.get(12, keys=("dis_pred", "dis_prob"))
    np.testing.assert_array_equal(part.dis_pred, e.dis_pred)
    np.testing.assert_array_equal(part.dis_prob, e.dis_prob)
    assert part.scores.size == 0 and part.dis_index.size == 0 and part.shape == (4, 4)
    assert part.full_dis_index is None
    part = cache.get(12, keys=("scores",))
    np.testing.assert_array_equal(part.scores, e.scores)
    assert part.dis_pred.size == 0
    # an entry is replaced, not appended to
    cache.put(12, _entry(False))
    assert cache.get(12).full_dis_index is None
    assert os.listdir(tmp_path / "c") == ["000000012.npz"]


def test_memory_cache_round_trip():
    cache = MemoryCache()
    e = _entry(True)
    cache.put(3, e)
    assert cache.get(3) is e
    cache.close()
    with pytest.raises(KeyError):
        cache.get(3)


def test_given_directory_is_kept_unless_remove(tmp_path):
    keep = DirectoryCache(str(tmp_path / "keep"))
    keep.put(0, _entry())
    keep.close()
    assert os.listdir(tmp_path / "keep") == ["000000000.npz"]
    gone = DirectoryCache(str(tmp_path / "gone"), remove=True)
    gone.put(0, _entry())
    gone.close()
    assert not (tmp_path / "gone").exists()


def test_temporary_directory_is_removed_and_nothing_lands_in_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cache = DirectoryCache()
    directory = cache.directory
    assert os.path.isdir(directory) and os.path.basename(directory).startswith("segqual-cache-")
    cache.put(1, _entry())
    assert os.listdir(directory) == ["000000001.npz"]
    cache.close()
    assert not os.path.exists(directory)
    assert os.listdir(tmp_path) == []
    cache.close()  # twice is fine


@pytest.mark.parametrize("downsample", [2, 4])
def test_directory_cache_with_downsampling_gives_the_memory_masks(rng, tmp_path, downsample):
    # with downsampling the full-resolution disagreeing pixels live in the
    # cache too; read back from disk they must give the same masks and scores
    labels = rng.integers(0, 3, (4, 8, 8))
    probs = random_probs(rng, (4, 3, 8, 8), dtype=np.float64, concentration=0.3)
    memory = find_label_issues(labels, probs, downsample=downsample)
    assert memory.any()
    disk = find_label_issues(labels, probs, downsample=downsample, cache=DirectoryCache(str(tmp_path / "a")))
    np.testing.assert_array_equal(disk, memory)
    ref = list(iter_label_quality(labels, probs, method="num_pixel_issues", downsample=downsample, with_issues=True))
    got = list(
        iter_label_quality(
            labels, probs, method="num_pixel_issues", downsample=downsample, with_issues=True,
            cache=DirectoryCache(str(tmp_path / "b")),
        )
    )
    for r, g in zip(ref, got):
        np.testing.assert_array_equal(g.issues, r.issues)
        np.testing.assert_array_equal(g.pred, r.pred)
        assert g.score == r.score


def test_finder_close_releases_the_cache(rng, tmp_path):
    finder = IssueFinder(3, cache=DirectoryCache(str(tmp_path / "c"), remove=True))
    finder.update(rng.integers(0, 3, (4, 4)), random_probs(rng, (3, 4, 4)), index=0)
    assert (tmp_path / "c").exists()
    finder.close()
    assert not (tmp_path / "c").exists()


# -- DirectoryCache(memory_bytes=...): the first entries stay in memory ---------------------


def _entry_bytes(e):
    return sum(a.nbytes for a in e.arrays().values())


def test_directory_cache_holds_entries_up_to_its_budget_then_spills(tmp_path):
    e = _entry(with_full=True)
    size = _entry_bytes(e)
    cache = DirectoryCache(str(tmp_path / "c"), memory_bytes=2 * size)
    for i in range(3):
        cache.put(i, e)
    # two fit the budget, the third went to a file
    assert sorted(os.listdir(tmp_path / "c")) == ["000000002.npz"]
    for i in range(3):
        _assert_entries_equal(e, cache.get(i))
        _assert_entries_equal(e, cache.get(i, keys=("scores",)) if i < 2 else e)
    # putting an index again replaces its entry (and frees its share)
    cache.put(0, _entry())
    _assert_entries_equal(_entry(), cache.get(0))
    cache.close()
    assert not os.path.exists(tmp_path / "c" / "000000000.npz")


def test_held_entries_own_their_arrays(tmp_path):
    big = np.arange(1000, dtype=np.float32)
    e = _entry()
    e.dis_prob = big[:2]  # a view of a bigger array
    cache = DirectoryCache(str(tmp_path / "c"), memory_bytes=1 << 20)
    cache.put(0, e)
    held = cache.get(0)
    assert held.dis_prob.base is None
    big[:2] = -1  # the caller's array changing later does not reach the entry
    np.testing.assert_array_equal(held.dis_prob, [0.0, 1.0])


@pytest.mark.parametrize("budget", [0, 3000, 1 << 30])
@pytest.mark.parametrize("downsample", [1, 2])
def test_issue_count_is_the_same_whatever_the_memory_budget(rng, tmp_path, budget, downsample):
    # 0: every entry on disk (as before), 3000 bytes: some in memory, some on
    # disk; 1 GiB: all in memory
    labels = rng.integers(0, 3, (6, 8, 8))
    probs = random_probs(rng, (6, 3, 8, 8), dtype=np.float32, concentration=0.3)
    ref = list(iter_label_quality(labels, probs, method="num_pixel_issues", downsample=downsample, with_issues=True))
    cache = DirectoryCache(str(tmp_path / "b"), memory_bytes=budget)
    got = list(
        iter_label_quality(
            labels, probs, method="num_pixel_issues", downsample=downsample, with_issues=True, cache=cache
        )
    )
    assert any(r.num_issues for r in ref)
    for r, g in zip(ref, got):
        np.testing.assert_array_equal(g.issues, r.issues)
        np.testing.assert_array_equal(g.pred, r.pred)
        np.testing.assert_array_equal(g.pixel_scores, r.pixel_scores)
        assert g.score == r.score
