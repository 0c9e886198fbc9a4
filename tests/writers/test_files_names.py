"""Output file names and atomic writes (segqual_fo.writers.files).

The names are the contract between a run and the clean-up of later runs:
only files named ``<24 hex id>-<8 hex token>_<heatmap|issues>.png`` are ever
deleted, and a killed write leaves a ``.tmp-*.png`` in the output directory
itself (``sweep_orphans`` looks for exactly that; a temporary file elsewhere
would be missed, and ``os.replace`` cannot cross file systems).
"""

import os
import re

import cv2
import numpy as np
import pytest

from segqual_fo.errors import InvalidInputError
from segqual_fo.writers.files import (
    heatmap_image,
    is_own_output,
    output_path,
    parse_output_name,
    token_of,
    write_png_atomic,
)

SID = "65a1b2c3d4e5f60718293a4b"  # a FiftyOne sample id: 24 hex digits
TOKEN = "0badcafe"


# --------------------------------------------------------------- output_path


def test_output_path_layout():
    got = output_path("/out", "lq", SID, "heatmap", TOKEN)
    assert got == f"/out/lq/{SID}-{TOKEN}_heatmap.png"
    assert output_path("rel/dir", "my_field-2", "abc", "issues", "t") == "rel/dir/my_field-2/abc-t_issues.png"


@pytest.mark.parametrize(
    "bad, what",
    [
        (dict(sample_id="../../etc/x"), "sample id"),
        (dict(sample_id=""), "sample id"),
        (dict(sample_id="a" * 65), "sample id"),
        (dict(score_field="a/b"), "score_field"),
        (dict(score_field="a.b"), "score_field"),
        (dict(kind="heatmap.png"), "kind"),
        (dict(kind="x y"), "kind"),
        (dict(token="../t"), "token"),
        (dict(token=""), "token"),
    ],
)
def test_output_path_refuses_unsafe_components(bad, what):
    args = dict(output_dir="/out", score_field="lq", sample_id=SID, kind="heatmap", token=TOKEN)
    args.update(bad)
    value = next(iter(bad.values()))
    with pytest.raises(InvalidInputError, match=re.escape(f"{what} {value!r} is not a safe file name component")):
        output_path(**args)


def test_output_path_accepts_64_characters():
    sid = "a" * 64
    assert output_path("/o", "f", sid, "issues", "t") == f"/o/f/{sid}-t_issues.png"


def test_output_path_checks_non_string_values_by_their_text():
    assert output_path("/o", "f", 12, "issues", "t") == "/o/f/12-t_issues.png"
    with pytest.raises(InvalidInputError, match=r"sample id 1\.5 is not a safe"):
        output_path("/o", "f", 1.5, "issues", "t")


# ------------------------------------------------------- parsing our names


def test_parse_output_name_round_trips_output_path():
    for kind in ("heatmap", "issues"):
        path = output_path("/out", "lq", SID, kind, TOKEN)
        assert parse_output_name(path) == (SID, TOKEN, kind)


@pytest.mark.parametrize(
    "name",
    [
        None,
        "",
        f"{SID}-{TOKEN}_heatmap.jpg",
        f"{SID}-{TOKEN}_other.png",
        f"{SID[:-1]}-{TOKEN}_heatmap.png",  # 23 hex digits
        f"{SID.upper()}-{TOKEN}_heatmap.png",
        f"{SID}-{TOKEN}0_heatmap.png",
        f"x{SID}-{TOKEN}_heatmap.png",
        f"{SID}-{TOKEN}_heatmap.png.bak",
        "mask.png",
    ],
)
def test_parse_output_name_refuses_other_names(name):
    assert parse_output_name(name) is None
    assert token_of(name) is None


def test_is_own_output():
    path = f"/data/x/{SID}-{TOKEN}_issues.png"
    assert is_own_output(path, SID) is True
    assert is_own_output(path, "65a1b2c3d4e5f60718293a4c") is False  # another sample's
    assert is_own_output("/data/x/mask.png", SID) is False  # a user's file
    assert is_own_output(f"/data/x/{SID}.png", SID) is False


def test_token_of():
    assert token_of(f"/o/lq/{SID}-{TOKEN}_heatmap.png") == TOKEN
    assert token_of(f"{SID}-deadbeef_issues.png") == "deadbeef"
    assert token_of(None) is None
    assert token_of("") is None


# ------------------------------------------------------- write_png_atomic


def test_temporary_file_is_a_dot_tmp_png_in_the_output_directory(tmp_path, monkeypatch):
    seen = []
    real_imwrite = cv2.imwrite

    def spy(path, image, *args):
        seen.append(path)
        assert os.path.isfile(path)  # mkstemp created it before the write
        return real_imwrite(path, image, *args)

    monkeypatch.setattr(cv2, "imwrite", spy)
    target = tmp_path / "out" / "lq" / "a.png"
    write_png_atomic(str(target), np.array([[1, 2]], np.uint8))
    (tmp,) = seen
    assert os.path.dirname(tmp) == str(tmp_path / "out" / "lq")
    assert re.fullmatch(r"\.tmp-.+\.png", os.path.basename(tmp))
    assert not os.path.exists(tmp)  # renamed
    np.testing.assert_array_equal(cv2.imread(str(target), cv2.IMREAD_UNCHANGED), [[1, 2]])
    assert sorted(os.listdir(target.parent)) == ["a.png"]


def test_failed_encode_raises_and_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(cv2, "imwrite", lambda path, image, *a: False)
    target = tmp_path / "a.png"
    with pytest.raises(OSError, match=r"OpenCV could not write .*\.tmp-.*\.png"):
        write_png_atomic(str(target), np.zeros((2, 2), np.uint8))
    assert os.listdir(tmp_path) == []


def test_failed_rename_removes_the_temporary_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "a.png"
    write_png_atomic(str(target), np.array([[7]], np.uint8))

    def broken_replace(src, dst):
        raise PermissionError("no")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(PermissionError):
        write_png_atomic(str(target), np.array([[9]], np.uint8))
    assert os.listdir(tmp_path) == ["a.png"]
    np.testing.assert_array_equal(cv2.imread(str(target), cv2.IMREAD_UNCHANGED), [[7]])


def test_write_into_an_existing_directory(tmp_path):
    (tmp_path / "lq").mkdir()
    write_png_atomic(str(tmp_path / "lq" / "a.png"), np.array([[3]], np.uint8))
    write_png_atomic(str(tmp_path / "lq" / "b.png"), np.array([[4]], np.uint8))
    assert sorted(os.listdir(tmp_path / "lq")) == ["a.png", "b.png"]


# ------------------------------------------------------------- heatmap


def test_heatmap_rounds_the_exact_value_not_a_float32_product():
    # s = 0.747058808803558349609375 (a float32). 255 * (1 - s) =
    # 64.500003755092620849609375: round() gives 65. In float32 the product
    # rounds to exactly 64.5 and half-to-even would give 64.
    s = np.array([[0.747058808803558349609375]], dtype=np.float32)
    assert float(s[0, 0]) == 0.747058808803558349609375
    assert heatmap_image(s)[0, 0] == 65
    assert heatmap_image(s.astype(np.float64))[0, 0] == 65


def test_heatmap_never_casts_nan_to_an_integer():
    # NaN -> uint8 is undefined behaviour (0 on x86, other values elsewhere):
    # ignored pixels must be set to 0 before the cast, not rely on it
    s = np.array([[np.nan, 0.5], [1.0, np.nan]], dtype=np.float32)
    with np.errstate(all="raise"):
        out = heatmap_image(s)
    np.testing.assert_array_equal(out, [[0, 128], [0, 0]])
