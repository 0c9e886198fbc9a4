"""Write-back (segqual_fo.fo.writeback): records become committed fields and
run totals; finish_dataset sets mask targets and App colours; the helpers
that find old files and caches. Expected values are written out by hand.
"""

import logging
import os

import numpy as np
import pytest

import fiftyone as fo

from segqual_fo.execution.job import Failed, Scored
from segqual_fo.fo import writeback
from segqual_fo.fo.checkpoint import RunCheckpoint, Totals
from segqual_fo.fo.commit import FieldCommitter, ensure_schema, schema_complete
from segqual_fo.fo.writeback import (
    ISSUE_COLOR,
    Collector,
    Failure,
    default_output_dir,
    finish_dataset,
    old_files,
    referenced_files,
    remove_stale_caches,
)
from segqual_fo.options import output_fields
from segqual_fo.writers.documents import heatmap_doc, segmentation_doc
from segqual_fo.writers.regions import IssueRegion

FIELDS = output_fields("lq")
CLASSES = ["road", "car", "sky"]
A = "65a1b2c3d4e5f60718293a4b"
B = "65a1b2c3d4e5f60718293a4c"
C = "65a1b2c3d4e5f60718293a4d"


class FakeCommitter:
    """Records what the collector queues; ``commit()`` plays a batch commit."""

    def __init__(self):
        self.added = []
        self.prepared = 0
        self.on_commit = None

    def add(self, sid, values, old_files=(), new_files=(), raw=False):
        self.added.append(dict(sid=sid, values=values, old=list(old_files), new=tuple(new_files), raw=raw))

    def prepare(self):
        self.prepared += 1

    def commit(self, ids):
        self.on_commit(ids)


class FakeCheckpoint:
    def __init__(self):
        self.saved = []

    def save(self, totals):
        self.saved.append((totals.confusion.tolist(), totals.num_samples, totals.fingerprint, totals.num_undefined))


def _scored(sid, score, pairs, counts, heatmap="/o/h.png", issues="/o/i.png", regions=(), docs=None, num_issues=None):
    pairs, counts = np.array(pairs, np.int64), np.array(counts, np.int64)
    n = int(counts.sum()) if num_issues is None else num_issues
    return Scored(sid, score, n, heatmap, issues, list(regions), pairs, counts, docs)


def _collector(old=None, initial=None, skip_failures=True, checkpoint=None):
    committer = FakeCommitter()
    c = Collector(committer, FIELDS, old or {}, CLASSES, skip_failures, checkpoint, initial)
    return c, committer


# -------------------------------------------------------------- Collector


def test_a_new_collector_starts_from_zero():
    c, committer = _collector()
    assert committer.on_commit == c._on_commit
    assert c.confusion.tolist() == [0] * 9 and c.confusion.dtype == np.int64
    assert c.committed.num_samples == 0 and c.committed.confusion.tolist() == [0] * 9
    assert c.num_undefined == 0 and c.failures == []


def test_a_collector_starts_from_the_initial_totals():
    initial = Totals(np.arange(9, dtype=np.int64), num_samples=2, fingerprint=7, num_undefined=1)
    c, _ = _collector(initial=initial)
    assert c.committed is initial
    assert c.confusion.tolist() == list(range(9)) and c.num_undefined == 1
    c.take(_scored(A, 0.5, [1], [4]))
    # the run's confusion grows; the committed totals only on commit
    assert c.confusion.tolist() == [0, 5, 2, 3, 4, 5, 6, 7, 8]
    assert initial.confusion.tolist() == list(range(9))


def test_prepare_declares_through_the_committer():
    c, committer = _collector()
    c.prepare()
    assert committer.prepared == 1


def test_take_queues_the_fiftyone_objects_of_a_scored_image():
    region = IssueRegion((0.25, 0.5, 0.125, 0.25), np.ones((2, 3), bool), 0, 2, 6, 0.375)
    c, committer = _collector(old={A: ["/o/old_h.png", "/o/old_i.png"]})
    c.take(_scored(A, 0.625, [2, 2, 5], [1, 2, 3], heatmap="/o/h.png", issues="/o/i.png", regions=[region], num_issues=6))
    (entry,) = committer.added
    assert entry["sid"] == A and entry["raw"] is False
    assert entry["old"] == ["/o/old_h.png", "/o/old_i.png"] and entry["new"] == ("/o/h.png", "/o/i.png")
    v = entry["values"]
    assert sorted(v) == sorted(FIELDS.values())
    assert v["lq"] == 0.625 and v["lq_num_issues"] == 6
    assert type(v["lq_heatmap"]) is fo.Heatmap
    assert v["lq_heatmap"].map_path == "/o/h.png" and list(v["lq_heatmap"].range) == [0, 255]
    assert type(v["lq_issues"]) is fo.Segmentation and v["lq_issues"].mask_path == "/o/i.png"
    (d,) = v["lq_regions"].detections
    assert (d.label, d["predicted_label"], d["area"], d["mean_score"]) == ("road", "sky", 6, 0.375)
    assert list(d.bounding_box) == [0.25, 0.5, 0.125, 0.25]
    # repeated pair codes accumulate
    assert c.confusion.tolist() == [0, 0, 3, 0, 0, 3, 0, 0, 0]
    assert c.num_undefined == 0
    assert c.committed.num_samples == 0  # counted once committed


def test_take_queues_plain_documents_raw():
    docs = {"heatmap": heatmap_doc("/o/h.png"), "issues": segmentation_doc("/o/i.png"), "regions": {"_cls": "Detections", "detections": []}}
    c, committer = _collector()
    c.take(_scored(B, 0.5, [], [], docs=docs, num_issues=0))
    (entry,) = committer.added
    assert entry["raw"] is True and entry["new"] == ("/o/h.png", "/o/i.png") and entry["old"] == []
    assert entry["values"] == {
        "lq": 0.5,
        "lq_num_issues": 0,
        "lq_heatmap": docs["heatmap"],
        "lq_issues": docs["issues"],
        "lq_regions": docs["regions"],
    }


def test_an_undefined_score_is_counted():
    c, committer = _collector()
    c.take(_scored(A, None, [], []))
    c.take(_scored(B, 0.0, [], []))  # zero is a score, not undefined
    assert c.num_undefined == 1
    assert committer.added[0]["values"]["lq"] is None


def test_a_resumed_sample_is_counted_as_committed_and_not_written():
    c, committer = _collector()
    c.take(_scored(A, None, [4, 4], [1, 2], heatmap=None, issues=None))
    assert committer.added == []
    assert c.confusion.tolist() == [0, 0, 0, 0, 3, 0, 0, 0, 0]
    assert c.committed.confusion.tolist() == [0, 0, 0, 0, 3, 0, 0, 0, 0]
    assert (c.committed.num_samples, c.committed.fingerprint, c.committed.num_undefined) == (1, int(A, 16), 1)
    assert c.num_undefined == 1


def test_a_failure_clears_the_fields_and_is_listed():
    c, committer = _collector(old={A: ["/o/old.png"]})
    error = ValueError("sample x: broken")
    c.take(Failed(A, "/img/a.png", error))
    assert c.failures == [Failure(A, "/img/a.png", "sample x: broken")]
    (entry,) = committer.added
    assert entry == dict(sid=A, values={name: None for name in FIELDS.values()}, old=["/o/old.png"], new=(), raw=False)
    assert c.confusion.tolist() == [0] * 9 and c.num_undefined == 0


def test_a_failure_without_skip_failures_raises_it():
    c, committer = _collector(skip_failures=False)
    error = ValueError("sample x: broken")
    with pytest.raises(ValueError) as e:
        c.take(Failed(A, "/img/a.png", error))
    assert e.value is error
    assert committer.added == [] and c.failures == []


def test_commits_move_samples_into_the_checkpointed_totals():
    cp = FakeCheckpoint()
    c, committer = _collector(checkpoint=cp)
    c.take(_scored(A, 0.5, [1], [2]))
    c.take(_scored(B, None, [3, 1], [1, 1]))
    c.take(Failed(C, "/img/c.png", ValueError("broken")))
    committer.commit([A, C])  # a failure is committed as None, not counted
    assert cp.saved == [([0, 2, 0, 0, 0, 0, 0, 0, 0], 1, int(A, 16), 0)]
    committer.commit([B])
    assert cp.saved[-1] == ([0, 3, 0, 1, 0, 0, 0, 0, 0], 2, int(A, 16) + int(B, 16), 1)
    committer.commit([B])  # committed twice (a retry): counted once
    assert cp.saved[-1] == cp.saved[-2]
    assert len(cp.saved) == 3
    assert c.confusion.tolist() == [0, 3, 0, 1, 0, 0, 0, 0, 0]


def test_commits_without_a_checkpoint_still_count():
    c, committer = _collector()
    c.take(_scored(A, 0.5, [8], [5]))
    committer.commit([A])
    assert c.committed.confusion.tolist() == [0] * 8 + [5]
    assert c.committed.num_samples == 1


def test_collector_with_the_real_committer_and_checkpoint(make_dataset):
    ds = make_dataset()
    ids = ds.add_samples([fo.Sample(filepath=f"/nowhere/{i}.png") for i in range(3)], progress=False)
    checkpoint = RunCheckpoint(ds, "lq", "aaaaaaaa")
    committer = FieldCommitter(ds, FIELDS, batch_size=2)
    c = Collector(committer, FIELDS, {}, CLASSES, True, checkpoint)
    c.take(_scored(ids[0], 0.5, [1], [2], heatmap="/o/a_h.png", issues="/o/a_i.png"))
    assert checkpoint.load(3) is None
    c.take(_scored(ids[1], 0.25, [3], [1], heatmap="/o/b_h.png", issues="/o/b_i.png"))
    saved = checkpoint.load(3)
    assert saved.confusion.tolist() == [0, 2, 0, 1, 0, 0, 0, 0, 0]
    assert saved.describes(ids[:2])
    c.take(_scored(ids[2], None, [], [], heatmap="/o/c_h.png", issues="/o/c_i.png"))
    committer.flush()
    saved = checkpoint.load(3)
    assert saved.describes(ids) and saved.num_undefined == 1
    assert ds.values("lq") == [0.5, 0.25, None]
    assert ds.values("lq_heatmap.map_path") == ["/o/a_h.png", "/o/b_h.png", "/o/c_h.png"]
    checkpoint.delete()


# --------------------------------------------------------------- helpers


def test_default_output_dir(make_dataset):
    ds = make_dataset("segqual test.ä")
    safe = "segqual_test__" + ds.name[len("segqual test.ä"):]  # "-<hex>" is safe already
    assert default_output_dir(ds) == os.path.join(fo.config.default_dataset_dir, "segqual", safe)


def test_default_output_dir_names():
    class Named:
        def __init__(self, name):
            self.name = name

    root = os.path.join(fo.config.default_dataset_dir, "segqual")
    assert default_output_dir(Named("x" * 70)) == os.path.join(root, "x" * 64)
    assert default_output_dir(Named("aZ09_-.")) == os.path.join(root, "aZ09_-_")
    assert default_output_dir(Named("")) == os.path.join(root, "dataset")


def test_old_files_lists_the_referenced_pngs_per_sample(make_dataset):
    ds = make_dataset()
    ids = ds.add_samples([fo.Sample(filepath=f"/nowhere/{i}.png") for i in range(3)], progress=False)
    assert old_files(ds, FIELDS, ids) == {}  # no output fields yet
    ensure_schema(ds, FIELDS)
    s0, s1 = ds[ids[0]], ds[ids[1]]
    s0["lq_heatmap"] = fo.Heatmap(map_path="/o/0_h.png")
    s0["lq_issues"] = fo.Segmentation(mask_path="/o/0_i.png")
    s0.save()
    s1["lq_issues"] = fo.Segmentation(mask_path="/o/1_i.png")
    s1.save()
    assert old_files(ds, FIELDS, ids) == {ids[0]: ["/o/0_h.png", "/o/0_i.png"], ids[1]: ["/o/1_i.png"]}
    # a view: its own samples, in its order
    view = ds.select([ids[1], ids[0]], ordered=True)
    assert old_files(view, FIELDS, [ids[1], ids[0]]) == {ids[0]: ["/o/0_h.png", "/o/0_i.png"], ids[1]: ["/o/1_i.png"]}
    assert old_files(ds.select(ids[2]), FIELDS, [ids[2]]) == {}


def test_old_files_with_only_the_issues_field(make_dataset):
    ds = make_dataset()
    ids = ds.add_samples([fo.Sample(filepath="/nowhere/0.png")], progress=False)
    ds.add_sample_field("lq_issues", fo.EmbeddedDocumentField, embedded_doc_type=fo.Segmentation)
    ds.set_values("lq_issues", [fo.Segmentation(mask_path="/o/i.png")])
    assert old_files(ds, FIELDS, ids) == {ids[0]: ["/o/i.png"]}


def test_referenced_files(make_dataset):
    ds = make_dataset()
    ids = ds.add_samples([fo.Sample(filepath=f"/nowhere/{i}.png") for i in range(3)], progress=False)
    ensure_schema(ds, FIELDS)
    ds.set_values("lq_heatmap", [fo.Heatmap(map_path="/o/0_h.png"), None, fo.Heatmap(map_path="/o/2_h.png")])
    ds.set_values("lq_issues", [fo.Segmentation(mask_path="/o/0_i.png"), None, None])
    assert referenced_files(ds, FIELDS) == {"/o/0_h.png", "/o/2_h.png", "/o/0_i.png"}
    assert referenced_files(ds.select(ids[2]), FIELDS) == {"/o/2_h.png"}


def test_remove_stale_caches(tmp_path):
    for name in (".cache-aaaaaaaa", ".cache-bbbbbbbb", ".cache-keep0000", ".cache-aaaaaaa", ".cache-aaaaaaaaa", "cache-cccccccc", ".cache-ABCDEF00"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "part.npy").write_bytes(b"x")
    (tmp_path / "other.png").write_bytes(b"x")
    remove_stale_caches(str(tmp_path), keep="bbbbbbbb")
    assert sorted(os.listdir(tmp_path)) == sorted(
        [".cache-bbbbbbbb", ".cache-keep0000", ".cache-aaaaaaa", ".cache-aaaaaaaaa", "cache-cccccccc", ".cache-ABCDEF00", "other.png"]
    )


def test_remove_stale_caches_of_a_missing_directory(tmp_path):
    remove_stale_caches(str(tmp_path / "missing"), keep="aaaaaaaa")
    assert not (tmp_path / "missing").exists()


# ---------------------------------------------------------- finish_dataset


def _scheme(ds):
    ds.reload()
    return ds.app_config.color_scheme


def test_finish_dataset_sets_mask_targets_and_colours(make_dataset):
    ds = make_dataset()
    finish_dataset(ds, FIELDS, CLASSES)
    assert schema_complete(ds, FIELDS)
    fresh = fo.load_dataset(ds.name)  # stored, not only in this handle
    assert fresh.mask_targets["lq_issues"] == {1: "road", 2: "car", 3: "sky"}
    scheme = fresh.app_config.color_scheme
    assert scheme.color_by == "value" and scheme.opacity == 0.7
    assert list(scheme.colorscales) == [{"path": "lq_heatmap", "name": "hot", "list": None}]
    assert list(scheme.fields) == [
        {
            "path": "lq_issues",
            "fieldColor": ISSUE_COLOR,
            "maskTargetsColors": [
                {"intTarget": 1, "color": ISSUE_COLOR},
                {"intTarget": 2, "color": ISSUE_COLOR},
                {"intTarget": 3, "color": ISSUE_COLOR},
            ],
        },
        {"path": "lq_regions", "fieldColor": ISSUE_COLOR},
    ]
    assert ISSUE_COLOR == "#ff2d55"


def test_finish_dataset_keeps_an_existing_scheme_and_entries(make_dataset):
    ds = make_dataset()
    ds.app_config.color_scheme = fo.ColorScheme(
        color_by="field",
        opacity=0.4,
        colorscales=[{"path": "lq_heatmap", "name": "viridis", "list": None}],
        fields=[{"path": "lq_issues", "fieldColor": "#000000"}, {"path": "other", "fieldColor": "#111111"}],
    )
    ds.save()
    finish_dataset(ds, FIELDS, CLASSES)
    scheme = _scheme(ds)
    assert scheme.color_by == "field" and scheme.opacity == 0.4
    assert list(scheme.colorscales) == [{"path": "lq_heatmap", "name": "viridis", "list": None}]
    assert list(scheme.fields) == [
        {"path": "lq_issues", "fieldColor": "#000000"},
        {"path": "other", "fieldColor": "#111111"},
        {"path": "lq_regions", "fieldColor": ISSUE_COLOR},
    ]


def test_finish_dataset_adds_entries_for_another_run(make_dataset):
    ds = make_dataset()
    finish_dataset(ds, FIELDS, CLASSES)
    other = output_fields("lq2")
    finish_dataset(ds, other, CLASSES[:2])
    scheme = _scheme(ds)
    assert [c["path"] for c in scheme.colorscales] == ["lq_heatmap", "lq2_heatmap"]
    assert [f["path"] for f in scheme.fields] == ["lq_issues", "lq_regions", "lq2_issues", "lq2_regions"]
    assert scheme.fields[2]["maskTargetsColors"] == [{"intTarget": 1, "color": ISSUE_COLOR}, {"intTarget": 2, "color": ISSUE_COLOR}]
    assert ds.mask_targets["lq_issues"] == {1: "road", 2: "car", 3: "sky"}
    assert ds.mask_targets["lq2_issues"] == {1: "road", 2: "car"}


def test_finish_dataset_only_adds_the_missing_colour_entries(make_dataset):
    ds = make_dataset()
    ds.app_config.color_scheme = fo.ColorScheme(fields=[{"path": "lq_regions", "fieldColor": "#222222"}])
    ds.save()
    finish_dataset(ds, FIELDS, CLASSES[:1])
    scheme = _scheme(ds)
    assert scheme.color_by is None  # an existing scheme's settings are not changed
    assert list(scheme.colorscales) == [{"path": "lq_heatmap", "name": "hot", "list": None}]
    assert list(scheme.fields) == [
        {"path": "lq_regions", "fieldColor": "#222222"},
        {"path": "lq_issues", "fieldColor": ISSUE_COLOR, "maskTargetsColors": [{"intTarget": 1, "color": ISSUE_COLOR}]},
    ]


def test_finish_dataset_with_only_the_issue_colours_missing(make_dataset):
    ds = make_dataset()
    ds.app_config.color_scheme = fo.ColorScheme(
        colorscales=[{"path": "lq_heatmap", "name": "hot", "list": None}],
        fields=[{"path": "lq_regions", "fieldColor": "#222222"}],
    )
    ds.save()
    finish_dataset(ds, FIELDS, CLASSES[:1])
    assert [f["path"] for f in _scheme(ds).fields] == ["lq_regions", "lq_issues"]


def test_finish_dataset_with_only_the_regions_colour_missing(make_dataset):
    ds = make_dataset()
    ds.app_config.color_scheme = fo.ColorScheme(
        colorscales=[{"path": "lq_heatmap", "name": "hot", "list": None}],
        fields=[{"path": "lq_issues", "fieldColor": "#222222"}],
    )
    ds.save()
    finish_dataset(ds, FIELDS, CLASSES[:1])
    assert [f["path"] for f in _scheme(ds).fields] == ["lq_issues", "lq_regions"]


def test_finish_dataset_with_only_the_colour_scale_missing(make_dataset):
    ds = make_dataset()
    ds.app_config.color_scheme = fo.ColorScheme(
        fields=[{"path": "lq_issues", "fieldColor": "#222222"}, {"path": "lq_regions", "fieldColor": "#333333"}],
    )
    ds.save()
    finish_dataset(ds, FIELDS, CLASSES[:1])
    assert list(_scheme(ds).colorscales) == [{"path": "lq_heatmap", "name": "hot", "list": None}]


def test_finish_dataset_replaces_other_mask_targets_of_the_issues_field(make_dataset):
    ds = make_dataset()
    ds.mask_targets = {"lq_issues": {1: "old"}, "ground_truth": {0: "road"}}
    ds.save()
    finish_dataset(ds, FIELDS, CLASSES[:2])
    fresh = fo.load_dataset(ds.name)
    assert fresh.mask_targets == {"lq_issues": {1: "road", 2: "car"}, "ground_truth": {0: "road"}}


def test_finish_dataset_redoes_what_a_concurrent_writer_dropped(make_dataset, monkeypatch):
    """Another process saves the dataset from a stale copy right after this
    run's steps: the first check fails, the next attempt declares again."""
    ds = make_dataset()
    real = writeback._ensure_colors
    calls = []

    def colours_then_drop(dataset, fields, num_classes):
        real(dataset, fields, num_classes)
        calls.append(1)
        if len(calls) == 1:  # the concurrent writer drops a declared field
            fo.load_dataset(dataset.name).delete_sample_field("lq_num_issues")

    monkeypatch.setattr(writeback, "_ensure_colors", colours_then_drop)
    finish_dataset(ds, FIELDS, CLASSES)
    assert len(calls) == 2
    assert schema_complete(ds, FIELDS)
    assert fo.load_dataset(ds.name).mask_targets["lq_issues"] == {1: "road", 2: "car", 3: "sky"}


def test_finish_dataset_redoes_dropped_mask_targets(make_dataset, monkeypatch):
    ds = make_dataset()
    real = writeback._ensure_colors
    calls = []

    def colours_then_drop(dataset, fields, num_classes):
        real(dataset, fields, num_classes)
        calls.append(1)
        if len(calls) == 1:  # another process saves a copy without them
            other = fo.load_dataset(dataset.name)
            other.mask_targets.pop("lq_issues")
            other.save()

    monkeypatch.setattr(writeback, "_ensure_colors", colours_then_drop)
    finish_dataset(ds, FIELDS, CLASSES)
    assert len(calls) == 2


def test_finish_dataset_warns_when_another_process_keeps_rewriting(make_dataset, monkeypatch, caplog):
    ds = make_dataset()
    real = writeback._ensure_colors
    calls = []

    def colours_then_drop(dataset, fields, num_classes):
        real(dataset, fields, num_classes)
        calls.append(1)
        fo.load_dataset(dataset.name).delete_sample_field("lq_regions")

    monkeypatch.setattr(writeback, "_ensure_colors", colours_then_drop)
    with caplog.at_level(logging.WARNING, logger="segqual_fo.fo.writeback"):
        finish_dataset(ds, FIELDS, CLASSES, attempts=3)
    assert len(calls) == 3
    (record,) = [r for r in caplog.records if r.name == "segqual_fo.fo.writeback"]
    assert ds.name in record.getMessage()
    calls.clear()
    finish_dataset(ds, FIELDS, CLASSES)
    assert len(calls) == 5  # the default: five attempts
