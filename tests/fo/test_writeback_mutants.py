"""Tests that kill surviving mutants of segqual_fo/fo/writeback.py (issue 12;
verdicts in .ci/mutation-verdicts/fo-writeback.md)."""

import logging
import os

from segqual_fo.fo import writeback
from segqual_fo.fo.writeback import finish_dataset, remove_stale_caches
from segqual_fo.options import output_fields

FIELDS = output_fields("lq")
CLASSES = ["road", "car", "sky"]


def test_remove_stale_caches_skips_what_it_cannot_remove_and_removes_the_rest(tmp_path):
    """Removing old caches is cleanup: an entry with a cache's name that
    cannot be removed as a directory (here a plain file) does not stop the
    run, and the other stale caches are still removed."""
    (tmp_path / ".cache-aaaaaaaa").write_bytes(b"not a directory")
    for name in (".cache-bbbbbbbb", ".cache-cccccccc"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "part.npy").write_bytes(b"x")
    remove_stale_caches(str(tmp_path), keep="cccccccc")
    assert sorted(os.listdir(tmp_path)) == [".cache-aaaaaaaa", ".cache-cccccccc"]


def test_the_warning_of_a_rewritten_dataset_names_the_fields_to_check(make_dataset, monkeypatch, caplog):
    ds = make_dataset()
    monkeypatch.setattr(writeback, "schema_complete", lambda dataset, fields: False)
    with caplog.at_level(logging.WARNING, logger="segqual_fo.fo.writeback"):
        finish_dataset(ds, FIELDS, CLASSES, attempts=1)
    (record,) = [r for r in caplog.records if r.name == "segqual_fo.fo.writeback"]
    message = record.getMessage()
    assert message.startswith("another process keeps rewriting dataset ")
    assert ds.name in message
    for name in FIELDS.values():
        assert repr(name) in message
