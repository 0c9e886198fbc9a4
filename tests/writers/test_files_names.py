"""Output file names and atomic writes (segqual_fo.writers.files).

The names are the contract between a run and the clean-up of later runs:
only files named ``<24 hex id>-<8 hex token>_<heatmap|issues>.png`` are ever
deleted, and a killed write leaves a ``.tmp-*.png`` in the output directory
itself (``sweep_orphans`` looks for exactly that; a temporary file elsewhere
would be missed, and ``os.replace`` cannot cross file systems).
"""

import errno
import os
import re

import cv2
import numpy as np
import pytest

from segqual_fo.errors import InvalidInputError
from segqual_fo.writers.files import (
    PNG_PARAMS,
    heatmap_image,
    is_own_output,
    make_output_dir,
    output_path,
    parse_output_name,
    png_params,
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
    real_replace = os.replace

    def spy(src, dst):
        seen.append(src)
        assert os.path.isfile(src)  # written completely before the rename
        np.testing.assert_array_equal(cv2.imread(src, cv2.IMREAD_UNCHANGED), [[1, 2]])
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    target = tmp_path / "out" / "lq" / "a.png"
    write_png_atomic(str(target), np.array([[1, 2]], np.uint8))
    (tmp,) = seen
    assert os.path.dirname(tmp) == str(tmp_path / "out" / "lq")
    assert re.fullmatch(r"\.tmp-.+\.png", os.path.basename(tmp))
    assert not os.path.exists(tmp)  # renamed
    np.testing.assert_array_equal(cv2.imread(str(target), cv2.IMREAD_UNCHANGED), [[1, 2]])
    assert sorted(os.listdir(target.parent)) == ["a.png"]


def test_failed_encode_raises_and_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(cv2, "imencode", lambda ext, image, *a: (False, None))
    target = tmp_path / "a.png"
    with pytest.raises(OSError, match=r"OpenCV could not encode a PNG for .*a\.png"):
        write_png_atomic(str(target), np.zeros((2, 2), np.uint8))
    assert os.listdir(tmp_path) == []


def test_failed_write_leaves_no_partial_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    # a full disk in the middle of the data: the temporary file is removed,
    # the previous PNG stays as it was
    target = tmp_path / "a.png"
    write_png_atomic(str(target), np.array([[7]], np.uint8))
    real_write = os.write
    calls = []

    def half_then_full(fd, data):
        calls.append(fd)
        if len(calls) == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        write_png_atomic(str(target), np.arange(64, dtype=np.uint8).reshape(8, 8))
    assert len(calls) == 2  # the short write was continued, then failed
    assert os.listdir(tmp_path) == ["a.png"]
    np.testing.assert_array_equal(cv2.imread(str(target), cv2.IMREAD_UNCHANGED), [[7]])


def test_short_writes_are_continued(tmp_path, monkeypatch):
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:5])))
    image = np.arange(600, dtype=np.uint16).reshape(20, 30)
    write_png_atomic(str(tmp_path / "a.png"), image)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "a.png"), cv2.IMREAD_UNCHANGED), image)


def test_missing_directory_is_created_without_a_makedirs_per_file(tmp_path, monkeypatch):
    calls = []
    real_makedirs = os.makedirs
    monkeypatch.setattr(os, "makedirs", lambda *a, **k: (calls.append(a[0]), real_makedirs(*a, **k)))
    write_png_atomic(str(tmp_path / "new" / "lq" / "a.png"), np.array([[1]], np.uint8))  # created on demand
    assert calls[0] == str(tmp_path / "new" / "lq")  # (makedirs recurses for the parent)
    made = len(calls)
    write_png_atomic(str(tmp_path / "new" / "lq" / "b.png"), np.array([[2]], np.uint8))
    assert len(calls) == made  # not again for the next file
    assert make_output_dir(str(tmp_path / "o"), "lq") == str(tmp_path / "o" / "lq")
    assert os.path.isdir(tmp_path / "o" / "lq")
    with pytest.raises(InvalidInputError, match="score_field"):
        make_output_dir(str(tmp_path), "../x")


def test_png_settings_per_kind_round_trip_and_open_in_pil(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    heat = (rng.random((37, 53)) * 255).astype(np.uint8)
    issues = np.where(rng.random((37, 53)) < 0.1, 3, 0).astype(np.uint8)
    big_issues = np.where(rng.random((9, 11)) < 0.5, 300, 0).astype(np.uint16)
    for kind, image in (("heatmap", heat), ("issues", issues), ("issues", big_issues), (None, heat)):
        path = str(tmp_path / f"{kind}-{image.dtype}.png")
        write_png_atomic(path, image, kind=kind)
        np.testing.assert_array_equal(cv2.imread(path, cv2.IMREAD_UNCHANGED), image)
        np.testing.assert_array_equal(np.asarray(Image.open(path)), image)
    assert set(PNG_PARAMS) == {"heatmap", "issues"}
    assert png_params("issues")[:2] == [cv2.IMWRITE_PNG_COMPRESSION, 1]
    with pytest.raises(KeyError):
        png_params("other")


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


def test_written_png_is_readable_by_everyone_not_executable(tmp_path):
    # like a file written by open(): 0o644 minus the umask, never 0o777
    from segqual_fo.writers.files import write_png_atomic

    path = str(tmp_path / "out.png")
    recreated = str(tmp_path / "vanished" / "out.png")  # the directory is made on the way
    old = os.umask(0o022)
    try:
        write_png_atomic(path, np.zeros((2, 3), np.uint8), kind="heatmap")
        write_png_atomic(recreated, np.zeros((2, 3), np.uint8), kind="heatmap")
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert os.stat(recreated).st_mode & 0o777 == 0o644
