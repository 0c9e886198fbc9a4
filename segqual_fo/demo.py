"""A realistic synthetic dataset with planted annotation errors, for the demo.

Scenes are drawn from a handful of classes (sky, road, building, tree, car,
person) as overlapping shapes. The "model" is simulated from the true mask:
confident inside objects, unsure near boundaries, and wrong in a few smooth
blobs, like a real network. A seeded subset of images then gets one planted
annotation error of one of three kinds:

- ``dropped``: an object is relabelled as its surroundings (a missed object);
- ``wrong_class``: an object gets another object class;
- ``grown``: an object's boundary is dilated into its neighbours.

Everything is written to disk (PNG images and masks, float16 .npy
probabilities) and loaded into a FiftyOne dataset like real data.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

CLASSES = ["sky", "road", "building", "tree", "car", "person"]
COLORS = np.array(
    [[135, 190, 235], [90, 90, 95], [160, 110, 80], [40, 130, 50], [200, 30, 30], [240, 200, 60]],
    dtype=np.float32,
)
ERROR_KINDS = ("dropped", "wrong_class", "grown")
OBJECT_CLASSES = (2, 3, 4, 5)


@dataclass
class Scene:
    image: np.ndarray  # (H,W,3) uint8 RGB
    clean: np.ndarray  # (H,W) true classes


def _draw_scene(rng: np.random.Generator, h: int, w: int) -> Scene:
    import cv2

    mask = np.zeros((h, w), dtype=np.uint8)
    horizon = int(h * rng.uniform(0.4, 0.6))
    mask[horizon:] = 1  # road below the horizon, sky above
    for _ in range(int(rng.integers(3, 7))):
        cls = int(rng.choice(OBJECT_CLASSES))
        obj = np.zeros((h, w), dtype=np.uint8)
        cx = int(rng.integers(w // 10, w - w // 10))
        if cls == 2:  # building: a tall rectangle standing on the horizon
            bw, bh = int(rng.integers(w // 8, w // 4)), int(rng.integers(h // 5, h // 2))
            cv2.rectangle(obj, (cx - bw // 2, horizon - bh), (cx + bw // 2, horizon + 2), 1, -1)
        elif cls == 3:  # tree: an ellipse crown
            ax, ay = int(rng.integers(w // 16, w // 8)), int(rng.integers(h // 10, h // 5))
            cv2.ellipse(obj, (cx, horizon - ay // 2), (ax, ay), 0, 0, 360, 1, -1)
        elif cls == 4:  # car: a rounded box on the road
            cy = int(rng.integers(horizon + h // 10, h - h // 10))
            bw, bh = int(rng.integers(w // 10, w // 5)), int(rng.integers(h // 14, h // 8))
            cv2.rectangle(obj, (cx - bw // 2, cy - bh // 2), (cx + bw // 2, cy + bh // 2), 1, -1)
            cv2.circle(obj, (cx - bw // 3, cy + bh // 2), max(bh // 3, 2), 1, -1)
            cv2.circle(obj, (cx + bw // 3, cy + bh // 2), max(bh // 3, 2), 1, -1)
        else:  # person: a thin upright ellipse
            cy = int(rng.integers(horizon, h - h // 8))
            cv2.ellipse(obj, (cx, cy), (max(w // 40, 2), max(h // 10, 4)), 0, 0, 360, 1, -1)
        mask[obj.astype(bool)] = cls
    image = COLORS[mask] + rng.normal(0, 12, size=(h, w, 3))
    image = cv2.GaussianBlur(image, (3, 3), 0)
    return Scene(image=np.clip(image, 0, 255).astype(np.uint8), clean=mask)


def _smooth_noise(rng, shape, scale: float) -> np.ndarray:
    import cv2

    h, w = shape[-2:]
    small = rng.normal(size=shape[:-2] + (max(h // 8, 2), max(w // 8, 2))).astype(np.float32)
    flat = small.reshape(-1, small.shape[-2], small.shape[-1])
    up = np.stack([cv2.resize(s, (w, h), interpolation=cv2.INTER_CUBIC) for s in flat])
    return up.reshape(shape) * scale


def simulate_model(rng: np.random.Generator, clean: np.ndarray, k: int) -> np.ndarray:
    """(K,H,W) float32 probabilities of a plausible, imperfect model."""
    import cv2

    h, w = clean.shape
    # distance to the nearest class boundary: the model is unsure there
    edges = np.zeros((h, w), dtype=np.uint8)
    edges[:, 1:] |= (clean[:, 1:] != clean[:, :-1]).astype(np.uint8)
    edges[1:, :] |= (clean[1:, :] != clean[:-1, :]).astype(np.uint8)
    dist = cv2.distanceTransform((1 - edges).astype(np.uint8), cv2.DIST_L2, 3)
    confidence = 1.0 + 3.5 * np.minimum(dist / 5.0, 1.0)
    logits = _smooth_noise(rng, (k, h, w), 1.2) + rng.normal(0, 0.6, size=(k, h, w)).astype(np.float32)
    np.put_along_axis(
        logits, clean[None].astype(np.intp), np.take_along_axis(logits, clean[None].astype(np.intp), 0) + confidence, 0
    )
    # a couple of blobs where the model prefers another class
    # blobs where the model prefers another class: hard images that are
    # labelled correctly (what makes real rankings imperfect)
    for _ in range(int(rng.poisson(0.7))):
        blob = _smooth_noise(rng, (h, w), 1.0) > rng.uniform(1.3, 2.0)
        logits[int(rng.integers(0, k))][blob] += rng.uniform(3.0, 7.0)
    logits -= logits.max(axis=0, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=0, keepdims=True)
    return p.astype(np.float32)


def find_objects(labels: np.ndarray, *, ignore=(), min_area: int = 40, max_fraction: float = 0.2):
    """Connected regions of one class in a label mask that are object-sized:
    list of (bool mask, class)."""
    import cv2

    out = []
    limit = max_fraction * labels.size
    for cls in np.unique(labels):
        if int(cls) in ignore:
            continue
        n, comp, stats, _ = cv2.connectedComponentsWithStats((labels == cls).astype(np.uint8), connectivity=8)
        for j in range(1, n):
            if min_area <= stats[j, cv2.CC_STAT_AREA] <= limit:
                out.append((comp == j, int(cls)))
    return out


def plant_error(
    rng: np.random.Generator,
    labels: np.ndarray,
    kind: str,
    *,
    classes: Tuple[int, ...],
    ignore: Tuple[int, ...] = (),
) -> bool:
    """Plants one error of ``kind`` into ``labels`` in place, on a random
    object-sized region; False when the mask has none.

    Args:
        rng: random generator
        labels: (H,W) class mask (modified)
        kind: one of :data:`ERROR_KINDS`
        classes: the classes a "wrong_class" error may use
        ignore: mask values that are never objects nor targets
    """
    import cv2

    objects = find_objects(labels, ignore=ignore)
    if not objects:
        return False
    obj, cls = objects[int(rng.integers(len(objects)))]
    if kind == "dropped":
        ring = cv2.dilate(obj.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool) & ~obj
        around = labels[ring]
        around = around[~np.isin(around, ignore)] if ignore else around
        if around.size == 0:
            return False
        labels[obj] = np.bincount(around).argmax()
    elif kind == "wrong_class":
        choices = [c for c in classes if c != cls and c not in ignore]
        if not choices:
            return False
        labels[obj] = int(rng.choice(choices))
    elif kind == "grown":
        r = int(rng.integers(4, 8))
        grown = cv2.dilate(obj.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)).astype(bool)
        if ignore:
            grown &= ~np.isin(labels, ignore)
        labels[grown] = cls
    else:
        raise ValueError(f"unknown error kind {kind!r}; one of {ERROR_KINDS}")
    return True


def build_demo_files(
    directory: str,
    num_samples: int = 60,
    *,
    size: Tuple[int, int] = (120, 160),
    error_rate: float = 0.25,
    seed: int = 0,
) -> List[dict]:
    """Writes images, masks and probabilities; returns one record per image
    (filepath, mask_path, probs_path, planted kind or None)."""
    import cv2

    rng = np.random.default_rng(seed)
    if os.path.isdir(directory):
        shutil.rmtree(directory)
    for sub in ("images", "labels", "pred_probs"):
        os.makedirs(os.path.join(directory, sub))
    n_planted = int(round(num_samples * error_rate))
    planted_idx = set(rng.choice(num_samples, size=n_planted, replace=False).tolist())
    records = []
    for i in range(num_samples):
        scene = _draw_scene(rng, *size)
        probs = simulate_model(rng, scene.clean, len(CLASSES))
        labels = scene.clean.copy()
        kind: Optional[str] = None
        if i in planted_idx:
            kind = ERROR_KINDS[i % len(ERROR_KINDS)]
            if not plant_error(rng, labels, kind, classes=OBJECT_CLASSES):
                kind = None
        stem = f"scene_{i:04d}"
        img = os.path.join(directory, "images", stem + ".png")
        msk = os.path.join(directory, "labels", stem + ".png")
        prb = os.path.join(directory, "pred_probs", stem + ".npy")
        cv2.imwrite(img, scene.image[:, :, ::-1])
        cv2.imwrite(msk, labels)
        np.save(prb, probs.astype(np.float16))
        records.append(dict(filepath=img, mask_path=msk, probs_path=prb, planted=kind))
    return records


# --------------------------------------------------------------------------
# the demo on real data, and as a FiftyOne dataset

#: Score fields of the demo (and the suggested pair for any dataset).
DEMO_FIELDS = {"softmin": "label_quality", "num_pixel_issues": "label_quality_cl"}
_IMAGE_EXTS = (".png", ".jpg", ".jpeg")


def read_classes(data_dir: str, classes: Optional[List[str]]) -> List[str]:
    """The class names: ``classes``, else ``data_dir/classes.txt`` (one per
    line, in probability-channel order).

    Raises:
        InvalidInputError: neither is given
    """
    from segqual_fo.errors import InvalidInputError

    if classes:
        return list(classes)
    path = os.path.join(data_dir, "classes.txt")
    if os.path.isfile(path):
        with open(path) as f:
            return [line.strip() for line in f if line.strip()]
    raise InvalidInputError(
        f"--data {data_dir}: give the class names with --classes a,b,c or a classes.txt "
        "(one per line, in probability-channel order)."
    )


def records_from_dir(
    data_dir: str,
    out_dir: str,
    *,
    classes: List[str],
    ignore: List[int],
    error_rate: float = 0.25,
    seed: int = 0,
    limit: Optional[int] = None,
) -> List[dict]:
    """Real images, labels and probabilities from ``data_dir`` (``images/``,
    ``labels/<stem>.png``, ``pred_probs/<stem>.npz|npy``), with planted
    errors written to copies of the label masks in ``out_dir/labels``.

    Raises:
        InvalidInputError: a missing subdirectory, or no complete image
    """
    import cv2

    from segqual_fo.errors import InvalidInputError
    from segqual_fo.options import probs_files_by_stem

    img_dir, lab_dir, prob_dir = (os.path.join(data_dir, d) for d in ("images", "labels", "pred_probs"))
    for d in (img_dir, lab_dir, prob_dir):
        if not os.path.isdir(d):
            raise InvalidInputError(
                f"--data {data_dir}: missing {os.path.basename(d)}/ (expected images/, labels/, pred_probs/)."
            )
    probs_by_stem = probs_files_by_stem(prob_dir)
    images = {os.path.splitext(n)[0]: n for n in os.listdir(img_dir) if n.lower().endswith(_IMAGE_EXTS)}
    stems = [s for s in sorted(images) if s in probs_by_stem and os.path.isfile(os.path.join(lab_dir, s + ".png"))]
    if limit:
        stems = stems[:limit]
    if not stems:
        raise InvalidInputError(f"--data {data_dir}: no image has both a labels/<stem>.png and pred_probs/<stem>.npz|npy.")
    rng = np.random.default_rng(seed)
    planted_idx = set(rng.choice(len(stems), size=int(round(len(stems) * error_rate)), replace=False).tolist())
    os.makedirs(os.path.join(out_dir, "labels"), exist_ok=True)
    records = []
    for i, stem in enumerate(stems):
        labels = cv2.imread(os.path.join(lab_dir, stem + ".png"), cv2.IMREAD_UNCHANGED)
        kind = None
        if i in planted_idx:
            kind = ERROR_KINDS[i % len(ERROR_KINDS)]
            if not plant_error(rng, labels, kind, classes=tuple(range(len(classes))), ignore=tuple(ignore)):
                kind = None
        mask_path = os.path.join(out_dir, "labels", stem + ".png")
        cv2.imwrite(mask_path, labels)
        records.append(
            dict(filepath=os.path.join(img_dir, images[stem]), mask_path=mask_path, probs_path=probs_by_stem[stem], planted=kind)
        )
    return records


def load_demo_dataset(name: str, records: List[dict], classes: List[str]):
    """A persistent FiftyOne dataset of the records (replaced if it exists):
    ``ground_truth`` masks, ``pred_probs_path``, ``planted`` and
    ``planted_kind``."""
    import fiftyone as fo

    if name in fo.list_datasets():
        fo.delete_dataset(name)
    ds = fo.Dataset(name, persistent=True)
    ds.add_samples(
        [
            fo.Sample(
                filepath=r["filepath"],
                ground_truth=fo.Segmentation(mask_path=r["mask_path"]),
                pred_probs_path=r["probs_path"],
                planted=r["planted"] is not None,
                planted_kind=r["planted"],
            )
            for r in records
        ],
        progress=False,
    )
    ds.mask_targets = {"ground_truth": dict(enumerate(classes))}
    return ds
