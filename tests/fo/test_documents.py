"""The label documents segqual builds directly equal FiftyOne's own."""

import numpy as np

from segqual_fo import compute_label_quality
from segqual_fo.fo import documents
from segqual_fo.writers import documents as plain_documents
from segqual_fo.options import output_fields
from tests.fo.helpers import segmentation_dataset


def test_documents_match_this_fiftyone():
    assert documents.matches_fiftyone(documents.example_regions())


def test_a_layout_change_is_detected(monkeypatch):
    monkeypatch.setattr(plain_documents, "HEATMAP_RANGE", [0, 255])  # ints, not doubles
    assert not documents.matches_fiftyone(documents.example_regions())


def test_fast_and_fiftyone_documents_store_the_same(make_dataset, tmp_path, rng, monkeypatch):
    ds = make_dataset()
    segmentation_dataset(ds, tmp_path, rng, n=5, plant=(1, 3), names=["a", "b", "c", "d"])
    common = dict(probs_field="probs_path", method="num_pixel_issues", output_dir=str(tmp_path / "o"), progress=False)
    compute_label_quality(ds, "ground_truth", score_field="lq_fast", **common)
    monkeypatch.setattr(documents, "matches_fiftyone", lambda examples: False)
    compute_label_quality(ds, "ground_truth", score_field="lq_slow", **common)

    def stored(field):
        """The raw database documents, ids and file names aside."""
        f = output_fields(field)
        coll = ds._sample_collection
        rows = []
        for d in coll.find({}, {name: 1 for name in f.values()}).sort("_id", 1):
            rows.append(documents._without_ids({kind: d.get(f[kind]) for kind in f}))
        return rows

    fast, slow = stored("lq_fast"), stored("lq_slow")
    for a, b in zip(fast, slow):
        for kind in ("heatmap", "issues"):
            path_key = "map_path" if kind == "heatmap" else "mask_path"
            assert a[kind].pop(path_key) != b[kind].pop(path_key)  # each run its own files
        assert a == b
    assert sum(len(r["regions"]["detections"]) for r in fast) > 0
    assert np.array_equal(ds.values("lq_fast"), ds.values("lq_slow"))


def test_a_failing_comparison_counts_as_a_mismatch(monkeypatch):
    def broken(doc):
        raise TypeError("cannot compare")

    monkeypatch.setattr(documents, "_without_ids", broken)
    assert documents.matches_fiftyone(documents.example_regions()) is False
