"""FiftyOne models (``fiftyone.core.models.Model``) as segqual models.

:func:`fiftyone_model` wraps a FiftyOne model into the callable that
``compute_label_quality(model=...)`` and ``save_probabilities`` take: a list
of H x W x 3 uint8 RGB images in, one (K, h, w) array of class scores per
image out.

- A model whose ``predict_all`` returns per-pixel class scores (arrays of
  shape (K, h, w), or one (N, K, h, w) array) is used as it is; its own
  preprocessing (``transforms`` with ``preprocess=True``) runs as in
  FiftyOne.
- FiftyOne's Torch image models (``fiftyone.utils.torch.TorchImageModel``,
  e.g. the zoo's DeepLabV3 and FCN) turn the network's output into an
  argmax mask in their output processor, which throws the scores away. For
  these, the processor is switched off for the call (their preprocessing
  still runs), so the network's raw output comes back: a tensor, or a dict
  whose ``"out"`` entry is one (torchvision's segmentation networks). That
  is logits: pass ``logits=True``. The processor is restored afterwards.
  (This uses the model's private ``_output_processor`` attribute, the one
  place to reach the scores; CI has no torch, so this branch is exercised
  here by a FiftyOne ``Model`` subclass built the same way, not by a zoo
  model.)

A model returning labels (``fo.Segmentation``) instead of scores is refused
with a message saying so: an argmax mask has no confidence to score.
"""

from __future__ import annotations

import threading
from typing import Any, List, Optional

import numpy as np

import fiftyone.core.models as fom

from segqual_fo.errors import InvalidInputError


class FiftyOneModel:
    """The callable around a FiftyOne model (see the module docs)."""

    def __init__(self, model: Any, *, output_key: str = "out"):
        if not isinstance(model, fom.Model):
            raise InvalidInputError(
                f"fiftyone_model() takes a fiftyone.core.models.Model, got {type(model).__name__}; "
                "a plain callable can be passed as model= directly."
            )
        if getattr(model, "media_type", "image") != "image":
            raise InvalidInputError(f"the FiftyOne model processes {model.media_type}, not images.")
        self.model = model
        self.output_key = output_key
        self.description = f"fiftyone:{type(model).__module__}.{type(model).__qualname__}"
        classes = getattr(model, "classes", None)
        #: K when the model lists its classes (else learnt from an output)
        self.num_classes: Optional[int] = len(classes) if classes else None
        self._lock = threading.Lock()
        self._entered = False

    def _raw(self, images: List[np.ndarray]) -> Any:
        model = self.model
        if hasattr(model, "_output_processor"):  # a TorchImageModel: keep the scores
            processor = model._output_processor
            model._output_processor = None
            try:
                return model.predict_all(images)
            finally:
                model._output_processor = processor
        return model.predict_all(images)

    def __call__(self, images: List[np.ndarray]) -> List[np.ndarray]:
        with self._lock:  # predict_all is not documented as thread-safe
            if not self._entered:
                self.model.__enter__()
                self._entered = True
            raw = self._raw(images)
        return self._as_arrays(raw, len(images))

    def _as_arrays(self, raw: Any, n: int) -> List[np.ndarray]:
        if isinstance(raw, dict):
            if self.output_key not in raw:
                raise InvalidInputError(
                    f"the model returned a dict with keys {sorted(raw)}; pass output_key= naming the class scores."
                )
            raw = raw[self.output_key]
        if hasattr(raw, "detach"):  # a torch tensor
            raw = raw.detach().cpu().numpy()
        outs = list(raw) if isinstance(raw, (list, tuple, np.ndarray)) else [raw]
        arrays = []
        for out in outs:
            if hasattr(out, "detach"):
                out = out.detach().cpu().numpy()
            if not isinstance(out, np.ndarray):
                kind = type(out).__name__
                raise InvalidInputError(
                    f"the FiftyOne model returned {kind} predictions, not class scores; segqual needs the "
                    "per-pixel class scores before the argmax (a model whose predict_all returns (K, h, w) "
                    "arrays, or a Torch image model, whose output processor is then skipped)."
                )
            arrays.append(out)
        return arrays

    def close(self) -> None:
        """Leaves the model's context (entered on first call)."""
        with self._lock:
            if self._entered:
                self._entered = False
                self.model.__exit__(None, None, None)


def fiftyone_model(model: Any, *, output_key: str = "out") -> FiftyOneModel:
    """A FiftyOne ``Model`` as a segqual model (see the module docs).

    Args:
        model: a ``fiftyone.core.models.Model`` (e.g. from
            ``foz.load_zoo_model(...)``) whose output is per-pixel class
            scores, or a Torch image model
        output_key ("out"): the entry holding the scores when the network
            returns a dict

    Example::

        import fiftyone.zoo as foz
        net = foz.load_zoo_model("deeplabv3-resnet50-coco-torch")
        compute_label_quality(dataset, "ground_truth", model=segqual_fo.fiftyone_model(net),
                              logits=True, classes=net.classes)
    """
    return FiftyOneModel(model, output_key=output_key)
