"""Issue regions on synthetic masks with objects at known positions.

Expected boxes are written by hand as ``[x, y, w, h]`` relative to the image:
x and w come from columns (divided by W), y and h from rows (divided by H).
Images are deliberately not square (H=10, W=20) so that swapping x and y, or
w and h, changes the numbers.
"""

import numpy as np
import pytest

from segqual_fo.writers.regions import find_regions

H, W = 10, 20
#: what the pipeline puts in ``pred`` where the model agrees with the label
SENTINEL = 255


def _arrays():
    issues = np.zeros((H, W), bool)
    labels = np.zeros((H, W), np.int64)
    pred = np.full((H, W), SENTINEL, np.int64)
    scores = np.ones((H, W), np.float32)
    return issues, labels, pred, scores


def _box(x, y, w, h):
    return pytest.approx([x / W, y / H, w / W, h / H], abs=1e-12)


def test_rectangle():
    issues, labels, pred, scores = _arrays()
    # rows 2..4, columns 5..9: x=5, y=2, w=5, h=3
    issues[2:5, 5:10] = True
    labels[2:5, 5:10] = 3
    pred[2:5, 5:10] = 1
    scores[2:5, 5:10] = 0.25
    (r,) = find_regions(issues, labels, pred, scores)
    assert list(r.bounding_box) == _box(5, 2, 5, 3)
    assert list(r.bounding_box) == pytest.approx([0.25, 0.2, 0.25, 0.3])
    assert r.mask.shape == (3, 5) and r.mask.dtype == bool and r.mask.all()
    assert (r.given_class, r.predicted_class, r.area) == (3, 1, 15)
    assert r.mean_score == pytest.approx(0.25)


def test_l_shape_mask_and_mean_over_the_region_only():
    issues, labels, pred, scores = _arrays()
    # a vertical bar rows 1..6 x columns 3..4 and a foot rows 5..6 x
    # columns 5..11: box x=3, y=1, w=9, h=6; 12 + 14 = 26 pixels
    issues[1:7, 3:5] = True
    issues[5:7, 5:12] = True
    labels[issues] = 2
    pred[issues] = 4
    scores[1:7, 3:5] = 0.0625
    scores[5:7, 5:12] = 0.03125
    # the box's other pixels score 1.0 (and are not issues): a mean over the
    # box would be pulled up to (12/16 + 14/32 + 28) / 54
    (r,) = find_regions(issues, labels, pred, scores)
    assert list(r.bounding_box) == _box(3, 1, 9, 6)
    expected_mask = np.array(
        [
            [1, 1, 0, 0, 0, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0, 0, 0, 0],
            [1, 1, 1, 1, 1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1, 1, 1, 1, 1],
        ],
        dtype=bool,
    )
    np.testing.assert_array_equal(r.mask, expected_mask)
    assert r.area == 26
    assert r.mean_score == pytest.approx((12 * 0.0625 + 14 * 0.03125) / 26, rel=1e-6)
    # classes are the region's, not the box's (the box is mostly label 0 and
    # pred SENTINEL)
    assert (r.given_class, r.predicted_class) == (2, 4)


def test_two_regions_largest_first_whatever_the_scan_order():
    issues, labels, pred, scores = _arrays()
    # a small region at the top (found first in raster order) ...
    issues[0:2, 15:17] = True  # 4 pixels
    labels[0:2, 15:17] = 1
    pred[0:2, 15:17] = 2
    scores[0:2, 15:17] = 0.5
    # ... and a larger one lower down
    issues[4:7, 1:4] = True  # 9 pixels
    labels[4:7, 1:4] = 5
    pred[4:7, 1:4] = 0
    scores[4:7, 1:4] = 0.125
    big, small = sorted(find_regions(issues, labels, pred, scores), key=lambda r: -r.area)
    assert (big.area, big.given_class, big.predicted_class) == (9, 5, 0)
    assert list(big.bounding_box) == _box(1, 4, 3, 3)
    assert big.mean_score == pytest.approx(0.125)
    assert (small.area, small.given_class, small.predicted_class) == (4, 1, 2)
    assert list(small.bounding_box) == _box(15, 0, 2, 2)
    assert small.mean_score == pytest.approx(0.5)


def test_diagonal_pixels_are_one_region_8_connectivity():
    issues, labels, pred, scores = _arrays()
    for i in range(4):  # (1,6), (2,7), (3,8), (4,9)
        issues[1 + i, 6 + i] = True
    labels[issues] = 1
    pred[issues] = 0
    scores[issues] = 0.0
    (r,) = find_regions(issues, labels, pred, scores)
    assert r.area == 4
    assert list(r.bounding_box) == _box(6, 1, 4, 4)
    np.testing.assert_array_equal(r.mask, np.eye(4, dtype=bool))
    assert r.mean_score == 0.0


def test_anti_diagonal_is_not_transposed():
    # pixels (row, col) = (0,12), (1,11), (2,10): the mask is an anti-diagonal
    # in a 3x3 box whose left column is 10; a transposed mask is the same
    # shape, so also use a non-square one below
    issues, labels, pred, scores = _arrays()
    issues[0, 12] = issues[1, 11] = issues[2, 10] = True
    issues[2, 9] = True  # widens the box to 4 columns
    labels[issues] = 1
    pred[issues] = 2
    (r,) = find_regions(issues, labels, pred, scores)
    assert list(r.bounding_box) == _box(9, 0, 4, 3)
    np.testing.assert_array_equal(
        r.mask,
        np.array([[0, 0, 0, 1], [0, 0, 1, 0], [1, 1, 0, 0]], dtype=bool),
    )


def test_region_at_the_image_border():
    issues, labels, pred, scores = _arrays()
    # bottom-right corner: rows 7..9, columns 16..19
    issues[7:, 16:] = True
    labels[issues] = 6
    pred[issues] = 2
    scores[issues] = 0.375
    (r,) = find_regions(issues, labels, pred, scores)
    assert list(r.bounding_box) == _box(16, 7, 4, 3)
    assert r.bounding_box[0] + r.bounding_box[2] == pytest.approx(1.0)
    assert r.bounding_box[1] + r.bounding_box[3] == pytest.approx(1.0)
    assert r.mask.shape == (3, 4) and r.mask.all()
    assert r.area == 12
    # and the top-left corner
    issues, labels, pred, scores = _arrays()
    issues[0:2, 0:1] = True
    labels[issues] = 1
    pred[issues] = 0
    (r,) = find_regions(issues, labels, pred, scores)
    assert list(r.bounding_box) == _box(0, 0, 1, 2)


def test_given_and_predicted_classes_are_the_majorities():
    issues, labels, pred, scores = _arrays()
    issues[3:6, 2:8] = True  # 18 pixels
    # given: 10 pixels say class 2, 8 say class 1
    labels[3:6, 2:8] = 1
    labels[3, 2:8] = 2
    labels[4, 2:6] = 2
    # predicted: 11 pixels class 4, 7 pixels class 3
    pred[3:6, 2:8] = 3
    pred[4:6, 2:8] = 4
    pred[4:5, 2:3] = 3  # back to 3: 12 - 1 = 11 for class 4, 6 + 1 = 7 for 3
    assert np.count_nonzero(labels[issues] == 2) == 10
    assert np.count_nonzero(pred[issues] == 4) == 11
    (r,) = find_regions(issues, labels, pred, scores)
    assert r.given_class == 2
    assert r.predicted_class == 4
    assert isinstance(r.given_class, int) and isinstance(r.predicted_class, int)


def test_min_area_keeps_regions_of_exactly_min_area():
    issues, labels, pred, scores = _arrays()
    issues[0:4, 0:4] = True  # 16 pixels
    issues[6:9, 10:15] = True  # 15 pixels
    issues[0:1, 18:20] = True  # 2 pixels
    labels[issues] = 1
    pred[issues] = 0
    # regions come most likely error first (see segqual_fo.core.regions); which are kept is checked by area
    areas = lambda **kw: sorted((r.area for r in find_regions(issues, labels, pred, scores, **kw)), reverse=True)  # noqa: E731
    assert areas() == [16, 15, 2]  # default min_area=1 keeps everything
    assert areas(min_area=16) == [16]
    assert areas(min_area=15) == [16, 15]
    assert areas(min_area=17) == []
    assert areas(min_area=2) == [16, 15, 2]
    assert areas(min_area=3) == [16, 15]
    ordered = [r.area for r in find_regions(issues, labels, pred, scores)]
    assert [r.area for r in find_regions(issues, labels, pred, scores, max_regions=2)] == ordered[:2]


def test_no_issues_no_regions():
    issues, labels, pred, scores = _arrays()
    assert find_regions(issues, labels, pred, scores, min_area=1) == []


def test_mean_score_skips_nothing_inside_the_region_and_nothing_outside():
    # one region whose pixels have four different scores; an ignored (NaN)
    # pixel right next to it inside the box must not count
    issues, labels, pred, scores = _arrays()
    issues[2:4, 2:4] = True
    issues[4, 4] = True  # diagonal neighbour: box becomes 3x3
    scores[2, 2], scores[2, 3], scores[3, 2], scores[3, 3], scores[4, 4] = 0.0, 0.25, 0.5, 0.75, 0.125
    scores[4, 2] = np.nan
    labels[issues] = 1
    pred[issues] = 0
    (r,) = find_regions(issues, labels, pred, scores)
    assert r.area == 5
    assert r.mean_score == pytest.approx((0.0 + 0.25 + 0.5 + 0.75 + 0.125) / 5)
    assert list(r.bounding_box) == _box(2, 2, 3, 3)


def test_another_region_inside_the_box_is_not_part_of_the_mask():
    # an L (rows 1-6 x cols 3-4, plus rows 5-6 x cols 5-11) and, in the
    # empty upper right of its box but not touching it, a separate 2x3
    # block (rows 1-2 x cols 8-10) with other classes and scores: the L's
    # mask, area, classes and mean must ignore it
    issues, labels, pred, scores = _arrays()
    issues[1:7, 3:5] = True
    issues[5:7, 5:12] = True
    labels[issues] = 2
    pred[issues] = 4
    scores[issues] = 0.25
    issues[1:3, 8:11] = True
    labels[1:3, 8:11] = 7
    pred[1:3, 8:11] = 6
    scores[1:3, 8:11] = 0.0
    big, small = sorted(find_regions(issues, labels, pred, scores), key=lambda r: -r.area)
    assert list(big.bounding_box) == _box(3, 1, 9, 6)
    expected = np.zeros((6, 9), bool)
    expected[:, 0:2] = True
    expected[4:6, :] = True
    np.testing.assert_array_equal(big.mask, expected)
    assert (big.area, big.given_class, big.predicted_class) == (26, 2, 4)
    assert big.mean_score == pytest.approx(0.25)
    assert list(small.bounding_box) == _box(8, 1, 3, 2)
    assert (small.area, small.given_class, small.predicted_class, small.mean_score) == (6, 7, 6, 0.0)
    assert small.mask.shape == (2, 3) and small.mask.all()


def test_defaults_keep_single_pixel_regions_and_at_most_100():
    # 11 x 11 = 121 isolated single pixels (every other row and column of a
    # 22x22 image: no two touch, even diagonally): the defaults min_area=1
    # and max_regions=100 keep exactly 100 one-pixel regions
    issues = np.zeros((22, 22), bool)
    issues[::2, ::2] = True
    labels = np.zeros((22, 22), np.int64)
    pred = np.zeros((22, 22), np.int64)
    scores = np.zeros((22, 22), np.float32)
    regions = find_regions(issues, labels, pred, scores)
    assert len(regions) == 100
    assert {r.area for r in regions} == {1}
    assert len(find_regions(issues, labels, pred, scores, max_regions=121)) == 121
    # fewer than 100 are all kept
    issues[12:, :] = False  # rows 0, 2, .., 10: 6 x 11 = 66 pixels
    assert len(find_regions(issues, labels, pred, scores)) == 66
