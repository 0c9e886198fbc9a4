"""Benchmark: scoring straight from a model vs storing its probabilities
(uint8 .npz), then scoring the files; and what the quantisation costs.

``compute_label_quality(model=...)`` runs each image through the model once
and scores its output directly. The alternative is
``save_probabilities(...)`` (each image's probabilities at the model's
resolution as a compressed ``round(p * 255)`` uint8 ``.npz``) followed by
``compute_label_quality(probs_field=..., resize=True)``: slower once, but the
files can be scored again without the model. This script measures, on the
same model and data:

(a) images per second of both, per method ("softmin", "num_pixel_issues"),
    and the ratio (save + score files) / model path, against the network
    alone (decoding the images and running it, nothing else);
(b) bytes per image of the stored uint8 ``.npz`` vs raw float32 (K*h*w*4)
    and vs ``np.savez_compressed`` of the float32 probabilities (what
    compression alone gives);
(c) what quantisation does to the scores: max and mean |score difference|
    between the model path and the stored path, Spearman rank correlation
    of the image scores, and the overlap of the worst 10% of images (also:
    how many of those have planted label errors, per path, and how many
    images the issue count finds no issue pixel in).

    Why the issue count can move more than softmin: it flags the T lowest
    self-confidences s of the whole dataset (T from the confident joint).
    From a confident model the T-th lowest float s is often below 1/510,
    where uint8 storage rounds s to exactly 0 (bilinearly interpolated
    between zeros): then more pixels tie at the cut-off than are taken, and
    the library's tie rule (earliest images first, see
    ``segqual_fo.core.issues``) gives them to the first images of the
    dataset; the last ones may get none. Whether that happens depends on the
    data (seed 0 at 200 images escapes it; seed 1 at 200 images and seed 0
    at 24 images do not).

The model
---------
An ONNX network built here with the ``onnx`` package (opset 13, run by
onnxruntime on the CPU via ``segqual_fo.onnx_model``), with weights set by
hand so that it is a nearest-colour classifier:

1. edge-pad, 3x3 conv stride 2, ReLU: for each class k the window's mean
   colour x (RGB in [0, 1]) gives z_k = beta * (2 x.c_k - |c_k|^2)
   = -beta |x - c_k|^2 + beta |x|^2, with c_k the class colour; the layer
   outputs relu(z_k) and relu(-z_k) (so the ReLU loses nothing);
2. edge-pad, 3x3 conv stride 2 (stride 4 overall), ReLU: a [1 2 1] x [1 2 1]
   / 16 blur of each z_k (pooling at the stride), again as a +/- pair;
3. edge-pad, 3x3 conv stride 1 (or 2 with ``--stride 8``), ReLU: the same
   blur again;
4. 1x1 conv: the logits z_k (the +/- pairs recombined).

So the logits are -beta * squared distance of the (blurred) pixel colour
to each class colour, up to a per-pixel constant that the softmax ignores:
the posterior of a Gaussian class model (beta = 100 is sigma = 18/255 per
channel). Output (N, 19, H/4, W/4) logits (``logits=True``). The hidden
layers carry ``width`` redundant copies of each +/- pair, densely connected
(2 * 19 * width channels; the function does not depend on ``width``), only
so that inference costs what a small real network costs: at the default
width 2, layers 2 and 3 are 76x76 3x3 convolutions, ~0.45 GMAC per 256x512
image.

The data
--------
K=19 classes with the Cityscapes palette (trainId order), so some classes
are close in colour (bus/train, car/truck, pole/fence): the model is unsure
there, as along every boundary (the blur), and confident elsewhere. Each
true label map is a street-like scene: a sky band, a band of
building/vegetation/wall/fence segments, road below with a sidewalk strip,
then 3-8 objects (ellipses or rectangles of the other classes). The image
is the class colours plus Gaussian noise (sigma 24 per channel), saved as a
JPEG (quality 90). The label PNG is the true map except in a fraction of
the images (20%) with 1-2 planted errors: an object relabelled as another
class, or a shape that is not in the image (at least 0.4% of the image).

What is measured
----------------
Images and masks are written (seeded) to a temporary directory. Then, each
in a fresh subprocess (through ``_common.run_fresh_worker``):

- infer: decode every image (``read_rgb``), then time the network alone on
  them in batches of 8 (the session built and run once before the timing).
  Then, untimed: the float32 softmax of each output, its
  ``np.savez_compressed`` size, and the network's pixel accuracy against
  the true labels at its resolution.
- model path: a FiftyOne dataset of the images and masks, then per method
  ``compute_label_quality(ds, "ground_truth", model=onnx_model(path),
  logits=True, method=...)``, timed;
- stored path: a dataset, then ``save_probabilities(ds, onnx_model(path),
  <dir>, logits=True)`` timed, then per method ``compute_label_quality(ds,
  "ground_truth", probs_field="pred_probs_path", resize=True,
  method=...)``, timed.

Both paths use the defaults otherwise (``batch_size`` 8, all usable CPUs,
outputs written to a temporary directory, progress off); in both the ONNX
session is built before the timings. Each method writes its own score
field. The model-path and stored-path workers alternate their order, and
the order of the methods, from round to round (``--repeats``, default 2);
each time reported is the best over the rounds; the scores are those of the
first round (and checked to be identical in the others). Ratios compare
times from the same run; absolute times are printed for context (the
machine may be busy).

Times are for 2 quiet cores; a busy database (other FiftyOne processes)
can stretch each worker's untimed setup to minutes (printed per worker).

``--check`` exits 1 when a safe threshold is missed: stored .npz >= 10x
smaller than raw float32; Spearman >= 0.95 for both methods; the network's
pixel accuracy >= 0.8 (else the model is not a sensible one and the other
numbers mean little). Speed is printed, not checked.

Datasets are non-persistent, uniquely named
(``segqual-bench-model-<tag>-<hex>``) and deleted by the workers (also on
failure); files go to a temporary directory removed at the end. FiftyOne's
database validation is turned off in the workers
(``FIFTYONE_DATABASE_VALIDATION=false`` unless set).

Rerun from the repository root::

    PYTHONPATH=. python benchmarks/bench_model.py            # 200 images 256x512, 2 rounds (~2.5 min)
    PYTHONPATH=. python benchmarks/bench_model.py --quick    # smoke test: 24 images, 1 round (~20 s)
    PYTHONPATH=. python benchmarks/bench_model.py --n 500 --size 512x1024 --width 4 --repeats 1
    PYTHONPATH=. python benchmarks/bench_model.py --check    # exit 1 on a MISS

Needs fiftyone (with a database), numpy, opencv, onnx and onnxruntime.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
if REPO_ROOT not in sys.path:
    sys.path.insert(1, REPO_ROOT)
if HERE not in sys.path:
    sys.path.insert(1, HERE)

from _common import machine_info, parse_size, print_table, run_fresh_worker  # noqa: E402
from _datasets import LABEL_FIELD, Datasets, load_average, raise_on_sigterm  # noqa: E402

DATASET_PREFIX = "segqual-bench-model"
METHODS = ("softmin", "num_pixel_issues")  # segqual_fo.core.METHODS
PROBS_FIELD = "pred_probs_path"  # save_probabilities' default field

#: Cityscapes' 19 training classes (trainId order) and their label colours.
CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)  # fmt: skip
PALETTE = np.array(
    [
        (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
        (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
        (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
    ],
    dtype=np.uint8,
)  # fmt: skip
K = len(CLASSES)
ROAD, SIDEWALK, SKY = 0, 1, 10
BAND_CLASSES = (2, 3, 4, 8)  # building, wall, fence, vegetation
OBJECT_CLASSES = (3, 4, 5, 6, 7, 9, 11, 12, 13, 14, 15, 16, 17, 18)

#: Logits are -BETA * squared colour distance (RGB in [0, 1]).
BETA = 100.0
#: Per-channel noise of the images (0-255 units).
NOISE = 24.0
#: Share of the images with planted label errors.
ERROR_RATE = 0.2
#: Smallest planted error, as a share of the image's pixels.
MIN_ERROR_SHARE = 0.004
#: Share of images in the "worst" set of (c).
WORST_SHARE = 0.10

#: --check thresholds
MIN_BYTES_RATIO = 10.0  # raw float32 bytes / stored .npz bytes
MIN_SPEARMAN = 0.95
MIN_ACCURACY = 0.8


@dataclass(frozen=True)
class Config:
    n: int = 200
    h: int = 256
    w: int = 512
    stride: int = 4
    width: int = 2
    repeats: int = 2

    def describe(self) -> str:
        return (f"{self.n} images {self.h}x{self.w} RGB (JPEG), K={K} (Cityscapes palette), "
                f"{ERROR_RATE:.0%} with planted label errors; network output stride {self.stride} "
                f"({self.h // self.stride}x{self.w // self.stride} logits), hidden width "
                f"{2 * K * self.width} channels; {self.repeats} round(s)")


DEFAULT = Config()
QUICK = Config(n=24, width=1, repeats=1)


# -- the network --------------------------------------------------------------------------------
def network_weights(palette: np.ndarray, *, beta: float = BETA, width: int = 2) -> Dict[str, np.ndarray]:
    """The hand-set weights (see the module docs): conv1 (W1, B1), the two
    blur layers (W2, W3) and the head (WH). Hidden channel (r, k, s) is
    index (r * K + k) * 2 + s: copy r of class k's +z (s=0) or -z (s=1)."""
    k = len(palette)
    c = palette.astype(np.float64) / 255.0
    ch = 2 * k * width
    sign = np.array([1.0, -1.0])
    w1 = np.zeros((ch, 3, 3, 3))
    b1 = np.zeros(ch)
    blur = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]) / 16.0
    w2 = np.zeros((ch, ch, 3, 3))
    wh = np.zeros((k, ch, 1, 1))
    for r in range(width):
        for j in range(k):
            for s in range(2):
                o = (r * k + j) * 2 + s
                # 9 taps of 2*beta*c/9: 2*beta*(mean colour . c)
                w1[o] = sign[s] * (2.0 * beta * c[j] / 9.0)[:, None, None]
                b1[o] = -sign[s] * beta * float(c[j] @ c[j])
                for r_in in range(width):  # +z - (-z) of every copy, averaged over the copies
                    i = (r_in * k + j) * 2
                    w2[o, i] = sign[s] * blur / width
                    w2[o, i + 1] = -sign[s] * blur / width
            i = (r * k + j) * 2
            wh[j, i, 0, 0] = 1.0 / width
            wh[j, i + 1, 0, 0] = -1.0 / width
    f32 = lambda a: a.astype(np.float32)  # noqa: E731
    return {"W1": f32(w1), "B1": f32(b1), "W2": f32(w2), "W3": f32(w2), "WH": f32(wh)}


def build_network(path: str, palette: np.ndarray = PALETTE, *, beta: float = BETA, width: int = 2,
                  stride: int = 4) -> str:
    """Writes the ONNX network (dynamic N, H, W; logits (N, K, H/stride,
    W/stride)) to ``path``. ``stride`` is 4 or 8; H and W must be multiples."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if stride not in (4, 8):
        raise ValueError(f"stride must be 4 or 8, got {stride}")
    k = len(palette)
    weights = network_weights(palette, beta=beta, width=width)
    pads = np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64)  # one pixel on each side of H and W
    inits = [numpy_helper.from_array(a, name) for name, a in weights.items()]
    inits.append(numpy_helper.from_array(pads, "PADS"))
    nodes = []
    x = "image"
    for i, (wname, bias, s) in enumerate((("W1", "B1", 2), ("W2", None, 2), ("W3", None, stride // 4)), 1):
        nodes.append(helper.make_node("Pad", [x, "PADS"], [f"pad{i}"], mode="edge"))
        nodes.append(helper.make_node("Conv", [f"pad{i}", wname] + ([bias] if bias else []), [f"conv{i}"],
                                      kernel_shape=[3, 3], strides=[s, s]))
        nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"]))
        x = f"relu{i}"
    nodes.append(helper.make_node("Conv", [x, "WH"], ["logits"], kernel_shape=[1, 1]))
    graph = helper.make_graph(
        nodes, "colour_segnet",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", k, "h", "w"])],
        initializer=inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def network_macs(cfg: Config) -> float:
    """Multiply-accumulates of one image through the network."""
    ch = 2 * K * cfg.width
    h2, w2 = cfg.h // 2, cfg.w // 2
    h4, w4 = cfg.h // 4, cfg.w // 4
    ho, wo = cfg.h // cfg.stride, cfg.w // cfg.stride
    return h2 * w2 * ch * 27 + h4 * w4 * ch * ch * 9 + ho * wo * ch * ch * 9 + ho * wo * ch * K


# -- the data -------------------------------------------------------------------------------------
def _shape(rng: np.random.Generator, h: int, w: int, y_lo: float = 0.0) -> np.ndarray:
    """A random ellipse or rectangle (boolean mask) centred below ``y_lo * h``."""
    yy, xx = np.ogrid[:h, :w]
    cy, cx = rng.uniform(y_lo * h, h), rng.uniform(0, w)
    ry, rx = rng.uniform(0.04, 0.2) * h, rng.uniform(0.03, 0.15) * w
    if rng.random() < 0.5:
        return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    return (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)


def make_scene(rng: np.random.Generator, h: int, w: int) -> Tuple[np.ndarray, List[np.ndarray]]:
    """A street-like (H,W) uint8 label map and the masks of its objects."""
    label = np.full((h, w), ROAD, dtype=np.uint8)
    sky = int(rng.uniform(0.15, 0.35) * h)
    ground = int(rng.uniform(0.5, 0.65) * h)
    label[:sky] = SKY
    cuts = np.sort(rng.integers(0, w, size=int(rng.integers(1, 4))))
    for x0, x1 in zip(np.r_[0, cuts], np.r_[cuts, w]):
        top = max(0, sky - int(rng.integers(0, max(1, sky // 2))))  # an uneven skyline
        label[top:ground, x0:x1] = BAND_CLASSES[int(rng.integers(len(BAND_CLASSES)))]
    # a sidewalk wedge on one side of the road
    yy, xx = np.ogrid[:h, :w]
    t = (yy - ground) / max(1, h - ground)
    edge = (0.15 + 0.25 * t) * w
    label[(yy >= ground) & ((xx < edge) if rng.random() < 0.5 else (xx > w - edge))] = SIDEWALK
    objects = []
    for _ in range(int(rng.integers(3, 9))):
        shape = _shape(rng, h, w, y_lo=0.25)
        label[shape] = OBJECT_CLASSES[int(rng.integers(len(OBJECT_CLASSES)))]
        objects.append(shape)
    return label, objects


def plant_errors(rng: np.random.Generator, truth: np.ndarray, objects: Sequence[np.ndarray]) -> Tuple[np.ndarray, int]:
    """The annotation of ``truth`` with 1-2 planted errors: a visible object
    relabelled as another class, or a shape that is not in the image."""
    mask = truth.copy()
    h, w = truth.shape
    min_px = MIN_ERROR_SHARE * h * w
    planted = 0
    for _ in range(int(rng.integers(1, 3))):
        for _attempt in range(20):
            if rng.random() < 0.5 and objects:
                region = objects[int(rng.integers(len(objects)))] & (mask == truth)
            else:
                region = _shape(rng, h, w, y_lo=0.2)
            if region.sum() < min_px:
                continue
            cls = OBJECT_CLASSES[int(rng.integers(len(OBJECT_CLASSES)))]
            wrong = region & (truth != cls)
            if wrong.sum() >= min_px:
                mask[wrong] = cls
                planted += 1
                break
    return mask, planted


def render(rng: np.random.Generator, truth: np.ndarray) -> np.ndarray:
    """The (H,W,3) uint8 RGB image: class colours plus Gaussian noise."""
    img = PALETTE[truth].astype(np.float32)
    img += rng.normal(0.0, NOISE, size=img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def write_data(directory: str, cfg: Config, seed: int) -> List[dict]:
    """Writes images (JPEG), label PNGs (with the planted errors) and the
    true label PNGs; returns one record per image."""
    import cv2

    for sub in ("images", "labels", "truth"):
        os.makedirs(os.path.join(directory, sub), exist_ok=True)
    rng = np.random.default_rng(seed)
    n_err = int(round(ERROR_RATE * cfg.n))
    with_errors = set(rng.choice(cfg.n, size=n_err, replace=False).tolist()) if n_err else set()
    records = []
    for i in range(cfg.n):
        truth, objects = make_scene(rng, cfg.h, cfg.w)
        mask, planted = plant_errors(rng, truth, objects) if i in with_errors else (truth, 0)
        img = render(rng, truth)
        stem = f"img_{i:06d}"
        rec = dict(
            filepath=os.path.join(directory, "images", stem + ".jpg"),
            mask_path=os.path.join(directory, "labels", stem + ".png"),
            truth_path=os.path.join(directory, "truth", stem + ".png"),
            planted=planted,
        )
        cv2.imwrite(rec["filepath"], img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
        cv2.imwrite(rec["mask_path"], mask)
        cv2.imwrite(rec["truth_path"], truth)
        records.append(rec)
    return records


# -- statistics ---------------------------------------------------------------------------------
def rank_average(a: np.ndarray) -> np.ndarray:
    """Ranks (0-based) with ties given their average rank."""
    a = np.asarray(a, dtype=np.float64)
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(len(a))
    ranks[order] = np.arange(len(a))
    _, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
    return (np.bincount(inverse, weights=ranks) / counts)[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = rank_average(a), rank_average(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denom = math.sqrt(float(ra @ ra) * float(rb @ rb))
    return float(ra @ rb) / denom if denom > 0 else float("nan")


def worst(scores: np.ndarray, m: int) -> np.ndarray:
    """Indices of the m lowest scores (ties broken by index)."""
    return np.lexsort((np.arange(len(scores)), scores))[:m]


def compare_scores(a: Dict[str, float], b: Dict[str, float], planted: Dict[str, int]) -> dict:
    """Model-path scores ``a`` vs stored-path scores ``b`` (by filepath)."""
    keys = sorted(a)
    if sorted(b) != keys:
        raise RuntimeError("the two paths scored different images")
    x = np.array([a[k] for k in keys], dtype=np.float64)
    y = np.array([b[k] for k in keys], dtype=np.float64)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise RuntimeError("undefined scores")
    m = max(1, math.ceil(WORST_SHARE * len(keys)))
    wa, wb = worst(x, m), worst(y, m)
    has_error = np.array([planted[k] > 0 for k in keys])
    d = np.abs(x - y)
    return {
        "max_abs_diff": float(d.max()),
        "mean_abs_diff": float(d.mean()),
        "spearman": spearman(x, y),
        "worst_m": m,
        "worst_overlap": len(set(wa.tolist()) & set(wb.tolist())),
        "planted_in_worst_model": int(has_error[wa].sum()),
        "planted_in_worst_stored": int(has_error[wb].sum()),
        "n_planted_images": int(has_error.sum()),
        "perfect_model": int((x == 1.0).sum()),
        "perfect_stored": int((y == 1.0).sum()),
    }


# -- the workers (fresh subprocesses) -------------------------------------------------------------
def worker_infer(spec: dict) -> dict:
    """The network alone, then (untimed) sizes and accuracy. No FiftyOne."""
    import io

    import cv2

    import segqual_fo
    from segqual_fo.adapters.models import read_rgb
    from segqual_fo.adapters.probs import softmax

    records, bs, stride = spec["records"], spec["batch_size"], spec["stride"]
    model = segqual_fo.onnx_model(spec["network"])
    t0 = time.perf_counter()
    images = [read_rgb(r["filepath"]) for r in records]
    decode_s = time.perf_counter() - t0
    model(images[:bs])  # builds the session, allocates: not timed
    t0 = time.perf_counter()
    outputs = []
    for i in range(0, len(images), bs):
        outputs.extend(model(images[i : i + bs]))
    infer_s = time.perf_counter() - t0
    del images

    correct = total = confident = 0
    maxp_sum = 0.0
    f32_npz = []
    for r, logits in zip(records, outputs):
        p = softmax(np.asarray(logits, dtype=np.float32), axis=0)
        buf = io.BytesIO()
        np.savez_compressed(buf, probs=p)
        f32_npz.append(len(buf.getvalue()))
        truth = cv2.imread(r["truth_path"], cv2.IMREAD_UNCHANGED)
        low = truth[stride // 2 :: stride, stride // 2 :: stride][: p.shape[1], : p.shape[2]]
        correct += int((p.argmax(axis=0) == low).sum())
        total += low.size
        mx = p.max(axis=0)
        maxp_sum += float(mx.sum())
        confident += int((mx >= 0.9).sum())
    shape = list(np.asarray(outputs[0]).shape)
    return {
        "decode_s": decode_s,
        "infer_s": infer_s,
        "output_shape": shape,
        "float32_npz_bytes": float(np.mean(f32_npz)),
        "accuracy": correct / total,
        "mean_max_prob": maxp_sum / total,
        "share_confident": confident / total,
        "onnxruntime": __import__("onnxruntime").__version__,
    }


def _scores(ds, score_field: str) -> Dict[str, float]:
    fps, values = ds.values(["filepath", score_field])
    return {fp: (float("nan") if v is None else float(v)) for fp, v in zip(fps, values)}


def _score(ds, method: str, out: str, **source) -> Tuple[float, Dict[str, float]]:
    import segqual_fo

    compute_label_quality = segqual_fo.compute_label_quality
    field = f"lq_{method}"
    t0 = time.perf_counter()
    res = compute_label_quality(ds, LABEL_FIELD, method=method, score_field=field,
                                output_dir=os.path.join(out, method), progress=False, **source)
    elapsed = time.perf_counter() - t0
    if res.failures or res.num_scored != len(ds):
        raise RuntimeError(f"{len(res.failures)} samples failed: {res.failures[:3]}")
    return elapsed, _scores(ds, field)


def worker_pipeline(spec: dict) -> dict:
    """The model path ("model") or the stored path ("stored"), both methods.
    Also reports the untimed phases (``overhead``: imports, building and
    deleting the dataset), which a busy database can make slow."""
    t_imports = time.perf_counter()
    import fiftyone as fo

    import segqual_fo
    import segqual_fo.fo.compute  # noqa: F401  (imports outside every timing)
    import segqual_fo.fo.save  # noqa: F401

    records, path, methods, out = spec["records"], spec["path"], spec["methods"], spec["output_dir"]
    model = segqual_fo.onnx_model(spec["network"])
    model.build()  # the ONNX session, once per process: not timed
    datasets = Datasets(DATASET_PREFIX)
    overhead = {"imports": time.perf_counter() - t_imports}
    result: dict = {"fiftyone": fo.__version__, "seconds": {}, "scores": {}, "overhead": overhead}
    try:
        t0 = time.perf_counter()
        ds = datasets.create(records, K, tag=path, probs_field=None)
        ds.mask_targets = {LABEL_FIELD: dict(enumerate(CLASSES))}
        ds.save()
        overhead["dataset"] = time.perf_counter() - t0
        if path == "model":
            source = dict(model=model, logits=True)
        else:
            t0 = time.perf_counter()
            saved = segqual_fo.save_probabilities(ds, model, os.path.join(out, "probs"), probs_field=PROBS_FIELD,
                                                  logits=True, progress=False)
            result["seconds"]["save"] = time.perf_counter() - t0
            if saved.failures or saved.num_written != len(records):
                raise RuntimeError(f"save_probabilities: {saved}")
            result["bytes_written"] = saved.bytes_written
            result["files_bytes"] = sum(os.path.getsize(p) for p in ds.values(PROBS_FIELD))
            source = dict(probs_field=PROBS_FIELD, resize=True)
        for method in methods:
            result["seconds"][method], result["scores"][method] = _score(ds, method, out, **source)
        t0 = time.perf_counter()
        datasets.delete(ds)
        overhead["delete"] = time.perf_counter() - t0
    finally:
        datasets.cleanup()
    return result


def run_worker(kind: str, spec: dict, spec_path: str) -> dict:
    with open(spec_path, "w") as f:
        json.dump(dict(spec, kind=kind), f)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p)
    env.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    cmd = [sys.executable, os.path.abspath(__file__), "--_worker", spec_path]
    return run_fresh_worker(cmd, env, f"worker ({kind} {spec.get('path', '')})")


def worker(spec_path: str) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    out = worker_infer(spec) if spec["kind"] == "infer" else worker_pipeline(spec)
    print(json.dumps(out))


# -- main -------------------------------------------------------------------------------------------
def parse_args(argv: Optional[list] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=None, help=f"images (default {DEFAULT.n}; quick {QUICK.n})")
    parser.add_argument("--size", type=parse_size, default=None,
                        help=f"image size HxW, multiples of the stride (default {DEFAULT.h}x{DEFAULT.w})")
    parser.add_argument("--stride", type=int, choices=(4, 8), default=None, help="network output stride (default 4)")
    parser.add_argument("--width", type=int, default=None,
                        help=f"copies of the hidden channels: the network's cost (default {DEFAULT.width}; "
                             f"quick {QUICK.width})")
    parser.add_argument("--repeats", type=int, default=None,
                        help=f"rounds of the two paths; best time kept (default {DEFAULT.repeats}; quick {QUICK.repeats})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smaller run: a smoke test")
    parser.add_argument("--check", action="store_true", help="exit 1 if a threshold is missed")
    parser.add_argument("--_worker", metavar="SPEC", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace) -> Config:
    cfg = QUICK if args.quick else DEFAULT
    for name in ("n", "stride", "width", "repeats"):
        value = getattr(args, name)
        if value is not None:
            if value < 1:
                raise SystemExit(f"--{name} must be >= 1")
            cfg = replace(cfg, **{name: value})
    if args.size is not None:
        cfg = replace(cfg, h=args.size[0], w=args.size[1])
    if cfg.h % cfg.stride or cfg.w % cfg.stride:
        raise SystemExit(f"the image size {cfg.h}x{cfg.w} must be divisible by the stride {cfg.stride}")
    return cfg


def _fmt_bytes(b: float) -> str:
    return f"{b / 1024:.1f} KiB" if b < 2**20 else f"{b / 2**20:.2f} MiB"


def main(argv: Optional[list] = None) -> int:
    args = parse_args(argv)
    if args._worker:
        worker(args._worker)
        return 0

    t_start = time.perf_counter()
    cfg = config_from(args)
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    import segqual_fo

    print(machine_info())
    print(f"segqual_fo {segqual_fo.__version__}; mode: {'quick' if args.quick else 'full'}")
    print(f"  {cfg.describe()}")
    print(f"  network: nearest-colour classifier, 3 conv layers + 1x1 head, logits = -{BETA:g} * squared colour "
          f"distance; {network_macs(cfg) / 1e9:.2f} GMAC per image")
    print(f"load average at start: {load_average()} (other processes on the machine disturb the timings)")
    if cfg != DEFAULT:
        print("non-default configuration")

    tmp = tempfile.mkdtemp(prefix="segqual-bench-model-")
    try:
        network = build_network(os.path.join(tmp, "net.onnx"), width=cfg.width, stride=cfg.stride)
        t0 = time.perf_counter()
        records = write_data(os.path.join(tmp, "data"), cfg, args.seed)
        planted = {r["filepath"]: r["planted"] for r in records}
        n_err = sum(1 for v in planted.values() if v)
        print(f"\nwrote {cfg.n} images in {time.perf_counter() - t0:.1f} s ({n_err} with "
              f"{sum(planted.values())} planted errors)")
        base = dict(network=network, records=records, batch_size=8, stride=cfg.stride)

        t0 = time.perf_counter()
        infer = run_worker("infer", base, os.path.join(tmp, "spec-infer.json"))
        infer_wall = time.perf_counter() - t0
        k, h, w = infer["output_shape"]
        print(f"  network alone: decode {infer['decode_s']:.2f} s, inference {infer['infer_s']:.2f} s "
              f"(onnxruntime {infer['onnxruntime']}); output {k}x{h}x{w}; pixel accuracy vs the true labels "
              f"{infer['accuracy']:.3f}, mean max probability {infer['mean_max_prob']:.3f}, "
              f"{infer['share_confident']:.0%} of pixels with max p >= 0.9 (worker {infer_wall:.0f} s)")

        runs: Dict[str, List[dict]] = {"model": [], "stored": []}
        for rnd in range(cfg.repeats):
            paths = ("model", "stored") if rnd % 2 == 0 else ("stored", "model")
            methods = list(METHODS if rnd % 2 == 0 else METHODS[::-1])
            for path in paths:
                spec = dict(base, path=path, methods=methods, output_dir=os.path.join(tmp, f"out-{path}-{rnd}"))
                t0 = time.perf_counter()
                r = run_worker("pipeline", spec, os.path.join(tmp, f"spec-{path}-{rnd}.json"))
                runs[path].append(r)
                secs = ", ".join(f"{m} {s:.2f} s" for m, s in r["seconds"].items())
                untimed = ", ".join(f"{k} {v:.1f} s" for k, v in r["overhead"].items())
                print(f"  round {rnd + 1}, {path} path: {secs} (worker {time.perf_counter() - t0:.0f} s in all; "
                      f"untimed: {untimed})")
            shutil.rmtree(os.path.join(tmp, f"out-stored-{rnd}", "probs"), ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    n = cfg.n
    best = {path: {key: min(r["seconds"][key] for r in rs) for key in rs[0]["seconds"]} for path, rs in runs.items()}
    first = {path: rs[0]["scores"] for path, rs in runs.items()}
    repeat_same = all(r["scores"] == rs[0]["scores"] for rs in runs.values() for r in rs[1:])
    versions = sorted({r["fiftyone"] for rs in runs.values() for r in rs})

    # (a) throughput
    alone = infer["decode_s"] + infer["infer_s"]
    print(f"\n== (a) Model path vs save, then score (fiftyone {', '.join(versions)}; best of {cfg.repeats} "
          "round(s), each path in a fresh process) ==")
    print(f"  network alone (decode + inference, one thread of calls): {alone:.2f} s = {n / alone:.1f} img/s "
          f"(inference only {n / infer['infer_s']:.1f} img/s)")
    save_s = best["stored"]["save"]
    rows, ratios = [], {}
    for m in METHODS:
        model_s, files_s = best["model"][m], best["stored"][m]
        stored_s = save_s + files_s
        ratios[m] = stored_s / model_s
        rows.append([m, f"{model_s:.2f}", f"{n / model_s:.1f}", f"{model_s / alone:.2f}x", f"{save_s:.2f}",
                     f"{files_s:.2f}", f"{n / files_s:.1f}", f"{stored_s:.2f}", f"{n / stored_s:.1f}",
                     f"{ratios[m]:.2f}x", f"{files_s / model_s:.2f}x"])
    print_table(["method", "model path s", "img/s", "vs network alone", "save s", "score files s", "img/s",
                 "save + score s", "img/s", "(save+score) / model path", "score files / model path"], rows)
    print("  model path = compute_label_quality(model=..., logits=True); save = save_probabilities(..., "
          "logits=True); score files = compute_label_quality(probs_field=..., resize=True)")

    # (b) bytes per image
    stored_b = runs["stored"][0]["bytes_written"] / n
    raw32 = k * h * w * 4
    print(f"\n== (b) Bytes per image (K={k}, {h}x{w} at the model's resolution) ==")
    size_rows = [
        ("stored uint8 .npz (save_probabilities)", stored_b),
        ("raw uint8 (K*h*w)", k * h * w),
        ("raw float16 (K*h*w*2)", k * h * w * 2),
        ("raw float32 (K*h*w*4)", raw32),
        ("float32 np.savez_compressed", infer["float32_npz_bytes"]),
    ]
    print_table(["format", "bytes/image", "", "vs stored .npz"],
                [[name, f"{b:,.0f}", _fmt_bytes(b), f"{b / stored_b:.1f}x"] for name, b in size_rows])
    if runs["stored"][0]["files_bytes"] != runs["stored"][0]["bytes_written"]:
        print(f"  note: files on disk {runs['stored'][0]['files_bytes']:,} B vs reported "
              f"{runs['stored'][0]['bytes_written']:,} B")
    bytes_ratio = raw32 / stored_b

    # (c) quantisation
    print(f"\n== (c) Quantisation: model-path scores vs stored-uint8 scores ({n} images) ==")
    cmp_rows, cmps = [], {}
    for m in METHODS:
        c = cmps[m] = compare_scores(first["model"][m], first["stored"][m], planted)
        cmp_rows.append([m, f"{c['max_abs_diff']:.2g}", f"{c['mean_abs_diff']:.2g}", f"{c['spearman']:.4f}",
                         f"{c['worst_overlap']}/{c['worst_m']}",
                         f"{c['planted_in_worst_model']}/{c['worst_m']}",
                         f"{c['planted_in_worst_stored']}/{c['worst_m']}"])
    print_table(["method", "max |diff|", "mean |diff|", "Spearman", f"worst {WORST_SHARE:.0%} overlap",
                 "planted in worst: model", "stored"], cmp_rows)
    c = cmps["num_pixel_issues"]
    print(f"  num_pixel_issues: images with no issue pixel (score 1.0): model path {c['perfect_model']}, "
          f"stored {c['perfect_stored']}")
    print(f"  {n_err} of {n} images have planted errors; scores of later rounds identical to the first: "
          f"{'yes' if repeat_same else 'NO'}")

    checks = [
        (f"stored .npz >= {MIN_BYTES_RATIO:g}x smaller than raw float32: {bytes_ratio:.1f}x",
         bytes_ratio >= MIN_BYTES_RATIO),
        (f"network pixel accuracy >= {MIN_ACCURACY:g} (a sensible model): {infer['accuracy']:.3f}",
         infer["accuracy"] >= MIN_ACCURACY),
    ]
    for m in METHODS:
        s = cmps[m]["spearman"]
        checks.append((f"[{m}] Spearman model vs stored >= {MIN_SPEARMAN:g}: {s:.4f}", s >= MIN_SPEARMAN))
    print("\n  checks:")
    for text, ok in checks:
        print(f"  {text:<72} {'met' if ok else 'MISSED'}")
    print(f"\nload average at the end: {load_average()}")
    missed = [text for text, ok in checks if not ok]
    print(f"\n== Summary: {len(checks) - len(missed)}/{len(checks)} checks met; (save + score) / model path: "
          + ", ".join(f"{m} {ratios[m]:.2f}x" for m in METHODS)
          + f"; stored {bytes_ratio:.0f}x smaller than float32 (total {time.perf_counter() - t_start:.0f} s) ==")
    for text in missed:
        print(f"  MISS {text}")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
