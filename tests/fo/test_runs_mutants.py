"""Behaviour of segqual_fo/fo/runs.py that surviving mutants showed
untested: deleting a run recorded without field names, files found through
either output field or through output_dir, cache leftovers that cannot be
removed, stored results that cannot be read, 0.1 records without a token,
settings a newer version records, and the resume refusal's advice."""

import os

import fiftyone as fo
import pytest

from segqual_fo.errors import FiftyOneInputError, InvalidInputError
from segqual_fo.fo.runs import (
    LabelQuality,
    delete_label_quality_run,
    delete_outputs,
    record_run,
    rename_label_quality_run,
    resume_state,
    upgrade_runs,
)
from segqual_fo.options import output_fields
from segqual_fo.writers.files import output_path
from tests.fo.test_runs_edges import (
    _fake_run,
    _legacy_record,
    _samples,
    _settings,
    _touch,
)


def _corrupt_results(ds, key):
    """Replaces the stored results of run ``key`` by bytes that are not JSON
    (a truncated write): load_run_results raises."""
    doc = ds._doc.runs[key]
    doc.results.replace(b"{not json", content_type="application/json")
    doc.save()
    ds.clear_cache()
    with pytest.raises(ValueError):
        ds.load_run_results(key)


# ------------------------------------------------------------------ delete


def test_delete_of_a_run_recorded_without_fields(make_dataset, tmp_path):
    # the record's fields are None: the fields are the key's default names
    ds = make_dataset()
    ids = _samples(ds, 1)
    files = _fake_run(ds, ids, str(tmp_path))
    record_run(
        ds,
        "lq",
        status="completed",
        token="aaaaaaaa",
        **_settings(str(tmp_path), fields=None),
    )
    assert ds.get_run_info("lq").config.fields is None
    assert delete_label_quality_run(ds, "lq") == [
        "lq",
        "lq_num_issues",
        "lq_heatmap",
        "lq_issues",
        "lq_regions",
    ]
    assert ds.list_runs() == [] and not any(
        ds.has_field(f) for f in output_fields("lq").values()
    )
    assert not any(os.path.exists(p) for p in files)


def test_delete_finds_the_files_through_output_dir_when_the_fields_are_gone(
    make_dataset, tmp_path
):
    # the user deleted the output fields; the run's files are only found
    # under output_dir/<key>, which the run class passes on
    ds = make_dataset()
    ids = _samples(ds)
    files = _fake_run(ds, ids, str(tmp_path))
    ds.delete_sample_fields(list(output_fields("lq").values()))
    assert delete_label_quality_run(ds, "lq") == []
    assert ds.list_runs() == []
    assert not any(os.path.exists(p) for p in files) and not os.path.exists(
        tmp_path / "lq"
    )


def test_delete_outputs_finds_heatmaps_and_masks_in_separate_directories(
    make_dataset, tmp_path
):
    # each field's files are found through that field (no output_dir):
    # heatmaps in one directory, issue masks in another
    ds = make_dataset()
    ids = _samples(ds)
    heat = [
        _touch(output_path(str(tmp_path / "a"), "lq", sid, "heatmap", "aaaaaaaa"))
        for sid in ids
    ]
    masks = [
        _touch(output_path(str(tmp_path / "b"), "lq", sid, "issues", "aaaaaaaa"))
        for sid in ids
    ]
    for sid, h, m in zip(ids, heat, masks):
        s = ds[sid]
        s["lq_heatmap"] = fo.Heatmap(map_path=h, range=[0, 255])
        s["lq_issues"] = fo.Segmentation(mask_path=m)
        s.save()
    assert delete_outputs(ds, "lq", output_fields("lq"), None) == 4
    assert not any(os.path.exists(p) for p in heat + masks)
    assert not os.path.exists(tmp_path / "a" / "lq") and not os.path.exists(
        tmp_path / "b" / "lq"
    )
    assert not ds.has_field("lq_heatmap") and not ds.has_field("lq_issues")


def test_delete_outputs_removes_a_referenced_output_named_without_a_directory(
    make_dataset, tmp_path, monkeypatch
):
    # a path relative to the working directory, with no directory part: no
    # directory to sweep, the file is removed because the field points to it
    monkeypatch.chdir(tmp_path)
    ds = make_dataset()
    (sid,) = _samples(ds, 1)
    name = os.path.basename(output_path("/x", "lq", sid, "issues", "aaaaaaaa"))
    _touch(str(tmp_path / name))
    s = ds[sid]
    s["lq_issues"] = fo.Segmentation(mask_path=name)
    s.save()
    assert delete_outputs(ds, "lq", output_fields("lq"), None) == 1
    assert os.listdir(tmp_path) == []


def test_delete_outputs_goes_on_past_a_missing_output_dir(make_dataset, tmp_path):
    # the recorded output_dir is gone (outputs moved, fields updated): the
    # directory the fields point to is still swept and removed, although
    # delete_outputs looks at the missing one first (it sorts them)
    out, gone = str(tmp_path / "out"), str(tmp_path / "a-gone")
    run_dir = os.path.join(out, "lq")
    assert sorted([run_dir, os.path.join(gone, "lq")])[0] != run_dir
    ds = make_dataset()
    ids = _samples(ds)
    files = _fake_run(ds, ids, out)
    orphan = _touch(
        output_path(out, "lq", ids[0], "heatmap", "dddddddd")
    )  # left by a killed run
    assert delete_outputs(ds, "lq", output_fields("lq"), gone) == len(files) + 1
    assert not os.path.exists(orphan) and not os.path.exists(run_dir)


def test_a_cache_entry_that_cannot_be_removed_does_not_stop_the_delete(
    make_dataset, tmp_path
):
    # a file (not a directory) named like an issue-count cache: rmtree
    # fails on it; the rest of the delete goes on and the entry stays
    ds = make_dataset()
    ids = _samples(ds, 1)
    out = str(tmp_path)
    files = _fake_run(ds, ids, out)
    odd = _touch(os.path.join(out, "lq", ".cache-dddddddd"))
    assert delete_label_quality_run(ds, "lq") == list(output_fields("lq").values())
    assert ds.list_runs() == [] and not ds.has_field("lq")
    assert not any(os.path.exists(p) for p in files)
    assert os.listdir(os.path.join(out, "lq")) == [os.path.basename(odd)]


def test_a_failed_delete_of_a_run_whose_results_cannot_be_read(
    make_dataset, tmp_path, monkeypatch
):
    # the record goes back (without the unreadable results) and the error
    # is ours
    ds = make_dataset()
    ids = _samples(ds, 1)
    _fake_run(ds, ids, str(tmp_path))
    _corrupt_results(ds, "lq")
    monkeypatch.setattr(
        LabelQuality, "cleanup", lambda self, samples, key: None
    )  # deletes nothing
    with pytest.raises(
        FiftyOneInputError, match=r"^could not delete the run 'lq': unknown$"
    ):
        delete_label_quality_run(ds, "lq")
    assert ds.list_runs() == ["lq"] and ds.get_run_info("lq").config.token == "aaaaaaaa"
    assert ds.load_run_results("lq") is None and ds.values("lq") == [0.5]


# ------------------------------------------------------------------ upgrade


def test_upgrade_of_a_0_1_record_whose_results_cannot_be_read(make_dataset):
    ds = make_dataset()
    _legacy_record(
        ds, "old", method="softmin", token="aaaaaaaa", fields=output_fields("old")
    )
    ds.save_run_results("old", ds.init_run_results("old", confusion=[[1]], failures=[]))
    _corrupt_results(ds, "old")
    _legacy_record(ds, "older", method="softmin", token="bbbbbbbb")
    assert upgrade_runs(ds) == ["old", "older"]
    assert all(
        type(ds.get_run_info(k).config).__name__ == "LabelQualityConfig"
        for k in ("old", "older")
    )
    assert ds.get_run_info("old").config.token == "aaaaaaaa"
    assert ds.load_run_results("old") is None


# ------------------------------------------------------------------ config


def test_settings_the_config_does_not_name_are_kept(make_dataset, tmp_path):
    # a record written by a newer version (a setting this one does not
    # know) keeps it when loaded and when renamed
    ds = make_dataset()
    record_run(
        ds,
        "lq",
        status="completed",
        token="aaaaaaaa",
        future_setting={"x": 1},
        **_settings(str(tmp_path)),
    )
    ds.clear_cache()
    assert fo.load_dataset(ds.name).get_run_info("lq").config.future_setting == {"x": 1}
    rename_label_quality_run(ds, "lq", "new")
    ds.clear_cache()
    config = fo.load_dataset(ds.name).get_run_info("new").config
    assert config.future_setting == {"x": 1} and config.fields == output_fields("new")


# ------------------------------------------------------------------ resume


def test_resume_of_a_0_1_record_without_a_token_starts_a_new_run(make_dataset):
    # the first 0.1 records have no token attribute at all
    ds = make_dataset()
    _legacy_record(ds, "lq", **_settings())
    assert not hasattr(ds.get_run_info("lq").config, "token")
    sid = "65a1b2c3d4e5f60718293a4b"
    old = {sid: [output_path("/out", "lq", sid, "heatmap", "aaaaaaaa")]}
    token, done = resume_state(ds, "lq", old, True, _settings())
    assert done == {} and len(token) == 8


def test_resume_refusal_says_how_to_go_on(make_dataset):
    ds = make_dataset()
    record_run(ds, "lq", status="running", token="aaaaaaaa", **_settings())
    with pytest.raises(InvalidInputError) as e:
        resume_state(ds, "lq", {}, True, _settings(temperature=0.7))
    assert str(e.value).endswith(
        "temperature: recorded 0.3, now 0.7. Resuming would mix results computed with both. Pass the recorded "
        "settings to finish that run, or drop resume=True (CLI: --resume) to score every sample again with the "
        "new ones."
    )
