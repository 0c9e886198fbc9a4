"""Tests that kill surviving mutants of segqual_fo/fo/writeback.py (issue 12;
verdicts in .ci/mutation-verdicts/fo-writeback.md)."""

import logging
import os

import numpy as np

from segqual_fo.execution.job import Scored
from segqual_fo.fo import writeback
from segqual_fo.fo.review import Mark
from segqual_fo.fo.writeback import Collector, finish_dataset, remove_stale_caches
from segqual_fo.options import output_fields
from segqual_fo.writers.regions import IssueRegion

FIELDS = output_fields("lq")
CLASSES = ["road", "car", "sky"]
A = "65a1b2c3d4e5f60718293a4b"
B = "65a1b2c3d4e5f60718293a4c"


class FakeCommitter:
    def __init__(self):
        self.added = {}
        self.on_commit = None

    def add(self, sid, values, old_files=(), new_files=(), raw=False):
        self.added[sid] = values


def test_take_gives_the_new_regions_of_a_sample_the_review_tags_of_its_old_ones():
    """A re-scored sample's region that covers a tagged old region inherits
    its tags; another sample's identical region does not."""
    # box (0.25, 0.5, 0.125, 0.25) of a 2x3 mask: a 24x8 image, rows 4-5, columns 6-8
    region = IssueRegion((0.25, 0.5, 0.125, 0.25), np.ones((2, 3), bool), 0, 2, 6, 0.375)
    old_pixels = np.array([4 * 24 + 6, 4 * 24 + 7, 4 * 24 + 8, 5 * 24 + 6, 5 * 24 + 7, 5 * 24 + 8], np.int64)
    committer = FakeCommitter()
    marks = {A: [Mark(["fixed"], old_pixels)]}
    c = Collector(committer, FIELDS, {}, CLASSES, True, marks=marks)
    pairs, counts = np.array([0], np.int64), np.array([6], np.int64)
    for sid in (B, A):
        c.take(Scored(sid, 0.5, 6, f"/o/{sid}_h.png", f"/o/{sid}_i.png", [region], pairs, counts, None))
    assert [d.tags for d in committer.added[A][FIELDS["regions"]].detections] == [["fixed"]]
    assert [d.tags for d in committer.added[B][FIELDS["regions"]].detections] == [[]]


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
