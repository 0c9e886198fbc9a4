"""Class scores from a model instead of files.

Legend: K classes, H x W the label mask, h x w the model's output.

A *model*, for segqual, is any callable that takes a list of images (each an
H x W x 3 ``uint8`` RGB array) and returns one array of class scores per
image, shape (K, h, w) at any resolution: probabilities, or logits with
``logits=True``. The scores are brought to the mask exactly as stored files
are with ``resize=True`` (:func:`~segqual_fo.adapters.probs.to_class_first`),
so a model's output and a file holding the same array give the same scores,
bit for bit.

This module holds what does not need FiftyOne:

- :class:`LazyModel`: a picklable recipe for a model, built once per process
  (what Dask workers receive; the weights never travel with the tasks);
- :class:`BatchedModel`: runs a model over a run's images in batches, in
  input order, decoding the next images in background threads while the
  model runs, and hands out each image's output once;
- :func:`check_model_output`: the per-image checks (count, rank, K, finite).

ONNX networks are adapted in :mod:`segqual_fo.adapters.onnx`, FiftyOne's
own models (``fiftyone.core.models.Model``) in :mod:`segqual_fo.fo.models`.
"""

from __future__ import annotations

import os
import pickle
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from segqual_fo.errors import InvalidFileError, InvalidInputError, InvalidProbabilitiesError, ShapeMismatchError

#: Images per model call unless told otherwise.
DEFAULT_BATCH_SIZE = 8
#: A model pickled to more than this is refused for Dask (it would travel
#: with every task): wrap its construction in a :class:`LazyModel`.
MAX_PICKLED_MODEL_BYTES = 1 << 20

_BUILT: Dict[str, Any] = {}
_BUILT_LOCK = threading.Lock()


class LazyModel:
    """A model described by how to build it: ``factory(*args, **kwargs)``,
    called at most once per process, on first use.

    Pickling a ``LazyModel`` pickles the recipe (the factory by reference,
    its arguments by value), not the model: Dask workers each build their
    own copy once and keep it for every task of the run (and of later runs
    in the same process). The factory must be importable by the workers (a
    module-level function or class).

    Calls, and attribute reads such as ``num_classes``, go to the built
    model.

    Example::

        def build():
            net = torch.jit.load("segformer.pt").eval()
            return lambda images: [net(to_tensor(im))[0].numpy() for im in images]

        model = segqual_fo.LazyModel(build)
        compute_label_quality(dataset, "gt", model=model, logits=True, executor=client)
    """

    def __init__(self, factory: Callable[..., Any], *args: Any, description: Optional[str] = None, **kwargs: Any):
        if not callable(factory):
            raise InvalidInputError(f"LazyModel needs a callable factory, got {type(factory).__name__}.")
        self.factory = factory
        self.args = args
        self.kwargs = kwargs
        name = getattr(factory, "__qualname__", type(factory).__name__)
        self.description = description or f"{getattr(factory, '__module__', '?')}.{name}"
        #: the key of the built model in this process (equal in every copy)
        self.token = uuid.uuid4().hex

    def build(self) -> Any:
        """The model, built on first use in this process."""
        model = _BUILT.get(self.token)
        if model is None:
            with _BUILT_LOCK:
                model = _BUILT.get(self.token)
                if model is None:
                    model = self.factory(*self.args, **self.kwargs)
                    _BUILT[self.token] = model
        return model

    def release(self) -> None:
        """Forgets this process's built model (the next use builds it again)."""
        with _BUILT_LOCK:
            _BUILT.pop(self.token, None)

    def __call__(self, images: List[np.ndarray]) -> Sequence[np.ndarray]:
        return self.build()(images)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in ("factory", "args", "kwargs", "description", "token"):
            raise AttributeError(name)
        return getattr(self.build(), name)

    def __repr__(self) -> str:
        return f"LazyModel({self.description})"


def describe_model(model: Any) -> str:
    """A short text naming the model, for the run record (and resume's
    comparison of settings): its ``description`` attribute if it is a
    string, else its module and name."""
    text = getattr(model, "description", None)
    if not isinstance(text, str):
        name = getattr(model, "__qualname__", None) or type(model).__qualname__
        module = getattr(model, "__module__", None) or type(model).__module__
        text = f"{module}.{name}"
    return text


def check_model(model: Any, *, distributed: bool = False) -> Any:
    """The model, checked: callable; for Dask (``distributed``) picklable
    and small when pickled.

    Raises:
        InvalidInputError: naming the problem and the fix
    """
    if not callable(model):
        raise InvalidInputError(
            f"model must be a callable taking a list of HxWx3 uint8 RGB images and returning one (K, h, w) "
            f"array of class scores per image; got {type(model).__name__}. For a FiftyOne model use "
            "segqual_fo.fiftyone_model(model); for an ONNX file, segqual_fo.onnx_model(path)."
        )
    if distributed:
        try:
            size = len(pickle.dumps(model))
        except Exception as e:
            raise InvalidInputError(
                f"model= with executor= must be picklable, to reach the Dask workers ({type(e).__name__}: {e}); "
                "wrap its construction in segqual_fo.LazyModel(factory, ...) with a module-level factory."
            ) from None
        if size > MAX_PICKLED_MODEL_BYTES:
            raise InvalidInputError(
                f"the model pickles to {size / 2**20:.1f} MiB, which would be sent with every Dask task; "
                "pass segqual_fo.LazyModel(factory, ...) instead, so each worker builds it once."
            )
    return model


def read_rgb(path: str) -> np.ndarray:
    """An image file as an H x W x 3 ``uint8`` RGB array (grey images are
    repeated over 3 channels, alpha is dropped, 16-bit is scaled to 8).

    Raises:
        InvalidFileError: missing or unreadable
    """
    import cv2

    if not os.path.isfile(path):
        raise InvalidFileError(f"image {path} does not exist; the model needs each sample's filepath.")
    img = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)  # 8-bit BGR whatever the file
    if img is None:
        raise InvalidFileError(f"image {path} cannot be decoded (not an image OpenCV reads, or corrupt).")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def check_model_output(out: Any, *, num_classes: Optional[int], where: str) -> np.ndarray:
    """One image's model output as a (K, h, w) numpy array, checked.

    Raises:
        ShapeMismatchError: not 3-D, or K differs from ``num_classes``
        InvalidProbabilitiesError: NaN or infinite values, or a dtype that
            is not a number
    """
    arr = np.asarray(out)
    if arr.ndim != 3:
        hint = " (a batch axis left in? return one array per image)" if arr.ndim == 4 else ""
        raise ShapeMismatchError(
            f"{where}: the model returned an array of shape {arr.shape}; expected (K, h, w) class scores{hint}."
        )
    if arr.dtype.kind not in "fiu":
        raise InvalidProbabilitiesError(f"{where}: the model returned {arr.dtype} values; expected class scores.")
    if num_classes is not None and arr.shape[0] != num_classes:
        hint = " It looks like (h, w, K): return (K, h, w)." if arr.shape[2] == num_classes else ""
        raise ShapeMismatchError(
            f"{where}: the model returned {arr.shape[0]} class channels (shape {arr.shape}) but the class list "
            f"has {num_classes}; channel k must be class k.{hint}"
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise InvalidProbabilitiesError(
            f"{where}: the model returned NaN or infinite class scores; check the model and its input "
            "preprocessing (skip_failures=True scores the other images)."
        )
    return arr


class BatchedModel:
    """Runs ``model`` over the images at ``filepaths`` in batches of
    ``batch_size``, in index order, and returns image i's output with
    :meth:`get`.

    The first ``get`` of a batch (from any thread) decodes its images (
    started in background threads while the previous batch ran) and calls
    the model once for the batch; the other threads wait for it. Model calls
    are serialised (a model uses the machine's cores itself). Each output is
    handed out once and then dropped, so memory holds about two batches.
    If a batch call raises, its images are run one at a time, so that only
    the image that fails fails (then each of the others has run twice). An
    output asked for again (which the scoring never does) is computed
    again.

    Args:
        model: the callable (see the module docs)
        filepaths: the images, in run order
        batch_size: images per model call
        primed (None): outputs already computed, by index (e.g. the image
            run to learn K), used instead of running the model on them
        decode_threads (2): background image decoders
        reader (None): decodes one path to an RGB array (default
            :func:`read_rgb`)
    """

    def __init__(
        self,
        model: Callable,
        filepaths: Sequence[str],
        batch_size: int = DEFAULT_BATCH_SIZE,
        *,
        primed: Optional[Dict[int, np.ndarray]] = None,
        decode_threads: int = 2,
        reader: Callable[[str], np.ndarray] = read_rgb,
    ):
        self.model = model
        self.filepaths = list(filepaths)
        self.batch_size = max(1, int(batch_size))
        self._reader = reader
        self._outputs: Dict[int, Any] = dict(primed or {})  # index -> array or exception
        self._batches: Dict[int, threading.Event] = {}
        self._lock = threading.Lock()
        self._model_lock = threading.Lock()
        self._decoded: Dict[int, Future] = {}
        self._taken: set = set()  # indices whose output was handed out
        self._pool: Optional[ThreadPoolExecutor] = None
        self._decode_threads = max(1, int(decode_threads))
        self.calls = 0

    def __len__(self) -> int:
        return len(self.filepaths)

    def _decode_batch(self, b: int) -> None:
        """Starts decoding batch ``b``'s images in the background (caller
        holds the lock)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._decode_threads, thread_name_prefix="segqual-decode")
        lo, hi = b * self.batch_size, min(len(self.filepaths), (b + 1) * self.batch_size)
        for j in range(lo, hi):
            if j not in self._decoded and j not in self._outputs and j not in self._taken:
                self._decoded[j] = self._pool.submit(self._reader, self.filepaths[j])

    def _call(self, images: List[np.ndarray]) -> List[Any]:
        with self._model_lock:
            self.calls += 1
            outs = self.model(images)
        outs = list(outs)
        if len(outs) != len(images):
            raise ShapeMismatchError(
                f"the model returned {len(outs)} outputs for a batch of {len(images)} images; "
                "it must return one (K, h, w) array per image."
            )
        return outs

    def _run_batch(self, b: int) -> None:
        lo, hi = b * self.batch_size, min(len(self.filepaths), (b + 1) * self.batch_size)
        with self._lock:
            self._decode_batch(b)
            if b + 1 < -(-len(self.filepaths) // self.batch_size):
                self._decode_batch(b + 1)  # overlap the next decode with this call
            futures = {j: self._decoded.pop(j) for j in range(lo, hi) if j in self._decoded}
        results: Dict[int, Any] = {}
        todo: List[int] = []
        images: List[np.ndarray] = []
        for j, fut in futures.items():
            try:
                images.append(fut.result())
                todo.append(j)
            except Exception as e:  # this image's failure only
                results[j] = e
        if todo:
            try:
                for j, out in zip(todo, self._call(images)):
                    results[j] = out
            except Exception:
                # find the image that fails: one at a time
                for j, image in zip(todo, images):
                    try:
                        results[j] = self._call([image])[0]
                    except Exception as e:
                        results[j] = e
        with self._lock:
            self._outputs.update(results)

    def get(self, i: int) -> np.ndarray:
        """Image ``i``'s raw output (as the model returned it).

        Raises:
            whatever decoding image ``i`` or the model raised for it
        """
        b = i // self.batch_size
        with self._lock:
            if i in self._outputs:
                self._taken.add(i)
                return _raise_or(self._outputs.pop(i))
            event = self._batches.get(b)
            owner = event is None
            if owner:
                event = self._batches[b] = threading.Event()
        if owner:
            try:
                self._run_batch(b)
            finally:
                event.set()
        else:
            event.wait()
        with self._lock:
            out = self._outputs.pop(i, _MISSING)
            self._taken.add(i)
        if out is _MISSING:  # asked for twice: compute it again
            out = self._call([self._reader(self.filepaths[i])])[0]
        return _raise_or(out)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            self._outputs.clear()
            self._decoded.clear()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


_MISSING = object()


def _raise_or(out: Any) -> Any:
    if isinstance(out, BaseException):
        raise out
    return out
