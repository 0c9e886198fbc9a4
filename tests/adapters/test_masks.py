"""LabelMapping: how stored mask values become class indices.

Every expected value here is written out by hand from the rules in the
docstring of :mod:`segqual_fo.adapters.masks`.
"""

import re

import numpy as np
import pytest

from segqual_fo.adapters.masks import VOID_VALUE, LabelMapping, hex_to_int, rgb_to_int, void_value
from segqual_fo.errors import InvalidInputError, InvalidLabelsError

WHITE = 0xFFFFFF


def _rgb(rows):
    """(H,W,3) uint8 colour mask from rows of (r, g, b) tuples."""
    return np.array(rows, dtype=np.uint8)


# --------------------------------------------------------------- void_value


@pytest.mark.parametrize("k, expected", [(0, 255), (1, 255), (254, 255), (255, 65535), (256, 65535), (1000, 65535)])
def test_void_value(k, expected):
    assert void_value(k) == expected


def test_void_constant():
    assert VOID_VALUE == 255


# ------------------------------------------------------------ colour helpers


def test_hex_to_int():
    assert hex_to_int("#ff0000") == 16711680
    assert hex_to_int("#00FF00") == 65280
    assert hex_to_int("#000001") == 1


def test_hex_to_int_rejects_non_hex():
    with pytest.raises(InvalidInputError, match=r"'#gggggg' is not a '#rrggbb' colour"):
        hex_to_int("#gggggg")


def test_rgb_to_int():
    out = rgb_to_int(_rgb([[(255, 0, 0), (0, 255, 0)], [(0, 0, 255), (1, 2, 3)]]))
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [[16711680, 65280], [255, 66051]])


# ------------------------------------------------------------- from_targets


def test_no_targets_no_classes_is_identity_with_unknown_k():
    m = LabelMapping.from_targets()
    assert m.classes is None
    assert m.num_classes is None
    assert m.value_to_class is None
    assert m.rgb is False
    assert m.ignore_values == ()
    assert m.ignore_classes == ()
    assert m.default_void is True
    assert m.resolved is False


def test_integer_targets_name_the_classes_of_the_identity_mapping():
    m = LabelMapping.from_targets(mask_targets={0: "bg", 1: "cat", 3: "dog"})
    assert m.classes == ["bg", "cat", "2", "dog"]
    assert m.num_classes == 4
    assert m.value_to_class is None
    assert m.rgb is False
    assert m.default_void is True


def test_integer_targets_keyed_by_strings_are_read_as_ints():
    # FiftyOne stores mask target keys as strings in some paths
    m = LabelMapping.from_targets(mask_targets={"0": "bg", "2": "car"})
    assert m.classes == ["bg", "1", "car"]
    assert m.value_to_class is None


def test_target_names_are_made_strings():
    m = LabelMapping.from_targets(mask_targets={0: 7, 1: "b"})
    assert m.classes == ["7", "b"]


def test_classes_with_targets_map_values_to_channels():
    m = LabelMapping.from_targets(mask_targets={0: "bg", 128: "road", 255: "car"}, classes=["bg", "road", "car"])
    assert m.classes == ["bg", "road", "car"]
    assert m.value_to_class == {0: 0, 128: 1, 255: 2}
    assert m.rgb is False


def test_classes_order_decides_channels_not_targets_order():
    m = LabelMapping.from_targets(mask_targets={0: "bg", 128: "road", 200: "car"}, classes=["car", "bg", "road"])
    assert m.value_to_class == {0: 1, 128: 2, 200: 0}


def test_targets_naming_no_class_are_left_out_of_the_value_mapping():
    m = LabelMapping.from_targets(mask_targets={0: "bg", 1: "a", 2: "other"}, classes=["bg", "a"])
    assert m.value_to_class == {0: 0, 1: 1}


def test_classes_without_targets_is_identity():
    m = LabelMapping.from_targets(classes=["a", "b", "c"])
    assert m.classes == ["a", "b", "c"]
    assert m.value_to_class is None


def test_rgb_targets_order_is_class_order():
    m = LabelMapping.from_targets(mask_targets={"#000000": "bg", "#ff0000": "car", "#00ff00": "road"})
    assert m.rgb is True
    assert m.classes == ["bg", "car", "road"]
    assert m.value_to_class == {0: 0, 16711680: 1, 65280: 2}
    assert m.default_void is False  # 255 is a colour (#0000ff), never void


def test_rgb_default_void_is_off_even_when_asked():
    m = LabelMapping.from_targets(mask_targets={"#000000": "bg"}, default_void=True)
    assert m.default_void is False


def test_rgb_targets_sharing_a_name_are_one_class():
    m = LabelMapping.from_targets(mask_targets={"#000000": "bg", "#010101": "bg", "#ff0000": "car"})
    assert m.classes == ["bg", "car"]
    assert m.value_to_class == {0: 0, 65793: 0, 16711680: 1}


def test_rgb_targets_with_classes_follow_classes():
    m = LabelMapping.from_targets(
        mask_targets={"#000000": "bg", "#ff0000": "car", "#00ff00": "road"}, classes=["road", "car", "bg"]
    )
    assert m.classes == ["road", "car", "bg"]
    assert m.value_to_class == {0: 2, 16711680: 1, 65280: 0}


def test_rgb_target_naming_no_class_is_unmapped():
    m = LabelMapping.from_targets(mask_targets={"#000000": "bg", "#ff0000": "car"}, classes=["bg"])
    assert m.value_to_class == {0: 0}


def test_rgb_uppercase_hex():
    m = LabelMapping.from_targets(mask_targets={"#FF0000": "car"})
    assert m.value_to_class == {16711680: 0}


def test_default_void_false_is_kept():
    m = LabelMapping.from_targets(mask_targets={0: "a"}, default_void=False)
    assert m.default_void is False


def test_duplicate_class_names():
    with pytest.raises(InvalidInputError, match=r"classes holds duplicate names: \['a', 'b', 'a'\]"):
        LabelMapping.from_targets(classes=["a", "b", "a"])


def test_mixed_rgb_and_int_targets():
    with pytest.raises(InvalidInputError, match="mask_targets mix '#rrggbb' colours and integer values"):
        LabelMapping.from_targets(mask_targets={"#ff0000": "car", 1: "road"})


def test_target_keys_neither_int_nor_colour():
    with pytest.raises(InvalidInputError, match=r"mask_targets keys must be ints or '#rrggbb': \['road'\]"):
        LabelMapping.from_targets(mask_targets={"road": "x"})


def test_bad_hex_colour_target():
    with pytest.raises(InvalidInputError, match="is not a '#rrggbb' colour"):
        LabelMapping.from_targets(mask_targets={"#zzzzzz": "x"})


# ------------------------------------------------------------------- ignore


def test_ignore_a_value_scalar():
    m = LabelMapping.from_targets(ignore=255)
    assert m.ignore_values == (255,)
    assert m.ignore_classes == ()


def test_ignore_values_are_sorted_and_deduplicated():
    m = LabelMapping.from_targets(ignore=[300, 255, 300, 7])
    assert m.ignore_values == (7, 255, 300)


def test_ignore_numpy_values():
    m = LabelMapping.from_targets(ignore=np.array([255, 9]))
    assert m.ignore_values == (9, 255)


def test_ignore_colour_that_is_no_class_is_a_value():
    m = LabelMapping.from_targets(ignore=["#000000"], mask_targets={"#ffffff": "a"})
    assert m.ignore_values == (0,)


def test_ignore_class_name_of_identity_targets():
    m = LabelMapping.from_targets(mask_targets={0: "bg", 1: "void", 2: "car"}, ignore="void")
    assert m.ignore_classes == (1,)
    assert m.ignore_values == ()


def test_ignore_class_name_of_classes():
    m = LabelMapping.from_targets(classes=["bg", "void", "car"], ignore=["car", "void"])
    assert m.ignore_classes == (1, 2)


def test_ignore_target_name_that_is_not_a_class():
    m = LabelMapping.from_targets(
        mask_targets={0: "bg", 1: "a", 255: "unlabeled"}, classes=["bg", "a"], ignore="unlabeled"
    )
    assert m.ignore_values == (255,)
    assert m.ignore_classes == ()


def test_ignore_target_name_shared_by_several_values():
    m = LabelMapping.from_targets(
        mask_targets={0: "bg", 1: "a", 254: "void", 255: "void"}, classes=["bg", "a"], ignore="void"
    )
    assert m.ignore_values == (254, 255)


def test_ignore_rgb_target_name_that_is_not_a_class():
    m = LabelMapping.from_targets(
        mask_targets={"#000000": "bg", "#ffffff": "unlabeled"}, classes=["bg"], ignore="unlabeled"
    )
    assert m.ignore_values == (WHITE,)
    assert m.ignore_classes == ()


def test_ignore_a_mapped_value_ignores_its_class():
    # CamVid: "void" = 11 is a 3rd channel here; its pixels are excluded
    m = LabelMapping.from_targets(mask_targets={0: "bg", 1: "a", 11: "void"}, classes=["bg", "a", "void"], ignore=11)
    assert m.ignore_classes == (2,)
    assert m.ignore_values == ()


def test_ignore_an_unmapped_value_with_a_value_mapping():
    m = LabelMapping.from_targets(mask_targets={0: "bg", 128: "a"}, classes=["bg", "a"], ignore=[1])
    assert m.ignore_values == (1,)
    assert m.ignore_classes == ()


def test_ignore_rgb_colour_of_a_class_and_of_no_class():
    m = LabelMapping.from_targets(mask_targets={"#000000": "bg", "#ff0000": "car"}, ignore=["#ff0000", "#ffffff"])
    assert m.ignore_classes == (1,)
    assert m.ignore_values == (WHITE,)


def test_ignore_value_below_k_of_identity_waits_for_resolve():
    m = LabelMapping.from_targets(ignore=[0])
    assert m.ignore_values == (0,)
    assert m.ignore_classes == ()


def test_ignore_unknown_name_lists_known_names():
    with pytest.raises(
        InvalidInputError,
        match=r"ignore_index names 'sky', which is neither a class nor a mask target; "
        r"known names: \['a', 'bg', 'unlabeled'\]",
    ):
        LabelMapping.from_targets(mask_targets={0: "bg", 1: "a", 255: "unlabeled"}, classes=["bg", "a"], ignore="sky")


def test_ignore_name_without_any_names():
    with pytest.raises(InvalidInputError, match=r"ignore_index names 'void'.*known names: \[\]"):
        LabelMapping.from_targets(ignore="void")


@pytest.mark.parametrize("bad", [True, False, np.bool_(True), None])
def test_ignore_rejects_bools_and_none_items(bad):
    with pytest.raises(InvalidInputError, match="ignore_index values must be mask values or class names, got"):
        LabelMapping.from_targets(ignore=[bad])


def test_ignore_scalar_bool():
    with pytest.raises(InvalidInputError, match="got True"):
        LabelMapping.from_targets(ignore=True)


def test_ignore_rejects_unconvertible_items():
    with pytest.raises(InvalidInputError, match=r"ignore_index values must be mask values or class names, got \{\}"):
        LabelMapping.from_targets(ignore=[{}])


# ------------------------------------------------------------------ resolve


def test_resolve_identity_fills_names_and_voids_255():
    m = LabelMapping.from_targets().resolve(3)
    assert m.classes == ["0", "1", "2"]
    assert m.num_classes == 3
    assert m.value_to_class is None
    assert m.ignore_values == (255,)
    assert m.ignore_classes == ()
    assert m.resolved is True
    assert m.default_void is False


def test_resolve_keeps_target_names_and_fills_the_rest():
    m = LabelMapping.from_targets(mask_targets={0: "bg", 2: "car"}).resolve(5)
    assert m.classes == ["bg", "1", "car", "3", "4"]


def test_resolve_returns_a_new_mapping():
    base = LabelMapping.from_targets()
    resolved = base.resolve(2)
    assert base.resolved is False
    assert base.classes is None
    assert resolved is not base


def test_resolve_ignored_value_below_k_becomes_an_ignored_class():
    m = LabelMapping.from_targets(ignore=[0, 300]).resolve(3)
    assert m.ignore_classes == (0,)
    assert m.ignore_values == (255, 300)


def test_resolve_ignored_value_k_is_not_a_class():
    m = LabelMapping.from_targets(ignore=[3]).resolve(3)
    assert m.ignore_classes == ()
    assert m.ignore_values == (3, 255)


def test_resolve_negative_ignore_value_stays_a_value():
    m = LabelMapping.from_targets(ignore=[-1]).resolve(3)
    assert m.ignore_classes == ()
    assert m.ignore_values == (-1, 255)


def test_resolve_keeps_class_names_ignored_before():
    m = LabelMapping.from_targets(mask_targets={0: "bg", 1: "void"}, ignore="void").resolve(2)
    assert m.ignore_classes == (1,)
    assert m.ignore_values == (255,)


def test_resolve_255_is_void_while_not_a_class():
    assert LabelMapping.from_targets().resolve(255).ignore_values == (255,)


def test_resolve_255_is_a_class_from_256_classes():
    m = LabelMapping.from_targets().resolve(256)
    assert m.ignore_values == ()
    assert m.ignore_classes == ()
    assert m.classes[255] == "255"


def test_resolve_explicitly_ignored_255_becomes_a_class_ignore_when_it_is_a_class():
    m = LabelMapping.from_targets(ignore=255).resolve(256)
    assert m.ignore_classes == (255,)
    assert m.ignore_values == ()


def test_resolve_default_void_false():
    m = LabelMapping.from_targets(default_void=False).resolve(3)
    assert m.ignore_values == ()


def test_resolve_value_mapping_default_void_false():
    m = LabelMapping.from_targets(mask_targets={0: "a", 1: "b"}, classes=["a", "b"], default_void=False).resolve(2)
    assert m.ignore_values == ()


def test_resolve_value_mapping_voids_255_when_unmapped():
    m = LabelMapping.from_targets(mask_targets={0: "bg", 128: "a"}, classes=["bg", "a"]).resolve(2)
    assert m.ignore_values == (255,)
    assert m.value_to_class == {0: 0, 128: 1}
    assert m.classes == ["bg", "a"]


def test_resolve_value_mapping_keeps_255_when_it_is_a_class():
    m = LabelMapping.from_targets(mask_targets={0: "bg", 255: "a"}, classes=["bg", "a"]).resolve(2)
    assert m.ignore_values == ()


def test_resolve_value_mapping_keeps_ignores():
    m = LabelMapping.from_targets(
        mask_targets={0: "bg", 11: "void"}, classes=["bg", "void"], ignore=[11, 7]
    ).resolve(2)
    assert m.ignore_classes == (1,)
    assert m.ignore_values == (7, 255)


def test_resolve_rgb_never_voids_255():
    m = LabelMapping.from_targets(mask_targets={"#000000": "bg", "#ff0000": "car"}).resolve(2)
    assert m.ignore_values == ()
    assert m.rgb is True
    assert m.value_to_class == {0: 0, 16711680: 1}


def test_resolve_too_many_target_names_for_k():
    with pytest.raises(
        InvalidInputError,
        match=r"the mask targets name 6 classes \(values 0\.\.5\) but the probabilities have K=4 channels",
    ):
        LabelMapping.from_targets(mask_targets={0: "a", 5: "b"}).resolve(4)


def test_resolve_exactly_as_many_target_names_as_k():
    assert LabelMapping.from_targets(mask_targets={0: "a", 5: "b"}).resolve(6).classes == ["a", "1", "2", "3", "4", "b"]


def test_resolve_class_list_longer_than_k_without_targets():
    with pytest.raises(InvalidInputError, match="K=2"):
        LabelMapping.from_targets(classes=["a", "b", "c"]).resolve(2)


def test_resolve_class_list_shorter_than_k_without_targets():
    # Rule 1: with ``classes``, channel k is classes[k]; resolve raises when
    # "the class list and K disagree". Two names for three channels is such
    # a disagreement, so it must not be padded with "2".
    with pytest.raises(InvalidInputError, match="K=3"):
        LabelMapping.from_targets(classes=["a", "b"]).resolve(3)


def test_resolve_class_list_length_mismatch_with_targets():
    with pytest.raises(
        InvalidInputError,
        match=r"the probabilities have K=3 channels but the class list has 2 classes \(\['a', 'b'\]\); ",
    ):
        LabelMapping.from_targets(mask_targets={0: "a", 1: "b"}, classes=["a", "b"]).resolve(3)


def test_resolve_mismatch_message_shortens_long_class_lists():
    names = [f"c{i}" for i in range(9)]
    targets = {i: n for i, n in enumerate(names)}
    with pytest.raises(
        InvalidInputError,
        match=r"class list has 9 classes \(\['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7'\]\.\.\.\)",
    ):
        LabelMapping.from_targets(mask_targets=targets, classes=names).resolve(3)


def test_resolve_mismatch_message_of_eight_classes_is_complete():
    names = [f"c{i}" for i in range(8)]
    targets = {i: n for i, n in enumerate(names)}
    with pytest.raises(InvalidInputError, match=r"'c7'\]\); probability channel k must be class k"):
        LabelMapping.from_targets(mask_targets=targets, classes=names).resolve(3)


def test_resolve_rgb_class_count_mismatch():
    with pytest.raises(InvalidInputError, match="K=3 channels but the class list has 2 classes"):
        LabelMapping.from_targets(mask_targets={"#000000": "bg", "#ff0000": "car"}).resolve(3)


# --------------------------------------------------------- sentinel / ignore


@pytest.mark.parametrize("k, expected", [(1, 255), (254, 255), (255, 65535), (300, 65535)])
def test_sentinel(k, expected):
    assert LabelMapping.from_targets().resolve(k).sentinel == expected


def test_sentinel_before_k_is_known():
    assert LabelMapping.from_targets().sentinel == 255


def test_core_ignore():
    assert LabelMapping.from_targets().resolve(3).core_ignore == (255,)
    assert LabelMapping.from_targets(ignore=[2, 0]).resolve(3).core_ignore == (0, 2, 255)
    assert LabelMapping.from_targets(ignore=[7]).resolve(300).core_ignore == (7, 65535)


# ------------------------------------------------------------------- decode


def test_decode_before_resolve():
    with pytest.raises(InvalidInputError, match=r"call LabelMapping\.resolve\(K\) before decode\(\)"):
        LabelMapping.from_targets().decode(np.zeros((2, 2), np.uint8))


def test_decode_identity():
    m = LabelMapping.from_targets().resolve(3)
    out = m.decode(np.array([[0, 1], [2, 255]], dtype=np.uint8))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[0, 1], [2, 255]])


def test_decode_identity_returns_a_copy():
    m = LabelMapping.from_targets().resolve(3)
    mask = np.array([[0, 1], [2, 0]], dtype=np.uint8)
    out = m.decode(mask)
    out[0, 0] = 2
    np.testing.assert_array_equal(mask, [[0, 1], [2, 0]])


def test_decode_identity_converts_wide_ints():
    m = LabelMapping.from_targets().resolve(3)
    out = m.decode(np.array([[0, 2]], dtype=np.int64))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[0, 2]])


def test_decode_identity_ignored_values_become_the_sentinel():
    m = LabelMapping.from_targets(ignore=[300, -1]).resolve(3)
    out = m.decode(np.array([[0, 300], [-1, 255]], dtype=np.int32))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[0, 255], [255, 255]])


def test_decode_identity_ignored_class_keeps_its_index():
    m = LabelMapping.from_targets(ignore=[1]).resolve(3)
    np.testing.assert_array_equal(m.decode(np.array([[0, 1, 2]], dtype=np.uint8)), [[0, 1, 2]])
    assert m.core_ignore == (1, 255)


def test_decode_identity_unknown_value():
    m = LabelMapping.from_targets().resolve(3)
    with pytest.raises(
        InvalidLabelsError,
        match=r"^mask holds mask values \[3, 7\] that are neither classes \(3 classes\) nor ignored\. "
        r"Pass ignore_index=\[\.\.\.\] to skip them, or add them to mask_targets / classes\.$",
    ):
        m.decode(np.array([[0, 7], [3, 7]], dtype=np.uint8))


def test_decode_identity_negative_value_is_unknown():
    m = LabelMapping.from_targets().resolve(3)
    with pytest.raises(InvalidLabelsError, match=r"mask values \[-1\]"):
        m.decode(np.array([[0, -1]], dtype=np.int16))


def test_decode_255_without_default_void_is_unknown():
    m = LabelMapping.from_targets(default_void=False).resolve(3)
    with pytest.raises(InvalidLabelsError, match=r"mask values \[255\]"):
        m.decode(np.array([[0, 255]], dtype=np.uint8))


def test_decode_error_names_where():
    m = LabelMapping.from_targets().resolve(2)
    with pytest.raises(InvalidLabelsError, match=r"^sample 65a1 \(path /x\.png\) holds mask values \[5\]"):
        m.decode(np.array([[5]], dtype=np.uint8), where="sample 65a1 (path /x.png)")


def test_decode_unknown_values_shows_ten_then_ellipsis():
    m = LabelMapping.from_targets().resolve(3)
    with pytest.raises(
        InvalidLabelsError, match=r"mask values \[3, 4, 5, 6, 7, 8, 9, 10, 11, 12\], \.\.\. that are neither"
    ):
        m.decode(np.arange(3, 15, dtype=np.uint8).reshape(3, 4))  # 12 unknown values


def test_decode_unknown_values_exactly_ten_has_no_ellipsis():
    m = LabelMapping.from_targets().resolve(3)
    with pytest.raises(
        InvalidLabelsError, match=r"mask values \[3, 4, 5, 6, 7, 8, 9, 10, 11, 12\] that are neither"
    ):
        m.decode(np.arange(3, 13, dtype=np.uint8).reshape(2, 5))


def test_decode_value_mapping():
    m = LabelMapping.from_targets(mask_targets={0: "bg", 128: "road", 200: "car"}, classes=["bg", "road", "car"]).resolve(3)
    out = m.decode(np.array([[0, 128], [200, 255]], dtype=np.uint8))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[0, 1], [2, 255]])


def test_decode_value_mapping_with_255_as_class():
    m = LabelMapping.from_targets(mask_targets={0: "bg", 128: "road", 255: "car"}, classes=["car", "bg", "road"]).resolve(3)
    np.testing.assert_array_equal(m.decode(np.array([[0, 128, 255]], dtype=np.uint8)), [[1, 2, 0]])


def test_decode_value_mapping_unknown_values():
    m = LabelMapping.from_targets(mask_targets={0: "bg", 128: "road"}, classes=["bg", "road"]).resolve(2)
    with pytest.raises(InvalidLabelsError, match=r"mask values \[7, 129\] that are neither classes \(2 classes\)"):
        m.decode(np.array([[0, 7], [129, 128]], dtype=np.uint8))


def test_decode_value_above_every_key_is_unknown():
    m = LabelMapping.from_targets(mask_targets={0: "bg", 128: "road"}, classes=["bg", "road"], default_void=False).resolve(2)
    with pytest.raises(InvalidLabelsError, match=r"mask values \[200\]"):
        m.decode(np.array([[200, 0]], dtype=np.uint8))


def test_decode_value_of_a_target_naming_no_class_is_unknown():
    m = LabelMapping.from_targets(mask_targets={0: "bg", 1: "a", 2: "other"}, classes=["bg", "a"]).resolve(2)
    with pytest.raises(InvalidLabelsError, match=r"mask values \[2\]"):
        m.decode(np.array([[0, 1, 2]], dtype=np.uint8))


def test_decode_value_mapping_ignored_values_become_the_sentinel():
    m = LabelMapping.from_targets(mask_targets={0: "bg", 128: "road"}, classes=["bg", "road"], ignore=[7]).resolve(2)
    out = m.decode(np.array([[0, 7], [255, 128]], dtype=np.uint8))
    np.testing.assert_array_equal(out, [[0, 255], [255, 1]])


def test_decode_value_mapping_ignored_class_keeps_its_index():
    m = LabelMapping.from_targets(mask_targets={0: "bg", 11: "void"}, classes=["bg", "void"], ignore=11).resolve(2)
    np.testing.assert_array_equal(m.decode(np.array([[0, 11]], dtype=np.uint8)), [[0, 1]])
    assert m.core_ignore == (1, 255)


def test_decode_empty_value_mapping():
    # targets that name no class leave no mapped value: every pixel must be ignored
    m = LabelMapping.from_targets(mask_targets={5: "zzz"}, classes=["a"], ignore=[5]).resolve(1)
    assert m.value_to_class == {}
    np.testing.assert_array_equal(m.decode(np.array([[5, 255]], dtype=np.uint8)), [[255, 255]])
    with pytest.raises(InvalidLabelsError, match=r"mask values \[0\]"):
        m.decode(np.array([[0, 5]], dtype=np.uint8))


def test_decode_rgb():
    m = LabelMapping.from_targets(mask_targets={"#000000": "bg", "#ff0000": "car", "#00ff00": "road"}).resolve(3)
    out = m.decode(_rgb([[(0, 0, 0), (255, 0, 0)], [(0, 255, 0), (255, 0, 0)]]))
    assert out.dtype == np.uint8
    assert out.shape == (2, 2)
    np.testing.assert_array_equal(out, [[0, 1], [2, 1]])


def test_decode_rgba_uses_the_colour_channels():
    m = LabelMapping.from_targets(mask_targets={"#000000": "bg", "#ff0000": "car"}).resolve(2)
    rgba = np.array([[(255, 0, 0, 7), (0, 0, 0, 255)]], dtype=np.uint8)
    np.testing.assert_array_equal(m.decode(rgba), [[1, 0]])


def test_decode_rgb_unknown_colour_is_shown_as_hex():
    m = LabelMapping.from_targets(mask_targets={"#000000": "bg", "#ff0000": "car"}).resolve(2)
    with pytest.raises(
        InvalidLabelsError, match=r"mask holds mask values \['#0000ff', '#0a0b0c'\] that are neither classes \(2 classes\)"
    ):
        m.decode(_rgb([[(0, 0, 255), (10, 11, 12), (0, 0, 0)]]))


def test_decode_rgb_ignored_colour_becomes_the_sentinel():
    m = LabelMapping.from_targets(mask_targets={"#000000": "bg", "#ff0000": "car"}, ignore="#ffffff").resolve(2)
    np.testing.assert_array_equal(m.decode(_rgb([[(255, 255, 255), (255, 0, 0)]])), [[255, 1]])


def test_decode_rgb_needs_a_colour_mask():
    m = LabelMapping.from_targets(mask_targets={"#000000": "bg"}).resolve(1)
    with pytest.raises(
        InvalidLabelsError, match=r"^m1 has shape \(2, 2\); RGB mask targets need \(H, W, 3\) colour masks\.$"
    ):
        m.decode(np.zeros((2, 2), np.uint8), where="m1")


def test_decode_rgb_two_channels_is_not_a_colour_mask():
    m = LabelMapping.from_targets(mask_targets={"#000000": "bg"}).resolve(1)
    with pytest.raises(InvalidLabelsError, match=r"has shape \(2, 2, 2\); RGB mask targets need"):
        m.decode(np.zeros((2, 2, 2), np.uint8))


@pytest.mark.parametrize("channels", [3, 4])
def test_decode_colour_image_with_integer_targets(channels):
    m = LabelMapping.from_targets().resolve(3)
    with pytest.raises(
        InvalidLabelsError,
        match=rf"^mask is a colour image \(2, 2, {channels}\) but the mask targets are integers; "
        r"give '#rrggbb' mask targets for RGB masks\.$",
    ):
        m.decode(np.zeros((2, 2, channels), np.uint8))


@pytest.mark.parametrize("shape", [(4,), (2, 2, 2), (1, 2, 2, 1)])
def test_decode_wrong_ndim(shape):
    m = LabelMapping.from_targets().resolve(3)
    with pytest.raises(InvalidLabelsError, match=rf"^mask has shape {re.escape(str(shape))}; expected \(H, W\)\.$"):
        m.decode(np.zeros(shape, np.uint8))


def test_decode_float_mask_with_integer_values():
    m = LabelMapping.from_targets().resolve(3)
    out = m.decode(np.array([[0.0, 1.0], [2.0, 255.0]], dtype=np.float32))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[0, 1], [2, 255]])


def test_decode_float_mask_with_value_mapping():
    m = LabelMapping.from_targets(mask_targets={0: "bg", 128: "road"}, classes=["bg", "road"]).resolve(2)
    np.testing.assert_array_equal(m.decode(np.array([[128.0, 0.0]])), [[1, 0]])


def test_decode_float_mask_with_non_integer_values():
    m = LabelMapping.from_targets().resolve(3)
    with pytest.raises(InvalidLabelsError, match=r"^sample x holds non-integer values\.$"):
        m.decode(np.array([[0.0, 1.5]]), where="sample x")


def test_decode_bool_mask():
    m = LabelMapping.from_targets().resolve(2)
    out = m.decode(np.array([[True, False], [False, True]]))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[1, 0], [0, 1]])


def test_decode_bool_mask_with_one_class_is_unknown():
    m = LabelMapping.from_targets().resolve(1)
    with pytest.raises(InvalidLabelsError, match=r"mask values \[1\]"):
        m.decode(np.array([[True, False]]))


def test_decode_accepts_lists():
    m = LabelMapping.from_targets().resolve(3)
    np.testing.assert_array_equal(m.decode([[0, 2]]), [[0, 2]])


def test_decode_output_dtype_254_classes_is_uint8():
    m = LabelMapping.from_targets().resolve(254)
    out = m.decode(np.array([[253, 255]], dtype=np.uint8))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[253, 255]])


def test_decode_output_dtype_255_classes_is_uint16():
    m = LabelMapping.from_targets().resolve(255)
    out = m.decode(np.array([[254, 255]], dtype=np.uint8))
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, [[254, 65535]])  # 255 is void, not a class


def test_decode_output_dtype_uint16_with_many_classes():
    m = LabelMapping.from_targets(ignore=[1000]).resolve(300)
    out = m.decode(np.array([[0, 255], [299, 1000]], dtype=np.uint16))
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, [[0, 255], [299, 65535]])


def test_decode_value_mapping_uint16_output():
    names = [f"c{i}" for i in range(300)]
    targets = {1000 + i: n for i, n in enumerate(names)}
    m = LabelMapping.from_targets(mask_targets=targets, classes=names).resolve(300)
    out = m.decode(np.array([[1000, 1299], [1256, 255]], dtype=np.uint16))
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, [[0, 299], [256, 65535]])


def test_every_ignore_item_after_a_target_name_still_counts():
    # "unlabeled" is a mask target, not a class: it adds its value (255) and
    # the items after it must still be read (a class name, a plain value)
    m = LabelMapping.from_targets(
        mask_targets={0: "bg", 1: "a", 2: "b", 255: "unlabeled"},
        classes=["bg", "a", "b"],
        ignore=["unlabeled", "b", 7],
    )
    assert set(m.ignore_values) == {255, 7}
    assert set(m.ignore_classes) == {2}
