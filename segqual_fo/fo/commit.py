"""Batched, per-sample atomic commits of a run's output fields.

Every sample's output fields (score, issue count, heatmap, issue mask,
regions) are written in ONE MongoDB update of that sample's document, so a
process killed at any moment leaves each sample either with its previous
results or with the complete new ones, never a mix. Samples are committed in
batches (one ``bulk_write`` per batch), so a long run keeps what it finished.

PNG files are written before the commit under names carrying the run's token
(``<sample id>-<token>_heatmap.png``): a sample's old files stay valid until
its new record is committed, and are deleted right after. A killed run can
leave new files that no record points to; :func:`sweep_orphans` removes them
at the end of the next completed run.
"""

from __future__ import annotations

import datetime
import logging
import os
from typing import Any, Dict, Iterable, List, Set

from bson import ObjectId

import fiftyone as fo
from pymongo import UpdateOne

from segqual_fo.errors import FiftyOneInputError
from segqual_fo.writers.files import is_own_output, parse_output_name

logger = logging.getLogger(__name__)

#: Attributes of the region detections, declared so the App can filter them.
#: ``confidence`` is fo.Detection's own field (see :mod:`segqual_fo.core.regions`).
REGION_ATTRIBUTES = {
    "predicted_label": fo.StringField,
    "area": fo.IntField,
    "mean_score": fo.FloatField,
    "min_score": fo.FloatField,
    "ring_given": fo.FloatField,
    "ring_predicted": fo.FloatField,
    "ring_score": fo.FloatField,
    "thickness": fo.FloatField,
}



def _check_types(schema, types) -> None:
    for name, (ftype, doc_type) in types.items():
        existing = schema[name]
        ok = isinstance(existing, ftype) and (doc_type is None or existing.document_type is doc_type)
        if not ok:
            raise FiftyOneInputError(
                f"field {name!r} exists as {existing}; it must be {ftype.__name__}"
                f"{'' if doc_type is None else ' of ' + doc_type.__name__}. Delete it or choose another score_field."
            )


def field_types(fields: Dict[str, str]) -> Dict[str, tuple]:
    """field name -> (field class, embedded document type or None)."""
    return {
        fields["score"]: (fo.FloatField, None),
        fields["num_issues"]: (fo.IntField, None),
        fields["heatmap"]: (fo.EmbeddedDocumentField, fo.Heatmap),
        fields["issues"]: (fo.EmbeddedDocumentField, fo.Segmentation),
        fields["regions"]: (fo.EmbeddedDocumentField, fo.Detections),
    }


def schema_complete(dataset, fields: Dict[str, str], reload: bool = True) -> bool:
    """Whether the stored dataset declares every output field and region
    attribute (reloads it first unless ``reload=False``)."""
    if reload:
        dataset.reload()
    flat = dataset.get_field_schema(flat=True)
    paths = list(fields.values()) + [f"{fields['regions']}.detections.{a}" for a in REGION_ATTRIBUTES]
    return all(p in flat for p in paths)


def ensure_schema(dataset, fields: Dict[str, str]) -> None:
    """Declares the output fields (and the region attributes) if missing.

    The dataset is reloaded first: FiftyOne writes a dataset's whole field
    list when it adds a field, so adding from a stale copy would drop fields
    another process declared meanwhile.

    Everything missing is declared in one schema update (one save of the
    dataset document and one reload, instead of one per field: 8 on a new
    score field). Should FiftyOne refuse that, or declare less than asked,
    the fields are added one at a time as before.

    Raises:
        FiftyOneInputError: a field exists with another type
    """
    dataset.reload()
    schema = dataset.get_field_schema()
    flat = dataset.get_field_schema(flat=True)
    types = field_types(fields)
    _check_types(schema, {n: t for n, t in types.items() if n in schema})
    missing = {n: t for n, t in types.items() if n not in schema}
    regions = fields["regions"]
    attrs = {a: ft for a, ft in REGION_ATTRIBUTES.items() if f"{regions}.detections.{a}" not in flat}
    if not missing and not attrs:
        return  # a re-run: nothing to declare
    try:
        dataset._merge_sample_field_schema(_missing_schema(missing, attrs, regions))
    except Exception as e:  # a FiftyOne without this private API, or a refusal: the slow way says why
        logger.debug("declaring %s in one step failed (%s); adding them one by one", list(fields.values()), e)
    if not schema_complete(dataset, fields, reload=False):  # FiftyOne reloaded the schema it wrote
        _add_fields_one_by_one(dataset, fields)


def _missing_schema(missing: Dict[str, tuple], attrs: Dict[str, type], regions: str) -> Dict[str, Any]:
    """The FiftyOne field schema of the missing fields and region
    attributes (a new regions field carries its attributes inside)."""
    from fiftyone.core.odm.utils import create_field

    schema = {}
    for name, (ftype, doc_type) in missing.items():
        if name == regions and attrs:
            detection = create_field(
                "detections",
                fo.ListField,
                subfield=fo.EmbeddedDocumentField,
                embedded_doc_type=fo.Detection,
                fields=[create_field(a, ft) for a, ft in attrs.items()],
            )
            schema[name] = create_field(name, ftype, embedded_doc_type=doc_type, fields=[detection])
        else:
            schema[name] = create_field(name, ftype, embedded_doc_type=doc_type)
    if regions not in missing:
        schema.update({f"{regions}.detections.{a}": create_field(a, ft) for a, ft in attrs.items()})
    return schema


def _add_fields_one_by_one(dataset, fields: Dict[str, str]) -> None:
    schema = dataset.get_field_schema()
    for name, (ftype, doc_type) in field_types(fields).items():
        existing = schema.get(name)
        if existing is None:
            if doc_type is None:
                dataset.add_sample_field(name, ftype)
            else:
                dataset.add_sample_field(name, ftype, embedded_doc_type=doc_type)
            continue
        _check_types(schema, {name: (ftype, doc_type)})
    flat = dataset.get_field_schema(flat=True)
    for attr, ftype in REGION_ATTRIBUTES.items():
        path = f"{fields['regions']}.detections.{attr}"
        if path not in flat:
            dataset.add_sample_field(path, ftype)


class FieldCommitter:
    """Accumulates per-sample output values and commits them in batches.

    Args:
        dataset: the dataset the samples belong to
        fields: output field names (see ``output_fields``)
        batch_size (64): samples per commit
        validate (True): validate values against their fields (skip for
            values the caller built with the right types)
        on_commit (None): called with the ids of each batch once it is
            committed
    """

    def __init__(
        self, dataset, fields: Dict[str, str], batch_size: int = 64, validate: bool = True, on_commit=None
    ):
        self.dataset = dataset
        self.on_commit = on_commit
        self.validate = validate
        self.fields = fields
        self.batch_size = batch_size
        self._pending: List[tuple] = []
        self._schema_ready = False
        self.committed = 0

    def add(
        self,
        sample_id: str,
        values: Dict[str, Any],
        old_files: Iterable[str] = (),
        new_files: Iterable[str] = (),
        raw: bool = False,
    ) -> None:
        """Queues one sample's values (field name -> value, None clears);
        ``raw`` values are database documents already (see
        :mod:`segqual_fo.writers.documents`)."""
        self._pending.append((sample_id, values, list(old_files), set(new_files), raw))
        if len(self._pending) >= self.batch_size:
            self.flush()

    def prepare(self) -> None:
        """Declares the output fields (once); the first flush otherwise does."""
        if not self._schema_ready:
            ensure_schema(self.dataset, self.fields)
            self._schema_ready = True

    def flush(self) -> None:
        """Commits the queued samples: one atomic update per sample."""
        if not self._pending:
            return
        self.prepare()
        schema = self.dataset.get_field_schema()
        now = datetime.datetime.utcnow()
        ops, ids = [], []
        for sid, values, _, _, raw in self._pending:
            doc = {}
            for name, value in values.items():
                if raw or value is None:
                    doc[name] = value
                    continue
                field = schema[name]
                if self.validate:
                    field.validate(value)
                doc[name] = field.to_mongo(value)
            doc["last_modified_at"] = now
            ops.append(UpdateOne({"_id": ObjectId(sid)}, {"$set": doc}))
            ids.append(sid)
        # FiftyOne's bulk write also refreshes samples loaded in this process
        self.dataset._bulk_write(ops, ids=ids)
        for sid, _, old, new, _ in self._pending:
            for path in old:
                if path not in new and is_own_output(path, sid):
                    _remove_quietly(path)
        self.committed += len(self._pending)
        self._pending = []
        if self.on_commit is not None:
            self.on_commit(ids)


def _remove_quietly(path: str) -> bool:
    """Removes ``path``; True if it was removed (a missing file, or one that
    cannot be removed, is logged at most, never raised)."""
    try:
        os.remove(path)
        return True
    except FileNotFoundError:
        return False
    except OSError as e:
        logger.warning("could not remove old output %s: %s", path, e)
        return False


def sweep_orphans(directory: str, referenced: Set[str], sample_ids: Set[str]) -> int:
    """Removes PNGs in ``directory`` written for ``sample_ids`` (named like
    ours) that no record references, e.g. left by a killed run, and the
    temporary files of atomic writes that a killed process never renamed.
    Returns the number removed. Files of other samples are never touched.

    Call it only when no writer of this run is still running."""
    if not os.path.isdir(directory):
        return 0
    removed = 0
    for name in os.listdir(directory):
        if name.startswith(".tmp-") and name.endswith(".png"):
            removed += _remove_quietly(os.path.join(directory, name))
            continue
        parsed = parse_output_name(name)
        if parsed is None or parsed[0] not in sample_ids:
            continue
        path = os.path.join(directory, name)
        if path not in referenced:
            removed += _remove_quietly(path)
    return removed
