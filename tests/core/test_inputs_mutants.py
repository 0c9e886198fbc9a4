"""Behaviour of segqual_fo.core._inputs that surviving mutants showed untested.

Each test names the mutants it kills (mutmut's ``<function>#<n>``); the
verdicts are in .ci/mutation-verdicts/core-inputs.md. Expected values are
computed by hand or with plain numpy.
"""

import os
import sys
import threading
import warnings

import numpy as np
import pytest

import segqual_fo.core as core
from segqual_fo.core._inputs import normalize_ignore_index, resolve_n_jobs
from segqual_fo.errors import InvalidInputError, ShapeMismatchError, UnnormalizedProbabilitiesWarning

UNDER_MUTMUT = any(m.split(".")[0] == "mutmut" for m in sys.modules)


class Recording:
    """A lazy sequence that records which thread reads which image; reads
    from worker threads can be made to meet at a barrier."""

    def __init__(self, items, barrier=None):
        self.items = items
        self.barrier = barrier
        self.reads = []
        self._lock = threading.Lock()

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        with self._lock:
            self.reads.append((i, threading.current_thread()))
        if self.barrier is not None and threading.current_thread() is not threading.main_thread():
            self.barrier.wait()
        return self.items[i]


def _images(n, h=4, w=4):
    """n (H,W) labels of class 0 and (2,H,W) probabilities 0.75/0.25."""
    labels = [np.zeros((h, w), dtype=np.int64) for _ in range(n)]
    probs = [np.stack([np.full((h, w), 0.75), np.full((h, w), 0.25)]) for _ in range(n)]
    return labels, probs


# -- normalize_ignore_index (#6 showed a 0-d array was refused; fixed) --------


@pytest.mark.parametrize("given", [np.array(255), np.array(255.0), np.array(255, dtype=np.uint8)])
def test_a_0d_array_ignore_index_is_the_scalar(given):
    assert normalize_ignore_index(given) == (255,)


@pytest.mark.parametrize("given", [np.array(True), np.array(2.5), np.array("255")])
def test_a_0d_array_ignore_index_is_checked_like_the_scalar(given):
    with pytest.raises(InvalidInputError, match="ignore_index"):
        normalize_ignore_index(given)


def test_a_0d_array_ignore_index_ignores_its_value():
    labels = np.array([[[0, 255], [1, 0]]])
    probs = np.array([[[[0.9, 0.5], [0.2, 0.6]], [[0.1, 0.5], [0.8, 0.4]]]])
    _, px = core.get_label_quality_scores(labels, probs, ignore_index=np.array(255))
    np.testing.assert_array_equal(px, [[[0.9, np.nan], [0.8, 0.6]]])


# -- resolve_n_jobs (#6-#13) --------------------------------------------------


@pytest.mark.parametrize("cpus, expected", [(3, 3), (1, 1), (None, 1)])
def test_n_jobs_none_without_sched_getaffinity_uses_cpu_count(monkeypatch, cpus, expected):
    # macOS and Windows have no os.sched_getaffinity; os.cpu_count() may be None
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    assert resolve_n_jobs(None) == expected
    labels, probs = _images(2)
    scores, _ = core.get_label_quality_scores(labels, probs, n_jobs=None)
    np.testing.assert_allclose(scores, [0.75, 0.75])


@pytest.mark.parametrize("cpus, expected", [({0}, 1), ({0, 2, 5}, 3)])
def test_n_jobs_none_counts_the_cpus_this_process_may_use(monkeypatch, cpus, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: cpus, raising=False)
    assert resolve_n_jobs(None) == expected


# -- imap_ordered (#1 #2: n_jobs=1 stays in the caller's thread; #3 #5 #20) ---


def test_n_jobs_1_reads_images_in_the_calling_thread_and_not_ahead():
    # a sequence that runs a model in __getitem__ may rely on thread-local
    # state (torch.no_grad, a session) or not be thread-safe: n_jobs=1 reads
    # it in the caller's thread, one image per result
    labels, probs = _images(4)
    seq = Recording(probs)
    stream = core.iter_label_quality(labels, seq, n_jobs=1)
    first = next(stream)
    assert first.index == 0 and first.score == pytest.approx(0.75)
    assert {i for i, _ in seq.reads} == {0}
    assert [r.index for r in stream] == [1, 2, 3]
    assert all(t is threading.main_thread() for _, t in seq.reads)

    seq = Recording(probs)
    masks = core.find_label_issues(labels, seq, n_jobs=1)
    assert not np.asarray(masks).any()
    assert sorted({i for i, _ in seq.reads}) == [0, 1, 2, 3]
    assert all(t is threading.main_thread() for _, t in seq.reads)

    seq = Recording(probs)
    scores, _ = core.get_label_quality_scores(labels, seq, n_jobs=1)
    np.testing.assert_allclose(scores, [0.75] * 4)
    assert all(t is threading.main_thread() for _, t in seq.reads)


def test_n_jobs_2_scores_two_images_at_once():
    # each worker's read waits for the other's: it passes only when the two
    # images are in flight together (a serial run reads in the main thread)
    labels, probs = _images(2)
    seq = Recording(probs, barrier=threading.Barrier(2, timeout=5))
    scores, _ = core.get_label_quality_scores(labels, seq, n_jobs=2)
    np.testing.assert_allclose(scores, [0.75, 0.75])
    workers = {(i, t) for i, t in seq.reads if t is not threading.main_thread()}
    assert {i for i, _ in workers} == {0, 1}
    assert len({t for _, t in workers}) == 2


# -- ImageSource --------------------------------------------------------------


def test_a_first_prediction_of_the_wrong_rank_names_image_0():
    # __init__#58 #60 #62: the error's index is the image
    labels = [np.zeros((2, 2), dtype=np.int64)] * 2
    probs = [np.full((2, 2), 0.5), np.full((2, 2, 2), 0.5)]
    with pytest.raises(ShapeMismatchError, match=r"pred_probs\[0\]") as caught:
        core.get_label_quality_scores(labels, probs)
    assert caught.value.index == 0


def test_nested_lists_are_scored():
    # probs#3: a sequence item that is not an array is converted
    labels = [[[0, 1], [1, 0]]]
    probs = [[[[0.9, 0.2], [0.3, 0.6]], [[0.1, 0.8], [0.7, 0.4]]]]
    s = np.array([0.9, 0.8, 0.7, 0.6])
    w = np.exp(-s / 0.1)
    scores, px = core.get_label_quality_scores(labels, probs)
    np.testing.assert_allclose(px, [[[0.9, 0.8], [0.7, 0.6]]])
    np.testing.assert_allclose(scores, [np.sum(s * w) / np.sum(w)], rtol=1e-12)


def test_default_batches_of_large_images():
    # batches#26: 2**17 // (128*128) = 8 images per batch, fewer than
    # ceil(33 / 4) = 9: the batch size is an int (true division gave 8.0)
    labels = np.zeros((33, 128, 128), dtype=np.int64)
    probs = np.full((33, 2, 128, 128), 0.5, dtype=np.float32)
    scores, px = core.get_label_quality_scores(labels, probs, n_jobs=1)
    np.testing.assert_array_equal(scores, np.full(33, 0.5))
    assert px.shape == (33, 128, 128) and (px == 0.5).all()


@pytest.mark.parametrize("batch_size", [2, 3])
def test_each_image_is_counted_once_in_the_unnormalized_warning(batch_size):
    # batches#45: overlapping batches counted image 1 twice ("2 of 3 images")
    labels = np.zeros((3, 4, 4), dtype=np.int64)
    probs = np.full((3, 2, 4, 4), 0.5)
    probs[1] *= 1.5
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores, _ = core.get_label_quality_scores(labels, probs, batch_size=batch_size, n_jobs=1)
    np.testing.assert_allclose(scores, [0.5, 0.75, 0.5])
    assert len(caught) == 1 and caught[0].category is UnnormalizedProbabilitiesWarning
    assert str(caught[0].message).startswith("1 of 3 images has class scores that do not sum to 1 (pred_probs[1]")


# -- UnnormalizedLog.warn (#1 #8: where the warning points) --------------------


def test_the_unnormalized_warning_of_find_label_issues_points_at_the_caller():
    labels, probs = _images(2)
    probs[1] = probs[1] * 2
    with pytest.warns(UnnormalizedProbabilitiesWarning, match="1 of 2 images has") as caught:
        core.find_label_issues(labels, probs)
    assert len(caught) == 1
    if not UNDER_MUTMUT:  # mutmut's trampolines add a frame
        assert caught[0].filename == __file__
