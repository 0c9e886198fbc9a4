"""Confident-learning issue finder: behaviour that surviving mutants showed no
test held (segqual_fo/core/issues.py).

Oracles: tests/reference.py (a plain reference of the math, validated against
cleanlab) and values worked out by hand in the comments. No mocks: the caches
are the library's own MemoryCache / DirectoryCache.
"""

import numpy as np
import pytest

from segqual_fo import errors
from segqual_fo.core import IssueFinder
from segqual_fo.core.issues import (
    CacheEntry,
    DirectoryCache,
    MemoryCache,
    ScanStats,
    block_mean_probs,
    values_in_bin,
)
from segqual_fo.core.resample import LowResProbs
from segqual_fo.errors import InvalidInputError, InvalidProbabilitiesError, SegQualError
from tests.reference import reference


def _tied_dataset(rng, n=5, k=3, h=6, w=8, q=4):
    """Labels and float64 probabilities that are multiples of 1/q: many
    pixel scores tie, so the cut-off falls inside a group of equal scores."""
    labels, probs = [], []
    for _ in range(n):
        counts = rng.multinomial(q, np.full(k, 1.0 / k), size=h * w)
        p = (counts / q).T.reshape(k, h, w)
        lab = p.argmax(axis=0)
        flip = rng.random((h, w)) < 0.4
        lab[flip] = rng.integers(0, k, size=int(flip.sum()))
        labels.append(lab)
        probs.append(p)
    return labels, probs


def _finder_masks(finder, labels, probs, order=None):
    for i in order if order is not None else range(len(labels)):
        finder.update(labels[i], probs[i], index=int(i))
    sel = finder.finish()
    return sel, [finder.issues(i)[0] for i in range(len(labels))]


# ---------------------------------------------------------------------------
# the cache passes read the arrays they need from a DirectoryCache's files


@pytest.mark.parametrize("downsample", [1, 2])
def test_directory_cache_with_split_ties_matches_the_reference(rng, tmp_path, downsample):
    """Entries written to files (memory_bytes=0) are read back key by key in
    each pass of finish(); the tie quota needs the scores read back."""
    labels, probs = _tied_dataset(rng)
    ref = reference(labels, probs, downsample=downsample)
    finder = IssueFinder(3, downsample=downsample, cache=DirectoryCache(str(tmp_path / "cache")))
    sel, masks = _finder_masks(finder, labels, probs, order=rng.permutation(len(labels)))
    assert sel.num_issues == ref.num_issues
    assert sel.tie_quota  # the cut-off splits a group of tied scores
    assert sorted(p.name for p in (tmp_path / "cache").iterdir())  # entries are files
    for got, want in zip(masks, ref.issues):
        np.testing.assert_array_equal(got, want)
    finder.close()


# ---------------------------------------------------------------------------
# IssueFinder.merge: statistics scanned by another finder into a shared cache


def test_merge_statistics_of_another_finder(rng, tmp_path):
    labels, probs = _tied_dataset(rng, n=6)
    ref = reference(labels, probs)
    cache_dir = str(tmp_path / "shared")
    main = IssueFinder(3, cache=DirectoryCache(cache_dir))
    other = IssueFinder(3, cache=DirectoryCache(cache_dir))
    for i in (0, 2, 4):
        main.update(labels[i], probs[i], index=i)
    for i in (1, 3, 5):
        other.update(labels[i], probs[i], index=i)
    main.merge(other.stats)
    sel = main.finish()
    np.testing.assert_allclose(sel.thresholds, ref.thresholds, rtol=0, atol=1e-12)
    assert sel.num_issues == ref.num_issues
    for i in range(6):
        np.testing.assert_array_equal(main.issues(i)[0], ref.issues[i])


def test_merge_refuses_statistics_of_another_class_count():
    with pytest.raises(InvalidInputError, match="cannot merge statistics of 3 classes into 2"):
        ScanStats(2).merge(ScanStats(3))


# ---------------------------------------------------------------------------
# block_mean_probs: a block whose scores are all 0 (unnormalised input only)


def test_zero_block_error_names_the_image_and_the_right_block():
    # K=2, 4x6, f=2: blocks (0,0) (0,1) (0,2) / (1,0) (1,1) (1,2). Every block
    # but (1,1) sums to exactly 1 (0.5 + 0.5); block (1,1) = rows 2..3, cols 2..3.
    p = np.full((2, 4, 6), 0.5)
    p[:, 2:4, 2:4] = 0.0
    with pytest.raises(InvalidProbabilitiesError) as e:
        block_mean_probs(p, 2, index=5)
    assert e.value.index == 5
    assert str(e.value).startswith("pred_probs[5]: every class score is 0 in the downsample=2 block at rows 2..3, cols 2..3")
    with pytest.raises(InvalidProbabilitiesError) as e:
        block_mean_probs(p, 2)
    assert e.value.index is None
    assert str(e.value).startswith("pred_probs: every class score is 0 in the downsample=2 block at rows 2..3, cols 2..3")


def test_zero_block_in_a_later_strip_of_low_resolution_probabilities():
    """LowResProbs are averaged a strip of blocks at a time (about 2**20
    values per strip): the error still names the image and the block's rows
    in the whole image, not in its strip."""
    k, f, w = 16, 16, 4096  # k * f * w = 2**20: one block row (16 image rows) per strip
    h = 48
    stored = np.full((k, h, w), 1.0 / k)
    stored[:, 32:48, 16:32] = 0.0  # block (2, 1): rows 32..47, cols 16..31, in the third strip
    lowres = LowResProbs(stored, (h, w))
    with pytest.raises(InvalidProbabilitiesError) as e:
        block_mean_probs(lowres, f, index=3)
    assert e.value.index == 3
    assert str(e.value).startswith(
        "pred_probs[3]: every class score is 0 in the downsample=16 block at rows 32..47, cols 16..31"
    )


# ---------------------------------------------------------------------------
# the cut-off's histogram bin: the bins are the top 16 bits of a score's
# float32 representation, so a float64 score just below a bin's lower bound
# that rounds up to it in float32 belongs to that bin; so does a float32 score
# equal to the bound. The exact values collected from the bin must agree.


def _bin_bound(value):
    """The float32 lower bound of the histogram bin holding ``value``."""
    bits = int(np.array(value, dtype=np.float32).view(np.uint32)) >> 16 << 16
    return float(np.array(bits, dtype=np.uint32).view(np.float32))


def test_cutoff_just_below_a_bin_bound_in_float64():
    x = np.nextafter(_bin_bound(0.3), 0.0)  # float64: below the bound, float32(x) == bound
    assert np.float32(x) == _bin_bound(0.3) and x < _bin_bound(0.3)
    # 1x4, K=2: A (label 0, s=x, predicts 1), B (label 1, s=0.9), C (label 1,
    # s=0.4, predicts 0), D (label 0, s=0.95). t0 = (x + 0.95)/2 ~ 0.624,
    # t1 = (0.9 + 0.4)/2 = 0.65. A: p1 = 1-x ~ 0.701 >= 0.65: confident;
    # C: p0 = 0.6 < 0.624: not. T = 1: the lowest score, A, is the issue.
    p = np.array([[[x, 0.1, 0.6, 0.95]], [[1 - x, 0.9, 0.4, 0.05]]])
    labels = np.array([[0, 1, 1, 0]])
    finder = IssueFinder(2)
    finder.update(labels, p, index=0)
    sel = finder.finish()
    assert sel.num_issues == 1 and sel.cutoff == x
    np.testing.assert_array_equal(finder.issues(0)[0], [[True, False, False, False]])
    np.testing.assert_array_equal(reference([labels], [p]).issues[0], [[True, False, False, False]])


@pytest.mark.parametrize(
    "dtype, x",
    [
        (np.float64, np.nextafter(1.015625, 0.0)),  # rounds up to the last bin's bound in float32
        (np.float32, 1.015625),  # exactly the last bin's bound
    ],
)
def test_cutoff_in_the_last_bin_of_unnormalised_scores(dtype, x):
    """Unnormalised scores above 1.015625 all share the last bin."""
    assert _bin_bound(1.02) == 1.015625
    # 1x4, K=2: A (label 0, [x, 3]) predicts 1, B (label 0, [2, 1]) agrees,
    # C (label 1, [0.5, 2.5]) agrees, D (label 0, [1.5, 2]) predicts 1.
    # t1 = 2.5 (C alone): A's 3 >= 2.5 is confident, D's 2 is not: T = 1.
    # Lowest scores: A (x) < D (1.5) < B (2) < C (2.5): only A is an issue.
    p = np.array([[[x, 2.0, 0.5, 1.5]], [[3.0, 1.0, 2.5, 2.0]]], dtype=dtype)
    labels = np.array([[0, 0, 1, 0]])
    finder = IssueFinder(2, allow_unnormalized=True)
    finder.update(labels, p, index=0)
    sel = finder.finish()
    assert sel.num_issues == 1 and sel.cutoff == float(p[0, 0, 0])
    np.testing.assert_array_equal(finder.issues(0)[0], [[True, False, False, False]])
    np.testing.assert_array_equal(reference([labels], [p]).issues[0], [[True, False, False, False]])


# ---------------------------------------------------------------------------
# values_in_bin past its compaction size: the values it collects are merged
# into (unique, count) pairs every 2**22 values, exactly


def test_values_in_bin_compacts_exactly_over_millions_of_values():
    rng = np.random.default_rng(1)
    step = np.float32(2**-24)  # 0.5 + m * 2**-24: 8 distinct float32 scores in 0.5's bin
    n = (1 << 22) + 8  # each big image alone passes the compaction size (2**22 values)
    sizes = [n, n, 1000]  # compactions after images 0 and 1, the rest merged at the end
    cache, images = MemoryCache(), []
    for i, size in enumerate(sizes):
        s = (np.float32(0.5) + rng.integers(0, 8, size=size).astype(np.float32) * step).astype(np.float32)
        s[:3] = (0.25, np.nan, 0.75)  # other bins and an unscored pixel: never collected
        images.append(s[3:])
        cache.put(i, CacheEntry(s[None, :], np.empty(0, np.int32), np.empty(0, np.uint8), np.empty(0, np.float32), (1, size)))
    bin_of_half = int(np.array(0.5, dtype=np.float32).view(np.uint32)) >> 16
    uniq, counts = values_in_bin(cache, range(len(sizes)), bin_of_half)
    want_u, want_c = np.unique(np.concatenate(images), return_counts=True)
    np.testing.assert_array_equal(uniq, want_u)
    np.testing.assert_array_equal(counts, want_c)
    assert counts.sum() == sum(sizes) - 3 * len(sizes)


def test_finish_over_shards_some_without_values_in_the_cutoff_bin(rng):
    """A shard whose images have no score in the cut-off's bin (confident,
    agreeing pixels only) contributes nothing, whatever its position."""
    labels, probs = _tied_dataset(rng, n=4)
    sure = np.zeros((3, 6, 8))
    sure[1] = 1.0  # every pixel: label 1, score 1.0, nothing to find
    labels.insert(2, np.ones((6, 8), dtype=int))
    probs.insert(2, sure)
    labels.append(np.ones((6, 8), dtype=int))
    probs.append(sure.copy())
    ref = reference(labels, probs)
    for split in ([1] * 6, [2, 1, 3], [5, 1]):
        f = IssueFinder(3)
        for i in range(6):
            f.update(labels[i], probs[i], index=i)

        def map_shards(func, *args, f=f, split=split):
            out, start = [], 0
            for size in split:
                out.append(func(f.cache, list(range(start, start + size)), *args))
                start += size
            return out

        sel = f.finish(map_shards=map_shards)
        assert sel.num_issues == ref.num_issues
        for i in range(6):
            np.testing.assert_array_equal(f.issues(i)[0], ref.issues[i])


# ---------------------------------------------------------------------------
# the predicted classes of issue pixels


@pytest.mark.parametrize("k, dtype, sentinel", [(3, np.uint8, 255), (300, np.uint16, 65535)])
@pytest.mark.parametrize("downsample", [1, 2])
def test_pred_holds_the_argmax_where_it_disagrees_in_the_smallest_dtype(rng, k, dtype, sentinel, downsample):
    """pred is the first-maximum class at valid pixels whose argmax differs
    from the label, the sentinel (the dtype's max) elsewhere, in the smallest
    unsigned dtype holding 0..K-1 and the sentinel (as the softmin path)."""
    labels, probs = _tied_dataset(rng, n=2, k=k, h=4, w=6, q=8)
    labels[0][0, 0] = 255  # ignored
    ref = reference(labels, probs, ignore=[255], downsample=downsample)
    finder = IssueFinder(k, ignore_index=255, downsample=downsample)
    assert finder.sentinel == sentinel
    _finder_masks(finder, labels, probs)
    for i in range(2):
        mask, pred = finder.issues(i)
        assert pred.dtype == dtype
        disagree = ref.valid[i] & (ref.argmax[i] != labels[i])
        np.testing.assert_array_equal(pred, np.where(disagree, ref.argmax[i], sentinel))
        np.testing.assert_array_equal(mask, ref.issues[i])


def test_argmax_probability_equal_to_threshold_minus_tolerance_is_confident():
    # 1x4, K=2: B and C (label 1, [0.25, 0.75]) give t1 = 0.75 exactly; A
    # (label 0) predicts 1 with p1 = 0.75 - 1e-6, exactly t1 - tolerance:
    # confident (>=), so T = 1 and A, the lowest score, is an issue.
    p1 = 0.75 - 1e-6
    p = np.array([[[1 - p1, 0.25, 0.25, 0.9]], [[p1, 0.75, 0.75, 0.1]]])
    labels = np.array([[0, 1, 1, 0]])
    finder = IssueFinder(2)
    finder.update(labels, p, index=0)
    sel = finder.finish()
    assert sel.thresholds[1] == 0.75
    assert sel.num_issues == 1
    np.testing.assert_array_equal(finder.issues(0)[0], [[True, False, False, False]])
    np.testing.assert_array_equal(reference([labels], [p]).issues[0], [[True, False, False, False]])


# ---------------------------------------------------------------------------
# errors of a scanned image name it: the error type, .index and the message


def _zero_block_probs():
    p = np.full((2, 4, 4), 0.5)
    p[:, 2:4, 0:2] = 0.0  # the downsample=2 block at rows 2..3, cols 0..1
    return p


@pytest.mark.parametrize(
    "labels, probs, error, message",
    [
        (np.zeros((4, 4), int), np.full((3, 4, 4), 1 / 3), "ShapeMismatchError", "pred_probs[6] has 3 class channels"),
        (np.zeros((4, 5), int), np.full((2, 4, 5), 0.5), "ShapeMismatchError", "image 6 is 4x5, not divisible by downsample=2"),
        (np.zeros((4, 4), int), np.full((2, 4, 4), np.nan), "InvalidProbabilitiesError", "pred_probs[6] holds NaN"),
        (np.full((4, 4), 7), np.full((2, 4, 4), 0.5), "InvalidLabelsError", "labels[6] holds values [7]"),
        (np.zeros((4, 4), int), _zero_block_probs(), "InvalidProbabilitiesError", "pred_probs[6]: every class score is 0 in the downsample=2 block at rows 2..3, cols 0..1"),
    ],
    ids=["classes", "undivisible", "nan", "label", "zero-block"],
)
def test_scan_errors_name_the_image(labels, probs, error, message):
    finder = IssueFinder(2, downsample=2, allow_unnormalized=True)
    finder.update(np.zeros((4, 4), int), np.full((2, 4, 4), 0.5), index=0)
    with pytest.raises(getattr(errors, error)) as e:
        finder.update(labels, probs, index=6)
    assert type(e.value).__name__ == error
    assert e.value.index == 6
    assert message in str(e.value)


# ---------------------------------------------------------------------------
# finish(progress=): called after each cache entry read, (done, total)


@pytest.mark.parametrize("with_issues", [True, False])
def test_finish_reports_progress_over_both_cache_passes(rng, with_issues):
    labels, probs = _tied_dataset(rng, n=3)
    if not with_issues:  # every pixel agrees with its label: T = 0, one pass
        labels = [p.argmax(axis=0) for p in probs]
    finder = IssueFinder(3)
    for i in range(3):
        finder.update(labels[i], probs[i], index=i)
    calls = []
    sel = finder.finish(progress=lambda done, total: calls.append((done, total)))
    assert (sel.num_issues > 0) == with_issues
    if with_issues:  # count_confident, then values_in_bin: one call per image each
        assert calls == [(d, 6) for d in range(1, 7)]
    else:  # count_confident, then done
        assert calls == [(1, 6), (2, 6), (3, 6), (6, 6)]


# ---------------------------------------------------------------------------
# a cut-off in the histogram's first bins: scores of exactly 0 (bin 0, common
# with quantised probabilities) and tiny float64 ones (float32 denormals)

_TINY = 1e-40  # a float32 denormal: histogram bin 1


@pytest.mark.parametrize(
    "pixels, expected",
    [
        # K=3, labels: A B C E = 0, D = 1 (t1 = 0.9, D alone). A and C
        # predict 1 with p=1: confident; B predicts 1 with 0.5 < 0.9: not.
        # T = 2; A, B, C tie at s = 0: the first two in pixel order, A and B
        # (both disagree), are issues, C is not.
        ([[0, 1, 0], [0, 0.5, 0.5], [0, 1, 0], [0.1, 0.9, 0], [1, 0, 0]], [True, True, False, False, False]),
        # A (s = 0) and B (s = tiny) confident, C (s = tiny) not: T = 2, the
        # cut-off is in bin 1 after A's bin 0: A, then B of the tied B, C.
        (
            [[0, 1, 0], [_TINY, 1 - _TINY, 0], [_TINY, 0.5, 0.5 - _TINY], [0.1, 0.9, 0], [1, 0, 0]],
            [True, True, False, False, False],
        ),
    ],
    ids=["zeros", "denormal"],
)
def test_cutoff_in_the_first_histogram_bins(pixels, expected):
    p = np.array(pixels, dtype=np.float64).T[:, None, :]
    labels = np.array([[0, 0, 0, 1, 0]])
    finder = IssueFinder(3)
    finder.update(labels, p, index=0)
    sel = finder.finish()
    assert sel.num_issues == 2
    np.testing.assert_array_equal(finder.issues(0)[0], [expected])
    np.testing.assert_array_equal(reference([labels], [p]).issues[0], [expected])


def test_threshold_is_the_correctly_rounded_mean_at_a_rounding_tie():
    """Class 0's scores 0.5 and 2**-54 (one per image) sum exactly to
    0.5 + 2**-54, halfway between two float64 values: the correctly rounded
    sum is 0.5 (ties to even), so t0 = 0.25 exactly. Nothing may be added to
    the exact sum (not even 2**-1074, which would round it up)."""
    finder = IssueFinder(2)
    finder.update(np.array([[0]]), np.array([[[0.5]], [[0.5]]]), index=0)
    finder.update(np.array([[0]]), np.array([[[2.0**-54]], [[1.0]]]), index=1)
    finder.update(np.array([[1]]), np.array([[[0.25]], [[0.75]]]), index=2)
    t = finder.finish().thresholds
    assert t.tolist() == [0.25, 0.75]
    labels = [np.array([[0]]), np.array([[0]]), np.array([[1]])]
    probs = [np.array([[[0.5]], [[0.5]]]), np.array([[[2.0**-54]], [[1.0]]]), np.array([[[0.25]], [[0.75]]])]
    assert reference(labels, probs).thresholds.tolist() == [0.25, 0.75]


# ---------------------------------------------------------------------------
# IssueFinder's arguments


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        ((0,), {}, "num_classes must be a positive integer, got 0."),
        ((None,), {}, "num_classes must be a positive integer, got None."),
        ((2,), {"downsample": 0}, "downsample must be a positive integer, got 0."),
        ((2,), {"downsample": None}, "downsample must be a positive integer, got None."),
    ],
)
def test_bad_arguments_are_refused_by_name(args, kwargs, message):
    with pytest.raises(InvalidInputError) as e:
        IssueFinder(*args, **kwargs)
    assert str(e.value) == message


def test_defaults_check_the_probabilities_at_full_resolution():
    """By default: downsample 1 (a 1x3 image is fine), probabilities checked
    (unnormalised scores and NaN refused)."""
    finder = IssueFinder(2)
    assert finder.downsample == 1
    with pytest.raises(InvalidProbabilitiesError):
        finder.update(np.zeros((1, 3), int), np.full((2, 1, 3), 0.9), index=0)
    with pytest.raises(InvalidProbabilitiesError):
        finder.update(np.zeros((1, 3), int), np.full((2, 1, 3), np.nan), index=1)
    finder.update(np.zeros((1, 3), int), np.full((2, 1, 3), 0.5), index=2)


def test_split_ties_at_a_cutoff_above_other_values_of_its_bin():
    """The cut-off is the second distinct score of its histogram bin and
    only some of its ties are taken."""
    assert _bin_bound(0.401) == _bin_bound(0.4015)  # one bin holds both scores
    # 1x5, K=3, labels [0, 0, 0, 2, 1]: t1 = 0.5 (E), t2 = 1.0 (D).
    # A (s=0.401) and B (s=0.4015) predict 1 with 0.599 / 0.5985 >= 0.5:
    # confident; C (s=0.4015) predicts 2 with 0.5985 < 1: not. T = 2: A, then
    # B of the tied B, C (pixel order). C disagrees but is not taken.
    p = np.array(
        [[0.401, 0.599, 0.0], [0.4015, 0.5985, 0.0], [0.4015, 0.0, 0.5985], [0.0, 0.0, 1.0], [0.1, 0.5, 0.4]]
    ).T[:, None, :]
    labels = np.array([[0, 0, 0, 2, 1]])
    finder = IssueFinder(3)
    finder.update(labels, p, index=0)
    sel = finder.finish()
    assert sel.num_issues == 2 and sel.cutoff == 0.4015 and sel.tie_quota == {0: 1}
    expected = [[True, True, False, False, False]]
    np.testing.assert_array_equal(finder.issues(0)[0], expected)
    np.testing.assert_array_equal(reference([labels], [p]).issues[0], expected)


def test_every_pixel_an_issue_with_scores_in_and_above_the_last_bin():
    """Scores in the last bin (1.015625 <= s < 1.0234375) and above it (any
    unnormalised score) are counted together in the last bin."""
    # 1x3, K=2, all labelled 0 and predicting 1 (t1 = 2e-6: all confident):
    # T = 3 = every pixel.
    p = np.array([[[1.02, 2.0, 0.5]], [[3.0, 3.0, 3.0]]])
    labels = np.zeros((1, 3), int)
    finder = IssueFinder(2, allow_unnormalized=True)
    finder.update(labels, p, index=0)
    sel = finder.finish()
    assert sel.num_issues == 3 and sel.cutoff == 2.0
    np.testing.assert_array_equal(finder.issues(0)[0], [[True, True, True]])


def test_a_finished_finder_takes_no_more_images():
    finder = IssueFinder(2)
    finder.update(np.zeros((1, 2), int), np.full((2, 1, 2), 0.5), index=0)
    finder.finish()
    message = "IssueFinder.finish() was already called; create a new finder."
    with pytest.raises(SegQualError) as e:
        finder.update(np.zeros((1, 2), int), np.full((2, 1, 2), 0.5), index=1)
    assert str(e.value) == message
    with pytest.raises(SegQualError, match="already called"):
        finder.merge(ScanStats(2))


# ---------------------------------------------------------------------------
# downsample: a block whose rounded label is itself an ignored value


@pytest.mark.parametrize("pixel_ignored_elsewhere", [False, True])
def test_block_rounding_to_an_ignored_class_is_left_out(rng, pixel_ignored_elsewhere):
    """ignore_index=1 with K=3: a block of labels 0 and 2 has the rounded
    mean 1, an ignored value, so the block is not scored (whether or not
    some pixels of the image are themselves ignored)."""
    labels, probs = [], []
    for _ in range(3):
        truth = rng.choice([0, 2], size=(2, 3)).repeat(2, axis=0).repeat(2, axis=1)  # 2x2 blocks
        p = np.full((3, 4, 6), 0.1)
        np.put_along_axis(p, truth[None], 0.8, axis=0)
        lab = truth.copy()
        flip = rng.random((2, 3)).repeat(2, axis=0).repeat(2, axis=1) < 0.4
        lab[flip] = 2 - lab[flip]  # confidently wrong blocks (no pixel carries 1...)
        lab[0:2, 0:2] = [[0, 2], [2, 0]]  # ...but this block's mean rounds to 1
        labels.append(lab)
        probs.append(p)
    if pixel_ignored_elsewhere:
        labels[0][2:4, 4:6] = 1  # a whole block of ignored pixels: not scored either
        labels[1][3, 5] = 1  # one ignored pixel: its block is scored
    ref = reference(labels, probs, ignore=[1], downsample=2)
    assert not ref.grids[0].valid[0][0]
    finder = IssueFinder(3, ignore_index=1, downsample=2)
    sel, masks = _finder_masks(finder, labels, probs)
    np.testing.assert_array_equal(sel.thresholds, ref.thresholds)
    assert sel.num_issues == ref.num_issues and ref.num_issues > 0
    for got, want in zip(masks, ref.issues):
        np.testing.assert_array_equal(got, want)


def test_scan_fills_the_given_pixel_score_buffer():
    # 1x3, K=2, labels [0, 1, 255 (ignored)]: s = p[label] = [0.25, 0.5, NaN]
    p = np.array([[[0.25, 0.5, 0.9]], [[0.75, 0.5, 0.1]]])
    out = np.full((1, 3), -1.0)
    finder = IssueFinder(2, ignore_index=255)
    partial = finder.scan(np.array([[0, 1, 255]]), p, index=0, out=out)
    np.testing.assert_array_equal(out, [[0.25, 0.5, np.nan]])
    np.testing.assert_array_equal(partial.evidence.pixel_scores, out)
