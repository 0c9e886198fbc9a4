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
- :func:`onnx_model`: an ONNX network through ``onnxruntime`` as such a
  callable (CPU by default);
- :class:`BatchedModel`: runs a model over a run's images in batches, in
  input order, decoding the next images in background threads while the
  model runs, and hands out each image's output once;
- :func:`check_model_output`: the per-image checks (count, rank, K, finite).

FiftyOne's own models (``fiftyone.core.models.Model``) are adapted in
:mod:`segqual_fo.fo.models`.
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


# --------------------------------------------------------------------------
# ONNX


class OnnxModel:
    """An ONNX segmentation network run by ``onnxruntime`` (see
    :func:`onnx_model`, which wraps it in a :class:`LazyModel`)."""

    def __init__(
        self,
        path: str,
        *,
        providers: Optional[Sequence[str]] = None,
        input_size: Optional[Sequence[int]] = None,
        mean: Sequence[float] = (0.0, 0.0, 0.0),
        std: Sequence[float] = (1.0, 1.0, 1.0),
        scale: float = 1.0 / 255.0,
        output_name: Optional[str] = None,
        threads: Optional[int] = None,
    ):
        try:
            import onnxruntime as ort
        except ImportError:
            raise InvalidInputError(
                "ONNX models need onnxruntime; install it with `pip install 'segqual-fo[onnx]'`."
            ) from None
        if not os.path.isfile(path):
            raise InvalidFileError(f"ONNX model {path} does not exist.")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        available = ort.get_available_providers()
        providers = list(providers or ["CPUExecutionProvider"])
        missing = [p for p in providers if p not in available]
        if missing:
            raise InvalidInputError(f"onnxruntime providers {missing} are not available here; available: {available}.")
        try:
            self.session = ort.InferenceSession(path, sess_options=options, providers=providers)
        except Exception as e:
            raise InvalidFileError(f"cannot load ONNX model {path}: {e}") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise InvalidInputError(
                f"ONNX model {path} must take one (N, 3, H, W) image input; it takes "
                f"{[(i.name, i.shape) for i in inputs]}."
            )
        self.input_name = inputs[0].name
        outputs = self.session.get_outputs()
        names = [o.name for o in outputs]
        if output_name is None:
            output_name = names[0]
        if output_name not in names:
            raise InvalidInputError(f"ONNX model {path} has no output {output_name!r}; it has {names}.")
        self.output_name = output_name
        out_shape = outputs[names.index(output_name)].shape
        #: K when the network declares it (else learnt from the first output)
        self.num_classes = out_shape[1] if len(out_shape) == 4 and isinstance(out_shape[1], int) else None
        fixed = inputs[0].shape[2:]
        if input_size is None and all(isinstance(v, int) for v in fixed):
            input_size = fixed
        self.input_size = None if input_size is None else (int(input_size[0]), int(input_size[1]))
        self.mean = np.asarray(mean, dtype=np.float32).reshape(1, 3, 1, 1)
        self.std = np.asarray(std, dtype=np.float32).reshape(1, 3, 1, 1)
        self.scale = np.float32(scale)
        self.input_type = inputs[0].type
        self.path = path

    def _prepare(self, images: List[np.ndarray]) -> np.ndarray:
        import cv2

        if self.input_size is not None:
            h, w = self.input_size
            images = [im if im.shape[:2] == (h, w) else cv2.resize(im, (w, h), interpolation=cv2.INTER_LINEAR) for im in images]
        x = np.stack(images).astype(np.float32).transpose(0, 3, 1, 2)
        x = (x * self.scale - self.mean) / self.std
        return x.astype(np.float16) if self.input_type == "tensor(float16)" else x

    def __call__(self, images: List[np.ndarray]) -> List[np.ndarray]:
        if not images:
            return []
        outs: List[Optional[np.ndarray]] = [None] * len(images)
        # one session call per input size (a batch must be one tensor)
        groups: Dict[tuple, List[int]] = {}
        for j, im in enumerate(images):
            groups.setdefault(im.shape[:2] if self.input_size is None else (), []).append(j)
        for members in groups.values():
            y = self.session.run([self.output_name], {self.input_name: self._prepare([images[j] for j in members])})[0]
            for j, arr in zip(members, y):
                outs[j] = arr
        return outs  # type: ignore[return-value]


def onnx_model(
    path: str,
    *,
    providers: Optional[Sequence[str]] = None,
    input_size: Optional[Sequence[int]] = None,
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
    scale: float = 1.0 / 255.0,
    output_name: Optional[str] = None,
    threads: Optional[int] = None,
) -> LazyModel:
    """An ONNX segmentation network as a segqual model (built on first use,
    once per process; picklable for Dask).

    The network takes one float input of shape (N, 3, H, W): RGB images as
    ``(pixel * scale - mean) / std`` per channel (defaults: pixels in
    [0, 1]; ImageNet-normalised networks want ``mean=(0.485, 0.456,
    0.406), std=(0.229, 0.224, 0.225)``). With a fixed input size in the
    network (or ``input_size=(H, W)``) each image is resized to it
    (bilinear) before the call; otherwise images of the same size share a
    call. The first output (or ``output_name``), shape (N, K, h, w) at any
    resolution, is the class scores; pass ``logits=True`` to the scoring
    when it holds logits.

    Args:
        path: the ``.onnx`` file
        providers (None): onnxruntime execution providers, in order of
            preference (default ``["CPUExecutionProvider"]``)
        input_size (None): (H, W) to resize images to
        mean, std, scale: input normalisation (see above)
        output_name (None): which output holds the class scores
        threads (None): onnxruntime's intra-op threads (default: its own)

    Raises:
        InvalidInputError: onnxruntime missing, unknown provider, a network
            without one 4-D input (raised on first use)
        InvalidFileError: a missing or unloadable file (on first use)
    """
    if not os.path.isfile(path):
        raise InvalidFileError(f"ONNX model {path} does not exist.")
    path = os.path.abspath(path)
    # the run record (and resume's comparison) names what changes the
    # output: the file and any preprocessing that is not the default
    changed = {
        "input_size": None if input_size is None else tuple(int(v) for v in input_size),
        "mean": tuple(float(v) for v in mean),
        "std": tuple(float(v) for v in std),
        "scale": float(scale),
        "output_name": output_name,
    }
    defaults = {"input_size": None, "mean": (0.0,) * 3, "std": (1.0,) * 3, "scale": 1.0 / 255.0, "output_name": None}
    changed = ", ".join(f"{k}={v!r}" for k, v in changed.items() if v != defaults[k])
    return LazyModel(
        OnnxModel,
        path,
        providers=None if providers is None else tuple(providers),
        input_size=input_size,
        mean=tuple(mean),
        std=tuple(std),
        scale=scale,
        output_name=output_name,
        threads=threads,
        description=f"onnx:{path}" + (f" ({changed})" if changed else ""),
    )
