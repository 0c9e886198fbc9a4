"""A scoring run is a FiftyOne run: typed config, rename_run moves its
fields, delete_run removes its fields and files; 0.1 records still load,
rerun and clean up once upgraded."""

import os

import cv2
import numpy as np
import pytest

import fiftyone as fo

from segqual_fo import compute_label_quality, upgrade_runs
from segqual_fo.fo.runlock import RunLock, RunLockedError
from segqual_fo.fo.runs import LabelQuality, LabelQualityConfig
from segqual_fo.options import output_fields
from tests.fo.helpers import segmentation_dataset

NAMES = ["sky", "road", "car", "tree"]


@pytest.fixture
def scored(make_dataset, tmp_path, rng):
    ds = make_dataset()
    labels, probs, ids = segmentation_dataset(ds, tmp_path, rng, names=NAMES)
    out = str(tmp_path / "out")
    compute_label_quality(ds, "ground_truth", probs_field="probs_path", output_dir=out, temperature=0.3, progress=False)
    compute_label_quality(
        ds, "ground_truth", probs_field="probs_path", output_dir=out, method="num_pixel_issues",
        score_field="lq_cl", progress=False,
    )  # fmt: skip
    return ds, out


def _pngs(ds, key):
    f = output_fields(key)
    return ds.values(f"{f['heatmap']}.map_path") + ds.values(f"{f['issues']}.mask_path")


def _values(ds, key):
    return {kind: ds.values(name) for kind, name in output_fields(key).items() if kind != "regions"}


def test_run_info_is_typed(scored):
    ds, out = scored
    info = ds.get_run_info("label_quality")
    config = info.config
    assert type(config) is LabelQualityConfig and config.build().__class__ is LabelQuality
    assert config.cls == "segqual_fo.fo.runs.LabelQualityConfig"  # stored in the database: never moves
    assert (config.method, config.temperature, config.downsample) == ("softmin", 0.3, 1)
    assert config.fields == output_fields("label_quality") and config.classes == NAMES
    assert config.status == "completed" and config.output_dir == out and config.tool == "segqual_fo"
    assert config.probs["probs_field"] == "probs_path" and config.ignore == {"values": [255], "classes": []}
    assert sorted(ds.get_run_info("lq_cl").config.build().get_fields(ds, "lq_cl")) == sorted(output_fields("lq_cl").values())
    # a fresh process reads the same typed config
    ds.reload()
    assert isinstance(ds.get_run_info("label_quality").config, LabelQualityConfig)


def test_rename_run_moves_every_field(scored):
    ds, out = scored
    before = _values(ds, "label_quality")
    regions = [d.to_dict() for regs in ds.values("label_quality_regions.detections") for d in regs]
    files = _pngs(ds, "label_quality")
    ds.rename_run("label_quality", "lq_renamed")

    assert "label_quality" not in ds.list_runs() and "lq_renamed" in ds.list_runs()
    for name in output_fields("label_quality").values():
        assert not ds.has_field(name)
    assert _values(ds, "lq_renamed") == {k: v for k, v in zip(before, before.values())}
    assert [d.to_dict() for regs in ds.values("lq_renamed_regions.detections") for d in regs] == regions
    assert _pngs(ds, "lq_renamed") == files and all(os.path.isfile(p) for p in files)  # files stay, still valid
    assert "label_quality_issues" not in ds.mask_targets
    assert ds.mask_targets["lq_renamed_issues"] == {k + 1: n for k, n in enumerate(NAMES)}
    paths = {c["path"] for c in ds.app_config.color_scheme.colorscales} | {f["path"] for f in ds.app_config.color_scheme.fields}
    assert {"lq_renamed_heatmap", "lq_renamed_issues", "lq_renamed_regions"} <= paths
    assert not {"label_quality_heatmap", "label_quality_issues", "label_quality_regions"} & paths
    assert ds.get_run_info("lq_renamed").config.fields == output_fields("lq_renamed")
    # resuming the renamed (finished) run finds every sample done
    compute_label_quality(ds, "ground_truth", probs_field="probs_path", output_dir=out, temperature=0.3,
                          score_field="lq_renamed", resume=True, progress=False)
    assert _pngs(ds, "lq_renamed") == files
    # rescoring it writes new files under the new key and removes the old
    res = compute_label_quality(ds, "ground_truth", probs_field="probs_path", output_dir=out, temperature=0.3,
                                score_field="lq_renamed", progress=False)
    new = _pngs(ds, "lq_renamed")
    assert res.num_scored == len(ds) and all(os.path.join(out, "lq_renamed") in p for p in new)
    assert not any(os.path.exists(p) for p in files)


def test_delete_run_removes_fields_and_files(scored, tmp_path):
    ds, out = scored
    mine = tmp_path / "users_own.png"
    cv2.imwrite(str(mine), np.zeros((4, 4), np.uint8))
    sample = ds.first()
    cl_files = _pngs(ds, "lq_cl")
    files = _pngs(ds, "label_quality")
    sample["label_quality_heatmap"] = fo.Heatmap(map_path=str(mine), range=[0, 255])  # a user's file in our field
    sample.save()
    files.remove(files[0])

    ds.delete_run("label_quality")
    assert "label_quality" not in ds.list_runs()
    assert not any(ds.has_field(name) for name in output_fields("label_quality").values())
    assert not any(os.path.exists(p) for p in files)
    assert mine.exists()  # not named like our outputs: never deleted
    assert not os.path.exists(os.path.join(out, "label_quality"))
    assert "label_quality_issues" not in ds.mask_targets
    scheme = ds.app_config.color_scheme
    assert "label_quality_heatmap" not in {c["path"] for c in scheme.colorscales}
    # the other run is untouched
    assert all(os.path.isfile(p) for p in cl_files) and ds.has_field("lq_cl_regions")
    assert "lq_cl_issues" in ds.mask_targets


def test_rename_and_delete_wait_for_a_running_run(scored):
    ds, _ = scored
    with RunLock(ds, "label_quality"):
        with pytest.raises(RunLockedError):
            ds.get_run_info("label_quality").config.build().cleanup(ds, "label_quality")
        with pytest.raises(RunLockedError):
            ds.get_run_info("label_quality").config.build().rename(ds, "label_quality", "x")
    assert ds.has_field("label_quality") and not ds.has_field("x")


def _as_legacy(ds, key):
    """Replaces the typed record by what segqual 0.1 recorded: FiftyOne's
    generic run config with tool="segqual_fo" (results kept)."""
    config = ds.get_run_info(key).config
    values = {k: v for k, v in config.serialize().items() if k not in ("cls", "type")}
    results = ds.load_run_results(key)
    LabelQuality.delete_run(ds, key, cleanup=False)
    ds.register_run(key, ds.init_run(**values))
    ds.save_run_results(key, ds.init_run_results(key, confusion=results.confusion, failures=results.failures))


def test_runs_of_version_0_1_load_rerun_and_clean_up(scored):
    ds, out = scored
    _as_legacy(ds, "label_quality")
    _as_legacy(ds, "lq_cl")
    legacy = ds.get_run_info("label_quality").config
    assert type(legacy) is fo.core.runs.RunConfig and legacy.tool == "segqual_fo"
    # rescoring replaces the record with a typed one
    compute_label_quality(ds, "ground_truth", probs_field="probs_path", output_dir=out, temperature=0.3,
                          resume=True, progress=False)
    assert type(ds.get_run_info("label_quality").config) is LabelQualityConfig
    # upgrading converts the other, keeping its results, so delete cleans up
    confusion = ds.load_run_results("lq_cl").confusion
    assert upgrade_runs(ds) == ["lq_cl"]
    assert type(ds.get_run_info("lq_cl").config) is LabelQualityConfig
    assert ds.load_run_results("lq_cl").confusion == confusion
    files = _pngs(ds, "lq_cl")
    ds.delete_run("lq_cl")
    assert not ds.has_field("lq_cl") and not any(os.path.exists(p) for p in files)
