"""Pixel label issues by confident learning (drop-in for cleanlab's
``segmentation.filter.find_label_issues``), exact and streaming.

Legend: N images, K classes, H x W pixels. The algorithm is documented in
:mod:`segqual_fo.core.issues`.
"""

from __future__ import annotations

from typing import Any, Callable, Optional


from segqual_fo.core._inputs import (
    ImageSource,
    PerImageOutput,
    UnnormalizedLog,
    check_positive_int,
    check_unnormalized,
    imap_ordered,
    normalize_ignore_index,
    resolve_n_jobs,
)
from segqual_fo.core._progress import Progress
from segqual_fo.core.issues import IssueFinder


def run_issue_finder(
    source: ImageSource,
    *,
    ignore,
    downsample: int,
    check_probs: str,
    verbose: bool,
    n_jobs: int = 1,
    on_image: Optional[Callable] = None,
    cache=None,
    out=None,
    unnormalized_log: Optional[UnnormalizedLog] = None,
) -> IssueFinder:
    """Adds every image of ``source`` to an :class:`IssueFinder` and finishes it.

    Images are scanned by ``n_jobs`` threads; ``on_image(i, evidence)`` is
    called in image order with each image's full-resolution
    :class:`~segqual_fo.core.pixel.PixelEvidence`. ``out`` is an optional
    :class:`PerImageOutput` whose slots receive the pixel scores. With an
    ``unnormalized_log``, scores that do not sum to 1 are accepted and
    recorded there (else they raise).
    """
    finder = IssueFinder(
        source.num_classes,
        ignore_index=ignore,
        downsample=downsample,
        check_probs=check_probs,
        cache=cache,
        allow_unnormalized=unnormalized_log is not None,
    )

    def scan(i: int):
        slot = out.slot(i) if out is not None else None
        if slot is None:
            return finder.scan(source.labels(i), source.probs(i), index=i)
        return finder.scan(source.labels(i), source.probs(i), index=i, out=slot)

    try:
        with Progress(source.n, "scanning images", verbose) as bar:
            for partial in imap_ordered(scan, source.n, n_jobs):
                finder.add(partial)
                if unnormalized_log is not None:
                    unnormalized_log.add(partial.evidence, partial.index)
                if on_image is not None:
                    on_image(partial.index, partial.evidence)
                bar.update()
        with Progress(2 * source.n, "selecting issues", verbose) as bar:
            # follow finish's own count: with no issue it jumps to the end
            finder.finish(progress=lambda done, total: bar.update(done - bar.done))
    except BaseException:
        finder.close()
        raise
    return finder


def find_label_issues(
    labels: Any,
    pred_probs: Any,
    *,
    downsample: int = 1,
    ignore_index: Any = None,
    batch_size: Optional[int] = None,
    verbose: bool = False,
    n_jobs: Optional[int] = None,
    check_probs: str = "sample",
    cache=None,
    unnormalized: str = "warn",
) -> Any:
    """Flags the pixels whose given label is likely wrong (confident learning).

    Identical to ``cleanlab.segmentation.filter.find_label_issues`` on data
    without ties, for any input cleanlab accepts (unnormalised scores
    included); also handles images of different sizes, ignored values,
    float16/uint8 probabilities, and data larger than memory (pass
    ``cache=DirectoryCache()``).

    Args:
        labels: (N,H,W) integer array, or a sequence of (H,W) arrays
        pred_probs: (N,K,H,W) array or memmap, or a sequence of (K,H,W)
            arrays
        downsample (1): compute the statistics on f x f blocks (H and W must
            be divisible by f); the final mask is full resolution
        ignore_index (None): mask value(s) never flagged nor counted
        batch_size (None): accepted for compatibility with cleanlab; results
            never depend on it
        verbose (False): print progress to stderr
        n_jobs (None): worker threads (None: one per available CPU); results
            never depend on it
        check_probs ("sample"): probability validation ("sample", "full",
            "none")
        cache (None): where the per-pixel cache lives between passes: None
            (memory) or a :class:`~segqual_fo.core.issues.DirectoryCache`
        unnormalized ("warn"): finite, non-negative class scores that do not
            sum to 1: "warn" uses them as given (as cleanlab does) and warns
            once per call; "error" raises

    Returns:
        bool issue masks: (N,H,W) when all images share a size, else a list
        of (H,W) arrays

    Raises:
        InvalidInputError: (and its subclasses, all ``ValueError``) for bad
            arguments, shapes, labels, NaN/infinite/negative scores

    Warns:
        UnnormalizedProbabilitiesWarning: once, when class scores do not sum
            to 1 and ``unnormalized="warn"``

    Example::

        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> probs = rng.dirichlet(np.ones(3) * 0.3, size=(2, 8, 8)).transpose(0, 3, 1, 2)
        >>> labels = probs.argmax(1)
        >>> labels[0, 2, 2] = (labels[0, 2, 2] + 1) % 3
        >>> bool(find_label_issues(labels, probs)[0, 2, 2])
        True
    """
    f = check_positive_int(downsample, "downsample", allow_none=False)
    check_positive_int(batch_size, "batch_size")
    ignore = normalize_ignore_index(ignore_index)
    allow = check_unnormalized(unnormalized)
    source = ImageSource(labels, pred_probs)
    log = UnnormalizedLog(source.n) if allow else None
    finder = run_issue_finder(
        source,
        ignore=ignore,
        downsample=f,
        check_probs=check_probs,
        verbose=verbose,
        n_jobs=resolve_n_jobs(n_jobs),
        cache=cache,
        unnormalized_log=log,
    )
    out = PerImageOutput(source, dtype=bool)
    try:
        for i in range(source.n):
            out[i] = finder.issues(i)[0]
    finally:
        finder.close()
    if log is not None:
        log.warn()  # points at the caller of find_label_issues
    return out.result()
