"""segqual_fo.adapters.labels: mask files and instance records to label masks.

Every expected mask is typed in by hand from the rules in the module
docstring: boxes are ``[x, y, w, h]`` relative to the image; the pixel box of
an object is columns ``round(x * W) .. round((x + w) * W) - 1`` and rows
``round(y * H) .. round((y + h) * H) - 1``; uncovered pixels are void (255);
larger objects are painted first so smaller ones stay visible; crowd objects
are void except where another object covers them; an instance mask is pasted
at its own size unless it disagrees with its box by more than one pixel
(then it is resized to the box, nearest neighbour). Images are not square
(W=8, H=4 unless said otherwise) so swapping x and y changes the numbers.
"""

import cv2
import numpy as np
import pytest

from segqual_fo.adapters.labels import Instance, instances_to_mask, read_mask_file
from segqual_fo.errors import FiftyOneInputError, InvalidFileError

V = 255  # void
CLASSES = {"bg": 0, "cat": 1, "dog": 2, "cup": 3}


def _mask(instances, size=(8, 4), **kw):
    return instances_to_mask(instances, size, CLASSES, **kw)


# ----------------------------------------------------------- read_mask_file


def test_read_gray_8_bit_png_as_stored(tmp_path):
    path = str(tmp_path / "m.png")
    cv2.imwrite(path, np.array([[0, 1, 255], [7, 11, 200]], np.uint8))
    m = read_mask_file(path)
    assert m.dtype == np.uint8 and m.shape == (2, 3)
    np.testing.assert_array_equal(m, [[0, 1, 255], [7, 11, 200]])


def test_read_16_bit_png_as_stored(tmp_path):
    path = str(tmp_path / "m.png")
    cv2.imwrite(path, np.array([[0, 256, 65535], [300, 1, 254]], np.uint16))
    m = read_mask_file(path)
    assert m.dtype == np.uint16
    np.testing.assert_array_equal(m, [[0, 256, 65535], [300, 1, 254]])


def test_read_rgb_png_returns_rgb_not_bgr(tmp_path):
    path = str(tmp_path / "m.png")
    rgb = np.array([[(255, 0, 0), (0, 255, 0)], [(0, 0, 255), (1, 2, 3)]], np.uint8)
    cv2.imwrite(path, rgb[:, :, ::-1])  # OpenCV writes BGR
    m = read_mask_file(path)
    assert m.shape == (2, 2, 3)
    np.testing.assert_array_equal(m, rgb)


def test_read_rgba_png_drops_alpha_and_returns_rgb(tmp_path):
    path = str(tmp_path / "m.png")
    # BGRA as OpenCV writes it: pixel (0,0) is R=10 G=20 B=30 A=40
    bgra = np.array([[(30, 20, 10, 40), (3, 2, 1, 255)]], np.uint8)
    cv2.imwrite(path, bgra)
    m = read_mask_file(path)
    assert m.shape == (1, 2, 3)
    np.testing.assert_array_equal(m, [[(10, 20, 30), (1, 2, 3)]])


def test_read_gray_alpha_png_gives_gray_in_all_three_channels(tmp_path):
    from PIL import Image

    path = str(tmp_path / "m.png")
    la = np.zeros((1, 3, 2), np.uint8)
    la[0, :, 0] = [5, 6, 7]
    la[0, :, 1] = 9
    Image.fromarray(la, "LA").save(path)
    m = read_mask_file(path)
    assert m.shape == (1, 3, 3)
    np.testing.assert_array_equal(m, [[(5, 5, 5), (6, 6, 6), (7, 7, 7)]])


def test_read_missing_file(tmp_path):
    with pytest.raises(InvalidFileError, match=r"mask file .*nope\.png does not exist"):
        read_mask_file(str(tmp_path / "nope.png"))


def test_read_file_that_is_not_an_image(tmp_path):
    path = tmp_path / "m.png"
    path.write_bytes(b"not a png at all")
    with pytest.raises(InvalidFileError, match=r"cannot read mask file"):
        read_mask_file(str(path))


# ------------------------------------------------------ boxes and instances


def test_no_instances_is_all_void():
    for instances in (None, []):
        out = _mask(instances)
        assert out.dtype == np.uint8 and out.shape == (4, 8)
        np.testing.assert_array_equal(out, np.full((4, 8), V))


def test_box_only_instance_fills_its_box():
    # x: 0.25 * 8 = 2 .. 0.75 * 8 = 6 -> columns 2..5; y: 0.25 * 4 = 1 ..
    # 0.75 * 4 = 3 -> rows 1..2
    out = _mask([Instance("cat", (0.25, 0.25, 0.5, 0.5))])
    expected = np.array(
        [
            [V, V, V, V, V, V, V, V],
            [V, V, 1, 1, 1, 1, V, V],
            [V, V, 1, 1, 1, 1, V, V],
            [V, V, V, V, V, V, V, V],
        ]
    )
    np.testing.assert_array_equal(out, expected)


def test_box_edges_are_rounded_not_truncated():
    # W=10, H=5. x = 0.16 * 10 = 1.6 -> 2; x + w = 0.46 * 10 = 4.6 -> 5:
    # columns 2..4. y = 0.3 * 5 = 1.5 -> 2 (half to even), y + h = 0.7 * 5 =
    # 3.5 -> 4: rows 2..3. (truncation would give columns 1..3, rows 1..2)
    out = instances_to_mask([Instance("dog", (0.16, 0.3, 0.3, 0.4))], (10, 5), CLASSES)
    expected = np.full((5, 10), V)
    expected[2:4, 2:5] = 2
    np.testing.assert_array_equal(out, expected)


def test_box_end_is_rounded_from_x_plus_w():
    # W=10: x = 0.16 -> 1.6 -> 2; round(w * W) = round(2.6) = 3 would end at 5,
    # but the end is round((x + w) * W) = round(4.2) = 4: columns 2..3
    out = instances_to_mask([Instance("dog", (0.16, 0.0, 0.26, 1.0))], (10, 1), CLASSES)
    np.testing.assert_array_equal(out, [[V, V, 2, 2, V, V, V, V, V, V]])


def test_zero_size_box_paints_nothing():
    out = _mask(
        [
            Instance("cat", (0.5, 0.5, 0.0, 0.0)),
            Instance("dog", (0.25, 0.0, 0.0, 1.0)),  # zero width, full height
            Instance("cup", (0.0, 0.5, 1.0, 0.0)),  # full width, zero height
            Instance("bg", (0.5, 0.0, -0.25, 1.0)),  # negative width
        ]
    )
    np.testing.assert_array_equal(out, np.full((4, 8), V))


@pytest.mark.parametrize(
    "box",
    [
        (1.25, 0.0, 0.25, 1.0),  # right of the image
        (0.0, 1.5, 1.0, 0.25),  # below it
        (1.0, 1.0, 0.5, 0.5),  # past the bottom-right corner
        (-0.5, 0.0, 0.25, 1.0),  # left of it
    ],
)
def test_box_outside_the_image_paints_nothing(box):
    out = _mask([Instance("cat", box), Instance("dog", box, mask=np.ones((3, 3), bool))])
    np.testing.assert_array_equal(out, np.full((4, 8), V))


def test_masked_box_of_zero_width_or_height_shows_one_column_or_row():
    # the box rounds to columns 2..1 (width 0), rows 0..3; its 4x4 mask is
    # more than a rounding pixel off, so it is resized to the box with the
    # width raised to one column (as a one-column mask pasted at its own
    # size would show)
    out = _mask([Instance("dog", (0.25, 0.0, 0.01, 1.0), mask=np.ones((4, 4), bool))])
    expected = np.full((4, 8), V)
    expected[:, 2] = 2
    np.testing.assert_array_equal(out, expected)
    # the same for a zero height: columns 4..7, rows 1..0 -> one row
    out = _mask([Instance("cat", (0.5, 0.25, 0.5, 0.01), mask=np.ones((4, 4), bool))])
    expected = np.full((4, 8), V)
    expected[1, 4:8] = 1
    np.testing.assert_array_equal(out, expected)


def test_box_past_the_bottom_right_edge_is_clipped():
    # x 6 .. round(1.25 * 8) = 10 -> columns 6, 7 (8, 9 are outside);
    # y 3 .. round(1.5 * 4) = 6 -> row 3
    out = _mask([Instance("cup", (0.75, 0.75, 0.5, 0.75))])
    expected = np.full((4, 8), V)
    expected[3, 6:8] = 3
    np.testing.assert_array_equal(out, expected)


def test_box_before_the_top_left_edge_is_clipped():
    # x -2 .. 2 -> columns 0, 1; y -1 .. 1 -> row 0
    out = _mask([Instance("cup", (-0.25, -0.25, 0.5, 0.5))])
    expected = np.full((4, 8), V)
    expected[0, 0:2] = 3
    np.testing.assert_array_equal(out, expected)


def test_instance_mask_clipped_at_the_edge_keeps_its_top_left_part():
    # box columns 6..9, rows 2..5 of an 8x4 image: only columns 6, 7 and
    # rows 2, 3 are inside, so the mask's top-left 2x2 is pasted
    mask = np.array(
        [
            [1, 0, 1, 1],
            [0, 1, 1, 1],
            [1, 1, 1, 1],
            [1, 1, 1, 1],
        ],
        bool,
    )
    out = _mask([Instance("cat", (0.75, 0.5, 0.5, 1.0), mask=mask)])
    expected = np.full((4, 8), V)
    expected[2, 6] = 1
    expected[3, 7] = 1
    np.testing.assert_array_equal(out, expected)


def test_instance_mask_clipped_at_the_top_left_keeps_its_bottom_right_part():
    # box columns -2..1, rows -2..1: the mask's rows 2, 3 and columns 2, 3
    # land on image rows 0, 1 and columns 0, 1
    mask = np.array(
        [
            [1, 1, 1, 1],
            [1, 1, 1, 1],
            [1, 1, 0, 1],
            [1, 1, 1, 0],
        ],
        bool,
    )
    out = _mask([Instance("cat", (-0.25, -0.5, 0.5, 1.0), mask=mask)])
    expected = np.full((4, 8), V)
    expected[0, 1] = 1
    expected[1, 0] = 1
    np.testing.assert_array_equal(out, expected)


def test_instance_mask_is_pasted_at_the_box_corner():
    # box columns 2..5, rows 1..2
    mask = np.array([[1, 0, 0, 1], [0, 1, 1, 0]], np.uint8)  # any integer type
    out = _mask([Instance("dog", (0.25, 0.25, 0.5, 0.5), mask=mask)])
    expected = np.array(
        [
            [V, V, V, V, V, V, V, V],
            [V, V, 2, V, V, 2, V, V],
            [V, V, V, 2, 2, V, V, V],
            [V, V, V, V, V, V, V, V],
        ]
    )
    np.testing.assert_array_equal(out, expected)


def test_mask_one_pixel_larger_than_its_box_is_pasted_at_its_own_size():
    # box columns 2..5, rows 1..2 (2x4); the mask is 3x5 (one more row and
    # column, a rounding pixel): pasted as is, its extra row and column
    # included, not squeezed into the box
    mask = np.array(
        [
            [1, 0, 0, 0, 0],
            [0, 0, 0, 0, 0],
            [0, 0, 1, 0, 1],
        ],
        bool,
    )
    out = _mask([Instance("dog", (0.25, 0.25, 0.5, 0.5), mask=mask)])
    expected = np.full((4, 8), V)
    expected[1, 2] = 2
    expected[3, 4] = 2
    expected[3, 6] = 2
    np.testing.assert_array_equal(out, expected)


def test_mask_two_rows_taller_than_its_box_is_resized_nearest():
    # box rows 1..2, columns 2..5 (2x4); the mask is 4x4: resized to 2 rows
    # with nearest neighbour (OpenCV: row r of the result is source row
    # floor(r * 4 / 2) = 0, 2)
    mask = np.array(
        [
            [1, 1, 0, 0],
            [0, 0, 0, 0],
            [0, 1, 1, 0],
            [1, 1, 1, 1],
        ],
        bool,
    )
    out = _mask([Instance("dog", (0.25, 0.25, 0.5, 0.5), mask=mask)])
    expected = np.array(
        [
            [V, V, V, V, V, V, V, V],
            [V, V, 2, 2, V, V, V, V],
            [V, V, V, 2, 2, V, V, V],
            [V, V, V, V, V, V, V, V],
        ]
    )
    np.testing.assert_array_equal(out, expected)


def test_mask_two_columns_wider_than_its_box_is_resized_nearest():
    # box rows 1..2, columns 2..5 (2x4); the mask is 2x6: columns
    # floor(c * 6 / 4) = 0, 1, 3, 4 are kept
    mask = np.array(
        [
            [1, 0, 1, 0, 0, 1],
            [0, 1, 0, 1, 1, 0],
        ],
        bool,
    )
    out = _mask([Instance("dog", (0.25, 0.25, 0.5, 0.5), mask=mask)])
    expected = np.array(
        [
            [V, V, V, V, V, V, V, V],
            [V, V, 2, V, V, V, V, V],
            [V, V, V, 2, 2, 2, V, V],
            [V, V, V, V, V, V, V, V],
        ]
    )
    np.testing.assert_array_equal(out, expected)


def test_mask_much_smaller_than_its_box_is_upscaled_to_it():
    # box rows 0..3, columns 0..7; the 2x2 mask is scaled x4 / x2 (nearest)
    mask = np.array([[1, 0], [0, 1]], bool)
    out = _mask([Instance("cup", (0.0, 0.0, 1.0, 1.0), mask=mask)])
    expected = np.array(
        [
            [3, 3, 3, 3, V, V, V, V],
            [3, 3, 3, 3, V, V, V, V],
            [V, V, V, V, 3, 3, 3, 3],
            [V, V, V, V, 3, 3, 3, 3],
        ]
    )
    np.testing.assert_array_equal(out, expected)


# ------------------------------------------------------------- paint order


def test_smaller_box_stays_visible_on_a_larger_one_whatever_the_order():
    big = Instance("bg", (0.0, 0.0, 1.0, 1.0))
    small = Instance("cat", (0.25, 0.25, 0.25, 0.5))  # columns 2..3, rows 1..2
    expected = np.zeros((4, 8), int)
    expected[1:3, 2:4] = 1
    np.testing.assert_array_equal(_mask([small, big]), expected)
    np.testing.assert_array_equal(_mask([big, small]), expected)


def test_area_of_a_masked_instance_is_its_mask_fill_not_its_box():
    # "cat": a whole-image box whose mask has one pixel, (row 1, column 2):
    # area 1/32 of the image. "dog": box columns 0..3, rows 0..3, filled:
    # area 1/2. The cat is smaller, so it is painted last and its pixel wins
    # (by box size alone the dog would be painted last and cover it).
    cat_mask = np.zeros((4, 8), bool)
    cat_mask[1, 2] = True
    cat = Instance("cat", (0.0, 0.0, 1.0, 1.0), mask=cat_mask)
    dog = Instance("dog", (0.0, 0.0, 0.5, 1.0))
    expected = np.full((4, 8), V)
    expected[:, 0:4] = 2
    expected[1, 2] = 1
    np.testing.assert_array_equal(_mask([cat, dog]), expected)
    np.testing.assert_array_equal(_mask([dog, cat]), expected)


def test_area_of_a_masked_instance_scales_with_its_box():
    # both masks are half full; "cat"'s box is 1/4 of the image (area 1/8),
    # "dog"'s box 1/2 (area 1/4): dog first, cat on top where they overlap
    half = np.array([[1, 1], [0, 0]], bool)  # the top half of its box (resized)
    cat = Instance("cat", (0.0, 0.0, 0.5, 0.5), mask=half)  # columns 0..3, rows 0..1
    dog = Instance("dog", (0.0, 0.0, 1.0, 0.5), mask=half)  # columns 0..7, rows 0..1
    expected = np.full((4, 8), V)
    expected[0, :] = 2
    expected[0, 0:4] = 1
    np.testing.assert_array_equal(_mask([cat, dog]), expected)
    np.testing.assert_array_equal(_mask([dog, cat]), expected)


def test_area_of_a_box_is_its_width_times_its_height():
    # "cat": row 1, columns 0..7 (w 1, h 1/4: area 1/4); "dog": columns
    # 2..3, rows 0..1 (w 1/4, h 1/2: area 1/8). The dog is smaller and
    # stays visible where they overlap (row 1, columns 2..3).
    cat = Instance("cat", (0.0, 0.25, 1.0, 0.25))
    dog = Instance("dog", (0.25, 0.0, 0.25, 0.5))
    expected = np.full((4, 8), V)
    expected[1, :] = 1
    expected[0:2, 2:4] = 2
    np.testing.assert_array_equal(_mask([cat, dog]), expected)
    np.testing.assert_array_equal(_mask([dog, cat]), expected)
    # "cat": row 1, columns 0..3 (area 1/2 * 1/4 = 1/8); "dog": columns
    # 2..3, all rows (area 1/4 * 1 = 1/4): now the cat is on top
    cat = Instance("cat", (0.0, 0.25, 0.5, 0.25))
    dog = Instance("dog", (0.25, 0.0, 0.25, 1.0))
    expected = np.full((4, 8), V)
    expected[:, 2:4] = 2
    expected[1, 0:4] = 1
    np.testing.assert_array_equal(_mask([cat, dog]), expected)
    np.testing.assert_array_equal(_mask([dog, cat]), expected)


def test_area_of_a_one_pixel_mask():
    # "cat": a 1x1 mask in the box of pixel (row 1, column 2): area
    # 1/1 * 1/8 * 1/4 = 1/32. "dog": a box-only object over the same pixel,
    # 0.8 pixel wide (columns round(2) .. round(2.8) - 1 = 2): area
    # 0.1 * 1/4 = 1/40, smaller, so it is painted last and wins
    cat = Instance("cat", (0.25, 0.25, 0.125, 0.25), mask=np.ones((1, 1), bool))
    dog = Instance("dog", (0.25, 0.25, 0.1, 0.25))
    expected = np.full((4, 8), V)
    expected[1, 2] = 2
    np.testing.assert_array_equal(_mask([cat, dog]), expected)
    np.testing.assert_array_equal(_mask([dog, cat]), expected)


def test_unknown_label_is_refused_with_the_sample_named():
    with pytest.raises(FiftyOneInputError, match=r"sample 42 has a detection labelled 'horse'.*4 classes"):
        _mask([Instance("horse", (0.0, 0.0, 0.5, 0.5))], where="sample 42")


# ------------------------------------------------------------------- crowds


def test_crowd_is_void_except_where_another_object_covers_it():
    # crowd over the whole left half (columns 0..3); "cat" box columns 2..5,
    # rows 1..2 covers part of it. The crowd's own label is not a class
    # (crowd labels are never looked up).
    crowd = Instance("people", (0.0, 0.0, 0.5, 1.0), iscrowd=True)
    cat = Instance("cat", (0.25, 0.25, 0.5, 0.5))
    expected = np.array(
        [
            [V, V, V, V, V, V, V, V],
            [V, V, 1, 1, 1, 1, V, V],
            [V, V, 1, 1, 1, 1, V, V],
            [V, V, V, V, V, V, V, V],
        ]
    )
    np.testing.assert_array_equal(_mask([crowd, cat]), expected)
    np.testing.assert_array_equal(_mask([cat, crowd]), expected)


def test_crowd_under_an_object_that_fills_the_image_changes_nothing():
    # "bg" fills the image; a crowd covers columns 0..3; "cat" (columns
    # 2..5, rows 1..2) is on top. Every crowd pixel is covered by bg, so no
    # pixel becomes void.
    bg = Instance("bg", (0.0, 0.0, 1.0, 1.0))
    crowd = Instance("people", (0.0, 0.0, 0.5, 1.0), iscrowd=True)
    cat = Instance("cat", (0.25, 0.25, 0.5, 0.5))
    expected = np.zeros((4, 8), int)
    expected[1:3, 2:6] = 1
    np.testing.assert_array_equal(_mask([crowd, bg, cat]), expected)


def test_crowd_sees_what_every_object_covered_not_only_the_last_one():
    # "bg" (columns 0..3, rows 0..3) is painted first; then "cat", a box of
    # columns 0..3, rows 0..1 whose mask covers only its left two columns.
    # The crowd (columns 0..3, rows 0..1) is covered everywhere by bg, so
    # nothing becomes void, also where cat's mask is empty.
    bg = Instance("bg", (0.0, 0.0, 0.5, 1.0))
    cat = Instance("cat", (0.0, 0.0, 0.5, 0.5), mask=np.array([[1, 1, 0, 0], [1, 1, 0, 0]], bool))
    crowd = Instance("people", (0.0, 0.0, 0.5, 0.5), iscrowd=True)
    expected = np.full((4, 8), V)
    expected[:, 0:4] = 0
    expected[0:2, 0:2] = 1
    np.testing.assert_array_equal(_mask([bg, cat, crowd]), expected)


def test_crowd_alone_leaves_the_callers_void_value():
    # a crowd with an instance mask and nothing else: every pixel is the
    # caller's void value (77), not the default 255
    crowd = Instance("people", (0.0, 0.0, 1.0, 1.0), mask=np.ones((4, 8), bool), iscrowd=True)
    out = _mask([crowd], void=77)
    np.testing.assert_array_equal(out, np.full((4, 8), 77))


def test_only_crowds_give_an_all_void_mask():
    crowd = Instance("people", (0.25, 0.25, 0.5, 0.5), iscrowd=True)
    np.testing.assert_array_equal(_mask([crowd]), np.full((4, 8), V))


# ------------------------------------------------------------- void, dtype


def test_custom_void_value_fills_uncovered_pixels():
    out = _mask([Instance("cat", (0.0, 0.0, 0.25, 0.25))], void=200)
    assert out.dtype == np.uint8
    expected = np.full((4, 8), 200)
    expected[0, 0:2] = 1
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("void, dtype", [(0, np.uint8), (255, np.uint8), (256, np.uint16), (65535, np.uint16)])
def test_mask_dtype_follows_the_void_value(void, dtype):
    out = _mask([Instance("dog", (0.0, 0.0, 0.25, 0.25))], void=void)
    assert out.dtype == dtype
    expected = np.full((4, 8), void)
    expected[0, 0:2] = 2
    np.testing.assert_array_equal(out, expected)


def test_class_index_above_255_with_a_16_bit_void():
    classes = {"c300": 300, "c254": 254}
    out = instances_to_mask(
        [Instance("c300", (0.0, 0.0, 0.5, 1.0)), Instance("c254", (0.0, 0.0, 0.25, 0.5))],
        (4, 2),
        classes,
        void=65535,
    )
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, [[254, 300, 65535, 65535], [300, 300, 65535, 65535]])
