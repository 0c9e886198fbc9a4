"""Questions the front ends (CLI, report, plugin) ask about a dataset's
segqual runs, answered from the run records, never by re-deriving field
names: which runs exist, which fields a run wrote, the worst-first view,
the ranked rows of a report, the run's confusion table, and which fields a
new run could read.
"""

from __future__ import annotations

import datetime
from typing import Any, Dict, List, Optional

import numpy as np

import fiftyone as fo

from segqual_fo.fo.inputs import LABEL_TYPES
from segqual_fo.fo.runlock import lock_holder
from segqual_fo.fo.runs import LabelQualityConfig, is_segqual_config
from segqual_fo.options import DEFAULTS, is_probs_file, output_fields

_EPOCH = datetime.datetime.min


def _naive(ts):
    if ts is None:
        return _EPOCH
    return ts.replace(tzinfo=None) if ts.tzinfo is not None else ts


def label_quality_runs(dataset) -> list:
    """Run infos of the segqual runs on ``dataset``, most recent first."""
    infos = [dataset.get_run_info(key) for key in dataset.list_runs()]
    infos = [i for i in infos if is_segqual_config(i.config)]
    infos.sort(key=lambda i: _naive(i.timestamp), reverse=True)
    return infos


def run_fields(dataset, score_field: str) -> Dict[str, str]:
    """The fields the segqual run ``score_field`` wrote (kind -> name), from
    its record, else the naming rule."""
    if score_field in dataset.list_runs():
        fields = getattr(dataset.get_run_info(score_field).config, "fields", None)
        if fields:
            return dict(fields)
    return output_fields(score_field)


def output_field_names(dataset) -> set:
    """Every field some segqual run wrote (never offered as an input)."""
    names = set()
    for info in label_quality_runs(dataset):
        names.update((getattr(info.config, "fields", None) or {}).values())
    return names


def _is_number_field(sample_collection, name) -> bool:
    field = sample_collection.get_field_schema().get(name)
    return isinstance(field, (fo.FloatField, fo.IntField))


def score_field_choices(dataset) -> List[str]:
    """Score fields that exist, most recently scored first. The default
    field counts even without a run record (older scores)."""
    keys = [i.key for i in label_quality_runs(dataset) if dataset.has_field(i.key)]
    default = DEFAULTS["score_field"]
    if default not in keys and _is_number_field(dataset, default):
        keys.append(default)
    return keys


def default_score_field(dataset) -> str:
    """The most recent segqual run's key, or ``"label_quality"``."""
    choices = score_field_choices(dataset)
    return choices[0] if choices else DEFAULTS["score_field"]


def worst_first(sample_collection, score_field: str):
    """The samples with a score, lowest (most likely wrong) first."""
    return sample_collection.exists(score_field).sort_by(score_field)


def ranked_rows(sample_collection, score_field: str, top: Optional[int]) -> List[dict]:
    """The worst ``top`` images: id, filepath, score, issue pixels and their
    most common given->predicted class confusions (from the regions)."""
    f = run_fields(sample_collection._dataset, score_field)
    view = worst_first(sample_collection, score_field)
    if top is not None:
        view = view.limit(top)
    ids, paths, scores, counts = view.values(["id", "filepath", score_field, f["num_issues"]])
    has_regions = sample_collection.has_field(f["regions"])
    regions = view.values(f["regions"]) if has_regions else [None] * len(ids)
    rows = []
    for sid, path, score, n, reg in zip(ids, paths, scores, counts, regions):
        conf: Dict[str, int] = {}
        for d in reg.detections if reg is not None else []:
            key = f"{d.label}->{d.get_field('predicted_label')}"
            conf[key] = conf.get(key, 0) + int(d.get_field("area") or 0)
        top3 = sorted(conf.items(), key=lambda kv: -kv[1])[:3]
        rows.append(
            dict(
                id=sid,
                filepath=path,
                score=score,
                issue_pixels=n,
                top_confusions=", ".join(f"{k} ({v}px)" for k, v in top3),
            )
        )
    return rows


def confusion_table(dataset, score_field: str, top: Optional[int] = 20) -> List[Dict[str, Any]]:
    """The run's most frequent (given, predicted) class pairs among issue
    pixels; empty when the run has no recorded results.

    Raises:
        Exception: the results cannot be loaded (FiftyOne's error)
    """
    from segqual_fo.core import confusion_rows

    if score_field not in dataset.list_runs():
        return []
    classes = getattr(dataset.get_run_info(score_field).config, "classes", None)
    results = dataset.load_run_results(score_field)
    matrix = np.array(getattr(results, "confusion", []) or [])
    if not matrix.size or not classes:
        return []
    return confusion_rows(matrix, class_names=classes, top=top)


def label_field_choices(sample_collection) -> Dict[str, str]:
    """``{name: "Segmentation" | "Detections"}`` of the label fields a run
    can check, without fields that segqual itself wrote."""
    own = output_field_names(sample_collection._dataset)
    schema = sample_collection.get_field_schema()
    return {
        name: field.document_type.__name__
        for name, field in sorted(schema.items())
        if getattr(field, "document_type", None) in LABEL_TYPES and name not in own
    }


def string_field_choices(sample_collection) -> List[str]:
    """String fields that could hold probability file paths."""
    own = output_field_names(sample_collection._dataset)
    schema = sample_collection.get_field_schema()
    return [
        name
        for name, field in sorted(schema.items())
        if isinstance(field, fo.StringField) and name != "filepath" and name not in own
    ]


def looks_like_probs_field(sample_collection, names: List[str]) -> Optional[str]:
    """The first of ``names`` whose first value names a .npy/.npz file."""
    if not names:
        return None
    first = sample_collection.limit(1).values(names)
    for name, values in zip(names, first):
        if values and is_probs_file(values[0]):
            return name
    return None


def stored_probs_need_resize(sample_collection, probs_field: str, *, limit: int = 20) -> bool:
    """Whether the (K, h, w) probability files in ``probs_field`` (such as
    :func:`segqual_fo.save_probabilities` writes) have another height and
    width than their images, so that scoring them needs ``resize=True``.

    Looks at the first ``limit`` samples with a file, reading only headers;
    unreadable files and images are passed over (scoring reports them).
    """
    from segqual_fo.adapters.probs import peek_shape

    view = sample_collection.exists(probs_field).limit(limit)
    for filepath, path, metadata in zip(*view.values(["filepath", probs_field, "metadata"])):
        try:
            h, w = peek_shape(path)[-2:]
            if metadata is None or not metadata.height or not metadata.width:
                metadata = fo.ImageMetadata.build_for(filepath)
        except Exception:  # a failure of its own, reported when it is scored
            continue
        if (h, w) != (metadata.height, metadata.width):
            return True
    return False


def is_legacy(info) -> bool:
    """Whether a segqual run was recorded by segqual 0.1 (FiftyOne's generic
    run config; :func:`segqual_fo.upgrade_runs` converts it)."""
    return not isinstance(info.config, LabelQualityConfig)


def format_timestamp(stamp) -> Optional[str]:
    """A run timestamp for people (UTC)."""
    if isinstance(stamp, datetime.datetime):
        return stamp.strftime("%Y-%m-%d %H:%M:%S UTC")
    return None if stamp is None else str(stamp)


def output_files(dataset, score_field: str) -> List[str]:
    """The heatmap and issue-mask files the run's fields point to."""
    fields = run_fields(dataset, score_field)
    paths: List[str] = []
    for kind, sub in (("heatmap", "map_path"), ("issues", "mask_path")):
        if dataset.has_field(fields[kind]):
            paths += [p for p in dataset.values(f"{fields[kind]}.{sub}") if p]
    return paths


def run_summary(dataset, score_field: str) -> Dict[str, Any]:
    """A run's record as plain JSON values: settings, fields, status, who is
    writing it, how many samples it scored."""
    info = dataset.get_run_info(score_field)
    cfg = info.config
    fields = run_fields(dataset, score_field)
    method = getattr(cfg, "method", None)
    summary: Dict[str, Any] = {
        "run_key": info.key,
        "config_class": f"{type(cfg).__module__}.{type(cfg).__name__}",
        "legacy": is_legacy(info),
        "timestamp": format_timestamp(info.timestamp),
        "fiftyone_version": info.version,
        "segqual_version": getattr(cfg, "segqual_version", None),
        "status": getattr(cfg, "status", None),
        "method": method,
    }
    if method == "num_pixel_issues":
        summary["downsample"] = getattr(cfg, "downsample", None)
    else:
        summary["temperature"] = getattr(cfg, "temperature", None)
    for name in ("issue_threshold", "min_region_area", "label_field", "probs", "classes", "ignore", "output_dir"):
        value = getattr(cfg, name, None)
        summary[name] = dict(value) if isinstance(value, dict) else value
    score = fields["score"]
    summary.update(
        fields=list(fields.values()),
        missing_fields=[f for f in fields.values() if not dataset.has_field(f)],
        num_scored=dataset.count(score) if dataset.has_field(score) else 0,
        num_samples=len(dataset),
        lock=lock_holder(dataset, score_field),
    )
    return summary
