"""Confident-learning label issues for segmentation, streamed one image at a time.

Legend: N images, K classes, H x W pixels; "grid" is the pixel grid the
statistics are computed on (the image itself, or f x f blocks when
``downsample=f``).

Why one module of this size: the three passes below share the grid, the
score histogram, the exact class sums and the tie rule; splitting them would
scatter one algorithm across files. The cache storage lives apart
(:mod:`segqual_fo.core.cache`).

# Algorithm
Confident learning is dataset-wide: the thresholds and the cut-off depend on
every image, so an image's issues are known only after all images are seen.

1. Pass over the images (:meth:`IssueFinder.scan` / :meth:`IssueFinder.add`),
   one at a time. For each valid grid pixel with label ``y``, self-confidence
   ``s = p[y]``, argmax ``j`` (first maximum on ties) and ``p[j]``:
   accumulate per-class sums of ``s`` (exactly, see :class:`ScanStats`) and
   pixel counts, a
   histogram of ``s`` over 16256 monotone bins (the top 16 bits of its
   float32 representation), and keep a compact cache: ``s`` for every pixel,
   plus ``(position, j, p[j])`` for the pixels where ``j != y`` (the only
   ones that can be issues): about 4 bytes per pixel for float32 instead of
   4K bytes of probabilities, in memory or in a directory.
2. :meth:`IssueFinder.finish`: per-class confident thresholds
   ``t_k = mean(s | y = k)``, clipped below at 2e-6 (a class that no valid
   pixel carries gets 2e-6, as in cleanlab; an ignored value that is also a
   probability channel gets +inf, so it never counts). From the cache,
   ``T = #{valid pixels: j != y and p[j] >= t_j - 1e-6}``. The cut-off is the
   T-th lowest ``s`` in the dataset: the histogram finds its bin, one scan of
   the cache collects the exact values inside that bin.
3. :meth:`IssueFinder.issues`: a pixel is an issue when it is among the T
   lowest-``s`` valid pixels and its argmax is not its label. With
   ``downsample=f > 1`` the ranking and ``T`` live on the block grid (block
   probabilities are averaged and renormalised, block labels are the rounded
   mean of the valid labels, as cleanlab does); flagged blocks are expanded
   to their f x f pixels, which stay issues only where the full-resolution
   argmax differs from the label.

The probabilities are read once; later passes read only the cache.

Sharding: every dataset-wide quantity is an exact, order-free reduction
(integer counts, a histogram, exactly summed class sums, merged unique
values), so images may be scanned in any order, by any number of processes
or machines, each with its own :class:`ScanStats` merged afterwards, and the
cache passes of :meth:`IssueFinder.finish` may be split into shards
(``map_shards``): the selection is bit-identical whatever the split.
:class:`IssueMasker` is the small, picklable part pass 3 needs.

Ties: pixels with equal ``s`` are ordered by image index, then row-major
position on the grid, so when the cut-off falls inside a group of equal
scores the earliest pixels are taken. Results therefore never depend on batch
sizes or threading. cleanlab breaks such ties by an unstable sort; on data
without ties the two agree exactly.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import numpy.typing as npt

from segqual_fo.core._inputs import check_positive_int, normalize_ignore_index
from segqual_fo.core.cache import CacheEntry, DirectoryCache, MemoryCache  # noqa: F401  (re-exported)
from segqual_fo.core.pixel import PixelEvidence, argmax_first, class_dtype, pixel_evidence
from segqual_fo.core.resample import LowResProbs
from segqual_fo.errors import InvalidInputError, InvalidProbabilitiesError, SegQualError, ShapeMismatchError

#: Lower bound of a confident threshold (cleanlab's CONFIDENT_THRESHOLDS_LOWER_BOUND).
CONFIDENT_THRESHOLD_MIN = 2e-6
#: Tolerance of the ``p[j] >= t_j`` comparison.
THRESHOLD_TOLERANCE = 1e-6

_HIST_SHIFT = 16
_NUM_BINS = int(np.array(1.02, dtype=np.float32).view(np.uint32) >> _HIST_SHIFT) + 1
# Merge collected in-bin values into (unique, count) pairs past this many.
_COMPACT_EVERY = 1 << 22
# 2**-1074 is the smallest positive float64: every float64 is an integer
# multiple of it.
_EXACT_SHIFT = 1074


def _values_in_bin(s: np.ndarray, b: int) -> np.ndarray:
    """The scores of ``s`` falling in histogram bin ``b`` (NaN never does).

    The last bin also holds every score above it (unnormalised scores may
    exceed 1.02 by any amount; see :func:`_histogram`).
    """
    if b == _NUM_BINS - 1:
        lo = np.array(b << _HIST_SHIFT, dtype=np.uint32).view(np.float32)
        s32 = s if s.dtype == np.float32 else s.astype(np.float32)
        return s[s32 >= lo]
    if s.dtype == np.float32:  # the bin is a float32 interval: compare directly
        lo = np.array(b << _HIST_SHIFT, dtype=np.uint32).view(np.float32)
        hi = np.array((b + 1) << _HIST_SHIFT, dtype=np.uint32).view(np.float32)
        return s[(s >= lo) & (s < hi)]
    return s[_score_bins(s) == b]


def _histogram(s: np.ndarray) -> np.ndarray:
    """(B,) int64 counts of valid (non-NaN) scores per bin; scores above the
    last bin (only unnormalised ones, > 1.02) are counted in it."""
    h = np.bincount(_score_bins(s), minlength=_NUM_BINS).astype(np.int64)
    if h.size > _NUM_BINS:
        h[_NUM_BINS - 1] += h[_NUM_BINS:].sum()
        h = h[:_NUM_BINS]
    return h


def _score_bins(s: np.ndarray) -> np.ndarray:
    """Monotone histogram bin of each score (NaN lands far above all bins)."""
    s32 = s if s.dtype == np.float32 else s.astype(np.float32)
    return (s32.view(np.uint32) >> _HIST_SHIFT).astype(np.intp)


@dataclass
class ImagePartial:
    """One image's contribution to the dataset statistics (mergeable).

    Attributes:
        index: position of the image
        class_sums: (K,) float64 sums of self-confidence per given class
        class_counts: (K,) int64 valid grid pixels per given class
        histogram: (B,) int64 counts of self-confidence per bin
        entry: the image's cache entry
        evidence: full-resolution :class:`PixelEvidence` (not stored)
    """

    index: int
    class_sums: np.ndarray
    class_counts: np.ndarray
    histogram: np.ndarray
    entry: CacheEntry
    evidence: PixelEvidence


@dataclass
class IssueSelection:
    """Dataset-wide outcome of :meth:`IssueFinder.finish`.

    Attributes:
        thresholds: (K,) per-class confident thresholds (inf for ignored
            classes)
        num_issues: T, the number of grid pixels to flag before the argmax
            check
        cutoff: the T-th lowest grid self-confidence (None when T = 0)
        tie_quota: per image, how many of its pixels with score exactly
            ``cutoff`` are taken (empty when all of them are)
    """

    thresholds: np.ndarray
    num_issues: int
    cutoff: Optional[float]
    tie_quota: Dict[int, int] = field(default_factory=dict)


def block_mean_probs(p, factor: int, index: Optional[int] = None, *, row_offset: int = 0) -> np.ndarray:
    """Averages f x f blocks of (K,H,W) probabilities and renormalises.

    ``p`` may be a :class:`~segqual_fo.core.resample.LowResProbs`: its
    full-resolution rows are interpolated a strip of blocks at a time (about
    a million values per strip, never K x H x W) and each strip is averaged
    by this same function, so the result equals that of ``p.dense()`` bit
    for bit (a block's mean reads its own f x f pixels only). ``row_offset``
    is the first row of ``p`` in the image (for messages).

    Raises:
        InvalidProbabilitiesError: for a block whose scores are all 0 (only
            unnormalised scores can have one), which has no renormalisation
    """
    if isinstance(p, LowResProbs):
        k, h, w = p.shape
        step = max(1, (1 << 20) // (k * factor * w)) * factor
        return np.concatenate(
            [
                block_mean_probs(p.dense_rows(r, min(r + step, h)), factor, index, row_offset=r)
                for r in range(0, h, step)
            ],
            axis=1,
        )
    k, h, w = p.shape
    small = p.reshape(k, h // factor, factor, w // factor, factor).mean(axis=(4, 2))
    sums = small.sum(axis=0)
    if not (sums > 0).all():
        r, c = np.argwhere(~(sums > 0))[0]
        where = "pred_probs" if index is None else f"pred_probs[{index}]"
        raise InvalidProbabilitiesError(
            f"{where}: every class score is 0 in the downsample={factor} block at rows "
            f"{row_offset + r * factor}..{row_offset + (r + 1) * factor - 1}, cols {c * factor}..{(c + 1) * factor - 1}, "
            "which cannot be renormalised. Use downsample=1, or scores that are not all 0.",
            index=index,
        )
    small /= sums[None]
    return small


def block_labels(
    labels: np.ndarray, valid: Optional[np.ndarray], factor: int
) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Rounded mean of the valid labels of each f x f block (cleanlab's rule).

    Returns (block labels, block valid mask or None); a block is valid when it
    holds at least one valid pixel.
    """
    h, w = labels.shape
    shape = (h // factor, factor, w // factor, factor)
    if valid is None:
        return np.round(labels.reshape(shape).mean(axis=(3, 1))).astype(np.intp), None
    counts = valid.reshape(shape).sum(axis=(3, 1))
    sums = np.where(valid, labels, 0).reshape(shape).sum(axis=(3, 1), dtype=np.int64)
    out = np.round(sums / np.maximum(counts, 1)).astype(np.intp)
    return out, counts > 0


def _exact_units(values: np.ndarray) -> list:
    """Each float64 as an exact integer multiple of 2**-1074 (Python ints)."""
    out = []
    for v in values.tolist():
        num, den = float(v).as_integer_ratio()  # den is a power of two
        out.append(num << (_EXACT_SHIFT - (den.bit_length() - 1)))
    return out


class ScanStats:
    """Dataset statistics of pass 1, mergeable in any order.

    Class sums are kept exactly (as integer multiples of 2**-1074, the
    smallest float64), so their total, and therefore every threshold, is the
    correctly rounded sum whatever the order or grouping of the images: a
    sharded run equals a single-process one bit for bit.

    Attributes:
        num_classes: K
        indices: the image indices added
        class_counts: (K,) int64 valid grid pixels per given class
        histogram: (B,) int64 counts of self-confidence per bin
    """

    def __init__(self, num_classes: int):
        self.num_classes = int(num_classes)
        self.indices: set = set()
        self._sums = [0] * self.num_classes
        self.class_counts = np.zeros(self.num_classes, dtype=np.int64)
        self.histogram = np.zeros(_NUM_BINS, dtype=np.int64)

    def add(self, index: int, class_sums: np.ndarray, class_counts: np.ndarray, histogram: np.ndarray) -> None:
        """Adds one image's contribution."""
        if index in self.indices:
            raise InvalidInputError(f"image index {index} was added twice.")
        if histogram.size > _NUM_BINS:
            raise InvalidInputError("self-confidence above 1 reached the histogram.")
        self.indices.add(int(index))
        for k, u in enumerate(_exact_units(class_sums)):
            if u:
                self._sums[k] += u
        self.class_counts += class_counts
        self.histogram += histogram

    def merge(self, other: "ScanStats") -> None:
        """Adds another shard's statistics (disjoint images)."""
        if other.num_classes != self.num_classes:
            raise InvalidInputError(
                f"cannot merge statistics of {other.num_classes} classes into {self.num_classes}."
            )
        twice = self.indices & other.indices
        if twice:
            raise InvalidInputError(f"image index {min(twice)} was added twice.")
        self.indices |= other.indices
        self._sums = [a + b for a, b in zip(self._sums, other._sums)]
        self.class_counts += other.class_counts
        self.histogram += other.histogram

    @property
    def class_sums(self) -> np.ndarray:
        """(K,) float64 correctly rounded sums of self-confidence per class."""
        scale = 1 << _EXACT_SHIFT
        return np.array([u / scale for u in self._sums], dtype=np.float64)


class IssueFinder:
    """Streaming, exact confident-learning issue finder (see the module docs).

    Args:
        num_classes: K
        ignore_index (None): mask value(s) to exclude from every count,
            threshold and mask
        downsample (1): block size f for the statistics (H and W must be
            divisible by it)
        check_probs ("sample"): probability validation, see
            :func:`segqual_fo.core.pixel.pixel_evidence`
        cache (None): a :class:`MemoryCache` (default) or
            :class:`DirectoryCache`
        allow_unnormalized (False): accept finite, non-negative scores that
            do not sum to 1, used as given (see
            :func:`~segqual_fo.core.pixel.pixel_evidence`); the scanned
            evidence flags them, and warning is the caller's business
        keep_pixel_scores (False): with ``downsample > 1``, also keep each
            image's full-resolution self-confidence in its cache entry, so
            that the last pass (:func:`~segqual_fo.core.stream.issue_image_result`)
            does not read the probabilities again (for probabilities that a
            model computes: each image then runs through it once); costs
            4 bytes per pixel of cache

    Example::

        finder = IssueFinder(num_classes=K, ignore_index=255)
        for i, (lab, probs) in enumerate(images):   # any order, any source
            finder.update(lab, probs, index=i)
        finder.finish()
        mask, pred = finder.issues(0)               # (H,W) bool, (H,W) argmax
    """

    def __init__(
        self,
        num_classes: int,
        *,
        ignore_index=None,
        downsample: int = 1,
        check_probs: str = "sample",
        cache=None,
        allow_unnormalized: bool = False,
        keep_pixel_scores: bool = False,
    ):
        self.num_classes = check_positive_int(num_classes, "num_classes", allow_none=False)
        self.keep_pixel_scores = bool(keep_pixel_scores)
        self.allow_unnormalized = bool(allow_unnormalized)
        self.ignore = normalize_ignore_index(ignore_index)
        self.downsample = check_positive_int(downsample, "downsample", allow_none=False)
        self.check_probs = check_probs
        self.pred_dtype = class_dtype(self.num_classes)
        self.sentinel = np.iinfo(self.pred_dtype).max
        self.cache = cache if cache is not None else MemoryCache()
        # exact, order-free statistics: threads, shards and processes may add
        # images in any order and still give the same thresholds
        self.stats = ScanStats(self.num_classes)
        self._lock = threading.Lock()
        self.selection: Optional[IssueSelection] = None

    # -- pass 1 -----------------------------------------------------------
    def scan(
        self, labels: np.ndarray, pred_probs: np.ndarray, index: int, out: Optional[np.ndarray] = None
    ) -> ImagePartial:
        """Computes one image's statistics and cache entry (thread-safe, pure).

        ``out`` optionally receives the (H,W) pixel scores (see
        :func:`~segqual_fo.core.pixel.pixel_evidence`).
        """
        p_shape = np.shape(pred_probs)
        if len(p_shape) == 3 and p_shape[0] != self.num_classes:
            raise ShapeMismatchError(
                f"pred_probs[{index}] has {p_shape[0]} class channels but the other "
                f"images have {self.num_classes}; every image needs the same K.",
                index=index,
            )
        ev = pixel_evidence(
            labels,
            pred_probs,
            ignore=self.ignore,
            with_argmax=True,
            check_probs=self.check_probs,
            index=index,
            out=out,
            allow_unnormalized=self.allow_unnormalized,
        )
        f = self.downsample
        full_dis = np.flatnonzero(ev.disagree.reshape(-1)).astype(np.int32)
        if f == 1:
            scores, lab, valid = ev.pixel_scores, ev.labels, ev.valid
            dis_index = full_dis
            dis_pred = ev.pred.reshape(-1)[dis_index]
            dis_prob = ev.pred_prob.reshape(-1)[dis_index]
            full_index = full_pred = None
        else:
            h, w = ev.labels.shape
            if h % f or w % f:
                raise ShapeMismatchError(
                    f"image {index} is {h}x{w}, not divisible by downsample={f}. "
                    "Use a factor of both sides, or downsample=1.",
                    index=index,
                )
            small = block_mean_probs(ev.probs, f, index=index)
            lab, valid = block_labels(ev.labels, ev.valid, f)
            if self.ignore:
                ignored = np.isin(lab, self.ignore)
                if ignored.any():
                    valid = ~ignored if valid is None else valid & ~ignored
                    lab = np.where(ignored, 0, lab)
            hw = lab.size
            idx = lab.ravel() * hw + np.arange(hw)
            scores = np.take(small.reshape(-1), idx, mode="clip").reshape(lab.shape)
            if valid is not None:
                scores[~valid] = np.nan
            pmax = small.max(axis=0)
            pred = argmax_first(small, pmax, self.pred_dtype)
            dis = pred != lab
            if valid is not None:
                dis &= valid
            dis_index = np.flatnonzero(dis.reshape(-1)).astype(np.int32)
            dis_pred = pred.reshape(-1)[dis_index]
            dis_prob = pmax.reshape(-1)[dis_index]
            full_index, full_pred = full_dis, ev.pred.reshape(-1)[full_dis]
        if valid is None:
            lab_v, s_v = lab.ravel(), scores.ravel()
        else:
            lab_v, s_v = lab[valid], scores[valid]
        partial = ImagePartial(
            index=index,
            class_sums=np.bincount(lab_v, weights=s_v, minlength=self.num_classes),
            class_counts=np.bincount(lab_v, minlength=self.num_classes).astype(np.int64),
            histogram=_histogram(s_v),
            entry=CacheEntry(
                scores,
                dis_index,
                dis_pred,
                dis_prob,
                ev.labels.shape,
                full_index,
                full_pred,
                pixel_scores=ev.pixel_scores if f > 1 and self.keep_pixel_scores else None,
            ),
            evidence=ev,
        )
        # the probabilities are not needed past this point: do not let a
        # queued partial keep a whole (K,H,W) image alive
        ev.probs = None
        return partial

    def add(self, partial: ImagePartial) -> None:
        """Merges a scanned image into the dataset statistics and the cache."""
        self._check_open()
        with self._lock:
            self.stats.add(partial.index, partial.class_sums, partial.class_counts, partial.histogram)
        self.cache.put(partial.index, partial.entry)

    def merge(self, stats: ScanStats) -> None:
        """Merges statistics that another finder (another thread, process or
        machine) computed for images whose entries it put in this finder's
        cache (a :class:`DirectoryCache` on shared storage)."""
        self._check_open()
        with self._lock:
            self.stats.merge(stats)

    def _check_open(self) -> None:
        if self.selection is not None:
            raise SegQualError("IssueFinder.finish() was already called; create a new finder.")

    def update(self, labels: np.ndarray, pred_probs: np.ndarray, index: int) -> PixelEvidence:
        """``scan`` + ``add``; returns the image's full-resolution evidence."""
        partial = self.scan(labels, pred_probs, index)
        self.add(partial)
        return partial.evidence

    # -- pass 2 -----------------------------------------------------------
    @property
    def thresholds(self) -> np.ndarray:
        """(K,) per-class confident thresholds from the images added so far."""
        t = self.stats.class_sums / np.maximum(self.stats.class_counts, 1)
        t = np.maximum(t, CONFIDENT_THRESHOLD_MIN)
        for v in self.ignore:
            if 0 <= v < self.num_classes:
                t[v] = np.inf
        return t

    def _ordered(self) -> List[int]:
        return sorted(self.stats.indices)

    def finish(self, progress=None, map_shards=None) -> IssueSelection:
        """Fixes thresholds, the issue count T and the exact cut-off.

        Args:
            progress (None): optional callable ``progress(done, total)``
                called after each cache entry read (in-process only)
            map_shards (None): runs the cache passes elsewhere: called as
                ``map_shards(func, *args)``, it must return the list of
                ``func(cache, indices, *args)`` over a partition of the
                added indices into consecutive runs, in order (``cache`` is
                a cache holding those entries, e.g. the same
                :class:`DirectoryCache` opened on another machine). By
                default the passes run here, over all indices.

        Returns:
            an :class:`IssueSelection` (also kept as ``self.selection``)
        """
        if not self.stats.indices:
            raise SegQualError("no images were added to the IssueFinder.")
        order = self._ordered()
        t = self.thresholds
        total_steps = 2 * len(order)
        step = [0]

        def tick():
            step[0] += 1
            if progress:
                progress(step[0], total_steps)

        if map_shards is None:

            def map_shards(func, *args):
                return [func(self.cache, order, *args, tick=tick)]

        num_issues = sum(map_shards(count_confident, t - THRESHOLD_TOLERANCE))
        if num_issues == 0:
            self.selection = IssueSelection(thresholds=t, num_issues=0, cutoff=None)
            if progress:
                progress(total_steps, total_steps)
            return self.selection

        cum = np.cumsum(self.stats.histogram)
        b = int(np.searchsorted(cum, num_issues))
        rank_in_bin = num_issues - (int(cum[b - 1]) if b > 0 else 0)
        uniq = counts = None
        for u, c in map_shards(values_in_bin, b):
            uniq, counts = _merge_counts(uniq, counts, u, c)
        cumc = np.cumsum(counts)
        j = int(np.searchsorted(cumc, rank_in_bin))
        cutoff = uniq[j]
        taken_ties = rank_in_bin - (int(cumc[j - 1]) if j > 0 else 0)
        quota: Dict[int, int] = {}
        if taken_ties < counts[j]:
            before = 0
            for shard in map_shards(count_equal, cutoff.item()):
                for i, n_i in shard:
                    quota[i] = int(min(max(taken_ties - before, 0), n_i))
                    before += n_i
        self.selection = IssueSelection(
            thresholds=t, num_issues=num_issues, cutoff=cutoff.item(), tie_quota=quota
        )
        return self.selection

    # -- pass 3 -----------------------------------------------------------
    def masker(self) -> "IssueMasker":
        """The picklable part of a finished finder that :meth:`issues` needs."""
        if self.selection is None:
            raise SegQualError("call IssueFinder.finish() before issues().")
        return IssueMasker(self.selection, self.downsample, self.num_classes)

    def issues(self, index: int, entry: Optional[CacheEntry] = None) -> Tuple[npt.NDArray[np.bool_], np.ndarray]:
        """Issue mask of one image after :meth:`finish`.

        ``entry`` is the image's cache entry when the caller already read it
        (saves a read of a :class:`DirectoryCache`).

        Returns:
            ``(mask, pred)``: the (H,W) bool issue mask and the (H,W) argmax
            class where it differs from a valid label (the sentinel
            ``self.sentinel`` elsewhere)
        """
        masker = self.masker()
        return masker.issues(index, entry if entry is not None else self.cache.get(index))

    def close(self) -> None:
        """Releases the cache (removes a temporary cache directory)."""
        self.cache.close()


# -- the cache passes of IssueFinder.finish, one shard of images at a time --
# Each returns something whose reduction over shards is exact and order-free.


def count_confident(cache, indices, adjusted_thresholds, tick=None) -> int:
    """Disagreeing grid pixels with ``p[j] >= t_j - tolerance``."""
    n = 0
    for i in indices:
        e = cache.get(i, keys=("dis_pred", "dis_prob"))
        if e.dis_pred.size:
            n += int(np.count_nonzero(e.dis_prob >= adjusted_thresholds[e.dis_pred]))
        if tick:
            tick()
    return n


def values_in_bin(cache, indices, b: int, tick=None) -> Tuple[np.ndarray, np.ndarray]:
    """(unique scores, counts) of the scores in histogram bin ``b``."""
    collected = []
    pending = 0
    uniq = counts = None
    for i in indices:
        vals = _values_in_bin(cache.get(i, keys=("scores",)).scores, b)
        if vals.size:
            collected.append(vals)
            pending += vals.size
            if pending > _COMPACT_EVERY:
                uniq, counts = _merge_counts(uniq, counts, np.concatenate(collected))
                collected, pending = [], 0
        if tick:
            tick()
    if collected:
        uniq, counts = _merge_counts(uniq, counts, np.concatenate(collected))
    if uniq is None:
        return np.empty(0, dtype=np.float64), np.empty(0, dtype=np.int64)
    return uniq, counts


def count_equal(cache, indices, cutoff: float, tick=None) -> List[Tuple[int, int]]:
    """``(index, number of grid scores equal to cutoff)`` per image."""
    out = []
    for i in indices:
        s = cache.get(i, keys=("scores",)).scores
        out.append((int(i), int(np.count_nonzero(s == s.dtype.type(cutoff)))))
    return out


@dataclass
class IssueMasker:
    """Pass 3 of a finished :class:`IssueFinder`: issue masks from cache
    entries. Small and picklable, so masks can be made where the entries
    are (see :meth:`IssueFinder.masker`)."""

    selection: IssueSelection
    downsample: int
    num_classes: int

    @property
    def pred_dtype(self) -> np.dtype:
        return class_dtype(self.num_classes)

    @property
    def sentinel(self) -> int:
        return int(np.iinfo(self.pred_dtype).max)

    def issues(self, index: int, e: CacheEntry) -> Tuple[npt.NDArray[np.bool_], np.ndarray]:
        """``(mask, pred)`` of image ``index`` from its cache entry ``e``
        (see :meth:`IssueFinder.issues`)."""
        sel = self.selection
        f = self.downsample
        full_index = e.dis_index if f == 1 else e.full_dis_index
        full_pred = e.dis_pred if f == 1 else e.full_dis_pred
        pred = np.full(e.shape, self.sentinel, dtype=self.pred_dtype)
        pred.reshape(-1)[full_index] = full_pred
        mask = np.zeros(e.shape, dtype=bool)
        if sel.cutoff is None:
            return mask, pred
        s = e.scores
        cutoff = s.dtype.type(sel.cutoff)
        if sel.tie_quota:
            low = s < cutoff
            q = sel.tie_quota.get(index, 0)
            if q:
                low.ravel()[np.flatnonzero(s == cutoff)[:q]] = True
        else:
            low = s <= cutoff
        if f > 1:
            low = low.repeat(f, axis=0).repeat(f, axis=1)
        mask.reshape(-1)[full_index] = low.reshape(-1)[full_index]
        return mask, pred


def _merge_counts(uniq, counts, values, value_counts=None):
    """Merges (unique, counts) with more values (or (unique, counts) pairs)."""
    if value_counts is None:
        u, c = np.unique(values, return_counts=True)
    else:
        u, c = values, value_counts
    if uniq is None:
        return u, c
    allv = np.concatenate([uniq, u])
    allc = np.concatenate([counts, c])
    u2, inv = np.unique(allv, return_inverse=True)
    return u2, np.bincount(inv.ravel(), weights=allc, minlength=u2.size).astype(np.int64)
