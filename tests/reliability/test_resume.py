"""resume=True: refuses settings that differ from the recorded run, leaves
committed samples untouched (field values and file bytes), and finishes a
run killed before its first commit."""

import os
import signal

import cv2
import numpy as np
import pytest

import fiftyone.core.odm as foo

from segqual_fo import compute_label_quality
from segqual_fo.fo.checkpoint import COLLECTION as CHECKPOINTS
from segqual_fo.writers.files import token_of
from segqual_fo.core import find_label_issues, get_label_quality_scores
from segqual_fo.errors import InvalidInputError
from tests.reliability.children import PARK_IN_PROGRESS, scoring_child, wait_parked

FIELDS = ["label_quality", "label_quality_num_issues", "label_quality_heatmap", "label_quality_issues", "label_quality_regions"]


def _without_confidence(doc):
    """A regions document without ``confidence``: the run's final pass sets
    every region's (dataset-aware) confidence, committed samples' too."""
    if doc is None:
        return None
    return {**doc, "detections": [{k: v for k, v in d.items() if k != "confidence"} for d in doc["detections"]]}


def _snapshot(ds, ids=None, final_pass=False):
    """Per sample: every output field's stored document, last_modified_at,
    and for each referenced PNG its bytes, inode and mtime. ``final_pass``:
    without what the final pass rewrites (region confidences, and so
    last_modified_at)."""
    ds.reload()
    view = ds if ids is None else ds.select(ids)
    out = {}
    for s in view.iter_samples():
        files = {}
        for path in (s.label_quality_heatmap.map_path, s.label_quality_issues.mask_path):
            st = os.stat(path)
            with open(path, "rb") as f:
                files[path] = (f.read(), st.st_ino, st.st_mtime_ns)
        docs = {f: (s[f].to_dict() if hasattr(s[f], "to_dict") else s[f]) for f in FIELDS}
        if final_pass:
            docs["label_quality_regions"] = _without_confidence(docs["label_quality_regions"])
        out[s.id] = (docs, None if final_pass else s.last_modified_at, files)
    return out


def _run(ds, out, **kwargs):
    args = dict(probs_field="probs_path", output_dir=out, progress=False)
    args.update(kwargs)
    return compute_label_quality(ds, "ground_truth", **args)


class _Interrupt(KeyboardInterrupt):
    pass


def _interrupt_at(iteration):
    """A progress callback that stops the run (as Ctrl+C would) there."""

    def progress(pb):
        if pb.iteration >= iteration:
            raise _Interrupt()

    return progress


@pytest.mark.parametrize(
    "change, expected",
    [
        (dict(temperature=0.7), r"temperature: recorded 0\.1, now 0\.7"),
        (dict(method="num_pixel_issues"), r"method: recorded 'softmin', now 'num_pixel_issues'"),
        (dict(ignore_index=[3]), r"ignore\.classes: recorded \[\], now \['3'\]"),
        (dict(classes=["a", "b", "c", "d"]), r"classes: recorded \['0', '1', '2', '3'\]"),
        (dict(resize=True), r"probs\.resize: recorded False, now True"),
        (dict(issue_threshold=0.2), r"issue_threshold: recorded 0\.1, now 0\.2"),
        (dict(downsample=2), r"downsample: recorded 1, now 2"),
        (dict(min_region_area=4), r"min_region_area: recorded 16, now 4"),
        (dict(probs_field=None, probs_dir="PROBS_DIR"), r"probs\.probs_dir: recorded None, now '.*probs'"),
    ],
    ids=["temperature", "method", "ignore", "classes", "resize", "issue_threshold", "downsample", "min_region_area", "probs_dir"],
)
def test_resume_with_other_settings_is_refused(persistent, tmp_path, change, expected):
    ds, labels, probs, ids = persistent
    out = str(tmp_path / "out")
    _run(ds, out, temperature=0.1)
    before = _snapshot(ds)
    info = ds.get_run_info("label_quality")
    change = {k: (str(tmp_path / "probs") if v == "PROBS_DIR" else v) for k, v in change.items()}
    with pytest.raises(InvalidInputError, match=expected) as e:
        _run(ds, out, resume=True, **{"temperature": 0.1, **change})
    assert "drop resume=True" in str(e.value)
    # nothing was touched: fields, files, the run record
    assert _snapshot(ds) == before
    assert ds.get_run_info("label_quality").config.token == info.config.token
    assert ds.get_run_info("label_quality").timestamp == info.timestamp


def test_resume_of_a_finished_run_with_its_settings_writes_nothing(persistent, tmp_path):
    ds, labels, probs, ids = persistent
    out = str(tmp_path / "out")
    _run(ds, out, temperature=0.3)
    before = _snapshot(ds)
    res = _run(ds, out, temperature=0.3, resume=True)
    assert res.num_scored == len(ids)
    assert _snapshot(ds) == before


@pytest.mark.parametrize("checkpoint", ["kept", "lost"])
@pytest.mark.parametrize("method", ["softmin", "num_pixel_issues"])
def test_resume_leaves_committed_samples_untouched(persistent, tmp_path, method, checkpoint):
    """The resumed run's totals (confusion, undefined scores) equal an
    uninterrupted run's, whether the committed samples' totals come from the
    checkpoint or (checkpoint lost, as when killed between a commit and its
    checkpoint) from reading those samples again."""
    ds, labels, probs, ids = persistent
    out = str(tmp_path / "out")
    n = len(ids)
    # one image with every pixel ignored: its score is undefined
    cv2.imwrite(ds[ids[2]].ground_truth.mask_path, np.full(labels[2].shape, 255, np.uint8))
    fresh = _run(ds, out, method=method, score_field="lq_fresh")
    # stop in the write phase, after some commits of 8 (the issue count
    # first scans all n images: its write phase starts at iteration n)
    stop = 40 if method == "softmin" else n + 40
    with pytest.raises(_Interrupt):
        _run(ds, out, method=method, commit_every=8, progress=_interrupt_at(stop), n_jobs=1)
    ds.reload()
    token = ds.get_run_info("label_quality").config.token
    assert ds.get_run_info("label_quality").config.status == "running"
    committed = [sid for sid, p in zip(ds.values("id"), ds.values("label_quality_heatmap.map_path")) if token_of(p) == token]
    assert 8 <= len(committed) < n and len(committed) % 8 == 0 and ids[2] in committed
    before = _snapshot(ds, committed, final_pass=True)
    if checkpoint == "lost":
        foo.get_db_conn()[CHECKPOINTS].delete_many({"_id": f"{ds._doc.id}/label_quality"})

    res = _run(ds, out, method=method, resume=True)
    assert _snapshot(ds, committed, final_pass=True) == before  # not rescored, not rewritten
    # every region's confidence as if never interrupted (the final pass)
    assert ds.values("label_quality_regions.detections.confidence") == ds.values(
        "lq_fresh_regions.detections.confidence"
    )
    ds.reload()
    assert ds.get_run_info("label_quality").config.status == "completed"
    assert all(token_of(p) == token for p in ds.values("label_quality_heatmap.map_path"))
    np.testing.assert_array_equal(ds.values("label_quality"), ds.values("lq_fresh"))
    # dataset totals as if never interrupted
    np.testing.assert_array_equal(res.confusion, fresh.confusion)
    np.testing.assert_array_equal(ds.load_run_results("label_quality").confusion, fresh.confusion)
    assert res.confusion.sum() == sum(ds.values("label_quality_num_issues")) > 0
    assert res.num_undefined == fresh.num_undefined == 1
    labels = labels.copy()
    labels[2] = 255
    expected, _ = get_label_quality_scores(labels, probs, method=method, ignore_index=255)
    scores = ds.select(ids, ordered=True).values("label_quality")
    assert scores[2] is None and np.isnan(expected[2])
    np.testing.assert_allclose(np.delete(scores, 2).astype(float), np.delete(expected, 2), atol=1e-12)


def test_kill_during_issue_count_scan_then_resume(persistent, tmp_path):
    """SIGKILL in the scan pass (before any commit) of a run that replaces a
    finished one; resume finishes it: the dataset-wide thresholds are
    recomputed over every image, the old run's files and the killed run's
    cache are gone."""
    ds, labels, probs, ids = persistent
    out = str(tmp_path / "out")
    settings = dict(probs_field="probs_path", method="num_pixel_issues", output_dir=out)
    _run(ds, out, method="num_pixel_issues")
    old_token = ds.get_run_info("label_quality").config.token

    proc = scoring_child(ds.name, PARK_IN_PROGRESS.format(park_at=10), n_jobs=1, **settings)
    assert wait_parked(proc) == "PARKED progress 10"  # 10 of 80 images scanned
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    ds.reload()
    info = ds.get_run_info("label_quality").config
    assert info.status == "running" and info.token != old_token
    files_dir = os.path.join(out, "label_quality")
    assert os.path.isdir(os.path.join(files_dir, f".cache-{info.token}"))
    # nothing of the killed run was committed
    assert all(token_of(p) == old_token for p in ds.values("label_quality_heatmap.map_path"))

    _run(ds, out, method="num_pixel_issues", resume=True)  # takes over the dead run's lock
    ds.reload()
    assert ds.get_run_info("label_quality").config.status == "completed"
    heat = ds.select(ids, ordered=True).values("label_quality_heatmap.map_path")
    issues = ds.select(ids, ordered=True).values("label_quality_issues.mask_path")
    assert all(token_of(p) == info.token for p in heat)
    expected, _ = get_label_quality_scores(labels, probs, method="num_pixel_issues")
    np.testing.assert_allclose(ds.select(ids, ordered=True).values("label_quality"), expected, atol=1e-12)
    masks = find_label_issues(labels, probs)
    for i, path in enumerate(issues):
        np.testing.assert_array_equal(cv2.imread(path, cv2.IMREAD_UNCHANGED) > 0, masks[i])
    assert sorted(os.listdir(files_dir)) == sorted(os.path.basename(p) for p in heat + issues)
