"""Score a FiftyOne dataset or view and write the answer back for the App.

:func:`compute_label_quality` reads as its steps: validate the options,
resolve the inputs from the collection (:mod:`~segqual_fo.fo.inputs`),
take the key's lock and record the run (:mod:`~segqual_fo.fo.runs`), run
the per-image job here or on Dask (:mod:`segqual_fo.execution`), commit the
records as they arrive (:mod:`~segqual_fo.fo.writeback`), and record the
completed run with its totals.

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
                                    ``confidence`` that it is an annotation
                                    error, see :mod:`segqual_fo.core.regions`;
                                    ``predicted_label``, ``area``,
                                    ``mean_score`` and the evidence
                                    ``min_score``, ``ring_given``,
                                    ``ring_predicted``, ``ring_score``,
                                    ``thickness``)
=================================  =========================================
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

import fiftyone.core.utils as fou

from segqual_fo.adapters.models import check_model, describe_model
from segqual_fo.core._inputs import check_positive_int
from segqual_fo.execution.job import ModelInput, OutputSpec, ScoringJob
from segqual_fo.execution.local import run_local
from segqual_fo.fo.checkpoint import RunCheckpoint
from segqual_fo.fo.commit import FieldCommitter, sweep_orphans
from segqual_fo.fo import documents
from segqual_fo.fo.confidence import write_region_confidence
from segqual_fo.fo.inputs import ResolvedInputs, resolve_inputs
from segqual_fo.fo.review import review_marks
from segqual_fo.fo.runlock import RunLock
from segqual_fo.fo.runs import check_overwrite, record_run, resume_state
from segqual_fo.fo.writeback import (
    Collector,
    Failure,
    default_output_dir,
    finish_dataset,
    old_files,
    referenced_files,
    remove_stale_caches,
)
from segqual_fo.options import DEFAULTS, ScoringOptions, check_batch_size, check_label_field, check_probs_source
from segqual_fo.writers.files import make_output_dir


@dataclass
class LabelQualityResults:
    """What :func:`compute_label_quality` did.

    Attributes:
        score_field: the run key and score field name
        fields: output field names (see :func:`segqual_fo.options.output_fields`)
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


def compute_label_quality(
    sample_collection,
    label_field: str,
    *,
    probs_field: Optional[str] = None,
    probs_dir: Optional[str] = None,
    model: Any = None,
    batch_size: Optional[int] = None,
    probs_key: Optional[str] = None,
    layout: str = DEFAULTS["layout"],
    logits: bool = False,
    resize: bool = False,
    classes: Optional[Sequence[str]] = None,
    ignore_index: Any = None,
    method: str = DEFAULTS["method"],
    temperature: float = DEFAULTS["temperature"],
    downsample: int = DEFAULTS["downsample"],
    issue_threshold: float = DEFAULTS["issue_threshold"],
    score_field: str = DEFAULTS["score_field"],
    output_dir: Optional[str] = None,
    overwrite: bool = False,
    skip_failures: bool = False,
    min_region_area: int = DEFAULTS["min_region_area"],
    resume: bool = False,
    commit_every: int = DEFAULTS["commit_every"],
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
        model (None): or a model to run on each sample's image (its
            ``filepath``): a callable taking a list of H x W x 3 uint8 RGB
            arrays and returning one (K, h, w) array of class scores per
            image, at any resolution (read at the mask's size as with
            ``resize=True``; ``logits=True`` for logits). See
            :func:`segqual_fo.onnx_model`, :func:`segqual_fo.fiftyone_model`
            and :class:`segqual_fo.LazyModel` (needed with ``executor``).
            Each image runs through the model once, for both methods (the
            issue count keeps what its last pass needs); its outputs equal
            files holding the same arrays, bit for bit. A resumed issue
            count runs the whole collection again (its thresholds are
            dataset-wide)
        batch_size (8): images per model call (with ``model``)
        probs_key (None): the array name inside .npz files
        layout ("KHW"): "KHW" (classes first) or "HWK" (classes last)
        logits (False): the files hold logits; apply a softmax
        resize (False): read probabilities of another resolution at the
            mask's size (bilinear, renormalised) instead of failing; they
            are interpolated on the fly, exactly, in memory bounded by the
            mask's area (:class:`~segqual_fo.core.resample.LowResProbs`)
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
            ``score_field`` (with the same settings): only samples it did
            not commit are written. Softmin reads only those, when the
            run's checkpoint covers the committed ones; the issue count
            reads every image, since its thresholds are dataset-wide
        commit_every (64): samples per database commit; each sample's
            fields are written in one atomic update
        progress (None): FiftyOne progress convention: None (default
            config), True/False, or a callable receiving the progress bar
        n_jobs (None): worker threads for reading and scoring (in this
            process; ignored with ``executor``)
        executor (None): score on a Dask cluster instead of in this
            process: a ``dask.distributed.Client`` or a scheduler address
            (see :mod:`segqual_fo.execution.dask`). Workers read masks and
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
        RunLockedError: another run is writing ``score_field`` right now

    Example::

        import fiftyone as fo
        import segqual_fo

        dataset = fo.load_dataset("my-dataset")
        results = segqual_fo.compute_label_quality(
            dataset, "ground_truth", probs_field="probs_path", ignore_index=255
        )
        view = dataset.sort_by("label_quality")   # worst first
    """
    # 1. validate
    opts = ScoringOptions.validate(
        method=method, temperature=temperature, downsample=downsample, issue_threshold=issue_threshold,
        min_region_area=min_region_area, layout=layout, logits=logits, resize=resize, probs_key=probs_key,
        score_field=score_field, commit_every=commit_every, shard_size=shard_size,
    )  # fmt: skip
    check_probs_source(probs_field, probs_dir, model)
    check_label_field(label_field, score_field)
    if executor is None:  # here, not when the stream starts: by then the run is recorded as running
        check_positive_int(n_jobs, "n_jobs")
    model_input = None
    if model is not None:
        model_input = ModelInput(
            check_model(model, distributed=executor is not None), logits=bool(logits), batch_size=check_batch_size(batch_size)
        )
    if executor is not None:
        from segqual_fo.execution.dask import check_executor

        check_executor(executor)
    dataset = sample_collection._dataset
    check_overwrite(dataset, opts.fields, overwrite, score_field)

    # 2. resolve the inputs
    resolved = resolve_inputs(
        sample_collection, label_field, probs_field=probs_field, probs_dir=probs_dir, probs_key=probs_key,
        layout=layout, classes=classes, ignore_index=ignore_index, model=model_input,
    )  # fmt: skip
    output_dir = os.path.abspath(output_dir or default_output_dir(dataset))
    settings = _settings(opts, label_field, probs_field, probs_dir, resolved, output_dir, model)

    # 3.-5. connected to the cluster (if any) and under the key's lock:
    # record, run, write back, record the totals
    with _connected(executor) as client, RunLock(dataset, score_field) as lock:
        ids = resolved.inputs.ids
        previous = old_files(sample_collection, opts.fields, ids)
        token, done = resume_state(dataset, score_field, previous, resume, settings)
        resolved.inputs.done = done
        record_run(sample_collection, score_field, token=token, status="running", lock=lock.owner, **settings)
        marks = review_marks(sample_collection, opts.fields["regions"])
        collector, stream = _prepare(dataset, opts, resolved, previous, token, skip_failures, marks)
        job = _job(opts, resolved, output_dir, token, model_input)
        make_output_dir(output_dir, score_field)  # once, not per PNG (writers recreate it if it vanishes)
        if opts.method == "num_pixel_issues":
            # next to the outputs (on shared storage for Dask): a killed
            # run's cache is found and removed by the next run
            remove_stale_caches(os.path.dirname(job.cache_dir), keep=token)

        def progress_bar(total):
            return fou.ProgressBar(total=total, progress=progress, iters_str="images")

        if client is None:
            run_local(job, resolved.inputs, stream, collector, progress_bar, n_jobs)
        else:
            from segqual_fo.execution.dask import run_on_dask

            run_on_dask(client, job, resolved.inputs, stream, collector, progress_bar, shard_size=opts.shard_size)
        collector.committer.flush()
        k = len(resolved.classes)
        # dataset-aware region confidence: needs every image's issue pixels
        write_region_confidence(sample_collection, opts.fields, resolved.classes, collector.confusion.reshape(k, k))

        finish_dataset(dataset, opts.fields, resolved.classes)
        sweep_orphans(os.path.join(output_dir, score_field), referenced_files(sample_collection, opts.fields), set(ids))
        confusion = collector.confusion.reshape(k, k)
        record_run(
            sample_collection, score_field, token=token, status="completed", confusion=confusion,
            failures=collector.failures, **settings,
        )  # fmt: skip
    return LabelQualityResults(
        score_field=score_field,
        fields=opts.fields,
        method=opts.method,
        classes=resolved.classes,
        num_samples=len(ids),
        num_scored=len(ids) - len(collector.failures),
        num_undefined=collector.num_undefined,
        failures=collector.failures,
        confusion=confusion,
        output_dir=output_dir,
    )


def _connected(executor):
    """The Dask client for ``executor`` (connected before anything is
    recorded, so an unreachable scheduler leaves no trace), or None."""
    if executor is None:
        return contextlib.nullcontext(None)
    from segqual_fo.execution.dask import connect

    return connect(executor)


def _settings(opts, label_field, probs_field, probs_dir, resolved: ResolvedInputs, output_dir, model=None) -> Dict[str, Any]:
    """What the run record holds (and resume compares)."""
    classes = resolved.classes
    mapping = resolved.mapping
    if model is not None:
        probs = dict(model=describe_model(model), logits=opts.logits, resize=True)
    else:
        probs = dict(
            probs_field=probs_field, probs_dir=probs_dir, probs_key=opts.probs_key, layout=opts.layout,
            logits=opts.logits, resize=opts.resize,
        )  # fmt: skip
    return dict(
        fields=opts.fields,
        method=opts.method,
        temperature=opts.temperature,
        downsample=opts.downsample,
        issue_threshold=opts.issue_threshold,
        min_region_area=opts.min_region_area,
        label_field=label_field,
        probs=probs,
        classes=classes,
        ignore=dict(values=list(mapping.ignore_values), classes=[classes[c] for c in mapping.ignore_classes]),
        output_dir=output_dir,
    )


def _prepare(dataset, opts, resolved: ResolvedInputs, previous, token, skip_failures, marks=None):
    """The collector, and which samples to read (``stream``).

    Softmin reads only the samples left to score when the checkpoint covers
    the committed ones; otherwise, and always for the dataset-wide issue
    count, every sample is read and the committed ones are only counted.
    """
    inputs = resolved.inputs
    n, done = len(inputs.ids), inputs.done
    k = len(resolved.classes)
    checkpoint = RunCheckpoint(dataset, opts.score_field, token)
    saved = checkpoint.load(k) if done and opts.method == "softmin" else None
    initial = saved if saved is not None and saved.describes(list(done)) else None
    if opts.method == "softmin" and (initial is not None or not done):
        stream = [i for i in range(n) if inputs.ids[i] not in done]
    else:
        stream = list(range(n))
    # the values are built here with the right types: no need to validate
    committer = FieldCommitter(dataset, opts.fields, batch_size=opts.commit_every, validate=False)
    collector = Collector(
        committer, opts.fields, previous, resolved.classes, skip_failures, checkpoint, initial, marks=marks
    )
    return collector, stream


def _job(opts, resolved: ResolvedInputs, output_dir: str, token: str, model=None) -> ScoringJob:
    spec = OutputSpec(
        output_dir,
        opts.score_field,
        token,
        opts.min_region_area,
        classes=resolved.classes,
        fast_docs=documents.matches_fiftyone(documents.example_regions()),
    )
    return ScoringJob(
        method=opts.method,
        temperature=opts.temperature,
        downsample=opts.downsample,
        issue_threshold=opts.issue_threshold,
        ignore=resolved.mapping.core_ignore,
        mapping=resolved.mapping,
        probs_opts=dict(key=opts.probs_key, layout=opts.layout, logits=opts.logits, resize=opts.resize),
        decoder=resolved.decoder,
        output=spec,
        cache_dir=os.path.join(output_dir, opts.score_field, f".cache-{token}"),
        model=model,
    )
