"""Load stored model probabilities into the core's (K,H,W) layout.

Probabilities live in files, one per image: ``.npy``, or ``.npz`` with a
named array (``probs_key``). Files are untrusted input: they are read with
``allow_pickle=False``, and the array header is checked (dtype, rank, and a
size limit) before any data is read, so a corrupt or hostile header cannot
make us allocate gigabytes.

Layout is stated, never guessed: ``layout="KHW"`` (class axis first, the
default) or ``"HWK"`` (class axis last, as many frameworks save it).

Probabilities at the model's resolution (a stride of 4 or 8) are not
resized here: with ``resize=True`` they come back as a
:class:`~segqual_fo.core.resample.LowResProbs`, which the core reads at the
mask's resolution on the fly (exactly the bilinear, renormalised resize,
without its K x H x W array).
"""

from __future__ import annotations

import io
import os
import threading
import zipfile
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from segqual_fo.core.resample import LowResProbs
from segqual_fo.errors import (
    InvalidFileError,
    InvalidInputError,
    InvalidProbabilitiesError,
    ShapeMismatchError,
)

LAYOUTS = ("KHW", "HWK")
_SUPPORTED_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.uint8))
#: Refuse probability arrays larger than this unless told otherwise (4 GiB).
DEFAULT_MAX_BYTES = 4 << 30


def check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise InvalidInputError(
            f"layout must be 'KHW' (classes first) or 'HWK' (classes last), got {layout!r}."
        )
    return layout


_HEADER_LOCK = threading.Lock()
#: Parsed ``.npy`` headers by their raw bytes (magic, length and header).
#: A dataset's files share one header, so numpy's parser (an
#: ``ast.literal_eval``, serialised by :data:`_HEADER_LOCK`) runs once per
#: distinct header instead of once per file: about 0.1 ms per file, and no
#: lock for the reading threads to queue on. Equal bytes parse to the same
#: result, so a hit returns exactly what numpy would; only successful
#: parses are kept, and the values are checked per file as before.
_HEADER_CACHE: dict = {}
_HEADER_CACHE_MAX = 256
#: At most this much of a declared header is read: numpy refuses headers of
#: over 10,000 characters anyway (after reading all of them, up to 4 GiB in
#: a 2.0 header); a longer one now fails on its short read instead.
_HEADER_READ_MAX = 1 << 16
_MAGIC = b"\x93NUMPY"
#: format version byte pairs -> bytes of the header-length field
_LENGTH_WIDTH = {b"\x01\x00": 2, b"\x02\x00": 4, b"\x03\x00": 4}


def _parse_header(fp) -> Tuple[Tuple[int, ...], bool, np.dtype]:
    with _HEADER_LOCK:  # ast.literal_eval inside is not thread-safe on 3.11
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(fp)
        # 3.0 differs from 2.0 only in a UTF-8 (not latin-1) header, which
        # matters only for structured dtypes' field names, refused anyway;
        # numpy has no public reader for it (and numpy 2 hides the private one)
        if version in ((2, 0), (3, 0)):
            return np.lib.format.read_array_header_2_0(fp)
        raise ValueError(f"unsupported .npy format version {version}")


def _read_header(fp) -> Tuple[Tuple[int, ...], bool, np.dtype]:
    """(shape, fortran order, dtype) of the ``.npy`` stream ``fp``, which is
    left at the start of the data. The raw header is read here and parsed
    by numpy (:func:`_parse_header`), or found in :data:`_HEADER_CACHE`;
    anything malformed goes to numpy's parser as read, for its error."""
    raw = fp.read(len(_MAGIC) + 2)
    width = _LENGTH_WIDTH.get(raw[len(_MAGIC) :]) if raw[: len(_MAGIC)] == _MAGIC else None
    if width is not None:
        length = fp.read(width)
        raw += length
        if len(length) == width:
            raw += fp.read(min(int.from_bytes(length, "little"), _HEADER_READ_MAX))
            cached = _HEADER_CACHE.get(raw)
            if cached is not None:
                return cached
    parsed = _parse_header(io.BytesIO(raw))
    if len(_HEADER_CACHE) >= _HEADER_CACHE_MAX:
        _HEADER_CACHE.clear()
    _HEADER_CACHE[raw] = parsed
    return parsed


def _check_header(shape, dtype, path: str, max_bytes: int) -> None:
    if dtype.hasobject:
        raise InvalidFileError(
            f"{path} holds Python objects (a pickled array); probabilities must be a "
            "numeric array. Pickles are refused because loading them can run code."
        )
    if np.dtype(dtype) not in _SUPPORTED_DTYPES:
        raise InvalidProbabilitiesError(
            f"{path} has dtype {dtype}; expected float16/32/64 probabilities or uint8 "
            "(round(p * 255))."
        )
    if len(shape) != 3:
        raise ShapeMismatchError(
            f"{path} holds an array of shape {tuple(shape)}; expected one image's "
            "probabilities, (K, H, W) or (H, W, K)."
        )
    nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if nbytes > max_bytes:
        raise InvalidFileError(
            f"{path} declares a {tuple(shape)} {dtype} array ({nbytes / 2**30:.1f} GiB), over "
            f"the {max_bytes / 2**30:.1f} GiB limit; the file is corrupt or not one image's "
            "probabilities (raise max_bytes if it really is)."
        )


def _member_and_key(zf, path, key):
    names = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
    if key is None:
        if len(names) != 1:
            raise InvalidInputError(f"{path} holds arrays {names}; pass probs_key to choose one.")
        key = names[0]
    if key not in names:
        raise InvalidInputError(f"{path} has no array {key!r}; it holds {names}. Check probs_key.")
    return key


def peek_shape(path: str, *, key: Optional[str] = None, max_bytes: int = DEFAULT_MAX_BYTES) -> Tuple[int, ...]:
    """The stored array's shape, from its header only (validated like
    :func:`read_prob_array`, without reading the data).

    Raises:
        InvalidFileError: missing, unreadable, pickled, too large
    """
    if not os.path.isfile(path):
        raise InvalidFileError(f"probability file {path} does not exist.")
    try:
        if path.lower().endswith(".npz"):
            with zipfile.ZipFile(path) as zf:
                key = _member_and_key(zf, path, key)
                with zf.open(key + ".npy") as fp:
                    shape, _, dtype = _read_header(fp)
        else:
            with open(path, "rb") as fp:
                shape, _, dtype = _read_header(fp)
    except (InvalidInputError, InvalidFileError):
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise InvalidFileError(f"cannot read probabilities from {path}: {e}") from None
    _check_header(shape, dtype, path, max_bytes)
    return tuple(shape)


def _read_data(fp, shape, fortran: bool, dtype: np.dtype, path: str) -> np.ndarray:
    """Reads the array body that follows a parsed header (no pickles)."""
    count = int(np.prod(shape, dtype=np.int64))
    nbytes = count * dtype.itemsize
    if isinstance(fp, zipfile.ZipExtFile):  # a member of an .npz
        data = np.frombuffer(fp.read(nbytes), dtype=dtype).copy()
    else:  # a real file: read straight into the array
        data = np.fromfile(fp, dtype=dtype, count=count)
    if data.size != count:
        raise InvalidFileError(
            f"{path} is truncated: its header declares {tuple(shape)} ({count} values) but it "
            f"holds {data.size}; the file was not fully written."
        )
    return data.reshape(shape[::-1]).transpose() if fortran else data.reshape(shape)


def read_prob_array(path: str, *, key: Optional[str] = None, max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Reads one probability array from a .npy or .npz file, safely.

    The header is parsed and checked (dtype, rank, size) before any data is
    read; object arrays are refused; the body is read as raw numbers.
    Header parsing is serialised: it goes through ``ast.literal_eval``, which
    CPython 3.11 does not make thread-safe (gh-106905), and the pipeline reads
    files from several threads.

    Args:
        path: file path
        key (None): array name inside a .npz (optional when it holds one)
        max_bytes: refuse larger arrays (checked on the header, before reading)

    Raises:
        InvalidFileError: missing, unreadable, corrupt, truncated, pickled,
            too large
    """
    if not os.path.isfile(path):
        raise InvalidFileError(f"probability file {path} does not exist.")
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".npy", ".npz"):
        raise InvalidFileError(f"{path}: unsupported probability file type {ext!r}; use .npy or .npz.")
    try:
        if ext == ".npz":
            with zipfile.ZipFile(path) as zf:
                key = _member_and_key(zf, path, key)
                with zf.open(key + ".npy") as fp:
                    shape, fortran, dtype = _read_header(fp)
                    _check_header(shape, dtype, path, max_bytes)
                    return _read_data(fp, shape, fortran, dtype, path)
        with open(path, "rb") as fp:
            shape, fortran, dtype = _read_header(fp)
            _check_header(shape, dtype, path, max_bytes)
            return _read_data(fp, shape, fortran, dtype, path)
    except (InvalidInputError, InvalidFileError):
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, SyntaxError) as e:
        raise InvalidFileError(f"cannot read probabilities from {path}: {e}") from None


def softmax(logits: np.ndarray, axis: int = 0) -> np.ndarray:
    """Numerically stable softmax in float32 (float64 for float64 input)."""
    dtype = np.float64 if logits.dtype == np.float64 else np.float32
    x = logits.astype(dtype, copy=True)
    x -= x.max(axis=axis, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=axis, keepdims=True)
    return x


def resize_probs(probs: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    """Bilinear resize of (K,h,w) probabilities to (K, *shape), renormalised.

    The one definition of the resize is
    :class:`~segqual_fo.core.resample.LowResProbs` (OpenCV's INTER_LINEAR
    geometry, then every pixel divided by its sum, computed as the
    interpolated stored sum); this returns its :meth:`dense` array. It no
    longer calls OpenCV: ``cv2.resize`` followed by a renormalisation gives
    the same values within about 1e-7 (OpenCV rounds its coordinates and
    weights to float32). Computed in float32, or float64 for float64 input;
    uint8 is read as ``round(p * 255)``. Values are not validated here
    (:meth:`LowResProbs.validate` does that).

    Scoring does not need this: :func:`to_class_first` with ``resize=True``
    returns the :class:`LowResProbs`, which the core reads without making
    the K x H x W array.
    """
    return LowResProbs(probs, shape).dense()


def to_class_first(
    array: np.ndarray,
    *,
    layout: str = "KHW",
    logits: bool = False,
    num_classes: Optional[int] = None,
    target_shape: Optional[Sequence[int]] = None,
    resize: bool = False,
    where: str = "pred_probs",
) -> Union[np.ndarray, LowResProbs]:
    """Brings one image's stored probabilities into the core's (K,H,W) form.

    Args:
        array: (K,H,W) or (H,W,K) array as stored
        layout ("KHW"): which of the two it is
        logits (False): apply a softmax over the class axis (at the stored
            resolution, before any resize)
        num_classes (None): expected K (the class list's length)
        target_shape (None): the label mask's (H, W)
        resize (False): read a different-resolution output at
            ``target_shape``, bilinearly interpolated and renormalised,
            instead of raising
        where ("pred_probs"): how to name this array in errors

    Returns:
        the (K,H,W) array (a view of ``array`` when nothing changes); with
        ``resize=True`` and another resolution, a
        :class:`~segqual_fo.core.resample.LowResProbs` that reads the stored
        array at ``target_shape`` on demand (the core scores it exactly as
        the resized array, in memory bounded by the mask's area;
        ``np.asarray`` of it gives that array, :func:`resize_probs`)

    Raises:
        ShapeMismatchError: K or (H, W) disagree with the expectation
    """
    check_layout(layout)
    if array.ndim != 3:
        raise ShapeMismatchError(f"{where} has shape {array.shape}; expected 3 dimensions ({layout}).")
    p = array if layout == "KHW" else array.transpose(2, 0, 1)
    if num_classes is not None and p.shape[0] != num_classes:
        other = array.shape[0] if layout == "HWK" else array.shape[2]
        hint = (
            f" With layout='{'HWK' if layout == 'KHW' else 'KHW'}' it would have {other}: "
            "check the layout." if other == num_classes else ""
        )
        raise ShapeMismatchError(
            f"{where} has {p.shape[0]} class channels (layout {layout}, shape {array.shape}) "
            f"but the class list has {num_classes} classes; probability channel k must be "
            f"class k of the list.{hint}"
        )
    if logits:
        p = softmax(p, axis=0)
    if target_shape is not None and tuple(p.shape[1:]) != tuple(target_shape):
        other = array.shape[:2] if layout == "KHW" else array.shape[1:]
        if tuple(other) == tuple(target_shape):
            raise ShapeMismatchError(
                f"{where} has shape {array.shape}, which matches the {target_shape[0]}x"
                f"{target_shape[1]} label mask with the class axis "
                f"{'last' if layout == 'KHW' else 'first'}: pass "
                f"layout='{'HWK' if layout == 'KHW' else 'KHW'}'."
            )
        if not resize:
            raise ShapeMismatchError(
                f"{where} is {p.shape[1]}x{p.shape[2]} but the label mask is "
                f"{target_shape[0]}x{target_shape[1]}. Pass resize=True to resize the "
                "probabilities bilinearly to the mask, or store full-size probabilities."
            )
        p = LowResProbs(p, tuple(target_shape))
    return p


def load_probs(
    path: str,
    *,
    key: Optional[str] = None,
    layout: str = "KHW",
    logits: bool = False,
    num_classes: Optional[int] = None,
    target_shape: Optional[Sequence[int]] = None,
    resize: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Union[np.ndarray, LowResProbs]:
    """Reads a probability file and returns (K,H,W) probabilities (a
    :class:`~segqual_fo.core.resample.LowResProbs` when ``resize=True``
    meets another resolution).

    Combines :func:`read_prob_array` and :func:`to_class_first`; see there.

    Example::

        probs = load_probs("pred/0001.npz", key="probs_u8", num_classes=12,
                           target_shape=(360, 480))
    """
    return to_class_first(
        read_prob_array(path, key=key, max_bytes=max_bytes),
        layout=layout,
        logits=logits,
        num_classes=num_classes,
        target_shape=target_shape,
        resize=resize,
        where=path,
    )
