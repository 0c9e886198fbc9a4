"""Review states survive a rescore: region tags move to the new regions
that overlap the old ones; what is left to review is counted."""

import numpy as np
import pytest

import fiftyone as fo

import segqual_fo
from segqual_fo.errors import InvalidInputError
from segqual_fo.fo.documents import regions_to_detections
from segqual_fo.fo.review import Mark, carry_marks, region_pixels
from segqual_fo.writers.documents import detections_doc
from segqual_fo.writers.regions import IssueRegion
from tests.fo.helpers import segmentation_dataset


def _region(x, y, mask, size=(20, 10)):
    w, h = size
    mh, mw = mask.shape
    return IssueRegion((x / w, y / h, mw / w, mh / h), mask, 0, 1, int(mask.sum()), 0.1)


def test_region_pixels_from_box_and_mask():
    mask = np.array([[1, 0, 1], [0, 1, 1]], bool)
    r = _region(4, 3, mask)
    # rows 3-4, columns 4-6 of a 20-wide image
    assert region_pixels(r.bounding_box, r.mask).tolist() == [3 * 20 + 4, 3 * 20 + 6, 4 * 20 + 5, 4 * 20 + 6]


@pytest.mark.parametrize("as_doc", [True, False])
def test_carry_marks_by_iou(as_doc):
    full = np.ones((4, 5), bool)
    new = [
        _region(0, 0, full),                # 20 px at (0,0)
        _region(10, 5, np.ones((2, 2), bool)),
        _region(2, 0, full),                # overlaps the first old mark by 12/28 < 0.5
    ]
    old_a = Mark(["not_an_error", "mine"], region_pixels(*_bm(_region(0, 0, np.ones((4, 4), bool)))))  # IoU 16/20
    old_b = Mark(["fixed"], region_pixels(*_bm(_region(10, 6, np.ones((1, 2), bool)))))  # IoU 2/4 = 0.5
    old_c = Mark(["gone"], region_pixels(*_bm(_region(17, 8, np.ones((2, 2), bool)))))  # overlaps nothing
    classes = ["a", "b"]
    regions = detections_doc(new, classes) if as_doc else regions_to_detections(new, classes)
    assert carry_marks([old_a, old_b, old_c], regions) == 2
    dets = regions["detections"] if as_doc else regions.detections
    tags = [d["tags"] if as_doc else d.tags for d in dets]
    assert tags == [["not_an_error", "mine"], ["fixed"], []]


def _flat(ds, attr):
    """Every region's ``attr``; the boxes with their sample's id (planted
    squares sit at the same place in several images)."""
    values = ds.values(f"label_quality_regions.detections.{attr}")
    if attr == "bounding_box":
        return [(sid, tuple(v)) for sid, per in zip(ds.values("id"), values) for v in (per or [])]
    return [v for per_sample in values for v in (per_sample or [])]


def _bm(r):
    return r.bounding_box, r.mask


def test_rescore_keeps_marks_and_counts_what_is_left(make_dataset, tmp_path, rng):
    ds = make_dataset()
    segmentation_dataset(ds, tmp_path, rng, n=6, plant=(1, 3, 4))
    out = str(tmp_path / "out")
    segqual_fo.compute_label_quality(ds, "ground_truth", probs_field="probs_path", output_dir=out)
    ids = _flat(ds, "id")
    assert len(ids) >= 3
    boxes = dict(zip(ids, _flat(ds, "bounding_box")))
    assert segqual_fo.mark_regions(ds, [ids[0]], "not_an_error") == 1
    assert segqual_fo.mark_regions(ds, [ids[1]], "fixed") == 1
    assert segqual_fo.mark_regions(ds, [ids[1]], "not_an_error") == 1  # a state replaces the other
    segqual_fo.mark_regions(ds, [ids[2]], "fixed")
    first = ds.select_labels(ids=[ids[2]]).first()
    first.tags.append("reviewed")
    first.save()
    progress = segqual_fo.review_progress(ds)
    n_regions = len(ids)
    on_reviewed = len(first.label_quality_regions.detections)
    assert progress == {
        "images": 6, "images_reviewed": 1, "images_left": 5, "regions": n_regions,
        "not_an_error": 2, "fixed": 1,
        "regions_left": n_regions - on_reviewed - len({ids[0], ids[1]} - set(d.id for d in first.label_quality_regions.detections)),
    }  # fmt: skip
    # rescore (another temperature: same regions, new documents)
    segqual_fo.compute_label_quality(ds, "ground_truth", probs_field="probs_path", output_dir=out, temperature=0.5)
    new_ids = _flat(ds, "id")
    assert not set(new_ids) & set(ids)
    new_tags = dict(zip(new_ids, _flat(ds, "tags")))
    new_boxes = dict(zip(new_ids, _flat(ds, "bounding_box")))
    by_box = {b: new_tags[i] for i, b in new_boxes.items()}
    assert by_box[boxes[ids[0]]] == ["not_an_error"]
    assert by_box[boxes[ids[1]]] == ["not_an_error"]
    assert by_box[boxes[ids[2]]] == ["fixed"]
    assert sum(bool(t) for t in new_tags.values()) == 3
    assert segqual_fo.review_progress(ds) == progress
    assert ds.select_labels(ids=[ids[2]]).count() == 0  # the old ids are gone
    assert "reviewed" in ds[first.id].tags


def test_mark_regions_refuses_other_states(make_dataset, tmp_path, rng):
    with pytest.raises(InvalidInputError, match="state must be one of"):
        segqual_fo.mark_regions(fo.Dataset(), [], "ok")
