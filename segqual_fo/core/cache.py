"""The issue-count cache: what :class:`~segqual_fo.core.issues.IssueFinder`
keeps of each image between its passes, in memory or on disk.

Legend: "grid" is the pixel grid the statistics live on (the image, or its
f x f blocks with ``downsample=f``).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np


@dataclass
class CacheEntry:
    """Compact per-image record kept between the passes.

    Only the scores are dense; the other arrays list the pixels where the
    argmax differs from a valid label, the only ones that can be issues.

    Attributes:
        scores: (h,w) grid self-confidence, NaN where not scored
        dis_index: int32 flat grid indices of the disagreeing pixels
        dis_pred: their argmax class
        dis_prob: their argmax probability
        shape: full-resolution (H, W)
        full_dis_index: with downsampling, the disagreeing pixels at full
            resolution (flat indices), else None
        full_dis_pred: their argmax class, else None
        pixel_scores: with downsampling, the (H,W) full-resolution
            self-confidence when the finder keeps it (``keep_pixel_scores``:
            the last pass then needs no probabilities), else None
    """

    scores: np.ndarray
    dis_index: np.ndarray
    dis_pred: np.ndarray
    dis_prob: np.ndarray
    shape: Tuple[int, int]
    full_dis_index: Optional[np.ndarray] = None
    full_dis_pred: Optional[np.ndarray] = None
    pixel_scores: Optional[np.ndarray] = None

    def arrays(self) -> Dict[str, np.ndarray]:
        out = {
            "scores": self.scores,
            "dis_index": self.dis_index,
            "dis_pred": self.dis_pred,
            "dis_prob": self.dis_prob,
            "shape": np.asarray(self.shape, dtype=np.int64),
        }
        if self.full_dis_index is not None:
            out["full_dis_index"] = self.full_dis_index
            out["full_dis_pred"] = self.full_dis_pred
        if self.pixel_scores is not None:
            out["pixel_scores"] = self.pixel_scores
        return out

    @classmethod
    def from_arrays(cls, a) -> "CacheEntry":
        return cls(
            scores=a["scores"],
            dis_index=a["dis_index"],
            dis_pred=a["dis_pred"],
            dis_prob=a["dis_prob"],
            shape=tuple(int(v) for v in a["shape"]),
            full_dis_index=a["full_dis_index"] if "full_dis_index" in a else None,
            full_dis_pred=a["full_dis_pred"] if "full_dis_pred" in a else None,
            pixel_scores=a["pixel_scores"] if "pixel_scores" in a else None,
        )


class MemoryCache:
    """Keeps cache entries in a dict."""

    def __init__(self):
        self._entries: Dict[int, CacheEntry] = {}

    def put(self, index: int, entry: CacheEntry) -> None:
        self._entries[index] = entry

    def get(self, index: int, keys=None) -> CacheEntry:
        return self._entries[index]

    def close(self) -> None:
        self._entries.clear()


class DirectoryCache:
    """Keeps cache entries as .npz files in a directory (bounded memory).

    The first ``memory_bytes`` of entries (their arrays' sizes, in the
    order they are put) are held in memory instead, as :class:`MemoryCache`
    holds them; the others go to files. A run of small images then never
    writes or reads a file (for 64x64 images, the file round trip was about
    half the issue count's time), while big images still spill to disk
    past the budget. The arrays read back are equal either way (an ``.npz``
    round trip is exact); held entries own their arrays, so a view does not
    keep a larger array alive beyond the budget.

    Args:
        directory (None): where to write; a temporary directory (removed by
            :meth:`close`) when None
        remove (False): also remove a given ``directory`` on :meth:`close`
        memory_bytes (0): hold entries in memory up to this many bytes
    """

    def __init__(self, directory: Optional[str] = None, *, remove: bool = False, memory_bytes: int = 0):
        self._tmp = None
        self._remove = remove
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="segqual-cache-")
            directory = self._tmp.name
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.memory_bytes = int(memory_bytes)
        self._held: Dict[int, Tuple[CacheEntry, int]] = {}
        self._held_bytes = 0

    def _path(self, index: int) -> str:
        return os.path.join(self.directory, f"{index:09d}.npz")

    def put(self, index: int, entry: CacheEntry) -> None:
        arrays = entry.arrays()
        old = self._held.pop(index, None)
        if old is not None:
            self._held_bytes -= old[1]
        size = sum(a.nbytes for a in arrays.values())
        if self._held_bytes + size <= self.memory_bytes:
            held = CacheEntry.from_arrays({k: a if a.base is None else a.copy() for k, a in arrays.items()})
            self._held[index] = (held, size)
            self._held_bytes += size
            return
        path = self._path(index)
        tmp = path + ".tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, path)

    def get(self, index: int, keys=None) -> CacheEntry:
        """Reads an entry; ``keys`` limits which arrays are read from a file
        (the others are left empty), since each pass of
        :meth:`IssueFinder.finish` needs only some of them; an entry held in
        memory comes whole."""
        held = self._held.get(index)
        if held is not None:
            return held[0]
        with np.load(self._path(index), allow_pickle=False) as z:
            wanted = z.files if keys is None else [k for k in z.files if k in keys or k == "shape"]
            arrays = {k: z[k] for k in wanted}
        for k in ("scores", "dis_index", "dis_pred", "dis_prob"):
            arrays.setdefault(k, np.empty(0))
        return CacheEntry.from_arrays(arrays)

    def close(self) -> None:
        self._held.clear()
        self._held_bytes = 0
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        elif self._remove:
            import shutil

            shutil.rmtree(self.directory, ignore_errors=True)
