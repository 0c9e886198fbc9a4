"""A scoring run is a FiftyOne run: typed config, fields, rename, cleanup.

:func:`~segqual_fo.compute_label_quality` records each run under the key
``score_field`` with a :class:`LabelQualityConfig`, whose run class
:class:`LabelQuality` tells FiftyOne what the run owns:

- ``dataset.get_run_info(key).config`` is a :class:`LabelQualityConfig`
  with typed attributes (method, temperature, fields, classes, ...);
- ``dataset.rename_run(key, new_key)`` renames every output field, the
  issue mask targets and the colour settings (the PNGs stay where they are:
  the fields point to them);
- ``dataset.delete_run(key)`` deletes the output fields and the PNGs the run
  wrote (only files named like segqual's outputs, for this dataset's
  samples), its issue-count caches, mask targets, colour entries and
  checkpoint.

Both refuse while a run holds the key's lock (:mod:`segqual_fo.fo.runlock`).
FiftyOne, though, logs an error of a run class's ``rename``/``cleanup`` and
renames or deletes the record anyway; :func:`rename_label_quality_run` and
:func:`delete_label_quality_run` check first and undo the record change if
the run class failed all the same (what the CLI and the plugin use).

The config's class path ``segqual_fo.fo.runs.LabelQualityConfig`` is stored
in the database: never move or rename these two classes. Runs recorded by
segqual 0.1 used FiftyOne's generic ``RunConfig`` with ``tool="segqual_fo"``;
they load as before, are replaced when rescored, and
:func:`upgrade_runs` converts them so that rename and delete clean up.
"""

from __future__ import annotations

import datetime
import logging
import os
import shutil
import uuid
from typing import Any, Dict, List, Optional

import numpy as np

import fiftyone as fo
from fiftyone.core.runs import Run, RunConfig

import segqual_fo
from segqual_fo.errors import FiftyOneInputError, InvalidInputError
from segqual_fo.fo.checkpoint import RunCheckpoint
from segqual_fo.fo.commit import sweep_orphans
from segqual_fo.fo.runlock import RunLock, lock_holder
from segqual_fo.options import check_field_name, output_fields
from segqual_fo.writers.files import is_own_output, token_of

#: ``config.tool`` of every segqual run (typed and legacy).
TOOL = "segqual_fo"

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


class LabelQualityConfig(RunConfig):
    """The record of a segqual run (see :func:`segqual_fo.compute_label_quality`).

    Attributes:
        method: "softmin" or "num_pixel_issues"
        temperature: softmin temperature
        downsample: issue-count block size
        issue_threshold: softmin's pixel-score threshold for issues
        min_region_area: smallest recorded issue region (pixels)
        label_field: the checked label field
        probs: probability settings (probs_field, probs_dir, probs_key,
            layout, logits, resize)
        classes: class names in probability-channel order
        ignore: ``{"values": [...], "classes": [...]}`` ignored
        output_dir: where the PNGs are (under ``output_dir/<key>/``)
        fields: output field names (kind -> name)
        token: the run's token (in its PNG names)
        status: "running" or "completed"
        lock: while running, the process holding the key (host, pid)
        tool: always "segqual_fo"
        segqual_version, fiftyone_version, numpy_version, timestamp
    """

    def __init__(
        self,
        method: str = "softmin",
        temperature: float = 0.1,
        downsample: int = 1,
        issue_threshold: float = 0.1,
        min_region_area: int = 16,
        label_field: Optional[str] = None,
        probs: Optional[dict] = None,
        classes: Optional[List[str]] = None,
        ignore: Optional[dict] = None,
        output_dir: Optional[str] = None,
        fields: Optional[Dict[str, str]] = None,
        token: Optional[str] = None,
        status: Optional[str] = None,
        lock: Optional[dict] = None,
        tool: str = TOOL,
        segqual_version: Optional[str] = None,
        fiftyone_version: Optional[str] = None,
        numpy_version: Optional[str] = None,
        timestamp: Optional[str] = None,
        **kwargs,
    ):
        super().__init__(method=method, **kwargs)
        self.temperature = temperature
        self.downsample = downsample
        self.issue_threshold = issue_threshold
        self.min_region_area = min_region_area
        self.label_field = label_field
        self.probs = probs
        self.classes = classes
        self.ignore = ignore
        self.output_dir = output_dir
        self.fields = fields
        self.token = token
        self.status = status
        self.lock = lock
        self.tool = tool
        self.segqual_version = segqual_version
        self.fiftyone_version = fiftyone_version
        self.numpy_version = numpy_version
        self.timestamp = timestamp

    @property
    def type(self) -> str:
        return "run"


class LabelQuality(Run):
    """What FiftyOne calls to list, rename and clean up a segqual run."""

    def get_fields(self, samples, key) -> List[str]:
        return list((self.config.fields or output_fields(key)).values())

    def rename(self, samples, key, new_key) -> None:
        dataset = samples._root_dataset
        old = dict(self.config.fields or output_fields(key))
        new = output_fields(new_key)
        taken = [f for f in new.values() if dataset.has_field(f)]
        if taken:
            raise FiftyOneInputError(
                f"cannot rename the segqual run {key!r} to {new_key!r}: fields {taken} exist already."
            )
        with RunLock(dataset, key), RunLock(dataset, new_key):
            for kind, name in old.items():
                if dataset.has_field(name):
                    dataset.rename_sample_field(name, new[kind])
            targets = dataset.mask_targets.pop(old["issues"], None)
            if targets is not None:
                dataset.mask_targets[new["issues"]] = targets
            scheme = dataset.app_config.color_scheme
            if scheme is not None:
                renamed = {old[k]: new[k] for k in old}
                scheme.colorscales = [
                    {**c, "path": renamed.get(c.get("path"), c.get("path"))} for c in scheme.colorscales or []
                ]
                scheme.fields = [{**f, "path": renamed.get(f.get("path"), f.get("path"))} for f in scheme.fields or []]
                dataset.app_config.color_scheme = scheme
            dataset.save()
            RunCheckpoint(dataset, key, self.config.token).move_to(new_key)
            self.config.fields = new
            self.update_run_config(samples, key, self.config)

    def cleanup(self, samples, key) -> None:
        dataset = samples._root_dataset
        fields = dict(self.config.fields or output_fields(key))
        with RunLock(dataset, key):
            delete_outputs(dataset, key, fields, self.config.output_dir)
            RunCheckpoint(dataset, key, self.config.token).delete()


def delete_outputs(dataset, key: str, fields: Dict[str, str], output_dir: Optional[str]) -> int:
    """Deletes a run's output fields and the files it wrote for this
    dataset's samples; returns the number of files deleted."""
    ids = dataset.values("id")
    files = []
    for kind, sub in (("heatmap", "map_path"), ("issues", "mask_path")):
        if dataset.has_field(fields[kind]):
            files += [(sid, p) for sid, p in zip(ids, dataset.values(f"{fields[kind]}.{sub}")) if p]
    removed = 0
    for sid, path in files:
        if is_own_output(path, sid) and os.path.isfile(path):
            os.remove(path)
            removed += 1
    directories = {os.path.dirname(p) for _, p in files}
    if output_dir:
        directories.add(os.path.join(output_dir, key))
    for directory in sorted(directories):  # a fixed order, whatever the hash seed
        if not os.path.isdir(directory):
            continue
        removed += sweep_orphans(directory, set(), set(ids))  # leftovers of killed runs
        for name in os.listdir(directory):
            if name.startswith(".cache-"):
                shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
        if not os.listdir(directory):
            os.rmdir(directory)
    existing = [f for f in fields.values() if dataset.has_field(f)]
    if existing:
        dataset.delete_sample_fields(existing)
    changed = dataset.mask_targets.pop(fields["issues"], None) is not None
    scheme = dataset.app_config.color_scheme
    if scheme is not None:
        ours = set(fields.values())
        colorscales = [c for c in scheme.colorscales or [] if c.get("path") not in ours]
        entries = [f for f in scheme.fields or [] if f.get("path") not in ours]
        if len(colorscales) != len(scheme.colorscales or []) or len(entries) != len(scheme.fields or []):
            scheme.colorscales, scheme.fields = colorscales, entries
            dataset.app_config.color_scheme = scheme
            changed = True
    if changed:
        dataset.save()
    return removed


# --------------------------------------------------------------------------
# recording


def is_segqual_config(config) -> bool:
    return getattr(config, "tool", None) == TOOL


def _legacy(dataset, key) -> bool:
    """Whether ``key`` holds a run recorded by segqual 0.1 (generic config)."""
    if key not in dataset.list_runs():
        return False
    config = dataset.get_run_info(key).config
    return is_segqual_config(config) and not isinstance(config, LabelQualityConfig)


def upgrade_runs(dataset) -> List[str]:
    """Converts the runs segqual 0.1 recorded with FiftyOne's generic run
    config into :class:`LabelQualityConfig` (results kept), so that
    ``rename_run`` and ``delete_run`` clean up their fields and files.
    Returns the keys upgraded."""
    upgraded = []
    for key in dataset.list_runs():
        if not _legacy(dataset, key):
            continue
        info = dataset.get_run_info(key)
        values = {k: v for k, v in info.config.serialize().items() if k not in ("cls", "type")}
        try:
            results = dataset.load_run_results(key)
        except Exception:
            results = None
        dataset.delete_run(key)
        config = LabelQualityConfig(**values)
        dataset.register_run(key, config, overwrite=True, cleanup=False)
        if results is not None:
            dataset.save_run_results(
                key, dataset.init_run_results(key, confusion=results.confusion, failures=results.failures)
            )
        upgraded.append(key)
    return upgraded


def record_run(sample_collection, key: str, *, status: str, confusion=None, failures=(), **settings) -> None:
    """Registers (or replaces) the run under ``key``; once completed, its
    results hold the confusion counts and failures."""
    dataset = sample_collection._dataset
    if _legacy(dataset, key):
        dataset.delete_run(key)  # a 0.1 record: replaced by a typed one
    config = LabelQualityConfig(
        status=status,
        segqual_version=segqual_fo.__version__,
        fiftyone_version=fo.__version__,
        numpy_version=np.__version__,
        timestamp=datetime.datetime.now(datetime.timezone.utc).isoformat(),
        **settings,
    )
    # cleanup=False: replacing the record must not delete the fields and
    # files that the new run is about to replace sample by sample
    sample_collection.register_run(key, config, overwrite=True, cleanup=False)
    if confusion is not None:
        results = sample_collection.init_run_results(
            key, confusion=np.asarray(confusion).tolist(), failures=[f.__dict__ for f in failures]
        )
        sample_collection.save_run_results(key, results, overwrite=True)


def overwrite_state(dataset, fields: Dict[str, str], key: str):
    """``(existing, owned)``: which output fields exist already, and whether
    a segqual run under ``key`` wrote them (then a new run replaces them
    without ``overwrite=True``).

    Raises:
        FiftyOneInputError: ``key`` names another tool's run
    """
    if key in dataset.list_runs() and not is_segqual_config(dataset.get_run_info(key).config):
        raise FiftyOneInputError(
            f"{key!r} is the key of another run on this dataset (not a segqual run); choose another score_field."
        )
    existing = [f for f in fields.values() if dataset.has_field(f)]
    return existing, key in dataset.list_runs()


def check_overwrite(dataset, fields: Dict[str, str], overwrite: bool, key: str) -> None:
    """Output fields may be replaced when a segqual run with this key wrote
    them, or with ``overwrite=True``.

    Raises:
        FiftyOneInputError: a field exists that segqual did not write, or
            ``key`` names another tool's run
    """
    existing, owned = overwrite_state(dataset, fields, key)
    if existing and not overwrite and not owned:
        raise FiftyOneInputError(
            f"fields {existing} already exist and were not written by a segqual run with key "
            f"{key!r}; pass overwrite=True to replace them, or choose another score_field."
        )


def settings_differences(config, settings: Dict[str, Any]) -> List[str]:
    """``name: recorded X, now Y`` for each of :data:`RESUME_SETTINGS` that
    differs between a recorded run and the requested ``settings``."""
    out = []
    for name in RESUME_SETTINGS:
        if not hasattr(config, name):
            continue  # not recorded by the version that wrote the run
        before, now = getattr(config, name), settings[name]
        if isinstance(before, dict) and isinstance(now, dict):
            for sub in sorted(set(before) | set(now)):
                if before.get(sub) != now.get(sub):
                    out.append(f"{name}.{sub}: recorded {before.get(sub)!r}, now {now.get(sub)!r}")
        elif before != now:
            out.append(f"{name}: recorded {before!r}, now {now!r}")
    return out


def resume_state(dataset, key: str, old_files: Dict[str, List[str]], resume: bool, settings: Dict[str, Any]):
    """(run token, {sample id: True} for samples already committed).

    A new run gets a new token. ``resume=True`` continues the run recorded
    under ``key``: samples whose output files (``old_files``) carry its
    token are done; the others are scored. Failed samples are retried.

    Raises:
        InvalidInputError: ``resume=True`` with settings that differ from the
            recorded run's (the finished samples would keep results computed
            with the old ones)
    """
    if resume and key in dataset.list_runs():
        config = dataset.get_run_info(key).config
        token = getattr(config, "token", None)
        if token and is_segqual_config(config):
            differences = settings_differences(config, settings)
            if differences:
                raise InvalidInputError(
                    f"resume=True continues the run recorded under {key!r}, but these settings "
                    f"differ from it: {'; '.join(differences)}. Resuming would mix results computed "
                    "with both. Pass the recorded settings to finish that run, or drop resume=True "
                    "(CLI: --resume) to score every sample again with the new ones."
                )
            done = {sid: True for sid, paths in old_files.items() if any(token_of(p) == token for p in paths)}
            return token, done
    return uuid.uuid4().hex[:8], {}


# --------------------------------------------------------------------------
# renaming and deleting, checked


class _RunErrors(logging.Handler):
    """Collects what FiftyOne logs about runs meanwhile: it catches the
    errors of a run's rename()/cleanup() and only logs them."""

    _logger = logging.getLogger("fiftyone.core.runs")

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: List[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())

    def __enter__(self):
        self._logger.addHandler(self)
        return self

    def __exit__(self, *exc):
        self._logger.removeHandler(self)


def _segqual_run(dataset, key: str):
    if key not in dataset.list_runs() or not is_segqual_config(dataset.get_run_info(key).config):
        raise FiftyOneInputError(f"{key!r} is not a segqual run of dataset {dataset.name!r}.")
    return dataset.get_run_info(key)


def running_problem(dataset, key: str) -> Optional[str]:
    """Why the run ``key`` cannot be renamed or deleted now, else None."""
    holder = lock_holder(dataset, key)
    return None if holder is None else f"a segqual run is writing {key!r} ({holder}); wait for it to finish."


def rename_problem(dataset, key: str, new_key: Any) -> Optional[str]:
    """Why ``new_key`` cannot be the new key of the run ``key``, else None."""
    try:
        check_field_name(new_key, "the new run key")
    except InvalidInputError as e:
        return str(e)
    if new_key == key:
        return f"{new_key!r} is already the run's key."
    if new_key in dataset.list_runs():
        return f"{new_key!r} is the key of another run on this dataset; choose another key."
    taken = [f for f in output_fields(new_key).values() if dataset.has_field(f)]
    if taken:
        return f"fields {', '.join(taken)} already exist; choose another key."
    return running_problem(dataset, key)


def rename_label_quality_run(dataset, key: str, new_key: str) -> Dict[str, str]:
    """Renames the segqual run ``key`` and all its output fields to
    ``new_key`` (upgrading 0.1 records first); returns the new fields.

    Raises:
        FiftyOneInputError: not a segqual run, a bad or taken new key, a run
            writing the key; nothing is changed
    """
    upgrade_runs(dataset)
    _segqual_run(dataset, key)
    problem = rename_problem(dataset, key, new_key)
    if problem:
        raise FiftyOneInputError(f"cannot rename the run {key!r}: {problem}")
    with _RunErrors() as errors:
        dataset.rename_run(key, new_key)
    fields = dataset.get_run_info(new_key).config.fields
    if fields != output_fields(new_key):  # the run class failed after all
        dataset.rename_run(new_key, key)  # the record goes back; its fields never moved
        reason = errors.messages[0] if errors.messages else "unknown"
        raise FiftyOneInputError(f"could not rename the run {key!r} to {new_key!r}: {reason}")
    return fields


def delete_label_quality_run(dataset, key: str) -> List[str]:
    """Deletes the segqual run ``key``, its output fields and PNG files
    (upgrading 0.1 records first); returns the fields deleted.

    Raises:
        FiftyOneInputError: not a segqual run, or a run writing the key;
            nothing is changed
    """
    upgrade_runs(dataset)
    info = _segqual_run(dataset, key)
    problem = running_problem(dataset, key)
    if problem:
        raise FiftyOneInputError(f"cannot delete the run {key!r}: {problem}")
    fields = list((info.config.fields or output_fields(key)).values())
    existing = [f for f in fields if dataset.has_field(f)]
    try:
        results = dataset.load_run_results(key)  # to put the record back if the cleanup fails
    except Exception:  # a run without saved results (killed before completing)
        results = None
    with _RunErrors() as errors:
        dataset.delete_run(key)
    left = [f for f in fields if dataset.has_field(f)]
    if left:  # the run class failed after all: put the record back
        dataset.register_run(key, info.config, results=results, cleanup=False)
        reason = errors.messages[0] if errors.messages else "unknown"
        raise FiftyOneInputError(f"could not delete the run {key!r}: {reason}")
    return existing
