"""Write-back: per-image records become committed sample fields and run
totals; the dataset gets its mask targets and App colours at the end.

The :class:`Collector` is what the runners of :mod:`segqual_fo.execution`
hand their records to (:class:`~segqual_fo.execution.job.Scored` or
:class:`~segqual_fo.execution.job.Failed`); it queues each sample's fields
in the :class:`~segqual_fo.fo.commit.FieldCommitter` (one atomic update per
sample, committed in batches) and keeps the run's totals, checkpointed
after each commit (:mod:`segqual_fo.fo.checkpoint`).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

import fiftyone as fo

from segqual_fo.execution.job import Failed
from segqual_fo.fo.checkpoint import RunCheckpoint, Totals
from segqual_fo.fo.commit import FieldCommitter, ensure_schema, schema_complete
from segqual_fo.fo.documents import regions_to_detections
from segqual_fo.fo.review import carry_marks

logger = logging.getLogger(__name__)

#: Colour of the issue mask and regions: one vivid colour, "look here".
ISSUE_COLOR = "#ff2d55"


@dataclass
class Failure:
    """A sample that could not be scored."""

    sample_id: str
    filepath: str
    reason: str


class Collector:
    """Client side of a run: turns per-image records into committed fields
    and run totals (confusion, failures, undefined scores).

    ``initial`` are the totals of samples committed before (a resumed run
    that does not read them again). The totals of the committed samples are
    checkpointed after every commit. ``marks`` are the review tags of the
    regions being replaced, by sample id (:func:`~segqual_fo.fo.review.review_marks`);
    a sample's new regions inherit them in the update that writes them.
    """

    def __init__(
        self,
        committer: FieldCommitter,
        fields: Dict[str, str],
        old_files: Dict[str, List[str]],
        classes: List[str],
        skip_failures: bool,
        checkpoint: Optional[RunCheckpoint] = None,
        initial: Optional[Totals] = None,
        marks: Optional[Dict[str, list]] = None,
    ):
        self.committer = committer
        self.fields = fields
        self.old_files = old_files
        self.classes = classes
        self.skip_failures = skip_failures
        self.checkpoint = checkpoint
        self.committed = initial if initial is not None else Totals.zeros(len(classes))
        self.confusion = self.committed.confusion.copy()
        self.num_undefined = self.committed.num_undefined
        self.failures: List[Failure] = []
        self.marks = marks or {}
        # sample id -> (issue pairs, counts, undefined) until its commit
        self._uncommitted: Dict[str, tuple] = {}
        committer.on_commit = self._on_commit

    def prepare(self) -> None:
        """Declares the output fields now (e.g. while workers compute) rather
        than at the first commit."""
        self.committer.prepare()

    def take(self, rec) -> None:
        if isinstance(rec, Failed):
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
            values[fields["regions"]] = regions_to_detections(rec.regions, self.classes)
        marks = self.marks.pop(rec.sample_id, None)
        if marks:
            carry_marks(marks, values[fields["regions"]])
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


def default_output_dir(dataset) -> str:
    """``fo.config.default_dataset_dir/segqual/<dataset name, made safe>``."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", dataset.name)[:64] or "dataset"
    return os.path.join(fo.config.default_dataset_dir, "segqual", safe)


def old_files(sample_collection, fields: Dict[str, str], ids: List[str]) -> Dict[str, List[str]]:
    """Paths of heatmap/issue PNGs currently referenced by the collection's
    samples (``ids`` are its sample ids, in its order)."""
    out: Dict[str, List[str]] = {}
    dataset = sample_collection._dataset
    for kind, sub in (("heatmap", "map_path"), ("issues", "mask_path")):
        name = fields[kind]
        if dataset.has_field(name):
            for sid, p in zip(ids, sample_collection.values(f"{name}.{sub}")):
                if p:
                    out.setdefault(sid, []).append(p)
    return out


def referenced_files(sample_collection, fields: Dict[str, str]) -> set:
    """Every PNG path the collection's output fields reference."""
    referenced = {p for p in sample_collection.values(f"{fields['heatmap']}.map_path") if p}
    referenced |= {p for p in sample_collection.values(f"{fields['issues']}.mask_path") if p}
    return referenced


def remove_stale_caches(directory: str, keep: str) -> None:
    """Removes issue-count caches of killed runs (all but run ``keep``'s)."""
    if not os.path.isdir(directory):
        return
    for name in os.listdir(directory):
        if re.fullmatch(r"\.cache-[0-9a-f]{8}", name) and name != f".cache-{keep}":
            shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


def finish_dataset(dataset, fields: Dict[str, str], classes: List[str], attempts: int = 5) -> None:
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
