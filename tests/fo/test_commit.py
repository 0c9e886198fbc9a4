"""Batched per-sample commits, the output schema and orphan sweeping
(segqual_fo.fo.commit) on the real embedded database.

Expected values are written out by hand; the output field names are the
ones ``output_fields("lq")`` documents.
"""

import datetime
import os

import pytest
from bson import ObjectId
from mongoengine.errors import ValidationError

import fiftyone as fo

from segqual_fo.errors import FiftyOneInputError
from segqual_fo.fo import commit as commit_module
from segqual_fo.fo.commit import REGION_ATTRIBUTES, FieldCommitter, ensure_schema, field_types, schema_complete, sweep_orphans
from segqual_fo.options import output_fields
from segqual_fo.writers.files import output_path

FIELDS = output_fields("lq")
NAMES = ["lq", "lq_num_issues", "lq_heatmap", "lq_issues", "lq_regions"]
REGION_PATHS = [f"lq_regions.detections.{name}" for name in REGION_ATTRIBUTES]


def _dataset(make_dataset, n):
    ds = make_dataset()
    ids = ds.add_samples([fo.Sample(filepath=f"/nowhere/im{i:03d}.png") for i in range(n)], progress=False)
    return ds, ids


def _doc(ds, sid):
    return ds._sample_collection.find_one({"_id": ObjectId(sid)})


def _scores(ds, ids):
    by_id = dict(zip(*ds.values(["id", "lq"])))
    return [by_id[i] for i in ids]


def _touch(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"png")
    return path


# ------------------------------------------------------------ constants


def test_region_attributes():
    evidence = ("mean_score", "min_score", "ring_given", "ring_predicted", "ring_score", "thickness")
    assert REGION_ATTRIBUTES == {
        "predicted_label": fo.StringField,
        "area": fo.IntField,
        **{name: fo.FloatField for name in evidence},
    }


def test_field_types():
    assert field_types(FIELDS) == {
        "lq": (fo.FloatField, None),
        "lq_num_issues": (fo.IntField, None),
        "lq_heatmap": (fo.EmbeddedDocumentField, fo.Heatmap),
        "lq_issues": (fo.EmbeddedDocumentField, fo.Segmentation),
        "lq_regions": (fo.EmbeddedDocumentField, fo.Detections),
    }


# --------------------------------------------------------------- schema


def test_ensure_schema_declares_the_fields_and_region_attributes(make_dataset):
    ds = make_dataset()
    assert schema_complete(ds, FIELDS) is False
    ensure_schema(ds, FIELDS)
    schema = ds.get_field_schema()
    assert type(schema["lq"]) is fo.FloatField
    assert type(schema["lq_num_issues"]) is fo.IntField
    for name, doc_type in (("lq_heatmap", fo.Heatmap), ("lq_issues", fo.Segmentation), ("lq_regions", fo.Detections)):
        assert isinstance(schema[name], fo.EmbeddedDocumentField), name
        assert schema[name].document_type is doc_type, name
    flat = ds.get_field_schema(flat=True)
    assert type(flat["lq_regions.detections.predicted_label"]) is fo.StringField
    assert type(flat["lq_regions.detections.area"]) is fo.IntField
    assert type(flat["lq_regions.detections.mean_score"]) is fo.FloatField
    assert schema_complete(ds, FIELDS) is True


def test_ensure_schema_second_call_declares_nothing(make_dataset, monkeypatch):
    ds = make_dataset()
    ensure_schema(ds, FIELDS)

    def refuse(*args, **kwargs):
        raise AssertionError(f"declared again: {args}")

    monkeypatch.setattr(fo.Dataset, "add_sample_field", refuse)
    ensure_schema(ds, FIELDS)
    assert schema_complete(ds, FIELDS) is True


def test_ensure_schema_keeps_other_fields_and_values(make_dataset):
    ds, ids = _dataset(make_dataset, 1)
    ds.add_sample_field("other", fo.StringField)
    ds.set_values("other", ["keep"])
    ensure_schema(ds, FIELDS)
    assert "other" in ds.get_field_schema()
    assert ds.values("other") == ["keep"]
    assert ds.values("lq") == [None]


def _field_docs(ds):
    """Every declared sample field as stored, without creation times and ids
    (embedded fields by name: their order is the order they were added in)."""

    def strip(d):
        if isinstance(d, dict):
            return {k: strip(v) for k, v in d.items() if k not in ("created_at", "_id")}
        if isinstance(d, list):
            items = [strip(v) for v in d]
            if all(isinstance(v, dict) and "name" in v for v in items):
                return sorted(items, key=lambda v: v["name"])
            return items
        return d

    ds.reload()
    return {f.name: strip(f.to_dict()) for f in ds._doc.sample_fields}


def test_ensure_schema_declares_everything_in_one_save(make_dataset, monkeypatch):
    ds = make_dataset()
    saves = []
    real_save = type(ds._doc).save
    monkeypatch.setattr(
        type(ds._doc), "save", lambda self, *a, **k: (saves.append(k.get("virtual", False)), real_save(self, *a, **k))[1]
    )
    ensure_schema(ds, FIELDS)
    assert saves.count(False) == 1  # was 8: one per field and region attribute (virtual: reload bookkeeping)
    assert schema_complete(ds, FIELDS) is True


def test_one_step_schema_equals_the_field_by_field_one(make_dataset, monkeypatch):
    fast = make_dataset()
    ensure_schema(fast, FIELDS)
    slow = make_dataset()
    monkeypatch.setattr(fo.Dataset, "_merge_sample_field_schema", lambda self, schema: None)  # declares nothing
    ensure_schema(slow, FIELDS)  # falls back to add_sample_field per field
    assert schema_complete(slow, FIELDS) is True
    assert _field_docs(fast) == _field_docs(slow)


def test_one_step_schema_refused_falls_back(make_dataset, monkeypatch):
    ds = make_dataset()
    ds.add_sample_field("lq_regions", fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)

    def refuse(self, schema):
        raise ValueError("no")

    monkeypatch.setattr(fo.Dataset, "_merge_sample_field_schema", refuse)
    ensure_schema(ds, FIELDS)
    assert schema_complete(ds, FIELDS) is True


def test_ensure_schema_wrong_type_is_refused_before_declaring(make_dataset):
    ds = make_dataset()
    ds.add_sample_field("lq_heatmap", fo.StringField)
    with pytest.raises(FiftyOneInputError, match="lq_heatmap"):
        ensure_schema(ds, FIELDS)
    assert "lq" not in ds.get_field_schema()  # nothing declared


def test_one_step_adds_missing_attributes_to_an_existing_regions_field(make_dataset):
    ds = make_dataset()
    ds.add_sample_field("lq_regions", fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)
    ds.add_sample_field("lq_regions.detections.area", fo.IntField)
    ensure_schema(ds, FIELDS)
    ref = make_dataset()
    ensure_schema(ref, FIELDS)
    assert _field_docs(ds) == _field_docs(ref)


def test_ensure_schema_completes_a_partial_schema(make_dataset):
    ds = make_dataset()
    ds.add_sample_field("lq", fo.FloatField)
    ds.add_sample_field("lq_regions", fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)
    assert schema_complete(ds, FIELDS) is False
    ensure_schema(ds, FIELDS)
    assert schema_complete(ds, FIELDS) is True
    assert ds.get_field_schema()["lq_issues"].document_type is fo.Segmentation


def test_ensure_schema_adds_missing_region_attributes(make_dataset):
    ds = make_dataset()
    for name, (ftype, doc_type) in field_types(FIELDS).items():
        if doc_type is None:
            ds.add_sample_field(name, ftype)
        else:
            ds.add_sample_field(name, ftype, embedded_doc_type=doc_type)
    ds.add_sample_field("lq_regions.detections.area", fo.IntField)
    assert schema_complete(ds, FIELDS) is False
    ensure_schema(ds, FIELDS)
    flat = ds.get_field_schema(flat=True)
    assert type(flat["lq_regions.detections.predicted_label"]) is fo.StringField
    assert type(flat["lq_regions.detections.mean_score"]) is fo.FloatField
    assert schema_complete(ds, FIELDS) is True


def test_schema_complete_needs_every_region_attribute(make_dataset):
    ds = make_dataset()
    ensure_schema(ds, FIELDS)
    other = output_fields("lq2")
    assert schema_complete(ds, other) is False
    for name, (ftype, doc_type) in field_types(other).items():
        if doc_type is None:
            ds.add_sample_field(name, ftype)
        else:
            ds.add_sample_field(name, ftype, embedded_doc_type=doc_type)
    ds.add_sample_field("lq2_regions.detections.predicted_label", fo.StringField)
    ds.add_sample_field("lq2_regions.detections.area", fo.IntField)
    assert schema_complete(ds, other) is False  # mean_score is missing
    ds.add_sample_field("lq2_regions.detections.mean_score", fo.FloatField)
    for name in ("min_score", "ring_given", "ring_predicted", "ring_score"):
        ds.add_sample_field(f"lq2_regions.detections.{name}", fo.FloatField)
    assert schema_complete(ds, other) is False  # thickness is missing
    ds.add_sample_field("lq2_regions.detections.thickness", fo.FloatField)
    assert schema_complete(ds, other) is True


def test_schema_complete_sees_fields_declared_through_another_handle(make_dataset):
    ds = make_dataset()
    other_handle = fo.load_dataset(ds.name)
    ensure_schema(other_handle, FIELDS)
    assert schema_complete(ds, FIELDS) is True


def test_ensure_schema_refuses_a_scalar_field_of_another_type(make_dataset):
    ds = make_dataset()
    ds.add_sample_field("lq", fo.StringField)
    with pytest.raises(
        FiftyOneInputError,
        match=r"^field 'lq' exists as .*; it must be FloatField\. Delete it or choose another score_field\.$",
    ):
        ensure_schema(ds, FIELDS)


def test_ensure_schema_refuses_an_int_field_of_another_type(make_dataset):
    ds = make_dataset()
    ds.add_sample_field("lq_num_issues", fo.FloatField)
    with pytest.raises(FiftyOneInputError, match=r"^field 'lq_num_issues' exists as .*; it must be IntField\. "):
        ensure_schema(ds, FIELDS)


def test_ensure_schema_refuses_an_embedded_field_of_another_label_type(make_dataset):
    ds = make_dataset()
    ds.add_sample_field("lq_heatmap", fo.EmbeddedDocumentField, embedded_doc_type=fo.Segmentation)
    with pytest.raises(
        FiftyOneInputError,
        match=r"^field 'lq_heatmap' exists as .*; it must be EmbeddedDocumentField of Heatmap\. "
        r"Delete it or choose another score_field\.$",
    ):
        ensure_schema(ds, FIELDS)


def test_ensure_schema_refuses_a_wrong_type_in_a_complete_schema(make_dataset):
    # every name and region attribute exists, so this is the re-run path
    ds = make_dataset()
    types = field_types(FIELDS)
    types["lq_issues"] = (fo.EmbeddedDocumentField, fo.Heatmap)
    for name, (ftype, doc_type) in types.items():
        if doc_type is None:
            ds.add_sample_field(name, ftype)
        else:
            ds.add_sample_field(name, ftype, embedded_doc_type=doc_type)
    for path, ftype in zip(REGION_PATHS, REGION_ATTRIBUTES.values()):
        ds.add_sample_field(path, ftype)
    assert schema_complete(ds, FIELDS) is True
    with pytest.raises(FiftyOneInputError, match=r"^field 'lq_issues' exists as .*; it must be EmbeddedDocumentField of Segmentation\."):
        ensure_schema(ds, FIELDS)


# ------------------------------------------------------------ committing


def test_batches_commit_every_batch_size_and_flush_commits_the_rest(make_dataset):
    ds, ids = _dataset(make_dataset, 5)
    batches = []
    c = FieldCommitter(ds, FIELDS, batch_size=2, on_commit=batches.append)
    assert c.committed == 0

    c.add(ids[0], {"lq": 0.5})
    assert c.committed == 0
    assert batches == []
    assert "lq" not in ds.get_field_schema()  # nothing committed, nothing declared

    c.add(ids[1], {"lq": 0.25})
    assert c.committed == 2
    assert batches == [[ids[0], ids[1]]]
    assert _scores(ds, ids) == [0.5, 0.25, None, None, None]

    c.add(ids[2], {"lq": 0.125})
    c.add(ids[3], {"lq": 1.0})
    assert c.committed == 4
    assert batches == [[ids[0], ids[1]], [ids[2], ids[3]]]

    c.add(ids[4], {"lq": 0.0})
    assert c.committed == 4
    assert _scores(ds, ids) == [0.5, 0.25, 0.125, 1.0, None]

    c.flush()
    assert c.committed == 5
    assert batches == [[ids[0], ids[1]], [ids[2], ids[3]], [ids[4]]]
    assert _scores(ds, ids) == [0.5, 0.25, 0.125, 1.0, 0.0]

    c.flush()  # nothing pending: no commit, no callback
    assert c.committed == 5
    assert len(batches) == 3


def test_default_batch_size_is_64(make_dataset):
    ds, ids = _dataset(make_dataset, 65)
    batches = []
    c = FieldCommitter(ds, FIELDS, on_commit=lambda b: batches.append(len(b)))
    for i, sid in enumerate(ids[:63]):
        c.add(sid, {"lq_num_issues": i})
    assert c.committed == 0
    c.add(ids[63], {"lq_num_issues": 63})
    assert c.committed == 64
    c.add(ids[64], {"lq_num_issues": 64})
    c.flush()
    assert batches == [64, 1]
    assert ds.values("lq_num_issues") == list(range(65))


def test_batch_size_one_commits_each_sample(make_dataset):
    ds, ids = _dataset(make_dataset, 3)
    batches = []
    c = FieldCommitter(ds, FIELDS, batch_size=1, on_commit=batches.append)
    for sid in ids:
        c.add(sid, {"lq": 0.5})
    assert batches == [[ids[0]], [ids[1]], [ids[2]]]
    assert c.committed == 3


def test_flush_with_nothing_pending_does_nothing(make_dataset):
    ds, _ = _dataset(make_dataset, 1)
    calls = []
    c = FieldCommitter(ds, FIELDS, on_commit=calls.append)
    c.flush()
    assert calls == []
    assert c.committed == 0
    assert schema_complete(ds, FIELDS) is False


def test_without_on_commit(make_dataset):
    ds, ids = _dataset(make_dataset, 1)
    c = FieldCommitter(ds, FIELDS)
    c.add(ids[0], {"lq": 0.75})
    c.flush()
    assert c.committed == 1
    assert ds.values("lq") == [0.75]


def test_prepare_declares_the_schema_once(make_dataset, monkeypatch):
    ds, ids = _dataset(make_dataset, 2)
    calls = []
    real = commit_module.ensure_schema
    monkeypatch.setattr(commit_module, "ensure_schema", lambda d, f: calls.append(f) or real(d, f))
    c = FieldCommitter(ds, FIELDS, batch_size=1)
    c.prepare()
    assert schema_complete(ds, FIELDS) is True
    c.add(ids[0], {"lq": 0.5})
    c.add(ids[1], {"lq": 0.5})
    c.prepare()
    assert calls == [FIELDS]


def test_all_fields_of_a_sample_land_in_one_update(make_dataset, monkeypatch):
    ds, ids = _dataset(make_dataset, 2)
    writes = []
    real = fo.Dataset._bulk_write

    def spy(self, ops, ids=None, **kwargs):
        writes.append((list(ops), list(ids)))
        return real(self, ops, ids=ids, **kwargs)

    monkeypatch.setattr(fo.Dataset, "_bulk_write", spy)
    region = fo.Detection(label="car", bounding_box=[0.1, 0.2, 0.3, 0.4], predicted_label="road", area=12, mean_score=0.25)
    values = {
        "lq": 0.5,
        "lq_num_issues": 3,
        "lq_heatmap": fo.Heatmap(map_path="/out/h.png", range=[0, 255]),
        "lq_issues": fo.Segmentation(mask_path="/out/i.png"),
        "lq_regions": fo.Detections(detections=[region]),
    }
    before = datetime.datetime.utcnow().replace(microsecond=0)
    c = FieldCommitter(ds, FIELDS, batch_size=2)
    c.add(ids[0], values)
    c.add(ids[1], {"lq": 0.125, "lq_num_issues": 0})
    after = datetime.datetime.utcnow() + datetime.timedelta(seconds=1)

    assert len(writes) == 1  # one bulk write per batch
    ops, written_ids = writes[0]
    assert written_ids == [ids[0], ids[1]]
    assert len(ops) == 2  # one update per sample
    set0 = ops[0]._doc["$set"]
    assert ops[0]._filter == {"_id": ObjectId(ids[0])}
    assert sorted(set0) == sorted(NAMES + ["last_modified_at"])
    assert ops[1]._filter == {"_id": ObjectId(ids[1])}
    assert sorted(ops[1]._doc["$set"]) == ["last_modified_at", "lq", "lq_num_issues"]

    s = ds[ids[0]]
    assert s["lq"] == 0.5
    assert s["lq_num_issues"] == 3
    assert s["lq_heatmap"].map_path == "/out/h.png"
    assert list(s["lq_heatmap"].range) == [0, 255]
    assert s["lq_issues"].mask_path == "/out/i.png"
    (d,) = s["lq_regions"].detections
    assert d.label == "car"
    assert list(d.bounding_box) == [0.1, 0.2, 0.3, 0.4]
    assert (d["predicted_label"], d["area"], d["mean_score"]) == ("road", 12, 0.25)
    doc = _doc(ds, ids[0])
    assert before <= doc["last_modified_at"] <= after
    assert doc["lq_heatmap"]["_cls"] == "Heatmap"
    assert doc["lq_issues"]["_cls"] == "Segmentation"
    assert doc["lq_regions"]["_cls"] == "Detections"
    s1 = ds[ids[1]]
    assert (s1["lq"], s1["lq_num_issues"], s1["lq_heatmap"]) == (0.125, 0, None)


def test_none_clears_a_field_and_other_fields_are_untouched(make_dataset):
    ds, ids = _dataset(make_dataset, 1)
    c = FieldCommitter(ds, FIELDS, batch_size=1)
    c.add(ids[0], {"lq": 0.5, "lq_num_issues": 4, "lq_issues": fo.Segmentation(mask_path="/m.png")})
    c.add(ids[0], {"lq": None, "lq_issues": None})
    doc = _doc(ds, ids[0])
    assert doc["lq"] is None
    assert doc["lq_issues"] is None
    assert doc["lq_num_issues"] == 4  # not in the update: kept
    assert ds.values("lq") == [None]
    assert c.committed == 2


def test_commit_refreshes_samples_loaded_in_this_process(make_dataset):
    ds, ids = _dataset(make_dataset, 1)
    sample = ds[ids[0]]
    c = FieldCommitter(ds, FIELDS)
    c.add(ids[0], {"lq": 0.375})
    c.flush()
    assert sample["lq"] == 0.375


def test_validate_rejects_a_wrong_typed_value(make_dataset):
    ds, ids = _dataset(make_dataset, 2)
    calls = []
    c = FieldCommitter(ds, FIELDS, batch_size=2, on_commit=calls.append)
    c.add(ids[0], {"lq": 0.5})
    with pytest.raises(ValidationError, match="x could not be converted to float"):
        c.add(ids[1], {"lq": "x"})
    # the batch is not written at all
    assert ds.values("lq") == [None, None]
    assert c.committed == 0
    assert calls == []


def test_validate_rejects_a_wrong_label_type(make_dataset):
    ds, ids = _dataset(make_dataset, 1)
    c = FieldCommitter(ds, FIELDS)
    c.add(ids[0], {"lq_heatmap": fo.Segmentation(mask_path="/m.png")})
    with pytest.raises(ValidationError, match="Heatmap"):
        c.flush()


def test_validate_true_is_the_default_and_false_skips_validation(make_dataset, monkeypatch):
    ds, ids = _dataset(make_dataset, 2)

    def reject(self, value, *args, **kwargs):
        raise ValidationError("validated")

    monkeypatch.setattr(fo.FloatField, "validate", reject)
    checked = FieldCommitter(ds, FIELDS)
    checked.add(ids[0], {"lq": 0.5})
    with pytest.raises(ValidationError, match="validated"):
        checked.flush()

    trusted = FieldCommitter(ds, FIELDS, validate=False)
    trusted.add(ids[1], {"lq": 0.5})
    trusted.flush()
    assert trusted.committed == 1
    assert _scores(ds, ids) == [None, 0.5]


def test_values_are_converted_to_database_form(make_dataset):
    ds, ids = _dataset(make_dataset, 1)
    c = FieldCommitter(ds, FIELDS, validate=False)
    c.add(ids[0], {"lq": "0.25", "lq_num_issues": 7.0})
    c.flush()
    doc = _doc(ds, ids[0])
    assert doc["lq"] == 0.25 and type(doc["lq"]) is float
    assert doc["lq_num_issues"] == 7 and type(doc["lq_num_issues"]) is int


def test_raw_values_are_stored_as_given(make_dataset):
    ds, ids = _dataset(make_dataset, 2)
    hid = ObjectId()
    heatmap = {"_id": hid, "_cls": "Heatmap", "tags": [], "map_path": "/out/h.png", "range": [0.0, 255.0]}
    c = FieldCommitter(ds, FIELDS, batch_size=2)
    c.add(ids[0], {"lq": 0.5, "lq_heatmap": heatmap, "lq_num_issues": None}, raw=True)
    c.add(ids[1], {"lq": "0.25"}, raw=True)  # raw: neither validated nor converted
    doc = _doc(ds, ids[0])
    assert doc["lq"] == 0.5
    assert doc["lq_heatmap"] == {"_id": hid, "_cls": "Heatmap", "tags": [], "map_path": "/out/h.png", "range": [0.0, 255.0]}
    assert doc["lq_num_issues"] is None
    assert ds[ids[0]]["lq_heatmap"].map_path == "/out/h.png"
    assert _doc(ds, ids[1])["lq"] == "0.25"


def test_raw_and_typed_samples_in_one_batch(make_dataset):
    ds, ids = _dataset(make_dataset, 2)
    c = FieldCommitter(ds, FIELDS, batch_size=2)
    c.add(ids[0], {"lq": "0.75"})  # typed: converted to a float
    c.add(ids[1], {"lq": "0.75"}, raw=True)  # raw: kept a string
    assert _doc(ds, ids[0])["lq"] == 0.75
    assert _doc(ds, ids[1])["lq"] == "0.75"


# ------------------------------------------------------------- old files


def test_old_files_named_like_ours_are_deleted_after_commit(make_dataset, tmp_path):
    ds, ids = _dataset(make_dataset, 2)
    out = str(tmp_path / "out")
    sid, other = ids
    old_heatmap = _touch(output_path(out, "lq", sid, "heatmap", "aaaaaaaa"))
    old_issues = _touch(output_path(out, "lq", sid, "issues", "aaaaaaaa"))
    kept_new = _touch(output_path(out, "lq", sid, "heatmap", "bbbbbbbb"))
    other_sample = _touch(output_path(out, "lq", other, "heatmap", "aaaaaaaa"))
    user_file = _touch(str(tmp_path / "user" / "heatmap.png"))
    user_named_like_id = _touch(str(tmp_path / "user" / f"{sid}_heatmap.png"))
    missing = output_path(out, "lq", sid, "issues", "cccccccc")  # already gone: no error

    c = FieldCommitter(ds, FIELDS)
    c.add(
        sid,
        {"lq": 0.5},
        old_files=[old_heatmap, old_issues, kept_new, other_sample, user_file, user_named_like_id, missing],
        new_files=[kept_new],
    )
    # not committed yet: the old record still points to its files
    assert os.path.exists(old_heatmap) and os.path.exists(old_issues)
    c.flush()
    assert not os.path.exists(old_heatmap)
    assert not os.path.exists(old_issues)
    assert os.path.exists(kept_new)
    assert os.path.exists(other_sample)
    assert os.path.exists(user_file)
    assert os.path.exists(user_named_like_id)
    assert ds.values("lq") == [0.5, None]


def test_old_files_survive_a_failed_commit(make_dataset, tmp_path):
    ds, ids = _dataset(make_dataset, 1)
    old = _touch(output_path(str(tmp_path), "lq", ids[0], "heatmap", "aaaaaaaa"))
    c = FieldCommitter(ds, FIELDS)
    c.add(ids[0], {"lq": "x"}, old_files=[old])
    with pytest.raises(ValidationError):
        c.flush()
    assert os.path.exists(old)


def test_old_files_are_deleted_per_sample(make_dataset, tmp_path):
    # a file old for one sample and new for another is judged by its own sample
    ds, ids = _dataset(make_dataset, 2)
    a = _touch(output_path(str(tmp_path), "lq", ids[0], "heatmap", "aaaaaaaa"))
    b = _touch(output_path(str(tmp_path), "lq", ids[1], "heatmap", "aaaaaaaa"))
    c = FieldCommitter(ds, FIELDS, batch_size=2)
    c.add(ids[0], {"lq": 0.5}, old_files=[a], new_files=[b])
    c.add(ids[1], {"lq": 0.5}, old_files=[b], new_files=[a])
    assert not os.path.exists(a)
    assert not os.path.exists(b)


def test_old_files_accept_iterators(make_dataset, tmp_path):
    ds, ids = _dataset(make_dataset, 1)
    old = _touch(output_path(str(tmp_path), "lq", ids[0], "issues", "aaaaaaaa"))
    new = _touch(output_path(str(tmp_path), "lq", ids[0], "issues", "bbbbbbbb"))
    c = FieldCommitter(ds, FIELDS)
    c.add(ids[0], {"lq": 0.5}, old_files=iter([old, new]), new_files=iter([new]))
    c.flush()
    assert not os.path.exists(old)
    assert os.path.exists(new)


# ---------------------------------------------------------- sweep_orphans

A = "65a1b2c3d4e5f60718293a4b"
B = "65a1b2c3d4e5f60718293a4c"


def test_sweep_orphans(tmp_path):
    d = str(tmp_path)
    names = {
        "a_old": f"{A}-aaaaaaaa_heatmap.png",  # ours, unreferenced: removed
        "a_old_issues": f"{A}-aaaaaaaa_issues.png",  # ours, unreferenced: removed
        "a_ref": f"{A}-bbbbbbbb_heatmap.png",  # referenced: kept
        "b": f"{B}-aaaaaaaa_heatmap.png",  # another sample: kept
        "tmp": ".tmp-k2j3h4.png",  # temporary file of an atomic write: removed
        "tmp_txt": ".tmp-k2j3h4.txt",  # not a PNG: kept
        "foreign": "foreign.png",
        "upper": f"{A.upper()}-aaaaaaaa_heatmap.png",
        "other_kind": f"{A}-aaaaaaaa_mask.png",
        "short_token": f"{A}-aaaa_heatmap.png",
        "jpg": f"{A}-aaaaaaaa_heatmap.jpg",
    }
    for name in names.values():
        _touch(os.path.join(d, name))
    referenced = {os.path.join(d, names["a_ref"]), os.path.join(d, names["b"])}

    assert sweep_orphans(d, referenced, {A}) == 3

    left = set(os.listdir(d))
    assert left == {
        names[k] for k in ("a_ref", "b", "tmp_txt", "foreign", "upper", "other_kind", "short_token", "jpg")
    }


def test_sweep_orphans_references_are_full_paths(tmp_path):
    d = str(tmp_path)
    name = f"{A}-aaaaaaaa_heatmap.png"
    _touch(os.path.join(d, name))
    assert sweep_orphans(d, {name}, {A}) == 1  # a bare name is not a reference to this file
    assert os.listdir(d) == []


def test_sweep_orphans_with_no_sample_ids_removes_only_temporary_files(tmp_path):
    d = str(tmp_path)
    _touch(os.path.join(d, f"{A}-aaaaaaaa_heatmap.png"))
    _touch(os.path.join(d, ".tmp-1.png"))
    assert sweep_orphans(d, set(), set()) == 1
    assert os.listdir(d) == [f"{A}-aaaaaaaa_heatmap.png"]


def test_sweep_orphans_several_samples(tmp_path):
    d = str(tmp_path)
    for sid in (A, B):
        _touch(os.path.join(d, f"{sid}-aaaaaaaa_issues.png"))
    assert sweep_orphans(d, set(), {A, B}) == 2
    assert os.listdir(d) == []


def test_sweep_orphans_missing_directory(tmp_path):
    assert sweep_orphans(str(tmp_path / "missing"), set(), {A}) == 0


def test_sweep_orphans_empty_directory(tmp_path):
    assert sweep_orphans(str(tmp_path), set(), {A}) == 0


def test_sweep_orphans_of_a_file_path_is_zero(tmp_path):
    f = _touch(str(tmp_path / f"{A}-aaaaaaaa_heatmap.png"))
    assert sweep_orphans(f, set(), {A}) == 0
    assert os.path.exists(f)


def test_an_old_file_that_cannot_be_removed_is_logged_not_raised(make_dataset, tmp_path, caplog):
    ds, ids = _dataset(make_dataset, 1)
    stuck = output_path(str(tmp_path), "lq", ids[0], "heatmap", "aaaaaaaa")
    os.makedirs(stuck)  # os.remove fails on a directory
    c = FieldCommitter(ds, FIELDS)
    c.add(ids[0], {"lq": 0.5}, old_files=[stuck])
    with caplog.at_level("WARNING", logger="segqual_fo.fo.commit"):
        c.flush()
    assert c.committed == 1
    assert ds.values("lq") == [0.5]
    assert os.path.isdir(stuck)
    ours = [r.getMessage() for r in caplog.records if r.name == "segqual_fo.fo.commit"]
    assert len(ours) == 1
    assert ours[0].startswith(f"could not remove old output {stuck}: ")


def test_sweep_orphans_counts_only_files_it_removed(tmp_path, caplog):
    # "Returns the number removed": a file that cannot be removed is not counted
    d = str(tmp_path)
    os.makedirs(os.path.join(d, ".tmp-stuck.png"))  # os.remove fails on a directory
    os.makedirs(os.path.join(d, f"{A}-aaaaaaaa_heatmap.png"))
    _touch(os.path.join(d, f"{A}-bbbbbbbb_heatmap.png"))
    with caplog.at_level("WARNING", logger="segqual_fo.fo.commit"):
        removed = sweep_orphans(d, set(), {A})
    assert sorted(os.listdir(d)) == sorted([".tmp-stuck.png", f"{A}-aaaaaaaa_heatmap.png"])
    assert len([r for r in caplog.records if r.name == "segqual_fo.fo.commit"]) == 2
    assert removed == 1
