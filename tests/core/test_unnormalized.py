"""Unnormalised class scores: used as given like cleanlab, one warning per call.

cleanlab's segmentation functions take any finite, non-negative per-class
scores (its own tests feed ``np.random.random((N, K, H, W))``). The
cleanlab-compatible functions accept them too (``unnormalized="warn"``, the
default), with results identical to cleanlab's, and warn once per call;
``unnormalized="error"`` and the streaming/FiftyOne path keep rejecting them.
NaN, infinities and negative values are errors in every mode.
"""

import re
import sys
import warnings

import numpy as np
import pytest

import segqual_fo.core as core
from segqual_fo.errors import InvalidInputError, InvalidProbabilitiesError, UnnormalizedProbabilitiesWarning
from tests.core.helpers import random_probs

import cleanlab.segmentation.filter as cl_filter  # noqa: E402  (the parity oracle)
import cleanlab.segmentation.rank as cl_rank  # noqa: E402


def _cleanlab_scores(labels, probs, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cl_rank.get_label_quality_scores(labels, probs, verbose=False, n_jobs=1, **kw)


def _cleanlab_issues(labels, probs, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cl_filter.find_label_issues(labels, probs, verbose=False, n_jobs=1, **kw)


def _quiet(func, *args, **kw):
    """Calls ``func``, asserting it warns about unnormalised scores exactly once."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = func(*args, **kw)
    ours = [w for w in caught if issubclass(w.category, UnnormalizedProbabilitiesWarning)]
    assert len(ours) == 1, [str(w.message) for w in caught]
    return out


# scale: how far from 1 the sums are; 100 puts every score above the
# issue histogram's top bin (1.02) and makes the softmin take its shifted form
CASES = [
    # n, k, h, w, scale, dtype, downsample
    (3, 2, 10, 10, 1.0, np.float64, 1),
    (5, 4, 16, 16, 1.0, np.float64, 2),
    (4, 3, 20, 24, 100.0, np.float64, 1),
    (6, 5, 32, 32, 1000.0, np.float64, 4),
    (4, 3, 16, 16, 3.0, np.float32, 1),
    (2, 2, 1, 7, 1.0, np.float64, 1),
]


@pytest.mark.parametrize("n,k,h,w,scale,dtype,ds", CASES)
def test_random_scores_match_cleanlab(rng, n, k, h, w, scale, dtype, ds):
    probs = (rng.random((n, k, h, w)) * scale).astype(dtype)
    labels = rng.integers(0, k, (n, h, w))

    ours, ours_px = _quiet(core.get_label_quality_scores, labels, probs)
    ref, ref_px = _cleanlab_scores(labels, probs)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(ours_px, ref_px)

    ours, ours_px = _quiet(
        core.get_label_quality_scores, labels, probs, method="num_pixel_issues", downsample=ds
    )
    ref, ref_px = _cleanlab_scores(labels, probs, method="num_pixel_issues", downsample=ds)
    np.testing.assert_array_equal(ours, ref)
    np.testing.assert_array_equal(ours_px, ref_px)

    ours = _quiet(core.find_label_issues, labels, probs, downsample=ds)
    ref = _cleanlab_issues(labels, probs, downsample=ds)
    np.testing.assert_array_equal(ours, ref)


def test_every_score_above_the_histogram_matches_cleanlab(rng):
    # all self-confidences in [2, 102): the issue cut-off falls in the
    # histogram's top bin, which holds everything above 1.02
    probs = rng.random((4, 3, 12, 12)) * 100 + 2
    labels = rng.integers(0, 3, (4, 12, 12))
    ours = _quiet(core.find_label_issues, labels, probs)
    ref = _cleanlab_issues(labels, probs)
    assert ref.sum() > 0
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("temperature", [0.001, 0.1, 5.0])
def test_softmin_of_large_scores_is_finite_and_matches_cleanlab(rng, temperature):
    probs = rng.random((3, 2, 8, 8)) * 1e4
    labels = rng.integers(0, 2, (3, 8, 8))
    ours, _ = _quiet(core.get_label_quality_scores, labels, probs, temperature=temperature)
    ref, _ = _cleanlab_scores(labels, probs, temperature=temperature)
    assert np.isfinite(ours).all()
    np.testing.assert_allclose(ours, ref, rtol=1e-9)


def test_integer_scores_are_used_as_given(rng):
    # cleanlab takes integer arrays as plain numbers; so do the drop-ins
    probs = rng.integers(0, 10, (3, 3, 8, 8))
    labels = rng.integers(0, 3, (3, 8, 8))
    ours, ours_px = _quiet(core.get_label_quality_scores, labels, probs)
    ref, ref_px = _cleanlab_scores(labels, probs)
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    np.testing.assert_array_equal(ours_px, ref_px)
    assert ours_px.dtype == np.float64


def test_one_warning_per_call_naming_the_fixes(rng):
    probs = rng.random((5, 3, 16, 16))
    labels = rng.integers(0, 3, (5, 16, 16))
    for method in core.METHODS:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            core.get_label_quality_scores(labels, probs, method=method, batch_size=1, n_jobs=2)
        assert len(caught) == 1
        w = caught[0]
        assert w.category is UnnormalizedProbabilitiesWarning and issubclass(w.category, UserWarning)
        # points at the caller's line (under mutmut every library function is
        # called through a trampoline, one frame deeper: the line is not ours)
        if not any(m.split(".")[0] == "mutmut" for m in sys.modules):
            assert w.filename == __file__
        msg = str(w.message)
        assert msg.startswith("5 of 5 images have class scores that do not sum to 1")
        assert "pred_probs[0]" in msg and "softmax" in msg and "renormalise" in msg
        assert "unnormalized='error'" in msg


def test_the_warning_names_the_first_unnormalised_image(rng):
    probs = random_probs(rng, (6, 3, 16, 16), dtype=np.float64)
    probs[4] *= 1.5
    probs[2, :, 3, 5] *= 2
    labels = rng.integers(0, 3, (6, 16, 16))
    with pytest.warns(UnnormalizedProbabilitiesWarning) as caught:
        core.find_label_issues(labels, probs, check_probs="full")
    assert len(caught) == 1
    msg = str(caught[0].message)
    assert msg.startswith("2 of 6 images")
    assert "pred_probs[2]: class scores at pixel (row 3, col 5) sum to 2, not 1" in msg


def test_normalised_input_does_not_warn(rng):
    probs = random_probs(rng, (4, 3, 16, 16))
    labels = rng.integers(0, 3, (4, 16, 16))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for method in core.METHODS:
            core.get_label_quality_scores(labels, probs, method=method)
        core.find_label_issues(labels, probs)


@pytest.mark.parametrize("method", core.METHODS)
def test_error_mode_rejects_them(rng, method):
    probs = rng.random((2, 3, 8, 8))
    labels = rng.integers(0, 3, (2, 8, 8))
    with pytest.raises(InvalidProbabilitiesError, match=r"pred_probs\[0\].*sum to"):
        core.get_label_quality_scores(labels, probs, method=method, unnormalized="error")
    with pytest.raises(InvalidProbabilitiesError, match="sum to"):
        core.find_label_issues(labels, probs, unnormalized="error")
    with pytest.raises(InvalidInputError, match="unnormalized must be one of 'warn', 'error'"):
        core.get_label_quality_scores(labels, probs, method=method, unnormalized="ignore")


def _bad(rng, where, value):
    probs = rng.random((3, 3, 20, 20))
    labels = np.zeros((3, 20, 20), dtype=int)
    probs[where] = value
    return labels, probs


@pytest.mark.parametrize(
    "where,value,match",
    [
        ((1, 0, 4, 4), np.nan, r"pred_probs\[1\] holds NaN or infinite values"),  # the label's channel
        ((1, 2, 4, 4), np.nan, r"pred_probs\[1\] holds NaN or infinite values"),  # another channel
        ((2, 1, 3, 9), np.inf, r"pred_probs\[2\] holds NaN or infinite values"),  # a row the sums skip
        ((0, 0, 5, 5), -0.5, r"pred_probs\[0\].*(negative|outside \[0, 1\])"),
        ((0, 2, 3, 9), -1e-3, r"pred_probs\[0\] holds negative values.*class 2, row 3, col 9.*softmax"),
    ],
)
@pytest.mark.parametrize("method", core.METHODS)
def test_nan_infinite_and_negative_values_still_raise(rng, where, value, match, method):
    labels, probs = _bad(rng, where, value)
    with pytest.raises(InvalidProbabilitiesError, match=match):
        core.get_label_quality_scores(labels, probs, method=method)
    with pytest.raises(InvalidProbabilitiesError, match=match):
        core.find_label_issues(labels, probs)


def test_shapes_and_labels_still_raise(rng):
    probs = rng.random((2, 3, 8, 8))
    with pytest.raises(InvalidInputError, match="labels"):
        core.get_label_quality_scores(np.full((2, 8, 8), 3), probs)
    with pytest.raises(InvalidInputError):
        core.find_label_issues(rng.integers(0, 3, (2, 8, 9)), probs)


@pytest.mark.parametrize("method", core.METHODS)
def test_batching_never_changes_results(rng, method):
    # normalised and unnormalised images in the same batches or apart
    probs = random_probs(rng, (7, 4, 12, 12), dtype=np.float64)
    probs[[1, 4]] *= rng.uniform(1, 30, size=(2, 1, 12, 12))
    labels = rng.integers(0, 4, (7, 12, 12))
    runs = [
        _quiet(core.get_label_quality_scores, labels, probs, method=method, batch_size=b, n_jobs=j)
        for b, j in [(1, 1), (3, 2), (7, 1)]
    ]
    runs.append(_quiet(core.get_label_quality_scores, list(labels), list(probs), method=method))
    for scores, px in runs[1:]:
        np.testing.assert_array_equal(scores, runs[0][0])
        np.testing.assert_array_equal(px, runs[0][1])


def test_mixed_sizes_and_ignored_pixels(rng):
    # beyond cleanlab: compare each image with cleanlab on that image alone
    # (softmin is per image), ignored pixels left out of the score
    sizes = [(8, 8), (12, 6), (5, 9)]
    probs = [rng.random((3, h, w)) * 4 for h, w in sizes]
    labels = [rng.integers(0, 3, (h, w)) for h, w in sizes]
    labels[1][:2] = 255
    scores, px = _quiet(core.get_label_quality_scores, labels, probs, ignore_index=255)
    for i in (0, 2):
        ref, _ = _cleanlab_scores(labels[i][None], probs[i][None])
        np.testing.assert_allclose(scores[i], ref[0], rtol=1e-12)
    assert np.isnan(px[1][:2]).all()
    ref, _ = _cleanlab_scores(labels[1][None, 2:], probs[1][None, :, 2:])
    np.testing.assert_allclose(scores[1], ref[0], rtol=1e-12)
    masks = _quiet(core.find_label_issues, labels, probs, ignore_index=255)
    assert [m.shape for m in masks] == sizes and not masks[1][:2].any()


def test_streaming_rejects_them_by_default_and_warns_when_asked(rng):
    probs = rng.random((4, 3, 8, 8))
    labels = rng.integers(0, 3, (4, 8, 8))
    for method in core.METHODS:
        with pytest.raises(InvalidProbabilitiesError, match="sum to"):
            list(core.iter_label_quality(labels, probs, method=method))
        failed = list(core.iter_label_quality(labels, probs, method=method, skip_failures=True))
        assert all(r.failed and "sum to" in str(r.error) for r in failed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results = list(core.iter_label_quality(labels, probs, method=method, unnormalized="warn"))
        assert len(caught) == 1 and caught[0].category is UnnormalizedProbabilitiesWarning
        # warned at the first such image (how many the threads saw by then varies)
        assert re.match(r"at least [1-4] of 4 images ha(s|ve) class scores", str(caught[0].message))
        expected, _ = _quiet(core.get_label_quality_scores, labels, probs, method=method)
        np.testing.assert_array_equal([r.score for r in results], expected)


def test_issue_finder_rejects_them_unless_allowed(rng):
    probs = rng.random((3, 8, 8))
    labels = rng.integers(0, 3, (8, 8))
    with pytest.raises(InvalidProbabilitiesError):
        core.IssueFinder(3).update(labels, probs, index=0)
    ev = core.IssueFinder(3, allow_unnormalized=True).update(labels, probs, index=0)
    assert bool(ev.unnormalized) and "sum to" in ev.unnormalized_note


def test_uint8_keeps_meaning_quantised_probabilities():
    # a documented difference: uint8 is read as round(p * 255), so its
    # channels must sum to about 255 in every mode
    q = np.zeros((1, 3, 4, 4), np.uint8)
    q[0, 0] = 200
    with pytest.raises(InvalidProbabilitiesError, match=r"uint8.*sum to 200"):
        core.get_label_quality_scores(np.zeros((1, 4, 4), int), q)


def test_a_block_of_zero_scores_cannot_be_downsampled(rng):
    # cleanlab divides by the zero block sum (NaN); we say where and why
    probs = rng.random((2, 3, 8, 8))
    probs[1, :, 4:6, 2:4] = 0
    labels = rng.integers(0, 3, (2, 8, 8))
    with pytest.raises(InvalidProbabilitiesError, match=r"pred_probs\[1\].*block at rows 4..5, cols 2..3"):
        core.find_label_issues(labels, probs, downsample=2)
    _quiet(core.find_label_issues, labels, probs)  # full resolution: zeros are fine
