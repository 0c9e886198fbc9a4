"""iter_label_quality: failures, callbacks, defaults and edge values, by hand."""

import math

import numpy as np
import pytest

from segqual_fo.core import DEFAULT_ISSUE_THRESHOLD, METHODS, iter_label_quality
from segqual_fo.errors import InvalidInputError, InvalidLabelsError, InvalidProbabilitiesError


def _pixels(rows):
    """(K,H,W) probabilities from an H x W nested list of K-vectors."""
    return np.array(rows, dtype=np.float64).transpose(2, 0, 1)


# K=2, a 2x2 image labelled 0 everywhere: s = [.1, .2 / .3, .9]
_P = _pixels([[[0.1, 0.9], [0.2, 0.8]], [[0.3, 0.7], [0.9, 0.1]]])
_L = np.zeros((2, 2), dtype=np.int64)


class FlakySeq:
    """A lazy sequence whose items fail on chosen loads (1-based per item)."""

    def __init__(self, items, fail_on):
        self.items, self.fail_on, self.loads = items, fail_on, {}

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        self.loads[i] = self.loads.get(i, 0) + 1
        if self.loads[i] in self.fail_on.get(i, ()):
            raise OSError(f"cannot read item {i}")
        return self.items[i]


def test_default_issue_threshold_is_0_1():
    assert DEFAULT_ISSUE_THRESHOLD == 0.1
    # s = .05 and .1 (both disagree): only the first is below 0.1
    p = _pixels([[[0.05, 0.95], [0.1, 0.9]]])
    (r,) = iter_label_quality([np.zeros((1, 2), int)], [p], with_issues=True)
    np.testing.assert_array_equal(r.issues, [[True, False]])


@pytest.mark.parametrize("threshold, expected", [(0, [[False, False], [False, False]]), (1, [[True, True], [True, False]])])
def test_issue_threshold_0_and_1_are_accepted(threshold, expected):
    (r,) = iter_label_quality([_L], [_P], with_issues=True, issue_threshold=threshold)
    np.testing.assert_array_equal(r.issues, expected)


@pytest.mark.parametrize("threshold", [-0.01, 1.01])
def test_issue_threshold_outside_0_1_is_refused(threshold):
    with pytest.raises(InvalidInputError, match="issue_threshold must be in"):
        next(iter_label_quality([_L], [_P], issue_threshold=threshold))


def test_default_downsample_is_1():
    # 2x2 image: t0 = .375, T = 3 (three pixels predict 1) -> 3 issues / 4.
    # A 1x2 image (s = .1, .2) could not be downsampled by anything but 1.
    results = list(iter_label_quality([_L, _L[:1]], [_P, _P[:, :1]], method="num_pixel_issues", with_issues=True))
    np.testing.assert_array_equal(results[0].issues, [[True, True], [True, False]])
    np.testing.assert_array_equal(results[1].issues, [[True, True]])
    assert results[0].score == pytest.approx(0.25) and results[1].score == 0.0


@pytest.mark.parametrize("method", METHODS)
def test_failed_result_fields(method):
    labels = [_L, np.full((2, 2), 7), _L]
    results = list(iter_label_quality(labels, [_P] * 3, method=method, skip_failures=True, with_issues=True))
    bad = results[1]
    assert bad.failed and isinstance(bad.error, InvalidLabelsError)
    assert bad.index == 1 and math.isnan(bad.score) and bad.num_valid == 0
    assert bad.pixel_scores.shape == (0, 0)
    assert bad.issues is None and bad.pred is None and bad.labels is None and bad.num_issues == 0
    assert [r.failed for r in results] == [False, True, False]
    assert not results[0].failed and results[0].error is None


def test_every_image_failing_yields_every_failure():
    labels = [np.full((2, 2), 7), np.full((2, 2), -1)]
    for method in METHODS:
        results = list(iter_label_quality(labels, [_P] * 2, method=method, skip_failures=True))
        assert [r.index for r in results] == [0, 1]
        assert all(r.failed for r in results)
    with pytest.raises(InvalidLabelsError, match=r"labels\[0\]"):
        list(iter_label_quality(labels, [_P] * 2, method="num_pixel_issues"))


def test_failure_in_the_last_pass_is_skipped_or_raised():
    # the labels of image 1 load in pass 1 but not when read again in pass 3
    # (with_issues reads them to return them)
    seq = FlakySeq([_L, _L, _L], {1: (2,)})
    results = list(
        iter_label_quality(seq, [_P] * 3, method="num_pixel_issues", with_issues=True, skip_failures=True)
    )
    assert [r.failed for r in results] == [False, True, False]
    assert isinstance(results[1].error, OSError) and results[1].index == 1
    # the image was in the statistics: the others' masks are those of all three
    np.testing.assert_array_equal(results[2].issues, [[True, True], [True, False]])
    seq = FlakySeq([_L, _L, _L], {1: (2,)})
    with pytest.raises(OSError, match="item 1"):
        list(iter_label_quality(seq, [_P] * 3, method="num_pixel_issues", with_issues=True))


def test_on_scan_gets_done_and_total():
    calls = []
    results = iter_label_quality([_L] * 3, [_P] * 3, method="num_pixel_issues", on_scan=lambda d, t: calls.append((d, t)))
    first = next(results)
    assert calls == [(1, 3), (2, 3), (3, 3)]  # the whole first pass before anything is yielded
    assert first.index == 0 and len(list(results)) == 2


def test_labels_only_when_issues_requested():
    for method in METHODS:
        (r,) = iter_label_quality([_L], [_P], method=method)
        assert r.labels is None and r.issues is None and r.pred is None and r.sentinel is None
        (r,) = iter_label_quality([_L], [_P], method=method, with_issues=True)
        np.testing.assert_array_equal(r.labels, _L)
        assert r.sentinel == 255


def test_image_without_valid_pixels():
    void = np.full((2, 2), 255)
    for method in METHODS:
        results = list(iter_label_quality([_L, void], [_P, _P], method=method, ignore_index=255, with_issues=True))
        r = results[1]
        assert not r.failed and r.num_valid == 0 and math.isnan(r.score)
        assert np.isnan(r.pixel_scores).all() and not r.issues.any() and r.num_issues == 0
        assert results[0].num_valid == 4 and not math.isnan(results[0].score)


@pytest.mark.parametrize("method", METHODS)
def test_downsample_none_is_refused(method):
    with pytest.raises(InvalidInputError, match="downsample must be a positive integer, got None"):
        next(iter_label_quality([_L], [_P], method=method, downsample=None))


def test_known_num_classes_lets_a_failing_first_image_be_skipped():
    # with num_classes given, nothing is loaded before the first pass, so an
    # unreadable first image is a per-image failure like any other
    for method in METHODS:
        probs = FlakySeq([_P, _P], {0: (1,)})
        results = list(iter_label_quality([_L, _L], probs, method=method, num_classes=2, skip_failures=True))
        assert [r.failed for r in results] == [True, False]
        assert isinstance(results[0].error, OSError)
        assert probs.loads[0] == 1  # not loaded again to find K
    # without it, K comes from the first image: that load fails the call
    with pytest.raises(OSError, match="item 0"):
        next(iter_label_quality([_L, _L], FlakySeq([_P, _P], {0: (1,)}), skip_failures=True))


@pytest.mark.parametrize("method", METHODS)
def test_check_probs_is_honoured(method):
    # sums of 0.9 everywhere (scores within [0, 1]): refused by the default
    # sampled check, accepted with check_probs="none"
    low = _P * 0.9
    with pytest.raises(InvalidProbabilitiesError, match="sum to 0.9"):
        list(iter_label_quality([_L], [low], method=method))
    (r,) = iter_label_quality([_L], [low], method=method, check_probs="none")
    np.testing.assert_allclose(r.pixel_scores, [[0.09, 0.18], [0.27, 0.81]])
    # a bad sum on a row the sampled check skips is found by "full" only
    tall = np.repeat(np.repeat(_P, 8, axis=1), 2, axis=2)  # 16 x 4
    tall[:, 3, 0] *= 0.9
    labels = np.zeros((16, 4), dtype=np.int64)
    (r,) = iter_label_quality([labels], [tall], method=method)
    assert not r.failed
    with pytest.raises(InvalidProbabilitiesError, match=r"row 3, col 0"):
        list(iter_label_quality([labels], [tall], method=method, check_probs="full"))


def test_issue_image_result_refuses_unnormalised_scores_by_default():
    # pass 3 with downsampling re-reads the probabilities; unless the scan
    # accepted unnormalised scores, scores above 1 there are an error
    # (the Dask executor relies on this default)
    from segqual_fo.core import IssueFinder
    from segqual_fo.core.stream import issue_image_result

    finder = IssueFinder(2, downsample=2)
    ev = finder.update(_L, _P, index=0)
    finder.finish()
    masker = finder.masker()
    entry = finder.cache.get(0)
    ok = issue_image_result(0, entry, masker, ev.num_valid, lambda: _L, lambda: _P, ignore=(), with_issues=True, num_classes=2)
    np.testing.assert_array_equal(ok.pixel_scores, [[0.1, 0.2], [0.3, 0.9]])
    with pytest.raises(InvalidProbabilitiesError, match=r"pred_probs\[0\]"):
        issue_image_result(0, entry, masker, 4, lambda: _L, lambda: _P * 3, ignore=(), with_issues=True, num_classes=2)
    again = issue_image_result(
        0, entry, masker, 4, lambda: _L, lambda: _P * 3, ignore=(), with_issues=True, num_classes=2,
        allow_unnormalized=True,
    )
    np.testing.assert_allclose(again.pixel_scores, [[0.3, 0.6], [0.9, 2.7]])
