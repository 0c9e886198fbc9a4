"""Tests that kill the surviving mutants of segqual_fo/core/pooling.py (issue 12).

The oracle is the softmin of DESIGN.md written out here in float64 with the
exponent shifted by the minimum by hand (no call into the library), or
bit-for-bit agreement where the library promises that the way images are
batched never changes a score.
"""

import warnings

import numpy as np
import pytest

from segqual_fo.core import get_label_quality_scores, softmin
from segqual_fo.core.pooling import softmin_1d, softmin_rows

CUTOFF = 1.01 / 600  # pooling's no-shift bound: at and below it the exponent is shifted


def oracle(scores, temperature):
    """sum(s * w) / sum(w), w = exp((min s - s) / T), over the non-NaN scores, in float64."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    s = s[~np.isnan(s)]
    if not s.size:
        return float("nan")
    w = np.exp((s.min() - s) / temperature)
    return float((s * w).sum() / w.sum())


def test_1d_input_pooled_over_its_axis_is_a_float():
    # softmin(x, axis=0) on a 1-D x used to raise TypeError ('numpy.float64'
    # object does not support item assignment)
    for axis in (0, -1):
        out = softmin([0.5, 1.0], temperature=0.1, axis=axis)
        assert isinstance(out, float)
        assert out == pytest.approx(oracle([0.5, 1.0], 0.1), rel=1e-14)
    assert np.isnan(softmin([np.nan, np.nan], axis=0))
    assert softmin([0.2, np.nan, 0.6], temperature=0.5, axis=0) == pytest.approx(oracle([0.2, 0.6], 0.5), rel=1e-14)


def test_axis_pooling_of_float16_scores_is_computed_in_float64():
    # kills softmin#6/#8 (no float64 cast: the exponent, weights and sums in float16)
    s = np.array([[0.1, 0.35, 0.9, 0.97], [0.5, 0.52, 0.55, np.nan]], dtype=np.float16)
    out = softmin(s, temperature=0.1, axis=1)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, [oracle(row, 0.1) for row in s], rtol=1e-13)
    out0 = softmin(s.T, temperature=0.1, axis=0)
    assert out0.dtype == np.float64
    np.testing.assert_allclose(out0, [oracle(row, 0.1) for row in s], rtol=1e-13)


def test_all_nan_rows_are_nan_without_any_warning():
    # kills softmin#18 (0/0 of an all-NaN row warns "invalid value") and
    # softmin#41 (nanmin of an all-NaN row warns "All-NaN slice encountered")
    s = np.array([[np.nan, np.nan, np.nan], [0.5, np.nan, 1.0], [0.25, 0.5, 0.75]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = softmin(s, temperature=0.1, axis=1)
        out_t = softmin(s.T, temperature=0.1, axis=0)
    expected = [np.nan, oracle([0.5, 1.0], 0.1), oracle([0.25, 0.5, 0.75], 0.1)]
    np.testing.assert_allclose(out, expected, rtol=1e-14)
    np.testing.assert_allclose(out_t, expected, rtol=1e-14)


def test_other_length_one_axes_are_kept():
    # kills softmin#77/#79 (all axes of length 1 squeezed from the all-NaN mask:
    # the (1, 3) result is indexed with a (3,) mask -> IndexError)
    s = np.array([[[0.2, 0.4, 0.9], [np.nan, np.nan, np.nan], [0.6, np.nan, 0.7]]])  # (1, 3, 3)
    out = softmin(s, temperature=0.2, axis=2)
    assert out.shape == (1, 3)
    np.testing.assert_allclose(out[0], [oracle(r, 0.2) for r in s[0]], rtol=1e-14)
    out = softmin(s.transpose(2, 0, 1), temperature=0.2, axis=0)  # (3, 1, 3) pooled over axis 0
    assert out.shape == (1, 3)
    np.testing.assert_allclose(out[0], [oracle(r, 0.2) for r in s[0]], rtol=1e-14)


def _two_class_probs(scores):
    """(2, H, W) probabilities whose class-0 channel is ``scores`` (labels all 0)."""
    p0 = np.asarray(scores, dtype=np.float64)
    return np.stack([p0, 1.0 - p0])


def test_stacked_batch_with_ignored_pixels_scores_like_single_images(rng):
    # kills softmin_1d#1 (shift=True by default: a stacked batch with ignored
    # pixels is pooled in the shifted form, the same image alone in the plain
    # form; the two round differently in the last bits)
    n, h, w = 6, 5, 7
    scores = rng.uniform(0.05, 0.95, (n, h, w))
    labels = np.zeros((n, h, w), dtype=np.int64)
    labels[:, 0, :3] = 255
    probs = np.stack([_two_class_probs(s) for s in scores])
    stacked, _ = get_label_quality_scores(labels, probs, ignore_index=255)
    # an image of another size makes the input a sequence scored image by image
    extra_lab, extra_probs = np.zeros((3, 3), dtype=np.int64), _two_class_probs(np.full((3, 3), 0.5))
    alone, _ = get_label_quality_scores(list(labels) + [extra_lab], list(probs) + [extra_probs], ignore_index=255)
    np.testing.assert_array_equal(stacked, alone[:n])
    valid = labels != 255
    np.testing.assert_allclose(stacked, [oracle(scores[i][valid[i]], 0.1) for i in range(n)], rtol=1e-13)


def test_scores_at_the_cutoff_temperature_do_not_depend_on_batching(rng):
    # kills softmin_1d#8 and softmin_rows#3 (">=": at T = 1.01/600 one of the
    # batch (rows) and single-image (1-D) paths drops the shift, the other keeps
    # it; with near-tied pixel scores the two differ in the last bits)
    n, h, w = 8, 4, 5
    scores = 0.5 + rng.uniform(0.0, 2 * CUTOFF, (n, h, w))
    labels = np.zeros((n, h, w), dtype=np.int64)
    probs = np.stack([_two_class_probs(s) for s in scores])
    stacked, px = get_label_quality_scores(labels, probs, temperature=CUTOFF)
    extra_lab, extra_probs = np.zeros((3, 3), dtype=np.int64), _two_class_probs(np.full((3, 3), 0.5))
    alone, _ = get_label_quality_scores(list(labels) + [extra_lab], list(probs) + [extra_probs], temperature=CUTOFF)
    np.testing.assert_array_equal(stacked, alone[:n])
    np.testing.assert_allclose(stacked, [oracle(s, CUTOFF) for s in px], rtol=1e-13)
    # the two fast paths themselves agree bit for bit at the cut-off
    flat = np.asarray(px, dtype=np.float64).reshape(n, -1)
    np.testing.assert_array_equal(softmin_rows(flat, CUTOFF), [softmin_1d(r, CUTOFF) for r in flat])


@pytest.mark.parametrize("temperature", [1e-3, 0.1])
def test_shifted_form_of_float32_scores_is_float64_accurate(temperature):
    # guards softmin_1d#23/#26 (no dtype=float64 in the shifted subtraction):
    # equivalent under numpy >= 2 (a numpy float64 scalar is not a weak type),
    # but numpy 1.x's value-based casting would compute float32 scores in float32
    v = np.array([0.75, 0.7501, 0.76, 0.9, 1.3, 2.5], dtype=np.float32)
    assert softmin_1d(v, temperature, shift=True) == pytest.approx(oracle(v, temperature), rel=1e-13)
    np.testing.assert_allclose(softmin_rows(v[None], temperature, shift=True), [oracle(v, temperature)], rtol=1e-13)
