"""get_label_quality_scores and issues_from_scores: edges and defaults, by hand."""

import numpy as np
import pytest

from segqual_fo.core import get_label_quality_scores, issues_from_scores
from segqual_fo.errors import InvalidInputError


# -- issues_from_scores ------------------------------------------------------


def test_default_threshold_is_0_1():
    scores = np.array([0.5, 0.0999, 0.1, 0.05])
    np.testing.assert_array_equal(issues_from_scores(scores), [3, 1])
    px = np.array([[[0.0999, 0.1, 0.2]]])
    np.testing.assert_array_equal(issues_from_scores(scores[:1], px), [[[True, False, False]]])


def test_score_equal_to_threshold_is_not_an_issue():
    # "strictly below": at the threshold is fine
    scores = np.array([0.3, 0.2999999, 0.30000001])
    np.testing.assert_array_equal(issues_from_scores(scores, threshold=0.3), [1])
    px = np.array([[[0.3, 0.2999999], [0.30000001, np.nan]]])
    np.testing.assert_array_equal(issues_from_scores(scores[:1], px, threshold=0.3), [[[False, True], [False, False]]])


@pytest.mark.parametrize("threshold", [0, 0.0, 1, 1.0])
def test_thresholds_0_and_1_are_accepted(threshold):
    scores = np.array([1.0, 0.0, 0.5])
    out = issues_from_scores(scores, threshold=threshold)
    # nothing is below 0; below 1: the images scoring 0 and 0.5, worst first
    np.testing.assert_array_equal(out, [] if threshold == 0 else [1, 2])


@pytest.mark.parametrize("threshold", [-1e-9, 1.000001, float("nan"), "low", None])
def test_thresholds_outside_0_1_are_refused(threshold):
    with pytest.raises(InvalidInputError, match="threshold must be between 0 and 1"):
        issues_from_scores(np.array([0.5]), threshold=threshold)


def test_image_scores_required():
    with pytest.raises(InvalidInputError, match="image_scores must be given"):
        issues_from_scores(None)


def test_equal_scores_keep_input_order():
    # worst first; equal scores in image order (a stable sort)
    scores = [0.05, 0.01, 0.05, 0.01, 0.05, 0.5]
    np.testing.assert_array_equal(issues_from_scores(scores), [1, 3, 0, 2, 4])
    # a list works like an array
    np.testing.assert_array_equal(issues_from_scores(np.array(scores)), [1, 3, 0, 2, 4])

def test_many_equal_scores_keep_input_order():
    # past 16 elements numpy's default sort is not stable: 150 scores with
    # long runs of ties still come out in image order
    scores = np.array([0.05] * 50 + [0.01] * 50 + [0.05] * 50)
    expected = list(range(50, 100)) + list(range(50)) + list(range(100, 150))
    np.testing.assert_array_equal(issues_from_scores(scores), expected)


def test_list_of_pixel_scores_gives_list_of_bool_masks():
    px = [np.array([[0.05, 0.5]]), np.array([[np.nan], [0.01], [0.1]])]
    out = issues_from_scores(np.array([0.1, 0.2]), px, threshold=0.1)
    assert isinstance(out, list) and len(out) == 2
    np.testing.assert_array_equal(out[0], [[True, False]])
    np.testing.assert_array_equal(out[1], [[False], [True], [False]])
    assert all(m.dtype == np.bool_ for m in out)
    # a list of plain lists too
    out = issues_from_scores([0.1], [[[0.05, 0.5]]], threshold=0.1)
    np.testing.assert_array_equal(out[0], [[True, False]])


# -- get_label_quality_scores ------------------------------------------------


def _tiny():
    # K=2, one 1x2 image per row; s = [[0.9, 0.2]] and [[0.6, 0.6]]
    probs = np.array(
        [[[[0.9, 0.8]], [[0.1, 0.2]]], [[[0.6, 0.4]], [[0.4, 0.6]]]], dtype=np.float64
    )
    labels = np.array([[[0, 1]], [[0, 1]]])
    return labels, probs


def test_default_method_is_softmin_with_temperature_0_1():
    labels, probs = _tiny()
    scores, px = get_label_quality_scores(labels, probs)
    np.testing.assert_array_equal(px, [[[0.9, 0.2]], [[0.6, 0.6]]])
    # image 0: weights exp(-s/0.1): (0.9 e^-9 + 0.2 e^-2) / (e^-9 + e^-2)
    w0, w1 = np.exp(-9.0), np.exp(-2.0)
    expected0 = (0.9 * w0 + 0.2 * w1) / (w0 + w1)
    np.testing.assert_allclose(scores, [expected0, 0.6], rtol=1e-12)
    assert scores.dtype == np.float64


def test_num_pixel_issues_hand_computed_and_default_downsample():
    # K=2, one image 2x2, every label 0; s = [.1, .2, .3, .9]
    p0 = np.array([[0.1, 0.2], [0.3, 0.9]])
    probs = np.stack([p0, 1 - p0])[None]
    labels = np.zeros((1, 2, 2), dtype=np.int64)
    # t0 = mean(s) = 0.375, t1 = 2e-6 (no pixel labelled 1); three pixels
    # predict 1 confidently -> T = 3 -> the three lowest are flagged; all three
    # disagree -> 3 issues of 4 valid pixels
    scores, _ = get_label_quality_scores(labels, probs, method="num_pixel_issues")
    assert scores[0] == pytest.approx(0.25, abs=1e-15)
    # the default downsample is 1: a 2x2 image is not a multiple of anything else
    scores, _ = get_label_quality_scores(labels[:, :1, :], probs[:, :, :1, :], method="num_pixel_issues")
    assert scores[0] == pytest.approx(0.0, abs=1e-15)


def test_pixel_scores_dtype_follows_input(rng):
    labels, probs = _tiny()
    for method in ("softmin", "num_pixel_issues"):
        _, px = get_label_quality_scores(labels, probs.astype(np.float32), method=method)
        assert px.dtype == np.float32
        _, px = get_label_quality_scores(labels, probs, method=method)
        assert px.dtype == np.float64
        _, px = get_label_quality_scores(list(labels), list(probs.astype(np.float16)), method=method)
        assert px.dtype == np.float32
        _, px = get_label_quality_scores(
            [labels[0], labels[1][:, :1]], [probs[0].astype(np.float32), probs[1][:, :, :1].astype(np.float32)],
            method=method,
        )
        assert [p.dtype for p in px] == [np.float32, np.float32]


def test_default_is_silent(capsys):
    labels, probs = _tiny()
    for method in ("softmin", "num_pixel_issues"):
        get_label_quality_scores(labels, probs, method=method)
        out = capsys.readouterr()
        assert out.out == "" and out.err == ""
        get_label_quality_scores(labels, probs, method=method, verbose=True)
        assert capsys.readouterr().err != ""


@pytest.mark.parametrize("method", ["softmin", "num_pixel_issues"])
def test_bad_batch_size_and_downsample_refused(method):
    labels, probs = _tiny()
    with pytest.raises(InvalidInputError, match="batch_size must be a positive integer"):
        get_label_quality_scores(labels, probs, method=method, batch_size=0)
    with pytest.raises(InvalidInputError, match="downsample must be a positive integer"):
        get_label_quality_scores(labels, probs, method=method, downsample=0)
    with pytest.raises(InvalidInputError, match="n_jobs must be a positive integer"):
        get_label_quality_scores(labels, probs, method=method, n_jobs=0)
    with pytest.raises(InvalidInputError, match="unnormalized must be one of"):
        get_label_quality_scores(labels, probs, method=method, unnormalized="ignore")
