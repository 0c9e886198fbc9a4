"""What the public functions accept as ``labels``, ``pred_probs`` and
``ignore_index``, and the containers and dtypes they return."""

import numpy as np
import pytest

import segqual_fo.core as core
from segqual_fo.core._inputs import normalize_ignore_index
from segqual_fo.errors import InvalidInputError, ShapeMismatchError
from tests.core.helpers import random_probs


@pytest.mark.parametrize(
    "given, expected",
    [
        (None, ()),
        (255, (255,)),
        (255.0, (255,)),
        (np.float32(255.0), (255,)),
        (np.uint8(255), (255,)),
        ([255.0, 1, 255], (1, 255)),
        (np.array([7, 3]), (3, 7)),
        ((0,), (0,)),
        ([], ()),
    ],
)
def test_normalize_ignore_index(given, expected):
    out = normalize_ignore_index(given)
    assert out == expected
    assert all(type(v) is int for v in out)


@pytest.mark.parametrize("given", [2.5, [1, 0.5], "255", b"255", True, [np.True_], float("nan"), float("inf")])
def test_normalize_ignore_index_refuses(given):
    with pytest.raises(InvalidInputError, match="ignore_index"):
        normalize_ignore_index(given)


def test_float_ignore_value_ignores_like_the_int(rng):
    probs = random_probs(rng, (3, 3, 6, 6), dtype=np.float64)
    labels = rng.integers(0, 3, (3, 6, 6))
    labels[:, :2] = 255
    for method in core.METHODS:
        a, pa = core.get_label_quality_scores(labels, probs, method=method, ignore_index=255)
        b, pb = core.get_label_quality_scores(labels, probs, method=method, ignore_index=255.0)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(pa, pb)
        assert np.isnan(pb[:, :2]).all() and not np.isnan(pb[:, 2:]).any()


def test_ragged_object_arrays_are_sequences(rng):
    # np.array(list_of_different_shapes, dtype=object) is how many loaders
    # hold images of different sizes; it behaves like the list
    shapes = [(4, 6), (6, 4), (4, 4)]
    labels = [rng.integers(0, 3, s) for s in shapes]
    probs = [random_probs(rng, (3,) + s, dtype=np.float64) for s in shapes]
    obj_labels = np.empty(3, dtype=object)
    obj_probs = np.empty(3, dtype=object)
    for i in range(3):
        obj_labels[i], obj_probs[i] = labels[i], probs[i]
    for method in core.METHODS:
        a, pa = core.get_label_quality_scores(labels, probs, method=method)
        b, pb = core.get_label_quality_scores(obj_labels, obj_probs, method=method)
        np.testing.assert_array_equal(a, b)
        assert isinstance(pb, list)
        for x, y in zip(pa, pb):
            np.testing.assert_array_equal(x, y)
    masks = core.find_label_issues(obj_labels, obj_probs)
    for x, y in zip(masks, core.find_label_issues(labels, probs)):
        np.testing.assert_array_equal(x, y)


def test_other_wrong_ndims_are_refused(rng):
    with pytest.raises(ShapeMismatchError, match=r"labels has shape \(2, 2, 4, 4\); expected \(N, H, W\)"):
        core.find_label_issues(np.zeros((2, 2, 4, 4), int), random_probs(rng, (2, 3, 4, 4)))
    with pytest.raises(ShapeMismatchError, match=r"pred_probs has shape \(3, 4\)"):
        core.find_label_issues(np.zeros((2, 4, 4), int), np.ones((3, 4)))
    with pytest.raises(InvalidInputError, match="labels must be a numpy array"):
        core.find_label_issues(5, random_probs(rng, (2, 3, 4, 4)))
    with pytest.raises(InvalidInputError, match="pred_probs must be a numpy array"):
        core.find_label_issues(np.zeros((2, 4, 4), int), "probs")
    with pytest.raises(InvalidInputError, match="pred_probs must be a numpy array"):
        core.find_label_issues(np.zeros((2, 4, 4), int), {0: 1, 1: 2})


def test_outputs_stack_on_the_computation_dtype(rng):
    # same-size images give one stacked array in the computation dtype, for
    # sequences too; mixed sizes give a list
    labels = rng.integers(0, 3, (2, 4, 4))
    for dtype, expected in [(np.float64, np.float64), (np.float32, np.float32), (np.float16, np.float32)]:
        probs = random_probs(rng, (2, 3, 4, 4)).astype(dtype)
        for method in core.METHODS:
            _, px = core.get_label_quality_scores(list(labels), list(probs), method=method)
            assert isinstance(px, np.ndarray) and px.shape == (2, 4, 4) and px.dtype == expected
    # the first image's dtype does not decide: float16 then float64
    probs = [random_probs(rng, (3, 4, 4)).astype(np.float16), random_probs(rng, (3, 4, 4), dtype=np.float64)]
    _, px = core.get_label_quality_scores(list(labels), probs)
    assert px.dtype == np.float32


def test_empty_and_mismatched_counts(rng):
    with pytest.raises(InvalidInputError, match="empty"):
        core.find_label_issues(np.zeros((0, 4, 4), int), np.zeros((0, 3, 4, 4)))
    with pytest.raises(ShapeMismatchError, match="labels holds 1 images but pred_probs holds 2"):
        core.find_label_issues([np.zeros((4, 4), int)], random_probs(rng, (2, 3, 4, 4)))
    with pytest.raises(ShapeMismatchError, match=r"pred_probs\[0\] has shape \(3, 4\); expected \(K, H, W\)"):
        core.find_label_issues([np.zeros((4, 4), int)], [np.ones((3, 4))])
