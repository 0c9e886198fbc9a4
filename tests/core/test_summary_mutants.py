"""Tests that kill the surviving mutants of segqual_fo/core/summary.py (issue 12).

Oracles: hand-counted rows, and cleanlab's ``segmentation.summary`` (the
parity oracle, a test dependency) on the paths the equivalent survivors touch.
"""

import warnings

import cleanlab.segmentation.summary as cl_summary
import numpy as np
import pytest

from segqual_fo.core import (
    common_label_issues,
    confusion_rows,
    filter_by_class,
    issue_confusion_matrix,
)
from segqual_fo.core.resample import LowResProbs
from segqual_fo.errors import InvalidInputError, InvalidLabelsError


def test_bool_matrix_lists_each_swap_once():
    # kills confusion_rows#3/#5 (no int64 cast: -counts of a bool matrix is a TypeError)
    m = np.array([[False, True, False], [False, False, False], [True, True, False]])
    rows = confusion_rows(m, class_names=["sky", "road", "car"])
    assert rows == [
        {"given_label": "sky", "predicted_label": "road", "num_pixel_issues": 1},
        {"given_label": "car", "predicted_label": "sky", "num_pixel_issues": 1},
        {"given_label": "car", "predicted_label": "road", "num_pixel_issues": 1},
    ]
    assert all(type(r["num_pixel_issues"]) is int for r in rows)


@pytest.mark.parametrize(
    "matrix",
    [
        [[0, 1, 2], [3, 0, 0]],  # (2, 3): used to fail with a bare IndexError
        [[0, 1], [2, 0], [3, 0]],  # (3, 2): used to give rows for a class "2" that has no column
        [0, 1, 2],  # 1-D: used to fail with "not enough values to unpack"
        [[[0, 1], [1, 0]]],  # 3-D
    ],
)
def test_a_matrix_that_is_not_square_is_refused(matrix):
    # confusion_rows#7 (k read from the columns) only differed on such matrices
    with pytest.raises(InvalidInputError, match=r"expected a square \(K, K\) confusion matrix") as e:
        confusion_rows(matrix)
    assert str(np.asarray(matrix).shape) in str(e.value)


def test_bad_label_error_lists_ten_values_and_the_hint():
    # MESSAGE survivors issue_confusion_matrix#42 (11 values) and #55/#56 (hint wording)
    k = 2
    labels = np.array([[np.arange(2, 14)]])  # (1, 1, 12): twelve values outside 0..1
    probs = np.full((1, k, 1, 12), 0.5)
    issues = np.ones((1, 1, 12), dtype=bool)
    with pytest.raises(InvalidLabelsError) as e:
        issue_confusion_matrix(issues, labels, probs)
    assert str(e.value) == (
        "labels[0] has issue pixels labelled 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, outside the classes 0..1. "
        "Pass ignore_index=[...] if these mark unlabelled/void pixels."
    )
    assert e.value.index == 0


def _cleanlab(func, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kw)


def test_images_without_issues_and_low_res_probs_match_cleanlab(rng):
    # the paths of the equivalent survivors of _issue_pixels (no issue pixel in an
    # image; probabilities read through LowResProbs), against cleanlab
    n, k, h, w = 4, 3, 6, 5
    labels = rng.integers(0, k, (n, h, w))
    probs = rng.random((n, k, h, w))
    probs /= probs.sum(axis=1, keepdims=True)
    issues = rng.random((n, h, w)) < 0.4
    issues[1] = False
    issues[3] = False
    theirs = _cleanlab(cl_summary.common_label_issues, issues, labels, probs, verbose=False)
    for pred_probs in (probs, [LowResProbs(p, (h, w)) for p in probs]):
        ours = common_label_issues(issues, labels, pred_probs, verbose=False)
        assert ours.equals(theirs)
        for c in range(k):
            kept = filter_by_class(c, issues, labels, pred_probs)
            expected = _cleanlab(cl_summary.filter_by_class, c, issues, labels, probs)
            assert kept.dtype == np.bool_
            np.testing.assert_array_equal(kept, expected)
            assert not kept[1].any() and not kept[3].any()
