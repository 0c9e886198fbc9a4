"""One-click fixes that never destroy the original: :func:`fix_regions`.

The chosen issue regions of a run (the ``{score_field}_regions``
detections) are pasted, with the class the model predicts, into a copy of
each sample's label mask, stored in a new ``fo.Segmentation`` field
(default ``{label_field}_fixed``). The steps:

1. validate: exactly one way of choosing regions (a label tag, a minimum
   ``confidence``, or region ids such as the App's selection); the run is
   a segqual run of ``label_field``, a ``fo.Segmentation`` field; the fixed
   field is neither the label field nor a field some segqual run writes;
2. choose the regions in the collection; those already tagged ``fixed``
   (or marked ``not_an_error``, see :mod:`segqual_fo.fo.review`) are
   skipped, so running the same fix twice changes nothing;
3. per chunk of samples: start from the sample's fixed mask when it has one
   (a rerun adds to it), else from its label mask; paste the regions
   (:mod:`segqual_fo.writers.fixes`); write the PNG atomically under
   ``<run output_dir>/<fixed_field>/``; set the fixed field in bulk
   (``set_values``); tag the applied regions ``fixed`` (in bulk); delete
   the fixed PNGs the field pointed to before (only files in that
   directory named like ours for that sample).

The label field, its documents and its files are only ever read. A
corrected PNG gets a new name each time it is rewritten
(``<sample id>-<token>.png``): the field is switched to a complete file, and
the App (which caches media by path) never shows a stale mask. A run killed
midway leaves every sample either fixed (with its regions tagged, or not yet
tagged: the next run pastes them again, to the same pixels) or untouched.

Only samples with an applied region get the fixed field; score the fixed
field on ``dataset.exists(fixed_field)`` (or with ``skip_failures=True``).
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
from bson import ObjectId

import fiftyone as fo
from fiftyone import ViewField as F

from segqual_fo.adapters.labels import read_mask_file
from segqual_fo.adapters.masks import LabelMapping
from segqual_fo.errors import FiftyOneInputError, InvalidInputError
from segqual_fo.fo.inputs import label_field_type
from segqual_fo.fo.queries import output_field_names, run_fields
from segqual_fo.fo.review import REGION_STATES, mark_regions
from segqual_fo.fo.runlock import RunLock
from segqual_fo.fo.runs import is_segqual_config
from segqual_fo.fo.writeback import default_output_dir
from segqual_fo.options import DEFAULTS, check_field_name, check_label_field
from segqual_fo.writers.files import write_png_atomic
from segqual_fo.writers.fixes import RegionPatch, class_values, paste_regions, png_image

#: The review state of regions whose fix was applied
#: (:mod:`segqual_fo.fo.review`); regions in any review state are skipped
#: ("fixed": applied already; "not_an_error": the label is right).
FIXED_TAG = "fixed"
#: Samples read, written and committed per step.
_CHUNK = 64
_FIXED_NAME = re.compile(r"^(?P<id>[0-9a-f]{24})-[0-9a-f]{8}\.png$")


@dataclass
class FixResults:
    """What :func:`fix_regions` did.

    Attributes:
        fixed_field: the field holding the corrected masks
        num_samples: samples whose corrected mask was written
        num_regions: regions applied (now tagged ``fixed``)
        num_pixels: pixels whose value changed
        num_skipped: chosen regions skipped: already ``fixed``, or marked
            ``not_an_error`` (the label is right)
        files: the PNG files written
    """

    fixed_field: str
    num_samples: int = 0
    num_regions: int = 0
    num_pixels: int = 0
    num_skipped: int = 0
    files: List[str] = field(default_factory=list)


def check_selection(tag=None, min_confidence=None, label_ids=None) -> None:
    """Exactly one way of choosing regions, each of the right kind.

    Raises:
        InvalidInputError: none or several given, or a bad value
    """
    given = [n for n, v in (("tag", tag), ("min_confidence", min_confidence), ("label_ids", label_ids)) if v is not None]
    if len(given) != 1:
        what = f"got {' and '.join(given)}" if given else "got none"
        raise InvalidInputError(
            "choose the regions to fix with exactly one of tag (a label tag), min_confidence (regions "
            f"whose confidence is at least this) or label_ids (region ids, e.g. the App's selection); {what}."
        )
    if tag is not None and (not isinstance(tag, str) or not tag):
        raise InvalidInputError(f"tag must be a non-empty label tag, got {tag!r}.")
    if min_confidence is not None:
        ok = isinstance(min_confidence, (int, float, np.floating, np.integer)) and not isinstance(min_confidence, bool)
        if not ok or not 0 <= float(min_confidence) <= 1:
            raise InvalidInputError(f"min_confidence must be a number in [0, 1], got {min_confidence!r}.")
    if label_ids is not None:
        if isinstance(label_ids, str) or not all(isinstance(i, str) and ObjectId.is_valid(i) for i in label_ids):
            raise InvalidInputError(f"label_ids must be a list of label ids (24 hex digits), got {label_ids!r}.")


def fix_regions(
    sample_collection,
    label_field: str,
    *,
    score_field: str = DEFAULTS["score_field"],
    tag: Optional[str] = None,
    min_confidence: Optional[float] = None,
    label_ids: Optional[Sequence[str]] = None,
    fixed_field: Optional[str] = None,
) -> FixResults:
    """Writes a corrected copy of the label masks: each chosen issue region
    relabelled with the class the model predicts.

    The original field and its files are never modified: the corrected
    masks are new PNGs in a new field. Rerunning adds to the corrected
    masks; regions already applied (tagged ``fixed``) and regions marked
    ``not_an_error`` are skipped.

    Args:
        sample_collection: a ``fo.Dataset`` or ``fo.DatasetView``; only its
            samples and the regions it contains are considered
        label_field: the ``fo.Segmentation`` field the run scored
        score_field ("label_quality"): the run whose regions are fixed
        tag (None): fix the regions carrying this label tag
        min_confidence (None): or the regions whose ``confidence`` is at
            least this (regions without one are not chosen)
        label_ids (None): or these region ids (what the App's label
            selection holds); every id must be a region of the collection
        fixed_field (None): the corrected field (default
            ``{label_field}_fixed``); its PNGs go to
            ``<the run's output_dir>/<fixed_field>/``, and it gets the
            label field's mask targets

    Returns:
        a :class:`FixResults`

    Raises:
        InvalidInputError: bad arguments (none or several selections, a
            fixed field that is the label field or a segqual output)
        FiftyOneInputError: no segqual run ``score_field`` of
            ``label_field``, a Detections label field, unknown region ids,
            a sample without a label mask, a predicted class that the mask
            targets do not name
        RunLockedError: a scoring run is writing ``score_field``, or
            another fix is writing ``fixed_field``, right now

    Example::

        import fiftyone as fo
        import segqual_fo

        dataset = fo.load_dataset("my-dataset")   # scored: label_quality_regions
        # regions reviewed in the App and tagged "approved"
        res = segqual_fo.fix_regions(dataset, "ground_truth", tag="approved")
        print(res.num_regions, res.num_pixels)    # into "ground_truth_fixed"
    """
    # 1. validate
    check_selection(tag, min_confidence, label_ids)
    dataset = sample_collection._dataset
    config, regions_field, fixed_field = check_fix_target(dataset, label_field, score_field, fixed_field)
    values = _class_values(dataset, label_field, config.classes)

    # 2. choose the regions
    chosen, skipped = _choose(sample_collection, regions_field, tag, min_confidence, label_ids)
    results = FixResults(fixed_field=fixed_field, num_skipped=skipped)
    if not chosen:
        return results
    directory = os.path.join(os.path.abspath(config.output_dir or default_output_dir(dataset)), fixed_field)
    token = uuid.uuid4().hex[:8]

    # 3. per chunk: paste, write, commit, tag, clean up; no scoring run may
    # rewrite the regions meanwhile, and no other fix may write the field
    with RunLock(dataset, score_field), RunLock(dataset, fixed_field):
        _copy_mask_targets(dataset, label_field, fixed_field)
        sample_ids = list(chosen)
        for start in range(0, len(sample_ids), _CHUNK):
            ids = sample_ids[start : start + _CHUNK]
            _fix_chunk(dataset, ids, chosen, label_field, fixed_field, score_field, values, directory, token, results)
    return results


def check_fix_target(dataset, label_field: str, score_field: str, fixed_field: Optional[str] = None):
    """What a fix reads and writes, checked (the library and the plugin's
    form share it): ``(run config, regions field, fixed field)``.

    Raises:
        InvalidInputError: bad field names, a fixed field that is the label
            field or a segqual output
        FiftyOneInputError: no segqual run ``score_field`` of
            ``label_field``, a Detections label field, a fixed field of
            another type, a run without regions
    """
    check_label_field(label_field, score_field)
    check_field_name(score_field, "score_field")
    fixed_field = check_field_name(fixed_field or f"{label_field}_fixed", "fixed_field")
    if fixed_field == label_field:
        raise InvalidInputError(f"fixed_field {fixed_field!r} is the label field; the original is never overwritten.")
    config = _run_config(dataset, score_field, label_field)
    fields = run_fields(dataset, score_field)
    if fixed_field in set(fields.values()) | output_field_names(dataset) | set(dataset.list_runs()):
        raise InvalidInputError(
            f"fixed_field {fixed_field!r} is written by a segqual run; choose another name "
            f"(default: {label_field}_fixed)."
        )
    _check_label_fields(dataset, label_field, fixed_field)
    regions_field = fields["regions"]
    if not dataset.has_field(regions_field):
        raise FiftyOneInputError(f"the run {score_field!r} has no regions field {regions_field!r}; score again.")
    return config, regions_field, fixed_field


def _run_config(dataset, score_field: str, label_field: str):
    if score_field not in dataset.list_runs() or not is_segqual_config(dataset.get_run_info(score_field).config):
        raise FiftyOneInputError(
            f"{score_field!r} is not a segqual run of dataset {dataset.name!r}; score {label_field!r} "
            "with compute_label_quality first, or pass its score_field."
        )
    config = dataset.get_run_info(score_field).config
    if getattr(config, "label_field", None) != label_field:
        raise FiftyOneInputError(
            f"the run {score_field!r} scored {getattr(config, 'label_field', None)!r}, not {label_field!r}: "
            f"its regions describe that field. Pass label_field={getattr(config, 'label_field', None)!r}, or "
            f"the score_field of a run of {label_field!r}."
        )
    if not getattr(config, "classes", None):
        raise FiftyOneInputError(f"the run {score_field!r} recorded no class list; score again.")
    return config


def _check_label_fields(sample_collection, label_field: str, fixed_field: str) -> None:
    doc_type = label_field_type(sample_collection, label_field)
    if doc_type is not fo.Segmentation:
        raise FiftyOneInputError(
            f"{label_field!r} holds fo.Detections; fix_regions corrects semantic masks of fo.Segmentation "
            "fields only. Convert the detections to a Segmentation field first "
            "(fiftyone.utils.labels.objects_to_segmentations) and score that."
        )
    f = sample_collection._dataset.get_field_schema().get(fixed_field)
    if f is not None and getattr(f, "document_type", None) is not fo.Segmentation:
        raise FiftyOneInputError(
            f"fixed_field {fixed_field!r} exists and does not hold fo.Segmentation labels; choose another name."
        )


def _class_values(dataset, label_field: str, classes: List[str]) -> Dict[str, object]:
    """``{class name: stored mask value}`` for the label field, with the
    rules the run decoded it by (:class:`LabelMapping`)."""
    targets = dataset.mask_targets.get(label_field) or dataset.default_mask_targets or None
    mapping = LabelMapping.from_targets(mask_targets=targets, classes=classes).resolve(len(classes))
    by_index = class_values(mapping)
    return {name: by_index[k] for k, name in enumerate(classes) if k in by_index}


def _choose(sample_collection, regions_field: str, tag, min_confidence, label_ids):
    """``({sample id: [region Detection, ...]}, number skipped as already
    fixed or not an error)`` in the collection's order."""
    if tag is not None:
        expr = F("tags").contains(tag)
    elif min_confidence is not None:
        expr = F("confidence") >= float(min_confidence)
    else:
        expr = F("_id").is_in([ObjectId(i) for i in label_ids])
    view = sample_collection.filter_labels(regions_field, expr)
    ids, detections = view.values(["id", f"{regions_field}.detections"])
    chosen: Dict[str, list] = {}
    skipped = 0
    found = set()
    for sid, dets in zip(ids, detections):
        for det in dets or []:
            found.add(det.id)
            if any(state in (det.tags or []) for state in REGION_STATES):
                skipped += 1
            else:
                chosen.setdefault(sid, []).append(det)
    if label_ids is not None:
        missing = [i for i in dict.fromkeys(label_ids) if str(ObjectId(i)) not in found]  # any hex case
        if missing:
            raise FiftyOneInputError(
                f"{len(missing)} of the label ids are not regions of {regions_field!r} in this collection "
                f"(e.g. {missing[:3]}); select regions of that field."
            )
    return chosen, skipped


def _copy_mask_targets(dataset, label_field: str, fixed_field: str) -> None:
    targets = dataset.mask_targets.get(label_field)
    if targets and dataset.mask_targets.get(fixed_field) != targets:
        dataset.mask_targets[fixed_field] = dict(targets)
        dataset.save()


def _load_mask(label, where: str) -> np.ndarray:
    if label is None:
        raise FiftyOneInputError(f"{where} is empty; there is no label mask to fix.")
    if label.mask_path:
        return read_mask_file(label.mask_path)
    if label.mask is not None:
        return np.asarray(label.mask)
    raise FiftyOneInputError(f"{where} has neither a mask nor a mask_path.")


def _patches(dets, values: Dict[str, object], where: str) -> List[RegionPatch]:
    out = []
    for det in dets:
        predicted = det.get_field("predicted_label") if det.has_field("predicted_label") else None
        if predicted not in values:
            raise FiftyOneInputError(
                f"region {det.id} of {where} predicts {predicted!r}, which has no mask value in the label "
                f"field's mask targets (classes with one: {sorted(values)[:20]}); add it to the mask targets."
            )
        if det.mask is None:
            raise FiftyOneInputError(f"region {det.id} of {where} has no instance mask; score again.")
        out.append(RegionPatch(det.bounding_box, np.asarray(det.mask, dtype=bool), values[predicted], f"region {det.id}"))
    return out


def _fix_chunk(dataset, ids, chosen, label_field, fixed_field, score_field, values, directory, token, results):
    view = dataset.select(ids, ordered=True)
    has_fixed = dataset.has_field(fixed_field)
    labels = view.values(label_field)
    fixed = view.values(fixed_field) if has_fixed else [None] * len(ids)
    new_labels, old_files, applied = {}, [], []
    for sid, label, previous in zip(ids, labels, fixed):
        has_previous = previous is not None and (previous.mask_path or previous.mask is not None)
        where = f"sample {sid} ({fixed_field if has_previous else label_field})"
        mask = _load_mask(previous if has_previous else label, where)
        dets = chosen[sid]
        corrected, changed = paste_regions(mask, _patches(dets, values, where), where=where)
        path = os.path.join(directory, f"{sid}-{token}.png")
        write_png_atomic(path, png_image(corrected, where=where), kind="issues")  # runs of class values, as issue masks
        new_labels[sid] = fo.Segmentation(mask_path=path)
        if has_previous and previous.mask_path:
            old_files.append((sid, previous.mask_path))
        applied += [d.id for d in dets]
        results.files.append(path)
        results.num_samples += 1
        results.num_regions += len(dets)
        results.num_pixels += changed
    dataset.set_values(fixed_field, new_labels, key_field="id")
    mark_regions(dataset, applied, FIXED_TAG, score_field=score_field)
    for sid, path in old_files:
        _remove_own(path, sid, directory)


def _remove_own(path: str, sample_id: str, directory: str) -> None:
    """Deletes a replaced corrected mask: only a file in the fixed field's
    directory named like the ones written here for that sample (a path a
    user put in the field is left alone)."""
    m = _FIXED_NAME.fullmatch(os.path.basename(path))
    if m is None or m.group("id") != sample_id or os.path.dirname(os.path.abspath(path)) != directory:
        return
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
