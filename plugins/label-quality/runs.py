"""What segqual has written to a dataset, read from its run records.

``segqual_fo.compute_label_quality`` records every run with
``dataset.register_run(score_field, config)`` where ``config.tool ==
"segqual_fo"`` and ``config.fields`` names the fields it wrote. The
operators and the panel find score fields and their companions here, so
that nothing in the plugin hard-codes field names beyond the library's
default.
"""

import datetime

import fiftyone as fo

TOOL = "segqual_fo"
DEFAULT_SCORE_FIELD = "label_quality"
LABEL_TYPES = (fo.Segmentation, fo.Detections)
PROBS_EXTS = (".npy", ".npz")

_EPOCH = datetime.datetime.min


def segqual_runs(dataset):
    """Run infos of segqual runs on ``dataset``, most recent first."""
    infos = []
    for key in dataset.list_runs():
        info = dataset.get_run_info(key)
        if getattr(info.config, "tool", None) == TOOL:
            infos.append(info)
    infos.sort(key=lambda i: _naive(i.timestamp), reverse=True)
    return infos


def _naive(ts):
    if ts is None:
        return _EPOCH
    return ts.replace(tzinfo=None) if ts.tzinfo is not None else ts


def run_fields(dataset, score_field):
    """The fields a segqual run with key ``score_field`` wrote (kind ->
    name), from its run record, else the library's naming rule."""
    if score_field in dataset.list_runs():
        fields = getattr(dataset.get_run_info(score_field).config, "fields", None)
        if fields:
            return dict(fields)
    from segqual_fo.pipeline import output_fields

    return output_fields(score_field)


def output_field_names(dataset):
    """Every field written by some segqual run: never offered as input."""
    names = set()
    for info in segqual_runs(dataset):
        names.update((getattr(info.config, "fields", None) or {}).values())
    return names


def score_field_choices(dataset):
    """Score fields that exist, most recently scored first. The library's
    default field counts even without a run record (older scores)."""
    keys = [i.key for i in segqual_runs(dataset) if dataset.has_field(i.key)]
    if DEFAULT_SCORE_FIELD not in keys and _is_number_field(dataset, DEFAULT_SCORE_FIELD):
        keys.append(DEFAULT_SCORE_FIELD)
    return keys


def default_score_field(dataset):
    """The most recent segqual run's key, or ``"label_quality"``."""
    choices = score_field_choices(dataset)
    return choices[0] if choices else DEFAULT_SCORE_FIELD


def _is_number_field(sample_collection, name):
    field = sample_collection.get_field_schema().get(name)
    return isinstance(field, (fo.FloatField, fo.IntField))


def label_field_choices(sample_collection):
    """``{name: "Segmentation" | "Detections"}`` of the label fields a run
    can check, without fields that segqual itself wrote."""
    own = output_field_names(sample_collection._dataset)
    schema = sample_collection.get_field_schema()
    return {
        name: field.document_type.__name__
        for name, field in sorted(schema.items())
        if getattr(field, "document_type", None) in LABEL_TYPES and name not in own
    }


def string_field_choices(sample_collection):
    """String fields that could hold probability file paths."""
    own = output_field_names(sample_collection._dataset)
    schema = sample_collection.get_field_schema()
    return [
        name
        for name, field in sorted(schema.items())
        if isinstance(field, fo.StringField) and name != "filepath" and name not in own
    ]


def looks_like_probs_field(sample_collection, names):
    """The first of ``names`` whose first value ends in .npy/.npz, else None."""
    if not names:
        return None
    first = sample_collection.limit(1).values(names)
    for name, values in zip(names, first):
        if values and isinstance(values[0], str) and values[0].lower().endswith(PROBS_EXTS):
            return name
    return None
