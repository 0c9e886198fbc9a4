"""segqual_fo/core/rank.py: behaviour that surviving mutants showed untested.

Each test names the mutants it kills (see .ci/mutation-verdicts/core-rank.md).
Expected values are computed by hand or by plain numpy from the math in
DESIGN.md; cleanlab is the parity oracle where it accepts the input.
"""

import re
import sys
import warnings

import cleanlab.segmentation.rank as cl_rank  # the parity oracle (test time only)
import numpy as np
import pytest

from segqual_fo.core import get_label_quality_scores, issues_from_scores
from segqual_fo.errors import InvalidInputError
from tests.core.helpers import random_probs


def _softmin(s, t):
    """sum(s * softmax((1 - s) / t)) in float64, shifted by the minimum."""
    s = np.asarray(s, dtype=np.float64).ravel()
    w = np.exp((s.min() - s) / t)
    return float((s * w).sum() / w.sum())


def _cleanlab(labels, probs, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cl_rank.get_label_quality_scores(labels, probs, verbose=False, n_jobs=1, **kw)


# -- check_method --------------------------------------------------------------


def test_bad_method_error_lists_the_methods():
    # check_method#4, #5 (MESSAGE, killed anyway): the message lists the choices
    labels = np.zeros((1, 2, 2), dtype=np.int64)
    probs = np.ones((1, 1, 2, 2))
    with pytest.raises(InvalidInputError, match=r"one of 'softmin', 'num_pixel_issues'; got 'bad'"):
        get_label_quality_scores(labels, probs, method="bad")


# -- downsample ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["softmin", "num_pixel_issues"])
def test_downsample_none_is_refused(method):
    # get_label_quality_scores#19, #22: allow_none=True let downsample=None
    # through (softmin then warned "downsample=None applies to ..." and scored)
    labels = np.zeros((1, 2, 2), dtype=np.int64)
    probs = np.ones((1, 1, 2, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "downsample=None applies" warning either
        with pytest.raises(InvalidInputError, match="downsample must be a positive integer, got None"):
            get_label_quality_scores(labels, probs, method=method, downsample=None)


def test_softmin_downsample_warning_points_at_the_caller():
    # get_label_quality_scores#65 (no stacklevel), #68 (stacklevel=3). Under
    # mutmut every library function is called through a trampoline, one frame
    # deeper: there the line is not ours and only the message is checked.
    labels = np.zeros((1, 2, 2), dtype=np.int64)
    probs = np.ones((1, 1, 2, 2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        get_label_quality_scores(labels, probs, downsample=2)
    assert len(caught) == 1
    assert str(caught[0].message) == (
        "downsample=2 applies to method='num_pixel_issues' only; softmin scores every pixel."
    )
    if not any(m.split(".")[0] == "mutmut" for m in sys.modules):
        assert caught[0].filename == __file__


# -- check_probs reaches the pixel checks ------------------------------------------


def _unnormalised():
    # K=2, 1 image 2x2, every label 0: class scores 0.5 + 0.3 = 0.8 (not 1) at
    # every pixel, self-confidence s = [[.5, .2], [.4, .1]] (all <= 1)
    s = np.array([[0.5, 0.2], [0.4, 0.1]])
    probs = np.stack([s, 0.8 - s])[None]
    labels = np.zeros((1, 2, 2), dtype=np.int64)
    return labels, probs, s


def test_check_probs_none_skips_the_sum_check():
    # get_label_quality_scores#100: check_probs was not passed on, so "none"
    # still checked the sums ("sample") and refused these scores
    labels, probs, s = _unnormalised()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores, px = get_label_quality_scores(labels, probs, check_probs="none", unnormalized="error")
    np.testing.assert_array_equal(px[0], s)
    assert scores[0] == pytest.approx(_softmin(s, 0.1), rel=1e-12)
    # the default ("sample") does check them
    with pytest.raises(InvalidInputError, match="sum to 0.8"):
        get_label_quality_scores(labels, probs, unnormalized="error")


def test_check_probs_value_is_validated():
    # get_label_quality_scores#100: an unknown check_probs was never seen
    labels, probs, _ = _unnormalised()
    probs = probs / 0.8  # normalised: only the bad option can fail
    with pytest.raises(InvalidInputError, match="check_probs must be one of .* got 'bogus'"):
        get_label_quality_scores(labels, probs, check_probs="bogus")


# -- verbose progress -------------------------------------------------------------


def test_verbose_progress_counts_images(capsys):
    # get_label_quality_scores#117: each batch reported stop + start images
    # done (3, then 3 + 8 = 11 of 5) instead of its size; #119, #121 (PERF-ONLY,
    # killed anyway): batch_size ignored, the first report is not 3
    rng = np.random.default_rng(3)
    probs = random_probs(rng, (5, 2, 3, 3))
    labels = rng.integers(0, 2, (5, 3, 3))
    get_label_quality_scores(labels, probs, batch_size=3, n_jobs=1, verbose=True)
    err = capsys.readouterr().err
    counts = [(int(d), int(t)) for d, t in re.findall(r"softmin scores: (\d+)/(\d+)", err)]
    assert counts, err
    assert all(t == 5 for _, t in counts)
    done = [d for d, _ in counts]
    assert done == sorted(done) and done[0] == 3 and done[-1] == 5 and max(done) <= 5


# -- num_pixel_issues: an image whose pixels are all ignored ------------------------


def test_num_pixel_issues_all_ignored_image_is_nan_without_a_warning():
    # get_label_quality_scores#173: 1 - 0/0 for the empty image: NaN (negative
    # NaN) with a RuntimeWarning "invalid value encountered in scalar divide"
    rng = np.random.default_rng(5)
    probs = random_probs(rng, (3, 3, 6, 6), dtype=np.float64)
    labels = rng.integers(0, 3, (3, 6, 6))
    labels[1] = 255
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores, _ = get_label_quality_scores(labels, probs, method="num_pixel_issues", ignore_index=255)
    assert np.isnan(scores[1])
    # the other images: the ignored image adds no pixel to any statistic, so
    # cleanlab on the two others is the oracle
    ref, _ = _cleanlab(labels[[0, 2]], probs[[0, 2]], method="num_pixel_issues")
    np.testing.assert_allclose(scores[[0, 2]], ref, rtol=0, atol=1e-12)


# -- softmin: an unnormalised image with ignored pixels, in a batch ----------------


def test_unnormalised_image_with_ignored_pixels_in_a_stacked_batch():
    # image_softmin_score#41: a flagged (unnormalised) image of a batch was
    # re-pooled over ALL its pixels, the ignored ones (NaN) included: NaN
    rng = np.random.default_rng(7)
    probs = random_probs(rng, (2, 3, 4, 5), dtype=np.float64)
    probs[0] *= 1.7  # image 0: class scores sum to 1.7, some above 1
    probs[0, :, 2, 3] = [0.2, 1.6, 0.3]  # one self-confidence surely above 1
    labels = rng.integers(0, 3, (2, 4, 5))
    labels[0, 2, 3] = 1
    labels[0, 0] = 255  # the first row of image 0 is void
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores, px = get_label_quality_scores(labels, probs, ignore_index=255, batch_size=2, n_jobs=1)
    assert len(caught) == 1 and "1 of 2 images" in str(caught[0].message)
    s0 = np.take_along_axis(probs[0, :, 1:], labels[0, None, 1:], 0)[0]
    assert s0.max() > 1
    assert np.isnan(px[0, 0]).all()
    np.testing.assert_array_equal(px[0, 1:], s0)
    assert scores[0] == pytest.approx(_softmin(s0, 0.1), rel=1e-12)
    # parity: cleanlab scores the same pixels (the void row cut off) alike
    ref, _ = _cleanlab(labels[:, 1:], probs[:, :, 1:])
    assert scores[0] == pytest.approx(ref[0], abs=1e-6)


# -- issues_from_scores ---------------------------------------------------------------


def test_float32_image_scores_are_compared_exactly():
    # issues_from_scores#24, #26: without the float64 cast, numpy 2 compares a
    # float32 array with the threshold in float32, where float32(0.7) == 0.7;
    # the score is 0.699999988..., strictly below 0.7: an issue
    scores = np.array([0.7, 0.5, 0.05], dtype=np.float32)
    assert float(scores[0]) < 0.7
    np.testing.assert_array_equal(issues_from_scores(scores, threshold=0.7), [2, 1, 0])


def test_missing_image_scores_error_says_so():
    # issues_from_scores#4 (MESSAGE, killed anyway)
    with pytest.raises(InvalidInputError, match="^image_scores must be given.$"):
        issues_from_scores(None)
