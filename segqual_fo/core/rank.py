"""Label quality scores of segmentation images (drop-in for cleanlab's
``segmentation.rank``, on more kinds of input).

Legend: N images, K classes, H x W pixels.
"""

from __future__ import annotations

import warnings
from typing import Any, Optional, Tuple

import numpy as np
import numpy.typing as npt

from segqual_fo.core._inputs import (
    ImageSource,
    PerImageOutput,
    UnnormalizedLog,
    check_positive_int,
    check_unnormalized,
    check_temperature,
    imap_ordered,
    normalize_ignore_index,
    resolve_n_jobs,
)
from segqual_fo.core._progress import Progress
from segqual_fo.core.pixel import compute_dtype, pixel_evidence
from segqual_fo.core.pooling import softmin_1d, softmin_rows
from segqual_fo.errors import InvalidInputError

#: Supported values of ``method=``.
METHODS = ("softmin", "num_pixel_issues")


def check_method(method: Any) -> str:
    if method not in METHODS:
        raise InvalidInputError(
            f"method must be one of {', '.join(repr(m) for m in METHODS)}; got {method!r}."
        )
    return method


def image_softmin_score(evidence, temperature: float):
    """Softmin image score(s) from a :class:`PixelEvidence`: a float for one
    image, a (B,) array for a batch.

    Images flagged unnormalised are pooled in the shifted form (their scores
    may exceed 1); the choice is per image, so results never depend on how
    images are batched.
    """
    s = evidence.pixel_scores
    flags = evidence.unnormalized
    if s.ndim == 2:
        values = s.ravel() if evidence.valid is None else s[evidence.valid]
        return softmin_1d(values, temperature, shift=flags is not None and bool(flags))
    if evidence.valid is None:
        out = softmin_rows(s.reshape(len(s), -1), temperature)
    else:
        out = np.array([softmin_1d(s[b][evidence.valid[b]], temperature) for b in range(len(s))])
    if flags is not None:  # redo the flagged images only, as if scored alone
        for b in np.flatnonzero(flags):
            values = s[b].ravel() if evidence.valid is None else s[b][evidence.valid[b]]
            out[b] = softmin_1d(values, temperature, shift=True)
    return out


def get_label_quality_scores(
    labels: Any,
    pred_probs: Any,
    *,
    method: str = "softmin",
    temperature: float = 0.1,
    downsample: int = 1,
    ignore_index: Any = None,
    batch_size: Optional[int] = None,
    verbose: bool = False,
    n_jobs: Optional[int] = None,
    check_probs: str = "sample",
    unnormalized: str = "warn",
) -> Tuple[npt.NDArray[np.float64], Any]:
    """Returns a label quality score per image and per pixel (lower = worse).

    Matches ``cleanlab.segmentation.rank.get_label_quality_scores`` on the
    inputs cleanlab accepts (unnormalised scores included), and also takes
    images of different sizes, ignored label values, float16 and
    uint8-quantised probabilities.

    Args:
        labels: (N,H,W) integer array, or a sequence of (H,W) arrays
        pred_probs: (N,K,H,W) array or memmap, or a sequence of (K,H,W)
            arrays; softmax probabilities, float16/32/64 or uint8
            (``round(p * 255)``)
        method ("softmin"): one of :data:`METHODS`. "softmin" pools pixel
            self-confidence with a softmin (see
            :mod:`segqual_fo.core.pooling`); "num_pixel_issues" is one minus
            the fraction of the image's valid pixels that confident learning
            flags (:func:`find_label_issues`, dataset-wide)
        temperature (0.1): softmin temperature (softmin only)
        downsample (1): block size for "num_pixel_issues" statistics; ignored
            with a warning for "softmin", as in cleanlab
        ignore_index (None): mask value(s) to exclude from every score, e.g.
            255 or a void class
        batch_size (None): images scored per vectorised step when the
            inputs are stacked arrays (default: about 64 MB of
            probabilities); results never depend on it
        verbose (False): print progress to stderr
        n_jobs (None): worker threads (None: one per available CPU); results
            never depend on it
        check_probs ("sample"): probability validation: "sample", "full" or
            "none" (see :mod:`segqual_fo.core.pixel`)
        unnormalized ("warn"): finite, non-negative class scores that do not
            sum to 1 (e.g. ``np.random.random``): "warn" uses them as given,
            as cleanlab does, and warns once per call; "error" raises

    Returns:
        ``(image_scores, pixel_scores)``: image_scores is (N,) float64 in
        [0, 1] (NaN for an image whose pixels are all ignored);
        pixel_scores is the self-confidence ``pred_probs[label]`` per pixel
        (NaN where ignored), an (N,H,W) array when all images share a size,
        else a list of (H,W) arrays. float32 unless the input is float64.

    Raises:
        InvalidInputError: (and its subclasses, all ``ValueError``) for bad
            arguments, shapes, label values, NaN/infinite/negative scores;
            the message names the image

    Warns:
        UnnormalizedProbabilitiesWarning: once, when class scores do not sum
            to 1 and ``unnormalized="warn"``

    Example::

        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> probs = rng.dirichlet(np.ones(3), size=(2, 4, 4)).transpose(0, 3, 1, 2)
        >>> labels = probs.argmax(1)
        >>> labels[1, 0, 0] = (labels[1, 0, 0] + 1) % 3   # one wrong pixel
        >>> image_scores, pixel_scores = get_label_quality_scores(labels, probs)
        >>> bool(image_scores[1] < image_scores[0])
        True
    """
    check_method(method)
    t = check_temperature(temperature)
    f = check_positive_int(downsample, "downsample", allow_none=False)
    check_positive_int(batch_size, "batch_size")
    ignore = normalize_ignore_index(ignore_index)
    jobs = resolve_n_jobs(n_jobs)
    allow = check_unnormalized(unnormalized)
    source = ImageSource(labels, pred_probs)
    log = UnnormalizedLog(source.n) if allow else None
    image_scores = np.empty(source.n, dtype=np.float64)
    pixel_scores = PerImageOutput(source, dtype=compute_dtype(source.probs(0).dtype))

    if method == "softmin":
        if f != 1:
            warnings.warn(
                f"downsample={f} applies to method='num_pixel_issues' only; softmin "
                "scores every pixel.",
                stacklevel=2,
            )

        def score(span) -> int:
            start, stop = span
            if source.stacked:
                labels_in, probs_in = source.labels_batch(start, stop), source.probs_batch(start, stop)
                out = pixel_scores.slots(start, stop)
            else:
                labels_in, probs_in = source.labels(start), source.probs(start)
                out = pixel_scores.slot(start)
            ev = pixel_evidence(
                labels_in,
                probs_in,
                ignore=ignore,
                check_probs=check_probs,
                index=start,
                out=out,
                allow_unnormalized=allow,
            )
            if ev.unnormalized is not None:
                log.add(ev, start)
            pixel_scores[start:stop] = ev.pixel_scores if source.stacked else ev.pixel_scores[None]
            image_scores[start:stop] = image_softmin_score(ev, t)
            return stop - start

        spans = source.batches(batch_size, jobs)
        with Progress(source.n, "softmin scores", verbose) as bar:
            for done in imap_ordered(lambda j: score(spans[j]), len(spans), jobs):
                bar.update(done)
        if log is not None:
            log.warn()  # points at the caller of get_label_quality_scores
        return image_scores, pixel_scores.result()

    from segqual_fo.core.filter import run_issue_finder

    num_valid = np.empty(source.n, dtype=np.int64)

    def keep(i, ev):
        pixel_scores[i] = ev.pixel_scores
        num_valid[i] = ev.num_valid

    finder = run_issue_finder(
        source,
        ignore=ignore,
        downsample=f,
        check_probs=check_probs,
        verbose=verbose,
        n_jobs=jobs,
        on_image=keep,
        out=pixel_scores,
        unnormalized_log=log,
    )
    try:
        for i in range(source.n):
            mask, _ = finder.issues(i)
            n = num_valid[i]
            image_scores[i] = 1.0 - np.count_nonzero(mask) / n if n else np.nan
    finally:
        finder.close()
    if log is not None:
        log.warn()
    return image_scores, pixel_scores.result()


def issues_from_scores(
    image_scores: npt.ArrayLike,
    pixel_scores: Any = None,
    threshold: float = 0.1,
) -> Any:
    """Turns scores into issues by thresholding (no confident learning).

    Args:
        image_scores: (N,) image scores from :func:`get_label_quality_scores`
        pixel_scores (None): their pixel scores ((N,H,W) array or list)
        threshold (0.1): scores strictly below it are issues; in [0, 1]

    Returns:
        with ``pixel_scores``: bool masks shaped like ``pixel_scores``
        (ignored pixels, NaN, are never issues); without: the indices of the
        images scoring below ``threshold``, worst first. (cleanlab also
        returns the first image at or above the threshold; this does not.)
    """
    if image_scores is None:
        raise InvalidInputError("image_scores must be given.")
    try:
        thr = float(threshold)
    except (TypeError, ValueError):
        thr = float("nan")
    if not 0 <= thr <= 1:
        raise InvalidInputError(f"threshold must be between 0 and 1, got {threshold!r}.")
    if pixel_scores is not None:
        if isinstance(pixel_scores, np.ndarray):
            return pixel_scores < thr
        return [np.asarray(s) < thr for s in pixel_scores]
    scores = np.asarray(image_scores, dtype=np.float64)
    order = np.argsort(scores, kind="stable")
    n_below = int(np.count_nonzero(scores < thr))
    return order[:n_below]
