"""Edges of the corrected-mask writer that the first tests left open: each
way a region's box can miss the mask, every mask dtype a value is checked
against, the mask-target inversion with a duplicate value before other
classes, and the PNG dtype bounds (255 / 256, 65535 / 65536). Hand-written
arrays; expected values by hand."""

import re

import numpy as np
import pytest

from segqual_fo.adapters.masks import LabelMapping
from segqual_fo.errors import InvalidInputError
from segqual_fo.writers.fixes import RegionPatch, class_values, paste_regions, png_image

WHERE = "sample 0123 (ground_truth)"


def test_class_values_keep_classes_after_a_duplicate_value():
    # "b" is named by 10 and 20; "c" (30) comes after the duplicate
    mapping = LabelMapping.from_targets(mask_targets={0: "a", 10: "b", 20: "b", 30: "c"},
                                        classes=["a", "b", "c"]).resolve(3)
    assert class_values(mapping) == {0: 0, 1: 10, 2: 30}
    rgb = LabelMapping.from_targets(mask_targets={"#000001": "b", "#000002": "b", "#0000ff": "a", "#ff0000": "c"},
                                    classes=["a", "b", "c"]).resolve(3)
    assert class_values(rgb) == {0: (0, 0, 255), 1: (0, 0, 1), 2: (255, 0, 0)}


@pytest.mark.parametrize(
    "box, region",
    [
        ([0, 0, 0.5, 0.25], (1, 1)),  # width 2 pixels, mask 1 wide; heights agree
        ([0, 0, 0.25, 0.5], (1, 1)),  # height 2 pixels, mask 1 high; widths agree
        ([-0.25, 0, 0.25, 0.25], (1, 1)),  # starts left of the mask, rows inside
        ([0, -0.25, 0.25, 0.25], (1, 1)),  # starts above the mask, columns inside
        ([0, 0.75, 0.25, 0.5], (2, 1)),  # runs past the bottom edge
        ([0.75, 0, 0.5, 0.25], (1, 2)),  # runs past the right edge
    ],
)
def test_regions_that_miss_the_mask_are_refused_naming_region_and_mask(box, region):
    base = np.zeros((4, 4), np.uint8)
    patch = RegionPatch(box, np.ones(region, bool), 1, name="region 5f0a")
    with pytest.raises(InvalidInputError) as err:
        paste_regions(base, [patch], where=WHERE)
    assert f"region 5f0a of {WHERE}" in str(err.value)
    assert "does not fit its 4x4 label mask" in str(err.value)
    assert not base.any()


@pytest.mark.parametrize("shape", [(4,), (2, 2, 4), (2, 2, 1), (1, 2, 2, 3)])
def test_masks_of_other_shapes_are_refused_naming_the_mask(shape):
    with pytest.raises(InvalidInputError) as err:
        paste_regions(np.zeros(shape, np.uint8), [], where=WHERE)
    assert str(err.value).startswith(f"{WHERE} has shape {shape}")


def test_float_masks_take_any_value():
    base = np.zeros((2, 2), np.float32)
    out, changed = paste_regions(base, [RegionPatch([0, 0, 1, 0.5], np.ones((1, 2), bool), 70000)])
    assert out.dtype == np.float32 and changed == 2
    np.testing.assert_array_equal(out, [[70000, 70000], [0, 0]])


def test_bool_masks_take_0_and_1_only():
    base = np.array([[True, False], [False, True]])
    top_row = np.ones((1, 2), bool)
    out, changed = paste_regions(base, [RegionPatch([0, 0, 1, 0.5], top_row, 1)])
    np.testing.assert_array_equal(out, [[True, True], [False, True]])
    assert out.dtype == bool and changed == 1
    out, changed = paste_regions(base, [RegionPatch([0, 0.5, 1, 0.5], top_row, 0)])
    np.testing.assert_array_equal(out, [[True, False], [False, False]])
    assert changed == 1
    for value in (2, -1):
        with pytest.raises(InvalidInputError, match=re.escape(f"region of {WHERE} would write the value {value} into a bool mask")):
            paste_regions(base, [RegionPatch([0, 0, 1, 0.5], top_row, value)], where=WHERE)


def test_a_0_1_integer_region_mask_selects_its_pixels():
    # a region mask given as 0/1 integers selects pixels, not rows 0 and 1
    base = np.zeros((3, 3), np.uint8)
    region = np.array([[0, 1, 0], [0, 0, 0], [1, 0, 1]], np.uint8)
    out, changed = paste_regions(base, [RegionPatch([0, 0, 1, 1], region, 9)])
    np.testing.assert_array_equal(out, region * 9)
    assert changed == 3


def test_png_image_bounds():
    for values, dtype in (([0, 255], np.uint8), ([0, 256], np.uint16), ([0, 65535], np.uint16)):
        out = png_image(np.array([values], np.int64))
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, [values])
    with pytest.raises(InvalidInputError, match=r"\[0, 65536\]; a label PNG stores 0..65535"):
        png_image(np.array([[0, 65536]], np.int64))
    # integral floats are integer labels
    out = png_image(np.array([[0.0, 3.0]], np.float64))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[0, 3]])
    empty = png_image(np.zeros((0, 4), np.int64))
    assert empty.dtype == np.uint8 and empty.shape == (0, 4)


def test_png_image_refuses_rgb_masks_of_other_dtypes_naming_the_mask():
    with pytest.raises(InvalidInputError) as err:
        png_image(np.zeros((2, 2, 3), np.int32), where=WHERE)
    assert str(err.value).startswith(f"{WHERE} is an RGB mask of dtype int32")
