"""Region confidence in the FiftyOne pipeline: both methods write it, in
[0, 1], equal to the core formula over the stored evidence and the run's
confusion (the final pass), deterministic across runs; the final pass
writes nothing when nothing changes."""

import numpy as np
import pytest

from segqual_fo import compute_label_quality
from segqual_fo.core.regions import LOCAL_FEATURES, region_confidence
from segqual_fo.fo.confidence import write_region_confidence
from segqual_fo.options import output_fields
from tests.fo.helpers import segmentation_dataset

NAMES = ["sky", "road", "car", "tree"]


def _regions(ds, key):
    path = f"{key}_regions.detections"
    cols = ds.values([f"{path}.{n}" for n in ("label", "predicted_label", "confidence") + LOCAL_FEATURES])
    return [[v for dets in col if dets for v in dets] for col in cols]


def _expected(samples, key, classes, confusion):
    """The core formula over the stored evidence of ``samples``' regions."""
    labels, predicted, _, *features = _regions(samples, key)
    index = {name: k for k, name in enumerate(classes)}
    return region_confidence(
        {n: np.array(v, dtype=np.float64) for n, v in zip(LOCAL_FEATURES, features)},
        np.array([index[v] for v in labels]),
        np.array([index[v] for v in predicted]),
        confusion,
    )


@pytest.mark.parametrize("method", ["softmin", "num_pixel_issues"])
def test_confidence_is_the_formula_over_stored_evidence(make_dataset, tmp_path, rng, method):
    ds = make_dataset()
    segmentation_dataset(ds, tmp_path, rng, n=6, shape=(40, 48), plant=(1, 3), names=NAMES)
    common = dict(probs_field="probs_path", method=method, output_dir=str(tmp_path / "out"), progress=False)
    res = compute_label_quality(ds, "ground_truth", score_field="lq", min_region_area=1, **common)
    conf = _regions(ds, "lq")[2]
    assert conf and all(isinstance(c, float) and 0.0 <= c <= 1.0 for c in conf)
    np.testing.assert_array_equal(conf, _expected(ds, "lq", res.classes, res.confusion))
    # deterministic: a second run under another key writes the same values
    compute_label_quality(ds, "ground_truth", score_field="lq2", min_region_area=1, **common)
    assert _regions(ds, "lq2") == _regions(ds, "lq")


def test_final_pass_writes_nothing_when_nothing_changes(make_dataset, tmp_path, rng):
    ds = make_dataset()
    segmentation_dataset(ds, tmp_path, rng, n=4, shape=(40, 48), plant=(1,), names=NAMES)
    res = compute_label_quality(
        ds, "ground_truth", probs_field="probs_path", score_field="lq", output_dir=str(tmp_path / "out"), progress=False
    )
    stamps = ds.values("last_modified_at")
    n = write_region_confidence(ds, output_fields("lq"), res.classes, res.confusion)
    assert n == len(_regions(ds, "lq")[0]) > 0
    assert ds.values("last_modified_at") == stamps
    # with other totals the values change and are written back
    other = res.confusion.copy()
    other[1, 0] += 10**6
    write_region_confidence(ds, output_fields("lq"), res.classes, other)
    assert _regions(ds, "lq")[2] != [None] * n


def _run(ds, tmp_path, rng, n=4):
    segmentation_dataset(ds, tmp_path, rng, n=n, shape=(40, 48), plant=(1, 2), names=NAMES)
    return compute_label_quality(
        ds, "ground_truth", probs_field="probs_path", score_field="lq", min_region_area=1,
        output_dir=str(tmp_path / "out"), progress=False,
    )  # fmt: skip


def _other_totals(res):
    other = res.confusion.copy()
    other[1, 0] += 10**6
    other[0, 2] += 10**5
    return other


def test_final_pass_equals_fiftyone_set_values(make_dataset, tmp_path, rng):
    # the one-update-per-sample write stores what FiftyOne's set_values
    # would (region by region), touches nothing else, keeps ids and order,
    # stamps last_modified_at and refreshes samples loaded in this process
    ds = make_dataset()
    res = _run(ds, tmp_path, rng)
    path = "lq_regions.detections"
    before = ds.values(f"{path}._id"), ds.values("last_modified_at")
    loaded = ds.first()
    other = _other_totals(res)
    write_region_confidence(ds, output_fields("lq"), res.classes, other)
    ours = [s.to_mongo_dict() for s in ds.iter_samples()]
    expected = _expected(ds, "lq", res.classes, other)
    assert _regions(ds, "lq")[2] == [float(c) for c in expected]
    assert ds.values(f"{path}._id") == before[0]
    assert all(a > b for a, b in zip(ds.values("last_modified_at"), before[1]))
    assert loaded.lq_regions.detections[0].confidence == _regions(ds, "lq")[2][0]
    # FiftyOne's own write of the same values gives the same documents
    per_sample = ds.values(f"{path}.confidence")
    ds.set_values(f"{path}.confidence", [[0.5] * len(c) for c in per_sample])
    ds.set_values(f"{path}.confidence", per_sample)
    theirs = [s.to_mongo_dict() for s in ds.iter_samples()]
    for a, b in zip(ours, theirs):
        a.pop("last_modified_at"), b.pop("last_modified_at")
        assert a == b


def test_final_pass_through_a_view_that_hides_regions_sets_each_by_id(make_dataset, tmp_path, rng):
    # positions in a filtered view are not positions in the database: the
    # visible regions get their values by id, the hidden ones keep theirs
    from fiftyone import ViewField as F

    ds = make_dataset()
    res = _run(ds, tmp_path, rng)
    path = "lq_regions.detections"
    all_ids, all_conf = ds.values(f"{path}._id"), ds.values(f"{path}.confidence")
    firsts = [ids[0] for ids in all_ids if ids]  # hidden: every sample's first region
    view = ds.filter_labels("lq_regions", ~F("_id").is_in(firsts))
    visible = set(str(i) for ids in view.values(f"{path}._id") for i in ids)
    assert 0 < len(visible) < sum(map(len, all_ids))
    write_region_confidence(view, output_fields("lq"), res.classes, _other_totals(res))
    shown = dict(zip(map(str, sum(view.values(f"{path}._id"), [])), sum(view.values(f"{path}.confidence"), [])))
    expected = _expected(view, "lq", res.classes, _other_totals(res))
    assert list(shown.values()) == [float(c) for c in expected]
    for ids, confs, now in zip(all_ids, all_conf, ds.values(f"{path}.confidence")):
        for i, old, new in zip(ids, confs, now):
            if str(i) in visible:
                assert new == shown[str(i)]
            else:
                assert new == old


def test_final_pass_over_a_region_without_an_id_is_fiftyone_s_error(make_dataset, tmp_path, rng):
    # regions we write always have ids; one without (edited outside
    # FiftyOne) cannot be addressed: refused, as FiftyOne's own write does
    from bson import ObjectId

    ds = make_dataset()
    res = _run(ds, tmp_path, rng)
    sid = next(s.id for s in ds.iter_samples() if s.lq_regions and s.lq_regions.detections)
    ds._sample_collection.update_one({"_id": ObjectId(sid)}, {"$unset": {"lq_regions.detections.0._id": ""}})
    ds.reload()
    with pytest.raises(ValueError, match="array documents with IDs"):
        write_region_confidence(ds, output_fields("lq"), res.classes, _other_totals(res))


def test_final_pass_over_samples_without_regions(make_dataset, tmp_path, rng):
    # a sample whose regions field is empty (None) takes no values and does
    # not shift the others'; a collection without any region writes nothing
    ds = make_dataset()
    res = _run(ds, tmp_path, rng)
    first = ds.first()
    first.lq_regions = None
    first.save()
    other = _other_totals(res)
    n = write_region_confidence(ds, output_fields("lq"), res.classes, other)
    assert n == len(_regions(ds, "lq")[2]) > 0
    assert _regions(ds, "lq")[2] == [float(c) for c in _expected(ds, "lq", res.classes, other)]
    assert ds.first().lq_regions is None
    ds.set_values("lq_regions", [None] * len(ds))
    assert write_region_confidence(ds, output_fields("lq"), res.classes, other) == 0
