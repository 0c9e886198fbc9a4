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
from segqual_fo.commit import FieldCommitter, sweep_orphans, token_of
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


def _label_reader(sample_collection, label_field, doc_type, ids, classes, ignore_index):
    """(LabelMapping, label_source) for the label field: ``label_source(i)``
    returns sample i's stored mask (Segmentation) or the semantic mask its
    instance Detections rasterise to."""
    dataset = sample_collection._dataset
    if doc_type is fo.Segmentation:
        targets = dataset.mask_targets.get(label_field) or dataset.default_mask_targets or None
        mapping = LabelMapping.from_targets(mask_targets=targets, classes=classes, ignore=ignore_index)
        mask_paths = sample_collection.values(f"{label_field}.mask_path")
        inline = _ChunkedValues(sample_collection, ids, label_field)

        def label_source(i):
            if mask_paths[i]:
                return read_mask_file(mask_paths[i])
            label = inline[i]
            if label is None:
                raise FiftyOneInputError(f"field {label_field!r} is empty.")
            return segmentation_mask(label)

        return mapping, label_source

    names = _detection_classes(dataset, label_field, classes)
    void = 255 if len(names) < 255 else 65535
    ignore = [] if ignore_index is None else ([ignore_index] if np.ndim(ignore_index) == 0 else list(ignore_index))
    mapping = LabelMapping.from_targets(mask_targets=dict(enumerate(names)), classes=names, ignore=ignore + [void])
    if None in sample_collection.values("metadata.width"):
        sample_collection.compute_metadata(progress=False)
    sizes = list(zip(*sample_collection.values(["metadata.width", "metadata.height"])))
    dets = _ChunkedValues(sample_collection, ids, label_field)
    class_index = {name: k for k, name in enumerate(names)}

    def label_source(i):
        w, h = sizes[i]
        if not w or not h:
            raise FiftyOneInputError("the image size is unknown (metadata could not be computed).")
        return detections_to_mask(dets[i], (w, h), class_index, void=void, where=f"sample {ids[i]}")

    return mapping, label_source


def _regions_to_detections(regions, classes) -> "fo.Detections":
    return fo.Detections(
        detections=[
            fo.Detection(
                label=classes[r.given_class],
                bounding_box=list(r.bounding_box),
                mask=r.mask,
                predicted_label=classes[r.predicted_class],
                area=int(r.area),
                mean_score=float(r.mean_score),
            )
            for r in regions
        ]
    )


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
        n_jobs (None): worker threads for reading and scoring

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
    doc_type = _label_field_type(sample_collection, label_field)
    _check_overwrite(sample_collection, fields, overwrite, score_field)
    output_dir = os.path.abspath(output_dir or _default_output_dir(dataset))

    ids, filepaths = sample_collection.values(["id", "filepath"])
    n = len(ids)
    probs_paths = _probs_paths(sample_collection, ids, filepaths, probs_field, probs_dir)

    if n == 0:
        raise FiftyOneInputError("the collection has no samples to score.")
    mapping, label_source = _label_reader(sample_collection, label_field, doc_type, ids, classes, ignore_index)
    probs_opts = dict(key=probs_key, layout=layout, logits=logits, resize=resize)
    num_classes = _peek_num_classes(probs_paths, probs_key, layout)
    mapping = mapping.resolve(num_classes)
    images = _SampleImages(
        ids=ids,
        filepaths=filepaths,
        label_source=label_source,
        probs_paths=probs_paths,
        mapping=mapping,
        probs_opts=probs_opts,
    )
    classes_out = list(mapping.classes)
    k = len(classes_out)
    run_config = dict(
        fields=fields,
        method=method,
        temperature=temperature,
        downsample=downsample,
        issue_threshold=issue_threshold,
        label_field=label_field,
        probs=dict(probs_field=probs_field, probs_dir=probs_dir, probs_key=probs_key, layout=layout, logits=logits, resize=resize),
        classes=classes_out,
        ignore=dict(values=list(mapping.ignore_values), classes=[classes_out[c] for c in mapping.ignore_classes]),
        output_dir=output_dir,
    )
    old_files = _old_files(sample_collection, fields, ids)
    token, done = _resume_state(dataset, score_field, old_files, resume)
    _record_run(sample_collection, score_field, token=token, status="running", **run_config)

    failures: List[Failure] = []
    confusion = np.zeros(k * k, dtype=np.int64)
    num_undefined = 0
    # the values are built here with the right types: no need to validate
    committer = FieldCommitter(dataset, fields, batch_size=commit_every, validate=False)
    files_dir = os.path.join(output_dir, score_field)

    def outputs(sid, result):
        """PNGs and regions of one image (runs in the writer threads)."""
        heat = output_path(output_dir, score_field, sid, "heatmap", token)
        write_png_atomic(heat, heatmap_image(result.pixel_scores))
        iss = output_path(output_dir, score_field, sid, "issues", token)
        write_png_atomic(iss, issue_mask_image(result.issues, result.labels, k))
        regions = find_regions(result.issues, result.labels, result.pred, result.pixel_scores, min_area=min_region_area)
        values = {
            fields["heatmap"]: fo.Heatmap(map_path=heat, range=[0, 255]),
            fields["issues"]: fo.Segmentation(mask_path=iss),
            fields["regions"]: _regions_to_detections(regions, classes_out),
        }
        return values, (heat, iss)

    def commit(sid, values, new=()):
        committer.add(sid, values, old_files=old_files.get(sid, ()), new_files=new)

    todo = [i for i in range(n) if ids[i] not in done]
    if method == "softmin":
        # samples are independent: stream only the missing ones
        images = images.subset(todo)
        n_stream = len(todo)
    else:
        # thresholds and the cut-off need every image: stream all, write missing
        n_stream = n
    cache = None
    if method == "num_pixel_issues":
        # next to the outputs (not in /tmp): a killed run's cache is found and
        # removed by the next run of this score field
        _remove_stale_caches(files_dir, keep=token)
        cache = DirectoryCache(os.path.join(files_dir, f".cache-{token}"), remove=True)
    total_steps = 2 * n_stream if method == "num_pixel_issues" else n_stream
    pending = []

    def drain(keep):
        while len(pending) > keep:
            sid, values, fut = pending.pop(0)
            more, new = fut.result()
            values.update(more)
            commit(sid, values, new=new)

    if n_stream == 0:  # resumed run with nothing left to score
        total_steps = 0
    with fou.ProgressBar(total=total_steps, progress=progress, iters_str="images") as pb, ThreadPoolExecutor(
        max_workers=2, thread_name_prefix="segqual-write"
    ) as writer:
        stream = iter(()) if n_stream == 0 else iter_label_quality(
            images.labels_seq(),
            images.probs_seq(),
            method=method,
            temperature=temperature,
            downsample=downsample,
            ignore_index=mapping.core_ignore,
            with_issues=True,
            issue_threshold=issue_threshold,
            n_jobs=n_jobs,
            cache=cache,
            skip_failures=True,
            on_scan=lambda done_, total: pb.update(),
            num_classes=k,
        )
        try:
            for result in stream:
                sid = images.ids[result.index]
                if result.failed:
                    error = _as_sample_error(result.error, images.where(result.index))
                    if not skip_failures:
                        raise error
                    failures.append(Failure(sid, images.filepaths[result.index], str(error)))
                    commit(sid, {name: None for name in fields.values()})
                    pb.update()
                    continue
                if result.issues is not None and result.num_issues:
                    given = result.labels[result.issues].astype(np.intp)
                    pred = result.pred[result.issues].astype(np.intp)
                    confusion += np.bincount(given * k + pred, minlength=k * k)
                score = None if np.isnan(result.score) else float(result.score)
                num_undefined += score is None
                if sid in done:  # resumed issue-count run: already committed
                    pb.update()
                    continue
                values = {fields["score"]: score, fields["num_issues"]: result.num_issues}
                pending.append((sid, values, writer.submit(outputs, sid, result)))
                drain(keep=8)
                pb.update()
            drain(keep=0)
            committer.flush()
        finally:
            if hasattr(stream, "close"):
                stream.close()
            for _, _, fut in pending:
                fut.cancel()

    dataset.reload()
    _set_issue_targets(dataset, fields, classes_out)
    _ensure_colors(dataset, fields, k)
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


def _set_issue_targets(dataset, fields, classes) -> None:
    issues_field = fields["issues"]
    targets = {k + 1: name for k, name in enumerate(classes)}
    if dataset.mask_targets.get(issues_field) != targets:
        dataset.mask_targets[issues_field] = targets
        dataset.save()


def _resume_state(dataset, score_field, old_files, resume):
    """(run token, {sample id: True} for samples already committed).

    A new run gets a new token. ``resume=True`` continues the run recorded
    under ``score_field``: samples whose output files (``old_files``) carry
    its token are done (skipped, or for the issue-count method only
    counted), the others are scored. Failed samples are retried.
    """
    if resume and score_field in dataset.list_runs():
        token = getattr(dataset.get_run_info(score_field).config, "token", None)
        if token:
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
