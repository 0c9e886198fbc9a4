"""get_label_quality_info, rename_label_quality_run and delete_label_quality_run:
only segqual runs are offered, and fields, mask targets and PNG files follow
the run (also for runs recorded by segqual 0.1)."""

import glob
import json
import os
import shutil

import pytest

import fiftyone as fo
import fiftyone.core.runs as fors
import fiftyone.operators as foo
from fiftyone.operators.executor import ExecutionContext, ExecutionError

from segqual_fo import compute_label_quality
from segqual_fo.demo import CLASSES
from segqual_fo.fo.runlock import RunLock
from segqual_fo.options import output_fields
from tests.plugin.conftest import uri
from tests.plugin.helpers import invalid, resolve_inputs, run, triggered

INFO, RENAME, DELETE = "get_label_quality_info", "rename_label_quality_run", "delete_label_quality_run"
KEY = "label_quality"


def _outputs(ds, key):
    """Everything a run wrote, by kind (values, PNG paths, region labels)."""
    f = output_fields(key)
    return {
        "score": ds.values(f["score"]),
        "num_issues": ds.values(f["num_issues"]),
        "heatmap": ds.values(f["heatmap"] + ".map_path"),
        "issues": ds.values(f["issues"] + ".mask_path"),
        "regions": ds.values(f["regions"] + ".detections.label"),
        "issue_targets": ds.mask_targets.get(f["issues"]),
    }


def _pngs(outputs):
    return outputs["heatmap"] + outputs["issues"]


def _assert_gone(ds, key):
    assert key not in ds.list_runs()
    assert not [f for f in output_fields(key).values() if ds.has_field(f)]
    assert output_fields(key)["issues"] not in ds.mask_targets


def _make_legacy(ds, key):
    """Replaces the typed record of ``key`` with the one segqual 0.1 wrote
    (FiftyOne's generic RunConfig with tool="segqual_fo"), keeping the
    fields and files."""
    cfg = ds.get_run_info(key).config
    fors.Run.delete_run(ds, key, cleanup=False)
    legacy = ds.init_run(
        tool="segqual_fo",
        fields=output_fields(key),
        token=cfg.token,
        method=cfg.method,
        temperature=cfg.temperature,
        label_field=cfg.label_field,
        probs=cfg.probs,
        classes=cfg.classes,
        output_dir=cfg.output_dir,
    )
    ds.register_run(key, legacy)
    assert type(ds.get_run_info(key).config) is fors.RunConfig


@pytest.fixture
def legacy_dataset(scored_dataset):
    _make_legacy(scored_dataset, KEY)
    return scored_dataset


# --------------------------------------------------------------------------
# the run list


def test_forms_offer_only_segqual_runs_most_recent_first(scored_dataset, tmp_path):
    scored_dataset.register_run("other", scored_dataset.init_run(foo=1))
    compute_label_quality(scored_dataset, "ground_truth", probs_field="pred_probs_path", method="num_pixel_issues",
                          score_field="lq_cl", output_dir=str(tmp_path / "cl"), progress=False)
    for op in (INFO, RENAME, DELETE):
        props = resolve_inputs(op, scored_dataset)
        assert props["run_key"].type.values == ["lq_cl", KEY], op
    assert resolve_inputs(INFO, scored_dataset)["run_key"].default == "lq_cl"
    assert resolve_inputs(DELETE, scored_dataset)["run_key"].default is None  # deleting is a choice
    errors = invalid(resolve_inputs(INFO, scored_dataset, {"run_key": "other"}))
    assert "'other' is not a label-quality run" in errors["run_key"]
    with pytest.raises(ExecutionError, match="not a label-quality run"):
        run(DELETE, scored_dataset, {"run_key": "other"})
    assert "other" in scored_dataset.list_runs()


def test_forms_without_segqual_runs_say_so(demo_dataset):
    demo_dataset.register_run("other", demo_dataset.init_run(foo=1))
    for op in (INFO, RENAME, DELETE):
        errors = invalid(resolve_inputs(op, demo_dataset, {"run_key": "other", "new_run_key": "x"}))
        assert list(errors) == ["no_runs"] and "run compute_label_quality first" in errors["no_runs"], op
        with pytest.raises(ExecutionError, match="run compute_label_quality first"):
            run(op, demo_dataset, {"run_key": "other", "new_run_key": "x"})
    assert demo_dataset.list_runs() == ["other"]


# --------------------------------------------------------------------------
# info


def test_info_shows_the_typed_record(scored_dataset, tmp_path):
    sample = scored_dataset.first()  # scored samples are counted, not assumed
    sample[KEY] = None
    sample.save()
    result = run(INFO, scored_dataset, {"run_key": KEY})
    info = result.result
    assert info["run_key"] == KEY
    assert info["config_class"] == "segqual_fo.fo.runs.LabelQualityConfig" and info["legacy"] is False
    assert info["status"] == "completed" and info["segqual_version"] and info["fiftyone_version"]
    assert info["timestamp"].endswith("UTC")
    assert info["method"] == "softmin" and info["temperature"] == 0.1 and "downsample" not in info
    assert info["issue_threshold"] == 0.1 and info["min_region_area"] == 16
    assert info["label_field"] == "ground_truth"
    assert info["probs"]["probs_field"] == "pred_probs_path" and info["probs"]["layout"] == "KHW"
    assert info["classes"] == list(CLASSES)
    assert info["ignore"] == {"values": [255], "classes": []}
    assert info["output_dir"] == str(tmp_path / "out")
    assert info["fields"] == list(output_fields(KEY).values()) and info["missing_fields"] == []
    assert info["num_scored"] == 7 and info["num_samples"] == 8
    assert info["lock"] is None
    assert triggered(result, "reload_dataset") == []  # read-only


def test_info_of_an_issue_count_run_shows_downsample(demo_dataset, tmp_path):
    compute_label_quality(demo_dataset, "ground_truth", probs_field="pred_probs_path", method="num_pixel_issues",
                          downsample=2, score_field="lq_cl", output_dir=str(tmp_path), progress=False)
    info = run(INFO, demo_dataset, {"run_key": "lq_cl"}).result
    assert info["method"] == "num_pixel_issues" and info["downsample"] == 2 and "temperature" not in info


# --------------------------------------------------------------------------
# rename


def test_rename_moves_every_output_field_and_the_key(scored_dataset):
    before = _outputs(scored_dataset, KEY)
    props = resolve_inputs(RENAME, scored_dataset, {"run_key": KEY, "new_run_key": "lq_v2"})
    assert not invalid(props)
    assert "label_quality_heatmap -> lq_v2_heatmap" in props["renames"].view.label

    result = run(RENAME, scored_dataset, {"run_key": KEY, "new_run_key": "lq_v2"})

    assert result.result["fields"] == list(output_fields("lq_v2").values())
    assert triggered(result, "reload_dataset") == [{}]
    _assert_gone(scored_dataset, KEY)
    assert scored_dataset.list_runs() == ["lq_v2"]
    after = _outputs(scored_dataset, "lq_v2")
    assert after == before  # same values, PNG paths and issue mask targets
    assert all(os.path.isfile(p) for p in _pngs(after))
    assert scored_dataset.get_run_info("lq_v2").config.fields == output_fields("lq_v2")
    assert run(INFO, scored_dataset, {"run_key": "lq_v2"}).result["num_scored"] == 8


@pytest.mark.parametrize(
    "new_key, message",
    [
        ("bad name", "must be a field name"),
        ("9lives", "must be a field name"),
        (KEY, "already the run's key"),
        ("other", "the key of another run"),
        ("ground_truth", "fields ground_truth already exist"),
        ("lq", "fields lq_heatmap already exist"),
        ("label_quality_issues", "fields label_quality_issues already exist"),
    ],
)
def test_rename_is_refused_in_the_form(scored_dataset, new_key, message):
    scored_dataset.register_run("other", scored_dataset.init_run(foo=1))
    scored_dataset.add_sample_field("lq_heatmap", fo.StringField)
    before = _outputs(scored_dataset, KEY)
    params = {"run_key": KEY, "new_run_key": new_key}
    errors = invalid(resolve_inputs(RENAME, scored_dataset, params))
    assert message in errors["new_run_key"], errors
    with pytest.raises(ExecutionError, match=message):
        run(RENAME, scored_dataset, params)
    assert sorted(scored_dataset.list_runs()) == [KEY, "other"] and _outputs(scored_dataset, KEY) == before


# --------------------------------------------------------------------------
# delete


def test_delete_removes_fields_files_and_run_but_only_ours(scored_dataset, tmp_path):
    compute_label_quality(scored_dataset, "ground_truth", probs_field="pred_probs_path", score_field="kept",
                          output_dir=str(tmp_path / "out"), progress=False)
    ours = _pngs(_outputs(scored_dataset, KEY))
    kept = _pngs(_outputs(scored_dataset, "kept"))
    directory = os.path.dirname(ours[0])
    users_file = os.path.join(directory, "notes.png")
    shutil.copy(ours[0], users_file)

    props = resolve_inputs(DELETE, scored_dataset, {"run_key": KEY})
    warning = props["warning"].view.label
    assert "label_quality, label_quality_num_issues" in warning and "16 files in %s" % directory in warning
    assert not invalid(props)

    result = run(DELETE, scored_dataset, {"run_key": KEY})

    assert result.result["deleted_fields"] == list(output_fields(KEY).values())
    assert result.result["num_files_deleted"] == 16
    assert triggered(result, "reload_dataset") == [{}]
    _assert_gone(scored_dataset, KEY)
    assert not any(os.path.exists(p) for p in ours)
    assert os.path.isfile(users_file)  # not named like a segqual output
    assert all(os.path.isfile(p) for p in kept)  # another run's files
    assert scored_dataset.list_runs() == ["kept"] and scored_dataset.has_field("kept_heatmap")
    assert glob.glob(os.path.join(directory, "*")) == [users_file]


def test_outputs_render_from_json_results(scored_dataset):
    """The App gets the results as JSON and renders resolve_output's view."""
    steps = [
        (INFO, {"run_key": KEY}, "method"),
        (RENAME, {"run_key": KEY, "new_run_key": "lq_v2"}, "summary"),
        (DELETE, {"run_key": "lq_v2"}, "summary"),
    ]
    for op, params, name in steps:
        results = json.loads(json.dumps(run(op, scored_dataset, params).result))
        ctx = ExecutionContext(
            {"dataset_name": scored_dataset.name, "params": params, "results": results}, operator_uri=uri(op)
        )
        outputs = foo.get_operator(uri(op)).resolve_type(ctx, "outputs").type.properties
        assert name in outputs, op
    assert outputs["summary"].default.startswith("Deleted run `lq_v2`, its fields `lq_v2`, ")


# --------------------------------------------------------------------------
# runs recorded by segqual 0.1


def test_legacy_run_is_listed_and_described(legacy_dataset):
    props = resolve_inputs(RENAME, legacy_dataset)
    assert props["run_key"].type.values == [KEY] and "legacy" in props
    info = run(INFO, legacy_dataset, {"run_key": KEY}).result
    assert info["config_class"] == "fiftyone.core.runs.RunConfig" and info["legacy"] is True
    assert info["method"] == "softmin" and info["temperature"] == 0.1 and info["num_scored"] == 8
    assert info["status"] is None and info["fields"] == list(output_fields(KEY).values())
    assert type(legacy_dataset.get_run_info(KEY).config) is fors.RunConfig  # info does not upgrade


def test_legacy_run_is_renamed_with_its_fields(legacy_dataset):
    before = _outputs(legacy_dataset, KEY)
    run(RENAME, legacy_dataset, {"run_key": KEY, "new_run_key": "lq_old"})
    _assert_gone(legacy_dataset, KEY)
    after = _outputs(legacy_dataset, "lq_old")
    assert after == before and all(os.path.isfile(p) for p in _pngs(after))
    assert type(legacy_dataset.get_run_info("lq_old").config).__name__ == "LabelQualityConfig"


def test_legacy_run_is_deleted_with_its_fields_and_files(legacy_dataset):
    pngs = _pngs(_outputs(legacy_dataset, KEY))
    result = run(DELETE, legacy_dataset, {"run_key": KEY})
    assert result.result["num_files_deleted"] == 16
    _assert_gone(legacy_dataset, KEY)
    assert legacy_dataset.list_runs() == [] and not any(os.path.exists(p) for p in pngs)


# --------------------------------------------------------------------------
# a scoring run holds the key


@pytest.fixture
def locked(scored_dataset):
    lock = RunLock(scored_dataset, KEY).acquire()
    yield scored_dataset
    lock.release()


def test_a_run_being_written_is_refused_in_the_form(locked):
    for op, params in ((RENAME, {"run_key": KEY, "new_run_key": "lq_v2"}), (DELETE, {"run_key": KEY})):
        errors = invalid(resolve_inputs(op, locked, params))
        assert "a segqual run is writing 'label_quality' (process %d" % os.getpid() in errors["running"], op
    assert "process %d" % os.getpid() in run(INFO, locked, {"run_key": KEY}).result["lock"]


@pytest.fixture
def run_starts_at_execution(scored_dataset, monkeypatch):
    """A scoring run takes the key after every check, just as FiftyOne
    renames or deletes the record: the run class then refuses inside
    FiftyOne, which logs the error and goes on with the record."""
    locks = []

    def lock_first(real):
        def wrapper(self, *args, **kwargs):
            if not locks:
                locks.append(RunLock(self, KEY).acquire())
            return real(self, *args, **kwargs)

        return wrapper

    for name in ("rename_run", "delete_run"):
        monkeypatch.setattr(fo.Dataset, name, lock_first(getattr(fo.Dataset, name)))
    yield scored_dataset
    for lock in locks:
        lock.release()


def test_rename_that_fiftyone_half_did_is_undone(run_starts_at_execution):
    ds = run_starts_at_execution
    before = _outputs(ds, KEY)
    with pytest.raises(ExecutionError, match="could not rename the run 'label_quality' to 'lq_v2': .*is writing"):
        run(RENAME, ds, {"run_key": KEY, "new_run_key": "lq_v2"})
    assert ds.list_runs() == [KEY] and _outputs(ds, KEY) == before
    assert ds.get_run_info(KEY).config.fields == output_fields(KEY)


def test_delete_that_fiftyone_half_did_is_undone(run_starts_at_execution):
    ds = run_starts_at_execution
    before = _outputs(ds, KEY)
    confusion = ds.load_run_results(KEY).confusion
    with pytest.raises(ExecutionError, match="could not delete the run 'label_quality': .*is writing"):
        run(DELETE, ds, {"run_key": KEY})
    assert ds.list_runs() == [KEY] and _outputs(ds, KEY) == before
    assert all(os.path.isfile(p) for p in _pngs(before))
    assert ds.get_run_info(KEY).config.status == "completed"
    assert ds.load_run_results(KEY).confusion == confusion
