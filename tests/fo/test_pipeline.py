"""compute_label_quality on real FiftyOne datasets with files on disk."""

import os

import cv2
import numpy as np
import pytest

import fiftyone as fo

from segqual_fo import compute_label_quality
from segqual_fo.core import find_label_issues, get_label_quality_scores
from segqual_fo.errors import FiftyOneInputError, InvalidInputError, InvalidLabelsError, ShapeMismatchError
from segqual_fo.options import output_fields
from tests.fo.helpers import segmentation_dataset

NAMES = ["sky", "road", "car", "tree"]


@pytest.mark.parametrize("method", ["softmin", "num_pixel_issues"])
def test_scores_match_core_and_fields_are_written(make_dataset, tmp_path, rng, method):
    ds = make_dataset()
    labels, probs, ids = segmentation_dataset(ds, tmp_path, rng, names=NAMES)
    out = tmp_path / "out"
    res = compute_label_quality(ds, "ground_truth", probs_field="probs_path", method=method, output_dir=str(out), progress=False)
    expected, px = get_label_quality_scores(labels, probs, method=method)
    np.testing.assert_allclose(ds.values("label_quality"), expected, atol=1e-12)
    assert res.num_scored == 6 and not res.failures and res.classes == NAMES
    assert int(np.argmin(ds.values("label_quality"))) == 1  # the planted image
    assert ds.sort_by("label_quality").first().id == ids[1]

    schema = ds.get_field_schema()
    f = output_fields("label_quality")
    assert isinstance(schema[f["num_issues"]], fo.IntField)
    for name, cls in (("heatmap", fo.Heatmap), ("issues", fo.Segmentation), ("regions", fo.Detections)):
        assert schema[f[name]].document_type is cls
    if method == "num_pixel_issues":
        masks = find_label_issues(labels, probs)
    for i, sample in enumerate(ds.iter_samples()):
        heat = sample[f["heatmap"]]
        assert heat.range == [0, 255] and heat.map_path.startswith(str(out))
        np.testing.assert_array_equal(
            cv2.imread(heat.map_path, cv2.IMREAD_UNCHANGED), np.rint((1 - px[i]) * 255).astype(np.uint8)
        )
        iss = cv2.imread(sample[f["issues"]].mask_path, cv2.IMREAD_UNCHANGED)
        flagged = iss > 0
        if method == "num_pixel_issues":
            np.testing.assert_array_equal(flagged, masks[i])
        else:
            assert (px[i][flagged] < 0.1).all()
        np.testing.assert_array_equal(iss[flagged], labels[i][flagged] + 1)
        assert sample[f["num_issues"]] == flagged.sum()
        regions = sample[f["regions"]].detections
        assert sum(d.area for d in regions) <= flagged.sum()
        for d in regions:
            assert d.label in NAMES and d.predicted_label in NAMES and d.label != d.predicted_label
            assert d.area >= 16 and 0 <= d.mean_score <= 1
    assert ds.mask_targets[f["issues"]] == {k + 1: n for k, n in enumerate(NAMES)}
    # the regions' attributes are declared, so the App can filter on them
    assert "label_quality_regions.detections.predicted_label" in ds.get_field_schema(flat=True)
    # the run record
    info = ds.get_run_info("label_quality")
    assert info.config.method == method and info.config.classes == NAMES
    assert info.config.tool == "segqual_fo" and info.config.fields == f
    conf = np.array(ds.load_run_results("label_quality").confusion)
    assert conf.sum() == sum(ds.values(f["num_issues"]))


def test_view_only_touches_its_samples_and_thresholds_use_the_view(make_dataset, tmp_path, rng):
    ds = make_dataset()
    labels, probs, ids = segmentation_dataset(ds, tmp_path, rng, n=8)
    view = ds.select(ids[:5])
    compute_label_quality(view, "ground_truth", probs_field="probs_path", method="num_pixel_issues", output_dir=str(tmp_path / "o"), progress=False)
    scores = ds.values("label_quality")
    assert all(s is not None for s in scores[:5]) and all(s is None for s in scores[5:])
    expected, _ = get_label_quality_scores(labels[:5], probs[:5], method="num_pixel_issues")
    np.testing.assert_allclose(scores[:5], expected)


def test_rerun_replaces_and_other_key_keeps_both(make_dataset, tmp_path, rng):
    ds = make_dataset()
    segmentation_dataset(ds, tmp_path, rng)
    compute_label_quality(ds, "ground_truth", probs_field="probs_path", output_dir=str(tmp_path / "a"), progress=False)
    old = ds.values("label_quality_heatmap.map_path")
    assert all(os.path.exists(p) for p in old)
    compute_label_quality(ds, "ground_truth", probs_field="probs_path", output_dir=str(tmp_path / "b"), progress=False)
    new = ds.values("label_quality_heatmap.map_path")
    assert all(p.startswith(str(tmp_path / "b")) and os.path.exists(p) for p in new)
    assert not any(os.path.exists(p) for p in old)  # the old run's files are gone
    compute_label_quality(ds, "ground_truth", probs_field="probs_path", method="num_pixel_issues", score_field="lq_cl", output_dir=str(tmp_path / "c"), progress=False)
    assert set(ds.list_runs()) == {"label_quality", "lq_cl"}
    assert all(os.path.exists(p) for p in new)
    assert ds.get_run_info("label_quality").config.method == "softmin"


def test_refuses_to_overwrite_foreign_fields(make_dataset, tmp_path, rng):
    ds = make_dataset()
    segmentation_dataset(ds, tmp_path, rng)
    ds.set_values("label_quality", [0.5] * len(ds))
    with pytest.raises(FiftyOneInputError, match="overwrite=True"):
        compute_label_quality(ds, "ground_truth", probs_field="probs_path", output_dir=str(tmp_path / "o"), progress=False)
    assert ds.values("label_quality") == [0.5] * len(ds)
    compute_label_quality(ds, "ground_truth", probs_field="probs_path", output_dir=str(tmp_path / "o"), overwrite=True, progress=False)
    assert ds.values("label_quality") != [0.5] * len(ds)


def test_inline_masks_and_probs_dir(make_dataset, tmp_path, rng):
    ds = make_dataset()
    labels, probs, _ = segmentation_dataset(ds, tmp_path, rng, inline=True, layout="HWK", probs_dtype=np.float16)
    compute_label_quality(ds, "ground_truth", probs_dir=str(tmp_path / "probs"), layout="HWK", output_dir=str(tmp_path / "o"), progress=False)
    expected, _ = get_label_quality_scores(labels, probs.astype(np.float16))
    np.testing.assert_allclose(ds.values("label_quality"), expected, atol=1e-9)


def test_wrong_layout_is_an_error_not_a_guess(make_dataset, tmp_path, rng):
    ds = make_dataset()
    segmentation_dataset(ds, tmp_path, rng, layout="HWK", names=NAMES)
    with pytest.raises(ShapeMismatchError, match="pass layout='HWK'"):
        compute_label_quality(ds, "ground_truth", probs_field="probs_path", output_dir=str(tmp_path / "o"), progress=False)


def test_logits_and_low_resolution(make_dataset, tmp_path, rng):
    ds = make_dataset()
    labels, probs, _ = segmentation_dataset(ds, tmp_path, rng, shape=(32, 32))
    for sample, p in zip(ds, probs):
        small = cv2.resize(np.log(p).transpose(1, 2, 0), (16, 16), interpolation=cv2.INTER_AREA)
        np.save(sample.probs_path, small.transpose(2, 0, 1))
    with pytest.raises(ShapeMismatchError, match="resize=True"):
        compute_label_quality(ds, "ground_truth", probs_field="probs_path", logits=True, output_dir=str(tmp_path / "o"), progress=False)
    res = compute_label_quality(ds, "ground_truth", probs_field="probs_path", logits=True, resize=True, output_dir=str(tmp_path / "o"), progress=False)
    assert res.num_scored == len(ds)
    assert int(np.argmin(ds.values("label_quality"))) == 1


@pytest.mark.parametrize("method", ["softmin", "num_pixel_issues"])
def test_model_resolution_probabilities_score_like_their_full_resolution_reading(make_dataset, tmp_path, rng, method):
    # uint8 .npz at 1/4 of the mask (read with resize=True, never resized
    # up front) against float32 .npy files holding its full-resolution
    # reading (resize_probs): every field and file the run writes is equal
    from segqual_fo.adapters.probs import resize_probs

    ds = make_dataset()
    shape = (32, 48)
    labels, probs, _ = segmentation_dataset(ds, tmp_path, rng, shape=shape, names=NAMES, plant=(1, 3))
    for sample, p in zip(ds.iter_samples(autosave=True), probs):
        small = p[:, 1::4, 1::4]
        q = np.round(small / small.sum(axis=0) * 255).astype(np.uint8)
        sample["low_path"] = str(tmp_path / "probs" / f"{sample.id}_low.npz")
        sample["full_path"] = str(tmp_path / "probs" / f"{sample.id}_full.npy")
        np.savez_compressed(sample["low_path"], probs=q)
        np.save(sample["full_path"], resize_probs(q, shape))
    out = str(tmp_path / "o")
    low = compute_label_quality(ds, "ground_truth", probs_field="low_path", resize=True, method=method, score_field="low", output_dir=out, progress=False)
    full = compute_label_quality(ds, "ground_truth", probs_field="full_path", method=method, score_field="full", output_dir=out, progress=False)
    assert low.num_scored == full.num_scored == len(ds) and not low.failures
    fl, ff = output_fields("low"), output_fields("full")
    assert ds.values(fl["score"]) == ds.values(ff["score"])
    assert ds.values(fl["num_issues"]) == ds.values(ff["num_issues"])
    assert sum(ds.values(fl["num_issues"])) > 0
    assert sum(len(r.detections) for r in ds.values(fl["regions"])) > 0  # not vacuous
    for sample in ds:
        for kind in ("heatmap", "issues"):
            path_kind = "map_path" if kind == "heatmap" else "mask_path"
            a = cv2.imread(sample[fl[kind]][path_kind], cv2.IMREAD_UNCHANGED)
            b = cv2.imread(sample[ff[kind]][path_kind], cv2.IMREAD_UNCHANGED)
            np.testing.assert_array_equal(a, b)
        ra, rb = sample[fl["regions"]].detections, sample[ff["regions"]].detections
        assert [(d.label, d.predicted_label, d.bounding_box, d.area, d.mean_score) for d in ra] == [
            (d.label, d.predicted_label, d.bounding_box, d.area, d.mean_score) for d in rb
        ]
        for x, y in zip(ra, rb):
            np.testing.assert_array_equal(x.mask, y.mask)
    assert np.array_equal(ds.load_run_results("low").confusion, ds.load_run_results("full").confusion)


def test_non_index_mask_values_with_class_list(make_dataset, tmp_path, rng):
    ds = make_dataset()
    labels, probs, _ = segmentation_dataset(ds, tmp_path, rng, k=3)
    values = np.array([0, 128, 200])
    for sample, lab in zip(ds, labels):
        cv2.imwrite(sample.ground_truth.mask_path, values[lab].astype(np.uint8))
    ds.mask_targets = {"ground_truth": {0: "bg", 128: "road", 200: "car"}}
    with pytest.raises(InvalidInputError, match="K=3"):
        compute_label_quality(ds, "ground_truth", probs_field="probs_path", output_dir=str(tmp_path / "o"), progress=False)
    compute_label_quality(ds, "ground_truth", probs_field="probs_path", classes=["bg", "road", "car"], output_dir=str(tmp_path / "o"), progress=False)
    expected, _ = get_label_quality_scores(labels, probs)
    np.testing.assert_allclose(ds.values("label_quality"), expected, atol=1e-12)


def test_rgb_masks(make_dataset, tmp_path, rng):
    ds = make_dataset()
    labels, probs, _ = segmentation_dataset(ds, tmp_path, rng, k=3)
    colors = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.uint8)
    for sample, lab in zip(ds, labels):
        cv2.imwrite(sample.ground_truth.mask_path, colors[lab][:, :, ::-1])  # RGB -> BGR for OpenCV
    ds.mask_targets = {"ground_truth": {"#ff0000": "a", "#00ff00": "b", "#0000ff": "c"}}
    res = compute_label_quality(ds, "ground_truth", probs_field="probs_path", output_dir=str(tmp_path / "o"), progress=False)
    assert res.classes == ["a", "b", "c"]
    expected, _ = get_label_quality_scores(labels, probs)
    np.testing.assert_allclose(ds.values("label_quality"), expected, atol=1e-12)


def test_void_values_and_names(make_dataset, tmp_path, rng):
    ds = make_dataset()
    labels, probs, _ = segmentation_dataset(ds, tmp_path, rng, names=NAMES)
    void = labels.copy()
    void[:, :, :5] = 255  # 255 is ignored by default
    void[:, :3, :] = 3  # and class "tree" is ignored by name
    for sample, lab in zip(ds, void):
        cv2.imwrite(sample.ground_truth.mask_path, lab.astype(np.uint8))
    compute_label_quality(ds, "ground_truth", probs_field="probs_path", ignore_index="tree", output_dir=str(tmp_path / "o"), progress=False)
    expected, _ = get_label_quality_scores(void, probs, ignore_index=[255, 3])
    np.testing.assert_allclose(ds.values("label_quality"), expected, atol=1e-12)
    iss = cv2.imread(ds.first()["label_quality_issues"].mask_path, cv2.IMREAD_UNCHANGED)
    assert not iss[:, :5].any() and not iss[:3].any()


def test_unknown_values_name_the_sample(make_dataset, tmp_path, rng):
    ds = make_dataset()
    labels, _, ids = segmentation_dataset(ds, tmp_path, rng, names=NAMES)
    bad = labels[2].copy()
    bad[0, 0] = 7
    cv2.imwrite(ds[ids[2]].ground_truth.mask_path, bad.astype(np.uint8))
    with pytest.raises(InvalidLabelsError, match=f"sample {ids[2]}.*\\[7\\]"):
        compute_label_quality(ds, "ground_truth", probs_field="probs_path", output_dir=str(tmp_path / "o"), progress=False)
    assert "label_quality" not in ds.get_field_schema()  # nothing half-written


def test_skip_failures(make_dataset, tmp_path, rng):
    ds = make_dataset()
    _, _, ids = segmentation_dataset(ds, tmp_path, rng)
    os.remove(ds[ids[3]].probs_path)
    ds[ids[4]].probs_path  # noqa: B018
    sample = ds[ids[4]]
    sample.probs_path = None
    sample.save()
    res = compute_label_quality(ds, "ground_truth", probs_field="probs_path", skip_failures=True, output_dir=str(tmp_path / "o"), progress=False)
    assert sorted(f.sample_id for f in res.failures) == sorted([ids[3], ids[4]])
    assert "does not exist" in {f.sample_id: f.reason for f in res.failures}[ids[3]]
    scores = dict(zip(ds.values("id"), ds.values("label_quality")))
    assert scores[ids[3]] is None and scores[ids[4]] is None
    assert sum(s is not None for s in scores.values()) == 4


def test_bad_arguments(make_dataset, tmp_path, rng):
    ds = make_dataset()
    segmentation_dataset(ds, tmp_path, rng)
    with pytest.raises(FiftyOneInputError, match="Fields that do: \\['ground_truth'\\]"):
        compute_label_quality(ds, "nope", probs_field="probs_path")
    with pytest.raises(InvalidInputError, match="exactly one"):
        compute_label_quality(ds, "ground_truth")
    with pytest.raises(FiftyOneInputError, match="probs_field 'pp' does not exist"):
        compute_label_quality(ds, "ground_truth", probs_field="pp")
    with pytest.raises(InvalidInputError, match="score_field"):
        compute_label_quality(ds, "ground_truth", probs_field="probs_path", score_field="../x")
    with pytest.raises(InvalidInputError, match="method"):
        compute_label_quality(ds, "ground_truth", probs_field="probs_path", method="best")
    with pytest.raises(FiftyOneInputError, match="no samples"):
        compute_label_quality(ds.limit(0), "ground_truth", probs_field="probs_path")


def test_app_colors_are_set_once_and_never_override(make_dataset, tmp_path, rng):
    ds = make_dataset()
    segmentation_dataset(ds, tmp_path, rng)
    ds.app_config.color_scheme = fo.ColorScheme(
        color_by="field", colorscales=[{"path": "label_quality_heatmap", "name": "viridis", "list": None}]
    )
    ds.save()
    compute_label_quality(ds, "ground_truth", probs_field="probs_path", output_dir=str(tmp_path / "o"), progress=False)
    scheme = ds.app_config.color_scheme
    assert scheme.color_by == "field"  # the user's global choice stays
    assert [c["name"] for c in scheme.colorscales if c["path"] == "label_quality_heatmap"] == ["viridis"]
    issues = [f for f in scheme.fields if f["path"] == "label_quality_issues"]
    assert len(issues) == 1 and issues[0]["fieldColor"]
    # a user's later change survives a re-run
    issues[0]["fieldColor"] = "#00ff00"
    scheme.fields = [f if f["path"] != "label_quality_issues" else issues[0] for f in scheme.fields]
    ds.app_config.color_scheme = scheme
    ds.save()
    compute_label_quality(ds, "ground_truth", probs_field="probs_path", output_dir=str(tmp_path / "o"), progress=False)
    entries = [f for f in ds.app_config.color_scheme.fields if f["path"] == "label_quality_issues"]
    assert len(entries) == 1 and entries[0]["fieldColor"] == "#00ff00"


def test_new_dataset_gets_a_scheme(make_dataset, tmp_path, rng):
    ds = make_dataset()
    segmentation_dataset(ds, tmp_path, rng)
    compute_label_quality(ds, "ground_truth", probs_field="probs_path", output_dir=str(tmp_path / "o"), progress=False)
    scheme = ds.app_config.color_scheme
    assert scheme.color_by == "value"
    assert {c["path"] for c in scheme.colorscales} == {"label_quality_heatmap"}
    assert {f["path"] for f in scheme.fields} == {"label_quality_issues", "label_quality_regions"}
    scheme._validate()
