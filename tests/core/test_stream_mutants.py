"""iter_label_quality / issue_image_result behaviour that surviving mutants of
segqual_fo/core/stream.py showed untested: check_probs="none" in the issue
count's last pass, the image named by an error of that pass, the all-ignored
image's score without a warning, and where the unnormalised-scores warning
points. Values by hand."""

import math
import sys
import warnings

import numpy as np
import pytest

from segqual_fo.core import METHODS, iter_label_quality
from segqual_fo.errors import InvalidLabelsError, UnnormalizedProbabilitiesWarning


def _pixels(rows):
    """(K,H,W) probabilities from an H x W nested list of K-vectors."""
    return np.array(rows, dtype=np.float64).transpose(2, 0, 1)


# K=2, a 2x2 image labelled 0 everywhere: s = [.1, .2 / .3, .9]
_P = _pixels([[[0.1, 0.9], [0.2, 0.8]], [[0.3, 0.7], [0.9, 0.1]]])
_L = np.zeros((2, 2), dtype=np.int64)


def _under_mutmut():
    return any(m.split(".")[0] == "mutmut" for m in sys.modules)


def test_check_probs_none_holds_in_the_last_pass_with_downsampling():
    # issue_image_result#24: pass 3 re-reads the probabilities with
    # downsample > 1 and checked them again with the default "sample" check,
    # refusing the sums of 0.9 the user had told it not to check.
    # Sums 0.9: s = .09 .18 / .27 .81, all below 1/2 but .81 -> argmax is
    # class 1 at three pixels (disagreeing), one 2x2 block.
    low = _P * 0.9
    (r,) = iter_label_quality([_L], [low], method="num_pixel_issues", downsample=2, check_probs="none")
    assert not r.failed
    np.testing.assert_allclose(r.pixel_scores, [[0.09, 0.18], [0.27, 0.81]])
    assert r.num_valid == 4


class _LabelsChangingOnReload:
    """Labels whose item ``bad`` holds class 7 from its second load on (a
    file rewritten between the issue count's passes)."""

    def __init__(self, items, bad):
        self.items, self.bad, self.loads = items, bad, {}

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        self.loads[i] = self.loads.get(i, 0) + 1
        if i == self.bad and self.loads[i] > 1:
            return np.full_like(self.items[i], 7)
        return self.items[i]


def test_a_bad_label_in_the_last_pass_names_its_image():
    # issue_image_result#34/#38: the labels read again in pass 3 (with_issues,
    # downsample 1) were checked without the image's index: the error said
    # "labels" instead of "labels[1]" and its index was None
    labels = _LabelsChangingOnReload([_L, _L, _L], bad=1)
    with pytest.raises(InvalidLabelsError, match=r"labels\[1\]") as caught:
        list(iter_label_quality(labels, [_P] * 3, method="num_pixel_issues", with_issues=True))
    assert caught.value.index == 1
    assert labels.loads[1] == 2  # the scan's load was fine: pass 3 refused it
    # with skip_failures the image fails alone, with the same error
    labels = _LabelsChangingOnReload([_L, _L, _L], bad=1)
    results = list(
        iter_label_quality(labels, [_P] * 3, method="num_pixel_issues", with_issues=True, skip_failures=True)
    )
    assert [r.failed for r in results] == [False, True, False]
    assert "labels[1]" in str(results[1].error) and results[1].error.index == 1


def test_issue_count_of_an_all_ignored_image_is_nan_without_a_warning():
    # issue_image_result#59: 1 - 0/0 for the image without a valid pixel gave
    # NaN through a RuntimeWarning "invalid value encountered in scalar
    # divide" (an error under -W error) and a negative NaN
    void = np.full((2, 2), 255)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = list(iter_label_quality([_L, void], [_P, _P], method="num_pixel_issues", ignore_index=255))
    r = results[1]
    assert r.num_valid == 0 and math.isnan(r.score) and not np.signbit(r.score)
    # the other image: t0 = .375 for class 0 (mean s), argmax 1 at three
    # pixels, all three with p1 >= t1 -> 3 issues of 4
    assert results[0].score == pytest.approx(0.25)


@pytest.mark.parametrize("method", METHODS)
def test_unnormalised_warning_points_at_the_line_iterating(method):
    # iter_label_quality#68 (default stacklevel 3: stream.py), #70
    # (stacklevel 5: the caller's caller). Under mutmut every library
    # function is called through a trampoline, one frame deeper: there the
    # line is not ours and only the warning is checked.
    high = _P * 1.5  # sums 1.5: unnormalised, finite, non-negative
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = list(iter_label_quality([_L, _L], [high, high], method=method, unnormalized="warn"))
    assert [w.category for w in caught] == [UnnormalizedProbabilitiesWarning]
    assert len(results) == 2 and not any(r.failed for r in results)
    if not _under_mutmut():
        assert caught[0].filename == __file__
