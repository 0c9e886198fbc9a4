"""Streaming scoring: one result per image, in order, in bounded memory.

Legend: N images, K classes, H x W pixels.

:func:`iter_label_quality` is what the FiftyOne layer and the memory
benchmark build on: ``labels`` and ``pred_probs`` may be lazy sequences
(``__len__`` + ``__getitem__`` that loads one image from disk), and nothing
is kept per image after it is yielded except, for the issue-count method, the
compact cache of :class:`~segqual_fo.core.issues.IssueFinder` (pass a
:class:`~segqual_fo.core.issues.DirectoryCache` to keep that on disk).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Optional

import numpy as np
import numpy.typing as npt

from segqual_fo.core._inputs import (
    ImageSource,
    UnnormalizedLog,
    check_positive_int,
    check_unnormalized,
    check_temperature,
    imap_ordered,
    normalize_ignore_index,
    resolve_n_jobs,
)
from segqual_fo.core.issues import IssueFinder
from segqual_fo.core.pixel import class_dtype, pixel_evidence, prepare_labels
from segqual_fo.core.rank import check_method, image_softmin_score
from segqual_fo.errors import InvalidInputError

#: Default pixel-score threshold below which softmin marks a pixel as an issue.
DEFAULT_ISSUE_THRESHOLD = 0.1
#: Values of ``iter_label_quality(pred_scope=)``: where ``ImageResult.pred``
#: holds the argmax.
PRED_SCOPES = ("disagree", "issues")


@dataclass
class ImageResult:
    """Scores of one image.

    Attributes:
        index: position of the image in the input
        score: image label quality in [0, 1] (lower = worse); NaN when every
            pixel is ignored
        pixel_scores: (H,W) self-confidence, NaN where ignored
        num_valid: number of scored pixels
        issues: (H,W) bool issue mask, when requested
        pred: (H,W) model argmax where it differs from a valid label (only
            at issue pixels with ``pred_scope="issues"``), else
            ``sentinel``; when issues were requested
        sentinel: the "no disagreement" value of ``pred``
        labels: (H,W) class indices as scored (ignored pixels 0); when
            issues were requested
        error: with ``skip_failures=True``, the exception that made this
            image fail (then ``score`` is NaN and the arrays are empty)
    """

    index: int
    score: float
    pixel_scores: npt.NDArray[np.floating]
    num_valid: int
    issues: Optional[npt.NDArray[np.bool_]] = None
    pred: Optional[np.ndarray] = None
    sentinel: Optional[int] = None
    labels: Optional[np.ndarray] = None
    error: Optional[BaseException] = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def num_issues(self) -> int:
        return 0 if self.issues is None else int(np.count_nonzero(self.issues))


def iter_label_quality(
    labels: Any,
    pred_probs: Any,
    *,
    method: str = "softmin",
    temperature: float = 0.1,
    downsample: int = 1,
    ignore_index: Any = None,
    with_issues: bool = False,
    issue_threshold: float = DEFAULT_ISSUE_THRESHOLD,
    n_jobs: Optional[int] = None,
    check_probs: str = "sample",
    cache=None,
    on_scan=None,
    skip_failures: bool = False,
    num_classes: Optional[int] = None,
    unnormalized: str = "error",
    pred_scope: str = "disagree",
    probs_once: bool = False,
) -> Iterator[ImageResult]:
    """Yields an :class:`ImageResult` per image, in input order.

    Scores are identical to :func:`~segqual_fo.core.get_label_quality_scores`.

    Issue masks (``with_issues=True``): for "num_pixel_issues", the confident
    learning mask of :func:`~segqual_fo.core.find_label_issues`; for
    "softmin", the valid pixels whose self-confidence is below
    ``issue_threshold`` and whose argmax is another class.

    Args:
        labels: (N,H,W) array or a sequence of (H,W) arrays (may be lazy)
        pred_probs: (N,K,H,W) array/memmap or a sequence of (K,H,W) arrays
        method ("softmin"): one of :data:`~segqual_fo.core.METHODS`
        temperature (0.1): softmin temperature
        downsample (1): block size for the issue-count statistics
        ignore_index (None): mask value(s) to ignore
        with_issues (False): also compute issue masks and argmax classes
        issue_threshold (0.1): softmin's pixel-score threshold for issues
        n_jobs (None): worker threads
        check_probs ("sample"): probability validation mode
        cache (None): the issue-count cache (memory by default)
        on_scan (None): for "num_pixel_issues", ``on_scan(done, total)`` is
            called during the first pass, which yields nothing
        skip_failures (False): an image that cannot be loaded or scored
            (any exception from the sequences, or invalid values) yields a
            result with ``error`` set instead of stopping the run; it is left
            out of the dataset statistics of "num_pixel_issues"
        num_classes (None): K, when the caller knows it (saves loading the
            first image an extra time to find out)
        unnormalized ("error"): finite, non-negative class scores that do
            not sum to 1: "error" raises (a per-image failure with
            ``skip_failures``), as the FiftyOne pipeline wants for files on
            disk; "warn" uses them as given, like the cleanlab-compatible
            functions, warning once (when the first such image is seen)
        pred_scope ("disagree"): where ``ImageResult.pred`` holds the
            argmax (with ``with_issues``): "disagree", every valid pixel
            whose argmax is not its label; "issues", the issue pixels only
            (``sentinel`` elsewhere). Issue masks, scores and the argmax at
            issue pixels are the same either way. What the FiftyOne
            pipeline reads is only the issue pixels' argmax (regions and the
            confusion counts), so it passes "issues": then softmin computes
            the argmax only where a pixel can be an issue (``s <
            issue_threshold``) instead of wherever it can differ from the
            label (``s <= 1/2``). The issue count needs the argmax of every
            disagreeing pixel for its threshold anyway.
        probs_once (False): read each image's probabilities once. Only the
            issue count with ``downsample > 1`` reads them twice by default
            (its last pass recomputes the full-resolution scores, which its
            cache does not hold); with ``probs_once`` the cache keeps them
            (4 bytes per pixel, on disk with a ``DirectoryCache``). For
            probabilities a model computes on the fly, where a second read
            is a second inference.

    Raises:
        InvalidInputError: and subclasses, naming the image
    """
    check_method(method)
    t = check_temperature(temperature)
    f = check_positive_int(downsample, "downsample", allow_none=False)
    if not 0 <= float(issue_threshold) <= 1:
        raise InvalidInputError(f"issue_threshold must be in [0, 1], got {issue_threshold!r}.")
    if pred_scope not in PRED_SCOPES:
        raise InvalidInputError(
            f"pred_scope must be one of {', '.join(repr(m) for m in PRED_SCOPES)}; got {pred_scope!r}."
        )
    issues_only = pred_scope == "issues"
    ignore = normalize_ignore_index(ignore_index)
    jobs = resolve_n_jobs(n_jobs)
    allow = check_unnormalized(unnormalized)
    source = ImageSource(labels, pred_probs, num_classes=num_classes)
    # scoring threads record unnormalised images here; the generator warns
    # (in the caller's thread) as soon as one is seen, once: a generator may
    # never be run to the end
    log = UnnormalizedLog(source.n)
    warned = [False]

    def warn_once() -> None:
        if log.count and not warned[0]:
            warned[0] = True
            log.warn(stacklevel=4, so_far=True)

    def failed(i: int, error: BaseException) -> ImageResult:
        return ImageResult(index=i, score=float("nan"), pixel_scores=np.empty((0, 0)), num_valid=0, error=error)

    def guarded(func):
        if not skip_failures:
            return func

        def run(i: int):
            try:
                return func(i)
            except Exception as e:  # reported per image, never swallowed
                return failed(i, e)

        return run

    if method == "softmin":
        sentinel = np.iinfo(class_dtype(source.num_classes)).max

        def score(i: int) -> ImageResult:
            ev = pixel_evidence(
                source.labels(i),
                source.probs(i),
                ignore=ignore,
                with_argmax=with_issues,
                check_probs=check_probs,
                index=i,
                allow_unnormalized=allow,
                # the same comparison as the issue mask's below
                argmax_below=issue_threshold if issues_only else None,
            )
            log.add(ev, i)
            result = ImageResult(
                index=i,
                score=float(image_softmin_score(ev, t)),
                pixel_scores=ev.pixel_scores,
                num_valid=ev.num_valid,
            )
            if with_issues:
                dis = ev.disagree
                with np.errstate(invalid="ignore"):
                    result.issues = dis & (ev.pixel_scores < issue_threshold)
                result.pred = np.where(result.issues if issues_only else dis, ev.pred, ev.pred.dtype.type(sentinel))
                result.sentinel = int(sentinel)
                result.labels = ev.labels
            return result

        for result in imap_ordered(guarded(score), source.n, jobs):
            warn_once()
            yield result
        return

    finder = IssueFinder(
        source.num_classes,
        ignore_index=ignore,
        downsample=f,
        check_probs=check_probs,
        cache=cache,
        allow_unnormalized=allow,
        keep_pixel_scores=probs_once,
    )
    num_valid = np.zeros(source.n, dtype=np.int64)
    errors = {}
    try:
        scan = guarded(lambda i: finder.scan(source.labels(i), source.probs(i), index=i))
        for done, partial in enumerate(imap_ordered(scan, source.n, jobs), 1):
            if isinstance(partial, ImageResult):
                errors[partial.index] = partial
            else:
                finder.add(partial)
                num_valid[partial.index] = partial.evidence.num_valid
                log.add(partial.evidence, partial.index)
                warn_once()
            if on_scan is not None:
                on_scan(done, source.n)
        if len(errors) < source.n:
            finder.finish()
            masker = finder.masker()
        for i in range(source.n):
            if i in errors:
                yield errors[i]
                continue
            try:
                result = issue_image_result(
                    i,
                    finder.cache.get(i),
                    masker,
                    int(num_valid[i]),
                    lambda: source.labels(i),
                    lambda: source.probs(i),
                    ignore=ignore,
                    with_issues=with_issues,
                    num_classes=source.num_classes,
                    allow_unnormalized=allow,
                )
            except Exception as e:
                if not skip_failures:
                    raise
                result = failed(i, e)
            if issues_only and result.pred is not None:
                result.pred[~result.issues] = result.sentinel
            yield result
    finally:
        finder.close()


def issue_image_result(
    index: int,
    entry,
    masker,
    num_valid: int,
    labels,
    probs,
    *,
    ignore,
    with_issues: bool,
    num_classes: int,
    allow_unnormalized: bool = False,
) -> ImageResult:
    """Pass 3 of the issue-count method for one image: its issue mask (from
    its cache entry and the finished finder's
    :class:`~segqual_fo.core.issues.IssueMasker`) and score.

    ``labels()`` and ``probs()`` load the image; the labels are read only
    when issues are wanted, the probabilities only with downsampling when
    the entry does not hold the full-resolution scores (the cache then holds
    block scores, so the full-resolution self-confidence is recomputed;
    ``allow_unnormalized`` as in the scan that accepted it).
    """
    mask, pred = masker.issues(index, entry)
    scores = entry.scores if masker.downsample == 1 else entry.pixel_scores
    labels_i = None
    if scores is None:
        ev = pixel_evidence(
            labels(),
            probs(),
            ignore=ignore,
            check_probs="none",
            index=index,
            allow_unnormalized=allow_unnormalized,
        )
        scores, labels_i = ev.pixel_scores, ev.labels
    elif with_issues:
        labels_i = prepare_labels(labels(), num_classes, ignore, index=index)[0]
    n = int(num_valid)
    return ImageResult(
        index=index,
        score=1.0 - np.count_nonzero(mask) / n if n else float("nan"),
        pixel_scores=scores,
        num_valid=n,
        issues=mask if with_issues else None,
        pred=pred if with_issues else None,
        sentinel=masker.sentinel if with_issues else None,
        labels=labels_i,
    )
