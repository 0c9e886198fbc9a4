"""fix_regions beyond the main flows of tests/fo/test_fix.py (same hand-built
dataset, whose changed pixels are known): a view in another order than the
dataset, a fixed field holding an inline or an empty mask, paths a user put
in the fixed field (never deleted), mask targets given as the dataset's
defaults, and every error naming the sample (and region) it is about."""

import os
import re

import cv2
import numpy as np
import pytest

import fiftyone as fo

from segqual_fo import fix_regions
from segqual_fo.errors import FiftyOneInputError, InvalidInputError
from tests.fo.test_fix import H, R1, R2, RB, W, build, read, region_id, tag_regions


@pytest.fixture
def ds(make_dataset):
    return make_dataset("segqual-fix-edges")


def _set(ds, index, field, value):
    sample = ds.skip(index).first()
    sample[field] = value
    sample.save()
    return sample.id


def test_a_view_in_another_order_fixes_each_sample_from_its_own_mask(ds, tmp_path):
    stored = build(ds, tmp_path)
    tag_regions(ds, [region_id(ds, 0, *R1), region_id(ds, 1, *RB)])
    view = ds.sort_by("filepath", reverse=True)  # image C, B, A
    res = fix_regions(view, "ground_truth", tag="approve")
    assert (res.num_samples, res.num_regions, res.num_pixels) == (2, 2, 18 + 20)
    expected_a, expected_b = stored[0].copy(), stored[1].copy()
    expected_a[R1] = 64
    expected_b[RB] = 0
    a, b, c = ds.values("ground_truth_fixed")
    np.testing.assert_array_equal(read(a.mask_path), expected_a)
    np.testing.assert_array_equal(read(b.mask_path), expected_b)
    assert c is None


def test_a_rerun_starts_from_an_inline_fixed_mask_and_an_empty_fixed_label_falls_back(ds, tmp_path):
    stored = build(ds, tmp_path)
    edited = stored[0].copy()
    edited[0, 0] = 128  # a reviewer's own edit, stored inline in the fixed field
    _set(ds, 0, "ground_truth_fixed", fo.Segmentation(mask=edited))
    _set(ds, 1, "ground_truth_fixed", fo.Segmentation())  # no mask at all
    tag_regions(ds, [region_id(ds, 0, *R1), region_id(ds, 1, *RB)])
    res = fix_regions(ds, "ground_truth", tag="approve")
    assert (res.num_samples, res.num_regions, res.num_pixels) == (2, 2, 18 + 20)
    expected_a, expected_b = edited.copy(), stored[1].copy()
    expected_a[R1] = 64
    expected_b[RB] = 0
    a, b, _ = ds.values("ground_truth_fixed")
    np.testing.assert_array_equal(read(a.mask_path), expected_a)
    np.testing.assert_array_equal(read(b.mask_path), expected_b)


def test_paths_a_user_put_in_the_fixed_field_are_never_deleted(ds, tmp_path):
    stored = build(ds, tmp_path)
    ida, idb = ds.values("id")[:2]
    elsewhere = tmp_path / "elsewhere"
    ours = tmp_path / "out" / "ground_truth_fixed"
    os.makedirs(elsewhere)
    os.makedirs(ours)
    cases = [
        (0, R1, elsewhere / f"{ida}-abcdef12.png"),  # named like ours, in another directory
        (0, R2, ours / f"{idb}-12345678.png"),  # in our directory, named for another sample
        (1, RB, elsewhere / "mine.png"),  # any other name
    ]
    for index, box, path in cases:
        cv2.imwrite(str(path), stored[index])
        _set(ds, index, "ground_truth_fixed", fo.Segmentation(mask_path=str(path)))
        tag_regions(ds, [region_id(ds, index, *box)], tag=f"t{box}")
        res = fix_regions(ds, "ground_truth", tag=f"t{box}")
        assert res.num_regions == 1
        assert path.exists(), path
        np.testing.assert_array_equal(read(str(path)), stored[index])


def test_default_mask_targets_are_the_label_fields_and_the_fixed_fields_own_are_kept(ds, tmp_path):
    stored = build(ds, tmp_path)
    targets = dict(ds.mask_targets["ground_truth"])
    own = {0: "background", 255: "changed"}
    ds.default_mask_targets = targets
    ds.mask_targets = {"ground_truth_fixed": own}
    ds.save()
    tag_regions(ds, [region_id(ds, 0, *R1)])
    res = fix_regions(ds, "ground_truth", tag="approve")
    assert res.num_pixels == 18
    expected = stored[0].copy()
    expected[R1] = 64  # "car" by the default targets, not class index 1
    np.testing.assert_array_equal(read(ds.first().ground_truth_fixed.mask_path), expected)
    assert ds.mask_targets == {"ground_truth_fixed": own}


def _region(ds, index, box):
    sample = ds.skip(index).first()
    rid = region_id(ds, index, *box)
    (det,) = [d for d in sample.label_quality_regions.detections if d.id == rid]
    return sample, det


def test_errors_name_the_sample_and_the_region(ds, tmp_path):
    stored = build(ds, tmp_path)
    rid = region_id(ds, 0, *R1)
    sid = ds.first().id
    tag_regions(ds, [rid])

    def refused(error, message):
        with pytest.raises(error) as err:
            fix_regions(ds, "ground_truth", tag="approve")
        assert str(err.value).startswith(message), str(err.value)
        return str(err.value)

    where = f"sample {sid} (ground_truth)"
    original = ds.first().ground_truth
    _set(ds, 0, "ground_truth", None)
    refused(FiftyOneInputError, f"{where} is empty; there is no label mask to fix.")
    _set(ds, 0, "ground_truth", fo.Segmentation())
    refused(FiftyOneInputError, f"{where} has neither a mask nor a mask_path.")
    _set(ds, 0, "ground_truth", fo.Segmentation(mask=np.zeros((H // 2, W // 2), np.uint8)))
    refused(InvalidInputError, f"region {rid} of {where} (box ")
    negative = stored[0].astype(np.int32)
    negative[0, 0] = -1  # an inline mask a label PNG cannot hold
    _set(ds, 0, "ground_truth", fo.Segmentation(mask=negative))
    refused(InvalidInputError, f"{where} holds values in [-1, 64]; a label PNG stores 0..65535.")
    _set(ds, 0, "ground_truth", original)

    sample, det = _region(ds, 0, R1)
    det["predicted_label"] = "bus"
    sample.save()
    msg = refused(FiftyOneInputError, f"region {rid} of {where} predicts 'bus', which has no mask value")
    assert "(classes with one: ['car', 'road', 'sky'])" in msg
    sample, det = _region(ds, 0, R1)
    det.clear_field("predicted_label")
    sample.save()
    assert not _region(ds, 0, R1)[1].has_field("predicted_label")
    refused(FiftyOneInputError, f"region {rid} of {where} predicts None")
    sample, det = _region(ds, 0, R1)
    det["predicted_label"] = "car"
    mask = det.mask
    det.mask = None
    sample.save()
    refused(FiftyOneInputError, f"region {rid} of {where} has no instance mask")
    sample, det = _region(ds, 0, R1)
    det.mask = mask
    sample.save()
    assert not ds.has_field("ground_truth_fixed")

    # once fixed, a rerun reads (and names) the fixed field
    fix_regions(ds, "ground_truth", tag="approve")
    _set(ds, 0, "ground_truth_fixed", fo.Segmentation(mask=np.zeros((H // 2, W // 2), np.uint8)))
    rid2 = region_id(ds, 0, *R2)
    tag_regions(ds, [rid2])
    msg = refused(InvalidInputError, f"region {rid2} of sample {sid} (ground_truth_fixed) (box ")
    assert re.search(r"does not fit its 8x6 label mask", msg)


OID = "5f0a1b2c3d4e5f6a7b8c9d0e"


@pytest.mark.parametrize(
    "kwargs",
    [dict(tag="approve"), dict(min_confidence=0), dict(min_confidence=1), dict(min_confidence=0.5),
     dict(min_confidence=np.float32(0.25)), dict(min_confidence=np.int64(1)), dict(label_ids=[OID, OID]),
     dict(label_ids=(OID,)), dict(label_ids=[])],
)
def test_check_selection_accepts(kwargs):
    from segqual_fo.fo.fix import check_selection

    check_selection(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(), "got none."),
        (dict(tag="a", label_ids=[OID]), "got tag and label_ids."),
        (dict(tag="a", min_confidence=0.5, label_ids=[OID]), "got tag and min_confidence and label_ids."),
        (dict(tag=""), "tag must be a non-empty label tag, got ''."),
        (dict(tag=5), "tag must be a non-empty label tag, got 5."),
        (dict(min_confidence=True), "min_confidence must be a number in [0, 1], got True."),
        (dict(min_confidence="0.5"), "min_confidence must be a number in [0, 1], got '0.5'."),
        (dict(min_confidence=-0.01), "min_confidence must be a number in [0, 1], got -0.01."),
        (dict(min_confidence=1.01), "min_confidence must be a number in [0, 1], got 1.01."),
        (dict(label_ids=OID), "label_ids must be a list of label ids (24 hex digits), got '5f0a"),
        (dict(label_ids=[OID, "5f0a"]), "label_ids must be a list of label ids (24 hex digits), got ['5f0a"),
        (dict(label_ids=[OID, 7]), "label_ids must be a list of label ids (24 hex digits), got ['5f0a"),
    ],
)
def test_check_selection_refuses_naming_the_argument(kwargs, message):
    from segqual_fo.fo.fix import check_selection

    with pytest.raises(InvalidInputError) as err:
        check_selection(**kwargs)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "args, message",
    [
        (("label_quality_issues", "label_quality"), "label_field 'label_quality_issues' is one of the output fields"),
        (("ground_truth", "bad name"), "score_field must be a field name (letters, digits, underscores), got 'bad name'."),
        (("ground_truth", "label_quality", "bad-name"),
         "fixed_field must be a field name (letters, digits, underscores), got 'bad-name'."),
    ],
)
def test_check_fix_target_names_the_bad_argument_before_reading_the_dataset(args, message):
    from segqual_fo.fo.fix import check_fix_target

    with pytest.raises(InvalidInputError) as err:
        check_fix_target(None, *args)  # no dataset is needed to refuse these
    assert message in str(err.value)


def test_0_1_records_without_label_field_or_classes_are_refused(make_dataset):
    from segqual_fo.fo.runs import TOOL

    ds = make_dataset("segqual-fix-legacy")
    ds.register_run("old", ds.init_run(tool=TOOL, method="softmin"))
    with pytest.raises(FiftyOneInputError) as err:
        fix_regions(ds, "ground_truth", tag="a", score_field="old")
    assert str(err.value).startswith("the run 'old' scored None, not 'ground_truth': its regions describe that "
                                     "field. Pass label_field=None, or the score_field")
    ds.register_run("old2", ds.init_run(tool=TOOL, method="softmin", label_field="ground_truth"))
    with pytest.raises(FiftyOneInputError) as err:
        fix_regions(ds, "ground_truth", tag="a", score_field="old2")
    assert str(err.value) == "the run 'old2' recorded no class list; score again."


def test_a_run_recorded_without_output_dir_fixes_into_the_default_dir(ds, tmp_path, monkeypatch):
    stored = build(ds, tmp_path)
    config = ds.get_run_info("label_quality").config
    config.output_dir = None
    ds.update_run_config("label_quality", config)
    monkeypatch.setattr(fo.config, "default_dataset_dir", str(tmp_path / "fo"))
    tag_regions(ds, [region_id(ds, 0, *R1)])
    res = fix_regions(ds, "ground_truth", tag="approve")
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", ds.name)
    (path,) = res.files
    assert os.path.dirname(path) == str(tmp_path / "fo" / "segqual" / safe / "ground_truth_fixed")
    expected = stored[0].copy()
    expected[R1] = 64
    np.testing.assert_array_equal(read(path), expected)


def test_a_second_run_its_outputs_and_its_regions(ds, tmp_path):
    from segqual_fo import compute_label_quality
    from tests.fo.test_fix import NAMES

    stored = build(ds, tmp_path)
    compute_label_quality(ds, "ground_truth", probs_field="probs_path", classes=NAMES, score_field="lq2",
                          output_dir=str(tmp_path / "out"), progress=False)
    for taken in ("lq2_issues", "lq2_regions", "lq2"):  # another run's outputs and key
        with pytest.raises(InvalidInputError, match=f"fixed_field '{taken}' is written by a segqual run"):
            fix_regions(ds, "ground_truth", tag="approve", fixed_field=taken)

    box = [R1[1].start / W, R1[0].start / H, (R1[1].stop - R1[1].start) / W, (R1[0].stop - R1[0].start) / H]
    (rid,) = [d.id for d in ds.first().lq2_regions.detections if np.allclose(d.bounding_box, box)]
    ds.select_labels(ids=[rid], fields="lq2_regions").tag_labels("approve", label_fields="lq2_regions")
    res = fix_regions(ds, "ground_truth", score_field="lq2", tag="approve", fixed_field="gt_lq2")
    assert (res.num_regions, res.num_pixels) == (1, 18)
    expected = stored[0].copy()
    expected[R1] = 64
    np.testing.assert_array_equal(read(ds.first().gt_lq2.mask_path), expected)
    assert os.path.dirname(ds.first().gt_lq2.mask_path) == str(tmp_path / "out" / "gt_lq2")
    assert ds.count_label_tags("lq2_regions") == {"approve": 1, "fixed": 1}
    assert ds.count_label_tags("label_quality_regions") == {}

    ds.clone_sample_field("ground_truth", "gt_copy")
    with pytest.raises(FiftyOneInputError) as err:
        fix_regions(ds, "gt_copy", tag="approve", score_field="lq2")
    assert "Pass label_field='ground_truth', or the score_field of a run of 'gt_copy'." in str(err.value)

    ds.delete_sample_field("lq2_regions")
    with pytest.raises(FiftyOneInputError) as err:
        fix_regions(ds, "ground_truth", score_field="lq2", tag="approve", fixed_field="gt_lq2")
    assert str(err.value) == "the run 'lq2' has no regions field 'lq2_regions'; score again."


def test_label_ids_in_upper_case_hex_are_the_same_regions(ds, tmp_path):
    # check_selection accepts any ObjectId spelling; the regions must be found
    stored = build(ds, tmp_path)
    rid = region_id(ds, 0, *R1)
    res = fix_regions(ds, "ground_truth", label_ids=[rid.upper()])
    assert (res.num_regions, res.num_pixels) == (1, 18)
    expected = stored[0].copy()
    expected[R1] = 64
    np.testing.assert_array_equal(read(ds.first().ground_truth_fixed.mask_path), expected)
