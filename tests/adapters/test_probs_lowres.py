"""The adapter's side of probabilities at the model's resolution.

``load_probs`` / ``to_class_first`` with ``resize=True`` and another
resolution return a :class:`~segqual_fo.core.resample.LowResProbs` (after
the layout and K checks, and the softmax of logits at the stored
resolution); ``resize_probs`` is its dense reading. Scores through the
files equal scores of the dense arrays, and the dense reading is within
about 1e-7 of the previous definition (``cv2.resize`` of every channel,
renormalised).
"""

import numpy as np
import pytest

from segqual_fo import core
from segqual_fo.adapters.probs import load_probs, resize_probs, softmax, to_class_first
from segqual_fo.core import LowResProbs
from segqual_fo.errors import ShapeMismatchError
from tests.core.helpers import assert_lowres_equals_dense, fullres_labels, lowres_model


def _cv2_resize_renormalised(p, shape):
    """The previous definition of resize_probs, for comparison."""
    cv2 = pytest.importorskip("cv2")
    k = p.shape[0]
    hwk = (p.astype(np.float32) / (255.0 if p.dtype == np.uint8 else 1.0)).transpose(1, 2, 0)
    parts = [
        cv2.resize(np.ascontiguousarray(hwk[:, :, i : i + 512]), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
        for i in range(0, k, 512)
    ]
    out = np.concatenate([x.reshape(*shape, -1) for x in parts], axis=2).transpose(2, 0, 1)
    return out / out.sum(axis=0, keepdims=True)


@pytest.mark.parametrize(
    "k, src, dst, dtype",
    [(19, (16, 32), (64, 128), np.float32), (5, (10, 14), (37, 53), np.uint8), (150, (6, 7), (23, 31), np.float16), (3, (8, 8), (8, 8), np.float64)],
)
def test_resize_probs_is_the_dense_reading_and_within_1e7_of_opencv(rng, k, src, dst, dtype):
    p, _ = lowres_model(rng, k, src, dtype)
    got = resize_probs(p, dst)
    np.testing.assert_array_equal(got, LowResProbs(p, dst).dense())
    diff = float(np.abs(got - _cv2_resize_renormalised(p, dst)).max())
    assert diff < 1e-6, diff  # measured: at most about 2e-7


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_logits_are_softmaxed_at_the_stored_resolution(rng, dtype):
    k, small, full = 6, (9, 11), (36, 44)
    labels, lowres = [], []
    for _ in range(3):
        logits, truth = lowres_model(rng, k, small, dtype, logits=True)
        lr = to_class_first(logits, logits=True, num_classes=k, target_shape=full, resize=True)
        assert isinstance(lr, LowResProbs) and lr.shape == (k, *full)
        # softmax first (as before), then the interpolation
        np.testing.assert_array_equal(lr.dense(), LowResProbs(softmax(logits), full).dense())
        lowres.append(lr)
        labels.append(fullres_labels(rng, truth, full, k))
    for method in core.METHODS:
        assert assert_lowres_equals_dense(labels, lowres, method=method) > 0


@pytest.mark.parametrize(
    "ext, dtype, layout, logits",
    [(".npy", np.float16, "KHW", False), (".npz", np.uint8, "HWK", False), (".npy", np.float32, "HWK", True), (".npz", np.float64, "KHW", False)],
)
def test_load_probs_resize_from_files(rng, tmp_path, ext, dtype, layout, logits):
    k, small, full = 6, (10, 14), (37, 53)
    labels, lowres = [], []
    for i in range(3):
        stored, truth = lowres_model(rng, k, small, dtype, logits=logits)
        arr = stored if layout == "KHW" else stored.transpose(1, 2, 0)
        path = str(tmp_path / f"p{i}{ext}")
        if ext == ".npz":
            np.savez_compressed(path, probs=arr)
        else:
            np.save(path, arr)
        lr = load_probs(path, layout=layout, logits=logits, num_classes=k, target_shape=full, resize=True)
        assert isinstance(lr, LowResProbs) and lr.shape == (k, *full)
        expected = resize_probs(softmax(stored) if logits else stored, full)
        np.testing.assert_array_equal(lr.dense(), expected)
        lowres.append(lr)
        labels.append(fullres_labels(rng, truth, full, k))
    for method in core.METHODS:
        assert assert_lowres_equals_dense(labels, lowres, method=method, ignore=255) > 0


def test_same_resolution_keeps_the_array_path(rng, tmp_path):
    p, _ = lowres_model(rng, 4, (6, 8), np.uint8)
    got = to_class_first(p, num_classes=4, target_shape=(6, 8), resize=True)
    assert got is p  # handed on as it is: the core reads uint8 directly


def test_checks_come_before_the_resample(rng):
    p, _ = lowres_model(rng, 4, (6, 8), np.float32)
    with pytest.raises(ShapeMismatchError, match="4 class channels"):
        to_class_first(p, num_classes=5, target_shape=(12, 16), resize=True)
    with pytest.raises(ShapeMismatchError, match="Pass resize=True"):
        to_class_first(p, num_classes=4, target_shape=(12, 16))
