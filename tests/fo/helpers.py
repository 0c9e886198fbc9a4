"""Build small real FiftyOne datasets with files on disk."""

import os

import cv2
import numpy as np

import fiftyone as fo

from tests.core.helpers import blob_labels, plausible_model


def write_image(path, shape, rng):
    cv2.imwrite(str(path), rng.integers(0, 255, size=shape + (3,), dtype=np.uint8))


def segmentation_dataset(
    ds,
    tmp_path,
    rng,
    *,
    n=6,
    k=4,
    shape=(24, 32),
    plant=(1,),
    inline=False,
    probs_dtype=np.float32,
    layout="KHW",
    names=None,
):
    """Images, label PNGs (or inline masks) and .npy probabilities on disk.

    Returns (labels (N,H,W) as stored, probs (N,K,H,W) float32, ids).
    Images listed in ``plant`` get a wrong-class square.
    """
    clean = blob_labels(rng, n, k, *shape)
    probs = plausible_model(rng, clean, k, strength=2.5)
    labels = clean.copy()
    for i in plant:
        labels[i, 4:14, 4:14] = (labels[i, 4:14, 4:14] + 1) % k
    for sub in ("img", "mask", "probs"):
        os.makedirs(tmp_path / sub, exist_ok=True)
    samples = []
    for i in range(n):
        img = tmp_path / "img" / f"im{i:03d}.png"
        write_image(img, shape, rng)
        if inline:
            gt = fo.Segmentation(mask=labels[i].astype(np.uint8))
        else:
            mp = tmp_path / "mask" / f"im{i:03d}.png"
            cv2.imwrite(str(mp), labels[i].astype(np.uint8))
            gt = fo.Segmentation(mask_path=str(mp))
        pp = tmp_path / "probs" / f"im{i:03d}.npy"
        arr = probs[i] if layout == "KHW" else probs[i].transpose(1, 2, 0)
        np.save(pp, arr.astype(probs_dtype))
        samples.append(fo.Sample(filepath=str(img), ground_truth=gt, probs_path=str(pp)))
    ids = ds.add_samples(samples, progress=False)
    if names is not None:
        ds.mask_targets = {"ground_truth": dict(enumerate(names))}
    return labels, probs, ids
