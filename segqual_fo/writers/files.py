"""PNG outputs: heatmaps and issue masks, written atomically.

File names come from sample ids (hex strings) and a fixed suffix, never from
file paths or field values, and always live under the chosen output
directory: no user-controlled string reaches the file system.
"""

from __future__ import annotations

import os
import re
import tempfile
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
        if not _SAFE_ID.fullmatch(str(value)):
            raise InvalidInputError(f"{name} {value!r} is not a safe file name component.")
    return os.path.join(output_dir, score_field, f"{sample_id}-{token}_{kind}.png")


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


def write_png_atomic(path: str, image: np.ndarray) -> None:
    """Writes a PNG to a temporary name in the same directory, then renames.

    A crash leaves either the old file or the new one, never half a file.
    """
    import cv2

    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".png", dir=directory)
    os.close(fd)
    try:
        if not cv2.imwrite(tmp, image):
            raise OSError(f"OpenCV could not write {tmp}")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def heatmap_image(pixel_scores: np.ndarray) -> np.ndarray:
    """(H,W) uint8 heatmap of ``1 - pixel score`` in 0..255; ignored (NaN)
    pixels and perfectly scored pixels are 0, which the App draws
    transparent.

    Computed in float64, so the value is ``round(255 * (1 - s))`` of the
    exact product for float32 / float16 scores, also next to a rounding tie
    (a float32 product can round onto x.5 and come out 1 lower)."""
    bad = 1.0 - pixel_scores.astype(np.float64)
    np.nan_to_num(bad, copy=False, nan=0.0)
    np.clip(bad, 0.0, 1.0, out=bad)
    return np.rint(bad * HEATMAP_SCALE).astype(np.uint8)


def issue_mask_image(issues: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(H,W) issue mask with value = given class index + 1 (0 = no issue,
    transparent in the App); uint8, or uint16 for 255+ classes."""
    dtype = np.uint8 if num_classes < 255 else np.uint16
    out = np.zeros(issues.shape, dtype=dtype)
    out[issues] = labels[issues].astype(dtype) + 1
    return out
