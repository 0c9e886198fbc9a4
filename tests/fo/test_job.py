"""The per-image job (segqual_fo.execution.job) by hand: label references,
lazy images, and the files, regions and totals one image's record holds.
No database: these run where Dask workers do."""

import os
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from segqual_fo.adapters.labels import Instance
from segqual_fo.adapters.masks import LabelMapping
from segqual_fo.errors import FiftyOneInputError, InvalidFileError, InvalidInputError, InvalidLabelsError
from segqual_fo.execution.job import (
    Failed,
    InlineMask,
    InstanceLabels,
    LabelDecoder,
    MaskFile,
    MissingLabel,
    OutputSpec,
    SampleImages,
    Scored,
    ScoringJob,
    _prefix,
    _Seq,
    as_sample_error,
    image_outputs,
)
from segqual_fo.writers.documents import serialize_mask

A = "65a1b2c3d4e5f60718293a4b"
B = "65a1b2c3d4e5f60718293a4c"


# ---------------------------------------------------------- LabelDecoder


def test_decoder_reads_a_mask_file(tmp_path):
    mask = np.array([[0, 1], [2, 255]], np.uint8)
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    out = LabelDecoder()(MaskFile(str(tmp_path / "m.png")), A)
    np.testing.assert_array_equal(out, mask)
    with pytest.raises(InvalidFileError, match="does not exist"):
        LabelDecoder()(MaskFile(str(tmp_path / "missing.png")), A)


def test_decoder_returns_an_inline_mask_as_an_array():
    out = LabelDecoder()(InlineMask([[1, 2], [3, 4]]), A)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, [[1, 2], [3, 4]])


def test_decoder_rasterises_instances_with_its_classes_and_void():
    decoder = LabelDecoder(class_index={"car": 1, "road": 0}, void=7)
    ref = InstanceLabels([Instance("car", (0.5, 0.0, 0.5, 1.0))], width=4, height=2)
    np.testing.assert_array_equal(decoder(ref, A), [[7, 7, 1, 1], [7, 7, 1, 1]])
    np.testing.assert_array_equal(decoder(InstanceLabels(None, 3, 1), A), [[7, 7, 7]])
    assert LabelDecoder().void == 255
    np.testing.assert_array_equal(LabelDecoder(class_index={})(InstanceLabels([], 2, 1), A), [[255, 255]])


def test_decoder_names_the_sample_of_an_unknown_instance_label():
    decoder = LabelDecoder(class_index={"road": 0})
    ref = InstanceLabels([Instance("boat", (0.0, 0.0, 1.0, 1.0))], width=2, height=2)
    with pytest.raises(FiftyOneInputError, match=f"^sample {A} has a detection labelled 'boat'"):
        decoder(ref, A)


@pytest.mark.parametrize("width, height", [(None, 2), (2, None), (0, 2), (2, 0)])
def test_decoder_needs_the_image_size(width, height):
    with pytest.raises(FiftyOneInputError, match=r"^the image size is unknown \(metadata could not be computed\)\.$"):
        LabelDecoder(class_index={})(InstanceLabels([], width, height), A)


def test_decoder_refuses_a_missing_label_with_its_reason():
    with pytest.raises(FiftyOneInputError, match="^no ground_truth label$"):
        LabelDecoder()(MissingLabel("no ground_truth label"), A)


def test_decoder_refuses_other_objects():
    with pytest.raises(TypeError, match="^not a label reference: str$"):
        LabelDecoder()("mask.png", A)


# ----------------------------------------------------------------- errors


def test_prefix():
    assert _prefix("broken", "sample x (/a.png)") == "sample x (/a.png): broken"
    assert _prefix("sample y is broken", "sample x (/a.png)") == "sample y is broken"


def test_as_sample_error_keeps_a_named_error():
    e = InvalidLabelsError("sample x has bad values")
    assert as_sample_error(e, "sample x (/a.png)") is e


def test_as_sample_error_prefixes_our_errors_keeping_type_and_attributes():
    e = InvalidLabelsError("bad values")
    e.extra = 3
    out = as_sample_error(e, "sample x (/a.png)")
    assert type(out) is InvalidLabelsError and out is not e
    assert str(out) == "sample x (/a.png): bad values" and out.extra == 3
    assert str(e) == "bad values"


def test_as_sample_error_wraps_other_errors():
    out = as_sample_error(ZeroDivisionError("division by zero"), "sample x (/a.png)")
    assert type(out) is InvalidInputError
    assert str(out) == "sample x (/a.png): ZeroDivisionError: division by zero"


# ------------------------------------------------------------ SampleImages


def _mapping(k=3, **kwargs):
    return LabelMapping.from_targets(**kwargs).resolve(k)


def _images(tmp_path, masks, probs, mapping=None, probs_opts=None, ids=None):
    n = len(masks)
    ids = ids or [f"{i:024x}" for i in range(n)]
    paths = []
    for i, p in enumerate(probs):
        if p is None:
            paths.append(None)
            continue
        path = str(tmp_path / f"p{i}.npy")
        np.save(path, p)
        paths.append(path)
    return SampleImages(
        ids=ids,
        filepaths=[f"/img/{i}.png" for i in range(n)],
        label_source=lambda i: masks[i],
        probs_paths=paths,
        mapping=mapping or _mapping(),
        probs_opts=probs_opts or {},
    )


def _uniform(k, h, w):
    return np.full((k, h, w), 1.0 / k, np.float32)


def test_sample_images_decode_labels_and_load_probs(tmp_path):
    masks = [np.array([[0, 1], [2, 255]], np.uint8), np.array([[2]], np.uint8)]
    images = _images(tmp_path, masks, [_uniform(3, 2, 2), _uniform(3, 1, 1)])
    assert images.where(1) == "sample 000000000000000000000001 (/img/1.png)"
    np.testing.assert_array_equal(images.label(0), [[0, 1], [2, 255]])
    assert images.probs(0).shape == (3, 2, 2)
    labels, probs = images.labels_seq(), images.probs_seq()
    assert len(labels) == len(probs) == 2
    np.testing.assert_array_equal(labels[1], [[2]])
    np.testing.assert_allclose(probs[1], _uniform(3, 1, 1))


def test_sample_images_load_probs_at_the_label_size(tmp_path):
    masks = [np.zeros((4, 4), np.uint8)]
    images = _images(tmp_path, masks, [_uniform(3, 2, 2)], probs_opts={"resize": True})
    images.label(0)
    assert images.probs(0).shape == (3, 4, 4)  # resized to the mask's shape
    assert images._shapes == {}  # used once


def test_sample_images_shape_mismatch_names_the_sample(tmp_path):
    images = _images(tmp_path, [np.zeros((4, 4), np.uint8)], [_uniform(3, 2, 2)])
    images.label(0)
    with pytest.raises(InvalidInputError, match=r"^sample 000000000000000000000000 \(/img/0\.png\): "):
        images.probs(0)


def test_sample_images_pass_the_probability_options(tmp_path):
    hwk = np.moveaxis(_uniform(3, 2, 5), 0, -1)  # (2, 5, 3)
    images = _images(tmp_path, [np.zeros((2, 5), np.uint8)], [hwk], probs_opts={"layout": "HWK"})
    images.label(0)
    assert images.probs(0).shape == (3, 2, 5)


def test_sample_images_check_the_class_count(tmp_path):
    images = _images(tmp_path, [np.zeros((2, 2), np.uint8)], [_uniform(4, 2, 2)])
    with pytest.raises(InvalidInputError, match=r"^sample 000000000000000000000000 \(/img/0\.png\): .*4"):
        images.probs(0)


def test_sample_images_without_a_probability_file(tmp_path):
    images = _images(tmp_path, [np.zeros((2, 2), np.uint8)], [None])
    with pytest.raises(FiftyOneInputError, match=r"^sample 000000000000000000000000 \(/img/0\.png\) has no probabilities file\.$"):
        images.probs(0)


def test_sample_images_label_errors_name_the_sample_once(tmp_path):
    images = _images(tmp_path, [np.array([[7]], np.uint8)], [None])
    with pytest.raises(InvalidLabelsError, match=r"^sample 000000000000000000000000 \(/img/0\.png\) holds mask values \[7\]") as e:
        images.label(0)
    assert str(e.value).count("sample ") == 1

    def broken(i):
        raise InvalidFileError("mask file /m.png does not exist.")

    images.label_source = broken
    with pytest.raises(InvalidFileError, match=r"^sample 000000000000000000000000 \(/img/0\.png\): mask file /m\.png does not exist\.$"):
        images.label(0)


def test_sample_images_subset(tmp_path):
    masks = [np.full((1, 1), i, np.uint8) for i in range(3)]
    images = _images(tmp_path, masks, [_uniform(3, 1, 1)] * 3)
    assert images.subset([0, 1, 2]) is images
    assert images.subset(range(3)) is images
    sub = images.subset([2, 0])
    assert sub.ids == [images.ids[2], images.ids[0]]
    assert sub.filepaths == ["/img/2.png", "/img/0.png"]
    assert sub.probs_paths == [images.probs_paths[2], images.probs_paths[0]]
    assert sub.mapping is images.mapping and sub.probs_opts is images.probs_opts
    np.testing.assert_array_equal(sub.label(0), [[2]])
    np.testing.assert_array_equal(sub.label(1), [[0]])
    assert sub.where(0) == f"sample {images.ids[2]} (/img/2.png)"
    assert len(images.subset([1]).labels_seq()) == 1


def test_seq():
    s = _Seq(3, lambda i: i * 10)
    assert len(s) == 3 and s[2] == 20


# ----------------------------------------------------------- image_outputs

K = 3
LABELS = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2]], np.uint8)
ISSUES = np.array([[1, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]], bool)
PRED = np.array([[1, 1, 255, 2], [1, 255, 255, 255], [255, 255, 255, 255]], np.uint8)
SCORES = np.array([[0.0, 0.5, 1.0, 0.25], [0.125, 1.0, 1.0, 1.0], [np.nan, 1.0, 1.0, 1.0]])


def _result(score=0.375, issues=ISSUES):
    return SimpleNamespace(score=score, num_issues=int(issues.sum()), labels=LABELS, issues=issues, pred=PRED, pixel_scores=SCORES)


def _spec(tmp_path, fast_docs=False, min_area=2):
    return OutputSpec(str(tmp_path), "lq", "aaaaaaaa", min_area, ["road", "car", "sky"], fast_docs=fast_docs)


def test_image_outputs_writes_the_pngs_and_finds_the_regions(tmp_path):
    rec = image_outputs(_result(), A, _spec(tmp_path))
    assert isinstance(rec, Scored)
    assert (rec.sample_id, rec.score, rec.num_issues, rec.docs) == (A, 0.375, 4, None)
    assert rec.heatmap == os.path.join(str(tmp_path), "lq", f"{A}-aaaaaaaa_heatmap.png")
    assert rec.issues == os.path.join(str(tmp_path), "lq", f"{A}-aaaaaaaa_issues.png")
    # given*K + predicted: (0 -> car) x3, (car -> sky) x1
    assert rec.pairs.tolist() == [1, 5] and rec.pair_counts.tolist() == [3, 1]
    heat = cv2.imread(rec.heatmap, cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(heat, [[255, 128, 0, 191], [223, 0, 0, 0], [0, 0, 0, 0]])
    iss = cv2.imread(rec.issues, cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(iss, [[1, 1, 0, 2], [1, 0, 0, 0], [0, 0, 0, 0]])
    (region,) = rec.regions  # the one-pixel region is below min_region_area
    assert (region.given_class, region.predicted_class, region.area) == (0, 1, 3)
    assert region.mean_score == pytest.approx((0.0 + 0.5 + 0.125) / 3)
    assert sorted(os.listdir(tmp_path / "lq")) == [f"{A}-aaaaaaaa_heatmap.png", f"{A}-aaaaaaaa_issues.png"]


def test_image_outputs_min_region_area(tmp_path):
    rec = image_outputs(_result(), A, _spec(tmp_path, min_area=1))
    assert [r.area for r in rec.regions] == [3, 1]


def test_image_outputs_plain_documents(tmp_path):
    rec = image_outputs(_result(), A, _spec(tmp_path, fast_docs=True))
    assert rec.regions == []
    assert rec.heatmap.endswith("_heatmap.png") and rec.issues.endswith("_issues.png")
    assert rec.pairs.tolist() == [1, 5] and rec.pair_counts.tolist() == [3, 1]
    assert rec.docs["heatmap"]["map_path"] == rec.heatmap and rec.docs["heatmap"]["_cls"] == "Heatmap"
    assert rec.docs["issues"]["mask_path"] == rec.issues and rec.docs["issues"]["_cls"] == "Segmentation"
    (det,) = rec.docs["regions"]["detections"]
    assert (det["label"], det["predicted_label"], det["area"]) == ("road", "car", 3)
    assert bytes(det["mask"]) == serialize_mask(np.array([[1, 1], [1, 0]], bool))


def test_image_outputs_without_writing_only_counts(tmp_path):
    rec = image_outputs(_result(), A, _spec(tmp_path), write=False)
    assert (rec.heatmap, rec.issues, rec.regions, rec.docs) == (None, None, [], None)
    assert (rec.score, rec.num_issues) == (0.375, 4)
    assert rec.pairs.tolist() == [1, 5] and rec.pair_counts.tolist() == [3, 1]
    assert os.listdir(tmp_path) == []


def test_image_outputs_without_issues_and_an_undefined_score(tmp_path):
    none = np.zeros_like(ISSUES)
    rec = image_outputs(_result(score=float("nan"), issues=none), A, _spec(tmp_path))
    assert rec.score is None and rec.num_issues == 0 and rec.regions == []
    assert rec.pairs.dtype == np.int64 and rec.pairs.size == 0 and rec.pair_counts.size == 0
    assert not cv2.imread(rec.issues, cv2.IMREAD_UNCHANGED).any()


def test_image_outputs_score_is_a_python_float(tmp_path):
    rec = image_outputs(_result(score=np.float32(0.5)), A, _spec(tmp_path), write=False)
    assert type(rec.score) is float and rec.score == 0.5


# ------------------------------------------------------------- ScoringJob


def _job(tmp_path, method="softmin"):
    mapping = _mapping()
    return ScoringJob(
        method=method, temperature=0.1, downsample=1, issue_threshold=0.1, ignore=mapping.core_ignore,
        mapping=mapping, probs_opts={}, decoder=LabelDecoder(), output=_spec(tmp_path), cache_dir=str(tmp_path / "c"),
    )  # fmt: skip


def test_job_images_stream_and_failures(tmp_path):
    job = _job(tmp_path)
    assert job.num_classes == 3
    good = np.array([[0, 0], [1, 2]], np.uint8)
    probs = np.zeros((3, 2, 2), np.float32)
    probs[0] = [[1, 0], [0, 0]]
    probs[1] = [[0, 1], [1, 0]]  # pixel (0,1): the model says car where the label says road
    probs[2] = [[0, 0], [0, 1]]
    np.save(tmp_path / "p.npy", probs)
    refs = [InlineMask(good), MissingLabel("no label"), InlineMask(good)]
    images = job.images([A, B, "c" * 24], ["/a.png", "/b.png", "/c.png"], refs, [str(tmp_path / "p.npy"), None, None])
    np.testing.assert_array_equal(images.label(0), good)
    callable_images = job.images([A], ["/a.png"], lambda i: refs[i], [str(tmp_path / "p.npy")])
    np.testing.assert_array_equal(callable_images.label(0), good)

    results = list(job.stream(images, n_jobs=1))
    assert [r.index for r in results] == [0, 1, 2]
    assert results[0].error is None and results[0].num_issues == 1 and results[0].issues[0, 1]
    assert results[0].score < 0.1
    assert isinstance(results[1].error, FiftyOneInputError) and "no label" in str(results[1].error)
    assert "has no probabilities file" in str(results[2].error)
    failed = job.failed(images, 1, results[1].error)
    assert isinstance(failed, Failed)
    assert (failed.sample_id, failed.filepath) == (B, "/b.png")
    assert str(failed.error) == f"sample {B} (/b.png): no label"
    other = job.failed(images, 2, KeyError("x"))
    assert str(other.error) == "sample " + "c" * 24 + " (/c.png): KeyError: 'x'"


def test_job_stream_passes_the_method_and_temperature(tmp_path):
    probs = np.zeros((3, 1, 2), np.float32)
    probs[:, 0, 0] = [0.5, 0.5, 0.0]
    probs[:, 0, 1] = [1.0, 0.0, 0.0]
    np.save(tmp_path / "p.npy", probs)
    label = InlineMask(np.array([[0, 0]], np.uint8))

    def score(job):
        images = job.images([A], ["/a.png"], [label], [str(tmp_path / "p.npy")])
        (r,) = job.stream(images, n_jobs=1)
        return r.score

    job = _job(tmp_path)
    t01 = score(job)
    # softmin of {0.5, 1.0} at T: (0.5 e^{-5} + e^{-10}) / (e^{-5} + e^{-10}) for T = 0.1
    assert t01 == pytest.approx((0.5 * np.exp(-5) + np.exp(-10)) / (np.exp(-5) + np.exp(-10)))
    job.temperature = 1.0
    assert score(job) == pytest.approx((0.5 * np.exp(-0.5) + np.exp(-1)) / (np.exp(-0.5) + np.exp(-1)))


def test_job_stream_passes_the_issue_threshold_and_downsample(tmp_path):
    # the same image, scored through the job and through the core directly
    from segqual_fo.core import iter_label_quality

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, size=(8, 8)).astype(np.uint8)
    logits = rng.normal(size=(3, 8, 8)) * 2
    probs = (np.exp(logits) / np.exp(logits).sum(axis=0)).astype(np.float32)
    np.save(tmp_path / "p.npy", probs)

    def through_job(job):
        images = job.images([A], ["/a.png"], [InlineMask(labels)], [str(tmp_path / "p.npy")])
        (r,) = job.stream(images, n_jobs=1)
        return r

    def direct(**kw):
        (r,) = iter_label_quality([labels], [probs], with_issues=True, n_jobs=1, **kw)
        return r

    job = _job(tmp_path)
    job.issue_threshold = 0.4
    got, want = through_job(job), direct(issue_threshold=0.4)
    np.testing.assert_array_equal(got.issues, want.issues)
    assert got.num_issues == want.num_issues != direct(issue_threshold=0.1).num_issues

    job = _job(tmp_path, method="num_pixel_issues")
    job.downsample = 2
    got, want = through_job(job), direct(method="num_pixel_issues", downsample=2)
    assert got.score == want.score != direct(method="num_pixel_issues").score
    np.testing.assert_array_equal(got.issues, want.issues)
