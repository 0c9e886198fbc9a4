"""Scoring straight from a model (``compute_label_quality(model=...)``),
with real models: an ONNX network built here and run by onnxruntime, and
plain callables. The reference is the file path on the same arrays: the
model's outputs saved as .npy files and scored with ``resize=True``."""

import os
import threading

import cv2
import numpy as np
import pytest

import segqual_fo
from segqual_fo.adapters.models import BatchedModel, LazyModel, describe_model, read_rgb
from segqual_fo.adapters.onnx import OnnxModel, onnx_model
from segqual_fo.errors import InvalidInputError
from tests.core.helpers import blob_labels
from tests.model_nets import conv_net_numpy, make_conv_net

pytest.importorskip("onnxruntime")  # in the dev extra; under CI=true a skip is a failure

K = 4
STRIDE = 4


def _dataset(ds, tmp_path, rng, n=7, shape=(32, 48), sizes=None):
    """Images whose colours follow blob labels (so the network's output has
    structure), label PNGs with a planted error. ``sizes`` gives each image
    its own (H, W)."""
    os.makedirs(tmp_path / "img", exist_ok=True)
    os.makedirs(tmp_path / "mask", exist_ok=True)
    import fiftyone as fo

    palette = rng.integers(0, 256, size=(K, 3))
    samples = []
    for i in range(n):
        h, w = sizes[i] if sizes else shape
        lab = blob_labels(rng, 1, K, h, w)[0]
        img = np.clip(palette[lab] + rng.normal(0, 25, size=(h, w, 3)), 0, 255).astype(np.uint8)
        if i % 3 == 1:
            lab[4:12, 4:16] = (lab[4:12, 4:16] + 1) % K
        ip = tmp_path / "img" / f"im{i:03d}.png"
        mp = tmp_path / "mask" / f"im{i:03d}.png"
        cv2.imwrite(str(ip), img[:, :, ::-1])
        cv2.imwrite(str(mp), lab.astype(np.uint8))
        samples.append(fo.Sample(filepath=str(ip), gt=fo.Segmentation(mask_path=str(mp))))
    ds.add_samples(samples, progress=False)
    return ds


class Counting:
    """A model wrapper that counts images and calls (thread-safe)."""

    def __init__(self, model):
        self.model = model
        self.images = 0
        self.calls = 0
        self.sizes = []
        self._lock = threading.Lock()
        self.description = describe_model(model)
        if getattr(model, "num_classes", None):
            self.num_classes = model.num_classes

    def __call__(self, images):
        with self._lock:
            self.calls += 1
            self.images += len(images)
            self.sizes.append(len(images))
        return self.model(images)


@pytest.fixture
def net(tmp_path):
    return make_conv_net(str(tmp_path / "net.onnx"), k=K, stride=STRIDE)


def _save_outputs(ds, model, probs_dir):
    """The reference: the model's output for every image as a float32 .npy."""
    os.makedirs(probs_dir, exist_ok=True)
    for fp in ds.values("filepath"):
        out = np.asarray(model([read_rgb(fp)])[0], dtype=np.float32)
        np.save(os.path.join(probs_dir, os.path.splitext(os.path.basename(fp))[0] + ".npy"), out)


def _outputs(ds, score_field):
    rows = []
    for s in ds.sort_by("filepath"):
        regions = s[f"{score_field}_regions"]
        with open(s[f"{score_field}_heatmap"].map_path, "rb") as f:
            heat = cv2.imdecode(np.frombuffer(f.read(), np.uint8), cv2.IMREAD_UNCHANGED)
        issues = cv2.imread(s[f"{score_field}_issues"].mask_path, cv2.IMREAD_UNCHANGED)
        rows.append(
            (
                s[score_field],
                s[f"{score_field}_num_issues"],
                heat.tobytes(),
                issues.tobytes(),
                [(d.label, d.predicted_label, d.area, d.mean_score, tuple(d.bounding_box)) for d in regions.detections],
            )
        )
    return rows


def test_onnx_network_matches_its_numpy_twin(net, tmp_path, rng):
    """The adapter feeds the network RGB in [0, 1], channels first: its
    output equals the same convolution computed in numpy."""
    img = rng.integers(0, 256, size=(32, 40, 3), dtype=np.uint8)
    model = onnx_model(net)
    out = model([img, img[:, ::-1].copy()])
    assert len(out) == 2 and out[0].shape == (K, 8, 10)
    np.testing.assert_allclose(out[0], conv_net_numpy(img, K, STRIDE), atol=1e-4)
    np.testing.assert_allclose(out[1], conv_net_numpy(img[:, ::-1], K, STRIDE), atol=1e-4)
    assert model.num_classes == K


@pytest.mark.parametrize(
    "method, downsample", [("softmin", 1), ("num_pixel_issues", 1), ("num_pixel_issues", 2)]
)
def test_model_path_equals_file_path_and_runs_each_image_once(make_dataset, net, tmp_path, rng, method, downsample):
    ds = _dataset(make_dataset(), tmp_path, rng)
    _save_outputs(ds, onnx_model(net), str(tmp_path / "probs"))
    by_files = segqual_fo.compute_label_quality(
        ds, "gt", probs_dir=str(tmp_path / "probs"), resize=True, logits=True, method=method,
        downsample=downsample, score_field="files", output_dir=str(tmp_path / "out"),
    )  # fmt: skip
    counting = Counting(onnx_model(net))
    by_model = segqual_fo.compute_label_quality(
        ds, "gt", model=counting, logits=True, method=method, downsample=downsample, batch_size=3,
        score_field="model", output_dir=str(tmp_path / "out"),
    )  # fmt: skip
    assert by_model.num_scored == by_files.num_scored == len(ds)
    assert counting.images == len(ds)  # once per image, for both methods
    # K is read from the network's declared output: no priming call
    assert max(counting.sizes) == 3
    assert _outputs(ds, "model") == _outputs(ds, "files")
    np.testing.assert_array_equal(by_model.confusion, by_files.confusion)
    assert ds.get_run_info("model").config.probs == {"model": f"onnx:{os.path.abspath(net)}", "logits": True, "resize": True}


def test_priming_image_is_not_run_twice(make_dataset, net, tmp_path, rng):
    """A plain callable does not declare K: the first image is run to learn
    it, and its output is used for the scoring (still once per image)."""
    ds = _dataset(make_dataset(), tmp_path, rng, n=5)
    inner = OnnxModel(net)

    def plain(images):
        return inner(images)

    counting = Counting(plain)
    segqual_fo.compute_label_quality(
        ds, "gt", model=counting, logits=True, batch_size=2, output_dir=str(tmp_path / "out")
    )
    assert counting.images == len(ds)
    assert counting.sizes[0] == 1  # the priming call
    _save_outputs(ds, inner, str(tmp_path / "probs"))
    segqual_fo.compute_label_quality(
        ds, "gt", probs_dir=str(tmp_path / "probs"), resize=True, logits=True, score_field="files",
        output_dir=str(tmp_path / "out"),
    )  # fmt: skip
    assert _outputs(ds, "label_quality") == _outputs(ds, "files")


def test_mixed_image_sizes(make_dataset, net, tmp_path, rng):
    sizes = [(32, 48), (16, 24), (32, 48), (24, 40), (16, 24)]
    ds = _dataset(make_dataset(), tmp_path, rng, n=5, sizes=sizes)
    _save_outputs(ds, onnx_model(net), str(tmp_path / "probs"))
    segqual_fo.compute_label_quality(
        ds, "gt", probs_dir=str(tmp_path / "probs"), resize=True, logits=True, score_field="files",
        output_dir=str(tmp_path / "out"),
    )  # fmt: skip
    segqual_fo.compute_label_quality(ds, "gt", model=onnx_model(net), logits=True, batch_size=4, output_dir=str(tmp_path / "out"))
    assert _outputs(ds, "label_quality") == _outputs(ds, "files")


def test_model_failures_are_per_sample(make_dataset, net, tmp_path, rng):
    """A model that raises, returns the wrong K, the wrong rank or NaN for
    some images: those samples fail with their id and the fix, the others
    are scored as without the bad ones."""
    ds = _dataset(make_dataset(), tmp_path, rng, n=8)
    inner = OnnxModel(net)
    fps = ds.values("filepath")
    bad = {}  # image bytes -> what goes wrong
    kinds = ["raise", "classes", "rank", "nan"]
    for kind, fp in zip(kinds, fps[1::2]):
        bad[read_rgb(fp).tobytes()] = kind

    def flaky(images):
        outs = inner(images)
        result = []
        for im, out in zip(images, outs):
            kind = bad.get(im.tobytes())
            if kind == "raise":
                raise RuntimeError("CUDA out of memory (pretend)")
            if kind == "classes":
                out = out[:-1]
            elif kind == "rank":
                out = out[None]
            elif kind == "nan":
                out = out.copy()
                out[0, 0, 0] = np.nan
            result.append(out)
        return result

    flaky.num_classes = K
    results = segqual_fo.compute_label_quality(
        ds, "gt", model=flaky, logits=True, batch_size=4, skip_failures=True, output_dir=str(tmp_path / "out")
    )
    failed = {f.sample_id: f.reason for f in results.failures}
    ids = ds.values("id")
    assert set(failed) == set(ids[1::2])
    msgs = [failed[i] for i in ids[1::2]]
    assert all(m.startswith(f"sample {i} (") for i, m in zip(ids[1::2], msgs))
    assert "RuntimeError: CUDA out of memory" in msgs[0]
    assert "3 class channels" in msgs[1] and "class list has 4" in msgs[1]
    assert "(K, h, w)" in msgs[2] and "batch axis" in msgs[2]
    assert "NaN" in msgs[3]
    assert ds.values("label_quality")[1::2] == [None] * 4
    # the good samples scored exactly as alone
    good = ds.select(ids[0::2])
    segqual_fo.compute_label_quality(
        good, "gt", model=onnx_model(net), logits=True, score_field="alone", output_dir=str(tmp_path / "out")
    )
    assert good.values("label_quality") == good.values("alone")
    # without skip_failures the first failure stops the run, naming it
    with pytest.raises(InvalidInputError, match=f"sample {ids[1]}"):
        segqual_fo.compute_label_quality(
            ds, "gt", model=flaky, logits=True, score_field="strict", output_dir=str(tmp_path / "out")
        )


def test_bad_model_arguments(make_dataset, tmp_path, rng, net):
    ds = _dataset(make_dataset(), tmp_path, rng, n=2)
    with pytest.raises(InvalidInputError, match="exactly one of .*; got probs_dir and model"):
        segqual_fo.compute_label_quality(ds, "gt", probs_dir=str(tmp_path), model=onnx_model(net))
    with pytest.raises(InvalidInputError, match="model must be a callable"):
        segqual_fo.compute_label_quality(ds, "gt", model="net.onnx")
    with pytest.raises(InvalidInputError, match="batch_size must be a positive integer"):
        segqual_fo.compute_label_quality(ds, "gt", model=onnx_model(net), batch_size=0)
    with pytest.raises(segqual_fo.errors.FiftyOneInputError, match="the model failed on the first 2 images"):
        segqual_fo.compute_label_quality(ds, "gt", model=lambda images: 1 / 0)
    assert not ds.has_field("label_quality")  # nothing recorded or written


def test_lazy_model_builds_once_per_process_and_pickles_small(net):
    import pickle

    model = onnx_model(net)
    copy = pickle.loads(pickle.dumps(model))
    assert len(pickle.dumps(model)) < 2000
    assert copy.build() is model.build()  # same process, same token: one session
    other = onnx_model(net)
    assert other.build() is not model.build()
    model.release()
    assert copy.build() is not other.build()


def test_batched_model_batches_in_order_and_isolates_failures(tmp_path, rng):
    paths = []
    for i in range(7):
        p = tmp_path / f"{i}.png"
        cv2.imwrite(str(p), np.full((4, 4, 3), i, np.uint8))
        paths.append(str(p))
    os.remove(paths[5])  # unreadable image: only it fails
    seen = []

    def model(images):
        seen.append([int(im[0, 0, 0]) for im in images])
        if any(int(im[0, 0, 0]) == 2 for im in images):
            raise ValueError("bad input 2")
        return [np.full((2, 1, 1), int(im[0, 0, 0]), np.float32) for im in images]

    runner = BatchedModel(model, paths, batch_size=3)
    got = {}
    for i in range(7):
        try:
            got[i] = int(runner.get(i)[0, 0, 0])
        except Exception as e:  # noqa: BLE001 - collected for the assertions
            got[i] = type(e).__name__
    runner.close()
    assert got == {0: 0, 1: 1, 2: "ValueError", 3: 3, 4: 4, 5: "InvalidFileError", 6: 6}
    # batch 0 failed as a whole, then ran one by one; image 5 never reached the model
    assert seen == [[0, 1, 2], [0], [1], [2], [3, 4], [6]]


# ---------------------------------------------------------------- save_probabilities


def test_save_probabilities_then_score_within_quantisation(make_dataset, net, tmp_path, rng):
    ds = _dataset(make_dataset(), tmp_path, rng, n=6)
    model = onnx_model(net)
    counting = Counting(model)
    saved = segqual_fo.save_probabilities(ds, counting, str(tmp_path / "p8"), logits=True, batch_size=4)
    assert (saved.num_written, saved.num_skipped, saved.failures) == (6, 0, [])
    assert counting.images == 6
    paths = ds.values("pred_probs_path")
    assert paths == [str(tmp_path / "p8" / f"{i}.npz") for i in ds.values("id")]
    assert saved.bytes_written == sum(os.path.getsize(p) for p in paths)
    for fp, p in zip(ds.values("filepath"), paths):
        import zipfile

        with zipfile.ZipFile(p) as zf:  # compressed, as the storage figures say
            assert [i.compress_type for i in zf.infolist()] == [zipfile.ZIP_DEFLATED]
        with np.load(p, allow_pickle=False) as z:
            assert z.files == ["probs"]
            q = z["probs"]
        logit = conv_net_numpy(read_rgb(fp), K, STRIDE)
        e = np.exp(logit - logit.max(0))
        expected = e / e.sum(0)
        assert q.dtype == np.uint8 and q.shape == (K, 8, 12)
        # round(p * 255), within float32 rounding of the network
        assert np.abs(q.astype(np.float64) - expected * 255).max() <= 0.5 + 1e-3
    segqual_fo.compute_label_quality(ds, "gt", probs_field="pred_probs_path", resize=True, score_field="from_u8", output_dir=str(tmp_path / "out"))
    segqual_fo.compute_label_quality(ds, "gt", model=model, logits=True, score_field="direct", output_dir=str(tmp_path / "out"))
    a, b = np.array(ds.values("from_u8")), np.array(ds.values("direct"))
    assert np.abs(a - b).max() < 0.02


def test_save_probabilities_resumes_and_refuses_to_clobber(make_dataset, net, tmp_path, rng):
    ds = _dataset(make_dataset(), tmp_path, rng, n=5)
    ids = ds.values("id")
    first = ds.select(ids[:2])
    segqual_fo.save_probabilities(first, onnx_model(net), str(tmp_path / "p"), logits=True)
    before = {p: os.stat(p).st_mtime_ns for p in first.values("pred_probs_path")}
    counting = Counting(onnx_model(net))
    again = segqual_fo.save_probabilities(ds, counting, str(tmp_path / "p"), logits=True)
    assert (again.num_written, again.num_skipped) == (3, 2)
    assert counting.images == 3  # the finished files were not rerun
    assert {p: os.stat(p).st_mtime_ns for p in first.values("pred_probs_path")} == before
    assert None not in ds.values("pred_probs_path")
    # another directory into the same field: refused without overwrite
    with pytest.raises(segqual_fo.errors.FiftyOneInputError, match="already holds other paths for 5 samples"):
        segqual_fo.save_probabilities(ds, onnx_model(net), str(tmp_path / "q"), logits=True)
    assert ds.values("pred_probs_path")[0].startswith(str(tmp_path / "p"))
    # a field of another type: refused
    with pytest.raises(segqual_fo.errors.FiftyOneInputError, match="not a string field"):
        segqual_fo.save_probabilities(ds, onnx_model(net), str(tmp_path / "q"), probs_field="gt")


def test_save_probabilities_failures_keep_what_was_written(make_dataset, net, tmp_path, rng):
    ds = _dataset(make_dataset(), tmp_path, rng, n=6)
    fps = ds.values("filepath")
    os.remove(fps[3])  # this image cannot be read
    saved = segqual_fo.save_probabilities(ds, onnx_model(net), str(tmp_path / "p"), logits=True, batch_size=2, skip_failures=True)
    assert saved.num_written == 5 and [f.sample_id for f in saved.failures] == [ds.values("id")[3]]
    assert "does not exist" in saved.failures[0].reason
    assert ds.values("pred_probs_path")[3] is None
    # without skip_failures: the error names the sample; what was written before is recorded
    ds2 = _dataset(make_dataset(), tmp_path / "b", rng, n=6)
    os.remove(ds2.values("filepath")[4])
    with pytest.raises(InvalidInputError, match=f"sample {ds2.values('id')[4]} .*does not exist"):
        segqual_fo.save_probabilities(ds2, onnx_model(net), str(tmp_path / "p2"), logits=True, batch_size=2)
    assert [v is not None for v in ds2.values("pred_probs_path")] == [True] * 4 + [False] * 2


def test_quantize_probs_rounds_and_never_stores_an_empty_pixel():
    from segqual_fo.writers.probs import quantize_probs

    p = np.array([[[0.5]], [[0.498]], [[0.002]]], np.float32)
    np.testing.assert_array_equal(quantize_probs(p)[:, 0, 0], [128, 127, 1])
    logits = np.log(p)
    np.testing.assert_array_equal(quantize_probs(logits, logits=True)[:, 0, 0], [128, 127, 1])
    k = 600
    flat = np.full((k, 1, 1), 1.0 / k, np.float32)
    flat[7] += 1e-4
    q = quantize_probs(flat)
    assert q.sum() == 1 and q[7, 0, 0] == 1
    # at K = 510 a uniform pixel is 0.5 everywhere, which rounds (to even) to 0
    even = np.full((510, 1, 1), 1.0 / 510, np.float32)
    assert quantize_probs(even).sum() == 1
    # values a little outside [0, 1] (a model's float error) saturate, never wrap around
    np.testing.assert_array_equal(quantize_probs(np.array([[[-0.01]], [[1.003]]]))[:, 0, 0], [0, 255])


# ---------------------------------------------------------------- FiftyOne models


import fiftyone as fo  # noqa: E402
import fiftyone.core.models as fom  # noqa: E402


class NumpySegmenter(fom.Model):
    """A FiftyOne Model whose predictions are class scores: the conv net in
    numpy, with FiftyOne's preprocessing convention (``transforms``)."""

    def __init__(self, with_processor=False):
        self.preprocess = True
        self.entered = 0
        if with_processor:
            # as TorchImageModel: an output processor that keeps only the argmax
            self._output_processor = lambda out: [fo.Segmentation(mask=o.argmax(0).astype(np.uint8)) for o in out]

    @property
    def media_type(self):
        return "image"

    @property
    def ragged_batches(self):
        return False

    @property
    def transforms(self):
        return lambda im: im[:, ::-1]  # a real (if odd) preprocessing step

    @property
    def preprocess(self):
        return self._preprocess

    @preprocess.setter
    def preprocess(self, value):
        self._preprocess = value

    def __enter__(self):
        self.entered += 1
        return self

    def predict_all(self, imgs):
        if self._preprocess:
            imgs = [self.transforms(im) for im in imgs]
        out = np.stack([conv_net_numpy(im, K, STRIDE).astype(np.float32) for im in imgs])
        processor = getattr(self, "_output_processor", None)
        return out if processor is None else processor(out)

    def predict(self, img):
        return self.predict_all([img])[0]


@pytest.mark.parametrize("with_processor", [False, True])
def test_fiftyone_model_gives_the_scores(make_dataset, tmp_path, rng, with_processor):
    ds = _dataset(make_dataset(), tmp_path, rng, n=4)
    fmodel = NumpySegmenter(with_processor)
    wrapped = segqual_fo.fiftyone_model(fmodel)
    img = read_rgb(ds.values("filepath")[0])
    (out,) = wrapped([img])
    np.testing.assert_allclose(out, conv_net_numpy(img[:, ::-1], K, STRIDE), rtol=1e-6)
    if with_processor:
        assert fmodel._output_processor is not None  # restored after the call
        assert isinstance(fmodel.predict(img), fo.Segmentation)
    segqual_fo.compute_label_quality(ds, "gt", model=wrapped, logits=True, output_dir=str(tmp_path / "out"))
    assert fmodel.entered == 1 and None not in ds.values("label_quality")


def test_fiftyone_model_refuses_labels_and_non_models():
    class LabelModel(NumpySegmenter):
        def predict_all(self, imgs):
            return [fo.Segmentation(mask=np.zeros((2, 2), np.uint8)) for _ in imgs]

    with pytest.raises(InvalidInputError, match="returned Segmentation predictions, not class scores"):
        segqual_fo.fiftyone_model(LabelModel())([np.zeros((4, 4, 3), np.uint8)])
    with pytest.raises(InvalidInputError, match="takes a fiftyone.core.models.Model"):
        segqual_fo.fiftyone_model(lambda x: x)


def test_resume_with_a_model(make_dataset, net, tmp_path, rng):
    """A finished model run resumed with the same model scores nothing
    again; another model is refused, naming the difference."""
    ds = _dataset(make_dataset(), tmp_path, rng, n=4)
    out = str(tmp_path / "out")
    segqual_fo.compute_label_quality(ds, "gt", model=onnx_model(net), logits=True, output_dir=out)
    before = ds.values("label_quality")
    counting = Counting(onnx_model(net))
    segqual_fo.compute_label_quality(ds, "gt", model=counting, logits=True, output_dir=out, resume=True)
    assert counting.images == 0 and ds.values("label_quality") == before
    other = make_conv_net(str(tmp_path / "other.onnx"), k=K, stride=STRIDE, seed=1)
    with pytest.raises(InvalidInputError, match="other.onnx"):
        segqual_fo.compute_label_quality(ds, "gt", model=onnx_model(other), logits=True, output_dir=out, resume=True)


def test_resume_refuses_an_onnx_model_with_other_preprocessing(make_dataset, net, tmp_path, rng):
    """The run record names the network with the preprocessing that changes
    its output, so resume does not mix outputs of two preprocessings."""
    ds = _dataset(make_dataset(), tmp_path, rng, n=2)
    kwargs = dict(logits=True, output_dir=str(tmp_path / "out"))
    normalised = onnx_model(net, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), input_size=(16, 24))
    segqual_fo.compute_label_quality(ds, "gt", model=normalised, **kwargs)
    assert ds.get_run_info("label_quality").config.probs["model"] == (
        f"onnx:{os.path.abspath(net)} (input_size=(16, 24), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))"
    )
    with pytest.raises(InvalidInputError, match="settings"):
        segqual_fo.compute_label_quality(ds, "gt", model=onnx_model(net), resume=True, **kwargs)
    # the same preprocessing again: resumed; providers and threads do not change the output
    again = onnx_model(net, mean=[0.5] * 3, std=[0.25] * 3, input_size=[16, 24], threads=1, providers=["CPUExecutionProvider"])
    segqual_fo.compute_label_quality(ds, "gt", model=again, resume=True, **kwargs)
