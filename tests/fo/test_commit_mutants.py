"""Tests that kill the user-visible surviving mutants of segqual_fo/fo/commit.py
(see .ci/mutation-verdicts/fo-commit.md)."""

import os

import fiftyone as fo
import pytest

from segqual_fo.errors import FiftyOneInputError
from segqual_fo.fo import commit as commit_module
from segqual_fo.fo.commit import ensure_schema, schema_complete, sweep_orphans
from segqual_fo.options import output_fields

FIELDS = output_fields("lq")
A = "65a1b2c3d4e5f60718293a4b"


def _touch(path):
    with open(path, "wb") as f:
        f.write(b"png")
    return path


def test_the_fallback_refuses_a_field_of_another_type_with_our_error(make_dataset, monkeypatch):
    ds = make_dataset()

    def other_process_declares_a_string_score(self, schema):
        # the one-step declaration fails after another process declared "lq" as a string
        self.add_sample_field("lq", fo.StringField)
        raise ValueError("refused")

    monkeypatch.setattr(fo.Dataset, "_merge_sample_field_schema", other_process_declares_a_string_score)
    with pytest.raises(FiftyOneInputError, match="'lq'"):
        ensure_schema(ds, FIELDS)


def test_schema_complete_reloads_by_default(make_dataset):
    ds = make_dataset()
    ensure_schema(ds, FIELDS)
    assert schema_complete(ds, FIELDS) is True
    # another process saves the dataset document without the score field
    conn = fo.core.odm.get_db_conn()
    conn.datasets.update_one({"_id": ds._doc.id}, {"$pull": {"sample_fields": {"name": "lq"}}})
    assert schema_complete(ds, FIELDS, reload=False) is True  # this handle's stale copy
    assert schema_complete(ds, FIELDS) is False


def test_a_file_already_gone_is_not_counted_as_removed(tmp_path, monkeypatch):
    d = str(tmp_path)
    _touch(os.path.join(d, f"{A}-aaaaaaaa_heatmap.png"))
    _touch(os.path.join(d, ".tmp-x.png"))

    def gone(path):  # another sweep removed them between listdir and remove
        raise FileNotFoundError(path)

    monkeypatch.setattr(commit_module.os, "remove", gone)
    assert sweep_orphans(d, set(), {A}) == 0


def test_sweep_goes_on_after_a_temporary_file(tmp_path, monkeypatch):
    d = str(tmp_path)
    names = [".tmp-1.png", ".tmp-2.png", f"{A}-aaaaaaaa_heatmap.png", f"{A}-bbbbbbbb_issues.png"]
    for name in names:
        _touch(os.path.join(d, name))
    listdir = os.listdir
    monkeypatch.setattr(commit_module.os, "listdir", lambda p: sorted(listdir(p)))  # temporary files first
    assert sweep_orphans(d, set(), {A}) == 4
    assert listdir(d) == []
