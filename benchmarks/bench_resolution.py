"""Benchmark: compute_label_quality on model-resolution probabilities, against
the time it takes just to read them (issue 14's baseline).

Models output probabilities at a fraction of the mask's resolution (1/4 here)
and store them compactly (uint8 in a compressed ``.npz``). Scoring such data
should cost little more than reading it. This script measures how far
today's pipeline is from that; it changes no library code.

What is measured
----------------
Two cases, written (seeded) to a temporary directory:

- big: 10 images, label masks 1024x2048 (8-bit PNG, K=19 classes), the
  probabilities at 256x512;
- tiny: 1,500 images, masks 64x64 (K=5), the probabilities at 16x16.

Masks are ``_common.make_label``'s rectangles and ellipses over background
0. Probabilities come from ``_common.make_probs`` applied to the mask
downsampled to the model's resolution (nearest neighbour): the softmax of
per-pixel plus spatially smooth noise, a boost on the labelled class and 1-3
regions where the model confidently sees another class; they are quantised
to ``round(p * 255)`` uint8 (K,h,w) and saved with ``np.savez_compressed``
as the one array ``probs``. So, as with a real model, the upsampled
probabilities disagree with the mask along object edges too.

For each case and method ("softmin" and "num_pixel_issues", see
``segqual_fo.core.METHODS``) a fresh subprocess, started through a tiny
launcher so that its ru_maxrss does not inherit this process's peak (Linux
keeps ru_maxrss across fork + exec), after importing FiftyOne and segqual_fo:

1. reads the inputs once: ``cv2.imread`` of every mask PNG and ``np.load``
   of every ``.npz``, taking a max over each array so everything is
   decoded (one thread, in sample order). This is done before and again
   after the pipeline run; the faster of the two is the read time;
2. builds a fresh FiftyOne dataset of the samples (not timed) and times
   ``compute_label_quality(dataset, "ground_truth", probs_field="probs_path",
   method=..., resize=True, output_dir=<tmp>, progress=False)`` with its
   defaults otherwise (``n_jobs=None``: all usable CPUs). It writes scores,
   heatmap and issue-mask PNGs at the mask's resolution, issue regions and a
   run record;
3. reports its peak RSS (ru_maxrss, with /proc VmHWM as a cross-check)
   right after that run;
4. times the same call on a fresh 1-sample dataset: the fixed cost of a run
   plus one image (the marginal cost per image is then
   ``(t_N - t_1) / (N - 1)``). It runs after the N-image run, so it pays no
   first-call costs.

The ratio pipeline time / read time, from the same process, is what counts
on a loaded machine; absolute times are printed for context. Targets
(issue 14): big softmin <= 3x the read time and peak RSS <= 700 MB; big
issue count <= 6x; tiny softmin <= 3x. With ``--n``, ``--size`` or
``--quick`` the targets are still printed but refer to other data.

Datasets are non-persistent, uniquely named
(``segqual-bench-resolution-<tag>-<hex>``) and deleted by the worker (also
on failure); files go to a temporary directory removed at the end. FiftyOne's
database validation is turned off in the workers
(``FIFTYONE_DATABASE_VALIDATION=false`` unless set) so their output stays
clean.

Rerun from the repository root::

    PYTHONPATH=. python benchmarks/bench_resolution.py                # both cases (~2 min on 2 cores)
    PYTHONPATH=. python benchmarks/bench_resolution.py --case big     # one case
    PYTHONPATH=. python benchmarks/bench_resolution.py --quick        # smoke test (~45 s)
    PYTHONPATH=. python benchmarks/bench_resolution.py --case tiny --n 300 --size 64x64
    PYTHONPATH=. python benchmarks/bench_resolution.py --check        # exit 1 on a MISS

Needs fiftyone (with a database), numpy and opencv.
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
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Tuple

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
if REPO_ROOT not in sys.path:
    sys.path.insert(1, REPO_ROOT)
if HERE not in sys.path:
    sys.path.insert(1, HERE)

from _common import machine_info, make_probs, max_rss_mb, parse_size, print_table, run_fresh_worker, vm_hwm_mb  # noqa: E402
from _datasets import (  # noqa: E402
    LABEL_FIELD,
    Datasets,
    load_average,
    raise_on_sigterm,
    warm_page_cache,
    write_files,
)

DATASET_PREFIX = "segqual-bench-resolution"
PROBS_FIELD = "probs_path"  # the sample field _datasets.Datasets fills
PROBS_KEY = "probs"  # the array's name inside each .npz
METHODS = ("softmin", "num_pixel_issues")  # segqual_fo.core.METHODS


@dataclass(frozen=True)
class Case:
    name: str
    n: int
    k: int
    h: int  # mask height
    w: int  # mask width
    factor: int = 4  # mask size / probability size

    @property
    def probs_shape(self) -> Tuple[int, int, int]:
        return self.k, self.h // self.factor, self.w // self.factor

    def describe(self) -> str:
        k, ph, pw = self.probs_shape
        return (f"{self.name}: {self.n} images, masks {self.h}x{self.w} (8-bit PNG), K={k}, "
                f"probabilities {ph}x{pw} uint8 .npz (1/{self.factor} resolution)")


CASES: Dict[str, Case] = {
    "big": Case("big", n=10, k=19, h=1024, w=2048),
    "tiny": Case("tiny", n=1500, k=5, h=64, w=64),
}
QUICK: Dict[str, Case] = {
    "big": Case("big", n=3, k=19, h=512, w=1024),
    "tiny": Case("tiny", n=150, k=5, h=64, w=64),
}
#: (case, method) -> largest pipeline / read time ratio (issue 14)
RATIO_TARGETS: Dict[Tuple[str, str], float] = {
    ("big", "softmin"): 3.0,
    ("big", "num_pixel_issues"): 6.0,
    ("tiny", "softmin"): 3.0,
}
#: (case, method) -> largest peak RSS of the worker (MB)
RSS_TARGETS_MB: Dict[Tuple[str, str], float] = {("big", "softmin"): 700.0}


# -- data -------------------------------------------------------------------------------------
def model_probs(rng: np.random.Generator, label: np.ndarray, k: int, factor: int) -> np.ndarray:
    """(K, H/f, W/f) uint8 probabilities of an imperfect model that sees the
    image at 1/f of the mask's resolution."""
    low = label[factor // 2 :: factor, factor // 2 :: factor]  # what the model sees, nearest neighbour
    p = make_probs(rng, low, k)
    return np.rint(p * np.float32(255)).astype(np.uint8)


def write_case(directory: str, case: Case, seed: int) -> List[dict]:
    """Writes the images (JPEG), mask PNGs and probability .npz files of a
    case; returns one record (filepath, mask_path, probs_path) per image."""
    return write_files(
        directory, case.n, case.k, (case.h, case.w), seed,
        model=lambda rng, label, k: model_probs(rng, label, k, case.factor), npz_key=PROBS_KEY,
    )  # fmt: skip


def disk_mb(directory: str, sub: str) -> float:
    return sum(e.stat().st_size for e in os.scandir(os.path.join(directory, sub))) / 2**20


# -- the worker (a fresh subprocess per case and method) ----------------------------------------
def read_inputs(records: List[dict]) -> float:
    """Seconds to read and decode every mask PNG and probability .npz once."""
    import cv2

    t0 = time.perf_counter()
    touched = 0
    for r in records:
        mask = cv2.imread(r["mask_path"], cv2.IMREAD_UNCHANGED)
        with np.load(r["probs_path"], allow_pickle=False) as npz:
            probs = npz[PROBS_KEY]
        touched += int(mask.max()) + int(probs.max())
    elapsed = time.perf_counter() - t0
    if touched <= 0:
        raise RuntimeError("read nothing")
    return elapsed


def run_pipeline(dataset, method: str, output_dir: str) -> float:
    """Seconds of one compute_label_quality call (fails loudly on failures)."""
    import segqual_fo

    compute_label_quality = segqual_fo.compute_label_quality  # lazy import, outside the timing
    t0 = time.perf_counter()
    results = compute_label_quality(
        dataset,
        LABEL_FIELD,
        probs_field=PROBS_FIELD,
        method=method,
        resize=True,
        output_dir=output_dir,
        progress=False,
    )
    elapsed = time.perf_counter() - t0
    if results.failures or results.num_scored != len(dataset):
        raise RuntimeError(f"{len(results.failures)} samples failed: {results.failures[:3]}")
    return elapsed


def floor_costs(dataset, records: List[dict], output_dir: str) -> dict:
    """Seconds of the least any run that writes its results into FiftyOne
    must do beyond reading: store one number per sample (one bulk
    ``set_values``, no per-sample round trips), and create the two output
    PNG files per image (a heatmap and an issue mask of the mask's size,
    encoded and written as the pipeline does). Not the pipeline's code
    paths: lower bounds to compare the pipeline / read ratio with."""
    import cv2

    from segqual_fo.writers.files import write_png_atomic

    values = [float(i) / len(records) for i in range(len(records))]
    t0 = time.perf_counter()
    dataset.set_values("floor_score", values)
    db_s = time.perf_counter() - t0
    os.makedirs(output_dir, exist_ok=True)
    images = []
    for r in records:  # the images first, outside the timing
        shape = cv2.imread(r["mask_path"], cv2.IMREAD_UNCHANGED).shape[:2]
        images.append(np.full(shape, 128, np.uint8))
    t0 = time.perf_counter()
    for i, image in enumerate(images):
        write_png_atomic(os.path.join(output_dir, f"{i}-heatmap.png"), image, "heatmap")
        write_png_atomic(os.path.join(output_dir, f"{i}-issues.png"), image, "issues")
    files_s = time.perf_counter() - t0
    import fiftyone as fo

    heatmaps = [fo.Heatmap(map=image, range=[0, 255]) for image in images]
    masks = [fo.Segmentation(mask=image) for image in images]
    t0 = time.perf_counter()
    dataset.set_values("floor_heatmap", heatmaps)
    dataset.set_values("floor_issues", masks)
    inline_s = time.perf_counter() - t0
    return {"floor_db_s": db_s, "floor_files_s": files_s, "floor_inline_s": inline_s}


def worker(spec_path: str) -> None:
    """Runs in a fresh subprocess: reads, scores, prints one JSON line."""
    with open(spec_path) as f:
        spec = json.load(f)
    records, method, k, out = spec["records"], spec["method"], spec["k"], spec["output_dir"]
    import cv2  # noqa: F401  (imports outside every timing)
    import fiftyone as fo

    import segqual_fo.fo.compute  # noqa: F401

    rss_imports = max_rss_mb()
    datasets = Datasets(DATASET_PREFIX)
    try:
        read_before = read_inputs(records)
        dataset = datasets.create(records, k, tag=f"{spec['case']}-{method[:3]}")
        rss_before = max_rss_mb()
        seconds = run_pipeline(dataset, method, os.path.join(out, "all"))
        peak, hwm = max_rss_mb(), vm_hwm_mb()
        floors = floor_costs(dataset, records, os.path.join(out, "floor")) if spec.get("floor") else {}
        datasets.delete(dataset)
        read_after = read_inputs(records)
        one = datasets.create(records[:1], k, tag=f"{spec['case']}-{method[:3]}-one")
        seconds_one = run_pipeline(one, method, os.path.join(out, "one"))
        datasets.delete(one)
    finally:
        datasets.cleanup()
    print(json.dumps({
        "fiftyone": fo.__version__,
        "read_s": min(read_before, read_after),
        "read_runs_s": [read_before, read_after],
        "pipeline_s": seconds,
        "one_sample_s": seconds_one,
        "peak_rss_mb": peak,
        "vm_hwm_mb": hwm,
        "rss_imports_mb": rss_imports,
        "rss_before_mb": rss_before,
        **floors,
    }))


def run_worker(spec: dict, spec_path: str) -> dict:
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p)
    env.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    cmd = [sys.executable, os.path.abspath(__file__), "--_worker", spec_path]
    return run_fresh_worker(cmd, env, f"worker ({spec['case']}, {spec['method']})")


# -- main ---------------------------------------------------------------------------------------
def parse_args(argv: Optional[list] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=("big", "tiny", "all"), default="all")
    parser.add_argument("--n", type=int, default=None, help="images per case (default: big 10, tiny 1500)")
    parser.add_argument("--size", type=parse_size, default=None,
                        help="mask size HxW for the selected case(s) (default: big 1024x2048, tiny 64x64)")
    parser.add_argument("--factor", type=int, default=None,
                        help="mask size / probability size, must divide the mask size (default 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smaller data: a smoke test")
    parser.add_argument("--check", action="store_true", help="exit 1 if any target is missed")
    parser.add_argument("--_worker", metavar="SPEC", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def cases_from(args: argparse.Namespace) -> List[Case]:
    base = QUICK if args.quick else CASES
    names = ("big", "tiny") if args.case == "all" else (args.case,)
    cases = []
    for name in names:
        case = base[name]
        if args.n is not None:
            if args.n < 1:
                raise SystemExit("--n must be >= 1")
            case = replace(case, n=args.n)
        if args.size is not None:
            case = replace(case, h=args.size[0], w=args.size[1])
        if args.factor is not None:
            case = replace(case, factor=args.factor)
        if case.factor < 1 or case.h % case.factor or case.w % case.factor:
            raise SystemExit(f"{name}: the mask size {case.h}x{case.w} must be divisible by {case.factor}")
        cases.append(case)
    return cases


def main(argv: Optional[list] = None) -> int:
    args = parse_args(argv)
    if args._worker:
        worker(args._worker)
        return 0

    t_start = time.perf_counter()
    cases = cases_from(args)
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    import segqual_fo

    print(machine_info())
    print(f"segqual_fo {segqual_fo.__version__}; mode: {'quick' if args.quick else 'full'}")
    for case in cases:
        print(f"  {case.describe()}")
    print(f"load average at start: {load_average()} (other processes on the machine disturb the timings)")
    if args.quick or any(case != CASES[case.name] for case in cases):
        print("non-default sizes: the targets below refer to the default cases")

    tmp = tempfile.mkdtemp(prefix="segqual-bench-resolution-")
    rows, results, versions = [], {}, set()
    try:
        for case in cases:
            data = os.path.join(tmp, case.name)
            t0 = time.perf_counter()
            records = write_case(data, case, args.seed)
            warm_page_cache(data)
            print(f"\n{case.name}: wrote {case.n} images in {time.perf_counter() - t0:.1f} s: masks "
                  f"{disk_mb(data, 'labels'):.2f} MB, probabilities {disk_mb(data, 'probs'):.2f} MB "
                  "(flushed, then read once: a warm page cache)")
            for method in METHODS:
                spec = dict(case=case.name, method=method, k=case.k, records=records,
                            output_dir=os.path.join(tmp, "out", f"{case.name}-{method}"),
                            floor=method == METHODS[0])
                r = run_worker(spec, os.path.join(tmp, f"spec-{case.name}-{method}.json"))
                versions.add(r["fiftyone"])
                results[case.name, method] = r
                print(f"  {method}: read {r['read_s']:.2f} s (runs: "
                      f"{', '.join(f'{x:.2f}' for x in r['read_runs_s'])}), pipeline {r['pipeline_s']:.2f} s, "
                      f"1-sample run {r['one_sample_s']:.2f} s, peak RSS {r['peak_rss_mb']:.0f} MB")
                n = case.n
                marginal = (r["pipeline_s"] - r["one_sample_s"]) / (n - 1) * 1e3 if n > 1 else float("nan")
                rows.append([
                    case.name, method, str(n), f"{r['read_s']:.2f}", f"{r['read_s'] / n * 1e3:.2f}",
                    f"{r['pipeline_s']:.2f}", f"{r['pipeline_s'] / n * 1e3:.2f}",
                    f"{r['pipeline_s'] / r['read_s']:.1f}x", f"{r['one_sample_s']:.2f}", f"{marginal:.2f}",
                    f"{marginal / (r['read_s'] / n * 1e3):.1f}x",
                    f"{r['peak_rss_mb']:.0f}", f"{r['vm_hwm_mb']:.0f}", f"{r['rss_before_mb']:.0f}",
                ])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n== Pipeline vs reading the inputs (fiftyone {', '.join(sorted(versions))}; "
          "each row a fresh subprocess) ==")
    print_table(["case", "method", "N", "read s", "read ms/img", "pipeline s", "ms/img", "ratio",
                 "1-sample s", "marginal ms/img", "marginal ratio", "peak RSS MB", "VmHWM MB",
                 "RSS before MB"], rows)
    print("  ratio = pipeline / read time; 1-sample s = the same call on a 1-sample dataset (the fixed cost "
          "plus one image); "
          "marginal = (pipeline - 1-sample) / (N - 1), and its ratio to read ms/img; "
          "RSS before = after imports, the read pass and building the dataset")

    floor_rows = []
    for (name, method), r in results.items():
        if "floor_db_s" in r:
            read = r["read_s"]
            floor_rows.append([
                name, f"{r['floor_db_s'] / read:.2f}x", f"{r['floor_files_s'] / read:.2f}x",
                f"{(read + r['floor_db_s'] + r['floor_files_s']) / read:.2f}x",
                f"{r['floor_inline_s'] / read:.2f}x",
                f"{r['pipeline_s'] / read:.1f}x",
            ])
    if floor_rows:
        print("\n== What any run must do beyond reading, as multiples of the read time (same process) ==")
        print_table(["case", "store 1 number/sample", "create 2 PNGs/image", "read + both (floor)",
                     "2 arrays/sample inline in the DB", "pipeline"], floor_rows)
        print("  store = one bulk set_values of a float field; create = encode and atomically write a "
              "heatmap and an issue-mask PNG of the mask's size per image; inline = the same two images stored in the "
              "sample documents (fo.Heatmap(map=...), fo.Segmentation(mask=...), two bulk set_values) instead "
              "of files. A pipeline / read target "
              "below the floor cannot be met while each image's outputs are separate files.")

    print("\n  targets (issue 14):")
    targets = []
    for (name, method), limit in RATIO_TARGETS.items():
        if (name, method) in results:
            r = results[name, method]
            ratio = r["pipeline_s"] / r["read_s"]
            targets.append((f"[{name} {method}] pipeline / read (target <= {limit:g}x): {ratio:.1f}x",
                            ratio <= limit))
    for (name, method), limit in RSS_TARGETS_MB.items():
        if (name, method) in results:
            peak = results[name, method]["peak_rss_mb"]
            targets.append((f"[{name} {method}] peak RSS (target <= {limit:.0f} MB): {peak:.0f} MB",
                            peak <= limit))
    for text, ok in targets:
        print(f"  {text:<72} {'met' if ok else 'MISSED'}")

    print(f"\nload average at the end: {load_average()}")
    missed = [text for text, ok in targets if not ok]
    print(f"\n== Summary: {len(targets) - len(missed)}/{len(targets)} targets met "
          f"(total {time.perf_counter() - t_start:.0f} s) ==")
    for text in missed:
        print(f"  MISS {text}")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
