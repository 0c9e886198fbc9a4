"""PNG outputs: heatmaps and issue masks, written atomically.

File names come from sample ids (hex strings) and a fixed suffix, never from
file paths or field values, and always live under the chosen output
directory: no user-controlled string reaches the file system.
"""

from __future__ import annotations

import os
import re
import secrets
from typing import Optional, Tuple

import numpy as np

from segqual_fo.errors import InvalidInputError

_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: How :func:`output_path` names files for FiftyOne sample ids (24 hex
#: digits) and run tokens (8 hex digits): only files named so are ever
#: deleted by a run.
_OUTPUT_NAME = re.compile(r"^(?P<id>[0-9a-f]{24})-(?P<token>[0-9a-f]{8})_(?P<kind>heatmap|issues)\.png$")

#: Heatmaps are stored as 8-bit PNGs: value = round(255 * (1 - pixel score)).
HEATMAP_SCALE = 255


def output_path(output_dir: str, score_field: str, sample_id: str, kind: str, token: str) -> str:
    """``output_dir/score_field/<sample_id>-<token>_<kind>.png``, validated.

    ``token`` identifies the run, so a new run never overwrites the files an
    old record still points to.

    Raises:
        InvalidInputError: an id, token or field name that is not a safe
            file-name component
    """
    for name, value in (("sample id", sample_id), ("score_field", score_field), ("kind", kind), ("token", token)):
        _check_safe(name, value)
    return os.path.join(output_dir, score_field, f"{sample_id}-{token}_{kind}.png")


def _check_safe(name: str, value) -> None:
    if not _SAFE_ID.fullmatch(str(value)):
        raise InvalidInputError(f"{name} {value!r} is not a safe file name component.")


def parse_output_name(name: str) -> Optional[Tuple[str, str, str]]:
    """``(sample id, token, kind)`` of a file name :func:`output_path` made
    for a FiftyOne sample, else None."""
    m = _OUTPUT_NAME.fullmatch(os.path.basename(name or ""))
    return (m.group("id"), m.group("token"), m.group("kind")) if m else None


def is_own_output(path: str, sample_id: str) -> bool:
    """Whether ``path`` is named like a file segqual wrote for this sample
    (only those are ever deleted; a path a user put in the field is not)."""
    parsed = parse_output_name(path)
    return parsed is not None and parsed[0] == sample_id


def token_of(path: Optional[str]) -> Optional[str]:
    """The run token in one of our output file names, else None."""
    parsed = parse_output_name(path) if path else None
    return parsed[1] if parsed else None


#: PNG encoder settings per output kind, chosen for speed (see the README's
#: "PNG compression" table): zlib level 1 with the run-length strategy, which
#: OpenCV also picks by default, spelled out so that the files do not change
#: with OpenCV's defaults. Heatmaps keep the "sub" row filter (their values
#: change smoothly: 2.8x smaller than stored on real data, at 1-2 ms per
#: 480x360 image); issue masks, mostly runs of 0, use no filter, which is as
#: fast and smaller. zlib's default level 6 costs 3-5x the time for 2-14%
#: fewer bytes.
PNG_PARAMS = {
    "heatmap": (1, "RLE", "SUB"),
    "issues": (1, "RLE", "NONE"),
}


def png_params(kind: Optional[str] = None) -> list:
    """``cv2.imencode`` parameters for an output ``kind`` (see
    :data:`PNG_PARAMS`); None: OpenCV's defaults."""
    import cv2

    if kind is None:
        return []
    level, strategy, row_filter = PNG_PARAMS[kind]
    return [
        cv2.IMWRITE_PNG_COMPRESSION, level,
        cv2.IMWRITE_PNG_STRATEGY, getattr(cv2, f"IMWRITE_PNG_STRATEGY_{strategy}"),
        cv2.IMWRITE_PNG_FILTER, getattr(cv2, f"IMWRITE_PNG_FILTER_{row_filter}"),
    ]  # fmt: skip


def write_png_atomic(path: str, image: np.ndarray, kind: Optional[str] = None) -> None:
    """Writes a PNG to a temporary name in the same directory, then renames.

    A crash or a failed write leaves either the old file or the new one,
    never half a file. The image is encoded in memory first, so the file
    system sees one create, one write and one rename; the directory is
    created only when it does not exist yet (a run creates it once, see
    :func:`make_output_dir`). ``kind`` ("heatmap" or "issues") selects the
    encoder settings (:data:`PNG_PARAMS`).
    """
    import cv2

    ok, encoded = cv2.imencode(".png", image, png_params(kind))
    if not ok:
        raise OSError(f"OpenCV could not encode a PNG for {path}")
    write_bytes_atomic(path, encoded)


def write_bytes_atomic(path: str, data) -> None:
    """Writes ``data`` (bytes or a buffer) to a temporary name in the same
    directory (mode 0644), then renames it to ``path``: a crash leaves the
    old file or the new one, never half a file. The directory is created
    only when it does not exist yet."""
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".tmp-{secrets.token_hex(6)}-{name}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileNotFoundError:
        os.makedirs(directory, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            view = memoryview(data).cast("B")
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def make_output_dir(output_dir: str, score_field: str) -> str:
    """Creates ``output_dir/score_field`` (once per run, before the PNGs are
    written) and returns it.

    Raises:
        InvalidInputError: a ``score_field`` that is not a safe file name
    """
    _check_safe("score_field", score_field)
    directory = os.path.join(output_dir, score_field)
    os.makedirs(directory, exist_ok=True)
    return directory


#: Pixels per chunk of :func:`heatmap_image` (its float64 temporaries stay
#: in the CPU cache: 256 KiB).
_HEATMAP_CHUNK = 1 << 15


def heatmap_image(pixel_scores: np.ndarray) -> np.ndarray:
    """(H,W) uint8 heatmap of ``1 - pixel score`` in 0..255; ignored (NaN)
    pixels and perfectly scored pixels are 0, which the App draws
    transparent.

    Computed in float64, so the value is ``round(255 * (1 - s))`` of the
    exact product for float32 / float16 scores, also next to a rounding tie
    (a float32 product can round onto x.5 and come out 1 lower). The image
    is processed in chunks of :data:`_HEATMAP_CHUNK` pixels, so no float64
    copy of the whole image is made; each pixel goes through the same
    float64 operations either way: ``fmax(x, 0)`` maps NaN to 0 as
    ``nan_to_num`` did, and clipping ``255 * (1 - s)`` to [0, 255] equals
    scaling ``1 - s`` clipped to [0, 1], since multiplying by 255 is
    monotone and exact at 0 and 1.
    """
    scores = np.ascontiguousarray(pixel_scores)
    flat = scores.reshape(-1)
    out = np.empty(flat.shape, dtype=np.uint8)
    buf = np.empty(min(_HEATMAP_CHUNK, flat.size), dtype=np.float64)
    for start in range(0, flat.size, _HEATMAP_CHUNK):
        part = flat[start : start + _HEATMAP_CHUNK]
        bad = buf[: part.size]
        np.subtract(1.0, part, out=bad, dtype=np.float64)
        np.multiply(bad, HEATMAP_SCALE, out=bad)
        np.fmax(bad, 0.0, out=bad)  # NaN (ignored pixels) -> 0
        np.fmin(bad, float(HEATMAP_SCALE), out=bad)
        np.rint(bad, out=bad)
        out[start : start + part.size] = bad
    return out.reshape(scores.shape)


def issue_mask_image(issues: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(H,W) issue mask with value = given class index + 1 (0 = no issue,
    transparent in the App); uint8, or uint16 for 255+ classes."""
    dtype = np.uint8 if num_classes < 255 else np.uint16
    out = np.zeros(issues.shape, dtype=dtype)
    out[issues] = labels[issues].astype(dtype) + 1
    return out
