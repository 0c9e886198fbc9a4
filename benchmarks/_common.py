"""Shared helpers of the benchmarks: synthetic data, timing, memory, output.

Data is synthetic but shaped like a real segmentation dataset:

- labels: a background (class 0) with 3-8 rectangles or ellipses of random
  foreground classes painted over it, so masks are spatially coherent;
- probabilities: the softmax of an imperfect model's logits, i.e. per-pixel
  noise plus coarse (spatially smooth) noise, a boost on the labelled class,
  and 1-3 regions per image where the model confidently prefers another
  class (the "label errors" confident learning should find).

Everything is drawn from ``np.random.default_rng(seed)``, image by image, so
the same seed gives the same images whether they are stacked in memory or
written to disk one file at a time.
"""

from __future__ import annotations

import gc
import os
import platform
import sys
import time
import tracemalloc
from typing import Callable, Iterator, Tuple

import numpy as np

#: Logit added to the labelled class (self-confidence around 0.6 with K=21).
LABEL_BOOST = 4.0
#: Logit added to another class inside "the model disagrees" regions.
DISAGREE_BOOST = 6.5
#: Side of the cells of the spatially smooth part of the logit noise.
COARSE_CELL = 16


# -- synthetic data ----------------------------------------------------------
def make_label(rng: np.random.Generator, k: int, h: int, w: int) -> np.ndarray:
    """One (H,W) int64 mask: random rectangles/ellipses over background 0."""
    label = np.zeros((h, w), dtype=np.int64)
    yy, xx = np.ogrid[:h, :w]
    for _ in range(int(rng.integers(3, 9))):
        cls = int(rng.integers(1, k))
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(0.05, 0.25) * h, rng.uniform(0.05, 0.25) * w
        if rng.random() < 0.5:
            shape = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        else:
            shape = (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)
        label[shape] = cls
    return label


def make_probs(rng: np.random.Generator, label: np.ndarray, k: int) -> np.ndarray:
    """(K,H,W) float32 softmax probabilities of an imperfect model for ``label``."""
    h, w = label.shape
    logits = rng.standard_normal((k, h, w), dtype=np.float32)
    # spatially smooth noise: a coarse grid upsampled by repetition
    ch, cw = -(-h // COARSE_CELL), -(-w // COARSE_CELL)
    coarse = rng.standard_normal((k, ch, cw), dtype=np.float32) * np.float32(0.7)
    logits += coarse.repeat(COARSE_CELL, axis=1).repeat(COARSE_CELL, axis=2)[:, :h, :w]
    # the model mostly agrees with the label ...
    rows, cols = np.indices((h, w), sparse=True)
    logits[label, rows, cols] += np.float32(LABEL_BOOST)
    # ... except in a few regions where it confidently sees another class
    for _ in range(int(rng.integers(1, 4))):
        y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
        dy, dx = int(rng.integers(h // 32 + 1, h // 6 + 2)), int(rng.integers(w // 32 + 1, w // 6 + 2))
        logits[int(rng.integers(0, k)), y0 : y0 + dy, x0 : x0 + dx] += np.float32(DISAGREE_BOOST)
    logits -= logits.max(axis=0, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=0, keepdims=True)
    return logits


def iter_images(n: int, k: int, h: int, w: int, seed: int = 0) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """Yields ``(label (H,W), probs (K,H,W))`` for n images, deterministically."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        label = make_label(rng, k, h, w)
        yield label, make_probs(rng, label, k)


def make_dataset(n: int, k: int, h: int, w: int, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Stacked ``labels (N,H,W) int64`` and ``pred_probs (N,K,H,W) float32``."""
    labels = np.empty((n, h, w), dtype=np.int64)
    probs = np.empty((n, k, h, w), dtype=np.float32)
    for i, (label, p) in enumerate(iter_images(n, k, h, w, seed)):
        labels[i], probs[i] = label, p
    return labels, probs


class NpySequence:
    """Lazy sequence: ``seq[i]`` loads the i-th .npy file (no mmap), counting loads."""

    def __init__(self, paths):
        self.paths = list(paths)
        self.loads = 0

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:
        self.loads += 1
        return np.load(self.paths[i], allow_pickle=False)


# -- measuring -----------------------------------------------------------------
def best_time(fn: Callable[[], object], repeats: int, *, single_if_over: float = float("inf")):
    """Best wall time (s) of ``fn()`` over ``repeats`` runs, and the last result.

    Stops after the first run when it took longer than ``single_if_over`` s.
    The garbage collector is run before and disabled during each run.
    """
    best, result = float("inf"), None
    for r in range(repeats):
        result = None
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - t0
        finally:
            gc.enable()
        best = min(best, elapsed)
        if r == 0 and elapsed > single_if_over:
            break
    return best, result


def peak_traced_mb(fn: Callable[[], object]) -> float:
    """Peak Python-allocated memory (MB) that ``fn()`` adds, result included.

    numpy reports its data buffers to tracemalloc, so this covers arrays too
    (not memory a C extension allocates behind numpy's back).
    """
    gc.collect()
    started = tracemalloc.is_tracing()
    if not started:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = fn()
        peak = tracemalloc.get_traced_memory()[1]
        del result
    finally:
        if not started:
            tracemalloc.stop()
    return (peak - base) / 2**20


def max_rss_mb() -> float:
    """Peak resident set size of this process so far (MB)."""
    import resource

    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


def vm_hwm_mb() -> float:
    """Peak RSS of this process image since its execve (Linux VmHWM, MB), or NaN.

    Unlike ru_maxrss it never includes the parent's memory: a cross-check.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


# -- output ---------------------------------------------------------------------
def machine_info() -> str:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        import psutil

        mem = f", RAM {psutil.virtual_memory().total / 2**30:.1f} GiB"
    except ImportError:
        mem = ""
    return (
        f"machine: {platform.machine()} {platform.system()}, cpu_count={os.cpu_count()} "
        f"(usable {usable}){mem}; python {platform.python_version()}, numpy {np.__version__}"
    )


def print_table(headers, rows) -> None:
    """Prints rows (sequences of str) as an aligned text table."""
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(wd) for c, wd in zip(cells, widths)).rstrip()  # noqa: E731
    print(line(headers))
    print(line(["-" * wd for wd in widths]))
    for row in rows:
        print(line(row))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# A direct child's ru_maxrss starts at its parent's peak RSS (Linux keeps it
# across fork + execve), and a benchmark process may have held big arrays.
# Spawning through this tiny launcher gives the worker a small parent.
_LAUNCHER = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"


def run_fresh_worker(cmd, env, what: str) -> dict:
    """Runs ``cmd`` (a Python worker) through the launcher in its own process
    group and returns the JSON object on the last line of its stdout. If this
    process is interrupted, launcher and worker are both killed.

    Raises:
        RuntimeError: the worker failed (``what`` names it; its stderr's end)
    """
    import json
    import signal
    import subprocess

    proc = subprocess.Popen([sys.executable, "-c", _LAUNCHER] + list(cmd), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate()
    except BaseException:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{stderr[-4000:]}")
    return json.loads(stdout.strip().splitlines()[-1])



def parse_size(text: str) -> Tuple[int, int]:
    """``--size`` values: ``HxW`` (e.g. 256x512) or one number for a square."""
    import argparse

    try:
        parts = [int(x) for x in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected HxW (e.g. 256x512) or one number, got {text!r}")
    return parts[0], parts[1]
