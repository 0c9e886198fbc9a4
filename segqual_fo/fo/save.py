"""Store a model's class scores compactly, once, for scoring later.

:func:`save_probabilities` runs a model over a collection's images and keeps
each image's probabilities at the model's output resolution as a compressed
``uint8`` ``.npz`` (:mod:`segqual_fo.writers.probs`), with the path in a
string field. Scoring then reads them like any probability files::

    segqual_fo.save_probabilities(dataset, segqual_fo.onnx_model("net.onnx"), "/data/probs", logits=True)
    segqual_fo.compute_label_quality(dataset, "ground_truth", probs_field="pred_probs_path", resize=True)
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import fiftyone as fo
import fiftyone.core.utils as fou

from segqual_fo.adapters.models import BatchedModel, check_model, check_model_output
from segqual_fo.errors import FiftyOneInputError, InvalidInputError
from segqual_fo.execution.job import as_sample_error
from segqual_fo.fo.writeback import Failure
from segqual_fo.options import check_batch_size, check_field_name
from segqual_fo.writers.probs import PROBS_KEY, quantize_probs, write_probs_npz

#: Sample paths committed to the database per update.
_COMMIT_EVERY = 64


@dataclass
class SavedProbabilities:
    """What :func:`save_probabilities` did.

    Attributes:
        probs_dir: where the files are
        probs_field: the field holding each sample's file
        num_samples: samples in the collection
        num_written: files written by this call
        num_skipped: samples whose file existed already (kept, not rerun)
        bytes_written: total size of the files written
        failures: samples that failed (with ``skip_failures=True``)
    """

    probs_dir: str
    probs_field: str
    num_samples: int
    num_written: int = 0
    num_skipped: int = 0
    bytes_written: int = 0
    failures: List[Failure] = field(default_factory=list)


def probs_file(probs_dir: str, sample_id: str) -> str:
    """Where a sample's probabilities go: ``<probs_dir>/<sample id>.npz``
    (sample ids are unique; image names need not be)."""
    return os.path.join(probs_dir, f"{sample_id}.npz")


def _check_field(sample_collection, probs_field: str, paths: Dict[str, str], overwrite: bool) -> None:
    schema = sample_collection.get_field_schema()
    f = schema.get(probs_field)
    if f is None:
        return
    if not isinstance(f, fo.StringField):
        raise FiftyOneInputError(
            f"probs_field {probs_field!r} exists and is a {type(f).__name__}, not a string field; "
            "pass another probs_field."
        )
    if overwrite:
        return
    ids, values = sample_collection.values(["id", probs_field])
    other = [(i, v) for i, v in zip(ids, values) if v is not None and v != paths[i]]
    if other:
        i, v = other[0]
        raise FiftyOneInputError(
            f"probs_field {probs_field!r} already holds other paths for {len(other)} samples "
            f"(e.g. sample {i}: {v}); pass overwrite=True to replace them, or another probs_field."
        )


def save_probabilities(
    sample_collection,
    model: Any,
    probs_dir: str,
    *,
    probs_field: str = "pred_probs_path",
    logits: bool = False,
    batch_size: Optional[int] = None,
    progress: Any = None,
    overwrite: bool = False,
    skip_failures: bool = False,
) -> SavedProbabilities:
    """Runs ``model`` once over the collection's images and stores each
    image's probabilities as ``<probs_dir>/<sample id>.npz`` (one ``uint8``
    array ``probs`` = ``round(p * 255)``, shape (K, h, w) at the model's
    output resolution, compressed), writing each path to ``probs_field``.

    Score them later with ``compute_label_quality(..., probs_field=probs_field,
    resize=True)`` (``resize`` when the model's resolution is not the
    mask's; no ``logits``: the files hold probabilities). Quantisation
    moves scores by little (the README has the measured effect); ranking
    with ``model=`` directly avoids it.

    Resumable: a sample whose file exists already is skipped (not run
    through the model) and its path recorded, so an interrupted call
    continues where it stopped. Files are written atomically; paths are
    committed every 64 samples and at the end, also when a failure stops
    the call, so nothing written is lost.

    Args:
        sample_collection: a dataset or view
        model: a model as for :func:`segqual_fo.compute_label_quality`
            (a callable taking a list of HxWx3 uint8 RGB images, returning
            (K, h, w) class scores per image)
        probs_dir: the directory for the files (created if needed)
        probs_field ("pred_probs_path"): the string field for the paths
        logits (False): the model outputs logits (softmaxed before storing)
        batch_size (8): images per model call
        progress (None): FiftyOne progress convention
        overwrite (False): rerun samples whose file exists, and replace
            other paths already in ``probs_field`` (refused otherwise)
        skip_failures (False): store everything else when an image fails
            (listed in ``failures``); False raises at the first failure

    Returns:
        a :class:`SavedProbabilities`

    Raises:
        InvalidInputError: bad arguments, or a failing sample without
            ``skip_failures`` (its id and the fix in the message)
        FiftyOneInputError: ``probs_field`` is not a string field, or
            holds other paths (without ``overwrite``)
    """
    check_model(model)
    batch_size = check_batch_size(batch_size)
    check_field_name(probs_field, "probs_field")
    if not isinstance(probs_dir, (str, os.PathLike)) or not str(probs_dir):
        raise InvalidInputError(f"probs_dir must be a directory path, got {probs_dir!r}.")
    probs_dir = os.path.abspath(os.fspath(probs_dir))
    ids, filepaths = sample_collection.values(["id", "filepath"])
    paths = {i: probs_file(probs_dir, i) for i in ids}
    _check_field(sample_collection, probs_field, paths, overwrite)
    os.makedirs(probs_dir, exist_ok=True)
    dataset = sample_collection._dataset
    if probs_field not in dataset.get_field_schema():
        dataset.add_sample_field(probs_field, fo.StringField)

    result = SavedProbabilities(probs_dir, probs_field, len(ids))
    todo = []
    pending_paths: Dict[str, str] = {}

    def commit() -> None:
        if pending_paths:
            sample_collection.set_values(probs_field, dict(pending_paths), key_field="id")
            pending_paths.clear()

    for j, sid in enumerate(ids):
        if not overwrite and os.path.isfile(paths[sid]):
            result.num_skipped += 1
            pending_paths[sid] = paths[sid]
        else:
            todo.append(j)
    runner = BatchedModel(model, [filepaths[j] for j in todo], batch_size)

    def store(j: int, scores) -> int:
        out = check_model_output(scores, num_classes=None, where="model output")
        return write_probs_npz(paths[ids[j]], quantize_probs(out, logits=logits))

    try:
        with fou.ProgressBar(total=len(todo), progress=progress, iters_str="images") as pb, ThreadPoolExecutor(
            2, thread_name_prefix="segqual-save"
        ) as writer:
            queue = []

            def finish(entry) -> None:
                j, fut = entry
                sid = ids[j]
                try:
                    result.bytes_written += fut.result()
                except Exception as e:  # reported per sample below
                    _fail(result, sid, filepaths[j], e, skip_failures)
                else:
                    result.num_written += 1
                    pending_paths[sid] = paths[sid]
                    if len(pending_paths) >= _COMMIT_EVERY:
                        commit()
                pb.update()

            try:
                for n, j in enumerate(todo):
                    try:
                        scores = runner.get(n)
                    except Exception as e:  # reported per sample
                        while queue:
                            finish(queue.pop(0))
                        _fail(result, ids[j], filepaths[j], e, skip_failures)
                        pb.update()
                        continue
                    queue.append((j, writer.submit(store, j, scores)))
                    while len(queue) > 4:
                        finish(queue.pop(0))
                while queue:
                    finish(queue.pop(0))
            except BaseException:
                # a failure stops the call: the later samples' files written meanwhile are recorded too
                for j, fut in queue:
                    if fut.exception() is None:
                        pending_paths[ids[j]] = paths[ids[j]]
                raise
    finally:
        runner.close()
        commit()
    return result


def _fail(result: SavedProbabilities, sample_id: str, filepath: str, error: BaseException, skip: bool) -> None:
    error = as_sample_error(error, f"sample {sample_id} ({filepath})")
    if not skip:
        raise error
    result.failures.append(Failure(sample_id, filepath, str(error)))


__all__ = ["PROBS_KEY", "SavedProbabilities", "probs_file", "save_probabilities"]
