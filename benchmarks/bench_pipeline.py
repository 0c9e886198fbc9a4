"""Benchmark of segqual_fo.compute_label_quality against the glue a user writes today.

What is measured
----------------
A seeded synthetic dataset is written to a temporary directory and loaded
into FiftyOne like real data: per image a JPEG, a label mask PNG (3-8
rectangles/ellipses of random classes over background 0, see ``_common``),
and float16 ``.npy`` probabilities (K,H,W) of a plausible imperfect model
(softmax of per-pixel plus spatially smooth noise, a boost on the labelled
class, and 1-3 regions where the model confidently sees another class). The
samples have ``ground_truth = fo.Segmentation(mask_path=...)``, a
``probs_path`` string field, and ``mask_targets`` naming the K classes.

1. End to end time, in this process, one run of each by default (the runs
   take seconds to minutes; ``--repeats R`` interleaves R runs of each side
   and takes the best), each run on its own freshly created dataset; the
   ratio of the two is what counts on a noisy machine:

   - ours: ``compute_label_quality(dataset, "ground_truth",
     probs_field="probs_path", method=..., output_dir=<tmp>,
     progress=False)``, which writes the score, the number of issue pixels,
     heatmap and issue-mask PNGs, issue regions and a run record;
   - the glue a user would write without us: read every mask
     (``cv2.imread``) and every ``.npy`` into two preallocated arrays
     (N,H,W) and (N,K,H,W) float32 (cleanlab needs arrays; float16 is
     converted), call cleanlab's
     ``segmentation.rank.get_label_quality_scores(labels, pred_probs,
     method=..., verbose=False, n_jobs=1)``, then for each sample set the
     score and ``fo.Heatmap(map=1 - pixel_scores[i], range=[0, 1])`` and
     ``sample.save()``. Loading is included; the breakdown is printed.

   Both methods are timed: "softmin" and "num_pixel_issues" (cleanlab's
   issue count with ``n_jobs=1``). Target: ours >= 5x faster end to end.
2. Scores: ours (field ``label_quality``, ``label_quality_npi``) against the
   glue's (``label_quality_glue``, ``label_quality_glue_npi``), read back from
   the database: max |ours - glue| <= 1e-6. As an extra check (no target)
   our heatmap PNGs are compared with ``round(255 * (1 - glue pixel score))``.
3. Peak RSS, softmin, each side in a fresh subprocess on persistent datasets
   of M and 2M images (M = ``--mem-n``, default N/2): the worker is started
   through a tiny launcher so its ru_maxrss does not inherit this process's
   peak (Linux keeps ru_maxrss across fork + exec), and also reports VmHWM
   from /proc as a cross-check. Ours: median of 3 runs per size. Target: ours
   grows by < 20% for twice the images; the glue's growth is printed (it
   holds every image in memory, so it grows linearly).

The glue needs about 1.4x (softmin) or 3.1x (cleanlab's issue count) the
float32 probabilities in RAM; a glue measurement that would not fit in the
available memory (psutil) is skipped and reported as SKIP.

Each side runs on its own freshly created dataset, so neither reads the
other's output fields. All datasets are uniquely named
(``segqual-bench-pipeline-<tag>-<hex>``) and deleted at the end, also on
failure, Ctrl-C or SIGTERM (after a SIGKILL:
``fo.delete_datasets("segqual-bench-pipeline-*")``); files go to a temporary
directory that is removed too.

Rerun from the repository root::

    PYTHONPATH=. python benchmarks/bench_pipeline.py              # default, 120 x 384x384 (~3.5 min on 2 cores)
    PYTHONPATH=. python benchmarks/bench_pipeline.py --quick      # smoke test, 12 x 128x128 (~30 s)
    PYTHONPATH=. python benchmarks/bench_pipeline.py --check      # exit 1 on a MISS
    PYTHONPATH=. python benchmarks/bench_pipeline.py --repeats 2  # steadier ratios (~5 min)
    PYTHONPATH=. python benchmarks/bench_pipeline.py --n 300 --size 512   # the issue's size (~9 min;
        # the glue's issue count then needs ~21 GiB, and is skipped if that much is not available)

Needs fiftyone (with a database), numpy, opencv, cleanlab (>= 2.6, dev
extra) and, optionally, psutil.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
if REPO_ROOT not in sys.path:
    sys.path.insert(1, REPO_ROOT)
if HERE not in sys.path:
    sys.path.insert(1, HERE)

from _common import machine_info, max_rss_mb, print_table, run_fresh_worker, verdict, vm_hwm_mb  # noqa: E402
from _datasets import (  # noqa: E402
    LABEL_FIELD,
    Datasets,
    load_average,
    raise_on_sigterm,
    warm_page_cache,
    write_files,
)

SPEEDUP_TARGET = 5.0
SCORE_TOL = 1e-6
#: method -> whether the per-image issue counts differ only in which pixels
#: tied at the cut-off each side takes (see tie_aware_check)
TIE_ONLY: Dict[str, bool] = {}
RSS_RATIO_TARGET = 1.20
DATASET_PREFIX = "segqual-bench-pipeline"
PROBS_FIELD = "probs_path"
#: score fields of each (side, method); ours also writes <field>_heatmap etc.
FIELDS = {
    ("ours", "softmin"): "label_quality",
    ("ours", "num_pixel_issues"): "label_quality_npi",
    ("glue", "softmin"): "label_quality_glue",
    ("glue", "num_pixel_issues"): "label_quality_glue_npi",
}
METHODS = ("softmin", "num_pixel_issues")


@dataclass
class Config:
    n: int
    size: int
    k: int
    mem_n: int
    mem_repeats: int = 3
    repeats: int = 1
    seed: int = 0

    def describe(self) -> str:
        values = self.n * self.k * self.size * self.size
        return (
            f"{self.n} images {self.size}x{self.size}, K={self.k} classes, float16 .npy probabilities "
            f"({values * 2 / 2**20:.0f} MB on disk, {values * 4 / 2**20:.0f} MB as float32); "
            f"peak RSS runs: {self.mem_n} vs {2 * self.mem_n} images"
        )


@dataclass
class Report:
    """Collects target verdicts; ``failed`` decides the exit code with --check."""

    targets: List[Tuple[str, bool]] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)

    def target(self, text: str, ok: bool) -> None:
        self.targets.append((text, ok))
        print(f"  {text:<84} {verdict(ok)}")

    def skip(self, text: str) -> None:
        self.skipped.append(text)
        print(f"  {text:<84} SKIP")

    @property
    def failed(self) -> bool:
        return not all(ok for _, ok in self.targets)



#: The glue's peak memory per byte of float32 probabilities (measured with
#: cleanlab 2.9: the array itself plus cleanlab's work arrays), and a margin.
GLUE_MEMORY_FACTOR = {"softmin": 1.4, "num_pixel_issues": 3.1}
GLUE_MEMORY_MARGIN = 2 << 30


def glue_too_big(n: int, cfg: "Config", method: str) -> Optional[str]:
    """Why the glue would not fit in the available memory, or None.

    The glue holds every image in memory; on a machine that other processes
    share, running out of memory would hurt them too, so it is skipped."""
    try:
        import psutil
    except ImportError:
        return None
    need = GLUE_MEMORY_FACTOR[method] * n * cfg.k * cfg.size * cfg.size * 4 + GLUE_MEMORY_MARGIN
    available = psutil.virtual_memory().available
    if need <= available:
        return None
    return (f"the glue ({method}, {n} images) needs about {need / 2**30:.1f} GiB, "
            f"{available / 2**30:.1f} GiB available")


# -- the two sides ----------------------------------------------------------------
def run_ours(dataset, method: str, output_dir: str) -> dict:
    import segqual_fo

    compute_label_quality = segqual_fo.compute_label_quality  # lazy import, outside the timing
    t0 = time.perf_counter()
    results = compute_label_quality(
        dataset,
        LABEL_FIELD,
        probs_field=PROBS_FIELD,
        method=method,
        score_field=FIELDS[("ours", method)],
        output_dir=output_dir,
        progress=False,
    )
    total = time.perf_counter() - t0
    if results.failures or results.num_scored != len(dataset):
        raise RuntimeError(f"ours failed on {len(results.failures)} samples: {results.failures[:3]}")
    return {"total": total}


def run_glue(dataset, method: str) -> dict:
    """What a user writes without segqual_fo (timed in phases; returns the scores too)."""
    import cv2
    import fiftyone as fo
    from cleanlab.segmentation.rank import get_label_quality_scores

    score_field = FIELDS[("glue", method)]
    t0 = time.perf_counter()
    mask_paths = dataset.values(f"{LABEL_FIELD}.mask_path")
    probs_paths = dataset.values(PROBS_FIELD)
    k, h, w = np.load(probs_paths[0], mmap_mode="r").shape
    n = len(probs_paths)
    labels = np.empty((n, h, w), dtype=np.uint8)  # the masks are 8-bit PNGs
    pred_probs = np.empty((n, k, h, w), dtype=np.float32)  # cleanlab needs float arrays
    for i, (mp, pp) in enumerate(zip(mask_paths, probs_paths)):
        labels[i] = cv2.imread(mp, cv2.IMREAD_UNCHANGED)
        pred_probs[i] = np.load(pp)  # float16 -> float32
    t1 = time.perf_counter()
    image_scores, pixel_scores = get_label_quality_scores(
        labels, pred_probs, method=method, verbose=False, n_jobs=1
    )
    t2 = time.perf_counter()
    for i, sample in enumerate(dataset.iter_samples(progress=False)):
        sample[score_field] = float(image_scores[i])
        sample[f"{score_field}_heatmap"] = fo.Heatmap(
            map=(1 - pixel_scores[i]).astype(np.float32), range=[0, 1]
        )
        sample.save()
    t3 = time.perf_counter()
    return {
        "total": t3 - t0,
        "load": t1 - t0,
        "cleanlab": t2 - t1,
        "write": t3 - t2,
        "image_scores": np.asarray(image_scores, dtype=np.float64),
        "pixel_scores": pixel_scores,
    }


# -- 1 + 2. speed and parity ----------------------------------------------------------
def heatmap_check(dataset, pixel_scores: np.ndarray, heat_field: str, max_images: int = 20) -> Tuple[int, int]:
    """Pixels (of the first images) where our heatmap PNG differs from
    round(255 * (1 - glue pixel score)) by more than 1 level; and pixels compared."""
    import cv2

    paths = dataset.limit(max_images).values(f"{heat_field}.map_path")
    bad = total = 0
    for i, p in enumerate(paths):
        ours = cv2.imread(p, cv2.IMREAD_UNCHANGED).astype(np.int16)
        ref = np.rint(255 * np.clip(1 - pixel_scores[i].astype(np.float64), 0, 1)).astype(np.int16)
        bad += int(np.count_nonzero(np.abs(ours - ref) > 1))
        total += ref.size
    return bad, total


def scores_by_filepath(dataset, score_field: str) -> Dict[str, float]:
    return dict(zip(*dataset.values(["filepath", score_field])))


def compare(cfg: Config, method: str, ours_ds, glue_ds, glue: dict) -> Tuple[float, List[str]]:
    """Max |ours - glue| over the image scores read back from the two datasets,
    and lines of extra checks (no targets)."""
    ours_f, glue_f = FIELDS[("ours", method)], FIELDS[("glue", method)]
    ours_s = scores_by_filepath(ours_ds, ours_f)
    glue_s = scores_by_filepath(glue_ds, glue_f)
    if ours_s.keys() != glue_s.keys() or None in ours_s.values() or None in glue_s.values():
        raise RuntimeError(f"{method}: the two sides did not score the same samples")
    paths = sorted(ours_s)
    a = np.array([ours_s[p] for p in paths], dtype=np.float64)
    b = np.array([glue_s[p] for p in paths], dtype=np.float64)
    diff = float(np.max(np.abs(a - b)))
    lines = []
    mem_diff = float(np.max(np.abs(np.array(glue_ds.values(glue_f), dtype=np.float64) - glue["image_scores"])))
    bad, total = heatmap_check(ours_ds, glue["pixel_scores"], ours_f + "_heatmap")
    lines.append(f"{method}: glue scores in the database vs in memory: max diff {mem_diff:.1e}; our heatmap "
                 f"PNGs vs round(255 * (1 - glue pixel score)): {bad} of {total} pixels off by > 1")
    if method == "num_pixel_issues":
        # score = 1 - issue pixels / valid pixels (no pixel is ignored here)
        pixels = cfg.size * cfg.size
        ours_n = np.rint((1 - a) * pixels).astype(np.int64)
        glue_n = np.rint((1 - b) * pixels).astype(np.int64)
        counts = dict(zip(*ours_ds.values(["filepath", ours_f + "_num_issues"])))
        stored = np.array([counts[p] for p in paths], dtype=np.int64)
        per_image = np.abs(ours_n - glue_n)
        lines.append(
            f"{method}: issue pixels in total: ours {int(ours_n.sum())} (field {ours_f}_num_issues: "
            f"{int(stored.sum())}), glue {int(glue_n.sum())}; {int(np.count_nonzero(per_image))} of {len(paths)} "
            f"images differ, by at most {int(per_image.max())} pixels"
        )
        ok, line = tie_aware_check(ours_ds, glue_ds, ours_f, paths, glue["pixel_scores"], ours_n, glue_n, stored)
        TIE_ONLY[method] = ok
        lines.append(f"{method}: {line}")
    return diff, lines


def tie_aware_check(ours_ds, glue_ds, ours_f, paths, pixel_scores, ours_n, glue_n, stored) -> Tuple[bool, str]:
    """Whether the per-image issue counts of both sides differ only in which
    pixels tied at the cut-off they take.

    The cut-off ``c`` is the highest self-confidence among our flagged
    pixels (read from our issue PNGs). A pixel can be an issue only where the
    model's argmax is not its label ("disagrees"). With exact scores on both
    sides, every disagreeing pixel scoring below ``c`` is flagged by both,
    none above ``c`` is, and only those exactly at ``c`` may be split
    differently. So per image, with ``below`` = disagreeing pixels under
    ``c`` and ``tied`` = disagreeing pixels at ``c``, each side's count must
    lie in ``[below, below + tied]``, our stored count must equal our
    flagged pixels, and both totals must agree.
    """
    import cv2

    glue_index = {p: i for i, p in enumerate(glue_ds.values("filepath"))}  # pixel_scores order
    by_path = dict(zip(*ours_ds.values(["filepath", f"{ours_f}_issues.mask_path"])))
    label_paths = dict(zip(*ours_ds.values(["filepath", f"{LABEL_FIELD}.mask_path"])))
    probs_paths = dict(zip(*ours_ds.values(["filepath", PROBS_FIELD])))
    flagged, disagree, scores = [], [], []
    for p in paths:
        flagged.append(cv2.imread(by_path[p], cv2.IMREAD_UNCHANGED) > 0)
        labels = cv2.imread(label_paths[p], cv2.IMREAD_UNCHANGED).astype(np.intp)
        probs = np.load(probs_paths[p])
        disagree.append(np.argmax(probs, axis=0) != labels)
        scores.append(pixel_scores[glue_index[p]])
    cutoff = max(float(s[f].max()) for s, f in zip(scores, flagged) if f.any())
    below = np.array([np.count_nonzero(d & (s < cutoff)) for s, d in zip(scores, disagree)])
    tied = np.array([np.count_nonzero(d & (s == cutoff)) for s, d in zip(scores, disagree)])
    ours_px = np.array([np.count_nonzero(f) for f in flagged])
    within = lambda n: bool(np.all((below <= n) & (n <= below + tied)))  # noqa: E731
    ok = (
        within(ours_n) and within(glue_n) and int(ours_n.sum()) == int(glue_n.sum())
        and np.array_equal(ours_px, ours_n) and np.array_equal(stored, ours_n)
    )
    return ok, (
        f"tie-aware per-image check {'passed' if ok else 'FAILED'}: cut-off {cutoff:.6g}, "
        f"{int(tied.sum())} disagreeing pixels tied at it in {int(np.count_nonzero(tied))} images; every "
        "image's count on both sides lies between its pixels below the cut-off and those plus its ties"
    )


def speed_and_parity(cfg: Config, records: List[dict], datasets: Datasets, out_dir: str, report: Report) -> None:
    runs = "one run each" if cfg.repeats == 1 else f"best of {cfg.repeats} interleaved runs each"
    print(f"\n== 1. End to end, in this process ({cfg.n} images {cfg.size}x{cfg.size}, K={cfg.k}; {runs}, "
          "each run on its own fresh dataset) ==")
    rows, times, diffs, extra, skipped = [], {}, {}, [], {}
    for method in METHODS:
        reason = glue_too_big(cfg.n, cfg, method)
        if reason:
            skipped[method] = reason
            print(f"  {method}: skipped: {reason}")
            continue
        best_ours = best_glue = None
        for r in range(cfg.repeats):
            ours_ds = datasets.create(records, cfg.k, persistent=False, tag=f"ours-{method[:3]}")
            glue_ds = datasets.create(records, cfg.k, persistent=False, tag=f"glue-{method[:3]}")
            ours = run_ours(ours_ds, method, os.path.join(out_dir, f"ours-{method}-{r}"))
            print(f"  ours {method}: {ours['total']:.2f} s")
            glue = run_glue(glue_ds, method)
            print(f"  glue {method}: {glue['total']:.2f} s (load {glue['load']:.2f}, cleanlab "
                  f"{glue['cleanlab']:.2f}, per-sample writes {glue['write']:.2f})")
            if r == cfg.repeats - 1:  # the last run's outputs are checked
                diffs[method], lines = compare(cfg, method, ours_ds, glue_ds, glue)
                extra += lines
            glue.pop("pixel_scores")
            best_ours = ours if best_ours is None or ours["total"] < best_ours["total"] else best_ours
            best_glue = glue if best_glue is None or glue["total"] < best_glue["total"] else best_glue
            del glue
            datasets.delete(ours_ds)
            datasets.delete(glue_ds)
        ours, glue = best_ours, best_glue
        times[method] = (ours["total"], glue["total"])
        n = cfg.n
        rows.append([method, f"{ours['total']:.2f}", f"{glue['total']:.2f}",
                     f"{glue['total'] / ours['total']:.2f}x faster",
                     f"{n / ours['total']:.1f}", f"{n / glue['total']:.1f}",
                     f"{glue['load']:.1f} / {glue['cleanlab']:.1f} / {glue['write']:.1f}"])
    print()
    print_table(["method", "ours s", "glue s", "ratio", "ours img/s", "glue img/s",
                 "glue load / cleanlab / writes s"], rows)

    print("\n== 2. Scores (read back from the datasets, matched by filepath) ==")
    for method in diffs:
        print(f"  {method}: max |ours - glue| image score = {diffs[method]:.2e}")
    for line in extra:
        print(f"  {line}")

    print("\n  targets:")
    for method in METHODS:
        text = f"[{method}] end-to-end speed-up vs glue (target >= {SPEEDUP_TARGET:g}x)"
        if method in skipped:
            report.skip(f"{text}: not measured")
            continue
        ours_s, glue_s = times[method]
        speed = glue_s / ours_s
        report.target(f"{text}: {speed:.2f}x", speed >= SPEEDUP_TARGET)
    for method in METHODS:
        text = f"[{method}] scores identical (<= {SCORE_TOL:g})"
        if method in skipped:
            report.skip(f"{text}: not measured")
            continue
        if method == "num_pixel_issues" and diffs[method] > SCORE_TOL:
            # cleanlab breaks ties at the cut-off by an unstable sort, so with
            # float16 inputs (many equal scores) images may differ, but only
            # by which tied pixels at the cut-off they take (tie_aware_check)
            report.target(
                f"[{method}] per-image issue counts equal up to pixels tied at the cut-off "
                f"(max score diff {diffs[method]:.1e})",
                TIE_ONLY.get(method, False),
            )
            continue
        report.target(f"{text}: max diff {diffs[method]:.1e}", diffs[method] <= SCORE_TOL)


# -- 3. peak RSS in fresh subprocesses -------------------------------------------------------
# Each side runs in a fresh worker started through _common's launcher: this
# process held the glue's arrays, and a direct child would inherit its peak RSS.


def memory_worker(side: str, method: str, name: str, output_dir: str) -> None:
    """Runs in a fresh subprocess: one side on one dataset, prints one JSON line."""
    import fiftyone as fo

    import segqual_fo.fo.compute  # noqa: F401  (import cost outside the measured growth)

    if side == "glue":
        import cleanlab.segmentation.rank  # noqa: F401
        import cv2  # noqa: F401
    dataset = fo.load_dataset(name)
    n = len(dataset)
    rss_before = max_rss_mb()
    out = run_ours(dataset, method, output_dir) if side == "ours" else run_glue(dataset, method)
    print(json.dumps({
        "n": n,
        "peak_rss_mb": max_rss_mb(),
        "vm_hwm_mb": vm_hwm_mb(),
        "rss_before_mb": rss_before,
        "seconds": out["total"],
    }))


def run_memory_subprocess(side: str, method: str, name: str, output_dir: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p)
    worker = [sys.executable, os.path.abspath(__file__), "--_memory-worker", side, method, name, output_dir]
    return run_fresh_worker(worker, env, f"memory worker ({' '.join(worker)})")


def peak_memory(cfg: Config, datasets_by_n: Dict[Tuple[str, int], str], out_dir: str, report: Report) -> None:
    """Ours: median of cfg.mem_repeats runs per size (with worker threads its peak
    varies by several percent from run to run); the glue: one run (no target)."""
    m1, m2 = cfg.mem_n, 2 * cfg.mem_n
    ours_runs = f"median of {cfg.mem_repeats} runs" if cfg.mem_repeats > 1 else "1 run"
    print(f"\n== 3. Peak RSS, softmin, fresh subprocess per run: {m1} vs {m2} images "
          f"(ours: {ours_runs}; glue: 1 run) ==")
    rows, ratios = [], {}
    for side, repeats in (("ours", cfg.mem_repeats), ("glue", 1)):
        reason = glue_too_big(m2, cfg, "softmin") if side == "glue" else None
        if reason:
            print(f"  glue: skipped: {reason}")
            continue
        median = {}
        for m in (m1, m2):
            runs = sorted((run_memory_subprocess(side, "softmin", datasets_by_n[side, m],
                                                 os.path.join(out_dir, f"mem-{side}-{m}"))
                           for _ in range(repeats)), key=lambda r: r["peak_rss_mb"])
            r = median[m] = runs[len(runs) // 2]
            rows.append([side, str(m), f"{r['peak_rss_mb']:.0f}",
                         " ".join(f"{x['peak_rss_mb']:.0f}" for x in runs), f"{r['vm_hwm_mb']:.0f}",
                         f"{r['rss_before_mb']:.0f}", f"{r['peak_rss_mb'] - r['rss_before_mb']:.0f}",
                         f"{r['seconds']:.1f}"])
        ratios[side] = median[m2]["peak_rss_mb"] / median[m1]["peak_rss_mb"]
    print_table(["side", "images", "peak RSS MB", "all runs", "VmHWM MB", "before run MB", "added MB", "run s"],
                rows)
    print("  (peak RSS = ru_maxrss of the worker; VmHWM = the same run's peak RSS from /proc, a cross-check; "
          "'before run' = after imports and loading the dataset)")
    if "glue" in ratios:
        print(f"  glue: peak RSS {m2} / {m1} images (no target; it holds every image in memory): "
              f"{ratios['glue']:.3f}")
    report.target(f"peak RSS 2N/N images, ours (target < {RSS_RATIO_TARGET:.2f}): {ratios['ours']:.3f}",
                  ratios["ours"] < RSS_RATIO_TARGET)


# -- main -------------------------------------------------------------------------------------
def parse_args(argv: Optional[list] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=None, help="images in the timed dataset (default 120)")
    parser.add_argument("--size", type=int, default=None, help="image height = width (default 384)")
    parser.add_argument("--classes", type=int, default=None, help="number of classes K (default 21)")
    parser.add_argument("--mem-n", type=int, default=None,
                        help="N of the peak-RSS runs, which compare N with 2N images (default: --n / 2)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="timed runs of each side per method, interleaved; the best counts (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--check", action="store_true", help="exit 1 if any target is missed")
    parser.add_argument("--_memory-worker", nargs=4, metavar=("SIDE", "METHOD", "DATASET", "OUTPUT_DIR"),
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace) -> Config:
    n, size, k = (12, 128, 21) if args.quick else (120, 384, 21)
    n = args.n or n
    size = args.size or size
    k = args.classes or k
    if k > 255:
        raise SystemExit("--classes must be <= 255 (masks are 8-bit PNGs)")
    mem_n = args.mem_n or max(n // 2, 2)
    if args.repeats < 1:
        raise SystemExit("--repeats must be >= 1")
    return Config(n=n, size=size, k=k, mem_n=mem_n, mem_repeats=1 if args.quick else 3, repeats=args.repeats,
                  seed=args.seed)


def main(argv: Optional[list] = None) -> int:
    args = parse_args(argv)
    if args._memory_worker:
        memory_worker(*args._memory_worker)
        return 0

    t_start = time.perf_counter()
    cfg = config_from(args)
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    import cleanlab
    import fiftyone as fo

    import segqual_fo

    print(machine_info())
    print(f"segqual_fo {segqual_fo.__version__}, fiftyone {fo.__version__}, cleanlab {cleanlab.__version__}; "
          f"mode: {'quick' if args.quick else 'full'}")
    print(f"configuration: {cfg.describe()}")
    print(f"load average at start: {load_average()} (other processes on the machine disturb the timings)")
    report = Report()
    datasets = Datasets(DATASET_PREFIX)
    tmp = tempfile.mkdtemp(prefix="segqual-bench-pipeline-")
    try:
        t0 = time.perf_counter()
        n_files = max(cfg.n, 2 * cfg.mem_n)
        records = write_files(os.path.join(tmp, "data"), n_files, cfg.k, cfg.size, cfg.seed, dtype=np.float16)
        size_mb = sum(e.stat().st_size for d in os.scandir(os.path.join(tmp, "data"))
                      for e in os.scandir(d.path)) / 2**20
        warm_page_cache(os.path.join(tmp, "data"))
        print(f"wrote {n_files} images ({size_mb:.0f} MB) in {time.perf_counter() - t0:.1f} s "
              "(flushed to disk, then read once so both sides start from a warm page cache)")
        if args.quick:
            print("quick mode: a smoke test; at this size fixed costs dominate and the speed targets mean nothing")

        speed_and_parity(cfg, records[: cfg.n], datasets, os.path.join(tmp, "out"), report)
        # persistent: the workers are other processes; one dataset per side and size,
        # so that neither side reads the other's output fields
        mem = {(side, m): datasets.create(records[:m], cfg.k, persistent=True, tag=f"mem-{side}{m}").name
               for side in ("ours", "glue") for m in (cfg.mem_n, 2 * cfg.mem_n)}
        peak_memory(cfg, mem, os.path.join(tmp, "out"), report)
    finally:
        datasets.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\nload average at the end: {load_average()}")
    missed = [text for text, ok in report.targets if not ok]
    skipped = f", {len(report.skipped)} skipped" if report.skipped else ""
    print(f"\n== Summary: {len(report.targets) - len(missed)}/{len(report.targets)} targets met{skipped} "
          f"(total {time.perf_counter() - t_start:.0f} s) ==")
    for text in missed:
        print(f"  MISS {text}")
    return 1 if args.check and report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
