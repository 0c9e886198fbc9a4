"""Pasting regions into label masks, on hand-written arrays."""

import numpy as np
import pytest

from segqual_fo.adapters.masks import LabelMapping
from segqual_fo.errors import InvalidInputError
from segqual_fo.writers.fixes import RegionPatch, class_values, paste_regions, png_image


def _mapping(**kw):
    return LabelMapping.from_targets(**kw).resolve(3)


def test_class_values_invert_the_mapping():
    assert class_values(_mapping()) == {0: 0, 1: 1, 2: 2}
    assert class_values(_mapping(mask_targets={0: "a", 1: "b", 2: "c"})) == {0: 0, 1: 1, 2: 2}
    coded = _mapping(mask_targets={0: "a", 64: "b", 128: "c", 200: "b"}, classes=["a", "b", "c"])
    assert class_values(coded) == {0: 0, 1: 64, 2: 128}  # the smallest value of "b"
    rgb = _mapping(mask_targets={"#000000": "a", "#ff8000": "b", "#0000ff": "c"})
    assert class_values(rgb) == {0: (0, 0, 0), 1: (255, 128, 0), 2: (0, 0, 255)}
    partial = _mapping(mask_targets={0: "a", 7: "c"}, classes=["a", "b", "c"])
    assert class_values(partial) == {0: 0, 2: 7}  # "b" has no stored value
    with pytest.raises(InvalidInputError, match="resolve"):
        class_values(LabelMapping.from_targets())


def test_paste_sets_exactly_the_region_pixels():
    base = np.zeros((4, 6), np.uint8)
    base[0, 0] = 9
    region = np.array([[1, 0], [1, 1], [0, 1]], bool)  # rows 1-3, columns 3-4
    patch = RegionPatch([3 / 6, 1 / 4, 2 / 6, 3 / 4], region, 7)
    out, changed = paste_regions(base, [patch])
    expected = base.copy()
    expected[1, 3] = expected[2, 3] = expected[2, 4] = expected[3, 4] = 7
    np.testing.assert_array_equal(out, expected)
    assert changed == 4 and out.dtype == np.uint8
    assert base[1, 3] == 0  # the input is not modified
    again, changed = paste_regions(out, [patch])
    np.testing.assert_array_equal(again, expected)
    assert changed == 0


def test_paste_keeps_16_bit_and_rgb():
    base16 = np.full((2, 2), 1000, np.uint16)
    out, changed = paste_regions(base16, [RegionPatch([0, 0, 0.5, 1], np.ones((2, 1), bool), 300)])
    assert out.dtype == np.uint16 and changed == 2
    np.testing.assert_array_equal(out, [[300, 1000], [300, 1000]])
    rgb = np.zeros((2, 2, 3), np.uint8)
    out, changed = paste_regions(rgb, [RegionPatch([0.5, 0.5, 0.5, 0.5], np.ones((1, 1), bool), (255, 0, 1))])
    assert changed == 1
    np.testing.assert_array_equal(out[1, 1], [255, 0, 1])
    assert not out[0].any() and not out[1, 0].any()


def test_paste_refusals():
    base = np.zeros((4, 4), np.uint8)
    with pytest.raises(InvalidInputError, match="does not fit its 4x4 label mask"):
        paste_regions(base, [RegionPatch([0, 0, 0.5, 0.5], np.ones((3, 3), bool), 1)])
    with pytest.raises(InvalidInputError, match="does not fit"):
        paste_regions(base, [RegionPatch([0.75, 0, 0.5, 0.25], np.ones((1, 2), bool), 1)])
    with pytest.raises(InvalidInputError, match="cannot hold it"):
        paste_regions(base, [RegionPatch([0, 0, 0.25, 0.25], np.ones((1, 1), bool), 300)])
    with pytest.raises(InvalidInputError, match="an RGB colour into a mask of shape"):
        paste_regions(base, [RegionPatch([0, 0, 0.25, 0.25], np.ones((1, 1), bool), (1, 2, 3))])
    with pytest.raises(InvalidInputError, match="a grayscale value"):
        paste_regions(np.zeros((4, 4, 3), np.uint8), [RegionPatch([0, 0, 0.25, 0.25], np.ones((1, 1), bool), 1)])


def test_png_image():
    m = np.array([[0, 1], [2, 3]], np.uint8)
    assert png_image(m) is m
    assert png_image(np.array([[0, 300]], np.int64)).dtype == np.uint16
    assert png_image(np.array([[0, 3]], np.int64)).dtype == np.uint8
    assert png_image(np.array([[True, False]])).dtype == np.uint8
    rgb = np.zeros((1, 1, 3), np.uint8)
    rgb[0, 0] = (1, 2, 3)
    np.testing.assert_array_equal(png_image(rgb)[0, 0], [3, 2, 1])  # OpenCV writes BGR
    with pytest.raises(InvalidInputError, match="0..65535"):
        png_image(np.array([[-1]], np.int32))
    with pytest.raises(InvalidInputError, match="non-integer"):
        png_image(np.array([[0.5]]))
