"""Score a FiftyOne dataset or view and write the answer back for the App.

:func:`compute_label_quality` resolves, for each sample, its label mask
(``fo.Segmentation`` or ``fo.Detections``) and its stored probabilities
(a path field, or a directory keyed by file stem), streams them through the
core one image at a time, writes heatmap and issue-mask PNGs, and then sets
every output field with one bulk write per field.

Fields written (names derived from ``score_field``, default
``label_quality``):

=================================  =========================================
``label_quality``                   float, image label quality, lower = worse
``label_quality_num_issues``        int, issue pixels in the image
``label_quality_heatmap``           ``fo.Heatmap``: PNG of ``1 - pixel
                                    score`` as 0..255, ``range=[0, 255]``
``label_quality_issues``            ``fo.Segmentation``: PNG, value = given
                                    class index + 1 on issue pixels
``label_quality_regions``           ``fo.Detections``: one per connected
                                    issue region (label = given class;
                                    ``predicted_label``, ``area``,
                                    ``mean_score``)
=================================  =========================================

A run is recorded under the key ``score_field`` (method, temperature,
fields, classes, versions, time); its results hold the dataset's
given-vs-predicted confusion counts of issue pixels.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

import fiftyone as fo
import fiftyone.core.utils as fou

import segqual_fo
from segqual_fo import documents
from segqual_fo.adapters.fiftyone_labels import (
    detections_to_mask,
    read_mask_file,
    segmentation_mask,
)
from segqual_fo.adapters.masks import LabelMapping
from segqual_fo.adapters.probs import check_layout, load_probs, peek_shape
from segqual_fo.core import DirectoryCache, iter_label_quality
from segqual_fo.core._inputs import check_positive_int, check_temperature
from segqual_fo.core.rank import check_method
from segqual_fo.core.stream import DEFAULT_ISSUE_THRESHOLD
from segqual_fo.errors import FiftyOneInputError, InvalidInputError, SegQualError
from segqual_fo.checkpoint import RunCheckpoint, Totals
from segqual_fo.runlock import RunLock
from segqual_fo.commit import FieldCommitter, ensure_schema, schema_complete, sweep_orphans, token_of
from segqual_fo.writers.files import heatmap_image, issue_mask_image, output_path, write_png_atomic
from segqual_fo.writers.regions import find_regions

logger = logging.getLogger(__name__)

_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_PROBS_EXTS = (".npy", ".npz")
#: Label documents fetched from the database per query when masks are inline.
_FETCH_CHUNK = 64


def output_fields(score_field: str) -> Dict[str, str]:
    """The names of the fields a run with ``score_field`` writes."""
    return {
        "score": score_field,
        "num_issues": f"{score_field}_num_issues",
        "heatmap": f"{score_field}_heatmap",
        "issues": f"{score_field}_issues",
        "regions": f"{score_field}_regions",
    }


@dataclass
class Failure:
    """A sample that could not be scored."""

    sample_id: str
    filepath: str
    reason: str


@dataclass
class LabelQualityResults:
    """What :func:`compute_label_quality` did.

    Attributes:
        score_field: the run key and score field name
        fields: output field names (see :func:`output_fields`)
        method: scoring method
        classes: class names in probability-channel order
        num_samples: samples in the collection
        num_scored: samples that got a score
        num_undefined: scored samples whose pixels are all ignored (score None)
        failures: samples that failed (with ``skip_failures=True``)
        confusion: (K,K) int counts of issue pixels, ``[given, predicted]``
        output_dir: where the PNGs are
    """

    score_field: str
    fields: Dict[str, str]
    method: str
    classes: List[str]
    num_samples: int
    num_scored: int
    num_undefined: int
    failures: List[Failure]
    confusion: np.ndarray
    output_dir: str

    def confusion_rows(self, top: Optional[int] = 20) -> List[Dict[str, Any]]:
        """Most frequent (given, predicted) class pairs among issue pixels."""
        from segqual_fo.core import confusion_rows

        return confusion_rows(self.confusion, class_names=self.classes, top=top)


# --------------------------------------------------------------------------
# resolving inputs


def _check_field_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _FIELD_NAME.match(name):
        raise InvalidInputError(
            f"{what} must be a field name (letters, digits, underscores), got {name!r}."
        )
    return name


def _label_field_type(sample_collection, label_field: str):
    schema = sample_collection.get_field_schema(embedded_doc_type=None)
    candidates = sorted(
        name
        for name, f in schema.items()
        if getattr(f, "document_type", None) in (fo.Segmentation, fo.Detections)
    )
    f = schema.get(label_field)
    doc_type = getattr(f, "document_type", None)
    if f is None or doc_type not in (fo.Segmentation, fo.Detections):
        what = "does not exist" if f is None else f"is a {type(f).__name__} of {doc_type}"
        raise FiftyOneInputError(
            f"label_field {label_field!r} {what}; it must hold fo.Segmentation or "
            f"fo.Detections labels. Fields that do: {candidates or 'none'}."
        )
    return doc_type


def _probs_paths(sample_collection, ids, filepaths, probs_field, probs_dir) -> List[Optional[str]]:
    if (probs_field is None) == (probs_dir is None):
        raise InvalidInputError("pass exactly one of probs_field (a path field) or probs_dir (a directory).")
    if probs_field is not None:
        schema = sample_collection.get_field_schema()
        if probs_field not in schema:
            strings = sorted(n for n, f in schema.items() if isinstance(f, fo.StringField))
            raise FiftyOneInputError(
                f"probs_field {probs_field!r} does not exist; string fields: {strings}."
            )
        values = sample_collection.values(probs_field)
        return [None if v is None else str(v) for v in values]
    if not os.path.isdir(probs_dir):
        raise InvalidInputError(f"probs_dir {probs_dir!r} is not a directory.")
    by_stem: Dict[str, str] = {}
    for name in sorted(os.listdir(probs_dir)):
        stem, ext = os.path.splitext(name)
        if ext.lower() in _PROBS_EXTS:
            if stem in by_stem:
                raise InvalidInputError(
                    f"probs_dir holds both {os.path.basename(by_stem[stem])} and {name}; keep one "
                    "file per image stem."
                )
            by_stem[stem] = os.path.join(probs_dir, name)
    return [by_stem.get(os.path.splitext(os.path.basename(fp))[0]) for fp in filepaths]


def _detection_classes(dataset, label_field, classes) -> List[str]:
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
    """Fetches ``values(path)`` for samples in chunks, on demand, so that
    inline masks are never all in memory at once."""

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


class _SampleImages:
    """Lazy per-sample (labels, probabilities) for the core's streaming API.

    ``labels[i]`` decodes the label mask; ``probs[i]`` then loads the
    probabilities at the mask's size. Both raise errors naming the sample.
    """

    def __init__(self, *, ids, filepaths, label_source, probs_paths, mapping, probs_opts):
        self.ids = ids
        self.filepaths = filepaths
        self.label_source = label_source
        self.probs_paths = probs_paths
        self.mapping = mapping
        self.probs_opts = probs_opts
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
        path = self.probs_paths[i]
        if path is None:
            raise FiftyOneInputError(f"{self.where(i)} has no probabilities file.")
        try:
            return load_probs(
                path, num_classes=len(self.mapping.classes), target_shape=self._shapes.pop(i, None), **self.probs_opts
            )
        except SegQualError as e:
            raise type(e)(_prefix(str(e), self.where(i))) from None

    def subset(self, indices: List[int]) -> "_SampleImages":
        """The same images restricted to ``indices`` (renumbered 0..)."""
        indices = list(indices)
        if len(indices) == len(self.ids):
            return self
        source = self.label_source
        return _SampleImages(
            ids=[self.ids[i] for i in indices],
            filepaths=[self.filepaths[i] for i in indices],
            label_source=lambda j: source(indices[j]),
            probs_paths=[self.probs_paths[i] for i in indices],
            mapping=self.mapping,
            probs_opts=self.probs_opts,
        )

    def labels_seq(self):
        return _Seq(len(self.ids), self.label)

    def probs_seq(self):
        return _Seq(len(self.ids), self.probs)


def _prefix(message: str, where: str) -> str:
    return message if message.startswith("sample ") else f"{where}: {message}"


class _Seq:
    def __init__(self, n, getter):
        self._n = n
        self._get = getter

    def __len__(self):
        return self._n

    def __getitem__(self, i):
        return self._get(i)


# --------------------------------------------------------------------------
# writing


def _default_output_dir(dataset) -> str:
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", dataset.name)[:64] or "dataset"
    return os.path.join(fo.config.default_dataset_dir, "segqual", safe)


def _owned_by_previous_run(dataset, score_field) -> bool:
    if score_field not in dataset.list_runs():
        return False
    cfg = dataset.get_run_info(score_field).config
    return getattr(cfg, "tool", None) == "segqual_fo"


def _check_overwrite(sample_collection, fields: Dict[str, str], overwrite: bool, score_field: str) -> None:
    dataset = sample_collection._dataset
    existing = [f for f in fields.values() if dataset.has_field(f)]
    if existing and not overwrite and not _owned_by_previous_run(dataset, score_field):
        raise FiftyOneInputError(
            f"fields {existing} already exist and were not written by a segqual run with key "
            f"{score_field!r}; pass overwrite=True to replace them, or choose another score_field."
        )


def _old_files(sample_collection, fields, ids) -> Dict[str, List[str]]:
    """Paths of heatmap/issue PNGs currently referenced by the view's samples
    (``ids`` are the view's sample ids, in its order)."""
    out: Dict[str, List[str]] = {}
    dataset = sample_collection._dataset
    for kind, sub in (("heatmap", "map_path"), ("issues", "mask_path")):
        name = fields[kind]
        if dataset.has_field(name):
            paths = sample_collection.values(f"{name}.{sub}")
            for sid, p in zip(ids, paths):
                if p:
                    out.setdefault(sid, []).append(p)
    return out


@dataclass
class _LabelDecoder:
    """Turns a label reference (see :func:`_label_reader`) into the stored
    mask. Small and picklable: Dask workers decode without the database."""

    label_field: str
    class_index: Optional[Dict[str, int]] = None
    void: int = 255

    def __call__(self, ref, sample_id: str) -> np.ndarray:
        kind = ref[0]
        if kind == "file":
            return read_mask_file(ref[1])
        if kind == "array":
            return np.asarray(ref[1])
        if kind == "detections":
            _, dets, w, h = ref
            if not w or not h:
                raise FiftyOneInputError("the image size is unknown (metadata could not be computed).")
            return detections_to_mask(dets, (w, h), self.class_index, void=self.void, where=f"sample {sample_id}")
        raise FiftyOneInputError(ref[1])


def _label_reader(sample_collection, label_field, doc_type, ids, classes, ignore_index):
    """(LabelMapping, decoder, ref_of) for the label field.

    ``ref_of(i)`` is a small picklable reference to sample i's label (a mask
    path, an inline mask, or its Detections and image size), read from the
    database in chunks; ``decoder(ref, sample_id)`` returns the stored mask
    (Segmentation) or the semantic mask the instance Detections rasterise to.
    """
    dataset = sample_collection._dataset
    if doc_type is fo.Segmentation:
        targets = dataset.mask_targets.get(label_field) or dataset.default_mask_targets or None
        mapping = LabelMapping.from_targets(mask_targets=targets, classes=classes, ignore=ignore_index)
        mask_paths = sample_collection.values(f"{label_field}.mask_path")
        inline = _ChunkedValues(sample_collection, ids, label_field)

        def ref_of(i):
            if mask_paths[i]:
                return ("file", mask_paths[i])
            label = inline[i]
            if label is None:
                return ("error", f"field {label_field!r} is empty.")
            if label.mask is None:
                return ("error", "the Segmentation has neither a mask nor a mask_path.")
            return ("array", segmentation_mask(label))

        return mapping, _LabelDecoder(label_field), ref_of

    names = _detection_classes(dataset, label_field, classes)
    void = 255 if len(names) < 255 else 65535
    ignore = [] if ignore_index is None else ([ignore_index] if np.ndim(ignore_index) == 0 else list(ignore_index))
    mapping = LabelMapping.from_targets(mask_targets=dict(enumerate(names)), classes=names, ignore=ignore + [void])
    if None in sample_collection.values("metadata.width"):
        sample_collection.compute_metadata(progress=False)
    sizes = list(zip(*sample_collection.values(["metadata.width", "metadata.height"])))
    dets = _ChunkedValues(sample_collection, ids, label_field)
    decoder = _LabelDecoder(label_field, class_index={name: k for k, name in enumerate(names)}, void=void)

    def ref_of(i):
        w, h = sizes[i]
        return ("detections", dets[i], w, h)

    return mapping, decoder, ref_of


@dataclass
class _OutputSpec:
    """Where and how a run writes its per-image files (picklable)."""

    output_dir: str
    score_field: str
    token: str
    min_region_area: int
    classes: List[str]
    #: build the label documents directly (see :mod:`segqual_fo.documents`)
    fast_docs: bool = False


@dataclass
class _Scored:
    """One scored image, ready to commit: plain data, made wherever the
    image was scored (a writer thread here, or a Dask worker).

    ``heatmap``/``issues`` are None when the image's files were not written
    (a resumed run's already-committed samples, which still count towards
    the confusion); ``pairs``/``pair_counts`` are its issue pixels'
    ``given * K + predicted`` codes and their counts; ``docs``, when set,
    holds the heatmap, issues and regions as database documents (then
    ``regions`` is empty).
    """

    sample_id: str
    score: Optional[float]
    num_issues: int
    heatmap: Optional[str]
    issues: Optional[str]
    regions: list
    pairs: np.ndarray
    pair_counts: np.ndarray
    docs: Optional[Dict[str, dict]] = None


@dataclass
class _Failed:
    """One image that could not be scored; ``error`` names it."""

    sample_id: str
    filepath: str
    error: BaseException


def _image_outputs(result, sample_id: str, spec: _OutputSpec, write: bool = True) -> _Scored:
    """Writes one image's heatmap and issue-mask PNGs (atomically, named by
    sample id and run token) and finds its issue regions."""
    k = len(spec.classes)
    pairs = counts = np.empty(0, dtype=np.int64)
    if result.num_issues:
        codes = result.labels[result.issues].astype(np.int64) * k + result.pred[result.issues]
        pairs, counts = np.unique(codes, return_counts=True)
    score = None if np.isnan(result.score) else float(result.score)
    heat = iss = None
    regions: list = []
    if write:
        heat = output_path(spec.output_dir, spec.score_field, sample_id, "heatmap", spec.token)
        write_png_atomic(heat, heatmap_image(result.pixel_scores))
        iss = output_path(spec.output_dir, spec.score_field, sample_id, "issues", spec.token)
        write_png_atomic(iss, issue_mask_image(result.issues, result.labels, k))
        regions = find_regions(
            result.issues, result.labels, result.pred, result.pixel_scores, min_area=spec.min_region_area
        )
        if spec.fast_docs:
            docs = {
                "heatmap": documents.heatmap_doc(heat),
                "issues": documents.segmentation_doc(iss),
                "regions": documents.detections_doc(regions, spec.classes),
            }
            return _Scored(sample_id, score, result.num_issues, heat, iss, [], pairs, counts, docs)
    return _Scored(sample_id, score, result.num_issues, heat, iss, regions, pairs, counts)


class _Collector:
    """Client side of a run: turns per-image records into committed fields
    and run totals (confusion, failures, undefined scores).

    ``initial`` are the totals of samples committed before (a resumed run
    that does not read them again). The totals of the committed samples are
    checkpointed after every commit (see :mod:`segqual_fo.checkpoint`).
    """

    def __init__(self, committer, fields, old_files, classes, skip_failures, checkpoint=None, initial=None):
        self.committer = committer
        self.fields = fields
        self.old_files = old_files
        self.classes = classes
        self.skip_failures = skip_failures
        self.checkpoint = checkpoint
        k = len(classes)
        self.committed = initial if initial is not None else Totals.zeros(k)
        self.confusion = self.committed.confusion.copy()
        self.num_undefined = self.committed.num_undefined
        self.failures: List[Failure] = []
        # sample id -> (issue pairs, counts, undefined) until its commit
        self._uncommitted: Dict[str, tuple] = {}
        committer.on_commit = self._on_commit

    def prepare(self) -> None:
        """Declares the output fields now (e.g. while workers compute) rather
        than at the first commit."""
        self.committer.prepare()

    def take(self, rec) -> None:
        if isinstance(rec, _Failed):
            if not self.skip_failures:
                raise rec.error
            self.failures.append(Failure(rec.sample_id, rec.filepath, str(rec.error)))
            self._commit(rec.sample_id, {name: None for name in self.fields.values()})
            return
        np.add.at(self.confusion, rec.pairs, rec.pair_counts)
        self.num_undefined += rec.score is None
        if rec.heatmap is None:  # resumed run: committed before, read again to count it
            self.committed.add_sample(rec.sample_id, rec.pairs, rec.pair_counts, rec.score is None)
            return
        self._uncommitted[rec.sample_id] = (rec.pairs, rec.pair_counts, rec.score is None)
        fields = self.fields
        values = {fields["score"]: rec.score, fields["num_issues"]: rec.num_issues}
        if rec.docs is not None:
            values.update({fields[kind]: doc for kind, doc in rec.docs.items()})
        else:
            values[fields["heatmap"]] = fo.Heatmap(map_path=rec.heatmap, range=[0, 255])
            values[fields["issues"]] = fo.Segmentation(mask_path=rec.issues)
            values[fields["regions"]] = documents.regions_to_detections(rec.regions, self.classes)
        self._commit(rec.sample_id, values, new=(rec.heatmap, rec.issues), raw=rec.docs is not None)

    def _commit(self, sid, values, new=(), raw=False):
        self.committer.add(sid, values, old_files=self.old_files.get(sid, ()), new_files=new, raw=raw)

    def _on_commit(self, ids) -> None:
        for sid in ids:
            entry = self._uncommitted.pop(sid, None)
            if entry is not None:  # failures are committed as None and not counted
                self.committed.add_sample(sid, *entry)
        if self.checkpoint is not None:
            self.checkpoint.save(self.committed)


# --------------------------------------------------------------------------
# the public entry point


def compute_label_quality(
    sample_collection,
    label_field: str,
    *,
    probs_field: Optional[str] = None,
    probs_dir: Optional[str] = None,
    probs_key: Optional[str] = None,
    layout: str = "KHW",
    logits: bool = False,
    resize: bool = False,
    classes: Optional[Sequence[str]] = None,
    ignore_index: Any = None,
    method: str = "softmin",
    temperature: float = 0.1,
    downsample: int = 1,
    issue_threshold: float = DEFAULT_ISSUE_THRESHOLD,
    score_field: str = "label_quality",
    output_dir: Optional[str] = None,
    overwrite: bool = False,
    skip_failures: bool = False,
    min_region_area: int = 16,
    resume: bool = False,
    commit_every: int = 64,
    progress: Any = None,
    n_jobs: Optional[int] = None,
    executor: Any = None,
    shard_size: Optional[int] = None,
) -> LabelQualityResults:
    """Scores the label quality of a dataset or view and writes it back.

    Args:
        sample_collection: a ``fo.Dataset`` or ``fo.DatasetView``; only its
            samples are read and written
        label_field: the ``fo.Segmentation`` or ``fo.Detections`` field with
            the annotations to check
        probs_field (None): a string field with each sample's probability
            file (.npy or .npz)
        probs_dir (None): or a directory of probability files named like the
            images (matched by file stem)
        probs_key (None): the array name inside .npz files
        layout ("KHW"): "KHW" (classes first) or "HWK" (classes last)
        logits (False): the files hold logits; apply a softmax
        resize (False): resize lower-resolution probabilities to the mask
            (bilinear, renormalised) instead of failing
        classes (None): class names in probability-channel order (see
            :mod:`segqual_fo.adapters.masks` for the defaults)
        ignore_index (None): mask values and/or class names to ignore; 255
            is always ignored when it is not a class
        method ("softmin"): one of :data:`segqual_fo.core.METHODS`
        temperature (0.1): softmin temperature
        downsample (1): block size for "num_pixel_issues" statistics
        issue_threshold (0.1): for "softmin", pixels scoring below it whose
            argmax is another class are issues; "num_pixel_issues" uses
            confident learning
        score_field ("label_quality"): the score field, prefix of the other
            output fields, and the run key
        output_dir (None): where PNGs go (default:
            ``fo.config.default_dataset_dir/segqual/<dataset name>``)
        overwrite (False): replace output fields that a segqual run with
            this key did not write (a previous run's are always replaced)
        skip_failures (False): score everything else when a sample fails,
            leaving its fields None and listing it in ``failures``; False
            raises at the first failure with the sample id and path
        min_region_area (16): smallest issue region (pixels) recorded in
            the regions field; specks along object boundaries are noise
        resume (False): continue the interrupted run recorded under
            ``score_field``: only samples it did not commit are scored (the
            issue-count method still reads every image, since its thresholds
            are dataset-wide, but writes only the missing ones)
        commit_every (64): samples per database commit; each sample's
            fields are written in one atomic update
        progress (None): FiftyOne progress convention: None (default
            config), True/False, or a callable receiving the progress bar
        n_jobs (None): worker threads for reading and scoring (in this
            process; ignored with ``executor``)
        executor (None): score on a Dask cluster instead of in this
            process: a ``dask.distributed.Client`` or a scheduler address
            (see :mod:`segqual_fo.distributed`). Workers read masks and
            probabilities and write the PNGs (``output_dir`` and the
            probability files must be on storage they all see); this
            process reads and writes the database. Results are identical to
            a run without ``executor``.
        shard_size (None): samples per Dask task (default: about four
            tasks per worker thread, at most 64 samples)

    Returns:
        a :class:`LabelQualityResults`

    Raises:
        InvalidInputError: bad arguments or (without ``skip_failures``) a
            sample that cannot be scored; the message names it and the fix

    Example::

        import fiftyone as fo
        import segqual_fo

        dataset = fo.load_dataset("my-dataset")
        results = segqual_fo.compute_label_quality(
            dataset, "ground_truth", probs_field="probs_path", ignore_index=255
        )
        view = dataset.sort_by("label_quality")   # worst first
    """
    check_method(method)
    check_temperature(temperature)
    check_layout(layout)
    check_positive_int(downsample, "downsample", allow_none=False)
    check_positive_int(min_region_area, "min_region_area", allow_none=False)
    check_positive_int(commit_every, "commit_every", allow_none=False)
    _check_field_name(score_field, "score_field")
    if not 0 <= float(issue_threshold) <= 1:
        raise InvalidInputError(f"issue_threshold must be in [0, 1], got {issue_threshold!r}.")
    dataset = sample_collection._dataset
    fields = output_fields(score_field)
    if label_field in fields.values():
        raise InvalidInputError(f"label_field {label_field!r} is one of the output fields {list(fields.values())}.")
    if executor is not None:
        from segqual_fo.distributed import check_executor

        check_executor(executor)
    check_positive_int(shard_size, "shard_size")
    doc_type = _label_field_type(sample_collection, label_field)
    _check_overwrite(sample_collection, fields, overwrite, score_field)
    output_dir = os.path.abspath(output_dir or _default_output_dir(dataset))

    ids, filepaths = sample_collection.values(["id", "filepath"])
    n = len(ids)
    probs_paths = _probs_paths(sample_collection, ids, filepaths, probs_field, probs_dir)

    if n == 0:
        raise FiftyOneInputError("the collection has no samples to score.")
    mapping, decoder, ref_of = _label_reader(sample_collection, label_field, doc_type, ids, classes, ignore_index)
    probs_opts = dict(key=probs_key, layout=layout, logits=logits, resize=resize)
    num_classes = _peek_num_classes(probs_paths, probs_key, layout)
    mapping = mapping.resolve(num_classes)
    classes_out = list(mapping.classes)
    k = len(classes_out)
    run_config = dict(
        fields=fields,
        method=method,
        temperature=temperature,
        downsample=downsample,
        issue_threshold=issue_threshold,
        min_region_area=min_region_area,
        label_field=label_field,
        probs=dict(probs_field=probs_field, probs_dir=probs_dir, probs_key=probs_key, layout=layout, logits=logits, resize=resize),
        classes=classes_out,
        ignore=dict(values=list(mapping.ignore_values), classes=[classes_out[c] for c in mapping.ignore_classes]),
        output_dir=output_dir,
    )
    with RunLock(dataset, score_field) as lock:
        old_files = _old_files(sample_collection, fields, ids)
        token, done = _resume_state(dataset, score_field, old_files, resume, run_config)
        _record_run(sample_collection, score_field, token=token, status="running", lock=lock.owner, **run_config)

        # the values are built here with the right types: no need to validate
        committer = FieldCommitter(dataset, fields, batch_size=commit_every, validate=False)
        checkpoint = RunCheckpoint(dataset, score_field, token)
        todo = [i for i in range(n) if ids[i] not in done]
        # softmin reads only the samples left to score when the checkpoint
        # covers the committed ones; otherwise, and always for the
        # dataset-wide issue count, every sample is read and the committed
        # ones are only counted
        saved = checkpoint.load(k) if done and method == "softmin" else None
        initial = saved if saved is not None and saved.describes(list(done)) else None
        stream = todo if method == "softmin" and (initial is not None or not done) else list(range(n))
        collector = _Collector(committer, fields, old_files, classes_out, skip_failures, checkpoint, initial)
        files_dir = os.path.join(output_dir, score_field)
        spec = _OutputSpec(
            output_dir,
            score_field,
            token,
            min_region_area,
            classes=classes_out,
            fast_docs=documents.matches_fiftyone(documents.example_regions()),
        )
        job = _Job(
            method=method,
            temperature=temperature,
            downsample=downsample,
            issue_threshold=issue_threshold,
            ignore=mapping.core_ignore,
            num_classes=k,
            mapping=mapping,
            probs_opts=probs_opts,
            decoder=decoder,
            output=spec,
            cache_dir=os.path.join(files_dir, f".cache-{token}"),
        )
        if method == "num_pixel_issues":
            # next to the outputs (not in /tmp, and on shared storage for Dask):
            # a killed run's cache is found and removed by the next run
            _remove_stale_caches(files_dir, keep=token)
        refs = _RunInputs(ids, filepaths, probs_paths, ref_of, done)
        if executor is None:
            _run_here(job, refs, stream, collector, progress, n_jobs)
        else:
            from segqual_fo.distributed import run_on_dask

            run_on_dask(executor, job, refs, stream, collector, progress=progress, shard_size=shard_size)
        committer.flush()
        failures, confusion, num_undefined = collector.failures, collector.confusion, collector.num_undefined

        _finish_dataset(dataset, fields, classes_out)
        referenced = set(p for p in sample_collection.values(f"{fields['heatmap']}.map_path") if p)
        referenced |= set(p for p in sample_collection.values(f"{fields['issues']}.mask_path") if p)
        sweep_orphans(files_dir, referenced, set(ids))
        num_failed = len(failures)
        _record_run(
            sample_collection,
            score_field,
            token=token,
            status="completed",
            confusion=confusion.reshape(k, k),
            failures=failures,
            **run_config,
        )
    return LabelQualityResults(
        score_field=score_field,
        fields=fields,
        method=method,
        classes=classes_out,
        num_samples=n,
        num_scored=n - num_failed,
        num_undefined=num_undefined,
        failures=failures,
        confusion=confusion.reshape(k, k),
        output_dir=output_dir,
    )


@dataclass
class _Job:
    """Everything scoring an image needs besides the image (picklable, so
    Dask workers receive it with each task)."""

    method: str
    temperature: float
    downsample: int
    issue_threshold: float
    ignore: Any
    num_classes: int
    mapping: Any
    probs_opts: Dict[str, Any]
    decoder: _LabelDecoder
    output: _OutputSpec
    cache_dir: str

    def images(self, ids, filepaths, label_refs, probs_paths) -> "_SampleImages":
        """Lazy images of some samples; ``label_refs`` are their label
        references (see :func:`_label_reader`) or a callable ``ref(i)``."""
        ref = label_refs if callable(label_refs) else label_refs.__getitem__
        decoder = self.decoder
        return _SampleImages(
            ids=ids,
            filepaths=filepaths,
            label_source=lambda i: decoder(ref(i), ids[i]),
            probs_paths=probs_paths,
            mapping=self.mapping,
            probs_opts=self.probs_opts,
        )

    def stream(self, images: "_SampleImages", *, n_jobs, cache=None, on_scan=None):
        """:func:`~segqual_fo.core.iter_label_quality` over ``images``, with
        issues and per-image failures."""
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
        )

    def failed(self, images: "_SampleImages", i: int, error: BaseException) -> _Failed:
        return _Failed(images.ids[i], images.filepaths[i], _as_sample_error(error, images.where(i)))


@dataclass
class _RunInputs:
    """The collection's samples as the client resolved them (view order)."""

    ids: List[str]
    filepaths: List[str]
    probs_paths: List[Optional[str]]
    ref_of: Any
    done: Dict[str, bool]


def _run_here(job: _Job, inputs: _RunInputs, stream, collector: _Collector, progress, n_jobs) -> None:
    """Scores in this process: the images ``stream`` (indices; all of them
    for the issue count) go through the core (``n_jobs`` threads), two
    writer threads write the PNGs of those not done, the collector commits."""
    images = job.images(inputs.ids, inputs.filepaths, inputs.ref_of, inputs.probs_paths)
    cache = None
    if job.method == "softmin":
        images = images.subset(stream)  # samples are independent
        n_stream = len(stream)
        total_steps = n_stream
    else:
        # thresholds and the cut-off need every image: stream all, write missing
        n_stream = len(inputs.ids)
        total_steps = 2 * n_stream
        cache = DirectoryCache(job.cache_dir, remove=True)
    if n_stream == 0:  # resumed run with nothing left to score
        total_steps = 0
    pending: list = []

    def drain(keep):
        while len(pending) > keep:
            collector.take(pending.pop(0).result())

    with fou.ProgressBar(total=total_steps, progress=progress, iters_str="images") as pb, ThreadPoolExecutor(
        max_workers=2, thread_name_prefix="segqual-write"
    ) as writer:
        stream = iter(()) if n_stream == 0 else job.stream(
            images, n_jobs=n_jobs, cache=cache, on_scan=lambda done_, total: pb.update()
        )
        try:
            for result in stream:
                if result.failed:
                    drain(keep=0)
                    collector.take(job.failed(images, result.index, result.error))
                else:
                    sid = images.ids[result.index]
                    write = sid not in inputs.done
                    pending.append(writer.submit(_image_outputs, result, sid, job.output, write))
                    drain(keep=8)
                pb.update()
            drain(keep=0)
        finally:
            if hasattr(stream, "close"):
                stream.close()
            for fut in pending:
                fut.cancel()
            if cache is not None:
                cache.close()


def _as_sample_error(error: BaseException, where: str) -> BaseException:
    """The error, with a message that starts with the sample id and path."""
    message = str(error)
    if message.startswith("sample "):
        return error
    if isinstance(error, SegQualError):
        out = type(error).__new__(type(error))
        Exception.__init__(out, f"{where}: {message}")
        out.__dict__.update(getattr(error, "__dict__", {}))
        return out
    return InvalidInputError(f"{where}: {type(error).__name__}: {message}")


def _peek_num_classes(probs_paths, probs_key, layout) -> int:
    """K from the first probability file whose header reads (data unread)."""
    errors = []
    for path in probs_paths:
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


def _remove_stale_caches(directory: str, keep: str) -> None:
    import shutil

    if not os.path.isdir(directory):
        return
    for name in os.listdir(directory):
        if re.fullmatch(r"\.cache-[0-9a-f]{8}", name) and name != f".cache-{keep}":
            shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


def _finish_dataset(dataset, fields, classes, attempts: int = 5) -> None:
    """Sets the issue mask targets and App colours, and checks that the
    stored dataset still declares every output field.

    Another process working on the same dataset (another score field, the
    App) may save the dataset document from a stale copy and drop what this
    run declared; each step therefore starts from a fresh copy, and the whole
    is verified and redone a few times.
    """
    for _ in range(attempts):
        ensure_schema(dataset, fields)  # reloads first; declares only what is missing
        _set_issue_targets(dataset, fields, classes)
        _ensure_colors(dataset, fields, len(classes))
        if schema_complete(dataset, fields) and fields["issues"] in dataset.mask_targets:
            return
    logger.warning("another process keeps rewriting dataset %s; check its fields %s", dataset.name, list(fields.values()))


def _set_issue_targets(dataset, fields, classes) -> None:
    issues_field = fields["issues"]
    targets = {k + 1: name for k, name in enumerate(classes)}
    if dataset.mask_targets.get(issues_field) != targets:
        dataset.mask_targets[issues_field] = targets
        dataset.save()


#: Settings recorded with a run that change what it writes; ``resume=True``
#: refuses to continue a run recorded with other values. (Settings a run of
#: an older version did not record are not compared.)
RESUME_SETTINGS = (
    "method",
    "temperature",
    "downsample",
    "issue_threshold",
    "min_region_area",
    "label_field",
    "probs",
    "classes",
    "ignore",
    "output_dir",
)


def _settings_differences(cfg, run_config) -> List[str]:
    """``name: recorded -> requested`` for each setting that differs."""
    out = []
    for name in RESUME_SETTINGS:
        if not hasattr(cfg, name):
            continue
        before, now = getattr(cfg, name), run_config[name]
        if isinstance(before, dict) and isinstance(now, dict):
            for sub in sorted(set(before) | set(now)):
                if before.get(sub) != now.get(sub):
                    out.append(f"{name}.{sub}: recorded {before.get(sub)!r}, now {now.get(sub)!r}")
        elif before != now:
            out.append(f"{name}: recorded {before!r}, now {now!r}")
    return out


def _resume_state(dataset, score_field, old_files, resume, run_config):
    """(run token, {sample id: True} for samples already committed).

    A new run gets a new token. ``resume=True`` continues the run recorded
    under ``score_field``: samples whose output files (``old_files``) carry
    its token are done (skipped, or for the issue-count method only
    counted), the others are scored. Failed samples are retried.

    Raises:
        InvalidInputError: ``resume=True`` with settings that differ from the
            recorded run's (the finished samples would keep scores computed
            with the old ones)
    """
    if resume and score_field in dataset.list_runs():
        cfg = dataset.get_run_info(score_field).config
        token = getattr(cfg, "token", None)
        if token:
            differences = _settings_differences(cfg, run_config)
            if differences:
                raise InvalidInputError(
                    f"resume=True continues the run recorded under {score_field!r}, but these settings "
                    f"differ from it: {'; '.join(differences)}. Resuming would mix results computed "
                    "with both. Pass the recorded settings to finish that run, or drop resume=True "
                    "(CLI: --resume) to score every sample again with the new ones."
                )
            done = {sid: True for sid, paths in old_files.items() if any(token_of(p) == token for p in paths)}
            return token, done
    return uuid.uuid4().hex[:8], {}


#: Colours of the issue mask and regions: one vivid colour, "look here".
ISSUE_COLOR = "#ff2d55"


def _ensure_colors(dataset, fields, num_classes) -> None:
    """Gives the heatmap a colour scale and the issues a vivid colour in the
    dataset's App colour scheme, once: fields that already have an entry
    (from an earlier run or from the user) are left alone, and an existing
    scheme's global settings are never changed. A dataset without a scheme
    gets one that colours by value, which heatmap colour scales need."""
    scheme = dataset.app_config.color_scheme
    created = scheme is None
    if created:
        scheme = fo.ColorScheme(color_by="value", opacity=0.7)
    colorscales = list(scheme.colorscales or [])
    field_entries = list(scheme.fields or [])
    changed = created
    if not any(c.get("path") == fields["heatmap"] for c in colorscales):
        colorscales.append({"path": fields["heatmap"], "name": "hot", "list": None})
        changed = True
    paths = {f.get("path") for f in field_entries}
    if fields["issues"] not in paths:
        field_entries.append(
            {
                "path": fields["issues"],
                "fieldColor": ISSUE_COLOR,
                "maskTargetsColors": [{"intTarget": k + 1, "color": ISSUE_COLOR} for k in range(num_classes)],
            }
        )
        changed = True
    if fields["regions"] not in paths:
        field_entries.append({"path": fields["regions"], "fieldColor": ISSUE_COLOR})
        changed = True
    if changed:
        scheme.colorscales = colorscales
        scheme.fields = field_entries
        dataset.app_config.color_scheme = scheme
        dataset.save()


def _record_run(sample_collection, key, *, status, confusion=None, failures=(), **config):
    """Registers (or replaces) the run under ``key``; its results hold the
    confusion counts and failures once the run has completed."""
    dataset = sample_collection._dataset
    cfg = dataset.init_run(
        tool="segqual_fo",
        status=status,
        segqual_version=segqual_fo.__version__,
        fiftyone_version=fo.__version__,
        numpy_version=np.__version__,
        timestamp=datetime.datetime.now(datetime.timezone.utc).isoformat(),
        **config,
    )
    cfg.method = config["method"]
    sample_collection.register_run(key, cfg, overwrite=True)
    if confusion is not None:
        results = sample_collection.init_run_results(
            key,
            confusion=confusion.tolist(),
            failures=[f.__dict__ for f in failures],
        )
        sample_collection.save_run_results(key, results, overwrite=True)
