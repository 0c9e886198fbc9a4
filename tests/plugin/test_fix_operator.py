"""fix_label_regions run in-process as the App runs it: the regions
selected in the App, or by tag, or by confidence (the hand-built dataset
of tests/fo/test_fix.py, whose changed pixels are known)."""

import cv2
import numpy as np
import pytest

from fiftyone.operators.executor import ExecutionError

from segqual_fo.fo.fix import FIXED_TAG
from tests.fo.test_fix import R1, R2, RB, build, originals, region_id, tag_regions
from tests.plugin.helpers import invalid, resolve_inputs, run, triggered

OP = "fix_label_regions"


def _selection(ds, *ids):
    """The App's ``selected_labels`` for regions of ``label_quality_regions``."""
    sample_of = {d: s for s, ds_ in zip(*ds.values(["id", "label_quality_regions.detections.id"])) for d in ds_}
    return [{"label_id": i, "sample_id": sample_of[i], "field": "label_quality_regions", "frame_number": None}
            for i in ids]


def _read(path):
    return cv2.imread(path, cv2.IMREAD_UNCHANGED)


@pytest.fixture
def fix_dataset(make_dataset, tmp_path):
    ds = make_dataset("segqual-fix-plugin")
    stored = build(ds, tmp_path)
    return ds, stored, tmp_path


def test_fixes_the_regions_selected_in_the_app(fix_dataset):
    ds, stored, tmp_path = fix_dataset
    before = originals(ds, tmp_path)
    selected = _selection(ds, region_id(ds, 0, *R2), region_id(ds, 1, *RB))
    selected.append({"label_id": ds.first().ground_truth.id, "sample_id": ds.first().id, "field": "ground_truth",
                     "frame_number": None})  # a label of another field is not a region: left out

    props = resolve_inputs(OP, ds, selected_labels=selected)
    assert props["mode"].default == "selected" and not invalid(props)
    assert props["selection"].view.label == "2 selected regions"
    assert props["fixed_field"].default == "ground_truth_fixed"

    result = run(OP, ds, {}, selected_labels=selected)
    assert result.result == {"fixed_field": "ground_truth_fixed", "label_field": "ground_truth", "num_samples": 2,
                             "num_regions": 2, "num_pixels": 24 + 20, "num_skipped": 0}
    assert len(triggered(result, "reload_dataset")) == 1  # the App shows the new field
    a, b, c = ds.values("ground_truth_fixed")
    expected_a, expected_b = stored[0].copy(), stored[1].copy()
    expected_a[R2], expected_b[RB] = 128, 0
    np.testing.assert_array_equal(_read(a.mask_path), expected_a)
    np.testing.assert_array_equal(_read(b.mask_path), expected_b)
    assert c is None
    assert originals(ds, tmp_path) == before
    assert ds.count_label_tags("label_quality_regions") == {FIXED_TAG: 2}


def test_fixes_by_tag_and_by_confidence_from_the_form(fix_dataset):
    ds, stored, _ = fix_dataset
    tag_regions(ds, [region_id(ds, 0, *R1)], "label_issue")
    props = resolve_inputs(OP, ds)
    assert props["mode"].default == "tag" and props["tag"].default == "label_issue" and not invalid(props)
    res = run(OP, ds, {"mode": "tag"}).result
    assert (res["num_regions"], res["num_pixels"]) == (1, 18)

    for sample in ds.iter_samples(autosave=True):
        for det in sample.label_quality_regions.detections:
            det["confidence"] = 0.95
    res = run(OP, ds, {"mode": "confidence", "min_confidence": 0.9}).result
    assert (res["num_regions"], res["num_skipped"], res["num_pixels"]) == (2, 1, 24 + 20)
    expected = stored[0].copy()
    expected[R1], expected[R2] = 64, 128
    np.testing.assert_array_equal(_read(ds.first().ground_truth_fixed.mask_path), expected)


def test_form_shows_what_is_wrong(fix_dataset):
    ds, _, _ = fix_dataset
    errors = invalid(resolve_inputs(OP, ds, {"mode": "selected"}))
    assert "Select issue regions" in errors["selection"]
    errors = invalid(resolve_inputs(OP, ds, {"mode": "confidence", "min_confidence": 2}))
    assert "min_confidence must be a number in [0, 1]" in errors["min_confidence"]
    errors = invalid(resolve_inputs(OP, ds, {"mode": "tag", "tag": "x", "fixed_field": "ground_truth"}))
    assert "is the label field" in errors["fixed_field"]
    errors = invalid(resolve_inputs(OP, ds, {"mode": "tag", "tag": "x", "fixed_field": "label_quality_heatmap"}))
    assert "written by a segqual run" in errors["fixed_field"]
    with pytest.raises(ExecutionError, match="is the label field"):
        run(OP, ds, {"mode": "tag", "tag": "x", "fixed_field": "ground_truth"})
    assert not ds.has_field("ground_truth_fixed")


def test_without_a_run_the_form_says_what_to_do(make_dataset):
    errors = invalid(resolve_inputs(OP, make_dataset("segqual-fix-plugin-empty")))
    assert "run compute_label_quality first" in errors["score_field"]
