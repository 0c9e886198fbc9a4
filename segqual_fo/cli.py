"""The ``segqual`` command line.

Why one module of this size: every subcommand's flags sit next to its
handler, and the handlers only parse, call the library and print.

Subcommands: ``demo``, ``import-coco``, ``predict``, ``score``, ``report``,
``app``, ``plugin install``. The commands only parse flags, call the library
(:mod:`segqual_fo.fo`, :mod:`segqual_fo.demo`, :mod:`segqual_fo.report`) and
print; option rules come from :mod:`segqual_fo.options`.

Output: stdout carries only what a command prints as its result
(:func:`_out`). While a command runs, everything else written to stdout
(FiftyOne's notices and progress bars, and at the file-descriptor level the
output of processes it starts, such as mongod) goes to stderr, so
``segqual report --format json | jq .`` works in a fresh process.

Exit codes: 0 success; 1 some samples failed with ``--fail-on-errors``, or
an unexpected error (a bug: its traceback is printed); 2 the user's mistake
(one line naming it and the fix: our error types and argparse's); 130
interrupted (Ctrl+C).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shlex
import sys
import traceback
from typing import Optional, Sequence

import numpy as np

from segqual_fo import options
from segqual_fo.errors import SegQualError

PROG = "segqual"
DEMO_NAME = "segqual-demo"


class CommandError(SegQualError):
    """A user-facing error of a subcommand (exit code 2)."""


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


#: Where command results go: stdout as it was when :func:`main` started.
_DATA = None


def _out(text: str = "") -> None:
    """Prints a command's result (the only thing that reaches stdout)."""
    stream = _DATA if _DATA is not None else sys.stdout
    stream.write(text + "\n")
    stream.flush()


@contextlib.contextmanager
def _stdout_for_data_only():
    """Sends everything but :func:`_out` from stdout to stderr meanwhile.

    When stdout is the process's file descriptor 1, the descriptor itself is
    redirected (child processes and C code included) and results are written
    to a duplicate of the original; otherwise (stdout replaced, e.g. by a
    test's capture) ``sys.stdout`` is swapped for ``sys.stderr``.
    """
    global _DATA
    original = sys.stdout
    saved_fd = None
    try:
        fd_level = original is sys.__stdout__ and original.fileno() == 1
    except (AttributeError, OSError, ValueError):
        fd_level = False
    try:
        if fd_level:
            original.flush()
            saved_fd = os.dup(1)
            os.dup2(2, 1)
            _DATA = io.TextIOWrapper(
                io.FileIO(os.dup(saved_fd), "w"), encoding=original.encoding, errors=original.errors, line_buffering=True
            )
        else:
            _DATA = original
            sys.stdout = sys.stderr
        yield
    finally:
        if fd_level:
            _DATA.close()
            sys.stdout.flush()
            os.dup2(saved_fd, 1)
            os.close(saved_fd)
        sys.stdout = original
        _DATA = None


def _fo():
    import fiftyone as fo

    return fo


def _load_dataset(name: str):
    fo = _fo()
    if name not in fo.list_datasets():
        names = sorted(fo.list_datasets())
        shown = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
        raise CommandError(f"no dataset named {name!r}; existing datasets: {shown or 'none'}.")
    return fo.load_dataset(name)


# --------------------------------------------------------------------------
# demo


def cmd_demo(args) -> int:
    fo = _fo()
    from segqual_fo.core import METHODS
    from segqual_fo.demo import CLASSES, DEMO_FIELDS, build_demo_files, load_demo_dataset, read_classes, records_from_dir
    from segqual_fo.evaluation import ranking_report
    from segqual_fo.fo.compute import compute_label_quality
    from segqual_fo.report import text_table

    out_dir = os.path.abspath(args.output_dir or os.path.join(fo.config.default_dataset_dir, "segqual", args.name))
    if args.data:
        classes = read_classes(args.data, options.parse_classes(args.classes))
        ignore = options.parse_ignore(args.ignore) or []
        records = records_from_dir(
            args.data, out_dir, classes=classes, ignore=ignore, error_rate=args.error_rate, seed=args.seed,
            limit=args.num_samples,
        )  # fmt: skip
    else:
        classes, ignore = CLASSES, []
        num_samples = args.num_samples or 60
        _err(f"building {num_samples} synthetic scenes in {out_dir} ...")
        records = build_demo_files(out_dir, num_samples, error_rate=args.error_rate, seed=args.seed)
    ds = load_demo_dataset(args.name, records, classes)
    planted = np.array(ds.values("planted"), dtype=bool)
    reports = {}
    for method in METHODS:
        _err(f"scoring with {method} ...")
        compute_label_quality(
            ds, "ground_truth", probs_field="pred_probs_path", probs_key=args.probs_key, ignore_index=ignore or None,
            method=method, score_field=DEMO_FIELDS[method], output_dir=os.path.join(out_dir, "outputs"),
            skip_failures=True, progress=not args.quiet,
        )  # fmt: skip
        reports[method] = ranking_report(ds.values(DEMO_FIELDS[method]), planted, ks=(10,))
    sm, cl = DEMO_FIELDS["softmin"], DEMO_FIELDS["num_pixel_issues"]
    view = ds.sort_by(sm).limit(args.top)
    rows = [
        dict(rank=i + 1, softmin=a, issue_count=b, planted=k or "-", file=os.path.basename(p))
        for i, (a, b, k, p) in enumerate(zip(*view.values([sm, cl, "planted_kind", "filepath"])))
    ]
    _out(f"dataset {args.name!r}: {len(ds)} images, {int(planted.sum())} with a planted annotation error\n")
    _out(f"worst {args.top} images by softmin score (lower = worse):")
    _out(text_table(rows, ["rank", "softmin", "issue_count", "planted", "file"]))
    _out("\nhow well each method ranks the planted errors first:")
    metrics = [dict(method=m, **r) for m, r in reports.items()]
    _out(text_table(metrics, ["method", "auroc", "average_precision", "r_precision", "precision@10"]))
    _out(f"\nopen it in the App: segqual app {args.name}")
    if args.app:
        return _launch_app(ds, sm, args.port, wait=not args.no_wait)
    return 0


# --------------------------------------------------------------------------
# import-coco


def cmd_import_coco(args) -> int:
    fo = _fo()
    import cv2

    from segqual_fo.adapters.coco import coco_annotations_to_label_mask, coco_classes, load_coco

    options.check_layout(args.layout)
    if not os.path.isdir(args.images_dir):
        raise CommandError(f"images directory {args.images_dir} does not exist.")
    probs = {}
    if args.probs_dir:
        probs = {stem: os.path.abspath(p) for stem, p in options.probs_files_by_stem(args.probs_dir).items()}
    if args.name in fo.list_datasets() and not args.overwrite:
        raise CommandError(f"dataset {args.name!r} exists; pass --overwrite to replace it.")
    coco = load_coco(args.annotations_json)
    names, index = coco_classes(coco)
    void = options.void_value(len(names))
    masks_dir = os.path.abspath(args.masks_dir or os.path.join(fo.config.default_dataset_dir, "segqual", args.name, "masks"))
    os.makedirs(masks_dir, exist_ok=True)
    samples, missing_images, missing_probs = [], [], []
    for img in coco.dataset.get("images", []):
        path = os.path.join(args.images_dir, img["file_name"])
        if not os.path.isfile(path):
            missing_images.append(img["file_name"])
            continue
        mask = coco_annotations_to_label_mask(coco, img["id"], index, void=void)
        mask_path = os.path.join(masks_dir, f"{int(img['id'])}.png")
        cv2.imwrite(mask_path, mask)
        sample = fo.Sample(filepath=os.path.abspath(path), ground_truth=fo.Segmentation(mask_path=mask_path), coco_id=int(img["id"]))
        if args.probs_dir:
            stem = options.image_stem(img["file_name"])
            if stem in probs:
                sample["pred_probs_path"] = probs[stem]
            else:
                missing_probs.append(img["file_name"])
        samples.append(sample)
    if not samples:
        raise CommandError(f"none of the {len(coco.dataset.get('images', []))} images in the JSON was found in {args.images_dir}.")
    if args.name in fo.list_datasets():  # --overwrite, and the new one is ready
        fo.delete_dataset(args.name)
    ds = fo.Dataset(args.name, persistent=True)
    ds.add_samples(samples, progress=False)
    ds.mask_targets = {"ground_truth": dict(enumerate(names))}
    ds.info = {
        "segqual_import": dict(
            annotations=os.path.abspath(args.annotations_json), void_value=void, probs_key=args.probs_key, layout=args.layout
        )
    }
    ds.save()
    _out(f"dataset {args.name!r}: {len(samples)} images, {len(names)} classes, masks in {masks_dir}")
    if missing_images:
        _err(f"{len(missing_images)} images in the JSON are not in {args.images_dir} (skipped): {missing_images[:10]}")
    if missing_probs:
        _err(f"{len(missing_probs)} images have no probabilities in {args.probs_dir}: {missing_probs[:10]}")
    if args.probs_dir:
        key = f" --probs-key {args.probs_key}" if args.probs_key else ""
        _out(f"next: segqual score {args.name} --label-field ground_truth --probs-field pred_probs_path{key} --layout {args.layout}")
    return 0


# --------------------------------------------------------------------------
# the ONNX model of predict and score --model

#: How the CLI spells the sources of class scores (for options.check_probs_source).
_SOURCE_FLAGS = ("--probs-field", "--probs-dir", "--model")
#: The flags that say how --model runs (_model_flags).
_MODEL_OPTIONS = ("batch_size", "providers", "mean", "std", "input_size")


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _onnx_model(args):
    """The network of ``--model`` with the model flags, checked but not
    loaded yet (``.build()`` loads it)."""
    from segqual_fo import onnx_model

    path = options.check_model_path(args.model)
    mean, std = options.check_image_normalization(args.mean or (0.0, 0.0, 0.0), args.std or (1.0, 1.0, 1.0))
    options.check_batch_size(args.batch_size)
    return onnx_model(path, providers=args.providers, input_size=options.check_input_size(args.input_size), mean=mean, std=std)


def _size(num_bytes: float) -> str:
    if num_bytes < 1024:
        return f"{num_bytes:.0f} bytes"
    if num_bytes < 1024**2:
        return f"{num_bytes / 1024:.1f} KiB"
    return f"{num_bytes / 1024**2:.1f} MiB"


def _score_command(ds, probs_field: str) -> str:
    """The ``segqual score`` line that scores the stored files (the label
    field filled in when the dataset has only one)."""
    from segqual_fo.fo.queries import label_field_choices, stored_probs_need_resize

    labels = list(label_field_choices(ds))
    argv = [PROG, "score", ds.name, "--label-field", labels[0] if len(labels) == 1 else "LABEL_FIELD",
            "--probs-field", probs_field]  # fmt: skip
    if stored_probs_need_resize(ds, probs_field):
        argv.append("--resize")  # the model's resolution is not the images'
    text = "next: " + shlex.join(argv)
    if len(labels) > 1:
        text += f"\n  (LABEL_FIELD: one of {', '.join(labels)})"
    elif not labels:
        text += "\n  (LABEL_FIELD: the dataset has no Segmentation or Detections field yet)"
    return text


def cmd_predict(args) -> int:
    from segqual_fo.fo.save import save_probabilities

    options.check_field_name(args.probs_field, "--probs-field")
    model = _onnx_model(args)
    ds = _load_dataset(args.dataset)
    model.build()  # a file that does not load is one error (exit 2), not a failure per image
    saved = save_probabilities(
        ds, model, args.probs_dir, probs_field=args.probs_field, logits=args.logits, batch_size=args.batch_size,
        progress=not args.quiet, overwrite=args.overwrite, skip_failures=args.skip_failures,
    )  # fmt: skip
    lines = [
        f"probabilities of {saved.num_samples} images in {saved.probs_dir} (field {saved.probs_field!r}): "
        f"written {saved.num_written}, skipped {saved.num_skipped} (stored before), failed {len(saved.failures)}"
    ]
    if saved.num_written:
        lines.append(
            f"{_size(saved.bytes_written / saved.num_written)} per image written "
            f"({_size(saved.bytes_written)} in all; uint8 .npz at the model's resolution)"
        )
    lines += _failure_lines(saved.failures)
    lines.append(_score_command(ds, saved.probs_field))
    _out("\n".join(lines))
    return 1 if saved.failures and args.fail_on_errors else 0


# --------------------------------------------------------------------------
# score


def _failure_lines(failures, shown: int = 10) -> list:
    lines = [f"  failed: {f.sample_id} {f.filepath}: {f.reason}" for f in failures[:shown]]
    if len(failures) > shown:
        lines.append(f"  ... and {len(failures) - shown} more failures")
    return lines


def _summary(view, res) -> str:
    from segqual_fo.fo.queries import ranked_rows
    from segqual_fo.report import text_table

    scores = np.array([s for s in view.values(res.score_field) if s is not None], dtype=float)
    lines = [
        f"scored {res.num_scored} of {res.num_samples} images with {res.method} "
        f"(field {res.score_field!r}); failures: {len(res.failures)}; "
        f"undefined (all pixels ignored): {res.num_undefined}",
    ]
    if scores.size:
        q = np.quantile(scores, [0, 0.1, 0.5, 0.9, 1])
        lines.append("score quantiles  min %.4f  p10 %.4f  median %.4f  p90 %.4f  max %.4f" % tuple(q))
    lines += _failure_lines(res.failures)
    worst = ranked_rows(view, res.score_field, 10)
    if worst:
        lines.append("10 worst images:")
        lines.append(text_table(worst, ["score", "issue_pixels", "filepath", "top_confusions"]))
    return "\n".join(lines)


def _executor(args):
    """No executor, a local Dask cluster of --workers processes, or the
    scheduler at --scheduler."""
    if args.workers is None and args.scheduler is None:
        return contextlib.nullcontext(None)
    if args.scheduler is not None:
        return contextlib.nullcontext(args.scheduler)
    options.check_workers(args.workers)
    from segqual_fo.execution.dask import local_cluster

    if not args.quiet:
        _err(f"starting a local Dask cluster of {args.workers} worker processes")
    return local_cluster(args.workers)


def cmd_score(args) -> int:
    from segqual_fo.fo.compute import compute_label_quality

    options.check_probs_source(args.probs_field, args.probs_dir, args.model, names=_SOURCE_FLAGS)
    model = _onnx_model(args) if args.model is not None else None
    if model is None:
        unused = [_flag(name) for name in _MODEL_OPTIONS if getattr(args, name) is not None]
        if unused:
            raise CommandError(f"{', '.join(unused)}: model options, for --model only; add --model PATH.onnx or drop them.")
    ds = _load_dataset(args.dataset)
    view = ds.match_tags(args.view_tag) if args.view_tag else ds
    if args.view_tag and not len(view):
        raise CommandError(f"no sample of {args.dataset!r} has the tag {args.view_tag!r}.")
    if model is not None:
        model.build()  # a file that does not load is one error (exit 2), not a failure per image
    with _executor(args) as executor:
        res = compute_label_quality(
            view,
            args.label_field,
            probs_field=args.probs_field,
            probs_dir=args.probs_dir,
            model=model,
            batch_size=args.batch_size,
            probs_key=args.probs_key,
            layout=args.layout,
            logits=args.logits,
            resize=args.resize,
            classes=options.parse_classes(args.classes),
            ignore_index=options.parse_ignore(args.ignore),
            method=args.method,
            temperature=args.temperature,
            downsample=args.downsample,
            issue_threshold=args.issue_threshold,
            min_region_area=args.min_region_area,
            score_field=args.score_field,
            output_dir=args.output_dir,
            overwrite=args.overwrite,
            skip_failures=not args.fail_fast,
            resume=args.resume,
            progress=not args.quiet,
            executor=executor,
            shard_size=args.shard_size,
        )
    _out(_summary(view, res))
    return 1 if res.failures and args.fail_on_errors else 0


# --------------------------------------------------------------------------
# report


def cmd_report(args) -> int:
    from segqual_fo.fo.queries import confusion_table, ranked_rows, worst_first
    from segqual_fo.report import render_report

    ds = _load_dataset(args.dataset)
    if not ds.has_field(args.score_field):
        raise CommandError(f"dataset {args.dataset!r} has no field {args.score_field!r}; run segqual score first.")
    if args.tag_worst and not args.tag:
        raise CommandError("--tag-worst needs --tag NAME.")
    rows = ranked_rows(ds, args.score_field, args.top)
    try:
        confusion = confusion_table(ds, args.score_field, top=20)
    except Exception as e:  # a report without the table is still useful
        _err(f"could not load the run results of {args.score_field!r}: {e}")
        confusion = []
    if args.tag_worst:
        view = worst_first(ds, args.score_field).limit(args.tag_worst)
        view.tag_samples(args.tag)
        _err(f"tagged {len(view)} samples {args.tag!r}")
    text = render_report(args.format, ds, args.score_field, rows, confusion)
    if args.output:
        try:
            with open(args.output, "w") as f:
                f.write(text)
        except OSError as e:
            raise CommandError(f"cannot write --output {args.output}: {e.strerror or e}.") from None
        _err(f"wrote {args.output}")
    else:
        _out(text.rstrip("\n"))
    return 0


# --------------------------------------------------------------------------
# fix


def cmd_fix(args) -> int:
    from segqual_fo.fo.fix import fix_regions

    ds = _load_dataset(args.dataset)
    res = fix_regions(
        ds, args.label_field, score_field=args.score_field, tag=args.tag, min_confidence=args.min_confidence,
        fixed_field=args.fixed_field,
    )  # fmt: skip
    _out(
        f"fixed {res.num_regions} regions in {res.num_samples} samples: {res.num_pixels} pixels changed; "
        f"corrected masks in field {res.fixed_field!r} ({args.label_field!r} is unchanged)"
    )
    if res.num_skipped:
        _out(f"skipped {res.num_skipped} regions already fixed or marked not_an_error")
    if res.files:
        _out(f"files in {os.path.dirname(res.files[0])}")
    return 0


# --------------------------------------------------------------------------
# app and plugin


def _ensure_plugin() -> None:
    """Installs the plugin into FiftyOne's plugins directory if it is not
    there (the App server loads plugins from that one directory)."""
    from segqual_fo.fo.plugin import install_plugin, installed_plugin

    if installed_plugin() is None:
        path = install_plugin()
        _err(f"installed the label-quality plugin: {path}")


def _launch_app(ds, score_field, port, wait=True) -> int:
    from segqual_fo.fo.queries import worst_first

    fo = _fo()
    _ensure_plugin()
    view = worst_first(ds, score_field) if ds.has_field(score_field) else ds.view()
    session = fo.launch_app(view, port=port, remote=True, address="127.0.0.1")
    _err(f"the App is at {session.url} (worst images first); press Ctrl+C to stop")
    if wait:
        try:
            session.wait(-1)
        except KeyboardInterrupt:
            pass
    return 0


def cmd_app(args) -> int:
    name = args.dataset
    if name == "demo" and name not in _fo().list_datasets():
        name = DEMO_NAME  # `segqual app demo` opens what `segqual demo` built
    ds = _load_dataset(name)
    return _launch_app(ds, args.score_field, args.port, wait=not args.no_wait)


def cmd_plugin_install(args) -> int:
    from segqual_fo.fo.plugin import install_plugin

    path = install_plugin(args.dir, link={"link": True, "copy": False}.get(args.mode))
    _out(path)
    if args.dir:
        _err(f"point FiftyOne at it: export FIFTYONE_PLUGINS_DIR={os.path.abspath(args.dir)}")
    return 0


# --------------------------------------------------------------------------
# parser


def _score_flags(s) -> None:
    d = options.DEFAULTS
    s.add_argument("dataset")
    s.add_argument("--label-field", required=True)
    # exactly one, checked by options.check_probs_source (the library's rule and message)
    g = s.add_argument_group("class scores (exactly one of)")
    g.add_argument("--probs-field", help="string field with each sample's probability file")
    g.add_argument("--probs-dir", help="directory of probability files named like the images")
    g.add_argument("--model", metavar="PATH.onnx", help="an ONNX network to run on the images (see the model options)")
    s.add_argument("--probs-key", help="array name in .npz files")
    s.add_argument("--layout", default=d["layout"], choices=options.LAYOUTS)
    s.add_argument("--logits", action="store_true", help="the files (or --model) hold logits: apply a softmax")
    s.add_argument("--resize", action="store_true", help="resize lower-resolution probabilities to the mask")
    s.add_argument("--classes", help="comma-separated class names in probability-channel order")
    s.add_argument("--method", default=d["method"], choices=options.METHODS)
    s.add_argument("--temperature", type=float, default=d["temperature"], help="softmin temperature (default %(default)s)")
    s.add_argument("--downsample", type=int, default=d["downsample"], help="issue-count block size (default %(default)s)")
    s.add_argument("--issue-threshold", type=float, default=d["issue_threshold"],
                   help="softmin: pixels scoring below it whose argmax is another class are issues (default %(default)s)")
    s.add_argument("--min-region-area", type=int, default=d["min_region_area"],
                   help="smallest issue region recorded, in pixels (default %(default)s)")
    s.add_argument("--ignore", nargs="*", default=None, help="mask values or class names to ignore (255 is ignored unless it is a class)")
    s.add_argument("--score-field", default=d["score_field"])
    s.add_argument("--view-tag", help="score only the samples with this tag")
    s.add_argument("--output-dir", help="where heatmap/issue PNGs go")
    s.add_argument("--overwrite", action="store_true", help="replace output fields not written by segqual")
    s.add_argument("--resume", action="store_true", help="finish an interrupted run of this score field (only missing samples)")
    s.add_argument("--fail-fast", action="store_true", help="stop at the first sample that fails")
    s.add_argument("--fail-on-errors", action="store_true", help="exit 1 when some samples failed")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    dk = s.add_mutually_exclusive_group()
    dk.add_argument("--workers", type=int, metavar="N", help="score on a local Dask cluster of N worker processes")
    dk.add_argument("--scheduler", metavar="ADDRESS", help="score on the Dask cluster whose scheduler is at ADDRESS (tcp://host:8786)")
    s.add_argument("--shard-size", type=int, metavar="N", help="samples per Dask task (default: about 4 tasks per worker, at most 64)")
    _model_flags(s)


def _model_flags(p) -> None:
    """How an ONNX network runs: flags of predict and score --model."""
    from segqual_fo.adapters.models import DEFAULT_BATCH_SIZE

    g = p.add_argument_group(
        "model options",
        "the network takes RGB images as (pixel / 255 - mean) / std, shape (N, 3, H, W),\n"
        "and returns class scores (N, K, h, w) at any resolution",
    )
    g.add_argument("--batch-size", type=int, metavar="N", help=f"images per model call (default {DEFAULT_BATCH_SIZE})")
    g.add_argument("--providers", nargs="+", metavar="NAME",
                   help="onnxruntime execution providers, in order of preference (default: CPUExecutionProvider)")
    g.add_argument("--mean", nargs=3, type=float, metavar=("R", "G", "B"),
                   help="input normalisation (default 0 0 0; ImageNet: 0.485 0.456 0.406)")
    g.add_argument("--std", nargs=3, type=float, metavar=("R", "G", "B"),
                   help="input normalisation (default 1 1 1; ImageNet: 0.229 0.224 0.225)")
    g.add_argument("--input-size", nargs=2, type=int, metavar=("H", "W"),
                   help="resize images to H x W for the network (default: its fixed input size, else none)")


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=fmt,
        description="Find wrong labels in semantic-segmentation datasets and curate them in FiftyOne.",
        epilog="examples:\n  segqual demo\n  segqual predict my-ds --model segformer.onnx --probs-dir probs/ --logits\n  segqual score my-ds --label-field ground_truth --probs-field probs_path\n  segqual report my-ds --top 20\n  segqual app my-ds",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    d = sub.add_parser("demo", help="build a dataset with planted errors, score it, show the ranking", formatter_class=fmt,
                       epilog="examples:\n  segqual demo\n  segqual demo --num-samples 200 --app\n  segqual demo --data ../shared/data/camvid-mini --classes Sky,Building,Pole,Road,Pavement,Tree,SignSymbol,Fence,Car,Pedestrian,Bicyclist,void --ignore 11 --probs-key probs_u8")
    d.add_argument("--num-samples", type=int, default=None, help="images (synthetic default 60; with --data, at most this many)")
    d.add_argument("--data", help="a directory with images/, labels/<stem>.png, pred_probs/<stem>.npz|npy")
    d.add_argument("--classes", help="comma-separated class names in probability-channel order (with --data)")
    d.add_argument("--ignore", nargs="*", default=None, help="mask values to ignore (with --data)")
    d.add_argument("--probs-key", default=None, help="array name in .npz files")
    d.add_argument("--error-rate", type=float, default=0.25, help="fraction of images given a planted error")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--name", default=DEMO_NAME, help="dataset name (replaced if it exists)")
    d.add_argument("--output-dir", help="where files go (default under FiftyOne's dataset dir)")
    d.add_argument("--top", type=int, default=10, help="rows of the ranking to print")
    d.add_argument("--app", action="store_true", help="open the App on the result, worst first")
    d.add_argument("--port", type=int, default=None)
    d.add_argument("--no-wait", action="store_true", help=argparse.SUPPRESS)
    d.add_argument("--quiet", action="store_true", help="no progress bars")
    d.set_defaults(func=cmd_demo)

    c = sub.add_parser("import-coco", help="a FiftyOne dataset with semantic masks from COCO annotations", formatter_class=fmt,
                       epilog="example:\n  segqual import-coco annotations/instances_val2017.json images/ --name coco-val --probs-dir probs/ --probs-key probs")
    c.add_argument("annotations_json")
    c.add_argument("images_dir")
    c.add_argument("--name", required=True, help="dataset name")
    c.add_argument("--probs-dir", help="directory of probability files named like the images")
    c.add_argument("--probs-key", help="array name in .npz files")
    c.add_argument("--layout", default=options.DEFAULTS["layout"], choices=options.LAYOUTS)
    c.add_argument("--masks-dir", help="where the semantic mask PNGs go")
    c.add_argument("--overwrite", action="store_true", help="replace an existing dataset of that name")
    c.set_defaults(func=cmd_import_coco)

    pr = sub.add_parser("predict", help="run an ONNX network over the images and store its class probabilities", formatter_class=fmt,
                        description="Stores each image's class probabilities as <probs-dir>/<sample id>.npz (uint8, at the\n"
                                    "model's resolution) and its path in --probs-field. Images whose file exists are skipped,\n"
                                    "so a rerun finishes an interrupted one. Prints the segqual score command for the files.",
                        epilog="examples:\n  segqual predict my-ds --model segformer.onnx --probs-dir probs/ --logits\n  segqual predict my-ds --model net.onnx --probs-dir probs/ --logits --input-size 512 1024 --mean 0.485 0.456 0.406 --std 0.229 0.224 0.225")
    pr.add_argument("dataset")
    pr.add_argument("--model", required=True, metavar="PATH.onnx", help="the ONNX network")
    pr.add_argument("--probs-dir", required=True, metavar="DIR", help="where the .npz files go (created if needed)")
    pr.add_argument("--probs-field", default="pred_probs_path", help="string field for the file paths (default %(default)s)")
    pr.add_argument("--logits", action="store_true", help="the network outputs logits: apply a softmax before storing")
    pr.add_argument("--overwrite", action="store_true",
                    help="run the model again on images whose file exists, and replace other paths in --probs-field")
    pr.add_argument("--skip-failures", action="store_true", help="store the other images when one fails (listed in the summary)")
    pr.add_argument("--fail-on-errors", action="store_true", help="with --skip-failures: exit 1 when some images failed")
    pr.add_argument("--quiet", action="store_true", help="no progress bar")
    _model_flags(pr)
    pr.set_defaults(func=cmd_predict)

    s = sub.add_parser("score", help="score a dataset's labels and write the fields", formatter_class=fmt,
                       epilog="examples:\n  segqual score my-ds --label-field ground_truth --probs-field probs_path\n  segqual score my-ds --label-field gt --probs-dir probs/ --probs-key probs_u8 --ignore 255 void --method num_pixel_issues --score-field lq_cl\n  segqual score my-ds --label-field gt --probs-field probs_path --workers 4\n  segqual score my-ds --label-field gt --probs-field probs_path --scheduler tcp://10.0.0.5:8786\n  segqual score my-ds --label-field gt --model segformer.onnx --logits --batch-size 4")
    _score_flags(s)
    s.set_defaults(func=cmd_score)

    r = sub.add_parser("report", help="ranked images, class confusions, tagging, HTML summary", formatter_class=fmt,
                       epilog="examples:\n  segqual report my-ds --top 20\n  segqual report my-ds --format csv --output worst.csv\n  segqual report my-ds --format json | jq .\n  segqual report my-ds --tag-worst 50 --tag review\n  segqual report my-ds --format html --output report.html")
    r.add_argument("dataset")
    r.add_argument("--score-field", default=options.DEFAULTS["score_field"])
    r.add_argument("--top", type=int, default=20)
    r.add_argument("--format", default="table", choices=["table", "csv", "json", "html"])
    r.add_argument("--output", help="write to this file instead of stdout")
    r.add_argument("--tag-worst", type=int, default=0, help="tag the K worst images")
    r.add_argument("--tag", help="the tag for --tag-worst")
    r.set_defaults(func=cmd_report)

    fx = sub.add_parser("fix", help="write corrected masks: chosen issue regions get the predicted class (a new field)",
                        formatter_class=fmt,
                        epilog="examples:\n  segqual fix my-ds --label-field ground_truth --tag approved\n  segqual fix my-ds --label-field ground_truth --min-confidence 0.9 --fixed-field gt_auto")
    fx.add_argument("dataset")
    fx.add_argument("--label-field", required=True, help="the Segmentation field the run scored (never modified)")
    fx.add_argument("--score-field", default=options.DEFAULTS["score_field"], help="the run whose regions are fixed")
    choose = fx.add_mutually_exclusive_group(required=True)
    choose.add_argument("--tag", help="fix the regions with this label tag")
    choose.add_argument("--min-confidence", type=float, metavar="C", help="fix the regions whose confidence is at least C")
    fx.add_argument("--fixed-field", help="the corrected field (default: LABEL_FIELD_fixed)")
    fx.set_defaults(func=cmd_fix)

    a = sub.add_parser("app", help="open the FiftyOne App, worst images first, with the plugin", formatter_class=fmt,
                       epilog="examples:\n  segqual app demo          (the dataset `segqual demo` built)\n  segqual app my-ds --score-field label_quality_cl")
    a.add_argument("dataset")
    a.add_argument("--score-field", default=options.DEFAULTS["score_field"])
    a.add_argument("--port", type=int, default=None)
    a.add_argument("--no-wait", action="store_true", help=argparse.SUPPRESS)
    a.set_defaults(func=cmd_app)

    pl = sub.add_parser("plugin", help="manage the FiftyOne App plugin", formatter_class=fmt)
    plsub = pl.add_subparsers(dest="plugin_command", metavar="ACTION")
    plsub.required = True
    pi = plsub.add_parser("install", help="put the @segqual/label-quality plugin where FiftyOne looks", formatter_class=fmt,
                          epilog="examples:\n  segqual plugin install                      (into FiftyOne's plugins directory)\n  segqual plugin install --dir ~/my-plugins   (then FIFTYONE_PLUGINS_DIR=~/my-plugins)")
    pi.add_argument("--dir", help="a plugins directory (default: fo.config.plugins_dir, created if needed)")
    mode = pi.add_mutually_exclusive_group()
    mode.add_argument("--link", dest="mode", action="store_const", const="link", help="link to the package's plugin (default for a source checkout)")
    mode.add_argument("--copy", dest="mode", action="store_const", const="copy", help="copy it (default for an installed package)")
    pi.set_defaults(func=cmd_plugin_install)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with _stdout_for_data_only():
            return int(args.func(args) or 0)
    except SegQualError as e:
        _err(f"{PROG} {args.command}: error: {e}")
        return 2
    except KeyboardInterrupt:
        _err(f"{PROG}: interrupted")
        return 130
    except Exception:
        traceback.print_exc()
        _err(f"{PROG} {args.command}: unexpected error (a bug in segqual, or in a library it uses); the traceback is above.")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
