"""Uniform access to the array inputs of the core functions.

The public functions accept ``labels`` as an (N,H,W) array or a sequence of
(H,W) arrays, and ``pred_probs`` as an (N,K,H,W) array (memmaps welcome) or a
sequence of (K,H,W) arrays (or of
:class:`~segqual_fo.core.resample.LowResProbs`, probabilities at the model's
resolution read at the mask's). :class:`ImageSource` hides the difference and
hands out one image at a time, so nothing here ever materialises the whole
dataset. Validation of the values of one image lives in
:mod:`segqual_fo.core.pixel`; this module checks counts and argument types.
"""

from __future__ import annotations

import numbers
import os
import threading
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator, Optional, Sequence, Tuple

import numpy as np

from segqual_fo.core.resample import LowResProbs
from segqual_fo.errors import InvalidInputError, ShapeMismatchError, UnnormalizedProbabilitiesWarning

#: Values of ``unnormalized=``: what to do with finite, non-negative class
#: scores that do not sum to 1.
UNNORMALIZED_MODES = ("warn", "error")


def normalize_ignore_index(ignore_index: Any) -> Tuple[int, ...]:
    """Returns ``ignore_index`` as a sorted tuple of distinct ints.

    Args:
        ignore_index (None): None, an int, or a collection of ints

    Raises:
        InvalidInputError: if a value is not an integer
    """
    if ignore_index is None:
        return ()
    if isinstance(ignore_index, np.ndarray) and ignore_index.ndim == 0:
        ignore_index = ignore_index.item()  # np.array(255) is the scalar 255
    if isinstance(ignore_index, (str, bytes)):
        raise InvalidInputError(
            f"ignore_index must be an int or a collection of ints (mask values), "
            f"got the string {ignore_index!r}. Class names are accepted by "
            "compute_label_quality, which maps them to mask values."
        )
    values = [ignore_index] if np.ndim(ignore_index) == 0 else list(np.ravel(ignore_index))
    out = set()
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
            # a bool is no mask value (True would silently ignore class 1)
            if not isinstance(v, (bool, np.bool_)) and isinstance(v, numbers.Real) and float(v).is_integer():
                v = int(v)
            else:
                raise InvalidInputError(
                    f"ignore_index must hold integer mask values, got {v!r} "
                    f"({type(v).__name__})."
                )
        out.add(int(v))
    return tuple(sorted(out))


def check_temperature(temperature: Any) -> float:
    """Returns ``temperature`` as a positive finite float or raises."""
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"temperature must be a positive number, got {temperature!r}."
        ) from None
    if not np.isfinite(t) or t <= 0:
        raise InvalidInputError(
            f"temperature must be a positive finite number, got {temperature!r}. "
            "Small values (0.01) approach the worst pixel's score, large values "
            "(10) approach the mean; the default is 0.1."
        )
    return t


def check_unnormalized(mode: Any) -> bool:
    """Validates ``unnormalized=``; returns whether such scores are accepted."""
    if mode not in UNNORMALIZED_MODES:
        raise InvalidInputError(
            f"unnormalized must be one of {', '.join(repr(m) for m in UNNORMALIZED_MODES)}; "
            f"got {mode!r}."
        )
    return mode == "warn"


class UnnormalizedLog:
    """Collects the images of one call whose class scores do not sum to 1
    (thread-safe), so that the call warns once, naming the first of them.

    Args:
        total: number of images in the call
    """

    def __init__(self, total: int):
        self.total = total
        self.count = 0
        self.first: Optional[Tuple[int, str]] = None
        self._lock = threading.Lock()

    def add(self, evidence: Any, start: int) -> None:
        """Records the flagged images of a :class:`PixelEvidence` whose first
        image is image ``start``."""
        flags = getattr(evidence, "unnormalized", None)
        if flags is None:
            return
        flags = np.atleast_1d(flags)
        n = int(np.count_nonzero(flags))
        if not n:
            return
        position = start + int(np.argmax(flags))
        with self._lock:
            self.count += n
            if self.first is None or position < self.first[0]:
                self.first = (position, evidence.unnormalized_note)

    def message(self, so_far: bool = False) -> str:
        images = "image" if self.total == 1 else "images"
        verb = "has" if self.count == 1 else "have"
        count = f"{'at least ' if so_far else ''}{self.count}"
        return (
            f"{count} of {self.total} {images} {verb} class scores that do not sum to 1 "
            f"({self.first[1]}). They are used as given, as cleanlab does: pixel scores "
            "are the raw pred_probs[label]. If they are logits, apply a softmax over the "
            "class axis first; if they are probabilities that lost their normalisation, "
            "renormalise them (divide by their sum over the class axis). Pass "
            "unnormalized='error' to raise instead."
        )

    def warn(self, stacklevel: int = 3, so_far: bool = False) -> None:
        """Warns if any image was recorded (``so_far``: more may follow)."""
        if self.count:
            warnings.warn(self.message(so_far), UnnormalizedProbabilitiesWarning, stacklevel=stacklevel)


def check_positive_int(value: Any, name: str, *, allow_none: bool = True) -> Any:
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def resolve_n_jobs(n_jobs: Any) -> int:
    """Number of worker threads: None means the CPUs this process may use."""
    if n_jobs is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not Linux
            return max(1, os.cpu_count() or 1)
    return check_positive_int(n_jobs, "n_jobs", allow_none=False)


def imap_ordered(func: Callable[[int], Any], n: int, n_jobs: int) -> Iterator[Any]:
    """Yields ``func(i)`` for i in 0..n-1 in order, up to ``n_jobs`` at once.

    Threads suffice: numpy releases the GIL in the heavy loops. At most
    ``2 * n_jobs`` images are in flight, so memory stays bounded. The first
    error (in image order) propagates; queued work is cancelled.
    """
    if n_jobs <= 1 or n <= 1:
        for i in range(n):
            yield func(i)
        return
    with ThreadPoolExecutor(max_workers=n_jobs, thread_name_prefix="segqual") as pool:
        pending: deque = deque()
        nxt = 0
        try:
            while nxt < n and len(pending) < 2 * n_jobs:
                pending.append(pool.submit(func, nxt))
                nxt += 1
            while pending:
                result = pending.popleft().result()
                if nxt < n:
                    pending.append(pool.submit(func, nxt))
                    nxt += 1
                yield result
        finally:
            for fut in pending:
                fut.cancel()


class ImageSource:
    """Per-image view of ``labels`` and ``pred_probs``.

    Args:
        labels: (N,H,W) array or sequence of (H,W) arrays
        pred_probs: (N,K,H,W) array or sequence of (K,H,W) arrays

    Raises:
        InvalidInputError: for inputs of the wrong kind or count
    """

    def __init__(self, labels: Any, pred_probs: Any, *, num_classes: Optional[int] = None):
        self._labels = self._as_indexable(labels, "labels", 3, "(N, H, W)", "(H, W)")
        self._probs = self._as_indexable(pred_probs, "pred_probs", 4, "(N, K, H, W)", "(K, H, W)")
        n_l, n_p = len(self._labels), len(self._probs)
        if n_l != n_p:
            raise ShapeMismatchError(
                f"labels holds {n_l} images but pred_probs holds {n_p}; "
                "they must describe the same images in the same order."
            )
        if n_l == 0:
            raise InvalidInputError("labels and pred_probs are empty: nothing to score.")
        self.n = n_l
        if num_classes is None:
            # a stacked array tells K without loading anything; a (possibly
            # lazy) sequence is asked for its first item once
            first_shape = self._probs.shape[1:] if isinstance(self._probs, np.ndarray) else np.shape(self._probs[0])
            if len(first_shape) != 3:
                raise ShapeMismatchError(
                    f"pred_probs[0] has shape {tuple(first_shape)}; expected (K, H, W).", index=0
                )
            num_classes = int(first_shape[0])
        self.num_classes = num_classes
        self._same_size: Optional[bool] = None
        self._image_shape = None

    def _sizes(self) -> None:
        # only the array APIs need this (to stack outputs); for a lazy
        # sequence it loads every label, so it is computed on demand
        if isinstance(self._labels, np.ndarray):
            shapes = {tuple(self._labels.shape[1:])}
        else:
            shapes = {tuple(np.shape(self._labels[i])) for i in range(self.n)}
        self._same_size = len(shapes) == 1
        self._image_shape = next(iter(shapes)) if self._same_size else None

    @property
    def same_size(self) -> bool:
        """True when every image has the same (H, W)."""
        if self._same_size is None:
            self._sizes()
        return self._same_size

    @property
    def image_shape(self):
        """The common (H, W), or None for mixed sizes."""
        if self._same_size is None:
            self._sizes()
        return self._image_shape

    @staticmethod
    def _as_indexable(x: Any, name: str, ndim: int, stacked: str, single: str) -> Sequence:
        if isinstance(x, np.ndarray):
            if x.ndim == ndim:
                return x
            if x.ndim == ndim - 1:
                raise ShapeMismatchError(
                    f"{name} has shape {x.shape}, which looks like a single image; "
                    f"expected {stacked} or a sequence of {single} arrays. "
                    f"For one image pass {name}[None]."
                )
            if x.dtype == object:
                return list(x)
            raise ShapeMismatchError(
                f"{name} has shape {x.shape}; expected {stacked} or a sequence of "
                f"{single} arrays."
            )
        if isinstance(x, (list, tuple)) or (
            hasattr(x, "__len__") and hasattr(x, "__getitem__") and not isinstance(x, (str, bytes, dict))
        ):
            return x
        raise InvalidInputError(
            f"{name} must be a numpy array {stacked} or a sequence of {single} arrays, "
            f"got {type(x).__name__}."
        )

    def __len__(self) -> int:
        return self.n

    @property
    def stacked(self) -> bool:
        """True when both inputs are single arrays (batches are slices)."""
        return isinstance(self._labels, np.ndarray) and isinstance(self._probs, np.ndarray)

    def batches(self, batch_size: Optional[int], n_jobs: int = 1) -> list:
        """(start, stop) ranges of images to process together.

        Sequences are processed one image at a time; stacked arrays in slices
        of ``batch_size`` images. The default keeps a batch near 2**17 pixels
        (per-pixel temporaries then stay in the CPU's L2 cache, which matters
        more than per-call overhead once images are larger than ~256x256)
        and gives every worker thread several batches.
        """
        if not self.stacked:
            return [(i, i + 1) for i in range(self.n)]
        if batch_size is None:
            pixels = max(1, int(np.prod(self._labels.shape[1:])))
            batch_size = max(1, min((1 << 17) // pixels, -(-self.n // (4 * n_jobs))))
        return [(i, min(i + batch_size, self.n)) for i in range(0, self.n, batch_size)]

    def labels_batch(self, start: int, stop: int) -> np.ndarray:
        """(B,H,W) labels of images start..stop-1 (stacked input only)."""
        return np.asarray(self._labels[start:stop])

    def probs_batch(self, start: int, stop: int) -> np.ndarray:
        """(B,K,H,W) probabilities of images start..stop-1 (stacked input only)."""
        return np.asarray(self._probs[start:stop])

    def labels(self, i: int) -> np.ndarray:
        return np.asanyarray(self._labels[i])

    def probs(self, i: int) -> Any:
        """Image i's (K,H,W) probabilities: an array, or a
        :class:`~segqual_fo.core.resample.LowResProbs` handed on as it is
        (``np.asanyarray`` would interpolate all K channels)."""
        p = self._probs[i]
        return p if isinstance(p, LowResProbs) else np.asanyarray(p)


class PerImageOutput:
    """Collects one array per image: stacked (preallocated) when all images
    share a size, a list otherwise. Avoids holding a list and a stacked copy
    at once."""

    def __init__(self, source: "ImageSource", dtype: Any = None):
        self._source = source
        self._dtype = dtype
        self._out = None if source.same_size else [None] * source.n

    def _allocate(self, dtype) -> None:
        self._out = np.empty((self._source.n,) + tuple(self._source.image_shape), dtype=dtype)

    def slot(self, i: int) -> Optional[np.ndarray]:
        """The preallocated (H,W) slot of image i when stacking, else None.
        Needs the dtype given at construction."""
        if not self._source.same_size:
            return None
        if self._out is None:
            self._allocate(self._dtype)
        return self._out[i]

    def slots(self, start: int, stop: int) -> Optional[np.ndarray]:
        """The (B,H,W) slots of images start..stop-1 when stacking, else None."""
        if not self._source.same_size:
            return None
        if self._out is None:
            self._allocate(self._dtype)
        return self._out[start:stop]

    def __setitem__(self, i, value: np.ndarray) -> None:
        if self._out is None:  # stacked: allocate on the first image's dtype
            self._allocate(self._dtype or value.dtype)
        if self._source.same_size and np.may_share_memory(self._out[i], value):
            return
        self._out[i] = value

    def result(self):
        return self._out
