"""The per-image job: plain, picklable data in, one record per image out.

Legend: N images, K classes, H x W pixels.

What the FiftyOne layer resolves for each sample (:class:`RunInputs`): its
id, file path, probability file and a label reference, one of

- :class:`MaskFile`: a mask PNG on disk (``fo.Segmentation.mask_path``);
- :class:`InlineMask`: a mask array (``fo.Segmentation.mask``);
- :class:`InstanceLabels`: an image's instances and its size
  (``fo.Detections`` with instance masks, as plain records);
- :class:`MissingLabel`: why the sample has no usable label.

:class:`ScoringJob` holds everything else an image needs (method, options,
the class mapping, where outputs go). :meth:`ScoringJob.stream` runs the core
over lazy images; :func:`image_outputs` turns one result into PNGs, regions
and a :class:`Scored` record (or the image's :class:`Failed` record). The
runners (:mod:`~segqual_fo.execution.local`, :mod:`~segqual_fo.execution.dask`)
hand the records to a collector, which the FiftyOne layer supplies.

Nothing here imports FiftyOne: Dask workers run this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from segqual_fo.adapters.labels import Instance, instances_to_mask, read_mask_file
from segqual_fo.adapters.masks import VOID_VALUE, LabelMapping
from segqual_fo.adapters.models import DEFAULT_BATCH_SIZE, BatchedModel, check_model_output
from segqual_fo.adapters.probs import load_probs, to_class_first
from segqual_fo.core import iter_label_quality
from segqual_fo.core.resample import LowResProbs
from segqual_fo.errors import FiftyOneInputError, InvalidInputError, SegQualError
from segqual_fo.writers import documents
from segqual_fo.writers.files import heatmap_image, issue_mask_image, output_path, write_png_atomic
from segqual_fo.writers.regions import IssueRegion, find_regions

# --------------------------------------------------------------------------
# label references


@dataclass
class MaskFile:
    """A label mask stored as an image file."""

    path: str


@dataclass
class InlineMask:
    """A label mask held in the database."""

    mask: np.ndarray


@dataclass
class InstanceLabels:
    """An image's instances (None: no objects) and its size in pixels."""

    instances: Optional[List[Instance]]
    width: Optional[int]
    height: Optional[int]


@dataclass
class MissingLabel:
    """A sample without a usable label; ``reason`` says why."""

    reason: str


LabelRef = Union[MaskFile, InlineMask, InstanceLabels, MissingLabel]


@dataclass
class LabelDecoder:
    """Turns a label reference into the stored mask (for instances, the
    semantic mask they rasterise to, with ``class_index`` and ``void``)."""

    class_index: Optional[Dict[str, int]] = None
    void: int = VOID_VALUE

    def __call__(self, ref: LabelRef, sample_id: str) -> np.ndarray:
        if isinstance(ref, MaskFile):
            return read_mask_file(ref.path)
        if isinstance(ref, InlineMask):
            return np.asarray(ref.mask)
        if isinstance(ref, InstanceLabels):
            if not ref.width or not ref.height:
                raise FiftyOneInputError("the image size is unknown (metadata could not be computed).")
            return instances_to_mask(
                ref.instances, (ref.width, ref.height), self.class_index, void=self.void, where=f"sample {sample_id}"
            )
        if isinstance(ref, MissingLabel):
            raise FiftyOneInputError(ref.reason)
        raise TypeError(f"not a label reference: {type(ref).__name__}")


@dataclass
class RunInputs:
    """The run's samples as the FiftyOne layer resolved them, in the
    collection's order. ``label_ref(i)`` returns sample i's
    :data:`LabelRef` (fetched on demand); ``done`` holds the ids a resumed
    run committed before (scored again only where a total needs them, never
    written)."""

    ids: List[str]
    filepaths: List[str]
    probs_paths: List[Optional[str]]
    label_ref: Callable[[int], LabelRef]
    done: Dict[str, bool] = field(default_factory=dict)


@dataclass
class ModelInput:
    """Class scores computed by a model from each sample's image, instead
    of read from files (see :mod:`segqual_fo.adapters.models`).

    ``primed`` holds outputs already computed, by sample id (the image the
    FiftyOne layer ran to learn K), so that no image runs twice; it stays
    in this process (Dask tasks get the job without it).
    """

    model: Callable
    logits: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE
    primed: Dict[str, np.ndarray] = field(default_factory=dict)

    def runner(self, ids: Sequence[str], filepaths: Sequence[str]) -> BatchedModel:
        """A :class:`BatchedModel` over these samples' images."""
        primed = {j: self.primed.pop(sid) for j, sid in enumerate(ids) if sid in self.primed}
        return BatchedModel(self.model, filepaths, self.batch_size, primed=primed)

    def without_primed(self) -> "ModelInput":
        return ModelInput(self.model, self.logits, self.batch_size)


# --------------------------------------------------------------------------
# lazy images


def _prefix(message: str, where: str) -> str:
    return message if message.startswith("sample ") else f"{where}: {message}"


def as_sample_error(error: BaseException, where: str) -> BaseException:
    """The error, with a message that starts with the sample id and path
    (an error that is not ours becomes an :class:`InvalidInputError` whose
    message keeps the original type)."""
    message = str(error)
    if message.startswith("sample "):
        return error
    if isinstance(error, SegQualError):
        out = type(error).__new__(type(error))
        Exception.__init__(out, f"{where}: {message}")
        out.__dict__.update(getattr(error, "__dict__", {}))
        return out
    return InvalidInputError(f"{where}: {type(error).__name__}: {message}")


class _Seq:
    """A lazy sequence: ``len`` and ``[i]`` from a getter."""

    def __init__(self, n: int, getter: Callable[[int], Any]):
        self._n = n
        self._get = getter

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> Any:
        return self._get(i)


class SampleImages:
    """Lazy per-sample (labels, probabilities) for the core's streaming API.

    ``label(i)`` decodes the label mask; ``probs(i)`` then loads the
    probabilities at the mask's size (with ``resize=True``, another
    resolution comes as a :class:`~segqual_fo.core.resample.LowResProbs`,
    read at the mask's size by the core), from the sample's file or, with
    ``model``, from the model's output for its image (then always as with
    ``resize=True``). Both raise errors naming the sample. :meth:`close`
    stops the model's background decoding.
    """

    def __init__(self, *, ids, filepaths, label_source, probs_paths, mapping, probs_opts, model=None):
        self.ids = ids
        self.filepaths = filepaths
        self.label_source = label_source
        self.probs_paths = probs_paths
        self.mapping = mapping
        self.probs_opts = probs_opts
        self.model: Optional[ModelInput] = model
        self._runner: Optional[BatchedModel] = None
        self._shapes: Dict[int, tuple] = {}

    def where(self, i: int) -> str:
        return f"sample {self.ids[i]} ({self.filepaths[i]})"

    def label(self, i: int) -> np.ndarray:
        try:
            raw = self.label_source(i)
            mask = self.mapping.decode(raw, where=self.where(i))
        except SegQualError as e:
            raise type(e)(_prefix(str(e), self.where(i))) from None
        self._shapes[i] = mask.shape
        return mask

    def probs(self, i: int) -> np.ndarray:
        if self.model is not None:
            return self._model_probs(i)
        path = self.probs_paths[i]
        if path is None:
            raise FiftyOneInputError(f"{self.where(i)} has no probabilities file.")
        try:
            return load_probs(
                path, num_classes=len(self.mapping.classes), target_shape=self._shapes.pop(i, None), **self.probs_opts
            )
        except SegQualError as e:
            raise type(e)(_prefix(str(e), self.where(i))) from None

    def _model_probs(self, i: int):
        if self._runner is None:
            self._runner = self.model.runner(self.ids, self.filepaths)
        k = len(self.mapping.classes)
        try:
            out = check_model_output(self._runner.get(i), num_classes=k, where="model output")
            p = to_class_first(out, logits=self.model.logits, num_classes=k, where="model output")
            # (K, h, w) by contract (checked above): another resolution is
            # resized, never taken for (h, w, K) as a stored file's may be
            # (when K == H, its (K, h) can equal the mask's (H, W))
            target = self._shapes.pop(i, None)
            if target is not None and tuple(p.shape[1:]) != tuple(target):
                p = LowResProbs(p, tuple(target))
            return p
        except SegQualError as e:
            raise type(e)(_prefix(str(e), self.where(i))) from None

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()

    @property
    def model_calls(self) -> int:
        """Calls of the model so far (0 without one)."""
        return 0 if self._runner is None else self._runner.calls

    def subset(self, indices: Sequence[int]) -> "SampleImages":
        """The same images restricted to ``indices`` (renumbered 0..)."""
        indices = list(indices)
        if indices == list(range(len(self.ids))):
            return self
        source = self.label_source
        return SampleImages(
            ids=[self.ids[i] for i in indices],
            filepaths=[self.filepaths[i] for i in indices],
            label_source=lambda j: source(indices[j]),
            probs_paths=[self.probs_paths[i] for i in indices],
            mapping=self.mapping,
            probs_opts=self.probs_opts,
            model=self.model,
        )

    def labels_seq(self) -> _Seq:
        return _Seq(len(self.ids), self.label)

    def probs_seq(self) -> _Seq:
        return _Seq(len(self.ids), self.probs)


# --------------------------------------------------------------------------
# outputs


@dataclass
class OutputSpec:
    """Where and how a run writes its per-image files."""

    output_dir: str
    score_field: str
    token: str
    min_region_area: int
    classes: List[str]
    #: build the label documents as plain dicts (see :mod:`segqual_fo.writers.documents`)
    fast_docs: bool = False


@dataclass
class Scored:
    """One scored image, ready to commit: plain data, made wherever the
    image was scored (a writer thread here, or a Dask worker).

    ``heatmap``/``issues`` are None when the image's files were not written
    (a resumed run's already-committed samples, which still count towards
    the run's totals); ``pairs``/``pair_counts`` are its issue pixels'
    ``given * K + predicted`` codes and their counts; ``docs``, when set,
    holds the heatmap, issues and regions as database documents (then
    ``regions`` is empty).
    """

    sample_id: str
    score: Optional[float]
    num_issues: int
    heatmap: Optional[str]
    issues: Optional[str]
    regions: List[IssueRegion]
    pairs: np.ndarray
    pair_counts: np.ndarray
    docs: Optional[Dict[str, dict]] = None


@dataclass
class Failed:
    """One image that could not be scored; ``error`` names it."""

    sample_id: str
    filepath: str
    error: BaseException


def image_outputs(result, sample_id: str, spec: OutputSpec, write: bool = True) -> Scored:
    """Writes one image's heatmap and issue-mask PNGs (atomically, named by
    sample id and run token) and finds its issue regions; ``write=False``
    only counts its issue pixels (a sample a resumed run committed before)."""
    k = len(spec.classes)
    pairs = counts = np.empty(0, dtype=np.int64)
    if result.num_issues:
        codes = result.labels[result.issues].astype(np.int64) * k + result.pred[result.issues]
        pairs, counts = np.unique(codes, return_counts=True)
    score = None if np.isnan(result.score) else float(result.score)
    if not write:
        return Scored(sample_id, score, result.num_issues, None, None, [], pairs, counts)
    heat = output_path(spec.output_dir, spec.score_field, sample_id, "heatmap", spec.token)
    write_png_atomic(heat, heatmap_image(result.pixel_scores), kind="heatmap")
    iss = output_path(spec.output_dir, spec.score_field, sample_id, "issues", spec.token)
    write_png_atomic(iss, issue_mask_image(result.issues, result.labels, k), kind="issues")
    regions = find_regions(result.issues, result.labels, result.pred, result.pixel_scores, min_area=spec.min_region_area)
    if not spec.fast_docs:
        return Scored(sample_id, score, result.num_issues, heat, iss, regions, pairs, counts)
    docs = {
        "heatmap": documents.heatmap_doc(heat),
        "issues": documents.segmentation_doc(iss),
        "regions": documents.detections_doc(regions, spec.classes),
    }
    return Scored(sample_id, score, result.num_issues, heat, iss, [], pairs, counts, docs)


# --------------------------------------------------------------------------
# the job


@dataclass
class ScoringJob:
    """Everything scoring an image needs besides the image (picklable, so
    Dask workers receive it with each task)."""

    method: str
    temperature: float
    downsample: int
    issue_threshold: float
    ignore: Any
    mapping: LabelMapping
    probs_opts: Dict[str, Any]
    decoder: LabelDecoder
    output: OutputSpec
    cache_dir: str
    #: class scores from a model instead of ``probs_paths``
    model: Optional[ModelInput] = None

    @property
    def num_classes(self) -> int:
        """K: the length of the class list (held once, by the mapping)."""
        return len(self.mapping.classes)

    def images(self, ids, filepaths, label_refs, probs_paths) -> SampleImages:
        """Lazy images of some samples; ``label_refs`` are their label
        references, or a callable ``ref(i)``."""
        ref = label_refs if callable(label_refs) else label_refs.__getitem__
        decoder = self.decoder
        return SampleImages(
            ids=ids,
            filepaths=filepaths,
            label_source=lambda i: decoder(ref(i), ids[i]),
            probs_paths=probs_paths,
            mapping=self.mapping,
            probs_opts=self.probs_opts,
            model=self.model,
        )

    def stream(self, images: SampleImages, *, n_jobs, cache=None, on_scan=None):
        """:func:`~segqual_fo.core.iter_label_quality` over ``images``, with
        issues and per-image failures. The outputs read the argmax of issue
        pixels only (:func:`image_outputs`), so it is computed only where a
        pixel can be one (``pred_scope="issues"``). A model's outputs are
        computed once per image (``probs_once``)."""
        return iter_label_quality(
            images.labels_seq(),
            images.probs_seq(),
            method=self.method,
            temperature=self.temperature,
            downsample=self.downsample,
            ignore_index=self.ignore,
            with_issues=True,
            issue_threshold=self.issue_threshold,
            n_jobs=n_jobs,
            cache=cache,
            skip_failures=True,
            on_scan=on_scan,
            num_classes=self.num_classes,
            pred_scope="issues",
            probs_once=self.model is not None,
        )

    def failed(self, images: SampleImages, i: int, error: BaseException) -> Failed:
        return Failed(images.ids[i], images.filepaths[i], as_sample_error(error, images.where(i)))
