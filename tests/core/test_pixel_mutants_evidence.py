"""Scores, argmax and range/sum checks of ``pixel_evidence``: the cases the
mutation run of ``core/pixel.py`` showed untested.

Oracles are hand-made arrays and plain ``np.argmax`` (first maximum on ties,
as cleanlab). Probabilities at the model's resolution are built with a
:class:`LowResProbs` read at its own size: then every pixel's values are the
stored ones divided by their stored sum (no interpolation), which is easy to
write down by hand.
"""

import numpy as np
import pytest

from segqual_fo.core import LowResProbs, pixel_evidence
from segqual_fo.errors import InvalidProbabilitiesError, ShapeMismatchError


def _same_size(p):
    p = np.asarray(p)
    return LowResProbs(p, p.shape[1:])


def _confident(k, h, w, label=0, dtype=np.float64):
    """(K,H,W) with probability 1 on ``label`` everywhere."""
    p = np.zeros((k, h, w), dtype=dtype)
    p[label] = 1
    return p


# -- errors of the model-resolution path name the image ------------------------


def _lowres_zero_sum_valid():
    # stored pixel (1, 2) sums to 0: 0/0 at a scored pixel (unchecked sums)
    p = _confident(3, 3, 4)
    p[:, 1, 2] = 0
    return np.zeros((3, 4), int), _same_size(p), {"check_probs": "none"}


def _lowres_nan_stored():
    p = _confident(3, 3, 4)
    p[1, 2, 0] = np.nan
    return np.zeros((3, 4), int), _same_size(p), {}


def _lowres_3d_labels():
    return np.zeros((1, 3, 4), int), _same_size(_confident(3, 3, 4)), {}


def _lowres_other_shape():
    return np.zeros((3, 5), int), _same_size(_confident(3, 3, 4)), {}


@pytest.mark.parametrize(
    "case, error, named, text",
    [
        (_lowres_3d_labels, ShapeMismatchError, "labels[5]", "expected (H, W)"),
        (_lowres_other_shape, ShapeMismatchError, "pred_probs[5] is read at 3x4", "labels[5] is 3x5"),
        (_lowres_nan_stored, InvalidProbabilitiesError, "pred_probs[5]", "NaN or infinite"),
        (_lowres_zero_sum_valid, InvalidProbabilitiesError, "pred_probs[5]", "outside [0, 1]"),
    ],
)
def test_lowres_errors_carry_index_and_name(case, error, named, text):
    labels, probs, kw = case()
    with pytest.raises(error) as info:
        pixel_evidence(labels, probs, index=5, **kw)
    assert info.value.index == 5
    assert named in str(info.value)
    assert text in str(info.value)


def test_lowres_ignored_zero_sum_pixel_is_not_an_error_without_argmax():
    # an unvalidated stored sum of 0 under an ignored pixel: its 0/0 is not
    # a score, so it must not trip the [0, 1] check (NaN in the result)
    p = np.zeros((2, 2, 3))
    p[0] = [[0.75, 0.5, 0.0], [1.0, 0.25, 0.5]]
    p[1] = [[0.25, 0.5, 0.0], [0.0, 0.75, 0.5]]  # pixel (0, 2): all zero
    labels = np.array([[0, 1, 255], [0, 1, 1]])
    ev = pixel_evidence(labels, _same_size(p), ignore=(255,), check_probs="none")
    expected = np.array([[0.75, 0.5, np.nan], [1.0, 0.75, 0.5]])
    np.testing.assert_array_equal(ev.pixel_scores, expected)
    np.testing.assert_array_equal(ev.valid, ~np.isnan(expected))


def test_lowres_nan_at_ignored_pixel_refused_with_argmax_naming_first_nan():
    # with the argmax every pixel's maximum is checked for NaN, ignored ones
    # included (as the full-resolution path does). Pixel (0, 1) is an
    # earlier candidate (ignored, finite), the first NaN is at (1, 2).
    p = _confident(3, 3, 4)
    p[:, 1, 2] = 0
    labels = np.zeros((3, 4), int)
    labels[0, 1] = labels[1, 2] = 255
    with pytest.raises(InvalidProbabilitiesError) as info:
        pixel_evidence(labels, _same_size(p), ignore=(255,), with_argmax=True, check_probs="none", index=5)
    assert info.value.index == 5
    assert "pred_probs[5] holds NaN values (first at row 1, col 2)" in str(info.value)


# -- the argmax at ignored pixels -----------------------------------------------


def _mostly_ignored():
    """K=3, 4x5, one scored pixel: the argmax of every ignored pixel is 2,
    of the scored one 1 (its label)."""
    p = np.zeros((3, 4, 5))
    p[0], p[1], p[2] = 0.25, 0.125, 0.625
    p[:, 3, 4] = [0.0, 1.0, 0.0]
    labels = np.full((4, 5), 255)
    labels[3, 4] = 1
    return labels, p


@pytest.mark.parametrize("lowres", [False, True])
def test_argmax_at_ignored_pixels_is_the_model_argmax(lowres):
    labels, p = _mostly_ignored()
    ev = pixel_evidence(labels, _same_size(p) if lowres else p, ignore=(255,), with_argmax=True)
    np.testing.assert_array_equal(ev.pred, np.argmax(p, axis=0))
    ignored = labels == 255
    np.testing.assert_array_equal(ev.pred_prob[ignored], 0.625)
    assert ev.pred_prob[3, 4] == 1.0


# -- ties ---------------------------------------------------------------------------


@pytest.mark.parametrize("lowres", [False, True])
def test_tie_at_one_half_gives_first_class(lowres):
    # one uncertain pixel among confident ones (the sparse argmax path):
    # label 1 ties with class 0 at 0.5, numpy's argmax says 0
    p = _confident(2, 4, 5, label=1)
    p[:, 2, 3] = 0.5
    labels = np.ones((4, 5), int)
    ev = pixel_evidence(labels, _same_size(p) if lowres else p, with_argmax=True)
    expected = np.ones((4, 5), int)
    expected[2, 3] = 0
    np.testing.assert_array_equal(ev.pred, expected)
    assert ev.pred_prob[2, 3] == 0.5


def test_tie_at_the_sum_tolerance_gives_first_class():
    # sums of 1 + tol are accepted; two classes at (1 + tol) / 2 then tie
    # exactly where 2 s == 1 + tol
    s = (1 + 1e-3) / 2
    p = _confident(2, 4, 5, label=1)
    p[:, 2, 3] = s
    labels = np.ones((4, 5), int)
    ev = pixel_evidence(labels, p, with_argmax=True, check_probs="full")
    assert ev.pred[2, 3] == 0
    assert np.count_nonzero(ev.pred == 0) == 1


def test_unnormalized_tie_above_one_half_gives_first_class():
    # raw scores can tie above 1/2: 2 s <= 1 + tol says nothing there
    p = np.zeros((2, 4, 5))
    p[1] = 3.0  # confident label 1 elsewhere
    p[:, 1, 1] = 2.0
    labels = np.ones((4, 5), int)
    ev = pixel_evidence(labels, p, with_argmax=True, allow_unnormalized=True)
    assert ev.unnormalized
    expected = np.ones((4, 5), int)
    expected[1, 1] = 0
    np.testing.assert_array_equal(ev.pred, expected)


# -- argmax_below: the argmax only where the score is below it ----------------


@pytest.mark.parametrize("lowres", [False, True])
def test_argmax_below_is_strict(lowres):
    # pixel (0, 0) scores exactly argmax_below: not below, so pred is its
    # label although class 1 is more likely; pixel (0, 1) scores less
    p = _confident(2, 4, 5)
    p[:, 0, 0] = [0.25, 0.75]
    p[:, 0, 1] = [0.125, 0.875]
    labels = np.zeros((4, 5), int)
    ev = pixel_evidence(labels, _same_size(p) if lowres else p, with_argmax=True, argmax_below=0.25)
    expected = np.zeros((4, 5), int)
    expected[0, 1] = 1
    np.testing.assert_array_equal(ev.pred, expected)


def _uncertain(k=3, h=4, w=5):
    """Every pixel uncertain (the dense argmax path): class 0 at 0.5, 1 at
    0.125, 2 at 0.375; labels 2, scores 0.375."""
    p = np.zeros((k, h, w))
    p[0], p[1], p[2] = 0.5, 0.125, 0.375
    return np.full((h, w), 2), p


@pytest.mark.parametrize("unnormalized", [False, True])
def test_argmax_below_keeps_the_label_elsewhere_on_the_dense_path(unnormalized):
    labels, p = _uncertain()
    below = np.full((4, 5), False)
    below[1, 2] = below[3, 0] = below[3, 4] = True  # 3 of 20: dense path
    p[2][below] = 0.25  # these score below 0.3
    p[0][below] = 0.625
    if unnormalized:
        p[:, 0, 0] *= 4  # sums to 4 there; its label still scores 1.5
    ev = pixel_evidence(
        labels, p, with_argmax=True, argmax_below=0.3, allow_unnormalized=unnormalized
    )
    assert (ev.unnormalized is not None) == unnormalized
    np.testing.assert_array_equal(ev.pred, np.where(below, 0, 2))


# -- the sampled sum check ---------------------------------------------------------


@pytest.mark.parametrize("row", [1, 17, 113])
def test_sampled_sum_check_reads_bands_of_rows(row):
    # H=128: eight bands of 128 // 64 = 2 rows, 128 // 8 = 16 rows apart
    # (rows 0-1, 16-17, ..., 112-113): a bad sum in a band's second row is
    # found, and named by its row
    h, w = 128, 6
    p = _confident(2, h, w, dtype=np.float32)
    p[1, row, 3] = 0.5  # label 0 still scores 1, the sum is 1.5
    labels = np.zeros((h, w), int)
    with pytest.raises(InvalidProbabilitiesError, match=rf"pixel \(row {row}, col 3\) sum to 1\.5"):
        pixel_evidence(labels, p)


def test_float64_sums_are_checked_in_float64():
    # 1 + 1.000001e-3 is outside the tolerance; float32 sums would round it in
    p = _confident(2, 2, 3)
    p[:, 1, 2] = [0.5, 0.501000001]
    labels = np.zeros((2, 3), int)
    with pytest.raises(InvalidProbabilitiesError, match=r"pixel \(row 1, col 2\) sum to 1\.001"):
        pixel_evidence(labels, p)


# -- the argmax's dtype and batches --------------------------------------------


@pytest.mark.parametrize("path", ["sparse", "dense", "lowres"])
@pytest.mark.parametrize("k, dtype", [(3, np.uint8), (300, np.uint16)])
def test_pred_dtype_is_the_smallest_class_dtype(path, k, dtype):
    # one uncertain pixel among confident ones (the sparse argmax path), or
    # every pixel uncertain (the dense one)
    p = _confident(k, 4, 5, label=1)
    if path == "dense":
        p[:2] = 0.5
    p[:2, 0, 0] = [0.75, 0.25]
    labels = np.ones((4, 5), np.int64)
    ev = pixel_evidence(labels, _same_size(p) if path == "lowres" else p, with_argmax=True)
    assert ev.pred.dtype == dtype
    np.testing.assert_array_equal(ev.pred, np.argmax(p, axis=0))


def test_argmax_only_when_requested():
    p = _confident(2, 2, 3)
    p[:, 0, 0] = 0.5
    for probs in (p, _same_size(p)):
        ev = pixel_evidence(np.zeros((2, 3), int), probs)
        assert ev.pred is None and ev.pred_prob is None
        with pytest.raises(ValueError, match="with_argmax=True"):
            ev.disagree


def test_batch_argmax_on_the_sparse_path():
    # three images, uncertain pixels in images 0 and 2 only (2 of 60 pixels:
    # the candidates of each image are read from its own probabilities)
    p = np.stack([_confident(3, 4, 5, label=2)] * 3)
    p[0, :, 1, 1] = [0.125, 0.625, 0.25]
    p[2, :, 3, 4] = [0.5, 0.125, 0.375]
    labels = np.full((3, 4, 5), 2)
    ev = pixel_evidence(labels, p, with_argmax=True)
    np.testing.assert_array_equal(ev.pred, np.argmax(p, axis=1))
    np.testing.assert_array_equal(ev.pred_prob, p.max(axis=1))


# -- errors of a batch name the image ------------------------------------------


def _batch_bad_sum():
    p = np.stack([_confident(2, 4, 5)] * 3)
    p[1, 1, 2, 3] = 0.5  # label 0 scores 1, the sum is 1.5
    return np.zeros((3, 4, 5), int), p, {}, r"pixel \(row 2, col 3\) sum to 1\.5"


def _batch_score_above_one():
    p = np.stack([_confident(2, 4, 5)] * 3)
    p[1, 0, 2, 3] = 1.5
    return np.zeros((3, 4, 5), int), p, {"check_probs": "none"}, r"self-confidence values outside \[0, 1\]"


def _batch_negative_raw_score():
    p = np.stack([_confident(2, 4, 5)] * 3)
    p[1, :, 2, 3] = [2.0, -1.0]  # raw scores: 2 is allowed, -1 is not
    return np.zeros((3, 4, 5), int), p, {"allow_unnormalized": True}, r"negative values .* row 2, col 3"


def _batch_nan_at_ignored_pixel():
    p = np.stack([_confident(2, 4, 5)] * 3)
    p[1, :, 2, 3] = np.nan
    labels = np.zeros((3, 4, 5), int)
    labels[:, 2, 3] = 255
    kw = {"ignore": (255,), "with_argmax": True, "check_probs": "none"}
    return labels, p, kw, r"NaN values \(first at row 2, col 3\)"


@pytest.mark.parametrize("index, named", [(None, 1), (10, 11)])
@pytest.mark.parametrize(
    "case", [_batch_bad_sum, _batch_score_above_one, _batch_negative_raw_score, _batch_nan_at_ignored_pixel]
)
def test_batch_errors_name_the_bad_image(case, index, named):
    labels, p, kw, text = case()
    with pytest.raises(InvalidProbabilitiesError, match=text) as info:
        pixel_evidence(labels, p, index=index, **kw)
    assert info.value.index == named
    assert f"pred_probs[{named}]" in str(info.value)


@pytest.mark.parametrize("shape", [(6,), (1, 1, 2, 3)])
def test_labels_of_another_rank_are_named(shape):
    p = _confident(2, 2, 3)
    with pytest.raises(ShapeMismatchError) as info:
        pixel_evidence(np.zeros(shape, int), p, index=5)
    assert info.value.index == 5
    assert f"labels[5] has shape {shape}" in str(info.value)


# -- shapes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "labels_shape, probs_shape, text",
    [
        ((4, 5), (4, 5), r"pred_probs\[5\] has shape \(4, 5\); expected \(K, H, W\)"),
        ((3, 4, 5), (2, 2, 4, 5), r"a batch of labels \(3, 4, 5\) needs pred_probs \(B, K, H, W\); got \(2, 2, 4, 5\)"),
        ((3, 4, 5), (3, 4, 5), r"a batch of labels \(3, 4, 5\) needs pred_probs \(B, K, H, W\); got \(3, 4, 5\)"),
    ],
)
def test_probability_rank_and_batch_size_must_match(labels_shape, probs_shape, text):
    with pytest.raises(ShapeMismatchError, match=text) as info:
        pixel_evidence(np.zeros(labels_shape, int), np.full(probs_shape, 0.5), index=5)
    assert info.value.index == 5


@pytest.mark.parametrize(
    "labels_hw, probs_hw, lowres_hint",
    [
        ((8, 6), (4, 3), True),  # both sides divide
        ((9, 8), (3, 2), True),
        ((9, 8), (2, 4), False),  # 9 rows are no multiple of 2 (8 columns are of 4)
        ((8, 9), (4, 2), False),  # 8 rows are a multiple of 4, 9 columns not of 2
        ((8, 6), (0, 3), False),  # empty probabilities: no hint, no ZeroDivisionError
        ((8, 6), (4, 0), False),
    ],
)
def test_shape_mismatch_hint_only_for_a_lower_resolution(labels_hw, probs_hw, lowres_hint):
    p = np.full((2,) + probs_hw, 0.5)
    with pytest.raises(ShapeMismatchError) as info:
        pixel_evidence(np.zeros(labels_hw, int), p, index=5)
    h, w = labels_hw
    msg = str(info.value)
    assert info.value.index == 5
    assert f"pred_probs[5] has shape {p.shape} but labels[5] is {labels_hw}; expected (K, {h}, {w})." in msg
    assert ("pass LowResProbs(probs, " in msg) == lowres_hint
    if lowres_hint:
        assert f"pass LowResProbs(probs, ({h}, {w}))" in msg


def test_probabilities_without_classes_are_refused():
    with pytest.raises(ShapeMismatchError, match=r"pred_probs\[5\] has no class channels") as info:
        pixel_evidence(np.zeros((2, 3), int), np.zeros((0, 2, 3)), index=5)
    assert info.value.index == 5


def _hand_scores():
    p = np.zeros((2, 2, 3))
    p[0] = [[0.75, 0.5, 0.0], [1.0, 0.25, 0.5]]
    p[1] = 1 - p[0]
    labels = np.array([[0, 1, 255], [0, 1, 1]])
    return labels, p, np.array([[0.75, 0.5, np.nan], [1.0, 0.75, 0.5]])


@pytest.mark.parametrize("lowres", [False, True])
def test_out_receives_the_scores(lowres):
    labels, p, expected = _hand_scores()
    out = np.zeros((2, 3))
    ev = pixel_evidence(labels, _same_size(p) if lowres else p, ignore=(255,), out=out)
    np.testing.assert_array_equal(ev.pixel_scores, expected)
    assert np.shares_memory(ev.pixel_scores, out)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    "out",
    [
        np.zeros((2, 3), np.float32),  # another dtype
        np.zeros((3, 2)),  # another shape, same size
        np.zeros((3, 2)).T,  # not C-contiguous
    ],
    ids=["dtype", "shape", "strided"],
)
@pytest.mark.parametrize("lowres", [False, True])
def test_an_unfit_out_is_not_used(out, lowres):
    labels, p, expected = _hand_scores()
    ev = pixel_evidence(labels, _same_size(p) if lowres else p, ignore=(255,), out=out)
    assert ev.pixel_scores.dtype == np.float64
    np.testing.assert_array_equal(ev.pixel_scores, expected)


# -- the range check of the self-confidence values --------------------------------


def test_score_at_the_tolerance_is_accepted():
    # a float64 pixel summing to exactly 1 + tol, all of it on the label
    p = _confident(2, 2, 3)
    p[:, 1, 1] = [1 + 1e-3, 0.0]
    ev = pixel_evidence(np.zeros((2, 3), int), p, with_argmax=True)
    assert ev.pixel_scores[1, 1] == 1 + 1e-3
    assert ev.unnormalized is None


def test_score_above_one_outside_the_sampled_rows_is_refused():
    # H=16: the sampled sum check reads rows 0, 2, ..., 14; every score is
    # range-checked, so row 5 is found anyway
    p = _confident(2, 16, 4)
    p[0, 5, 2] = 1.5
    with pytest.raises(InvalidProbabilitiesError, match=r"pixel \(row 5, col 2\) sum to 1\.5"):
        pixel_evidence(np.zeros((16, 4), int), p)


def _edge_valid_images(n):
    """n float64 (2,4,5) images, label 0 everywhere; image 0 holds a score
    of 0 (class 1 certain) and one of exactly 1 + tol, both accepted."""
    p = np.stack([_confident(2, 4, 5)] * n)
    p[0, :, 0, 0] = [0.0, 1.0]
    p[0, :, 0, 1] = [1 + 1e-3, 0.0]
    return np.zeros((n, 4, 5), int), p


@pytest.mark.parametrize("check_probs", ["none", "full"])
@pytest.mark.parametrize(
    "bad, text",
    [
        ([1.5, 0.0], r"sum to 1\.5|outside \[0, 1\]"),
        ([-0.5, 1.5], r"outside \[0, 1\] \(min -0\.5, max 1\)"),
        ([np.nan, 0.0], r"NaN or infinite|outside \[0, 1\]"),
    ],
    ids=["above-one", "negative", "nan"],
)
def test_first_bad_image_of_a_batch_is_named(check_probs, bad, text):
    labels, p = _edge_valid_images(4)
    p[2, :, 3, 1] = bad
    p[3, :, 1, 1] = [0.5, 0.75]  # a later bad sum, label score within [0, 1]
    with pytest.raises(InvalidProbabilitiesError, match=text) as info:
        pixel_evidence(labels, p, check_probs=check_probs)
    assert info.value.index == 2
    assert str(info.value).startswith("pred_probs[2]")


@pytest.mark.parametrize("check_probs", ["sample", "none"])
@pytest.mark.parametrize(
    "bad, text",
    [(-1.0, "negative values"), (np.nan, "NaN or infinite"), (np.inf, "NaN or infinite")],
    ids=["negative", "nan", "inf"],
)
def test_raw_scores_batch_error_names_the_image_with_the_bad_value(check_probs, bad, text):
    # regression: image 0's raw score of 2 is allowed with
    # allow_unnormalized; the error must name image 1 (its bad value), not
    # image 0 for a sum that is no error here
    p = np.stack([_confident(2, 4, 5)] * 3)
    p[0, :, 1, 1] = [2.0, 0.0]
    p[1, :, 2, 3] = [bad, 2.0]
    with pytest.raises(InvalidProbabilitiesError, match=text) as info:
        pixel_evidence(np.zeros((3, 4, 5), int), p, allow_unnormalized=True, check_probs=check_probs, index=7)
    assert info.value.index == 8
    assert str(info.value).startswith("pred_probs[8]")
    assert "row 2, col 3" in str(info.value)


@pytest.mark.parametrize(
    "values, allow, text",
    [
        ([-1.0, 2.0], True, "pred_probs holds negative values"),  # raw scores, one negative
        ([1.5, 0.0], False, "pred_probs: class probabilities"),  # a score and sum of 1.5
        ([1.0, 0.5], False, "pred_probs: class probabilities"),  # a sum of 1.5
    ],
)
def test_single_image_without_index_is_named_plainly(values, allow, text):
    p = _confident(2, 2, 3)
    p[:, 1, 2] = values
    with pytest.raises(InvalidProbabilitiesError, match=text) as info:
        pixel_evidence(np.zeros((2, 3), int), p, allow_unnormalized=allow, check_probs="full")
    assert info.value.index is None


# -- which images are flagged unnormalised ---------------------------------------


def test_unnormalized_flags_from_the_scores():
    # check_probs="none": only the scores tell; image 0 is at the edge but
    # normalised, image 2 holds a raw score of 2
    labels, p = _edge_valid_images(3)
    p[2, :, 3, 1] = [2.0, 0.0]
    ev = pixel_evidence(labels, p, allow_unnormalized=True, check_probs="none")
    np.testing.assert_array_equal(ev.unnormalized, [False, False, True])
    assert ev.unnormalized_note == "pred_probs[2]: class scores at pixel (row 3, col 1) sum to 2, not 1"


def test_unnormalized_flags_from_scores_and_sums_are_combined():
    # H=16 (sampled rows 0, 2, ..., 14): image 0's raw score of 2 at row 5
    # is seen by the range check only, image 1's sum of 1.4 at row 0 by the
    # sum check only
    p = np.stack([_confident(2, 16, 4)] * 3)
    p[0, :, 5, 2] = [2.0, 0.0]
    p[1, :, 0, 3] = [0.5, 0.9]
    ev = pixel_evidence(np.zeros((3, 16, 4), int), p, allow_unnormalized=True)
    np.testing.assert_array_equal(ev.unnormalized, [True, True, False])
    assert ev.unnormalized_note == "pred_probs[0]: class scores at pixel (row 5, col 2) sum to 2, not 1"


@pytest.mark.parametrize("lowres", [False, True])
def test_nan_at_an_ignored_pixel_is_no_score(lowres):
    # unchecked sums (check_probs="none"), no argmax: a NaN under an
    # ignored pixel is never read as a score
    p = _confident(2, 3, 4)
    p[:, 1, 2] = 0.0 if lowres else np.nan  # low resolution: 0/0
    labels = np.zeros((3, 4), int)
    labels[1, 2] = 255
    ev = pixel_evidence(labels, _same_size(p) if lowres else p, ignore=(255,), check_probs="none")
    assert np.isnan(ev.pixel_scores[1, 2])
    assert np.count_nonzero(ev.pixel_scores == 1) == 11


def test_full_check_reads_every_row():
    # H=16: row 5 is outside the sampled rows; "full" finds its sum of 1.5
    p = _confident(2, 16, 4)
    p[1, 5, 2] = 0.5  # label 0 still scores 1
    with pytest.raises(InvalidProbabilitiesError, match=r"pixel \(row 5, col 2\) sum to 1\.5"):
        pixel_evidence(np.zeros((16, 4), int), p, check_probs="full")


def test_unnormalized_flags_from_the_sums_only():
    # scores within [0, 1], image 1's sums are 1.4: flagged by the sum check
    p = np.stack([_confident(2, 4, 5)] * 2)
    p[1, :, 2, 2] = [0.5, 0.9]
    ev = pixel_evidence(np.zeros((2, 4, 5), int), p, allow_unnormalized=True)
    np.testing.assert_array_equal(ev.unnormalized, [False, True])
    assert ev.unnormalized_note == "pred_probs[1]: class scores at pixel (row 2, col 2) sum to 1.4, not 1"


def test_single_image_evidence_keeps_probs_and_note():
    p = _confident(2, 4, 5, dtype=np.float32)
    p[:, 2, 2] = [0.5, 0.9]
    ev = pixel_evidence(np.zeros((4, 5), int), p, allow_unnormalized=True, index=3)
    assert ev.probs.shape == (2, 4, 5) and np.shares_memory(ev.probs, p)  # a view, no copy
    assert ev.unnormalized.shape == () and ev.unnormalized
    assert ev.unnormalized_note == "pred_probs[3]: class scores at pixel (row 2, col 2) sum to 1.4, not 1"
    q = np.round(_confident(2, 4, 5) * 255).astype(np.uint8)
    np.testing.assert_array_equal(pixel_evidence(np.zeros((4, 5), int), q).probs, q / np.float32(255))
