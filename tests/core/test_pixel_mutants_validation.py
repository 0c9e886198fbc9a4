"""Validation in ``core/pixel.py``: for every kind of bad input, the error type,
the position it names (``.index`` and the ``name[...]`` its message starts
with) and where in the image it points (class / row / col), one image and a
batch alike; and the good input next to each limit that must pass.

Written against the mutation run's survivors: a mutant that lets bad input
through, refuses good input, changes the error type or names another sample
or pixel fails here. The oracles are hand-made arrays with one bad value at a
known place.
"""

import re

import numpy as np
import pytest

from segqual_fo.core import pixel_evidence
from segqual_fo.core.pixel import class_dtype, compute_dtype, prepare_labels
from segqual_fo.errors import (
    InvalidInputError,
    InvalidLabelsError,
    InvalidProbabilitiesError,
    ShapeMismatchError,
)

K, H, W = 3, 4, 5
R, C = 2, 3  # the bad pixel


def _good(dtype=np.float64):
    """(K,H,W) probabilities summing to 1 everywhere (labels are 0)."""
    if np.dtype(dtype) == np.uint8:
        col = [128, 77, 50]  # sum 255
    else:
        col = [0.5, 0.3, 0.2]
    return np.stack([np.full((H, W), v, dtype=dtype) for v in col])


def _labels(dtype=np.int64):
    return np.zeros((H, W), dtype=dtype)


def _case(kind):
    """(labels, probs, kwargs, error type, name stem, message regex) of one
    bad image whose bad value is at (R, C)."""
    lab, p, kw = _labels(), _good(), {}
    if kind == "labels_fraction":
        lab = _labels(np.float64)
        lab[R, C] = 0.5
        return lab, p, kw, InvalidLabelsError, "labels", r"non-integer"
    if kind == "labels_nan":
        lab = _labels(np.float32)
        lab[R, C] = np.nan
        return lab, p, kw, InvalidLabelsError, "labels", r"non-integer"
    if kind == "labels_inf":
        lab = _labels(np.float64)
        lab[R, C] = np.inf
        return lab, p, kw, InvalidLabelsError, "labels", r"non-integer"
    if kind == "label_is_K":
        lab[R, C] = K
        return lab, p, kw, InvalidLabelsError, "labels", r" holds values \[3\] .*classes 0\.\.2"
    if kind == "label_negative":
        lab[R, C] = -1
        return lab, p, kw, InvalidLabelsError, "labels", r" holds values \[-1\] "
    if kind == "nan_label_channel":  # self-confidence NaN: the full sum check says where
        p[0, R, C] = np.nan
        return lab, p, kw, InvalidProbabilitiesError, "pred_probs", r"NaN or infinite values \(first at row 2, col 3\)"
    if kind == "inf_other_channel":  # scores fine, the pixel's sum is not
        p[1, R, C] = np.inf
        return lab, p, kw, InvalidProbabilitiesError, "pred_probs", r"NaN or infinite values \(first at row 2, col 3\)"
    if kind == "sum_low":
        p[:, R, C] = [0.5, 0.2, 0.1]
        return lab, p, kw, InvalidProbabilitiesError, "pred_probs", r": class probabilities at pixel \(row 2, col 3\) sum to 0\.8,"
    if kind == "score_above_one":
        p[:, R, C] = [1.5, 0.0, 0.0]
        return lab, p, kw, InvalidProbabilitiesError, "pred_probs", r"pixel \(row 2, col 3\) sum to 1\.5,"
    if kind == "negative_score_sum_one":  # sums are fine: the plain range message
        p[:, R, C] = [-0.1, 0.6, 0.5]
        return lab, p, kw, InvalidProbabilitiesError, "pred_probs", r" has self-confidence values outside \[0, 1\] \(min -0\.1,"
    if kind == "above_one_unchecked":
        p[:, R, C] = [1.5, 0.0, 0.0]
        kw = dict(check_probs="none")
        return lab, p, kw, InvalidProbabilitiesError, "pred_probs", r" has self-confidence values outside \[0, 1\] \(min 0\.5, max 1\.5\)"
    if kind == "uint8_sum":
        p = _good(np.uint8)
        p[2, R, C] = 0  # sum 205
        return lab, p, kw, InvalidProbabilitiesError, "pred_probs", r" is uint8 .*\(row 2, col 3\) sum to 205,"
    kw = dict(allow_unnormalized=True)
    if kind == "unnorm_nan_label_channel":  # per-image check of the range failure
        p[0, R, C] = np.nan
        return lab, p, kw, InvalidProbabilitiesError, "pred_probs", r" holds NaN or infinite values \(first at class 0, row 2, col 3\)"
    if kind == "unnorm_negative_label_channel":
        p[0, 0, 0] = 0.0  # a zero before it is not negative
        p[0, R, C] = -0.5
        return lab, p, kw, InvalidProbabilitiesError, "pred_probs", r" holds negative values \(first -0\.5 at class 0, row 2, col 3\)"
    if kind == "unnorm_nan_other_channel":  # the batch-wide check after the sums
        p[1, R, C] = np.nan
        return lab, p, kw, InvalidProbabilitiesError, "pred_probs", r" holds NaN or infinite values \(first at class 1, row 2, col 3\)"
    if kind == "unnorm_inf_other_channel":
        p[1, R, C] = np.inf
        return lab, p, kw, InvalidProbabilitiesError, "pred_probs", r" holds NaN or infinite values \(first at class 1, row 2, col 3\)"
    if kind == "unnorm_negative_other_channel":
        p[1, 0, 0] = 0.0
        p[1, R, C] = -0.2
        return lab, p, kw, InvalidProbabilitiesError, "pred_probs", r" holds negative values \(first -0\.2 at class 1, row 2, col 3\)"
    raise AssertionError(kind)


KINDS = [
    "labels_fraction",
    "labels_nan",
    "labels_inf",
    "label_is_K",
    "label_negative",
    "nan_label_channel",
    "inf_other_channel",
    "sum_low",
    "score_above_one",
    "negative_score_sum_one",
    "above_one_unchecked",
    "uint8_sum",
    "unnorm_nan_label_channel",
    "unnorm_negative_label_channel",
    "unnorm_nan_other_channel",
    "unnorm_inf_other_channel",
    "unnorm_negative_other_channel",
]
WHERE = [(False, None), (False, 10), (True, None), (True, 10)]  # (batched, index)


def _named(stem, pos):
    """Regex for the start of a message naming ``stem`` at ``pos``."""
    return "^" + re.escape(stem) + (r"(?!\[)" if pos is None else re.escape(f"[{pos}]"))


def _expect(call, error, stem, pos, pattern):
    with pytest.raises(InvalidInputError) as e:
        call()
    assert type(e.value) is error, repr(e.value)
    assert e.value.index == pos
    msg = str(e.value)
    assert re.search(_named(stem, pos), msg), msg
    assert re.search(pattern, msg), msg


@pytest.mark.parametrize("batched, index", WHERE)
@pytest.mark.parametrize("kind", KINDS)
def test_bad_value_names_image_and_pixel(kind, batched, index):
    lab, p, kw, error, stem, pattern = _case(kind)
    if batched:  # two good images first, the bad one third
        lab = np.stack([np.zeros_like(lab), np.zeros_like(lab), lab])
        p = np.stack([_good(p.dtype), _good(p.dtype), p])
        pos = (index or 0) + 2
    else:
        pos = index
    _expect(lambda: pixel_evidence(lab, p, index=index, **kw), error, stem, pos, pattern)
    # the good images alone pass
    pixel_evidence(np.zeros_like(lab), np.stack([_good(p.dtype)] * len(lab)) if batched else _good(p.dtype), **kw)


@pytest.mark.parametrize("batched, index", WHERE)
@pytest.mark.parametrize(
    "kind",
    ["labels_complex", "labels_str", "labels_empty_rows", "labels_empty_cols", "probs_int32", "probs_complex_unnorm"],
)
def test_whole_array_errors_name_the_first_image(kind, batched, index):
    """Errors about the whole array's dtype or emptiness name image 0 of it."""
    lab, p, kw = _labels(), _good(), {}
    error, stem = InvalidLabelsError, "labels"
    if kind == "labels_complex":
        lab, pattern = lab.astype(np.complex64), r" has dtype complex64; expected an integer"
    elif kind == "labels_str":
        lab, pattern = lab.astype(str), r" has dtype <U.*; expected an integer"
    elif kind == "labels_empty_rows":
        lab, p, pattern = lab[:0], p[:, :0], r" is empty \(shape \(0, 5\)\)"
    elif kind == "labels_empty_cols":
        lab, p, pattern = lab[:, :0], p[:, :, :0], r" is empty \(shape \(4, 0\)\)"
    elif kind == "probs_int32":
        p, error, stem = p.astype(np.int32), InvalidProbabilitiesError, "pred_probs"
        pattern = r" has dtype int32; expected float16/32/64"
    else:
        p, error, stem = p.astype(np.complex128), InvalidProbabilitiesError, "pred_probs"
        pattern, kw = r" has dtype complex128;", dict(allow_unnormalized=True)
    if batched:
        lab, p = np.stack([lab, lab]), np.stack([p, p])
        pos = index or 0
    else:
        pos = index
    _expect(lambda: pixel_evidence(lab, p, index=index, **kw), error, stem, pos, pattern)


# ---------------------------------------------------------------------------
# prepare_labels (one mask; used by the streaming path and display_issues)


@pytest.mark.parametrize("index", [None, 5])
def test_prepare_labels_names_the_mask_it_was_given(index):
    _expect(
        lambda: prepare_labels(np.zeros((2, 2, 2), int), K, index=index),
        ShapeMismatchError,
        "labels",
        index,
        r" has shape \(2, 2, 2\); expected \(H, W\)",
    )
    bad = _labels()
    bad[R, C] = 9
    _expect(lambda: prepare_labels(bad, K, index=index), InvalidLabelsError, "labels", index, r" holds values \[9\] ")
    frac = _labels(np.float64)
    frac[R, C] = 1.5
    _expect(lambda: prepare_labels(frac, K, index=index), InvalidLabelsError, "labels", index, "non-integer")


def test_prepare_labels_good_input():
    lab = np.array([[0, 2, 255], [7, 1, 255]])
    out, valid = prepare_labels(lab, K, (255, 7))  # several ignored values (np.isin)
    assert out.tolist() == [[0, 2, 0], [0, 1, 0]] and out.dtype == lab.dtype
    assert valid.tolist() == [[True, True, False], [False, True, False]]
    for dtype in (np.uint8, np.int32):  # one ignored value; the class map keeps its integer dtype
        out, valid = prepare_labels(np.array([[0, 2, 255]], dtype), K, (255,))
        assert out.tolist() == [[0, 2, 0]] and out.dtype == dtype and valid.tolist() == [[True, True, False]]
    out, valid = prepare_labels(np.array([[0, 2]]), K, (255,))  # nothing ignored here
    assert out.tolist() == [[0, 2]] and valid is None
    out, valid = prepare_labels(np.array([[-1, 2]], np.int16), K, (-1,))  # a negative ignore value
    assert out.tolist() == [[0, 2]] and valid.tolist() == [[False, True]]
    out, valid = prepare_labels(np.array([[True, False]]), 2)  # bool masks are classes 0/1
    assert out.tolist() == [[1, 0]] and valid is None
    out, valid = prepare_labels(np.array([[2.0, -0.0]], np.float32), K)  # integral floats
    assert out.tolist() == [[2, 0]] and valid is None
    # the limits: 0 and K-1 are classes, K and -1 are not
    assert prepare_labels(np.array([[0, K - 1]], np.uint8), K)[0].tolist() == [[0, K - 1]]
    for v in (K, -1):
        with pytest.raises(InvalidLabelsError):
            prepare_labels(np.array([[0, v]]), K)


@pytest.mark.parametrize(
    "values, shown",
    [
        (list(range(3, 13)), "3, 4, 5, 6, 7, 8, 9, 10, 11, 12"),  # ten: all of them, no "..."
        (list(range(3, 14)), "3, 4, 5, 6, 7, 8, 9, 10, 11, 12, ..."),  # eleven: the first ten
    ],
)
def test_bad_label_values_listed(values, shown):
    lab = np.zeros((2, 12), int)
    lab[1, : len(values)] = values
    with pytest.raises(InvalidLabelsError) as e:
        prepare_labels(lab, K)
    assert f"holds values [{shown}]" in str(e.value)
    assert f"ignore_index=[{shown}]" in str(e.value)


# ---------------------------------------------------------------------------
# dtypes and their tolerances


def test_uint8_sum_limits():
    """uint8 channels must sum to 255 +- K (and not 0)."""
    lab = np.zeros((1, 1), int)
    for total, ok in [(255 - K, True), (255 + K, True), (255 - K - 1, False), (255 + K + 1, False)]:
        q = np.array([200, total - 250, 50], np.uint8).reshape(K, 1, 1)
        if ok:
            s = pixel_evidence(lab, q).pixel_scores
            assert s.dtype == np.float32
            np.testing.assert_allclose(s, [[200 / total]], rtol=1e-6)
        else:
            with pytest.raises(InvalidProbabilitiesError, match=rf"sum to {total},"):
                pixel_evidence(lab, q)
    with pytest.raises(InvalidProbabilitiesError, match="sum to 0,"):
        pixel_evidence(lab, np.zeros((K, 1, 1), np.uint8))
    # uint8 stays quantised probabilities with allow_unnormalized too
    with pytest.raises(InvalidProbabilitiesError, match="uint8"):
        pixel_evidence(lab, np.array([200, 200, 200], np.uint8).reshape(K, 1, 1), allow_unnormalized=True)


def test_float16_gets_the_wider_tolerance():
    lab = np.zeros((1, 1), int)
    p = np.array([0.5, 0.505], np.float16).reshape(2, 1, 1)  # sums to 1.005
    s = pixel_evidence(lab, p).pixel_scores
    assert s.dtype == np.float32 and s[0, 0] == np.float32(0.5)
    with pytest.raises(InvalidProbabilitiesError, match=r"expected 1 \(\+-0\.001\)"):
        pixel_evidence(lab, p.astype(np.float32))
    with pytest.raises(InvalidProbabilitiesError, match=r"expected 1 \(\+-0\.01\)"):
        pixel_evidence(lab, np.array([0.5, 0.52], np.float16).reshape(2, 1, 1))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint16, np.int8, bool])
def test_raw_integer_scores_are_float64_with_allow_unnormalized(dtype):
    p = np.array([[[2, 0]], [[1, 1]]], dtype=dtype)  # (K=2, 1, 2)
    lab = np.array([[0, 1]])
    ev = pixel_evidence(lab, p, allow_unnormalized=True)
    assert ev.pixel_scores.dtype == np.float64
    expected = [[1.0, 1.0]] if dtype is bool else [[2.0, 1.0]]
    np.testing.assert_array_equal(ev.pixel_scores, expected)
    assert ev.probs.dtype == np.float64
    # the float tolerance: a sum of 2 is unnormalised (and 1 is not)
    ones = pixel_evidence(np.zeros((1, 1), int), np.ones((2, 1, 1), dtype), allow_unnormalized=True)
    assert ones.unnormalized and ones.unnormalized_note.endswith("sum to 2, not 1")
    one = pixel_evidence(np.zeros((1, 1), int), np.array([1, 0], dtype).reshape(2, 1, 1), allow_unnormalized=True)
    assert one.unnormalized is None and one.pixel_scores.dtype == np.float64
    with pytest.raises(InvalidProbabilitiesError, match="dtype"):
        pixel_evidence(lab, p)


@pytest.mark.parametrize(
    "dtype, expected",
    [
        (np.float64, np.float64),
        (np.float32, np.float32),
        (np.float16, np.float32),
        (np.uint8, np.float32),
        (np.int32, np.float64),
        (np.uint16, np.float64),
        (bool, np.float64),
    ],
)
def test_compute_dtype(dtype, expected):
    assert compute_dtype(np.dtype(dtype)) == np.dtype(expected)


def test_class_dtype_limits():
    assert class_dtype(254) == np.uint8
    assert class_dtype(255) == np.uint16
    assert class_dtype(65534) == np.uint16
    with pytest.raises(InvalidInputError, match="65535 classes"):
        class_dtype(65535)


# ---------------------------------------------------------------------------
# which advice the sum error gives


@pytest.mark.parametrize(
    "col, advice",
    [
        ([0.5, 0.2, 0.1], "renormalise"),  # sum 0.8
        ([0.5, 0.0, 0.3], "renormalise"),  # a zero is not negative
        ([0.5, 0.25, 0.245], "renormalise"),  # 0.995: below 1 - 10 tol is no logit sign
        ([0.5, 0.3, 0.205], "renormalise"),  # 1.005
        ([0.0, 1.01, 0.0], "renormalise"),  # exactly 1 + 10 tol
        ([0.5, 0.3, 0.2105], "softmax"),  # 1.0105: above 1 + 10 tol
        ([0.5, 1.5, 0.2], "softmax"),  # 2.2
        ([0.5, -0.2, 0.2], "softmax"),  # a negative value
    ],
)
def test_sum_error_advice(col, advice):
    p = _good()
    p[:, R, C] = col
    with pytest.raises(InvalidProbabilitiesError) as e:
        pixel_evidence(_labels(), p)
    msg = str(e.value).lower()
    assert advice in msg, msg
    assert ("softmax" if advice == "renormalise" else "renormalise") not in msg


# ---------------------------------------------------------------------------
# the note about unnormalised scores


@pytest.mark.parametrize("index, name", [(None, "pred_probs[1]"), (10, "pred_probs[11]")])
def test_unnormalized_note_names_the_first_flagged_image(index, name):
    p = np.stack([_good(), _good(), _good()])
    p[1, :, R, C] = [0.5, 0.3, 0.3]  # sums to 1.1
    p[2] *= 2
    ev = pixel_evidence(np.zeros((3, H, W), int), p, allow_unnormalized=True, index=index)
    assert ev.unnormalized.tolist() == [False, True, True]
    assert ev.unnormalized_note == f"{name}: class scores at pixel (row 2, col 3) sum to 1.1, not 1"


@pytest.mark.parametrize("batched, index, name", [(False, None, "pred_probs"), (True, None, "pred_probs[1]"), (True, 10, "pred_probs[11]"), (False, 10, "pred_probs[10]")])
def test_unnormalized_note_when_only_float32_rounding_flags_the_image(batched, index, name):
    """float32 scores whose float32 sum is just past 1 + tol while the exact
    sum is not: the image is flagged (as the sum check computes), and the
    note must still name it, not raise."""
    p = np.array([0.11434073, 0.88665926], np.float32).reshape(2, 1, 1)
    assert float(p[0, 0, 0]) + float(p[1, 0, 0]) - 1 <= 1e-3  # exactly: within the tolerance
    lab = np.zeros((1, 1), int)
    if batched:
        p = np.stack([np.array([0.5, 0.5], np.float32).reshape(2, 1, 1), p])
        lab = np.stack([lab, lab])
    ev = pixel_evidence(lab, p, allow_unnormalized=True, index=index)
    assert ev.unnormalized.tolist() == ([False, True] if batched else True)
    assert re.match(re.escape(name) + "[ :]", ev.unnormalized_note), ev.unnormalized_note
    # it points at the pixel the float32 check judged, with the float32 sum
    assert ev.unnormalized_note == f"{name}: class scores at pixel (row 0, col 0) sum to 1.001, not 1"


def test_uint8_limits_with_many_classes():
    """255 - K is the floor for truncating quantisers: with K = 254 a sum of 1
    is valid; with K = 256 a sum of 0 is still refused (it has no ratio)."""
    q = np.zeros((254, 1, 2), np.uint8)
    q[3, 0, 0] = 1
    q[5, 0, 1] = 255
    s = pixel_evidence(np.array([[3, 5]]), q).pixel_scores
    np.testing.assert_array_equal(s, np.ones((1, 2), np.float32))
    q = np.zeros((256, 1, 2), np.uint8)
    q[0, 0, 1] = 255
    with pytest.raises(InvalidProbabilitiesError, match=r"uint8 .*\(row 0, col 0\) sum to 0,"):
        pixel_evidence(np.zeros((1, 2), int), q)


def test_uint8_scores_are_the_ratio_rounded_once():
    """uint8 scores are q / sum(q) rounded once to float32 (the exact ratio
    of two integers, computed in float64 here): every label value 0..255
    against every accepted sum 255 - K .. 255 + K."""
    k = 4
    totals = np.arange(255 - k, 255 + k + 1)
    v = np.arange(256)[:, None]
    q = np.zeros((k, v.size, totals.size), np.int64)
    q[0] = v
    rest = totals[None, :] - v  # what the other channels hold: -4 .. 259
    q[1] = np.clip(rest, 0, 255)
    q[2] = np.clip(rest - 255, 0, 255)
    sums = q.sum(0)
    ok = np.abs(sums - 255) <= k  # a label value above the total leaves too much
    q[:, ~ok] = np.array([255, 0, 0, 0])[:, None]
    sums = q.sum(0)
    ev = pixel_evidence(np.zeros(v.size * totals.size, int).reshape(sums.shape), q.astype(np.uint8), with_argmax=True)
    expected = (q[0] / sums).astype(np.float32)
    assert ok.sum() > 2000
    np.testing.assert_array_equal(ev.pixel_scores, expected)
    np.testing.assert_array_equal(ev.pred_prob, (q.max(0) / sums).astype(np.float32))
