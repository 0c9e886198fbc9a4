"""segqual_fo.adapters.coco on tiny COCO files written by hand.

Annotations are uncompressed RLE (``{"counts": [...], "size": [H, W]}``,
column-major runs starting with background), built from boolean masks typed
in here, so pycocotools decodes exactly the pixels written. Expected label
masks are typed in by hand from the rules in the module docstring: class k
is the k-th category (whatever its id), uncovered pixels are void, larger
annotations (by their ``area`` field) are painted first, crowds are void
except where another object covers them. The image is 3x4 (H x W), not
square.
"""

import json

import numpy as np
import pytest

from segqual_fo.adapters.coco import coco_annotations_to_label_mask, coco_classes, load_coco
from segqual_fo.errors import InvalidFileError, InvalidInputError

H, W = 3, 4
V = 255
#: category ids deliberately not 0.. and not sorted: class k is the k-th entry
CATEGORIES = [{"id": 7, "name": "road"}, {"id": 2, "name": "car"}, {"id": 40, "name": "person"}]


def _rle(rows):
    """Uncompressed COCO RLE of a mask given as rows of 0/1 (column-major)."""
    flat = np.asarray(rows, dtype=np.uint8).flatten(order="F")
    counts, value, run = [], 0, 0
    for v in flat:
        if v == value:
            run += 1
        else:
            counts.append(run)
            value, run = v, 1
    counts.append(run)
    return {"counts": counts, "size": [len(rows), len(rows[0])]}


def _ann(ann_id, category_id, rows, *, area=None, iscrowd=None):
    a = {"id": ann_id, "image_id": 1, "category_id": category_id, "segmentation": _rle(rows)}
    a["area"] = float(np.count_nonzero(rows)) if area is None else area
    if area == "missing":
        del a["area"]
    if iscrowd is not None:
        a["iscrowd"] = iscrowd
    return a


def _coco(tmp_path, annotations, categories=CATEGORIES):
    path = tmp_path / "instances.json"
    path.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "a.jpg", "height": H, "width": W}],
                "annotations": annotations,
                "categories": categories,
            }
        )
    )
    coco = load_coco(str(path))
    names, index = coco_classes(coco)
    return coco, names, index


def test_rle_helper_is_column_major():
    assert _rle([[0, 1], [1, 1]]) == {"counts": [1, 3], "size": [2, 2]}
    assert _rle([[1, 0], [0, 0]]) == {"counts": [0, 1, 3], "size": [2, 2]}


def test_classes_follow_the_categories_order_not_their_ids(tmp_path):
    coco, names, index = _coco(tmp_path, [])
    assert names == ["road", "car", "person"]
    assert index == {7: 0, 2: 1, 40: 2}


def test_separate_objects_and_void(tmp_path):
    road = [[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]]
    car = [[0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    coco, _, index = _coco(tmp_path, [_ann(1, 7, road, iscrowd=0), _ann(2, 2, car, iscrowd=0)])
    out = coco_annotations_to_label_mask(coco, 1, index)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[V, 1, 1, V], [V, 1, 1, V], [0, 0, 0, 0]])


def test_annotation_without_iscrowd_is_an_ordinary_object(tmp_path):
    person = [[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    coco, _, index = _coco(tmp_path, [_ann(1, 40, person)])
    assert "iscrowd" not in coco.anns[1]
    out = coco_annotations_to_label_mask(coco, 1, index)
    np.testing.assert_array_equal(out, [[2, V, V, V], [2, V, V, V], [V, V, V, V]])


def test_smaller_object_is_painted_over_the_larger_one(tmp_path):
    road = [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]  # area 12
    car = [[0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]]  # area 2
    expected = [[0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    for anns in ([_ann(1, 7, road), _ann(2, 2, car)], [_ann(2, 2, car), _ann(1, 7, road)]):
        coco, _, index = _coco(tmp_path, anns)
        np.testing.assert_array_equal(coco_annotations_to_label_mask(coco, 1, index), expected)


def test_paint_order_follows_the_area_field(tmp_path):
    # the "car" mask has more pixels, but its area field says 1: it is
    # painted last and wins where the two overlap
    road = [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]]
    car = [[0, 1, 1, 1], [0, 1, 1, 1], [0, 1, 1, 1]]
    expected = [[0, 1, 1, 1], [0, 1, 1, 1], [V, 1, 1, 1]]
    for anns in ([_ann(1, 7, road, area=4.0), _ann(2, 2, car, area=1.0)],
                 [_ann(2, 2, car, area=1.0), _ann(1, 7, road, area=4.0)]):
        coco, _, index = _coco(tmp_path, anns)
        np.testing.assert_array_equal(coco_annotations_to_label_mask(coco, 1, index), expected)


def test_annotation_without_area_counts_as_area_zero(tmp_path):
    # no area field: 0, smaller than a 0.5 area, so painted last (on top)
    road = [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]]
    car = [[0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    expected = [[0, 1, 1, V], [0, 1, 1, V], [V, V, V, V]]
    for anns in ([_ann(1, 7, road, area=0.5), _ann(2, 2, car, area="missing")],
                 [_ann(2, 2, car, area="missing"), _ann(1, 7, road, area=0.5)]):
        coco, _, index = _coco(tmp_path, anns)
        assert "area" not in coco.anns[2]
        np.testing.assert_array_equal(coco_annotations_to_label_mask(coco, 1, index), expected)


def test_crowd_is_void_except_where_an_object_covers_it(tmp_path):
    crowd = [[1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0]]
    car = [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0]]
    road = [[0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 1]]
    anns = [_ann(1, 40, crowd, iscrowd=1), _ann(2, 2, car, iscrowd=0), _ann(3, 7, road, iscrowd=0)]
    coco, _, index = _coco(tmp_path, anns)
    out = coco_annotations_to_label_mask(coco, 1, index)
    np.testing.assert_array_equal(out, [[V, V, V, V], [V, 1, 1, V], [0, 1, 1, 0]])


def test_crowd_with_an_unknown_category_is_still_void(tmp_path):
    # crowds are never looked up in the categories: their pixels are void
    crowd = [[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    car = [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]
    coco, _, index = _coco(tmp_path, [_ann(1, 999, crowd, iscrowd=1), _ann(2, 2, car)])
    out = coco_annotations_to_label_mask(coco, 1, index)
    np.testing.assert_array_equal(out, [[V, V, V, V], [V, V, V, V], [V, V, V, 1]])


def test_explicit_void_value_is_used(tmp_path):
    car = [[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
    coco, _, index = _coco(tmp_path, [_ann(1, 2, car), _ann(2, 40, [[1, 0, 0, 0]] + [[0] * 4] * 2, iscrowd=1)])
    out = coco_annotations_to_label_mask(coco, 1, index, void=9)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[9, 9, 9, 9], [9, 1, 9, 9], [9, 9, 9, 9]])


@pytest.mark.parametrize("void, dtype", [(0, np.uint8), (255, np.uint8), (256, np.uint16), (65535, np.uint16)])
def test_mask_dtype_follows_an_explicit_void(tmp_path, void, dtype):
    car = [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1]]
    coco, _, index = _coco(tmp_path, [_ann(1, 2, car)])
    out = coco_annotations_to_label_mask(coco, 1, index, void=void)
    assert out.dtype == dtype
    expected = np.full((H, W), void)
    expected[2, 2:4] = 1
    np.testing.assert_array_equal(out, expected)


def _many_categories(n):
    return [{"id": 1000 + k, "name": f"c{k}"} for k in range(n)]


def test_254_categories_use_void_255_in_uint8(tmp_path):
    cats = _many_categories(254)
    c253 = [[0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]]
    coco, _, index = _coco(tmp_path, [_ann(1, 1253, c253)], categories=cats)
    out = coco_annotations_to_label_mask(coco, 1, index)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[V, V, V, V], [V, V, V, V], [253, V, V, V]])


def test_255_categories_use_void_65535_in_uint16(tmp_path):
    # class 254 would collide with a 255 void only from 256 classes on, but
    # 255 itself is a class from 256 categories: the rule switches at 255
    cats = _many_categories(255)
    c254 = [[0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]]
    coco, _, index = _coco(tmp_path, [_ann(1, 1254, c254)], categories=cats)
    out = coco_annotations_to_label_mask(coco, 1, index)
    assert out.dtype == np.uint16
    X = 65535
    np.testing.assert_array_equal(out, [[X, X, X, X], [X, X, X, X], [254, X, X, X]])


def test_300_categories_class_299_survives_in_uint16(tmp_path):
    cats = _many_categories(300)
    coco, _, index = _coco(tmp_path, [_ann(1, 1299, [[0, 0, 0, 1]] + [[0] * 4] * 2)], categories=cats)
    out = coco_annotations_to_label_mask(coco, 1, index)
    assert out.dtype == np.uint16
    assert out[0, 3] == 299 and out[0, 0] == 65535


def test_unknown_category_of_an_object_is_refused(tmp_path):
    coco, _, index = _coco(tmp_path, [_ann(5, 3, [[1, 0, 0, 0]] + [[0] * 4] * 2)])
    with pytest.raises(InvalidInputError, match=r"annotation 5 of image 1 has category_id 3, which is not in categories"):
        coco_annotations_to_label_mask(coco, 1, index)


def test_unknown_image_is_refused(tmp_path):
    coco, _, index = _coco(tmp_path, [])
    with pytest.raises(InvalidInputError, match=r"image id 2 is not in the COCO file"):
        coco_annotations_to_label_mask(coco, 2, index)


def test_image_without_annotations_is_all_void(tmp_path):
    coco, _, index = _coco(tmp_path, [])
    out = coco_annotations_to_label_mask(coco, 1, index)
    assert out.shape == (H, W) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.full((H, W), V))


# ------------------------------------------------------------- the file


def test_load_missing_file(tmp_path):
    with pytest.raises(InvalidFileError, match=r"COCO annotations file .*nope\.json does not exist"):
        load_coco(str(tmp_path / "nope.json"))


@pytest.mark.parametrize("text", ["{not json", '{"images": [{"no_id": 1}], "annotations": [], "categories": []}'])
def test_load_malformed_file(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(InvalidFileError, match=r"cannot read COCO annotations"):
        load_coco(str(path))


def test_load_is_quiet(tmp_path, capsys):
    _coco(tmp_path, [])
    assert capsys.readouterr().out == ""


def test_no_categories_is_refused(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    with pytest.raises(InvalidInputError, match=r"the COCO file has no categories"):
        coco_classes(load_coco(str(path)))


def test_duplicate_category_names_are_refused(tmp_path):
    path = tmp_path / "c.json"
    cats = [{"id": 1, "name": "car"}, {"id": 2, "name": "car"}]
    path.write_text(json.dumps({"images": [], "annotations": [], "categories": cats}))
    with pytest.raises(InvalidInputError, match=r"COCO category names are not unique"):
        coco_classes(load_coco(str(path)))


def test_category_names_are_strings(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"images": [], "annotations": [], "categories": [{"id": 3, "name": 12}]}))
    names, index = coco_classes(load_coco(str(path)))
    assert names == ["12"] and index == {3: 0}
