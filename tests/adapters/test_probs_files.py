"""segqual_fo.adapters.probs: reading probability files, header checks, softmax.

Small arrays with values typed in by hand; files are written with numpy's
own writers (``np.save``, ``np.savez``, ``np.lib.format.write_array``) to
``tmp_path`` and read back. Expected softmax values are written out from
``exp(a) / (exp(a) + exp(b))`` by hand.
"""

import io
import zipfile

import numpy as np
import pytest

from segqual_fo.adapters.probs import (
    DEFAULT_MAX_BYTES,
    check_layout,
    load_probs,
    peek_shape,
    read_prob_array,
    softmax,
    to_class_first,
)
from segqual_fo.errors import InvalidFileError, InvalidInputError, InvalidProbabilitiesError, ShapeMismatchError

#: (K=2, H=2, W=3), every value distinct so a transposed read shows
P = np.array(
    [
        [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]],
        [[0.9, 0.8, 0.7], [0.6, 0.5, 0.4]],
    ],
    dtype=np.float32,
)


def _write_version(path, array, version):
    with open(path, "wb") as f:
        np.lib.format.write_array(f, array, version=version)


# --------------------------------------------------------------- peek_shape


def test_peek_shape_npy(tmp_path):
    path = str(tmp_path / "p.npy")
    np.save(path, P)
    assert peek_shape(path) == (2, 2, 3)


def test_peek_shape_npz_with_and_without_key(tmp_path):
    one = str(tmp_path / "one.npz")
    np.savez(one, probs=P)
    assert peek_shape(one) == (2, 2, 3)
    assert peek_shape(one, key="probs") == (2, 2, 3)
    two = str(tmp_path / "two.npz")
    np.savez(two, a=np.zeros((4, 5, 6), np.float32), b=P)
    assert peek_shape(two, key="a") == (4, 5, 6)
    assert peek_shape(two, key="b") == (2, 2, 3)


def test_peek_shape_npz_upper_case_extension(tmp_path):
    path = tmp_path / "P.NPZ"
    with open(path, "wb") as f:
        np.savez(f, probs=P)
    assert peek_shape(str(path)) == (2, 2, 3)


def test_peek_shape_npz_needs_a_key_when_it_holds_several_arrays(tmp_path):
    path = str(tmp_path / "two.npz")
    np.savez(path, a=P, b=P)
    with pytest.raises(InvalidInputError, match=r"holds arrays \['a', 'b'\]; pass probs_key"):
        peek_shape(path)
    with pytest.raises(InvalidInputError, match=r"has no array 'c'; it holds \['a', 'b'\]"):
        peek_shape(path, key="c")


def test_peek_shape_missing_file(tmp_path):
    with pytest.raises(InvalidFileError, match=r"probability file .*nope\.npy does not exist"):
        peek_shape(str(tmp_path / "nope.npy"))


@pytest.mark.parametrize("name", ["bad.npy", "bad.npz"])
def test_peek_shape_corrupt_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\x00garbage, not numpy")
    with pytest.raises(InvalidFileError, match=r"cannot read probabilities from"):
        peek_shape(str(path))


def test_peek_shape_checks_the_header_like_read(tmp_path):
    path = str(tmp_path / "p.npy")
    np.save(path, np.zeros((2, 3), np.float32))
    with pytest.raises(ShapeMismatchError, match=r"shape \(2, 3\); expected one image's"):
        peek_shape(path)
    np.save(path, np.zeros((2, 3, 4), np.int32))
    with pytest.raises(InvalidProbabilitiesError, match=r"dtype int32"):
        peek_shape(path)
    np.save(path, np.zeros((2, 3, 4), np.float32))  # 96 bytes
    assert peek_shape(path, max_bytes=96) == (2, 3, 4)
    with pytest.raises(InvalidFileError, match=r"over the"):
        peek_shape(path, max_bytes=95)


def test_peek_shape_npz_checks_the_header(tmp_path):
    path = str(tmp_path / "p.npz")
    np.savez(path, probs=np.zeros((2, 3, 4), np.float64))  # 192 bytes
    assert peek_shape(path, max_bytes=192) == (2, 3, 4)
    with pytest.raises(InvalidFileError, match=r"over the"):
        peek_shape(path, max_bytes=191)


def test_peek_shape_does_not_read_the_data(tmp_path):
    # a header declaring a 1 TB array with no data: the shape comes back
    # (under a raised limit) without reading anything
    path = tmp_path / "huge.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f4", "fortran_order": False, "shape": (10, 100000, 250000)}
        )
    assert peek_shape(str(path), max_bytes=10**13) == (10, 100000, 250000)
    with pytest.raises(InvalidFileError, match=r"over the 4\.0 GiB limit"):
        peek_shape(str(path))


# ------------------------------------------------------------ read_prob_array


def test_read_npy_values(tmp_path):
    path = str(tmp_path / "p.npy")
    np.save(path, P)
    got = read_prob_array(path)
    assert got.dtype == np.float32 and got.shape == (2, 2, 3)
    np.testing.assert_array_equal(got, P)


def test_read_fortran_ordered_npy(tmp_path):
    path = str(tmp_path / "f.npy")
    np.save(path, np.asfortranarray(P))
    with open(path, "rb") as f:
        np.lib.format.read_magic(f)
        assert np.lib.format.read_array_header_1_0(f)[1] is True  # stored Fortran-ordered
    np.testing.assert_array_equal(read_prob_array(path), P)
    np.testing.assert_array_equal(load_probs(path, num_classes=2, target_shape=(2, 3)), P)


def test_read_fortran_ordered_npz_member(tmp_path):
    path = str(tmp_path / "f.npz")
    np.savez_compressed(path, probs=np.asfortranarray(P))
    np.testing.assert_array_equal(read_prob_array(path), P)


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_read_every_npy_format_version(tmp_path, version):
    path = str(tmp_path / "p.npy")
    _write_version(path, P, version)
    np.testing.assert_array_equal(read_prob_array(path), P)
    assert peek_shape(path) == (2, 2, 3)


def test_version_3_header_is_read_on_every_numpy(tmp_path):
    # numpy 2 no longer exposes a reader for 3.0 headers in np.lib.format:
    # such a file crashed with AttributeError instead of being read
    path = str(tmp_path / "p.npz")
    buf = io.BytesIO()
    np.lib.format.write_array(buf, P, version=(3, 0))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("probs.npy", buf.getvalue())
    np.testing.assert_array_equal(read_prob_array(path), P)
    assert peek_shape(path) == (2, 2, 3)


def test_unknown_npy_format_version_is_refused(tmp_path):
    path = tmp_path / "p.npy"
    buf = io.BytesIO()
    np.lib.format.write_array(buf, P, version=(2, 0))
    path.write_bytes(b"\x93NUMPY\x04\x00" + buf.getvalue()[8:])
    with pytest.raises(InvalidFileError, match=r"cannot read probabilities from .*version \(4, 0\)"):
        read_prob_array(str(path))
    with pytest.raises(InvalidFileError, match=r"cannot read probabilities from"):
        peek_shape(str(path))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.uint8])
def test_supported_dtypes_are_read_as_stored(tmp_path, dtype):
    a = np.array([[[0, 1], [2, 3]], [[4, 5], [6, 7]]], dtype=dtype)
    path = str(tmp_path / "p.npy")
    np.save(path, a)
    got = read_prob_array(path)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, a)


@pytest.mark.parametrize("dtype", [np.int32, np.uint16, np.int8, np.complex64, np.bool_])
def test_other_dtypes_are_refused(tmp_path, dtype):
    path = str(tmp_path / "p.npy")
    np.save(path, np.zeros((2, 2, 2), dtype=dtype))
    with pytest.raises(InvalidProbabilitiesError, match=r"expected float16/32/64 probabilities or uint8"):
        read_prob_array(path)


@pytest.mark.parametrize("shape", [(6,), (2, 3), (1, 2, 3, 1)])
def test_other_ranks_are_refused(tmp_path, shape):
    path = str(tmp_path / "p.npy")
    np.save(path, np.zeros(shape, np.float32))
    with pytest.raises(ShapeMismatchError, match=r"expected one image's probabilities"):
        read_prob_array(path)


def test_size_limit_is_inclusive(tmp_path):
    path = str(tmp_path / "p.npy")
    np.save(path, P)  # 12 float32 = 48 bytes
    np.testing.assert_array_equal(read_prob_array(path, max_bytes=48), P)
    with pytest.raises(InvalidFileError, match=r"over the"):
        read_prob_array(path, max_bytes=47)
    path = str(tmp_path / "p.npz")
    np.savez(path, probs=P)
    np.testing.assert_array_equal(read_prob_array(path, max_bytes=48), P)
    with pytest.raises(InvalidFileError, match=r"over the"):
        read_prob_array(path, max_bytes=47)


def test_default_limit_is_4_gib():
    assert DEFAULT_MAX_BYTES == 4 * 2**30


def test_read_npz_by_key(tmp_path):
    path = str(tmp_path / "p.npz")
    np.savez(path, other=np.ones((3, 3, 3), np.float64), probs=P)
    np.testing.assert_array_equal(read_prob_array(path, key="probs"), P)
    np.testing.assert_array_equal(read_prob_array(path, key="other"), np.ones((3, 3, 3)))
    with pytest.raises(InvalidInputError, match=r"pass probs_key"):
        read_prob_array(path)


def test_read_upper_case_extensions(tmp_path):
    npy = tmp_path / "P.NPY"
    with open(npy, "wb") as f:
        np.save(f, P)
    np.testing.assert_array_equal(read_prob_array(str(npy)), P)
    npz = tmp_path / "P.NPZ"
    with open(npz, "wb") as f:
        np.savez(f, probs=P)
    np.testing.assert_array_equal(read_prob_array(str(npz)), P)


def test_unsupported_extension_is_refused(tmp_path):
    path = tmp_path / "p.txt"
    with open(path, "wb") as f:
        np.save(f, P)
    with pytest.raises(InvalidFileError, match=r"unsupported probability file type '\.txt'"):
        read_prob_array(str(path))


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(InvalidFileError, match=r"does not exist"):
        read_prob_array(str(tmp_path / "p.npy"))


def test_truncated_npy_is_refused(tmp_path):
    path = tmp_path / "p.npy"
    np.save(path, P)
    data = path.read_bytes()
    path.write_bytes(data[:-4])  # one float32 short
    with pytest.raises(InvalidFileError, match=r"is truncated: its header declares \(2, 2, 3\) \(12 values\) but it holds 11"):
        read_prob_array(str(path))


def test_truncated_npz_member_is_refused(tmp_path):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, P)
    path = tmp_path / "p.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("probs.npy", buf.getvalue()[:-8])
    with pytest.raises(InvalidFileError, match=r"is truncated: .* \(12 values\) but it holds 10"):
        read_prob_array(str(path))


def test_npy_with_trailing_bytes_reads_the_declared_values(tmp_path):
    path = tmp_path / "p.npy"
    np.save(path, P)
    with open(path, "ab") as f:
        f.write(np.float32(9.0).tobytes() * 3)
    np.testing.assert_array_equal(read_prob_array(str(path)), P)


def test_pickled_object_array_is_refused(tmp_path):
    path = str(tmp_path / "p.npy")
    np.save(path, np.empty((1, 1, 1), dtype=object), allow_pickle=True)
    with pytest.raises(InvalidFileError, match=r"holds Python objects"):
        read_prob_array(path)
    with pytest.raises(InvalidFileError, match=r"holds Python objects"):
        peek_shape(path)


def test_corrupt_npz_is_refused(tmp_path):
    path = tmp_path / "p.npz"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InvalidFileError, match=r"cannot read probabilities from"):
        read_prob_array(str(path))


# ------------------------------------------------------------------ softmax


def test_softmax_default_axis_is_the_class_axis_first():
    # (K=2, H=1, W=3); columns (0, 0), (ln 3, 0), (0, ln 3)
    x = np.array([[[0.0, np.log(3), 0.0]], [[0.0, 0.0, np.log(3)]]], dtype=np.float32)
    got = softmax(x)
    expected = np.array([[[0.5, 0.75, 0.25]], [[0.5, 0.25, 0.75]]])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_softmax_other_axis():
    x = np.array([[0.0, np.log(3)], [0.0, 0.0]])
    np.testing.assert_allclose(softmax(x, axis=1), [[0.25, 0.75], [0.5, 0.5]], rtol=0, atol=1e-12)


def test_softmax_is_shifted_per_pixel_not_by_the_global_max():
    # pixel 0 logits (0, ln 3), pixel 1 (1000, 1000): shifting everything by
    # the global max 1000 would underflow pixel 0 to 0 / 0
    x = np.array([[[0.0, 1000.0]], [[np.log(3), 1000.0]]], dtype=np.float32)
    got = softmax(x, axis=0)
    expected = np.array([[[0.25, 0.5]], [[0.75, 0.5]]])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_softmax_dtype_policy_and_input_untouched():
    x64 = np.array([[0.0], [np.log(3)]])
    got = softmax(x64)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, [[0.25], [0.75]], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(x64, [[0.0], [np.log(3)]])  # not modified in place
    for dtype in (np.float16, np.float32):
        assert softmax(x64.astype(dtype)).dtype == np.float32


def test_to_class_first_logits_hwk():
    x = np.array([[[0.0, np.log(3)], [1000.0, 1000.0]]], dtype=np.float32)  # (H=1, W=2, K=2)
    got = to_class_first(x, layout="HWK", logits=True)
    np.testing.assert_allclose(got, [[[0.25, 0.5]], [[0.75, 0.5]]], rtol=0, atol=1e-6)


# -------------------------------------------------------------- layouts


def test_check_layout():
    assert check_layout("KHW") == "KHW"
    assert check_layout("HWK") == "HWK"
    with pytest.raises(InvalidInputError, match=r"layout must be 'KHW' .* got 'khw'"):
        check_layout("khw")


def test_hwk_is_transposed_to_khw():
    hwk = P.transpose(1, 2, 0)  # (2, 3, 2)
    got = to_class_first(hwk, layout="HWK", num_classes=2, target_shape=(2, 3))
    np.testing.assert_array_equal(got, P)


def test_wrong_layout_hint_names_the_other_layout():
    hwk = np.zeros((4, 5, 3), np.float32)
    with pytest.raises(ShapeMismatchError, match=r"With layout='HWK' it would have 3"):
        to_class_first(hwk, num_classes=3)
    with pytest.raises(ShapeMismatchError, match=r"matches the 4x5 label mask with the class axis last: pass layout='HWK'"):
        to_class_first(hwk, target_shape=(4, 5))


def test_rank_other_than_3_is_refused_in_memory():
    with pytest.raises(ShapeMismatchError, match=r"expected 3 dimensions"):
        to_class_first(np.zeros((2, 3), np.float32))


# ------------------------------------------------------------------ resize


def test_resize_probs_hand_values_in_the_computation_dtype():
    from segqual_fo.adapters.probs import resize_probs

    # (K=2, H=1, W=2) -> (1, 4): OpenCV's bilinear samples x = -0.25
    # (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1); channel 0 goes
    # 0.2 -> 0.6, channel 1 0.8 -> 0.4; every pixel still sums to 1.
    # float64 stays float64 (the core's dtype policy), float32 stays float32
    for dtype in (np.float64, np.float32):
        p = np.array([[[0.2, 0.6]], [[0.8, 0.4]]], dtype=dtype)
        got = resize_probs(p, (1, 4))
        assert got.dtype == dtype and got.shape == (2, 1, 4)
        np.testing.assert_allclose(got, [[[0.2, 0.3, 0.5, 0.6]], [[0.8, 0.7, 0.5, 0.4]]], rtol=0, atol=1e-6)
    # uint8 (round(p * 255)) the same way, renormalised
    q = np.array([[[51, 153]], [[204, 102]]], dtype=np.uint8)
    got = resize_probs(q, (1, 4))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, [[[0.2, 0.3, 0.5, 0.6]], [[0.8, 0.7, 0.5, 0.4]]], rtol=0, atol=1e-6)


def test_declared_size_past_int64_is_refused_not_wrapped(tmp_path):
    # 2**31 * 2**31 * 8 values overflow int64 (the product wraps to 0): the
    # header check must still see an absurd size, not a zero-byte array
    path = tmp_path / "bomb.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f4", "fortran_order": False, "shape": (2**31, 2**31, 8)}
        )
    with pytest.raises(InvalidFileError, match=r"declares a \(2147483648, 2147483648, 8\) float32 array .* over"):
        read_prob_array(str(path))
    with pytest.raises(InvalidFileError, match=r"over"):
        peek_shape(str(path))


def test_load_probs_honours_max_bytes(tmp_path):
    path = str(tmp_path / "p.npy")
    np.save(path, P)  # 48 bytes
    np.testing.assert_array_equal(load_probs(path, max_bytes=48), P)
    with pytest.raises(InvalidFileError, match=r"over the"):
        load_probs(path, max_bytes=47)


def test_to_class_first_does_not_resize_unless_asked():
    small = np.full((2, 2, 3), 0.5, dtype=np.float32)
    with pytest.raises(ShapeMismatchError, match=r"Pass resize=True"):
        to_class_first(small, target_shape=(4, 6))
    assert to_class_first(small, target_shape=(4, 6), resize=True).shape == (2, 4, 6)


# -- the header cache: numpy parses each distinct header once ----------------------------


def test_files_sharing_a_header_are_parsed_once_and_read_exactly(tmp_path, monkeypatch):
    from segqual_fo.adapters import probs as probs_mod

    monkeypatch.setattr(probs_mod, "_HEADER_CACHE", {})
    calls = []
    parse = probs_mod._parse_header
    monkeypatch.setattr(probs_mod, "_parse_header", lambda fp: calls.append(1) or parse(fp))
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, size=(3, 4, 5), dtype=np.uint8) for _ in range(4)]
    for i, a in enumerate(arrays):
        np.savez_compressed(tmp_path / f"{i}.npz", probs=a)
    for i, a in enumerate(arrays):
        np.testing.assert_array_equal(read_prob_array(str(tmp_path / f"{i}.npz")), a)
    assert len(calls) == 1
    # another header (dtype, order, shape) is parsed on its own
    other = np.asfortranarray(rng.random((3, 4, 5)).astype(np.float32))
    np.save(tmp_path / "f.npy", other)
    np.testing.assert_array_equal(read_prob_array(str(tmp_path / "f.npy")), other)
    assert len(calls) == 2
    assert peek_shape(str(tmp_path / "0.npz")) == (3, 4, 5)
    assert len(calls) == 2


def test_a_cached_header_still_has_its_values_checked(tmp_path, monkeypatch):
    from segqual_fo.adapters import probs as probs_mod

    monkeypatch.setattr(probs_mod, "_HEADER_CACHE", {})
    np.save(tmp_path / "a.npy", np.zeros((2, 3, 4), dtype=np.float32))
    read_prob_array(str(tmp_path / "a.npy"))
    with pytest.raises(InvalidFileError, match="over the"):
        read_prob_array(str(tmp_path / "a.npy"), max_bytes=10)
    # a truncated body after a cached header is still reported
    raw = (tmp_path / "a.npy").read_bytes()
    (tmp_path / "b.npy").write_bytes(raw[:-4])
    with pytest.raises(InvalidFileError, match="is truncated"):
        read_prob_array(str(tmp_path / "b.npy"))


def test_a_huge_declared_header_is_not_read_to_its_end(tmp_path):
    # a 2.0 header may declare up to 4 GiB of header; in an .npz member that
    # decompresses cheaply, numpy read all of it before refusing it
    body = b" " * (1 << 20)
    member = b"\x93NUMPY\x02\x00" + (len(body) + (1 << 30)).to_bytes(4, "little") + body
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("probs.npy", member)
    with pytest.raises(InvalidFileError, match="cannot read probabilities from"):
        read_prob_array(str(path))
    with pytest.raises(InvalidFileError, match="cannot read probabilities from"):
        peek_shape(str(path))


def test_malformed_magic_gets_numpy_error(tmp_path):
    (tmp_path / "m.npy").write_bytes(b"\x93NUMPX\x01\x00" + b"\x00" * 64)
    with pytest.raises(InvalidFileError, match="magic string is not correct"):
        read_prob_array(str(tmp_path / "m.npy"))
    (tmp_path / "s.npy").write_bytes(b"\x93NUM")
    with pytest.raises(InvalidFileError, match="cannot read probabilities from"):
        read_prob_array(str(tmp_path / "s.npy"))
