import numpy as np
import pytest

from segqual_fo.core import pixel_evidence
from segqual_fo.core.pixel import argmax_first, prepare_labels
from segqual_fo.errors import (
    InvalidInputError,
    InvalidLabelsError,
    InvalidProbabilitiesError,
    ShapeMismatchError,
)
from tests.core.helpers import random_probs


def test_self_confidence_hand_computed():
    p = np.array(
        [[[0.7, 0.2]], [[0.2, 0.5]], [[0.1, 0.3]]], dtype=np.float32
    )  # K=3, H=1, W=2
    labels = np.array([[0, 2]])
    ev = pixel_evidence(labels, p, with_argmax=True)
    np.testing.assert_array_equal(ev.pixel_scores, np.array([[0.7, 0.3]], dtype=np.float32))
    np.testing.assert_array_equal(ev.pred, [[0, 1]])
    np.testing.assert_array_equal(ev.pred_prob, np.array([[0.7, 0.5]], dtype=np.float32))
    np.testing.assert_array_equal(ev.disagree, [[False, True]])


def test_ignored_pixels_are_nan_and_invalid():
    p = np.full((2, 2, 2), 0.5)
    labels = np.array([[0, 255], [1, 255]])
    ev = pixel_evidence(labels, p, ignore=(255,))
    assert np.isnan(ev.pixel_scores[:, 1]).all()
    np.testing.assert_array_equal(ev.valid, [[True, False], [True, False]])
    assert ev.num_valid == 2


def test_batch_equals_single(rng):
    p = random_probs(rng, (3, 4, 8, 6))
    labels = rng.integers(0, 4, (3, 8, 6))
    batch = pixel_evidence(labels, p, with_argmax=True)
    for b in range(3):
        single = pixel_evidence(labels[b], p[b], with_argmax=True)
        np.testing.assert_array_equal(batch.pixel_scores[b], single.pixel_scores)
        np.testing.assert_array_equal(batch.pred[b], single.pred)


@pytest.mark.parametrize("k", [2, 5, 21, 300])
def test_argmax_first_matches_numpy_with_ties(rng, k):
    p = rng.integers(0, 4, size=(k, 9, 7)).astype(np.float32)  # many ties
    pred = argmax_first(p, p.max(0), np.uint8 if k < 255 else np.uint16)
    np.testing.assert_array_equal(pred, p.argmax(0))


def test_float16_and_uint8_inputs(rng):
    p = random_probs(rng, (5, 6, 7), dtype=np.float64)
    labels = rng.integers(0, 5, (6, 7))
    exact = pixel_evidence(labels, p).pixel_scores
    f16 = pixel_evidence(labels, p.astype(np.float16)).pixel_scores
    assert f16.dtype == np.float32
    np.testing.assert_allclose(f16, exact, atol=1e-3)
    q = np.round(p * 255).astype(np.uint8)
    u8 = pixel_evidence(labels, q).pixel_scores
    expected = q.astype(np.float64) / q.sum(0)  # p / 255 renormalised
    np.testing.assert_allclose(u8, np.take_along_axis(expected, labels[None], 0)[0], rtol=1e-6)


def test_shape_mismatch_suggests_transpose(rng):
    hwk = random_probs(rng, (3, 4, 6)).transpose(1, 2, 0)  # (H, W, K)
    with pytest.raises(ShapeMismatchError, match=r"pred_probs\[3\].*transpose it to \(K, H, W\)"):
        pixel_evidence(np.zeros((4, 6), int), hwk, index=3)


def test_shape_mismatch_lower_resolution(rng):
    p = random_probs(rng, (3, 4, 4))
    with pytest.raises(ShapeMismatchError, match=r"lower-resolution: pass LowResProbs\(probs, \(8, 8\)\)"):
        pixel_evidence(np.zeros((8, 8), int), p)
    # and the hint works
    from segqual_fo.core import LowResProbs

    assert pixel_evidence(np.zeros((8, 8), int), LowResProbs(p, (8, 8))).pixel_scores.shape == (8, 8)


def test_label_values_outside_classes_name_image_and_fix(rng):
    p = random_probs(rng, (3, 4, 4))
    labels = np.zeros((4, 4), int)
    labels[0, 0] = 255
    labels[1, 1] = 7
    with pytest.raises(InvalidLabelsError, match=r"labels\[12\] holds values \[7, 255\].*ignore_index") as e:
        pixel_evidence(labels, p, index=12)
    assert e.value.index == 12
    assert isinstance(e.value, ValueError)


def test_non_integer_labels():
    with pytest.raises(InvalidLabelsError, match="non-integer"):
        prepare_labels(np.array([[0.5, 1.0]]), 3)
    lab, valid = prepare_labels(np.array([[0.0, 2.0]]), 3)  # integral floats are fine
    assert lab.tolist() == [[0, 2]] and valid is None


def test_nan_probabilities(rng):
    p = random_probs(rng, (3, 16, 16))
    p[1, 5, 5] = np.nan
    labels = np.ones((16, 16), int)
    with pytest.raises(InvalidProbabilitiesError, match=r"pred_probs\[4\] holds NaN.*row 5, col 5"):
        pixel_evidence(labels, p, index=4)


def test_nan_outside_label_channel_found_by_argmax(rng):
    p = random_probs(rng, (3, 16, 16))
    p[2, 3, 3] = np.nan  # rows 3 is not in the sampled bands; labels are 0
    with pytest.raises(InvalidProbabilitiesError, match="NaN"):
        pixel_evidence(np.zeros((16, 16), int), p, with_argmax=True, check_probs="full")


def test_logits_are_recognised(rng):
    logits = rng.normal(size=(4, 16, 16)).astype(np.float32)
    with pytest.raises(InvalidProbabilitiesError, match="logits.*softmax"):
        pixel_evidence(np.zeros((16, 16), int), logits, index=0)


def test_unnormalised_probabilities(rng):
    p = random_probs(rng, (4, 32, 32)) * 0.8
    with pytest.raises(InvalidProbabilitiesError, match=r"sum to 0\.8"):
        pixel_evidence(np.zeros((32, 32), int), p)
    # "none" skips the sum check (scores are still in range)
    pixel_evidence(np.zeros((32, 32), int), p, check_probs="none")


def test_negative_probabilities(rng):
    p = random_probs(rng, (3, 8, 8))
    p[0, 2, 2] = -0.1
    with pytest.raises(InvalidProbabilitiesError):
        pixel_evidence(np.zeros((8, 8), int), p)


def test_bad_uint8_sums():
    q = np.zeros((3, 4, 4), np.uint8)
    q[0] = 255
    q[0, 1, 1] = 0
    with pytest.raises(InvalidProbabilitiesError, match=r"uint8.*row 1, col 1"):
        pixel_evidence(np.zeros((4, 4), int), q)


def test_unsupported_dtype():
    with pytest.raises(InvalidProbabilitiesError, match="dtype int32"):
        pixel_evidence(np.zeros((2, 2), int), np.ones((1, 2, 2), np.int32))


def test_bad_check_mode(rng):
    with pytest.raises(InvalidInputError, match="check_probs"):
        pixel_evidence(np.zeros((2, 2), int), random_probs(rng, (2, 2, 2)), check_probs="yes")


def test_sparse_argmax_path_is_exact(rng):
    """A confident model takes the candidate-only argmax path: same answer as
    numpy, ties at the maximum included."""
    from tests.core.helpers import blob_labels, plausible_model

    labels = blob_labels(rng, 2, 6, 32, 32)
    p = plausible_model(rng, labels, 6, strength=9.0).astype(np.float64)
    # a few exact ties at the maximum (0.5 / 0.5), some before the label
    p[:, :, 0, :4] = 0.0
    p[:, 0, 0, :4] = 0.5
    p[:, 5, 0, :4] = 0.5
    ev = pixel_evidence(labels, p, with_argmax=True)
    np.testing.assert_array_equal(ev.pred, p.argmax(1))
    np.testing.assert_array_equal(ev.pred_prob, p.max(1))


@pytest.mark.parametrize("layout", ["F", "transposed", "strided"])
def test_sparse_argmax_with_labels_that_are_not_c_contiguous(rng, layout):
    # the sparse argmax writes through a flat view of the label copy: a
    # Fortran-ordered or strided label array must not make that a copy (the
    # argmax of the few disagreeing pixels was lost, so their issues too)
    h, w, k = 40, 50, 3
    lab = rng.integers(0, k, (h, w))
    x = rng.normal(size=(k, h, w))
    np.put_along_axis(x, lab[None], 10.0, 0)
    lab[5, 5] = (lab[5, 5] + 1) % k  # one confident disagreement: few candidates
    p = np.exp(x)
    p = (p / p.sum(0)).astype(np.float32)
    given = {
        "F": np.asfortranarray(lab),
        "transposed": np.ascontiguousarray(lab.T).T,
        "strided": np.repeat(lab, 2, axis=1)[:, ::2],
    }[layout]
    assert not given.flags.c_contiguous
    ev = pixel_evidence(given, p, with_argmax=True)
    np.testing.assert_array_equal(ev.pred, p.argmax(0))
    assert ev.disagree[5, 5] and ev.disagree.sum() == 1


@pytest.mark.parametrize("strength", [0.0, 9.0], ids=["dense-branch", "candidate-branch"])
def test_argmax_below(rng, strength):
    from tests.core.helpers import blob_labels, plausible_model

    labels = blob_labels(rng, 2, 5, 32, 32)
    p = plausible_model(rng, labels, 5, strength=strength)
    labels[:, 3:9, 3:9] = (labels[:, 3:9, 3:9] + 1) % 5
    labels[0, 0, :4] = 255
    full = pixel_evidence(labels, p, ignore=(255,), with_argmax=True)
    low = pixel_evidence(labels, p, ignore=(255,), with_argmax=True, argmax_below=0.2)
    with np.errstate(invalid="ignore"):
        keep = full.pixel_scores < 0.2
    assert keep.any() and not keep.all()
    np.testing.assert_array_equal(low.pred[keep], p.argmax(1)[keep])
    np.testing.assert_array_equal(low.pred[~keep], full.labels[~keep])
