"""Synthetic files on disk and throw-away FiftyOne datasets for the pipeline
benchmarks (``bench_pipeline.py``, ``bench_distributed.py``,
``bench_resolution.py``, ``bench_model.py``).

FiftyOne is imported only when a dataset is made, so ``--help`` stays fast.
"""

from __future__ import annotations

import os
import sys
import uuid
from typing import List, Optional

import numpy as np

from _common import make_label, make_probs

LABEL_FIELD = "ground_truth"


def write_files(
    directory: str, n: int, k: int, size, seed: int, dtype=np.float32, *, model=None, npz_key: Optional[str] = None
) -> List[dict]:
    """Writes n images (JPEG), label PNGs and probability files; returns one
    record (filepath, mask_path, probs_path) per image.

    ``size`` is the side of square images or ``(H, W)``. Probabilities are
    ``make_probs`` at the label's size in ``dtype``, saved as ``.npy``;
    ``model(rng, label, k)`` makes them instead (e.g. at a model's lower
    resolution), and ``npz_key`` saves them as a compressed ``.npz`` holding
    one array of that name."""
    import cv2

    h, w = (size, size) if np.isscalar(size) else size
    for sub in ("images", "labels", "probs"):
        os.makedirs(os.path.join(directory, sub), exist_ok=True)
    palette = np.random.default_rng(12345).integers(0, 256, size=(k, 3), dtype=np.uint8)
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        label = make_label(rng, k, h, w)
        probs = model(rng, label, k) if model is not None else make_probs(rng, label, k).astype(dtype)
        stem = f"img_{i:06d}"
        img = os.path.join(directory, "images", stem + ".jpg")
        msk = os.path.join(directory, "labels", stem + ".png")
        prb = os.path.join(directory, "probs", stem + (".npz" if npz_key else ".npy"))
        cv2.imwrite(img, palette[label])
        cv2.imwrite(msk, label.astype(np.uint8))
        if npz_key:
            np.savez_compressed(prb, **{npz_key: probs})
        else:
            np.save(prb, probs)
        records.append(dict(filepath=img, mask_path=msk, probs_path=prb))
    return records


def warm_page_cache(directory: str) -> None:
    """Flushes the just-written files (no writeback during the timings) and
    reads each once, so no configuration pays for the first read."""
    os.sync()
    for root, _, files in os.walk(directory):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                while f.read(1 << 24):
                    pass


class Datasets:
    """Creates uniquely named datasets (``<prefix>-<tag>-<hex>``) and deletes
    them all in ``cleanup()``."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.names: List[str] = []

    def create(
        self, records: List[dict], k: int, *, tag: str, persistent: bool = False,
        probs_field: Optional[str] = "probs_path",
    ):  # fmt: skip
        """A dataset of the records: ``filepath``, the mask as ``ground_truth``
        and each record's ``probs_path`` in the field ``probs_field`` (no
        probabilities field when it is None, e.g. to score from a model)."""
        import fiftyone as fo

        name = f"{self.prefix}-{tag}-{uuid.uuid4().hex[:12]}"
        self.names.append(name)  # before creating: cleaned up even if adding samples fails
        ds = fo.Dataset(name, persistent=persistent)
        ds.add_samples(
            [
                fo.Sample(
                    filepath=r["filepath"],
                    ground_truth=fo.Segmentation(mask_path=r["mask_path"]),
                    **({probs_field: r["probs_path"]} if probs_field else {}),
                )
                for r in records
            ],
            progress=False,
        )
        ds.mask_targets = {LABEL_FIELD: {c: f"class_{c:02d}" for c in range(k)}}
        ds.save()
        return ds

    def delete(self, dataset) -> None:
        name = dataset.name
        if not dataset.deleted:
            dataset.delete()
        self.names.remove(name)

    def cleanup(self) -> None:
        if not self.names:
            return
        import fiftyone as fo

        existing = set(fo.list_datasets())
        for name in self.names:
            if name in existing:
                try:
                    fo.delete_dataset(name)
                except Exception as e:  # keep deleting the others
                    print(f"  warning: could not delete dataset {name}: {e}", file=sys.stderr)
        self.names = []


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)"
    except OSError:
        return "n/a"


def raise_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # run the finally blocks: delete datasets and files
