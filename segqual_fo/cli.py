"""The ``segqual`` command line.

Subcommands: ``demo``, ``import-coco``, ``score``, ``report``, ``app``. Data
goes to stdout, logs and progress to stderr; bad input exits with code 2 and
a one-line message, never a traceback.

stdout carries only what a command prints as its result (:func:`_out`):
while a command runs, everything else written to stdout (FiftyOne's notices
and progress bars, and at the file-descriptor level the output of processes
it starts, such as mongod) goes to stderr, so ``segqual report --format
json | jq .`` works in a fresh process.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import sys
from typing import List, Optional, Sequence

import numpy as np

from segqual_fo.errors import SegQualError

PROG = "segqual"
DEMO_NAME = "segqual-demo"
#: Score fields of the demo (and the suggested pair for any dataset).
DEMO_FIELDS = {"softmin": "label_quality", "num_pixel_issues": "label_quality_cl"}


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
            _DATA = io.TextIOWrapper(io.FileIO(os.dup(saved_fd), "w"), encoding=original.encoding, errors=original.errors, line_buffering=True)
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
        raise CommandError(
            f"no dataset named {name!r}; existing datasets: {', '.join(sorted(fo.list_datasets())) or 'none'}."
        )
    return fo.load_dataset(name)


def _plugins_dir() -> Optional[str]:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(here, "plugins")
    return path if os.path.isdir(os.path.join(path, "label-quality")) else None


def enable_plugin() -> Optional[str]:
    """Adds the repository's ``plugins/`` to FIFTYONE_PLUGINS_DIR (before
    FiftyOne is imported, so the App server inherits it). Returns the dir."""
    path = _plugins_dir()
    if path is None:
        return None
    current = os.environ.get("FIFTYONE_PLUGINS_DIR")
    if not current:
        os.environ["FIFTYONE_PLUGINS_DIR"] = path
    elif path not in current.split(os.pathsep):
        # FiftyOne reads one plugins directory; keep the user's and tell them
        return None
    if "fiftyone" in sys.modules:
        sys.modules["fiftyone"].config.plugins_dir = os.environ["FIFTYONE_PLUGINS_DIR"]
    return path


# --------------------------------------------------------------------------
# formatting


def _fmt(x, digits=4) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _table(rows: List[dict], columns: Sequence[str]) -> str:
    cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[j]) for row in cells]) for j, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(widths[j]) for j, c in enumerate(columns))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(widths[j]) for j, v in enumerate(row)) for row in cells]
    return "\n".join(lines)


def _summary(dataset_or_view, res) -> str:
    scores = np.array([s for s in dataset_or_view.values(res.score_field) if s is not None], dtype=float)
    lines = [
        f"scored {res.num_scored} of {res.num_samples} images with {res.method} "
        f"(field {res.score_field!r}); failures: {len(res.failures)}; "
        f"undefined (all pixels ignored): {res.num_undefined}",
    ]
    if scores.size:
        q = np.quantile(scores, [0, 0.1, 0.5, 0.9, 1])
        lines.append("score quantiles  min %.4f  p10 %.4f  median %.4f  p90 %.4f  max %.4f" % tuple(q))
    for f in res.failures[:10]:
        lines.append(f"  failed: {f.sample_id} {f.filepath}: {f.reason}")
    if len(res.failures) > 10:
        lines.append(f"  ... and {len(res.failures) - 10} more failures")
    worst = ranked_rows(dataset_or_view, res.score_field, 10)
    if worst:
        lines.append("10 worst images:")
        lines.append(_table(worst, ["score", "issue_pixels", "filepath", "top_confusions"]))
    return "\n".join(lines)


def ranked_rows(sample_collection, score_field: str, top: Optional[int]) -> List[dict]:
    """The worst ``top`` images: id, filepath, score, issue pixels and their
    most common given->predicted class confusions (from the regions)."""
    from segqual_fo.pipeline import output_fields

    f = output_fields(score_field)
    view = sample_collection.exists(score_field).sort_by(score_field)
    if top is not None:
        view = view.limit(top)
    fields = ["id", "filepath", score_field, f["num_issues"]]
    ids, paths, scores, counts = view.values(fields)
    has_regions = sample_collection.has_field(f["regions"])
    regions = view.values(f["regions"]) if has_regions else [None] * len(ids)
    rows = []
    for sid, path, score, n, reg in zip(ids, paths, scores, counts, regions):
        conf = {}
        for d in (reg.detections if reg is not None else []):
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


# --------------------------------------------------------------------------
# demo


def _demo_records_from_dir(data_dir, out_dir, *, classes, ignore, probs_key, error_rate, seed, limit):
    """Real images/labels/probabilities from ``data_dir`` with planted errors
    written to copies of the label masks in ``out_dir``."""
    import cv2

    from segqual_fo.demo import ERROR_KINDS, plant_error

    img_dir, lab_dir, prob_dir = (os.path.join(data_dir, d) for d in ("images", "labels", "pred_probs"))
    for d in (img_dir, lab_dir, prob_dir):
        if not os.path.isdir(d):
            raise CommandError(f"--data {data_dir}: missing {os.path.basename(d)}/ (expected images/, labels/, pred_probs/).")
    probs_by_stem = {os.path.splitext(n)[0]: os.path.join(prob_dir, n) for n in os.listdir(prob_dir) if n.endswith((".npz", ".npy"))}
    stems = sorted(os.path.splitext(n)[0] for n in os.listdir(img_dir) if n.lower().endswith((".png", ".jpg", ".jpeg")))
    stems = [s for s in stems if s in probs_by_stem and os.path.isfile(os.path.join(lab_dir, s + ".png"))]
    if limit:
        stems = stems[:limit]
    if not stems:
        raise CommandError(f"--data {data_dir}: no image has both a labels/<stem>.png and pred_probs/<stem>.npz|npy.")
    rng = np.random.default_rng(seed)
    planted_idx = set(rng.choice(len(stems), size=int(round(len(stems) * error_rate)), replace=False).tolist())
    os.makedirs(os.path.join(out_dir, "labels"), exist_ok=True)
    records = []
    for i, stem in enumerate(stems):
        labels = cv2.imread(os.path.join(lab_dir, stem + ".png"), cv2.IMREAD_UNCHANGED)
        kind = None
        if i in planted_idx:
            kind = ERROR_KINDS[i % len(ERROR_KINDS)]
            if not plant_error(rng, labels, kind, classes=tuple(range(len(classes))), ignore=tuple(ignore)):
                kind = None
        mask_path = os.path.join(out_dir, "labels", stem + ".png")
        cv2.imwrite(mask_path, labels)
        img = [n for n in os.listdir(img_dir) if os.path.splitext(n)[0] == stem][0]
        records.append(dict(filepath=os.path.join(img_dir, img), mask_path=mask_path, probs_path=probs_by_stem[stem], planted=kind))
    return records


def cmd_demo(args) -> int:
    enable_plugin()
    fo = _fo()
    from segqual_fo.core import METHODS
    from segqual_fo.demo import CLASSES, build_demo_files
    from segqual_fo.evaluation import ranking_report
    from segqual_fo.pipeline import compute_label_quality

    out_dir = os.path.abspath(args.output_dir or os.path.join(fo.config.default_dataset_dir, "segqual", args.name))
    if args.data:
        classes = _read_classes(args.data, args.classes)
        ignore = [int(v) for v in args.ignore] if args.ignore else []
        records = _demo_records_from_dir(
            args.data, out_dir, classes=classes, ignore=ignore, probs_key=args.probs_key,
            error_rate=args.error_rate, seed=args.seed, limit=args.num_samples,
        )
    else:
        classes, ignore = CLASSES, []
        _err(f"building {args.num_samples} synthetic scenes in {out_dir} ...")
        records = build_demo_files(out_dir, args.num_samples or 60, error_rate=args.error_rate, seed=args.seed)
    if args.name in fo.list_datasets():
        fo.delete_dataset(args.name)
    ds = fo.Dataset(args.name, persistent=True)
    ds.add_samples(
        [
            fo.Sample(
                filepath=r["filepath"],
                ground_truth=fo.Segmentation(mask_path=r["mask_path"]),
                pred_probs_path=r["probs_path"],
                planted=r["planted"] is not None,
                planted_kind=r["planted"],
            )
            for r in records
        ],
        progress=False,
    )
    ds.mask_targets = {"ground_truth": dict(enumerate(classes))}
    planted = np.array(ds.values("planted"), dtype=bool)
    reports = {}
    for method in METHODS:
        _err(f"scoring with {method} ...")
        compute_label_quality(
            ds, "ground_truth", probs_field="pred_probs_path", probs_key=args.probs_key,
            ignore_index=ignore or None, method=method, score_field=DEMO_FIELDS[method],
            output_dir=os.path.join(out_dir, "outputs"), skip_failures=True, progress=not args.quiet,
        )
        reports[method] = ranking_report(ds.values(DEMO_FIELDS[method]), planted, ks=(10,))
    sm, cl = DEMO_FIELDS["softmin"], DEMO_FIELDS["num_pixel_issues"]
    view = ds.sort_by(sm).limit(args.top)
    rows = [
        dict(rank=i + 1, softmin=a, issue_count=b, planted=k or "-", file=os.path.basename(p))
        for i, (a, b, k, p) in enumerate(zip(*view.values([sm, cl, "planted_kind", "filepath"])))
    ]
    _out(f"dataset {args.name!r}: {len(ds)} images, {int(planted.sum())} with a planted annotation error\n")
    _out(f"worst {args.top} images by softmin score (lower = worse):")
    _out(_table(rows, ["rank", "softmin", "issue_count", "planted", "file"]))
    _out("\nhow well each method ranks the planted errors first:")
    _out(_table(
        [dict(method=m, **{k: v for k, v in r.items()}) for m, r in reports.items()],
        ["method", "auroc", "average_precision", "r_precision", "precision@10"],
    ))
    _out(f"\nopen it in the App: segqual app {args.name}")
    if args.app:
        return _launch_app(ds, sm, args.port, wait=not args.no_wait)
    return 0


def _read_classes(data_dir, classes_arg) -> List[str]:
    if classes_arg:
        return [c.strip() for c in classes_arg.split(",")]
    path = os.path.join(data_dir, "classes.txt")
    if os.path.isfile(path):
        with open(path) as f:
            return [line.strip() for line in f if line.strip()]
    raise CommandError(f"--data {data_dir}: give the class names with --classes a,b,c or a classes.txt (one per line, in probability-channel order).")


# --------------------------------------------------------------------------
# import-coco


def cmd_import_coco(args) -> int:
    fo = _fo()
    import cv2

    from segqual_fo.adapters.coco import coco_annotations_to_label_mask, coco_classes, load_coco
    from segqual_fo.adapters.probs import check_layout

    check_layout(args.layout)
    if not os.path.isdir(args.images_dir):
        raise CommandError(f"images directory {args.images_dir} does not exist.")
    if args.probs_dir and not os.path.isdir(args.probs_dir):
        raise CommandError(f"--probs-dir {args.probs_dir} does not exist.")
    if args.name in fo.list_datasets():
        if not args.overwrite:
            raise CommandError(f"dataset {args.name!r} exists; pass --overwrite to replace it.")
        fo.delete_dataset(args.name)
    coco = load_coco(args.annotations_json)
    names, index = coco_classes(coco)
    masks_dir = os.path.abspath(args.masks_dir or os.path.join(fo.config.default_dataset_dir, "segqual", args.name, "masks"))
    os.makedirs(masks_dir, exist_ok=True)
    probs = {}
    if args.probs_dir:
        for n in os.listdir(args.probs_dir):
            stem, ext = os.path.splitext(n)
            if ext in (".npy", ".npz"):
                probs[stem] = os.path.abspath(os.path.join(args.probs_dir, n))
    samples, missing_images, missing_probs = [], [], []
    for img in coco.dataset.get("images", []):
        path = os.path.join(args.images_dir, img["file_name"])
        if not os.path.isfile(path):
            missing_images.append(img["file_name"])
            continue
        mask = coco_annotations_to_label_mask(coco, img["id"], index)
        mask_path = os.path.join(masks_dir, f"{int(img['id'])}.png")
        cv2.imwrite(mask_path, mask)
        stem = os.path.splitext(os.path.basename(img["file_name"]))[0]
        sample = fo.Sample(filepath=os.path.abspath(path), ground_truth=fo.Segmentation(mask_path=mask_path), coco_id=int(img["id"]))
        if args.probs_dir:
            if stem in probs:
                sample["pred_probs_path"] = probs[stem]
            else:
                missing_probs.append(img["file_name"])
        samples.append(sample)
    if not samples:
        raise CommandError(f"none of the {len(coco.dataset.get('images', []))} images in the JSON was found in {args.images_dir}.")
    ds = fo.Dataset(args.name, persistent=True)
    ds.add_samples(samples, progress=False)
    ds.mask_targets = {"ground_truth": dict(enumerate(names))}
    ds.info = {"segqual_import": dict(annotations=os.path.abspath(args.annotations_json), void_value=255, probs_key=args.probs_key, layout=args.layout)}
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
# score


def cmd_score(args) -> int:
    ds = _load_dataset(args.dataset)
    view = ds.match_tags(args.view_tag) if args.view_tag else ds
    if args.view_tag and not len(view):
        raise CommandError(f"no sample of {args.dataset!r} has the tag {args.view_tag!r}.")
    ignore = [_int_or_str(v) for v in args.ignore] if args.ignore else None
    with _executor(args) as executor:
        res = _score(view, args, ignore, executor)
    _out(_summary(view, res))
    return 1 if res.failures and args.fail_on_errors else 0


def _executor(args):
    """No executor, a local Dask cluster of --workers processes, or the
    scheduler at --scheduler."""
    import contextlib

    if args.workers is None and args.scheduler is None:
        return contextlib.nullcontext(None)
    from segqual_fo import distributed

    if args.scheduler is not None:
        return contextlib.nullcontext(args.scheduler)
    if args.workers < 1:
        raise CommandError(f"--workers must be at least 1, got {args.workers}.")
    if not args.quiet:
        _err(f"starting a local Dask cluster of {args.workers} worker processes")
    return distributed.local_cluster(args.workers)


def _score(view, args, ignore, executor):
    from segqual_fo.pipeline import compute_label_quality

    return compute_label_quality(
        view,
        args.label_field,
        probs_field=args.probs_field,
        probs_dir=args.probs_dir,
        probs_key=args.probs_key,
        layout=args.layout,
        logits=args.logits,
        resize=args.resize,
        classes=[c.strip() for c in args.classes.split(",")] if args.classes else None,
        ignore_index=ignore,
        method=args.method,
        temperature=args.temperature,
        score_field=args.score_field,
        output_dir=args.output_dir,
        overwrite=args.overwrite,
        skip_failures=not args.fail_fast,
        resume=args.resume,
        progress=not args.quiet,
        executor=executor,
        shard_size=args.shard_size,
    )


def _int_or_str(v: str):
    try:
        return int(v)
    except ValueError:
        return v


# --------------------------------------------------------------------------
# report


def cmd_report(args) -> int:
    ds = _load_dataset(args.dataset)
    if not ds.has_field(args.score_field):
        raise CommandError(f"dataset {args.dataset!r} has no field {args.score_field!r}; run segqual score first.")
    rows = ranked_rows(ds, args.score_field, args.top)
    confusion = []
    classes = None
    if args.score_field in ds.list_runs():
        info = ds.get_run_info(args.score_field)
        classes = getattr(info.config, "classes", None)
        try:
            results = ds.load_run_results(args.score_field)
            m = np.array(getattr(results, "confusion", []))
            if m.size and classes:
                from segqual_fo.core import confusion_rows

                confusion = confusion_rows(m, class_names=classes, top=20)
        except Exception as e:  # a report without the table is still useful
            _err(f"could not load the run results of {args.score_field!r}: {e}")
    if args.tag_worst:
        if not args.tag:
            raise CommandError("--tag-worst needs --tag NAME.")
        view = ds.exists(args.score_field).sort_by(args.score_field).limit(args.tag_worst)
        view.tag_samples(args.tag)
        _err(f"tagged {len(view)} samples {args.tag!r}")
    text = _render_report(args.format, ds, args.score_field, rows, confusion)
    if args.output:
        mode = "wb" if isinstance(text, bytes) else "w"
        with open(args.output, mode) as f:
            f.write(text)
        _err(f"wrote {args.output}")
    else:
        if isinstance(text, bytes):
            raise CommandError("--format html needs --output FILE.")
        _out(text.rstrip("\n"))
    return 0


def _render_report(fmt, ds, score_field, rows, confusion):
    cols = ["id", "filepath", "score", "issue_pixels", "top_confusions"]
    if fmt == "json":
        return json.dumps({"dataset": ds.name, "score_field": score_field, "images": rows, "confusion": confusion}, indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow(r)
        return buf.getvalue()
    if fmt == "html":
        from segqual_fo.report import html_report

        return html_report(ds, score_field, rows, confusion)
    out = [f"dataset {ds.name!r}, field {score_field!r}: {len(rows)} worst images", _table(rows, cols)]
    if confusion:
        out += ["", "given -> predicted class confusions among issue pixels:", _table(confusion, ["given_label", "predicted_label", "num_pixel_issues"])]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------
# app


def _launch_app(ds, score_field, port, wait=True) -> int:
    fo = _fo()
    view = ds.exists(score_field).sort_by(score_field) if ds.has_field(score_field) else ds.view()
    session = fo.launch_app(view, port=port, remote=True, address="127.0.0.1" if port is None else "127.0.0.1")
    _err(f"the App is at {session.url} (worst images first); press Ctrl+C to stop")
    if wait:
        try:
            session.wait(-1)
        except KeyboardInterrupt:
            pass
    return 0


def cmd_app(args) -> int:
    plugin = enable_plugin()
    if plugin is None:
        _err("note: the label-quality plugin was not found next to the package; the App opens without it")
    name = args.dataset
    if name == "demo" and name not in _fo().list_datasets():
        name = DEMO_NAME  # `segqual app demo` opens what `segqual demo` built
    ds = _load_dataset(name)
    return _launch_app(ds, args.score_field, args.port, wait=not args.no_wait)


# --------------------------------------------------------------------------
# parser


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=fmt,
        description="Find wrong labels in semantic-segmentation datasets and curate them in FiftyOne.",
        epilog="examples:\n  segqual demo\n  segqual score my-ds --label-field ground_truth --probs-field probs_path\n  segqual report my-ds --top 20\n  segqual app my-ds",
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
    c.add_argument("--layout", default="KHW", choices=["KHW", "HWK"])
    c.add_argument("--masks-dir", help="where the semantic mask PNGs go")
    c.add_argument("--overwrite", action="store_true", help="replace an existing dataset of that name")
    c.set_defaults(func=cmd_import_coco)

    s = sub.add_parser("score", help="score a dataset's labels and write the fields", formatter_class=fmt,
                       epilog="examples:\n  segqual score my-ds --label-field ground_truth --probs-field probs_path\n  segqual score my-ds --label-field gt --probs-dir probs/ --probs-key probs_u8 --ignore 255 void --method num_pixel_issues --score-field lq_cl\n  segqual score my-ds --label-field gt --probs-field probs_path --workers 4\n  segqual score my-ds --label-field gt --probs-field probs_path --scheduler tcp://10.0.0.5:8786")
    s.add_argument("dataset")
    s.add_argument("--label-field", required=True)
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--probs-field", help="string field with each sample's probability file")
    g.add_argument("--probs-dir", help="directory of probability files named like the images")
    s.add_argument("--probs-key", help="array name in .npz files")
    s.add_argument("--layout", default="KHW", choices=["KHW", "HWK"])
    s.add_argument("--logits", action="store_true", help="files hold logits: apply a softmax")
    s.add_argument("--resize", action="store_true", help="resize lower-resolution probabilities to the mask")
    s.add_argument("--classes", help="comma-separated class names in probability-channel order")
    s.add_argument("--method", default="softmin", choices=["softmin", "num_pixel_issues"])
    s.add_argument("--temperature", type=float, default=0.1)
    s.add_argument("--ignore", nargs="*", default=None, help="mask values or class names to ignore (255 is ignored unless it is a class)")
    s.add_argument("--score-field", default="label_quality")
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
    s.set_defaults(func=cmd_score)

    r = sub.add_parser("report", help="ranked images, class confusions, tagging, HTML summary", formatter_class=fmt,
                       epilog="examples:\n  segqual report my-ds --top 20\n  segqual report my-ds --format csv --output worst.csv\n  segqual report my-ds --tag-worst 50 --tag review\n  segqual report my-ds --format html --output report.html")
    r.add_argument("dataset")
    r.add_argument("--score-field", default="label_quality")
    r.add_argument("--top", type=int, default=20)
    r.add_argument("--format", default="table", choices=["table", "csv", "json", "html"])
    r.add_argument("--output", help="write to this file instead of stdout")
    r.add_argument("--tag-worst", type=int, default=0, help="tag the K worst images")
    r.add_argument("--tag", help="the tag for --tag-worst")
    r.set_defaults(func=cmd_report)

    a = sub.add_parser("app", help="open the FiftyOne App, worst images first, with the plugin", formatter_class=fmt,
                       epilog="examples:\n  segqual app demo          (the dataset `segqual demo` built)\n  segqual app my-ds --score-field label_quality_cl")
    a.add_argument("dataset")
    a.add_argument("--score-field", default="label_quality")
    a.add_argument("--port", type=int, default=None)
    a.add_argument("--no-wait", action="store_true", help=argparse.SUPPRESS)
    a.set_defaults(func=cmd_app)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with _stdout_for_data_only():
            return int(args.func(args) or 0)
    except (SegQualError, ValueError, OSError) as e:
        _err(f"{PROG} {args.command}: error: {e}")
        return 2
    except KeyboardInterrupt:
        _err(f"{PROG}: interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
