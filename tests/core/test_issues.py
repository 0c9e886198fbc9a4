"""IssueFinder: the streaming building block, with hand-made cases."""

import numpy as np
import pytest

from segqual_fo.core import IssueFinder
from segqual_fo.core.issues import CONFIDENT_THRESHOLD_MIN
from segqual_fo.errors import InvalidInputError, SegQualError
from tests.core.helpers import random_probs


def _probs(rows):
    """(K,1,W) probabilities from a list of per-pixel distributions."""
    return np.array(rows, dtype=np.float64).T[:, None, :]


def test_hand_computed_selection():
    # four pixels of one image, K=2
    p = _probs([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8]])
    labels = np.array([[0, 0, 0, 1]])
    # thresholds: class 0: mean(0.9, 0.3, 0.6) = 0.6; class 1: 0.8
    # disagreeing pixel 1 (argmax 1, p=0.7 < 0.8 - 1e-6): not confident -> T = 0
    f = IssueFinder(2)
    f.update(labels, p, index=0)
    sel = f.finish()
    np.testing.assert_allclose(sel.thresholds, [0.6, 0.8])
    assert sel.num_issues == 0
    assert not f.issues(0)[0].any()


def test_cutoff_takes_lowest_scores_then_drops_agreeing_pixels():
    p = _probs([[0.05, 0.95], [0.3, 0.7], [0.45, 0.55], [0.9, 0.1]])
    labels = np.array([[0, 0, 0, 0]])
    # t0 = mean(0.05, 0.3, 0.45, 0.9) = 0.425; t1 has no pixels -> 2e-6
    # all three pixels predicting 1 are confident: T = 3 -> the 3 lowest s
    f = IssueFinder(2)
    f.update(labels, p, index=0)
    sel = f.finish()
    assert sel.thresholds[1] == CONFIDENT_THRESHOLD_MIN
    assert sel.num_issues == 3 and sel.cutoff == pytest.approx(0.45)
    mask, pred = f.issues(0)
    np.testing.assert_array_equal(mask, [[True, True, True, False]])
    np.testing.assert_array_equal(pred[mask], [1, 1, 1])


def test_agreeing_low_score_pixel_uses_a_slot():
    # K=3: pixel 0 agrees (argmax = label) yet has the lowest score
    p = _probs([[0.34, 0.33, 0.33], [0.1, 0.9, 0.0], [0.2, 0.0, 0.8], [1.0, 0.0, 0.0]])
    labels = np.array([[0, 0, 0, 0]])
    f = IssueFinder(3)
    f.update(labels, p, index=0)
    sel = f.finish()
    assert sel.num_issues == 2  # pixels 1 and 2 are confident disagreements
    mask, _ = f.issues(0)
    # the two lowest scores are pixels 1 (0.1) and 2 (0.2): both flagged
    np.testing.assert_array_equal(mask, [[False, True, True, False]])


def test_ties_at_cutoff_are_taken_in_image_then_pixel_order():
    row = [[0.2, 0.8], [0.2, 0.8], [0.9, 0.1]]
    p = _probs(row)
    labels = np.array([[0, 0, 0]])
    f = IssueFinder(2)
    # three images, each with two tied pixels at s=0.2 (all confident: t1=2e-6)
    for i in (2, 0, 1):  # added out of order on purpose
        f.update(labels, p, index=i)
    # T = 6 -> every tied pixel is taken: no quota needed
    sel = f.finish()
    assert sel.num_issues == 6 and not sel.tie_quota
    for i in range(3):
        np.testing.assert_array_equal(f.issues(i)[0], [[True, True, False]])


def test_split_tie_quota():
    """Five tied lowest pixels, T = 3: the first three in (image, pixel) order."""
    # K=2, t1 tiny (no pixel labelled 1); confident disagreements are the pixels
    # predicting 1: make exactly 3 of them, with 5 tied agreeing/disagreeing lows.
    # image 0: s = [0.4 (pred 1), 0.4 (pred 1)]; image 1: s = [0.4 (pred 1), 0.4 (pred 0? no)]
    # use K=3 so a pixel can have s=0.4 and still agree (0.4, 0.3, 0.3)
    agree = [0.4, 0.3, 0.3]
    disagree = [0.4, 0.6, 0.0]
    f = IssueFinder(3)
    f.update(np.zeros((1, 2), int), _probs([agree, disagree]), index=0)
    f.update(np.zeros((1, 3), int), _probs([disagree, disagree, agree]), index=1)
    sel = f.finish()
    # disagreeing pixels: (0,1), (1,0), (1,1): all confident (t1 = 2e-6) -> T = 3
    assert sel.num_issues == 3 and sel.cutoff == pytest.approx(0.4)
    # five pixels tie at 0.4: ranks go (0,0) (0,1) (1,0) | (1,1) (1,2)
    assert sel.tie_quota == {0: 2, 1: 1}
    np.testing.assert_array_equal(f.issues(0)[0], [[False, True]])
    np.testing.assert_array_equal(f.issues(1)[0], [[True, False, False]])


def test_ignored_class_channel_never_counts():
    p = _probs([[0.1, 0.9], [0.8, 0.2]])
    f = IssueFinder(2, ignore_index=1)
    f.update(np.array([[0, 0]]), p, index=0)
    sel = f.finish()
    assert np.isinf(sel.thresholds[1]) and sel.num_issues == 0


def test_misuse_errors(rng):
    f = IssueFinder(2)
    with pytest.raises(SegQualError, match="no images"):
        f.finish()
    p = random_probs(rng, (2, 4, 4))
    f.update(np.zeros((4, 4), int), p, index=0)
    with pytest.raises(InvalidInputError, match="added twice"):
        f.update(np.zeros((4, 4), int), p, index=0)
    with pytest.raises(SegQualError, match="finish"):
        f.issues(0)
    with pytest.raises(InvalidInputError, match="3 class channels"):
        f.update(np.zeros((4, 4), int), random_probs(rng, (3, 4, 4)), index=1)


def test_scan_stats_are_exact_and_order_free(rng):
    """Class sums are correctly rounded whatever the order or grouping."""
    import math

    from segqual_fo.core.issues import ScanStats

    k = 3
    parts = [rng.random(k) * 10.0 ** rng.integers(-8, 8, size=k) for _ in range(40)]
    shape = ScanStats(k).histogram.shape
    hists = [rng.integers(0, 5, size=shape).astype(ScanStats(k).histogram.dtype) for _ in range(40)]
    expected = [math.fsum(p[c] for p in parts) for c in range(k)]
    results = []
    for order in (range(40), reversed(range(40)), rng.permutation(40)):
        shards = [ScanStats(k) for _ in range(3)]
        for j, i in enumerate(order):
            shards[j % 3].add(int(i), parts[i], np.ones(k, dtype=np.int64), hists[i])
        total = ScanStats(k)
        for s in shards[::-1]:
            total.merge(s)
        results.append(total.class_sums)
        assert total.class_counts.tolist() == [40] * k
        # every shard's images and histogram counts, added, none replaced
        assert total.indices == set(range(40))
        np.testing.assert_array_equal(total.histogram, np.sum(hists, axis=0))
    for r in results:
        assert r.tolist() == expected  # bit-identical
    with pytest.raises(InvalidInputError, match="added twice"):
        total.merge(shards[0])


def test_finish_over_shards_equals_finish_here(rng):
    """finish(map_shards=...) on any partition gives the same selection and masks."""
    from tests.core.helpers import blob_labels, plausible_model

    labels = blob_labels(rng, 7, 4, 12, 16)
    probs = plausible_model(rng, labels, 4, strength=1.0)
    probs = np.round(probs * 8) / 8  # ties
    probs[:, 0] += probs.sum(axis=1) == 0
    probs /= probs.sum(axis=1, keepdims=True)
    here = IssueFinder(4)
    for i in range(7):
        here.update(labels[i], probs[i], index=i)
    ref = here.finish()
    assert ref.tie_quota  # the data exercises the split-tie path
    for sizes in ([1] * 7, [3, 4], [2, 2, 3]):
        f = IssueFinder(4)
        for i in rng.permutation(7):  # any scan order
            f.update(labels[i], probs[i], index=int(i))
        calls = []

        def map_shards(func, *args):
            order, out, start = sorted(f.stats.indices), [], 0
            for s in sizes:
                out.append(func(f.cache, order[start : start + s], *args))
                start += s
            calls.append(func.__name__)
            return out

        sel = f.finish(map_shards=map_shards)
        assert calls == ["count_confident", "values_in_bin", "count_equal"]
        assert (sel.num_issues, sel.cutoff, sel.tie_quota) == (ref.num_issues, ref.cutoff, ref.tie_quota)
        np.testing.assert_array_equal(sel.thresholds, ref.thresholds)
        for i in range(7):
            np.testing.assert_array_equal(f.masker().issues(i, f.cache.get(i))[0], here.issues(i)[0])
