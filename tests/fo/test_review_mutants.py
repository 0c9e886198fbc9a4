"""Review states beyond tests/fo/test_review.py: carry_marks on hand-placed
regions (hand-computed IoUs), review_marks skipping what it cannot read, and
review_progress / review_view / mark_regions on a small dataset whose regions
and tags are set by hand (so every count below is counted by eye)."""

import io
import zlib

import fiftyone as fo
import numpy as np
import pytest

from segqual_fo.fo.review import (
    Mark,
    carry_marks,
    mark_regions,
    region_pixels,
    review_marks,
    review_progress,
    review_view,
)

# carry_marks: regions in a 10 x 10 image, boxes relative to it


def _det(x, y, mask, tags=()):
    mask = np.asarray(mask, bool)
    h, w = mask.shape
    return fo.Detection(label="a", bounding_box=[x / 10, y / 10, w / 10, h / 10], mask=mask, tags=list(tags))


def _mark(x, y, mask, tags):
    d = _det(x, y, mask)
    return Mark(list(tags), region_pixels(d.bounding_box, d.mask))


def _ones(h, w):
    return np.ones((h, w), bool)


def test_region_pixels_are_integer_indices():
    px = region_pixels([0.2, 0.1, 0.2, 0.1], _ones(1, 2))  # row 1, columns 2-3 of a 10-wide image
    assert px.tolist() == [12, 13]
    assert px.dtype.kind == "i"


def test_carry_marks_needs_half_the_union_not_any_overlap():
    # old: 16 px at (0,0); new: 4 px at (3,3); they share pixel (3,3): IoU 1 / 19
    dets = fo.Detections(detections=[_det(3, 3, _ones(2, 2))])
    assert carry_marks([_mark(0, 0, _ones(4, 4), ["fixed"])], dets) == 0
    assert dets.detections[0].tags == []


def test_carry_marks_each_old_mark_to_its_best_match_only_and_the_next_marks_still_carry():
    dets = fo.Detections(detections=[
        _det(0, 0, _ones(2, 2)),  # X: IoU 1 with A
        _det(0, 0, _ones(2, 3)),  # Y: IoU 4/6 with A (A already carried to X)
        _det(6, 6, _ones(2, 2)),  # Z: IoU 2/4 with B, the last pair at or above 0.5
    ])  # fmt: skip
    marks = [_mark(0, 0, _ones(2, 2), ["a"]), _mark(6, 6, _ones(1, 2), ["b"])]
    assert carry_marks(marks, dets) == 2
    assert [d.tags for d in dets.detections] == [["a"], [], ["b"]]


@pytest.mark.parametrize("as_doc", [True, False])
def test_carry_marks_adds_to_the_tags_a_region_has(as_doc):
    d = _det(0, 0, _ones(2, 2), ["keep", "fixed"])
    regions = {"detections": [d.to_dict()]} if as_doc else fo.Detections(detections=[d])
    if as_doc:  # a document holds the mask as FiftyOne stores it
        buf = io.BytesIO()
        np.save(buf, _ones(2, 2))
        regions["detections"][0]["mask"] = zlib.compress(buf.getvalue())
    assert carry_marks([_mark(0, 0, _ones(2, 2), ["fixed", "mine"])], regions) == 1
    got = regions["detections"][0]["tags"] if as_doc else regions.detections[0].tags
    assert got == ["keep", "fixed", "mine"]


def test_carry_marks_without_marks_or_regions_carries_nothing():
    assert carry_marks([], fo.Detections(detections=[_det(0, 0, _ones(2, 2))])) == 0
    assert carry_marks([_mark(0, 0, _ones(2, 2), ["fixed"])], fo.Detections()) == 0
    assert carry_marks([_mark(0, 0, _ones(2, 2), ["fixed"])], {"detections": []}) == 0
    # no marks: the regions are not even read (this one has no mask)
    no_mask = fo.Detection(label="a", bounding_box=[0, 0, 0.2, 0.2])
    assert carry_marks([], fo.Detections(detections=[no_mask])) == 0


def test_carry_marks_empty_mark_and_empty_region_do_not_overlap():
    dets = fo.Detections(detections=[_det(0, 0, np.zeros((2, 2), bool))])
    assert carry_marks([Mark(["fixed"], np.zeros(0, np.int64))], dets) == 0
    assert dets.detections[0].tags == []


def test_carry_marks_refuses_a_pickled_mask():
    buf = io.BytesIO()
    np.save(buf, np.array([[True, True]], dtype=object), allow_pickle=True)
    doc = {"detections": [{"bounding_box": [0, 0, 0.2, 0.1], "mask": zlib.compress(buf.getvalue()), "tags": []}]}
    with pytest.raises(ValueError, match="allow_pickle"):
        carry_marks([_mark(0, 0, _ones(1, 2), ["fixed"])], doc)
    assert doc["detections"][0]["tags"] == []


# a dataset built by hand: scores, regions and tags known

S = "label_quality"
R = "label_quality_regions"


def _dets(*tag_lists):
    return fo.Detections(detections=[_det(2 * i, 0, _ones(2, 2), tags) for i, tags in enumerate(tag_lists)])


@pytest.fixture
def ds(make_dataset, tmp_path):
    """s0..s3 scored (s2 tagged reviewed), s4 not scored; a second label
    field ``gt`` with a ``fixed`` label on s0."""
    ds = make_dataset("segqual-review-edges")
    f = lambda name: str(tmp_path / f"{name}.png")
    ds.add_samples([
        fo.Sample(filepath=f("s0"), **{S: 0.3, R: _dets([], ["not_an_error"])},
                  gt=fo.Detections(detections=[fo.Detection(label="g", bounding_box=[0, 0, 0.5, 0.5], tags=["fixed"])])),
        fo.Sample(filepath=f("s1"), **{S: 0.1, R: _dets(["fixed"], ["fixed", "mine"])}),
        fo.Sample(filepath=f("s2"), tags=["reviewed"], **{S: 0.2, R: _dets([])}),
        fo.Sample(filepath=f("s3"), **{S: 0.5, R: fo.Detections()}),
        fo.Sample(filepath=f("s4"), **{R: _dets([], ["not_an_error"])}),
    ], progress=False)  # fmt: skip
    return ds


def _sid(ds, name):
    return next(s.id for s in ds if s.filepath.endswith(f"/{name}.png"))


def _names(view):
    return [p.rsplit("/", 1)[1][:-4] for p in view.values("filepath")]


def test_review_progress_counts_scored_images_and_only_the_regions_field(ds):
    assert review_progress(ds) == {
        "images": 4, "images_reviewed": 1, "images_left": 3,
        "regions": 5,  # s0 2 + s1 2 + s2 1 + s3 0 (s4 is not scored)
        "not_an_error": 1,  # s0's (s4's is not scored)
        "fixed": 2,  # s1's two (gt's is another field)
        "regions_left": 1,  # s0's untagged one (s2's is on a reviewed image)
    }  # fmt: skip


def test_review_view_images_not_reviewed_worst_first_with_their_open_regions(ds):
    view = review_view(ds)  # the default run: label_quality
    assert _names(view) == ["s1", "s0", "s3"]  # scores 0.1, 0.3, 0.5; s2 reviewed, s4 not scored
    assert [len(t) for t in view.values(f"{R}.detections.tags")] == [0, 1, 0]
    assert view.values(f"{R}.detections.tags")[1] == [[]]


def test_mark_regions_counts_regions_not_images(ds):
    s0 = ds[_sid(ds, "s0")]
    ids = [d.id for d in s0[R].detections]
    assert mark_regions(ds, ids, "fixed") == 2
    assert ds[s0.id][R].detections[0].tags == ["fixed"]
    assert ds[s0.id][R].detections[1].tags == ["fixed"]  # not_an_error replaced


def test_review_progress_of_another_run_with_a_state_nobody_used(make_dataset, tmp_path):
    ds = make_dataset("segqual-review-edges")
    ds.add_samples([
        fo.Sample(filepath=str(tmp_path / "a.png"), lq2=0.4, lq2_regions=_dets([], ["not_an_error"])),
        fo.Sample(filepath=str(tmp_path / "b.png"), lq2=0.2, lq2_regions=_dets([])),
    ], progress=False)  # fmt: skip
    assert review_progress(ds, "lq2") == {
        "images": 2, "images_reviewed": 0, "images_left": 2, "regions": 3,
        "not_an_error": 1, "fixed": 0, "regions_left": 2,
    }  # fmt: skip


def test_review_progress_of_a_run_without_regions(make_dataset, tmp_path):
    ds = make_dataset("segqual-review-edges")
    ds.add_samples([
        fo.Sample(filepath=str(tmp_path / "a.png"), label_quality=0.5),
        fo.Sample(filepath=str(tmp_path / "b.png"), label_quality=0.7, tags=["reviewed"]),
        fo.Sample(filepath=str(tmp_path / "c.png")),
    ], progress=False)  # fmt: skip
    assert review_progress(ds) == {
        "images": 2, "images_reviewed": 1, "images_left": 1,
        "regions": 0, "regions_left": 0, "not_an_error": 0, "fixed": 0,
    }  # fmt: skip


def test_review_marks_skips_a_tagged_region_without_a_mask(make_dataset, tmp_path):
    ds = make_dataset("segqual-review-edges")
    no_mask = fo.Detection(label="a", bounding_box=[0.5, 0.5, 0.2, 0.2], tags=["fixed"])
    regions = fo.Detections(detections=[_det(0, 0, _ones(1, 2), ["not_an_error"]), no_mask, _det(4, 4, _ones(1, 1))])
    sample = fo.Sample(filepath=str(tmp_path / "a.png"), **{S: 0.5, R: regions})
    ds.add_samples([sample, fo.Sample(filepath=str(tmp_path / "b.png"), **{S: 0.6, R: _dets([])})], progress=False)
    marks = review_marks(ds, R)
    assert list(marks) == [sample.id]
    assert [(m.tags, m.pixels.tolist()) for m in marks[sample.id]] == [(["not_an_error"], [0, 1])]


def test_mark_regions_touches_only_the_regions_field(ds):
    s0 = ds[_sid(ds, "s0")]
    gt_id, region_id = s0.gt.detections[0].id, s0[R].detections[0].id
    assert mark_regions(ds, [gt_id, region_id], "not_an_error") == 1
    assert ds[s0.id].gt.detections[0].tags == ["fixed"]  # another field's label keeps its tags
    assert [d.tags for d in ds[s0.id][R].detections] == [["not_an_error"], ["not_an_error"]]
    assert ds.count_label_tags() == {"not_an_error": 3, "fixed": 3, "mine": 1}  # s0 2 + s4 1; gt 1 + s1 2
