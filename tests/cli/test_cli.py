"""The segqual command through main(argv), on real FiftyOne datasets."""

import json
import os
import uuid

import cv2
import numpy as np
import pytest

import fiftyone as fo

from segqual_fo.cli import main

from tests.shared_data import shared_data

COCO_DIR = shared_data("coco-val2017-10") or "/nonexistent"
ANNS = os.path.join(COCO_DIR, "annotations", "instances_val2017_subset.json")


@pytest.fixture
def demo_run(tmp_path, capsys):
    name = f"segqual-cli-{uuid.uuid4().hex[:10]}"
    code = main(["demo", "--num-samples", "16", "--name", name, "--output-dir", str(tmp_path / "demo"), "--quiet"])
    assert code == 0
    yield name, capsys.readouterr().out
    if name in fo.list_datasets():
        fo.delete_dataset(name)


@pytest.fixture
def demo(demo_run):
    return demo_run[0]


def test_demo_ranks_planted_errors_first(demo_run):
    demo, out = demo_run
    assert "worst 10 images by softmin score" in out and "auroc" in out
    ds = fo.load_dataset(demo)
    assert len(ds) == 16 and ds.persistent
    planted = np.array(ds.values("planted"))
    assert planted.sum() == 4
    worst4 = ds.sort_by("label_quality").limit(4).values("planted")
    assert sum(worst4) >= 3  # planted errors dominate the top
    assert set(ds.list_runs()) == {"label_quality", "label_quality_cl"}


def test_demo_rerun_replaces_the_dataset(demo, tmp_path):
    ds_id = fo.load_dataset(demo)._doc.id
    assert main(["demo", "--num-samples", "8", "--name", demo, "--output-dir", str(tmp_path / "d2"), "--quiet"]) == 0
    ds = fo.load_dataset(demo)
    assert len(ds) == 8 and ds._doc.id != ds_id


def test_score_and_summary(demo, capsys, tmp_path):
    ds = fo.load_dataset(demo)
    ds.take(5, seed=1).tag_samples("batch1")
    code = main(["score", demo, "--label-field", "ground_truth", "--probs-field", "pred_probs_path",
                 "--method", "num_pixel_issues", "--score-field", "lq_b1", "--view-tag", "batch1",
                 "--output-dir", str(tmp_path / "o"), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "scored 5 of 5 images with num_pixel_issues" in out and "10 worst images" in out
    assert "score quantiles" in out
    assert sum(v is not None for v in ds.values("lq_b1")) == 5


def test_score_reports_failures(demo, capsys, tmp_path):
    ds = fo.load_dataset(demo)
    s = ds.first()
    os.remove(s.pred_probs_path)
    code = main(["score", demo, "--label-field", "ground_truth", "--probs-field", "pred_probs_path",
                 "--score-field", "lq_f", "--output-dir", str(tmp_path / "o"), "--quiet", "--fail-on-errors"])
    out = capsys.readouterr().out
    assert code == 1
    assert "failures: 1" in out and f"failed: {s.id}" in out and "does not exist" in out


def test_report_formats_and_tagging(demo, capsys, tmp_path):
    assert main(["report", demo, "--top", "5"]) == 0
    out = capsys.readouterr().out
    assert "5 worst images" in out and "given_label" in out
    assert main(["report", demo, "--top", "3", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    ds = fo.load_dataset(demo)
    assert [r["id"] for r in data["images"]] == ds.sort_by("label_quality").limit(3).values("id")
    assert data["confusion"] and data["images"][0]["score"] == min(ds.values("label_quality"))
    assert main(["report", demo, "--format", "csv", "--output", str(tmp_path / "r.csv")]) == 0
    assert open(tmp_path / "r.csv").read().startswith("id,filepath,score,issue_pixels,top_confusions")
    assert main(["report", demo, "--format", "html", "--output", str(tmp_path / "r.html")]) == 0
    html = open(tmp_path / "r.html").read()
    assert html.count("data:image/png;base64") >= 3
    assert main(["report", demo, "--tag-worst", "3", "--tag", "review", "--score-field", "label_quality_cl"]) == 0
    assert ds.count_sample_tags() == {"review": 3}
    worst = set(ds.sort_by("label_quality_cl").limit(3).values("id"))
    assert set(ds.match_tags("review").values("id")) == worst


@pytest.mark.parametrize(
    "argv, message",
    [
        (["score", "no-such-dataset", "--label-field", "x", "--probs-field", "y"], "no dataset named 'no-such-dataset'"),
        (["report", "no-such-dataset"], "no dataset named"),
        (["app", "no-such-dataset"], "no dataset named"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert any(message in line for line in err) and "Traceback" not in "\n".join(err)


def test_missing_field_and_unreadable_file(demo, capsys, tmp_path):
    assert main(["score", demo, "--label-field", "nope", "--probs-field", "pred_probs_path", "--quiet"]) == 2
    assert "label_field 'nope' does not exist" in capsys.readouterr().err
    assert main(["report", demo, "--score-field", "nope"]) == 2
    assert main(["import-coco", str(tmp_path / "missing.json"), str(tmp_path), "--name", "x"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["import-coco", str(bad), str(tmp_path), "--name", "x"]) == 2
    assert "cannot read COCO annotations" in capsys.readouterr().err


@pytest.mark.skipif(not os.path.isfile(ANNS), reason="shared COCO data absent: set SEGQUAL_SHARED_DATA to the workplace's shared/data")
def test_import_coco_masks_agree_with_ann_to_mask(tmp_path, capsys):
    from pycocotools.coco import COCO

    name = f"segqual-coco-{uuid.uuid4().hex[:10]}"
    probs_dir = tmp_path / "probs"
    probs_dir.mkdir()
    coco = COCO(ANNS)
    first = sorted(coco.dataset["images"], key=lambda i: i["id"])[:6]
    for img in first:  # probabilities for 6 of the 10 images
        np.save(probs_dir / (os.path.splitext(img["file_name"])[0] + ".npy"), np.zeros((1, 1, 1), np.float32))
    try:
        code = main(["import-coco", ANNS, os.path.join(COCO_DIR, "images"), "--name", name,
                     "--probs-dir", str(probs_dir), "--masks-dir", str(tmp_path / "masks")])
        assert code == 0
        captured = capsys.readouterr()
        assert "4 images have no probabilities" in captured.err
        ds = fo.load_dataset(name)
        assert len(ds) == 10 and ds.count("pred_probs_path") == 6
        names = [c["name"] for c in coco.dataset["categories"]]
        assert ds.mask_targets["ground_truth"] == dict(enumerate(names))
        cat_index = {c["id"]: k for k, c in enumerate(coco.dataset["categories"])}
        for sample in ds:
            mask = cv2.imread(sample.ground_truth.mask_path, cv2.IMREAD_UNCHANGED)
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[sample.coco_id]))
            per_cat = {}
            for a in anns:
                if not a["iscrowd"]:
                    k = cat_index[a["category_id"]]
                    per_cat[k] = per_cat.get(k, 0) | coco.annToMask(a)
            covered = sum(m.astype(int) for m in per_cat.values())
            for k, m in per_cat.items():
                m = m.astype(bool)
                assert ((mask == k) <= m).all()
                assert (mask[m & (covered == 1)] == k).all()
            assert (mask[covered == 0] == 255).all()
    finally:
        if name in fo.list_datasets():
            fo.delete_dataset(name)


# --------------------------------------------------------------------------
# predict and score --model: the errors, in-process (the console script's
# runs are in test_console.py)


@pytest.fixture
def model_ds(make_dataset, tmp_path, rng):
    """4 images with labels, one of them not an image, and a real ONNX network."""
    pytest.importorskip("onnxruntime")
    from tests.fo.helpers import segmentation_dataset
    from tests.model_nets import make_conv_net

    ds = make_dataset("segqual-cli-model")
    segmentation_dataset(ds, tmp_path, rng, n=4, k=4, shape=(24, 32), plant=())
    broken = ds.values("filepath")[2]
    with open(broken, "wb") as f:
        f.write(b"not an image")
    return ds, make_conv_net(str(tmp_path / "net.onnx"), k=4, stride=4), tmp_path


def _one_error_line(capsys, command):
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip() and "MongoDB" not in line]
    assert len(err) == 1 and err[0].startswith(f"segqual {command}: error: "), err
    return err[0]


def test_predict_stops_at_a_failing_image_and_keeps_what_it_wrote(model_ds, capsys):
    ds, net, tmp = model_ds
    ids = ds.values("id")
    argv = ["predict", ds.name, "--model", net, "--probs-dir", str(tmp / "p"), "--logits", "--batch-size", "1", "--quiet"]
    assert main(argv) == 2
    line = _one_error_line(capsys, "predict")
    assert f"sample {ids[2]}" in line and "cannot be decoded" in line
    assert [p is not None for p in ds.values("pred_probs_path")] == [True, True, False, False]
    # --skip-failures: the others are stored (exit 0 without --fail-on-errors)
    assert main(argv + ["--skip-failures"]) == 0
    out = capsys.readouterr().out
    assert "written 1, skipped 2 (stored before), failed 1" in out and f"failed: {ids[2]}" in out
    assert [p is not None for p in ds.values("pred_probs_path")] == [True, True, False, True]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model", "NET", "--providers", "NoSuchExecutionProvider"],
         "onnxruntime providers ['NoSuchExecutionProvider'] are not available here"),
        (["--model", "NET", "--mean", "0", "0", "0", "--std", "1", "0", "1"], "std divides the pixels, so it cannot be 0"),
        (["--model", "NET", "--input-size", "0", "32"], "input_size must be a positive integer, got 0."),
        (["--model", "NET", "--batch-size", "0"], "batch_size must be a positive integer, got 0."),
        (["--model", "BROKEN"], "cannot load ONNX model"),
        (["--model", "PT"], "is not an ONNX file (.onnx); export the network to ONNX first"),
    ],
)
@pytest.mark.parametrize("command", ["predict", "score"])
def test_bad_model_flags_are_one_line_exit_2(model_ds, capsys, command, extra, message):
    ds, net, tmp = model_ds
    (tmp / "broken.onnx").write_bytes(b"garbage")
    (tmp / "net.pt").write_bytes(b"garbage")
    files = {"NET": net, "BROKEN": str(tmp / "broken.onnx"), "PT": str(tmp / "net.pt")}
    extra = [files.get(a, a) for a in extra]
    if command == "predict":
        argv = ["predict", ds.name, "--probs-dir", str(tmp / "p"), "--probs-field", "probs_x", *extra]
    else:
        argv = ["score", ds.name, "--label-field", "ground_truth", "--score-field", "lq_x", *extra]
    assert main(argv + ["--quiet"]) == 2
    assert message in _one_error_line(capsys, command)
    assert not ds.has_field("probs_x") and not ds.has_field("lq_x") and not (tmp / "p").exists()


@pytest.mark.parametrize(
    "sources, got",
    [([], "got none"), (["--probs-field", "probs_path", "--model", "NET"], "got --probs-field and --model"),
     (["--probs-field", "probs_path", "--probs-dir", "DIR"], "got --probs-field and --probs-dir")],
)
def test_score_takes_exactly_one_source_of_class_scores(model_ds, capsys, sources, got):
    ds, net, tmp = model_ds
    sources = [{"NET": net, "DIR": str(tmp / "probs")}.get(a, a) for a in sources]
    assert main(["score", ds.name, "--label-field", "ground_truth", *sources]) == 2
    line = _one_error_line(capsys, "score")
    assert line.endswith(
        "pass exactly one of --probs-field (a field holding each sample's probability file), --probs-dir "
        f"(a directory of files named like the images) or --model (a model to run on the images); {got}."
    ), line


def test_model_options_without_model_are_refused(model_ds, capsys):
    ds, _, _ = model_ds
    argv = ["score", ds.name, "--label-field", "ground_truth", "--probs-field", "probs_path", "--batch-size", "2",
            "--input-size", "8", "8"]
    assert main(argv) == 2
    assert _one_error_line(capsys, "score").endswith(
        "--batch-size, --input-size: model options, for --model only; add --model PATH.onnx or drop them."
    )
    assert not ds.has_field("label_quality")
