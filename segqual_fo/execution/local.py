"""Runs a scoring job in this process: the core streams the images
(``n_jobs`` threads), two writer threads write the PNGs and find the
regions, and the records go to the collector in input order.

``progress_bar(total)`` is supplied by the caller (the FiftyOne layer passes
FiftyOne's progress bar): a context manager whose ``update(n)`` advances it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, ContextManager, Sequence

from segqual_fo.core import DirectoryCache
from segqual_fo.execution.job import RunInputs, ScoringJob, image_outputs

#: Records scored ahead of the collector at most (bounds memory).
_AHEAD = 8
#: The issue count's cache entries held in memory before it spills to its
#: directory: all of a run's small images (1,500 images of 64x64 take
#: ~28 MB), a few big ones (a 1024x2048 image's scores alone are 8 MB).
_CACHE_MEMORY_BYTES = 64 << 20


def run_local(
    job: ScoringJob,
    inputs: RunInputs,
    stream: Sequence[int],
    collector,
    progress_bar: Callable[[int], ContextManager],
    n_jobs=None,
) -> None:
    """Scores the samples ``stream`` (indices; every sample for the issue
    count, whose thresholds are dataset-wide) and writes the outputs of
    those not ``inputs.done``; ``collector.take(record)`` receives one
    record per image, in order."""
    images = job.images(inputs.ids, inputs.filepaths, inputs.label_ref, inputs.probs_paths)
    cache = None
    if job.method == "softmin":
        images = images.subset(stream)  # samples are independent
        n_stream = len(stream)
        total_steps = n_stream
    else:
        n_stream = len(inputs.ids)
        total_steps = 2 * n_stream  # a scan pass, then the write pass
        cache = DirectoryCache(job.cache_dir, remove=True, memory_bytes=_CACHE_MEMORY_BYTES)
    if n_stream == 0:  # a resumed run with nothing left to read
        total_steps = 0
    pending: list = []

    def drain(keep):
        while len(pending) > keep:
            collector.take(pending.pop(0).result())

    with progress_bar(total_steps) as pb, ThreadPoolExecutor(max_workers=2, thread_name_prefix="segqual-write") as writer:
        results = iter(()) if n_stream == 0 else job.stream(
            images, n_jobs=n_jobs, cache=cache, on_scan=lambda done, total: pb.update()
        )
        try:
            for result in results:
                if result.failed:
                    drain(keep=0)
                    collector.take(job.failed(images, result.index, result.error))
                else:
                    sid = images.ids[result.index]
                    pending.append(writer.submit(image_outputs, result, sid, job.output, sid not in inputs.done))
                    drain(keep=_AHEAD)
                pb.update()
            drain(keep=0)
        finally:
            if hasattr(results, "close"):
                results.close()
            for fut in pending:
                fut.cancel()
            if cache is not None:
                cache.close()
            images.close()
