"""The run record and its lifecycle (segqual_fo.fo.runs), one function at a
time, on hand-built runs: recorded values, resume decisions, overwrite
checks, and exactly which fields, files, mask targets, colours and
checkpoints rename and delete touch."""

import datetime
import logging
import os

import numpy as np
import pytest

import fiftyone as fo

import segqual_fo
from segqual_fo.errors import FiftyOneInputError, InvalidInputError
from segqual_fo.fo import runs
from segqual_fo.fo.checkpoint import RunCheckpoint, Totals
from segqual_fo.fo.commit import ensure_schema
from segqual_fo.fo.runlock import RunLock
from segqual_fo.fo.runs import (
    RESUME_SETTINGS,
    TOOL,
    LabelQuality,
    LabelQualityConfig,
    check_overwrite,
    delete_label_quality_run,
    delete_outputs,
    is_segqual_config,
    overwrite_state,
    record_run,
    rename_label_quality_run,
    rename_problem,
    resume_state,
    running_problem,
    settings_differences,
    upgrade_runs,
)
from segqual_fo.fo.writeback import Failure, finish_dataset
from segqual_fo.options import output_fields
from segqual_fo.writers.files import output_path

CLASSES = ["road", "car"]


def _settings(out="/out", **changes):
    s = dict(
        fields=output_fields("lq"),
        method="softmin",
        temperature=0.3,
        downsample=1,
        issue_threshold=0.1,
        min_region_area=16,
        label_field="ground_truth",
        probs=dict(probs_field="probs_path", probs_dir=None, probs_key=None, layout="KHW", logits=False, resize=False),
        classes=list(CLASSES),
        ignore=dict(values=[255], classes=[]),
        output_dir=out,
    )
    s.update(changes)
    return s


def _touch(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"png")
    return path


def _samples(ds, n=2):
    return ds.add_samples([fo.Sample(filepath=f"/nowhere/{i}.png") for i in range(n)], progress=False)


def _fake_run(ds, ids, out, key="lq", token="aaaaaaaa", status="completed", confusion=((1, 2), (3, 4))):
    """A run as compute_label_quality leaves it: record, fields, PNG files,
    mask targets, colours and a checkpoint."""
    fields = output_fields(key)
    ensure_schema(ds, fields)
    files = []
    for sid in ids:
        s = ds[sid]
        h = _touch(output_path(out, key, sid, "heatmap", token))
        i = _touch(output_path(out, key, sid, "issues", token))
        files += [h, i]
        s[fields["score"]] = 0.5
        s[fields["num_issues"]] = 3
        s[fields["heatmap"]] = fo.Heatmap(map_path=h, range=[0, 255])
        s[fields["issues"]] = fo.Segmentation(mask_path=i)
        s[fields["regions"]] = fo.Detections(detections=[fo.Detection(label="road", bounding_box=[0, 0, 1, 1])])
        s.save()
    finish_dataset(ds, fields, CLASSES)
    record_run(ds, key, status=status, confusion=confusion, token=token, **_settings(out, fields=fields))
    RunCheckpoint(ds, key, token).save(Totals.zeros(len(CLASSES)))
    return files


def _checkpoint(ds, key, token="aaaaaaaa"):
    return RunCheckpoint(ds, key, token).load(len(CLASSES))


def _scheme_paths(ds):
    scheme = ds.app_config.color_scheme
    return [c["path"] for c in scheme.colorscales or []], [f["path"] for f in scheme.fields or []]


# ---------------------------------------------------------------- config


def test_config_defaults():
    c = LabelQualityConfig()
    assert (c.method, c.temperature, c.downsample, c.issue_threshold, c.min_region_area) == ("softmin", 0.1, 1, 0.1, 16)
    assert c.tool == TOOL == "segqual_fo" and c.type == "run"
    for name in ("label_field", "probs", "classes", "ignore", "output_dir", "fields", "token", "status", "lock",
                 "segqual_version", "fiftyone_version", "numpy_version", "timestamp"):  # fmt: skip
        assert getattr(c, name) is None, name
    assert RESUME_SETTINGS == (
        "method", "temperature", "downsample", "issue_threshold", "min_region_area", "label_field", "probs",
        "classes", "ignore", "output_dir",
    )  # fmt: skip


def test_get_fields():
    assert LabelQualityConfig().build().get_fields(None, "k") == list(output_fields("k").values())
    custom = {"score": "a", "num_issues": "b", "heatmap": "c", "issues": "d", "regions": "e"}
    assert LabelQualityConfig(fields=custom).build().get_fields(None, "k") == ["a", "b", "c", "d", "e"]


def test_is_segqual_config():
    assert is_segqual_config(LabelQualityConfig())
    assert not is_segqual_config(LabelQualityConfig(tool="other"))
    assert not is_segqual_config(object())


# ------------------------------------------------------------- recording


def test_record_run_stores_the_settings_versions_and_results(make_dataset):
    ds = make_dataset()
    before = datetime.datetime.now(datetime.timezone.utc)
    failures = [Failure("id1", "/img/1.png", "broken")]
    record_run(ds, "lq", status="completed", confusion=np.array([[1, 2], [3, 4]]), failures=failures, token="aaaaaaaa",
               lock={"host": "h", "pid": 1}, **_settings())  # fmt: skip
    after = datetime.datetime.now(datetime.timezone.utc)
    ds.reload()
    c = fo.load_dataset(ds.name).get_run_info("lq").config
    assert type(c) is LabelQualityConfig
    assert c.status == "completed" and c.token == "aaaaaaaa" and c.lock == {"host": "h", "pid": 1}
    for name, value in _settings().items():
        assert getattr(c, name) == value, name
    assert c.segqual_version == segqual_fo.__version__
    assert c.fiftyone_version == fo.__version__
    assert c.numpy_version == np.__version__
    stamp = datetime.datetime.fromisoformat(c.timestamp)
    assert stamp.tzinfo is not None and before <= stamp <= after
    results = ds.load_run_results("lq")
    assert results.confusion == [[1, 2], [3, 4]]
    assert results.failures == [{"sample_id": "id1", "filepath": "/img/1.png", "reason": "broken"}]


def test_record_run_while_running_has_no_results_and_replaces(make_dataset):
    ds = make_dataset()
    record_run(ds, "lq", status="completed", confusion=[[1]], token="aaaaaaaa", **_settings())
    record_run(ds, "lq", status="running", token="bbbbbbbb", **_settings())
    assert ds.list_runs() == ["lq"]
    c = ds.get_run_info("lq").config
    assert (c.status, c.token) == ("running", "bbbbbbbb")
    assert ds.load_run_results("lq") is None
    record_run(ds, "lq", status="completed", confusion=[[5]], token="bbbbbbbb", **_settings())
    assert ds.load_run_results("lq").confusion == [[5]] and ds.load_run_results("lq").failures == []


def test_record_run_keeps_the_fields_and_files_it_replaces(make_dataset, tmp_path):
    ds = make_dataset()
    ids = _samples(ds)
    files = _fake_run(ds, ids, str(tmp_path))
    record_run(ds, "lq", status="running", token="bbbbbbbb", **_settings(str(tmp_path)))
    assert ds.values("lq") == [0.5, 0.5] and all(os.path.isfile(p) for p in files)


def _legacy_record(ds, key, **values):
    ds.register_run(key, ds.init_run(**{**values, "tool": TOOL}))


def test_record_run_replaces_a_0_1_record(make_dataset):
    ds = make_dataset()
    _legacy_record(ds, "lq", method="softmin", token="aaaaaaaa")
    assert runs._legacy(ds, "lq")
    record_run(ds, "lq", status="running", token="bbbbbbbb", **_settings())
    c = ds.get_run_info("lq").config
    assert type(c) is LabelQualityConfig and c.token == "bbbbbbbb"
    assert not runs._legacy(ds, "lq")


def test_legacy(make_dataset):
    ds = make_dataset()
    assert not runs._legacy(ds, "lq")  # no run
    _legacy_record(ds, "old", method="softmin")
    ds.register_run("foreign", ds.init_run(method="x"))
    record_run(ds, "lq", status="running", **_settings())
    assert runs._legacy(ds, "old")
    assert not runs._legacy(ds, "foreign")
    assert not runs._legacy(ds, "lq")


def test_upgrade_runs_converts_0_1_records_and_keeps_results(make_dataset):
    ds = make_dataset()
    _legacy_record(ds, "old", method="num_pixel_issues", temperature=0.5, token="aaaaaaaa", fields=output_fields("old"))
    ds.save_run_results("old", ds.init_run_results("old", confusion=[[1, 2], [3, 4]], failures=[{"sample_id": "x"}]))
    _legacy_record(ds, "old_running", method="softmin", token="bbbbbbbb")  # killed: no results
    ds.register_run("foreign", ds.init_run(method="x"))
    record_run(ds, "typed", status="running", **_settings())
    assert upgrade_runs(ds) == ["old", "old_running"]
    c = ds.get_run_info("old").config
    assert type(c) is LabelQualityConfig
    assert (c.method, c.temperature, c.token, c.fields) == ("num_pixel_issues", 0.5, "aaaaaaaa", output_fields("old"))
    results = ds.load_run_results("old")
    assert results.confusion == [[1, 2], [3, 4]] and results.failures == [{"sample_id": "x"}]
    assert type(ds.get_run_info("old_running").config) is LabelQualityConfig
    assert ds.load_run_results("old_running") is None
    assert type(ds.get_run_info("foreign").config) is not LabelQualityConfig
    assert upgrade_runs(ds) == []


def test_upgrade_runs_keeps_the_fields_of_the_run(make_dataset, tmp_path):
    ds = make_dataset()
    ids = _samples(ds)
    files = _fake_run(ds, ids, str(tmp_path), key="old")
    config = ds.get_run_info("old").config
    values = {k: v for k, v in config.serialize().items() if k not in ("cls", "type")}
    LabelQuality.delete_run(ds, "old", cleanup=False)
    _legacy_record(ds, **{"key": "old", **values})
    assert upgrade_runs(ds) == ["old"]
    assert ds.values("old") == [0.5, 0.5] and all(os.path.isfile(p) for p in files)


# --------------------------------------------------------------- overwrite


def test_overwrite_state(make_dataset):
    ds = make_dataset()
    fields = output_fields("lq")
    assert overwrite_state(ds, fields, "lq") == ([], False)
    ds.add_sample_field("lq_heatmap", fo.EmbeddedDocumentField, embedded_doc_type=fo.Heatmap)
    ds.add_sample_field("lq", fo.FloatField)
    assert overwrite_state(ds, fields, "lq") == (["lq", "lq_heatmap"], False)
    record_run(ds, "lq", status="running", **_settings())
    assert overwrite_state(ds, fields, "lq") == (["lq", "lq_heatmap"], True)


def test_overwrite_state_refuses_another_tools_key(make_dataset):
    ds = make_dataset()
    ds.register_run("lq", ds.init_run(method="x"))
    with pytest.raises(FiftyOneInputError, match=r"^'lq' is the key of another run on this dataset \(not a segqual run\)"):
        overwrite_state(ds, output_fields("lq"), "lq")
    with pytest.raises(FiftyOneInputError, match="not a segqual run"):
        check_overwrite(ds, output_fields("lq"), True, "lq")


def test_check_overwrite(make_dataset):
    ds = make_dataset()
    fields = output_fields("lq")
    check_overwrite(ds, fields, False, "lq")  # nothing exists
    ds.add_sample_field("lq_issues", fo.EmbeddedDocumentField, embedded_doc_type=fo.Segmentation)
    with pytest.raises(FiftyOneInputError, match=r"^fields \['lq_issues'\] already exist and were not written by a segqual run with key 'lq'; pass overwrite=True"):
        check_overwrite(ds, fields, False, "lq")
    check_overwrite(ds, fields, True, "lq")
    record_run(ds, "lq", status="completed", **_settings())
    check_overwrite(ds, fields, False, "lq")  # our own run's fields


# ------------------------------------------------------------------ resume


def test_settings_differences():
    config = LabelQualityConfig(**_settings())
    assert settings_differences(config, _settings()) == []
    assert settings_differences(config, _settings(temperature=0.5, classes=["a", "b"])) == [
        "temperature: recorded 0.3, now 0.5",
        "classes: recorded ['road', 'car'], now ['a', 'b']",
    ]
    probs = dict(_settings()["probs"], resize=True, layout="HWK")
    assert settings_differences(config, _settings(probs=probs)) == [
        "probs.layout: recorded 'KHW', now 'HWK'",
        "probs.resize: recorded False, now True",
    ]
    # a key only one side has
    assert settings_differences(config, _settings(ignore=dict(values=[255], classes=[], extra=1))) == [
        "ignore.extra: recorded None, now 1"
    ]
    assert settings_differences(config, _settings(ignore=dict(values=[255]))) == ["ignore.classes: recorded [], now None"]
    # a dict against a non-dict is compared whole
    assert settings_differences(config, _settings(probs=None)) == [f"probs: recorded {_settings()['probs']!r}, now None"]


def test_settings_differences_skips_what_an_old_version_did_not_record():
    config = LabelQualityConfig(**_settings())
    del config.output_dir
    del config.min_region_area
    assert settings_differences(config, _settings(output_dir="/elsewhere", min_region_area=4)) == []
    assert settings_differences(config, _settings(downsample=2)) == ["downsample: recorded 1, now 2"]
    # settings recorded after a missing one are still compared
    assert settings_differences(config, _settings(classes=["a", "b"], min_region_area=4)) == [
        "classes: recorded ['road', 'car'], now ['a', 'b']"
    ]


def test_resume_state_new_run_gets_a_new_token(make_dataset):
    ds = make_dataset()
    t1, done = resume_state(ds, "lq", {}, False, _settings())
    t2, _ = resume_state(ds, "lq", {}, True, _settings())  # nothing to resume
    assert done == {} and t1 != t2
    assert len(t1) == 8 and int(t1, 16) >= 0 and len(t2) == 8


def test_resume_state_continues_the_recorded_run(make_dataset, tmp_path):
    ds = make_dataset()
    a, b, c = "65a1b2c3d4e5f60718293a4b", "65a1b2c3d4e5f60718293a4c", "65a1b2c3d4e5f60718293a4d"
    record_run(ds, "lq", status="running", token="aaaaaaaa", **_settings())
    old = {
        a: [output_path("/out", "lq", a, "heatmap", "aaaaaaaa"), output_path("/out", "lq", a, "issues", "aaaaaaaa")],
        b: [output_path("/out", "lq", b, "heatmap", "bbbbbbbb")],  # an older run's
        c: ["/users/own.png", output_path("/out", "lq", c, "issues", "aaaaaaaa")],
    }
    assert resume_state(ds, "lq", old, True, _settings()) == ("aaaaaaaa", {a: True, c: True})
    token, done = resume_state(ds, "lq", old, False, _settings())  # not asked to resume
    assert token != "aaaaaaaa" and done == {}


def test_resume_state_refuses_other_settings(make_dataset):
    ds = make_dataset()
    record_run(ds, "lq", status="running", token="aaaaaaaa", **_settings())
    with pytest.raises(InvalidInputError, match=r"^resume=True continues the run recorded under 'lq', but these settings differ from it: "
                       r"method: recorded 'softmin', now 'x'; temperature: recorded 0\.3, now 0\.7\. Resuming"):  # fmt: skip
        resume_state(ds, "lq", {}, True, _settings(temperature=0.7, method="x"))
    resume_state(ds, "lq", {}, False, _settings(temperature=0.7))  # a new run: no check


def test_resume_state_needs_a_segqual_record_with_a_token(make_dataset):
    ds = make_dataset()
    sid = "65a1b2c3d4e5f60718293a4b"
    old = {sid: [output_path("/out", "lq", sid, "heatmap", "aaaaaaaa")]}
    record_run(ds, "lq", status="running", **_settings())  # no token
    token, done = resume_state(ds, "lq", old, True, _settings())
    assert done == {} and len(token) == 8
    ds.register_run("other", ds.init_run(method="x", token="aaaaaaaa"))  # not ours
    token, done = resume_state(ds, "other", old, True, _settings(temperature=9))
    assert done == {} and token != "aaaaaaaa"


# ---------------------------------------------------------------- problems


def test_running_problem(make_dataset):
    ds = make_dataset()
    assert running_problem(ds, "lq") is None
    with RunLock(ds, "lq"):
        problem = running_problem(ds, "lq")
        assert problem.startswith("a segqual run is writing 'lq' (") and problem.endswith("); wait for it to finish.")
        assert running_problem(ds, "other") is None


def test_rename_problem(make_dataset):
    ds = make_dataset()
    record_run(ds, "lq", status="completed", **_settings())
    record_run(ds, "taken", status="completed", **_settings())
    assert rename_problem(ds, "lq", "new") is None
    assert "the new run key" in rename_problem(ds, "lq", "bad key")
    assert "the new run key" in rename_problem(ds, "lq", 5)
    assert rename_problem(ds, "lq", "lq") == "'lq' is already the run's key."
    assert rename_problem(ds, "lq", "taken") == "'taken' is the key of another run on this dataset; choose another key."
    ds.add_sample_field("new_issues", fo.StringField)
    ds.add_sample_field("new", fo.StringField)
    assert rename_problem(ds, "lq", "new") == "fields new, new_issues already exist; choose another key."
    with RunLock(ds, "lq"):
        assert rename_problem(ds, "lq", "free").startswith("a segqual run is writing 'lq'")


# ------------------------------------------------------------------ rename


def test_rename_moves_fields_targets_colours_and_checkpoint(make_dataset, tmp_path):
    ds = make_dataset()
    ids = _samples(ds)
    files = _fake_run(ds, ids, str(tmp_path))
    _fake_run(ds, ids, str(tmp_path), key="keep", token="cccccccc")
    ds.app_config.color_scheme.fields.append({"path": "users", "fieldColor": "#000000"})
    ds.save()
    assert rename_label_quality_run(ds, "lq", "new") == output_fields("new")
    fresh = fo.load_dataset(ds.name)
    fresh.reload()
    assert fresh.list_runs() == ["keep", "new"]
    assert fresh.get_run_info("new").config.fields == output_fields("new")
    assert fresh.values("new") == [0.5, 0.5] and fresh.values("new_num_issues") == [3, 3]
    assert fresh.values("new_heatmap.map_path") + fresh.values("new_issues.mask_path") == [files[0], files[2], files[1], files[3]]
    assert all(os.path.isfile(p) for p in files)
    assert not any(fresh.has_field(f) for f in output_fields("lq").values())
    assert fresh.mask_targets == {"keep_issues": {1: "road", 2: "car"}, "new_issues": {1: "road", 2: "car"}}
    scales, entries = _scheme_paths(fresh)
    assert scales == ["new_heatmap", "keep_heatmap"]
    assert entries == ["new_issues", "new_regions", "keep_issues", "keep_regions", "users"]
    assert fresh.app_config.color_scheme.fields[0]["fieldColor"] == "#ff2d55"
    assert _checkpoint(ds, "lq") is None and _checkpoint(ds, "new") is not None
    assert _checkpoint(ds, "keep", "cccccccc") is not None


def test_rename_of_a_run_without_targets_or_colours(make_dataset, tmp_path):
    ds = make_dataset()
    ids = _samples(ds, 1)
    _fake_run(ds, ids, str(tmp_path))
    ds.mask_targets = {}
    ds.app_config.color_scheme = None
    ds.save()
    ds.delete_sample_field("lq_regions")  # a field the user deleted
    rename_label_quality_run(ds, "lq", "new")
    assert ds.mask_targets == {} and ds.app_config.color_scheme is None
    assert ds.values("new") == [0.5] and not ds.has_field("new_regions")


def test_rename_waits_for_no_run_on_the_new_key(make_dataset, tmp_path):
    # a run starting on the new key (locked, not yet recorded) must not have
    # its fields renamed into it
    ds = make_dataset()
    ids = _samples(ds, 1)
    _fake_run(ds, ids, str(tmp_path))
    with RunLock(ds, "new"):
        with pytest.raises(FiftyOneInputError, match=r"'new'"):
            rename_label_quality_run(ds, "lq", "new")
    assert ds.values("lq") == [0.5] and not ds.has_field("new")
    assert "lq" in ds.list_runs() and "new" not in ds.list_runs()


def test_rename_of_a_run_recorded_without_fields(make_dataset, tmp_path):
    ds = make_dataset()
    ids = _samples(ds, 1)
    _fake_run(ds, ids, str(tmp_path))
    record_run(ds, "lq", status="completed", token="aaaaaaaa", **_settings(str(tmp_path), fields=None))
    assert ds.get_run_info("lq").config.fields is None
    rename_label_quality_run(ds, "lq", "new")
    assert ds.values("new") == [0.5] and ds.get_run_info("new").config.fields == output_fields("new")


def test_rename_refuses_and_changes_nothing(make_dataset):
    ds = make_dataset()
    record_run(ds, "lq", status="completed", **_settings())
    ds.register_run("foreign", ds.init_run(method="x"))
    with pytest.raises(FiftyOneInputError, match=r"^'foreign' is not a segqual run of dataset "):
        rename_label_quality_run(ds, "foreign", "new")
    with pytest.raises(FiftyOneInputError, match=r"^'missing' is not a segqual run of dataset "):
        rename_label_quality_run(ds, "missing", "new")
    with pytest.raises(FiftyOneInputError, match=r"^cannot rename the run 'lq': 'lq' is already the run's key\.$"):
        rename_label_quality_run(ds, "lq", "lq")
    assert ds.list_runs() == ["foreign", "lq"]


def test_the_run_class_refuses_taken_fields(make_dataset):
    ds = make_dataset()
    record_run(ds, "lq", status="completed", **_settings())
    ds.add_sample_field("new_heatmap", fo.StringField)
    with pytest.raises(FiftyOneInputError, match=r"fields \['new_heatmap'\] exist already"):
        ds.get_run_info("lq").config.build().rename(ds, "lq", "new")


def test_a_failed_rename_puts_the_record_back(make_dataset, tmp_path, monkeypatch):
    ds = make_dataset()
    ids = _samples(ds, 1)
    _fake_run(ds, ids, str(tmp_path))

    def fail(self, samples, key, new_key):
        raise OSError("disk on fire")

    monkeypatch.setattr(LabelQuality, "rename", fail)
    with pytest.raises(FiftyOneInputError, match=r"^could not rename the run 'lq' to 'new': .*disk on fire"):
        rename_label_quality_run(ds, "lq", "new")
    assert ds.list_runs() == ["lq"] and ds.values("lq") == [0.5]


def test_a_failed_rename_without_a_message(make_dataset, monkeypatch):
    ds = make_dataset()
    record_run(ds, "lq", status="completed", **_settings())
    monkeypatch.setattr(LabelQuality, "rename", lambda self, samples, key, new_key: None)  # does nothing, says nothing
    with pytest.raises(FiftyOneInputError, match=r"^could not rename the run 'lq' to 'new': unknown$"):
        rename_label_quality_run(ds, "lq", "new")
    assert ds.list_runs() == ["lq"]


# ------------------------------------------------------------------ delete


def test_delete_removes_exactly_the_runs_outputs(make_dataset, tmp_path):
    ds = make_dataset()
    ids = _samples(ds)
    out = str(tmp_path / "out")
    files = _fake_run(ds, ids, out)
    kept = _fake_run(ds, ids, out, key="keep", token="cccccccc")
    run_dir = os.path.join(out, "lq")
    orphan = _touch(output_path(out, "lq", ids[0], "heatmap", "dddddddd"))  # left by a killed run
    tmp = _touch(os.path.join(run_dir, ".tmp-x.png"))
    os.makedirs(os.path.join(run_dir, ".cache-dddddddd"))
    _touch(os.path.join(run_dir, ".cache-dddddddd", "part.npy"))
    foreign = _touch(output_path(out, "lq", "65a1b2c3d4e5f60718293a4b", "heatmap", "aaaaaaaa"))  # another dataset's
    ds.app_config.color_scheme.fields.append({"path": "users", "fieldColor": "#000000"})
    ds.mask_targets["ground_truth"] = {0: "road"}
    ds.save()

    assert delete_label_quality_run(ds, "lq") == list(output_fields("lq").values())
    fresh = fo.load_dataset(ds.name)
    fresh.reload()
    assert fresh.list_runs() == ["keep"]
    assert not any(fresh.has_field(f) for f in output_fields("lq").values())
    assert not any(os.path.exists(p) for p in files + [orphan, tmp])
    assert sorted(os.listdir(run_dir)) == [os.path.basename(foreign)]  # not empty: kept
    assert all(os.path.isfile(p) for p in kept)
    assert fresh.mask_targets == {"keep_issues": {1: "road", 2: "car"}, "ground_truth": {0: "road"}}
    scales, entries = _scheme_paths(fresh)
    assert scales == ["keep_heatmap"] and entries == ["keep_issues", "keep_regions", "users"]
    assert _checkpoint(ds, "lq") is None and _checkpoint(ds, "keep", "cccccccc") is not None
    assert fresh.values("keep") == [0.5, 0.5]


def test_delete_outputs_counts_files_and_removes_the_empty_directory(make_dataset, tmp_path):
    ds = make_dataset()
    ids = _samples(ds)
    out = str(tmp_path)
    files = _fake_run(ds, ids, out)
    _touch(output_path(out, "lq", ids[1], "issues", "dddddddd"))  # an orphan
    _touch(os.path.join(out, "lq", ".tmp-1.png"))
    os.makedirs(os.path.join(out, "lq", ".cache-aaaaaaaa"))
    assert delete_outputs(ds, "lq", output_fields("lq"), out) == len(files) + 2
    assert not os.path.exists(os.path.join(out, "lq"))


def test_delete_outputs_keeps_users_files_in_our_fields(make_dataset, tmp_path):
    ds = make_dataset()
    ids = _samples(ds)
    out = str(tmp_path / "out")
    files = _fake_run(ds, ids, out)
    users = _touch(str(tmp_path / "users" / "heat.png"))
    other_sample = _touch(str(tmp_path / "users" / f"{ids[1]}-aaaaaaaa_heatmap.png"))
    s = ds[ids[0]]
    s["lq_heatmap"] = fo.Heatmap(map_path=users)
    s["lq_issues"] = fo.Segmentation(mask_path=other_sample)  # named like ours, for another sample
    s.save()
    os.remove(files[3])  # a referenced file already gone
    # files[2] referenced; files[0], files[1] and other_sample (named as
    # ids[1]'s output, referenced by no one) swept as orphans
    assert delete_outputs(ds, "lq", output_fields("lq"), None) == 4
    assert os.listdir(tmp_path / "users") == ["heat.png"]
    assert not os.path.exists(os.path.join(out, "lq"))


def test_delete_outputs_of_a_run_whose_fields_are_gone(make_dataset, tmp_path):
    ds = make_dataset()
    ids = _samples(ds, 1)
    out = str(tmp_path)
    files = _fake_run(ds, ids, out)
    ds.delete_sample_fields(list(output_fields("lq").values()))
    ds.mask_targets = {}
    ds.app_config.color_scheme = None
    ds.save()
    assert delete_outputs(ds, "lq", output_fields("lq"), out) == 2  # found through output_dir/key
    assert not any(os.path.exists(p) for p in files)
    assert delete_outputs(ds, "lq", output_fields("lq"), out) == 0


def test_delete_outputs_with_a_scheme_without_our_entries(make_dataset, tmp_path):
    ds = make_dataset()
    ds.app_config.color_scheme = fo.ColorScheme(color_by="field", fields=[{"path": "users", "fieldColor": "#000000"}])
    ds.save()
    delete_outputs(ds, "lq", output_fields("lq"), str(tmp_path))
    scheme = fo.load_dataset(ds.name).app_config.color_scheme
    assert scheme.color_by == "field" and [f["path"] for f in scheme.fields] == ["users"]


def test_delete_outputs_removes_only_colour_scales(make_dataset, tmp_path):
    ds = make_dataset()
    ds.app_config.color_scheme = fo.ColorScheme(colorscales=[{"path": "lq_heatmap", "name": "hot", "list": None}])
    ds.save()
    delete_outputs(ds, "lq", output_fields("lq"), None)
    ds.reload()
    assert not ds.app_config.color_scheme.colorscales


def test_delete_outputs_removes_only_field_colours(make_dataset, tmp_path):
    ds = make_dataset()
    ds.app_config.color_scheme = fo.ColorScheme(
        colorscales=[{"path": "users", "name": "hot", "list": None}],
        fields=[{"path": "lq_regions", "fieldColor": "#000000"}],
    )
    ds.save()
    delete_outputs(ds, "lq", output_fields("lq"), None)
    ds.reload()
    scheme = ds.app_config.color_scheme
    assert not scheme.fields and [c["path"] for c in scheme.colorscales] == ["users"]


def test_delete_outputs_removes_only_the_mask_targets(make_dataset):
    ds = make_dataset()
    ds.mask_targets = {"lq_issues": {1: "road"}}
    ds.save()
    delete_outputs(ds, "lq", output_fields("lq"), None)
    ds.reload()
    assert ds.mask_targets == {}


def test_delete_refuses_and_changes_nothing(make_dataset, tmp_path):
    ds = make_dataset()
    ids = _samples(ds, 1)
    files = _fake_run(ds, ids, str(tmp_path))
    with pytest.raises(FiftyOneInputError, match=r"^'nope' is not a segqual run"):
        delete_label_quality_run(ds, "nope")
    with RunLock(ds, "lq"):
        with pytest.raises(FiftyOneInputError, match=r"^cannot delete the run 'lq': a segqual run is writing 'lq'"):
            delete_label_quality_run(ds, "lq")
    assert ds.list_runs() == ["lq"] and ds.values("lq") == [0.5] and all(os.path.isfile(p) for p in files)


def test_a_failed_delete_puts_the_record_back(make_dataset, tmp_path, monkeypatch):
    ds = make_dataset()
    ids = _samples(ds, 1)
    files = _fake_run(ds, ids, str(tmp_path))

    def fail(self, samples, key):
        raise OSError("disk on fire")

    monkeypatch.setattr(LabelQuality, "cleanup", fail)
    with pytest.raises(FiftyOneInputError, match=r"^could not delete the run 'lq': .*disk on fire"):
        delete_label_quality_run(ds, "lq")
    assert ds.list_runs() == ["lq"] and ds.values("lq") == [0.5]
    assert ds.load_run_results("lq").confusion == [[1, 2], [3, 4]]
    assert ds.get_run_info("lq").config.token == "aaaaaaaa"
    assert all(os.path.isfile(p) for p in files)


def test_a_failed_delete_of_a_run_without_results(make_dataset, tmp_path, monkeypatch):
    ds = make_dataset()
    ids = _samples(ds, 1)
    _fake_run(ds, ids, str(tmp_path))
    record_run(ds, "lq", status="running", token="aaaaaaaa", **_settings(str(tmp_path)))
    monkeypatch.setattr(LabelQuality, "cleanup", lambda self, samples, key: None)
    with pytest.raises(FiftyOneInputError, match=r"^could not delete the run 'lq': unknown$"):
        delete_label_quality_run(ds, "lq")
    assert ds.list_runs() == ["lq"] and ds.load_run_results("lq") is None


def test_delete_returns_only_the_fields_that_existed(make_dataset, tmp_path):
    ds = make_dataset()
    ids = _samples(ds, 1)
    _fake_run(ds, ids, str(tmp_path))
    ds.delete_sample_field("lq_regions")
    assert delete_label_quality_run(ds, "lq") == ["lq", "lq_num_issues", "lq_heatmap", "lq_issues"]


def test_delete_upgrades_a_0_1_record_first(make_dataset, tmp_path):
    ds = make_dataset()
    ids = _samples(ds, 1)
    files = _fake_run(ds, ids, str(tmp_path))
    config = ds.get_run_info("lq").config
    values = {k: v for k, v in config.serialize().items() if k not in ("cls", "type")}
    LabelQuality.delete_run(ds, "lq", cleanup=False)
    _legacy_record(ds, "lq", **values)
    delete_label_quality_run(ds, "lq")
    assert ds.list_runs() == [] and not ds.has_field("lq") and not any(os.path.exists(p) for p in files)


def test_run_errors_collects_warnings_of_fiftyone_runs():
    with runs._RunErrors() as errors:
        logging.getLogger("fiftyone.core.runs").warning("one %s", "x")
        logging.getLogger("fiftyone.core.runs").info("not collected")
        logging.getLogger("other").warning("not ours")
    logging.getLogger("fiftyone.core.runs").warning("after")
    assert errors.messages == ["one x"]
