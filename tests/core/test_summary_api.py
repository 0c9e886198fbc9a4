"""common_label_issues, issue_confusion_matrix, confusion_rows and
filter_by_class: inputs, dtypes and errors, on hand-made arrays."""

import warnings

import numpy as np
import pandas as pd
import pytest

from segqual_fo.core import common_label_issues, confusion_rows, filter_by_class, issue_confusion_matrix
from segqual_fo.errors import InvalidLabelsError, ShapeMismatchError

import cleanlab.segmentation.summary as cl_summary  # noqa: E402  (the parity oracle)


def _pixels(rows):
    """(K,H,W) probabilities from an H x W nested list of K-vectors."""
    return np.array(rows, dtype=np.float64).transpose(2, 0, 1)


# K=3, two 2x2 images. Argmax: image 0 [[0, 1], [2, 2]], image 1 [[1, 1], [0, 2]]
_A, _B, _C = [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7]
PROBS = np.stack([_pixels([[_A, _B], [_C, _C]]), _pixels([[_B, _B], [_A, _C]])])
LABELS = np.array([[[1, 1], [0, 2]], [[0, 2], [0, 0]]])
ISSUES = np.array([[[1, 0], [1, 0]], [[1, 1], [0, 1]]], dtype=bool)
# issue pixels (given -> predicted): image 0: 1->0, 0->2; image 1: 0->1, 2->1, 0->2
EXPECTED = np.array([[0, 1, 2], [1, 0, 0], [0, 1, 0]])


def test_confusion_matrix_by_hand():
    m = issue_confusion_matrix(ISSUES, LABELS, PROBS)
    np.testing.assert_array_equal(m, EXPECTED)
    assert m.dtype == np.int64
    # no issue pixel at all: an int64 matrix of zeros
    none = issue_confusion_matrix(np.zeros_like(ISSUES), LABELS, PROBS)
    assert none.dtype == np.int64 and not none.any()


def test_zero_one_integer_masks_are_masks():
    # 0/1 integer masks (e.g. read from a PNG) mean the same as bool masks,
    # never indices
    as_int = ISSUES.astype(np.uint8)
    np.testing.assert_array_equal(issue_confusion_matrix(as_int, LABELS, PROBS), EXPECTED)
    np.testing.assert_array_equal(
        issue_confusion_matrix(list(ISSUES.astype(np.int64)), list(LABELS), list(PROBS), ignore_index=9), EXPECTED
    )
    pd.testing.assert_frame_equal(
        common_label_issues(as_int, LABELS, PROBS, verbose=False),
        common_label_issues(ISSUES, LABELS, PROBS, verbose=False),
    )
    for c in range(3):
        np.testing.assert_array_equal(
            filter_by_class(c, as_int, LABELS, PROBS), filter_by_class(c, ISSUES, LABELS, PROBS)
        )


def test_table_by_hand():
    frame = common_label_issues(ISSUES, LABELS, PROBS, verbose=False)
    assert frame.values.tolist() == [["0", "2", 2], ["0", "1", 1], ["1", "0", 1], ["2", "1", 1]]
    rows = confusion_rows(EXPECTED, class_names=["a", "b", "c"], exclude=[2])
    assert rows == [
        {"given_label": "a", "predicted_label": "b", "num_pixel_issues": 1},
        {"given_label": "b", "predicted_label": "a", "num_pixel_issues": 1},
        {"given_label": "c", "predicted_label": "b", "num_pixel_issues": 1},
    ]
    assert all(type(r["num_pixel_issues"]) is int for r in rows)


@pytest.mark.parametrize("exclude", [[3], [-1], [3, 0]])
def test_exclude_values_that_are_no_class_exclude_nothing(exclude):
    # K = 3: 3 and -1 are no class (cleanlab ignores them too)
    ours = common_label_issues(ISSUES, LABELS, PROBS, verbose=False, exclude=exclude)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = cl_summary.common_label_issues(ISSUES, LABELS, PROBS, verbose=False, exclude=exclude)
    pd.testing.assert_frame_equal(ours, ref)
    assert len(confusion_rows(EXPECTED, exclude=exclude)) == (4 if 0 not in exclude else 3)


def test_filter_by_class_by_hand_and_bool_for_mixed_sizes():
    out = filter_by_class(2, ISSUES, LABELS, PROBS)
    # keeps issue pixels given or predicted 2: image 0 (1,0) 0->2; image 1 (0,1) 2->1, (1,1) 0->2
    np.testing.assert_array_equal(out, [[[False, False], [True, False]], [[False, True], [False, True]]])
    assert out.dtype == np.bool_
    mixed = filter_by_class(
        [2], [ISSUES[0], ISSUES[1][:1]], [LABELS[0], LABELS[1][:1]], [PROBS[0], PROBS[1][:, :1]]
    )
    assert isinstance(mixed, list) and [m.dtype for m in mixed] == [np.bool_, np.bool_]
    np.testing.assert_array_equal(mixed[1], [[False, True]])


def test_issue_pixel_labelled_outside_the_classes():
    labels = LABELS.copy()
    labels[1, 0, 0] = 3  # K = 3: no class
    labels[1, 0, 1] = 7
    for call in (
        lambda: issue_confusion_matrix(ISSUES, labels, PROBS),
        lambda: common_label_issues(ISSUES, labels, PROBS, verbose=False),
    ):
        with pytest.raises(InvalidLabelsError, match=r"labels\[1\] has issue pixels labelled 3, 7, outside the classes 0\.\.2\. Pass ignore_index") as e:
            call()
        assert e.value.index == 1
    labels[1, 0, 1] = 2
    with pytest.raises(InvalidLabelsError, match=r"labelled 3, outside the classes 0\.\.2") as e:
        issue_confusion_matrix(ISSUES, labels, PROBS)
    # a value that is not an issue pixel does not matter
    labels[1, 0, 0] = 0
    labels[1, 1, 0] = 3
    np.testing.assert_array_equal(issue_confusion_matrix(ISSUES, labels, PROBS), EXPECTED)


def test_shape_errors_name_the_image():
    issues = [ISSUES[0], ISSUES[1][:1]]  # image 1's mask is 1x2, its labels 2x2
    with pytest.raises(ShapeMismatchError, match=r"image 1: issues \(1, 2\), labels \(2, 2\)") as e:
        issue_confusion_matrix(issues, LABELS, PROBS)
    assert e.value.index == 1
    with pytest.raises(ShapeMismatchError, match=r"image 1: issues") as e:
        filter_by_class(0, issues, LABELS, PROBS)
    assert e.value.index == 1
    with pytest.raises(ShapeMismatchError, match="issues holds 1 images, labels 2"):
        filter_by_class(0, ISSUES[:1], LABELS, PROBS)
    with pytest.raises(ShapeMismatchError, match="issues holds 1 images, labels 2"):
        issue_confusion_matrix(ISSUES[:1], LABELS, PROBS)
