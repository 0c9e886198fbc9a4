"""Tests written for surviving mutants of segqual_fo/execution/job.py
(verdicts: .ci/mutation-verdicts/execution-job.md): the sample id an
instance-label error names, the model kept by a subset and by the copy sent
to Dask workers, a model's (h, w, K) output hint, the sample id of a record
that is only counted, bad ``n_jobs`` refused before the run is recorded, and
the issue count's scan pass on the progress bar."""

import cv2
import numpy as np
import pytest

import segqual_fo
from segqual_fo.adapters.labels import Instance
from segqual_fo.errors import FiftyOneInputError, InvalidInputError, ShapeMismatchError
from segqual_fo.execution.job import InstanceLabels, InlineMask, LabelDecoder, ModelInput, image_outputs
from tests.fo.helpers import segmentation_dataset
from tests.fo.test_job import A, B, _job, _result, _spec


# ------------------------------------------------------------ a plain model


class Grey:
    """Class scores from an image's grey level g in [0, 1] (its first
    channel): (g, 1 - g, 0) at every pixel, float32 (K, h, w)."""

    def __init__(self, shape_of=None):
        self.shape_of = shape_of or (lambda img: (3,) + img.shape[:2])

    def __call__(self, images):
        out = []
        for img in images:
            g = float(img[0, 0, 0]) / 255.0
            scores = np.zeros(self.shape_of(img), np.float32)
            scores[0], scores[1] = g, 1.0 - g
            out.append(scores)
        return out


def _model_job(tmp_path, model, greys, shape=(2, 3)):
    """A softmin job whose class scores come from ``model``, over images of
    the given grey levels (labels all class 0)."""
    paths = []
    for i, grey in enumerate(greys):
        path = str(tmp_path / f"im{i}.png")
        cv2.imwrite(path, np.full(shape + (3,), grey, np.uint8))
        paths.append(path)
    job = _job(tmp_path)
    job.model = ModelInput(model)
    ids = [f"{i:024x}" for i in range(len(greys))]
    refs = [InlineMask(np.zeros(shape, np.uint8))] * len(greys)
    return job, job.images(ids, paths, refs, [None] * len(greys)), ids, paths


# ------------------------------------------------------------- label errors


def test_a_bad_instance_label_names_its_sample_through_the_job(tmp_path):
    """images#22: the decoder gets the sample's id (the message starts with
    it and is not prefixed again), not None."""
    job = _job(tmp_path)
    job.decoder = LabelDecoder(class_index={"road": 0})
    ref = InstanceLabels([Instance("boat", (0.0, 0.0, 1.0, 1.0))], width=2, height=2)
    images = job.images([A, B], ["/a.png", "/b.png"], [ref, ref], [None, None])
    with pytest.raises(FiftyOneInputError, match=f"^sample {B} has a detection labelled 'boat'"):
        images.label(1)


# ------------------------------------------------------------------ models


def test_a_subset_of_model_images_reads_the_model(tmp_path):
    """subset#13/#20: a softmin run resumed with a model scores the samples
    left (a subset) from the model, not from (missing) probability files."""
    job, images, ids, paths = _model_job(tmp_path, Grey(), [51, 204, 102])
    sub = images.subset([2, 1])
    assert sub.model is images.model
    np.testing.assert_array_equal(sub.label(0), np.zeros((2, 3), np.uint8))
    probs = np.asarray(sub.probs(0))
    np.testing.assert_allclose(probs[:, 0, 0], [0.4, 0.6, 0.0], atol=1e-6)  # grey 102 = 0.4 * 255
    (r0, r1) = job.stream(sub, n_jobs=1)
    assert r0.error is None and r1.error is None
    # softmin of a constant pixel score is that score: the label's class 0 has g
    assert (r0.score, r1.score) == (pytest.approx(0.4), pytest.approx(0.8))
    sub.close()


@pytest.mark.parametrize("logits", [False, True])
def test_the_model_sent_to_dask_workers_keeps_its_settings(logits):
    """without_primed#1-#6 (run_on_dask sends this copy): the same model,
    logits flag and batch size, without the primed outputs, which stay here."""
    model = Grey()
    primed = {A: np.zeros((3, 1, 1), np.float32)}
    mi = ModelInput(model, logits=logits, batch_size=3, primed=primed)
    copy = mi.without_primed()
    assert copy.model is model
    assert copy.logits is logits  # #5: a batch size in its place would apply a softmax to probabilities
    assert copy.batch_size == 3
    assert copy.primed == {} and mi.primed is primed and list(primed) == [A]


def test_a_model_output_with_the_class_axis_last_gets_the_model_hint(tmp_path):
    """_model_probs#10: a (h, w, K) output is refused by the model-output
    check, whose hint says what the model must return (the probability
    files' hint would say to pass a layout, which models do not take)."""
    hwk = Grey(shape_of=lambda img: img.shape[:2] + (3,))
    job, images, ids, paths = _model_job(tmp_path, hwk, [51], shape=(4, 5))
    images.label(0)
    with pytest.raises(ShapeMismatchError) as e:
        images.probs(0)
    assert str(e.value) == (
        f"sample {ids[0]} ({paths[0]}): model output: the model returned 4 class channels (shape (4, 5, 3)) "
        "but the class list has 3; channel k must be class k. It looks like (h, w, K): return (K, h, w)."
    )
    images.close()


def test_a_low_resolution_model_output_as_tall_as_k_is_resized(tmp_path):
    """A (K, h, w) output whose (K, h) happens to equal the mask's (H, W)
    (3 classes, a 3x5 image, output 5x7) is read at the mask's size; it
    was refused with advice to pass layout='HWK', which models do not take."""
    low = Grey(shape_of=lambda img: (3, 5, 7))
    job, images, ids, paths = _model_job(tmp_path, low, [51], shape=(3, 5))
    images.label(0)
    g = np.float32(51 / 255.0)
    got = np.asarray(images.probs(0))
    assert got.shape == (3, 3, 5)
    np.testing.assert_allclose(got[0], g, rtol=1e-6)
    np.testing.assert_allclose(got[1], 1 - g, rtol=1e-6)
    assert not got[2].any()
    images.close()


def test_a_model_output_at_the_mask_s_resolution_is_used_as_it_is(tmp_path):
    """Only another resolution is resampled: at the mask's own, the model's
    float32 values come through unchanged (resampling renormalises them,
    which moves some by an ulp)."""
    scores = np.random.default_rng(0).dirichlet(np.ones(3), size=(2, 3)).transpose(2, 0, 1).astype(np.float32)
    job, images, _, _ = _model_job(tmp_path, lambda imgs: [scores.copy() for _ in imgs], [51])
    images.label(0)
    got = images.probs(0)
    assert type(got) is np.ndarray
    np.testing.assert_array_equal(got, scores)
    images.close()


# ------------------------------------------------------------ image_outputs


def test_a_counted_only_record_keeps_its_sample_id(tmp_path):
    """image_outputs#25: a resumed issue-count run's committed samples are
    counted by id (the totals' fingerprint); None would fail the run."""
    rec = image_outputs(_result(), A, _spec(tmp_path), write=False)
    assert rec.sample_id == A and rec.heatmap is None


# ------------------------------------------------------------ whole runs


@pytest.mark.parametrize("n_jobs", [0, "2"])
def test_bad_n_jobs_is_refused_before_the_run_is_recorded(make_dataset, tmp_path, rng, n_jobs):
    """stream#9/#24: a bad n_jobs is refused (it was, at commit 8c78a4c,
    only by the stream, after the run had been recorded as running: a
    finished run's record was replaced). Now nothing is touched."""
    ds = make_dataset()
    segmentation_dataset(ds, tmp_path, rng, n=2, k=3, shape=(8, 8))
    kwargs = dict(probs_field="probs_path", output_dir=str(tmp_path / "out"), progress=False)
    segqual_fo.compute_label_quality(ds, "ground_truth", **kwargs)
    ds.reload()
    info = ds.get_run_info("label_quality")
    scores = ds.values("label_quality")
    with pytest.raises(InvalidInputError, match=rf"^n_jobs must be a positive integer, got {n_jobs!r}\.$"):
        segqual_fo.compute_label_quality(ds, "ground_truth", n_jobs=n_jobs, overwrite=True, **kwargs)
    ds.reload()
    after = ds.get_run_info("label_quality")
    assert (after.config.status, after.config.token, after.timestamp) == ("completed", info.config.token, info.timestamp)
    assert ds.values("label_quality") == scores


def test_the_issue_count_scan_pass_advances_the_progress_bar(make_dataset, tmp_path, rng):
    """stream#12/#27: the issue count reads every image twice (a scan pass,
    then the write pass); the bar counts both, so it ends full."""
    ds = make_dataset()
    segmentation_dataset(ds, tmp_path, rng, n=3, k=3, shape=(8, 8))
    seen = []
    segqual_fo.compute_label_quality(
        ds, "ground_truth", probs_field="probs_path", method="num_pixel_issues", output_dir=str(tmp_path / "out"),
        progress=lambda pb: seen.append((pb.iteration, pb.total)), n_jobs=1,
    )  # fmt: skip
    assert seen == [(i, 6) for i in range(1, 7)]
