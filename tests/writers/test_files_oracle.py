"""Heatmap and issue-mask images against hand-written arrays.

The README promises: heatmap value ``round(255 * (1 - pixel score))`` with
ignored (NaN) and perfectly scored pixels 0 (transparent in the App), and an
issue mask whose value is the given class index + 1 (0 = no issue), 16-bit
once there are 255 classes or more. Expected arrays here are typed in by
hand, never computed with the library.
"""

import cv2
import numpy as np
import pytest

from segqual_fo.writers.files import heatmap_image, issue_mask_image, write_png_atomic

NAN = np.nan


def test_heatmap_values_are_rounded_255_times_one_minus_score():
    scores = np.array([[1.0, 0.0, 0.5, 0.75], [0.25, 1 / 16, 1 / 32, 15 / 16]], dtype=np.float32)
    # 255 * (1 - s): 0, 255, 127.5, 63.75 / 191.25, 239.0625, 247.03125, 15.9375
    # 127.5 -> 128 whichever way halves go (half-up and numpy's half-to-even
    # agree; floor would give 127), 63.75 -> 64 and 15.9375 -> 16 (floor: 63, 15)
    expected = np.array([[0, 255, 128, 64], [191, 239, 247, 16]], dtype=np.uint8)
    out = heatmap_image(scores)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)


def test_heatmap_exact_binary_fractions():
    # every s here is an exact float32, so 255 * (1 - s) is exact and the
    # rounding is unambiguous
    s = np.array([[0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0]], dtype=np.float32)
    # 255, 223.125, 191.25, 159.375, 127.5, 95.625, 63.75, 31.875, 0
    expected = np.array([[255, 223, 191, 159, 128, 96, 64, 32, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(heatmap_image(s), expected)


def test_ignored_nan_pixels_are_transparent_zero():
    s = np.array([[NAN, 0.0, NAN], [1.0, NAN, 0.5]], dtype=np.float32)
    expected = np.array([[0, 255, 0], [0, 0, 128]], dtype=np.uint8)
    np.testing.assert_array_equal(heatmap_image(s), expected)


def test_all_ignored_image_is_all_zero():
    s = np.full((3, 5), NAN, dtype=np.float32)
    np.testing.assert_array_equal(heatmap_image(s), np.zeros((3, 5), np.uint8))


def test_scores_slightly_outside_unit_interval_are_clipped():
    # float rounding can give s a hair above 1 or below 0; the PNG must not
    # wrap around (uint8 of -5 or 257)
    s = np.array([[1.02, 1.0 + 1e-6, -1e-6, -0.01, -0.5, 1.5]], dtype=np.float32)
    expected = np.array([[0, 0, 255, 255, 255, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(heatmap_image(s), expected)


def test_heatmap_accepts_float64_and_float16():
    s = np.array([[0.5, 0.75, NAN]])
    for dtype in (np.float64, np.float16):
        np.testing.assert_array_equal(heatmap_image(s.astype(dtype)), [[128, 64, 0]])


def test_issue_mask_is_given_class_plus_one():
    labels = np.array(
        [
            [0, 1, 2, 3],
            [4, 0, 1, 2],
            [3, 3, 0, 4],
        ]
    )
    issues = np.array(
        [
            [True, False, True, False],
            [True, True, False, False],
            [False, True, True, False],
        ]
    )
    expected = np.array(
        [
            [1, 0, 3, 0],
            [5, 1, 0, 0],
            [0, 4, 1, 0],
        ],
        dtype=np.uint8,
    )
    out = issue_mask_image(issues, labels, num_classes=5)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)


def test_no_issues_is_all_zero_even_where_labels_are_not():
    labels = np.full((2, 3), 7)
    out = issue_mask_image(np.zeros((2, 3), bool), labels, num_classes=8)
    np.testing.assert_array_equal(out, np.zeros((2, 3), np.uint8))


def test_254_classes_fit_in_uint8():
    # the largest value is 253 + 1 = 254 < 256
    labels = np.array([[253, 0]])
    out = issue_mask_image(np.array([[True, True]]), labels, num_classes=254)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[254, 1]])


@pytest.mark.parametrize("num_classes", [255, 300])
def test_255_or_more_classes_use_uint16(num_classes):
    # class 254 + 1 = 255 would still fit, but 255 + 1 = 256 would wrap to 0
    # (an invisible issue) in uint8
    labels = np.array([[255, num_classes - 1, 3]])
    issues = np.array([[True, True, False]])
    out = issue_mask_image(issues, labels, num_classes=num_classes)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, [[256, num_classes, 0]])


def test_png_round_trip_is_bit_exact_8_bit(tmp_path):
    s = np.array([[NAN, 0.0, 0.5], [0.75, 1.0, 0.25]], dtype=np.float32)
    path = str(tmp_path / "out" / "h.png")
    write_png_atomic(path, heatmap_image(s))
    back = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint8 and back.shape == (2, 3)  # single channel
    np.testing.assert_array_equal(back, [[0, 255, 128], [64, 0, 191]])
    # nothing but the PNG is left in the directory (no temporary file)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["h.png"]


def test_png_round_trip_is_bit_exact_16_bit(tmp_path):
    labels = np.array([[299, 0], [255, 7]])
    issues = np.array([[True, True], [True, False]])
    path = str(tmp_path / "m.png")
    write_png_atomic(path, issue_mask_image(issues, labels, num_classes=300))
    back = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, [[300, 1], [256, 0]])


def test_png_overwrite_replaces_the_file(tmp_path):
    path = str(tmp_path / "h.png")
    write_png_atomic(path, np.full((2, 2), 9, np.uint8))
    write_png_atomic(path, np.array([[1, 2], [3, 4]], np.uint8))
    np.testing.assert_array_equal(cv2.imread(path, cv2.IMREAD_UNCHANGED), [[1, 2], [3, 4]])
