"""What a run reads, resolved from a FiftyOne collection.

For each sample of the collection (in its order): id, file path, the
probability file (a path field, or a directory keyed by file stem), and a
label reference (:mod:`segqual_fo.execution.job`): a mask file, an inline
mask, or the sample's Detections as plain instances with the image size.
Label documents are fetched from the database in chunks, on demand, so
inline masks are never all in memory. Also the class mapping (names in
probability-channel order, ignore values), with K read from the first
readable probability file's header.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

import fiftyone as fo

from segqual_fo.adapters.labels import Instance
from segqual_fo.adapters.masks import LabelMapping, void_value
from segqual_fo.adapters.models import check_model_output, read_rgb
from segqual_fo.adapters.probs import peek_shape
from segqual_fo.errors import FiftyOneInputError, InvalidInputError, SegQualError
from segqual_fo.execution.job import (
    InlineMask,
    InstanceLabels,
    LabelDecoder,
    MaskFile,
    MissingLabel,
    ModelInput,
    RunInputs,
)
from segqual_fo.options import image_stem, probs_files_by_stem

#: The label types a run can check.
LABEL_TYPES = (fo.Segmentation, fo.Detections)
#: Label documents fetched from the database per query.
_FETCH_CHUNK = 64


@dataclass
class ResolvedInputs:
    """A collection's samples, resolved for a run."""

    inputs: RunInputs
    mapping: LabelMapping
    decoder: LabelDecoder

    @property
    def classes(self) -> List[str]:
        return list(self.mapping.classes)


def label_field_type(sample_collection, label_field: str):
    """``fo.Segmentation`` or ``fo.Detections``: the label field's type.

    Raises:
        FiftyOneInputError: the field is missing or of another type; the
            message lists the fields that would do
    """
    schema = sample_collection.get_field_schema(embedded_doc_type=None)
    candidates = sorted(name for name, f in schema.items() if getattr(f, "document_type", None) in LABEL_TYPES)
    f = schema.get(label_field)
    doc_type = getattr(f, "document_type", None)
    if f is None or doc_type not in LABEL_TYPES:
        what = "does not exist" if f is None else f"is a {type(f).__name__} of {doc_type}"
        raise FiftyOneInputError(
            f"label_field {label_field!r} {what}; it must hold fo.Segmentation or "
            f"fo.Detections labels. Fields that do: {candidates or 'none'}."
        )
    return doc_type


def probs_paths(sample_collection, filepaths, probs_field, probs_dir) -> List[Optional[str]]:
    """Each sample's probability file (None where there is none)."""
    if probs_field is not None:
        schema = sample_collection.get_field_schema()
        if probs_field not in schema:
            strings = sorted(n for n, f in schema.items() if isinstance(f, fo.StringField))
            raise FiftyOneInputError(f"probs_field {probs_field!r} does not exist; string fields: {strings}.")
        return [None if v is None else str(v) for v in sample_collection.values(probs_field)]
    by_stem = probs_files_by_stem(probs_dir)
    return [by_stem.get(image_stem(fp)) for fp in filepaths]


def detection_classes(dataset, label_field, classes) -> List[str]:
    """Class names of a Detections field, in probability-channel order."""
    if classes is not None:
        return list(classes)
    if dataset.classes.get(label_field):
        return list(dataset.classes[label_field])
    if dataset.default_classes:
        return list(dataset.default_classes)
    cats = (dataset.info or {}).get("categories")
    if cats:  # FiftyOne's COCO importer stores the JSON's categories here
        return [str(c["name"]) for c in cats]
    raise InvalidInputError(
        f"{label_field!r} holds Detections but no class list was found (dataset.classes, "
        "default_classes or info['categories']); pass classes=[...] in probability-channel order."
    )


class _ChunkedValues:
    """``values(path)`` of samples, fetched in chunks on demand (thread-safe;
    the last two chunks are kept)."""

    def __init__(self, sample_collection, ids, path):
        self._coll = sample_collection
        self._ids = ids
        self._path = path
        self._chunks: Dict[int, list] = {}
        self._lock = threading.Lock()

    def __getitem__(self, i: int):
        c = i // _FETCH_CHUNK
        with self._lock:
            chunk = self._chunks.get(c)
            if chunk is None:
                ids = self._ids[c * _FETCH_CHUNK : (c + 1) * _FETCH_CHUNK]
                chunk = self._coll.select(ids, ordered=True).values(self._path)
                self._chunks = {k: v for k, v in self._chunks.items() if k >= c - 1}
                self._chunks[c] = chunk
            return chunk[i - c * _FETCH_CHUNK]


def detections_to_instances(detections) -> Optional[List[Instance]]:
    """A ``fo.Detections`` (or None) as plain :class:`Instance` records."""
    if detections is None:
        return None
    return [
        Instance(
            label=det.label,
            bounding_box=tuple(det.bounding_box),
            mask=None if det.mask is None else np.asarray(det.mask),
            iscrowd=bool(det.has_field("iscrowd") and det.get_field("iscrowd")),
        )
        for det in detections.detections or []
    ]


def _segmentation_refs(sample_collection, label_field, ids):
    mask_paths = sample_collection.values(f"{label_field}.mask_path")
    inline = _ChunkedValues(sample_collection, ids, label_field)

    def label_ref(i):
        if mask_paths[i]:
            return MaskFile(mask_paths[i])
        label = inline[i]
        if label is None:
            return MissingLabel(f"field {label_field!r} is empty.")
        if label.mask is None:
            return MissingLabel("the Segmentation has neither a mask nor a mask_path.")
        return InlineMask(np.asarray(label.mask))

    return label_ref


def _detection_refs(sample_collection, label_field, ids):
    if None in sample_collection.values("metadata.width"):
        sample_collection.compute_metadata(progress=False)
    sizes = list(zip(*sample_collection.values(["metadata.width", "metadata.height"])))
    dets = _ChunkedValues(sample_collection, ids, label_field)

    def label_ref(i):
        w, h = sizes[i]
        return InstanceLabels(detections_to_instances(dets[i]), w, h)

    return label_ref


def peek_num_classes(paths: Sequence[Optional[str]], probs_key, layout) -> int:
    """K from the first probability file whose header reads (data unread)."""
    errors = []
    for path in paths:
        if path is None:
            continue
        try:
            shape = peek_shape(path, key=probs_key)
            return int(shape[0] if layout == "KHW" else shape[2])
        except SegQualError as e:
            if len(errors) < 3:
                errors.append(str(e))
    raise FiftyOneInputError(
        "no readable probability file was found for these samples"
        + (f"; first errors: {errors}" if errors else "; check probs_field / probs_dir.")
    )


def model_num_classes(model: ModelInput, ids: Sequence[str], filepaths: Sequence[str]) -> int:
    """K for a model: its ``num_classes`` attribute when it has one (an
    ONNX network that declares its output shape does), else the channels of
    its output for the first image it can run on. That output is kept in
    ``model.primed``, so the run does not compute it again.

    Raises:
        FiftyOneInputError: the model fails on the first images (the
            message has their errors)
    """
    k = getattr(model.model, "num_classes", None)
    if isinstance(k, (int, np.integer)) and not isinstance(k, bool) and k > 0:
        return int(k)
    errors = []
    for sid, fp in list(zip(ids, filepaths))[:3]:
        try:
            out = model.model([read_rgb(fp)])
            out = check_model_output(list(out)[0], num_classes=None, where=f"sample {sid} ({fp})")
        except Exception as e:  # reported below, with the next samples'
            errors.append(f"{type(e).__name__}: {e}")
            continue
        model.primed[sid] = out
        return int(out.shape[0])
    raise FiftyOneInputError(
        f"the model failed on the first {len(errors)} images, so the number of classes is unknown; "
        f"errors: {errors}"
    )


def resolve_inputs(
    sample_collection,
    label_field: str,
    *,
    probs_field: Optional[str],
    probs_dir: Optional[str],
    probs_key: Optional[str],
    layout: str,
    classes: Optional[Sequence[str]],
    ignore_index: Any,
    model: Optional[ModelInput] = None,
) -> ResolvedInputs:
    """Everything a run reads from the collection (see the module docs).

    With ``model``, the class scores come from the model (K from
    :func:`model_num_classes`) and every probability path is None.

    Raises:
        FiftyOneInputError: wrong label field, no samples, no readable
            probability file (or a model failing on the first images)
        InvalidInputError: contradictory classes / ignore values
    """
    doc_type = label_field_type(sample_collection, label_field)
    ids, filepaths = sample_collection.values(["id", "filepath"])
    if model is None:
        paths = probs_paths(sample_collection, filepaths, probs_field, probs_dir)
    else:
        paths = [None] * len(ids)
    if not ids:
        raise FiftyOneInputError("the collection has no samples to score.")
    dataset = sample_collection._dataset
    if doc_type is fo.Segmentation:
        targets = dataset.mask_targets.get(label_field) or dataset.default_mask_targets or None
        mapping = LabelMapping.from_targets(mask_targets=targets, classes=classes, ignore=ignore_index)
        decoder = LabelDecoder()
        label_ref = _segmentation_refs(sample_collection, label_field, ids)
    else:
        names = detection_classes(dataset, label_field, classes)
        void = void_value(len(names))
        ignore = [] if ignore_index is None else ([ignore_index] if np.ndim(ignore_index) == 0 else list(ignore_index))
        mapping = LabelMapping.from_targets(mask_targets=dict(enumerate(names)), classes=names, ignore=ignore + [void])
        decoder = LabelDecoder(class_index={name: k for k, name in enumerate(names)}, void=void)
        label_ref = _detection_refs(sample_collection, label_field, ids)
    if model is None:
        k = peek_num_classes(paths, probs_key, layout)
    else:
        k = model_num_classes(model, ids, filepaths)
    mapping = mapping.resolve(k)
    return ResolvedInputs(RunInputs(ids, filepaths, paths, label_ref), mapping, decoder)
