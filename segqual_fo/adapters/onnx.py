"""ONNX segmentation networks as segqual models, run by ``onnxruntime``
(the optional ``onnx`` extra; CPU by default).

:func:`onnx_model` returns a :class:`~segqual_fo.adapters.models.LazyModel`
of an :class:`OnnxModel`: picklable (the path and settings travel, not the
weights), built once per process on first use.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from segqual_fo.adapters.models import LazyModel
from segqual_fo.errors import InvalidFileError, InvalidInputError



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
            preference (default ``["CPUExecutionProvider"]``); one name may
            be given as a string
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
        providers=None if providers is None else (providers,) if isinstance(providers, str) else tuple(providers),
        input_size=input_size,
        mean=tuple(mean),
        std=tuple(std),
        scale=scale,
        output_name=output_name,
        threads=threads,
        description=f"onnx:{path}" + (f" ({changed})" if changed else ""),
    )
