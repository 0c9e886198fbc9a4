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
