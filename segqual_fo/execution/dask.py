"""Scale-out on a Dask cluster: the same scores, computed by many processes.

``compute_label_quality(..., executor=client)`` (CLI: ``segqual score
--scheduler ADDRESS`` or ``--workers N``) runs the scoring as Dask tasks.
The tasks run :mod:`segqual_fo.execution.job` on plain data: workers import
no FiftyOne module.
The workers never touch the database: this process (the client) reads from
FiftyOne what each sample needs (ids, probability paths, label references:
a mask path, an inline mask, or the Detections and image size), ships it
with the task, and does the bulk write-back. Probabilities, and the output
directory where the workers write PNGs (and the issue-count cache), must be
on storage every worker sees under the same path.

Data flow (shards are runs of consecutive samples in the view's order)::

    softmin           score_shard    read, score, write PNGs, find regions
                                     -> one record per image

    num_pixel_issues  pass 1  scan_shard    scan; cache entries to shared disk
                                            -> exact class sums, counts,
                                               histogram (ScanStats)
                      client  merge -> thresholds
                      pass 2  IssueFinder.finish(map_shards=...): shard tasks
                              count confident pixels, collect the scores in
                              the cut-off's histogram bin, count ties; the
                              cut-off is chosen once, here
                      pass 3  emit_shard    issue masks, PNGs, regions
                                            -> one record per image

Every reduction is exact and order-free (integer counts, exactly summed
class sums, merged unique values), so the results are bit-identical to a
single-process run whatever the number of workers or shards.

Failures: a task whose worker dies is re-run by Dask on another worker (up
to ``distributed.scheduler.allowed-failures`` times). Tasks are idempotent:
they write each file atomically under a name fixed by the sample id and the
run token, and return records the client commits once per sample, so a
re-run neither loses nor duplicates anything. An image that cannot be scored
is a record (``skip_failures``), not a task failure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional

from segqual_fo.core.issues import DirectoryCache, IssueFinder
from segqual_fo.core.stream import issue_image_result
from segqual_fo.errors import InvalidInputError, SegQualError
from segqual_fo.execution.job import Failed, image_outputs
from segqual_fo.options import check_workers

logger = logging.getLogger(__name__)

#: Samples per task at most (bounds a task's memory and a retry's cost).
MAX_SHARD_SIZE = 64
_DASK_MISSING = (
    "executor= needs Dask's distributed scheduler; install it with "
    "`pip install 'segqual-fo[dask]'` (or `pip install 'dask[distributed]'`)."
)


def _client_class():
    try:
        from distributed import Client
    except ImportError:
        raise InvalidInputError(_DASK_MISSING) from None
    return Client


def check_executor(executor: Any) -> None:
    """Raises a clear error for an ``executor`` that is neither a
    ``dask.distributed.Client`` nor a scheduler address (nothing is
    contacted)."""
    if executor is None:
        return
    client_class = _client_class()
    if isinstance(executor, client_class):
        if executor.status not in ("running", "connecting", "newly-created"):
            raise InvalidInputError(f"the Dask client passed as executor is {executor.status}; pass an open client.")
        return
    if isinstance(executor, str) and executor.strip():
        return
    raise InvalidInputError(
        "executor must be a dask.distributed.Client or a scheduler address such as "
        f"'tcp://10.0.0.5:8786', got {type(executor).__name__}."
    )


@contextlib.contextmanager
def connect(executor: Any) -> Iterator[Any]:
    """The ``Client`` for ``executor`` (an address is connected to here and
    closed on exit; a client is used as is). How long to keep trying is
    Dask's ``distributed.comm.timeouts.connect`` setting (30 s by default;
    ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=5s`` changes it)."""
    client_class = _client_class()
    if isinstance(executor, client_class):
        yield executor
        return
    try:
        client = client_class(executor)
    except (OSError, TimeoutError) as e:
        raise InvalidInputError(
            f"cannot reach a Dask scheduler at {executor!r} ({e}); start one with `dask scheduler` "
            "and pass the address it prints (tcp://HOST:8786)."
        ) from None
    try:
        yield client
    finally:
        client.close()


#: Dask settings for segqual's workers. Dask starts each worker process with
#: ``MALLOC_TRIM_THRESHOLD_=65536``, which also switches off glibc's adaptive
#: mmap threshold: every multi-megabyte per-image array is then mapped fresh
#: and page-faulted in, which made scoring 35-45% slower here. ``None``
#: leaves glibc's default. For ``dask worker`` put the same in a Dask
#: config file (see the README).
WORKER_DASK_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


@contextlib.contextmanager
def local_cluster(n_workers: int, threads_per_worker: int = 1, **kwargs) -> Iterator[Any]:
    """A ``Client`` on a new ``LocalCluster`` of ``n_workers`` processes on
    this machine (what ``segqual score --workers N`` uses); closed on exit.

    The workers start without Dask's default ``MALLOC_TRIM_THRESHOLD_``
    (see :data:`WORKER_DASK_CONFIG`), unless this process's environment
    already has it: a Dask cluster started earlier in the same process with
    the default settings leaves it there. Extra keyword arguments go to
    ``distributed.LocalCluster``.
    """
    _client_class()
    import dask
    from distributed import Client, LocalCluster

    check_workers(n_workers)
    options = dict(
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    options.update(kwargs)
    with dask.config.set(WORKER_DASK_CONFIG), LocalCluster(**options) as cluster, Client(cluster) as client:
        yield client


# --------------------------------------------------------------------------
# what a task receives


@dataclass
class _Shard:
    """Consecutive samples of the run, resolved by the client.

    ``indices`` are positions in the run's sample list (the cache keys),
    ``labels`` the label references, ``write`` False for samples a resumed
    run committed before, ``num_valid`` (pass 3) their scored pixels.
    """

    number: int
    indices: List[int]
    ids: List[str]
    filepaths: List[str]
    probs_paths: List[Optional[str]]
    labels: list
    write: List[bool]
    num_valid: Optional[List[int]] = None


class NotSharedError(SegQualError):
    """A file one Dask process wrote is missing in another: the output
    directory is not on storage shared by the client and every worker."""


class _SharedCache(DirectoryCache):
    """The issue-count cache as a worker opens it: an entry missing here but
    written by another worker means the directory is not shared."""

    def get(self, index, keys=None):
        try:
            return super().get(index, keys=keys)
        except FileNotFoundError:
            raise NotSharedError(
                f"issue-count cache entry {self._path(index)} is missing on worker host "
                f"{socket.gethostname()}: the output directory must be on storage that the "
                "client and every worker see under the same path."
            ) from None


# --------------------------------------------------------------------------
# worker tasks (module-level functions: pickled by reference)


def score_shard(job, shard: _Shard) -> list:
    """softmin: scores, PNGs and regions of one shard's images."""
    images = job.images(shard.ids, shard.filepaths, shard.labels, shard.probs_paths)
    out = []
    try:
        for result in job.stream(images, n_jobs=1):
            if result.failed:
                out.append(job.failed(images, result.index, result.error))
            else:
                j = result.index
                out.append(image_outputs(result, shard.ids[j], job.output, shard.write[j]))
    finally:
        images.close()
    return out


def scan_shard(job, shard: _Shard):
    """Issue count, pass 1: per-image statistics and cache entries.

    Returns ``(ScanStats, [(index, num_valid)], [(index, failure record)])``.
    """
    images = job.images(shard.ids, shard.filepaths, shard.labels, shard.probs_paths)
    finder = IssueFinder(
        job.num_classes,
        ignore_index=job.ignore,
        downsample=job.downsample,
        cache=DirectoryCache(job.cache_dir),
        # a model's outputs are computed once: pass 3 must not need them
        keep_pixel_scores=job.model is not None,
    )
    valid, failures = [], []
    try:
        for j, i in enumerate(shard.indices):
            try:
                partial = finder.scan(images.label(j), images.probs(j), index=i)
            except Exception as e:  # reported per image, never swallowed
                failures.append((i, job.failed(images, j, e)))
                continue
            finder.add(partial)
            valid.append((i, partial.evidence.num_valid))
    finally:
        images.close()
    return finder.stats, valid, failures


def cache_pass(func, cache_dir: str, indices: List[int], *args):
    """Issue count, pass 2: one of the cache passes of
    :meth:`IssueFinder.finish` over some images."""
    return func(_SharedCache(cache_dir), indices, *args)


def emit_shard(job, masker, shard: _Shard) -> list:
    """Issue count, pass 3: issue masks, scores, PNGs and regions."""
    images = job.images(shard.ids, shard.filepaths, shard.labels, shard.probs_paths)
    cache = _SharedCache(job.cache_dir)
    out = []
    for j, i in enumerate(shard.indices):
        try:
            result = issue_image_result(
                i,
                cache.get(i),
                masker,
                shard.num_valid[j],
                lambda: images.label(j),
                lambda: images.probs(j),
                ignore=job.ignore,
                with_issues=True,
                num_classes=job.num_classes,
            )
        except NotSharedError:
            raise  # a deployment problem, not this image's
        except Exception as e:
            out.append(job.failed(images, j, e))
            continue
        out.append(image_outputs(result, shard.ids[j], job.output, shard.write[j]))
    return out


# --------------------------------------------------------------------------
# the client side


def default_shard_size(n: int, num_threads: int) -> int:
    """About four tasks per worker thread (load balance, cheap retries), at
    most :data:`MAX_SHARD_SIZE` samples each."""
    return max(1, min(MAX_SHARD_SIZE, -(-n // (4 * max(1, num_threads)))))


class _Runner:
    """Submits shard tasks with a bounded number in flight and hands their
    results to a callback as they complete."""

    def __init__(self, client, tag: str):
        self.client = client
        self.tag = tag
        threads = sum(client.nthreads().values())
        if threads == 0:
            raise SegQualError(
                "the Dask cluster has no workers; start some with `dask worker tcp://SCHEDULER:8786`."
            )
        self.threads = threads
        self.max_in_flight = 2 * threads

    def run(self, func, items, on_result, *args, while_waiting=None) -> None:
        """Runs ``func(*args, item)`` for each item; ``while_waiting()`` is
        called once, after the first tasks are submitted."""
        from distributed import as_completed

        items = iter(items)
        queue = as_completed()
        in_flight = 0
        key = f"segqual-{self.tag}-{func.__name__}-{uuid.uuid4().hex[:6]}"

        def submit_next() -> bool:
            item = next(items, None)
            if item is None:
                return False
            number = getattr(item, "number", None)
            queue.add(self.client.submit(func, *args, item, key=f"{key}-{number}", pure=False, retries=0))
            return True

        try:
            while in_flight < self.max_in_flight and submit_next():
                in_flight += 1
            if while_waiting is not None:
                while_waiting()
            for future in queue:
                in_flight -= 1
                result = future.result()  # a task error is raised here
                future.release()
                on_result(result)
                if submit_next():
                    in_flight += 1
        except BaseException:
            for future in list(queue.futures):
                future.cancel()
            raise


def run_on_dask(executor, job, inputs, stream, collector, progress_bar, *, shard_size=None) -> None:
    """Scores the samples ``stream`` (for the issue count, every one) on Dask and
    hands each image's record to ``collector`` (see the module docs); the
    caller has checked ``executor`` (:func:`check_executor`)."""
    if job.model is not None:  # a primed output stays here; workers run that image
        job = dataclasses.replace(job, model=job.model.without_primed())
    with connect(executor) as client:
        runner = _Runner(client, job.output.token)
        n = len(inputs.ids)
        size = shard_size or default_shard_size(len(stream) if job.method == "softmin" else n, runner.threads)

        def shards(indices, num_valid=None):
            for number, start in enumerate(range(0, len(indices), size)):
                part = indices[start : start + size]
                yield _Shard(
                    number=number,
                    indices=part,
                    ids=[inputs.ids[i] for i in part],
                    filepaths=[inputs.filepaths[i] for i in part],
                    probs_paths=[inputs.probs_paths[i] for i in part],
                    labels=[inputs.label_ref(i) for i in part],
                    write=[inputs.ids[i] not in inputs.done for i in part],
                    num_valid=None if num_valid is None else [num_valid[i] for i in part],
                )

        def take_records(pb):
            def take(records):
                for rec in records:
                    _check_shared_output(rec)
                    collector.take(rec)
                pb.update(len(records))

            return take

        if job.method == "softmin":
            # shards finish in any order: failures are held back and handed
            # over in sample order after the run, so the failure list (and,
            # without skip_failures, the error raised) does not depend on
            # which worker finished first; every good record is kept first
            position = {sample_id: i for i, sample_id in enumerate(inputs.ids)}
            failed = []
            with progress_bar(len(stream)) as pb:
                take_good = take_records(pb)

                def take(records):
                    failed.extend(r for r in records if isinstance(r, Failed))
                    take_good([r for r in records if not isinstance(r, Failed)])
                    pb.update(sum(isinstance(r, Failed) for r in records))

                runner.run(score_shard, shards(stream), take, job, while_waiting=collector.prepare)
            for rec in sorted(failed, key=lambda r: position[r.sample_id]):
                collector.take(rec)  # raises without skip_failures
            return
        _issue_count_on_dask(runner, job, n, shards, take_records, collector, progress_bar, size)


def _issue_count_on_dask(runner, job, n, shards, take_records, collector, progress_bar, size) -> None:
    client = runner.client
    finder = IssueFinder(job.num_classes, ignore_index=job.ignore, downsample=job.downsample)
    num_valid = {}
    failed = []
    cache_owner = DirectoryCache(job.cache_dir, remove=True)  # removed at the end
    try:
        with progress_bar(2 * n) as pb:

            def take_scan(result):
                stats, valid, failures = result
                finder.merge(stats)
                num_valid.update(valid)
                failed.extend(failures)
                pb.update(len(valid) + len(failures))

            t0 = time.perf_counter()
            runner.run(scan_shard, shards(list(range(n))), take_scan, job, while_waiting=collector.prepare)
            t1 = time.perf_counter()
            for _, rec in sorted(failed, key=lambda pair: pair[0]):
                collector.take(rec)  # raises without skip_failures
            pb.update(len(failed))  # failed images have no pass 3
            if not num_valid:
                return

            def map_shards(func, *args):
                order = sorted(num_valid)
                parts = [order[i : i + size] for i in range(0, len(order), size)]
                futures = client.map(
                    cache_pass,
                    [func] * len(parts),
                    [job.cache_dir] * len(parts),
                    parts,
                    *[[a] * len(parts) for a in args],
                    pure=False,
                )
                return client.gather(futures)

            finder.finish(map_shards=map_shards)
            t2 = time.perf_counter()
            masker = finder.masker()
            ok = sorted(num_valid)
            runner.run(emit_shard, shards(ok, num_valid), take_records(pb), job, masker)
            logger.info(
                "issue count on Dask: scan %.2f s, selection %.2f s, masks and files %.2f s",
                t1 - t0, t2 - t1, time.perf_counter() - t2,
            )
    finally:
        cache_owner.close()


def _check_shared_output(rec) -> None:
    """A worker's PNG that this process cannot see means the output
    directory is not shared: fail before the database points at nothing."""
    path = getattr(rec, "heatmap", None)
    if path and not os.path.exists(path):
        raise NotSharedError(
            f"a worker wrote {path}, which does not exist here: the output directory must be on "
            "storage that the client and every worker see under the same path."
        )
