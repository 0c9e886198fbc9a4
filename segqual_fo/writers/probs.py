"""Compact probability files: a model's class scores as ``uint8``.

Legend: K classes, h x w the model's output resolution.

:func:`quantize_probs` turns one image's (K, h, w) scores (probabilities, or
logits with ``logits=True``, softmaxed first) into ``round(p * 255)``;
:func:`write_probs_npz` stores that as a compressed ``.npz`` with one array
named ``probs``, atomically. The scoring reads such files as any others
(uint8 means quantised probabilities: each pixel is divided by its sum), so
they need no special option besides ``resize=True`` when the model's
resolution is not the mask's.

Size: one byte per class and pixel before compression, against four for
float32; zlib then shrinks the mostly-0 and mostly-255 channels of a
confident model several times more (the README has measured numbers).
"""

from __future__ import annotations

import io
import zipfile

import numpy as np

from segqual_fo.adapters.probs import softmax
from segqual_fo.writers.files import write_bytes_atomic

#: The array name inside the ``.npz`` files.
PROBS_KEY = "probs"


def quantize_probs(scores: np.ndarray, *, logits: bool = False) -> np.ndarray:
    """(K, h, w) class scores as ``uint8`` ``round(p * 255)``.

    Probabilities are used as given (clipped to [0, 1]); ``logits`` are
    softmaxed over K first. A pixel whose every class rounds to 0 (only
    possible with K >= 510) keeps 1 on its most likely class, so no pixel is
    stored as all zeros.
    """
    p = softmax(scores, axis=0) if logits else np.asarray(scores, dtype=np.float32)
    q = np.empty(p.shape, dtype=np.uint8)
    np.rint(np.clip(p * 255.0, 0.0, 255.0), out=q, casting="unsafe")
    if p.shape[0] >= 510:  # max p >= 1/K, and round(255/510) = round(0.5) = 0
        dead = ~q.any(axis=0)
        if dead.any():
            rows, cols = np.nonzero(dead)
            q[p.argmax(axis=0)[rows, cols], rows, cols] = 1
    return q


def write_probs_npz(path: str, probs: np.ndarray) -> int:
    """Writes ``probs`` as a compressed ``.npz`` (array ``probs``) to a
    temporary name beside ``path``, then renames it: a crash leaves the old
    file or the new one. Returns the file's size in bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        with zf.open(PROBS_KEY + ".npy", "w", force_zip64=True) as fp:
            np.lib.format.write_array(fp, np.ascontiguousarray(probs), allow_pickle=False)
    data = buffer.getvalue()
    write_bytes_atomic(path, data)
    return len(data)
