"""Benchmark of compute_label_quality on a local Dask cluster against the single-process run.

What is measured
----------------
A seeded synthetic dataset is written to a temporary directory and loaded
into FiftyOne (the real embedded database) like real data: per image a JPEG,
a label mask PNG (3-8 rectangles/ellipses of random classes over background
0, see ``_common``) and float32 ``.npy`` probabilities (K,H,W) of a plausible
imperfect model. The samples have ``ground_truth =
fo.Segmentation(mask_path=...)``, a ``probs_path`` string field and
``mask_targets`` naming the K classes.

For each method ("softmin" and "num_pixel_issues") the wall time of one
``compute_label_quality(dataset, "ground_truth", probs_field="probs_path",
method=..., output_dir=<tmp>, progress=False, ...)`` call is measured in
these configurations:

- single process, ``n_jobs=None`` (threads on all cores): the baseline;
- single process, ``n_jobs=1``: a second reference;
- ``executor=client`` on ``segqual_fo.execution.dask.local_cluster(w)``
  (w worker processes, 1 thread each) for w = 1, 2 (and 4 with
  ``--max-workers 4``).

Each configuration is the best (min) of ``--repeat`` runs, each run on its
own freshly created dataset (created outside the timing). The single-process
runs are split: the first half before the Dask runs, the rest after them, so
a drift of the machine's load affects both sides. A cluster is started,
and warmed up, before its runs are timed: every worker imports segqual_fo
and fiftyone (about 3 s on the first task), then runs one small untimed
scoring of each method; only the scoring calls are timed. The single
process gets the same untimed warm-up runs first.

The table gives seconds and the speed-up against the baseline measured in
the same run (baseline time / time): absolute times are noisy on a shared
2-core machine, ratios less so. It also gives the CPU seconds each best run
used in all processes (this one, the Dask workers, mongod) and the cores
that kept busy on average: where the baseline already keeps most cores
busy, more processes can only win by doing less work in total.

Every configuration's outputs (the last run's), read back from the database,
must equal the baseline's exactly: the score and issue-count fields, the
heatmap and issue-mask PNG pixels, and the issue regions (matched by
filepath). The script exits 1 if any differs.

All datasets are uniquely named (``segqual-bench-distributed-<tag>-<hex>``)
and deleted at the end, also on failure, Ctrl-C or SIGTERM (after a SIGKILL:
``fo.delete_datasets("segqual-bench-distributed-*")``); files go to a
temporary directory that is removed too.

Rerun from the repository root::

    PYTHONPATH=. python benchmarks/bench_distributed.py                  # default, 64 x 512x512, K=12 (~1 min)
    PYTHONPATH=. python benchmarks/bench_distributed.py --quick          # smoke test, 8 x 128x128 (~40 s)
    PYTHONPATH=. python benchmarks/bench_distributed.py --max-workers 4  # also 4 workers (more than 2 cores)
    PYTHONPATH=. python benchmarks/bench_distributed.py --images 128 --classes 19 --repeat 3

Needs fiftyone (with a database), numpy, opencv and dask[distributed]
(the ``dask`` extra).
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import shutil
import signal
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple


HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
if REPO_ROOT not in sys.path:
    sys.path.insert(1, REPO_ROOT)
if HERE not in sys.path:
    sys.path.insert(1, HERE)

from _common import machine_info, print_table  # noqa: E402
from _datasets import (  # noqa: E402
    LABEL_FIELD,
    Datasets,
    load_average,
    raise_on_sigterm,
    warm_page_cache,
    write_files,
)

DATASET_PREFIX = "segqual-bench-distributed"
PROBS_FIELD = "probs_path"
SCORE_FIELD = "label_quality"
METHODS = ("softmin", "num_pixel_issues")
BASELINE = "single process, n_jobs=None"


@dataclass
class Config:
    n: int
    size: int
    k: int
    repeat: int
    max_workers: int
    seed: int = 0

    @property
    def worker_counts(self) -> List[int]:
        counts = [w for w in (1, 2, 4) if w <= self.max_workers]
        if self.max_workers not in counts:
            counts.append(self.max_workers)
        return counts

    def describe(self) -> str:
        values = self.n * self.k * self.size * self.size
        return (
            f"{self.n} images {self.size}x{self.size}, K={self.k} classes, float32 .npy probabilities "
            f"({values * 4 / 2**20:.0f} MB); best of {self.repeat} runs per configuration; "
            f"Dask workers: {', '.join(map(str, self.worker_counts))} (1 thread each)"
        )



# -- outputs ------------------------------------------------------------------------------------
def outputs(dataset) -> Dict[str, tuple]:
    """Everything a run wrote, per filepath, comparable across runs and datasets."""
    import cv2

    from segqual_fo.options import output_fields

    f = output_fields(SCORE_FIELD)
    paths, scores, counts, heats, issues, regions = dataset.values(
        ["filepath", f["score"], f["num_issues"], f"{f['heatmap']}.map_path", f"{f['issues']}.mask_path",
         f"{f['regions']}.detections"]
    )

    def png(p):
        return None if p is None else cv2.imread(p, cv2.IMREAD_UNCHANGED).tobytes()

    def region_rows(dets):
        if dets is None:
            return None
        return [(d.label, tuple(d.bounding_box), d["predicted_label"], d["area"], d["mean_score"],
                 None if d.mask is None else d.mask.tobytes()) for d in dets]

    return {p: (s, c, png(h), png(i), region_rows(r))
            for p, s, c, h, i, r in zip(paths, scores, counts, heats, issues, regions)}


def differences(ref: Dict[str, tuple], got: Dict[str, tuple]) -> str:
    """'' if identical, else a short description of the differences."""
    if ref.keys() != got.keys():
        return f"different samples ({len(ref)} vs {len(got)})"
    names = ("score", "num_issues", "heatmap PNG", "issue-mask PNG", "regions")
    bad = {name: 0 for name in names}
    for p in ref:
        for name, a, b in zip(names, ref[p], got[p]):
            if a != b:
                bad[name] += 1
    if any(v is None for row in ref.values() for v in row[:2]):
        return "some samples have no score"
    return ", ".join(f"{name} differs on {count} images" for name, count in bad.items() if count)


# -- runs ---------------------------------------------------------------------------------------
def timed_run(dataset, method: str, output_dir: str, **kwargs) -> float:
    """Wall time (s) of one compute_label_quality call (gc disabled during it)."""
    from segqual_fo import compute_label_quality

    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        results = compute_label_quality(
            dataset,
            LABEL_FIELD,
            probs_field=PROBS_FIELD,
            method=method,
            score_field=SCORE_FIELD,
            output_dir=output_dir,
            progress=False,
            **kwargs,
        )
        elapsed = time.perf_counter() - t0
    finally:
        gc.enable()
    if results.failures or results.num_scored != len(dataset):
        raise RuntimeError(f"{method}: {len(results.failures)} samples failed: {results.failures[:3]}")
    return elapsed


class Runs:
    """Timed runs per (method, configuration); keeps the last run's outputs."""

    def __init__(self, cfg: Config, records: List[dict], datasets: Datasets, out_dir: str):
        self.cfg, self.records, self.datasets, self.out_dir = cfg, records, datasets, out_dir
        self.times: Dict[Tuple[str, str], List[float]] = {}
        self.outputs: Dict[Tuple[str, str], Dict[str, tuple]] = {}
        self.cpu: Dict[Tuple[str, str], List[float]] = {}
        self.counter = 0

    def run(self, method: str, config: str, *, keep: bool, **kwargs) -> float:
        self.counter += 1
        ds = self.datasets.create(self.records, self.cfg.k, tag=method[:3])
        out = os.path.join(self.out_dir, f"run-{self.counter:03d}")
        client = kwargs.get("executor")
        try:
            cpu0 = cpu_seconds(client)
            elapsed = timed_run(ds, method, out, **kwargs)
            cpu = cpu_seconds(client) - cpu0
            self.times.setdefault((method, config), []).append(elapsed)
            self.cpu.setdefault((method, config), []).append(cpu)
            if keep:
                self.outputs[(method, config)] = outputs(ds)
        finally:
            self.datasets.delete(ds)
            shutil.rmtree(out, ignore_errors=True)
        print(f"  {method:<17} {config:<30} {elapsed:6.2f} s  cpu {cpu:5.2f} s", flush=True)
        return elapsed


def _own_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_seconds(client=None) -> float:
    """CPU seconds used so far by this process (all threads), the Dask
    workers (when ``client`` is given) and the database server."""
    import psutil

    total = _own_cpu()
    if client is not None:
        total += sum(client.run(_own_cpu).values())
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] == "mongod":
            try:
                t = proc.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
    return total


def single_process_warmup(runs: Runs, warmup_records: List[dict]) -> None:
    """Untimed single-process runs of both methods: the first call in a process
    pays for lazy imports and first allocations (like the Dask warm-up)."""
    t0 = time.perf_counter()
    for method in METHODS:
        for n_jobs in (None, 1):
            ds = runs.datasets.create(warmup_records, runs.cfg.k, tag="warmup")
            try:
                timed_run(ds, method, os.path.join(runs.out_dir, f"warmup-single-{method}-{n_jobs}"), n_jobs=n_jobs)
            finally:
                runs.datasets.delete(ds)
    print(f"  single process: warm-up runs ({len(warmup_records)} images, both methods) "
          f"{time.perf_counter() - t0:.1f} s (untimed)", flush=True)


def single_process_runs(runs: Runs, repeats: int, *, keep: bool) -> None:
    for _ in range(repeats):
        for method in METHODS:
            runs.run(method, BASELINE, keep=keep, n_jobs=None)
            runs.run(method, "single process, n_jobs=1", keep=keep, n_jobs=1)


def _import_worker_modules() -> str:
    """Runs on every Dask worker: pays the imports before the timings."""
    import fiftyone  # noqa: F401

    import segqual_fo.execution.dask  # noqa: F401
    import segqual_fo.fo.compute  # noqa: F401

    return str(os.getpid())


def dask_runs(runs: Runs, workers: int, warmup_records: List[dict]) -> None:
    from segqual_fo.execution.dask import local_cluster

    cfg = runs.cfg
    t0 = time.perf_counter()
    with local_cluster(workers) as client:
        t1 = time.perf_counter()
        pids = client.run(_import_worker_modules)
        t2 = time.perf_counter()
        if len(pids) != workers:
            raise RuntimeError(f"expected {workers} workers, the cluster has {len(pids)}")
        for method in METHODS:  # first tasks: deserialising the job, first reads and writes
            ds = runs.datasets.create(warmup_records, cfg.k, tag="warmup")
            try:
                timed_run(ds, method, os.path.join(runs.out_dir, f"warmup-{workers}-{method}"), executor=client)
            finally:
                runs.datasets.delete(ds)
        t3 = time.perf_counter()
        print(f"  dask workers={workers}: cluster started in {t1 - t0:.1f} s, worker imports {t2 - t1:.1f} s, "
              f"warm-up runs ({len(warmup_records)} images, both methods) {t3 - t2:.1f} s (untimed)", flush=True)
        config = f"dask workers={workers}"
        for r in range(cfg.repeat):
            for method in METHODS:
                runs.run(method, config, keep=r == cfg.repeat - 1, executor=client)


# -- main ---------------------------------------------------------------------------------------
def parse_args(argv: Optional[list] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=None, help="images in the dataset (default 64)")
    parser.add_argument("--size", type=int, default=None, help="image height = width (default 512)")
    parser.add_argument("--classes", type=int, default=None, help="number of classes K (default 12)")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs per configuration; the best counts "
                        "(default 2)")
    parser.add_argument("--max-workers", type=int, default=2,
                        help="largest Dask cluster: 1, 2, 4, ... workers up to this (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace) -> Config:
    n, size, k = (8, 128, 12) if args.quick else (64, 512, 12)
    cfg = Config(n=args.images or n, size=args.size or size, k=args.classes or k, repeat=args.repeat,
                 max_workers=args.max_workers, seed=args.seed)
    if not 2 <= cfg.k <= 255:
        raise SystemExit("--classes must be in 2..255 (masks are 8-bit PNGs)")
    if cfg.n < 1 or cfg.size < 16:
        raise SystemExit("--images must be >= 1 and --size >= 16")
    if cfg.repeat < 1:
        raise SystemExit("--repeat must be >= 1")
    if cfg.max_workers < 1:
        raise SystemExit("--max-workers must be >= 1")
    return cfg


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def main(argv: Optional[list] = None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    cfg = config_from(args)
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    # the in-process scheduler's HTTP server falls back to a random port when
    # 8787 is taken (e.g. by another cluster on the machine): harmless here
    warnings.filterwarnings("ignore", message=r"Port \d+ is already in use", category=UserWarning)
    import distributed
    import fiftyone as fo

    import segqual_fo

    cores = usable_cores()
    print(machine_info())
    print(f"segqual_fo {segqual_fo.__version__}, fiftyone {fo.__version__}, distributed {distributed.__version__}; "
          f"mode: {'quick' if args.quick else 'full'}")
    print(f"configuration: {cfg.describe()}")
    print(f"this machine has {cores} usable cores: Dask clusters of more than {cores} workers share them "
          "(and the client process, which reads and writes the database, runs beside the workers)")
    print(f"load average at start: {load_average()} (other processes on the machine disturb the timings)")
    datasets = Datasets(DATASET_PREFIX)
    tmp = tempfile.mkdtemp(prefix="segqual-bench-distributed-")
    try:
        t0 = time.perf_counter()
        records = write_files(os.path.join(tmp, "data"), cfg.n, cfg.k, cfg.size, cfg.seed)
        size_mb = sum(e.stat().st_size for d in os.scandir(os.path.join(tmp, "data"))
                      for e in os.scandir(d.path)) / 2**20
        warm_page_cache(os.path.join(tmp, "data"))
        print(f"wrote {cfg.n} images ({size_mb:.0f} MB) in {time.perf_counter() - t0:.1f} s "
              "(flushed to disk, then read once: every run starts from a warm page cache)")
        if args.quick:
            print("quick mode: a smoke test; at this size fixed costs dominate and the ratios mean little")

        runs = Runs(cfg, records, datasets, os.path.join(tmp, "out"))
        before = math.ceil(cfg.repeat / 2)
        print(f"\n== Timed runs (single process: {before} run(s) before the Dask runs, "
              f"{cfg.repeat - before} after) ==", flush=True)
        warmup = records[: min(cfg.n, max(4, 2 * max(cfg.worker_counts)))]
        single_process_warmup(runs, warmup)
        single_process_runs(runs, before, keep=before == cfg.repeat)
        for workers in cfg.worker_counts:
            dask_runs(runs, workers, warmup)
        single_process_runs(runs, cfg.repeat - before, keep=True)

        print(f"\n== Results: best of {cfg.repeat} runs; speed-up = baseline ({BASELINE}) time / time ==")
        configs = [BASELINE, "single process, n_jobs=1"] + [f"dask workers={w}" for w in cfg.worker_counts]
        rows, mismatches = [], []
        for method in METHODS:
            base = min(runs.times[(method, BASELINE)])
            ref = runs.outputs[(method, BASELINE)]
            for config in configs:
                times = runs.times[(method, config)]
                best = min(times)
                cpu = runs.cpu[(method, config)][times.index(best)]
                if config == BASELINE:
                    same = "(reference)"
                else:
                    diff = differences(ref, runs.outputs[(method, config)])
                    same = "yes" if not diff else "NO"
                    if diff:
                        mismatches.append(f"{method}, {config}: {diff}")
                rows.append([method, config, f"{best:.2f}", " ".join(f"{t:.2f}" for t in times),
                             f"{base / best:.2f}x", f"{cfg.n / best:.1f}", f"{cpu:.2f}", f"{cpu / best:.2f}", same])
        print_table(["method", "configuration", "seconds", "all runs", "speed-up", "img/s",
                     "cpu s", "cores busy", "outputs equal baseline"], rows)
        print("  cpu s: CPU seconds of the best run, summed over this process (every thread), the Dask workers "
              "and mongod;\n  cores busy = cpu s / seconds. With the cores all busy, a speed-up can only come "
              "from doing less work.")
        print(f"  ({cores} usable cores; outputs compared exactly per filepath: score, issue count, heatmap and "
              "issue-mask PNG pixels, issue regions)")
    finally:
        datasets.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\nload average at the end: {load_average()}")
    print(f"total {time.perf_counter() - t_start:.0f} s")
    if mismatches:
        print("\nFAIL: Dask or n_jobs=1 outputs differ from the single-process run:")
        for line in mismatches:
            print(f"  {line}")
        return 1
    print("\nOK: every configuration's outputs equal the single-process run's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
