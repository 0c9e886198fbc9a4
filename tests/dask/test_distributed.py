"""compute_label_quality on a Dask LocalCluster (2 worker processes) against
the single-process run on the same dataset: every output must be identical.

The workers run with FIFTYONE_DATABASE_URI pointing at a closed port, so a
worker that touched the database would fail the run.
"""

import os

import cv2
import numpy as np
import dask
import pytest

import fiftyone as fo

from segqual_fo import compute_label_quality
from segqual_fo.core import IssueFinder
from segqual_fo.errors import InvalidInputError, InvalidProbabilitiesError
from segqual_fo.options import output_fields
from tests.fo.helpers import segmentation_dataset


NAMES = ["sky", "road", "car", "tree"]


def outputs(ds, score_field):
    """Everything a run wrote, per sample, comparable across runs."""
    f = output_fields(score_field)
    rows = {}
    for sample in ds.iter_samples():
        heat, iss, regions = sample[f["heatmap"]], sample[f["issues"]], sample[f["regions"]]
        rows[sample.id] = dict(
            score=sample[f["score"]],
            num_issues=sample[f["num_issues"]],
            heat=None if heat is None else cv2.imread(heat.map_path, cv2.IMREAD_UNCHANGED).tobytes(),
            heat_range=None if heat is None else list(heat.range),
            issues=None if iss is None else cv2.imread(iss.mask_path, cv2.IMREAD_UNCHANGED).tobytes(),
            regions=None
            if regions is None
            else [
                (d.label, tuple(d.bounding_box), d.predicted_label, d.area, d.mean_score, d.mask.tobytes())
                + tuple(d[a] for a in ("confidence", "min_score", "ring_given", "ring_predicted", "ring_score", "thickness"))
                for d in regions.detections
            ],
        )
    return rows


def assert_same_outputs(ds, key_a, key_b):
    a, b = outputs(ds, key_a), outputs(ds, key_b)
    assert a.keys() == b.keys()
    for sid in a:
        assert a[sid] == b[sid], f"sample {sid} differs"
    ra, rb = ds.load_run_results(key_a), ds.load_run_results(key_b)
    assert ra.confusion == rb.confusion
    assert [f["sample_id"] for f in ra.failures] == [f["sample_id"] for f in rb.failures]


def tied_dataset(ds, tmp_path, rng, n=9, shape=(32, 40)):
    """Probabilities quantised to 1/8: many equal self-confidences, so the
    confident-learning cut-off falls inside a group of ties."""
    labels, probs, ids = segmentation_dataset(ds, tmp_path, rng, n=n, shape=shape, plant=(1, 4), names=NAMES)
    q = np.maximum(np.round(probs * 8), 0)
    q[:, 0] += (q.sum(axis=1) == 0)  # keep every pixel normalisable
    q = (q / q.sum(axis=1, keepdims=True)).astype(np.float32)
    for i, pp in enumerate(ds.values("probs_path")):
        np.save(pp, q[i])
    return labels, q, ids


@pytest.mark.parametrize("method", ["softmin", "num_pixel_issues"])
def test_cluster_equals_single_process(dask_client, make_dataset, tmp_path, rng, method):
    ds = make_dataset()
    labels, q, _ = tied_dataset(ds, tmp_path, rng)
    if method == "num_pixel_issues":  # the case this data is for: ties split at the cut-off
        finder = IssueFinder(len(NAMES))
        for i in range(len(q)):
            finder.update(labels[i], q[i], index=i)
        assert finder.finish().tie_quota
    common = dict(probs_field="probs_path", method=method, output_dir=str(tmp_path / "out"), progress=False)
    local = compute_label_quality(ds, "ground_truth", score_field="lq_local", **common)
    for shard_size in (None, 1, 4):
        key = f"lq_dask_{shard_size or 0}"
        res = compute_label_quality(
            ds, "ground_truth", score_field=key, executor=dask_client, shard_size=shard_size, **common
        )
        assert res.num_scored == local.num_scored == len(ds)
        np.testing.assert_array_equal(res.confusion, local.confusion)
        assert_same_outputs(ds, "lq_local", key)
    if method == "num_pixel_issues":
        # the issue-count cache lives next to the outputs and is removed
        assert not [d for d in os.listdir(tmp_path / "out" / key) if d.startswith(".cache-")]
    assert local.confusion.sum() > 0


def test_downsampled_issue_count_and_inline_masks(dask_client, make_dataset, tmp_path, rng):
    ds = make_dataset()
    segmentation_dataset(ds, tmp_path, rng, n=7, shape=(24, 32), inline=True, names=NAMES, plant=(2,))
    common = dict(
        probs_field="probs_path", method="num_pixel_issues", downsample=4, output_dir=str(tmp_path / "o"), progress=False
    )
    compute_label_quality(ds, "ground_truth", score_field="lq_local", **common)
    compute_label_quality(ds, "ground_truth", score_field="lq_dask", executor=dask_client, shard_size=2, **common)
    assert_same_outputs(ds, "lq_local", "lq_dask")


def test_detections_labels(dask_client, make_dataset, tmp_path, rng):
    """Instance Detections travel to the workers with the image size."""
    ds = make_dataset()
    h, w, k = 30, 40, 3
    os.makedirs(tmp_path / "img")
    samples = []
    for i in range(5):
        img = tmp_path / "img" / f"{i}.png"
        cv2.imwrite(str(img), np.zeros((h, w, 3), np.uint8))
        labels = np.full((h, w), 0)
        labels[5:20, 5 + i : 25 + i] = 1
        labels[18:28, 20:35] = 2
        probs = np.full((k, h, w), 0.1, np.float32)
        np.put_along_axis(probs, labels[None], 0.8, 0)
        probs[:, 8:12, 8:12] = np.array([0.05, 0.05, 0.9], np.float32)[:, None, None]  # disagrees
        pp = tmp_path / f"p{i}.npy"
        np.save(pp, probs)
        dets = [
            fo.Detection(label="bg", bounding_box=[0, 0, 1, 1]),
            fo.Detection(label="car", bounding_box=[(5 + i) / w, 5 / h, 20 / w, 15 / h], mask=np.ones((15, 20), bool)),
            fo.Detection(label="person", bounding_box=[20 / w, 18 / h, 15 / w, 10 / h]),
        ]
        samples.append(fo.Sample(filepath=str(img), gt=fo.Detections(detections=dets), probs_path=str(pp)))
    ds.add_samples(samples, progress=False)
    common = dict(probs_field="probs_path", classes=["bg", "car", "person"], output_dir=str(tmp_path / "o"), progress=False)
    local = compute_label_quality(ds, "gt", score_field="lq_local", **common)
    compute_label_quality(ds, "gt", score_field="lq_dask", executor=dask_client, **common)
    assert_same_outputs(ds, "lq_local", "lq_dask")
    assert local.confusion.sum() > 0


def test_failures_are_records_and_raise_in_sample_order(dask_client, make_dataset, tmp_path, rng):
    ds = make_dataset()
    segmentation_dataset(ds, tmp_path, rng, n=8, names=NAMES)
    paths = ds.values("probs_path")
    bad = [paths[2], paths[6]]
    for p in bad:
        arr = np.load(p)
        arr[:, 0, 0] = np.nan
        np.save(p, arr)
    ids = ds.values("id")
    for method in ("softmin", "num_pixel_issues"):
        common = dict(probs_field="probs_path", method=method, output_dir=str(tmp_path / "o"), progress=False)
        local = compute_label_quality(ds, "ground_truth", score_field="lq_local", skip_failures=True, **common)
        dask = compute_label_quality(
            ds, "ground_truth", score_field="lq_dask", skip_failures=True, executor=dask_client, shard_size=3, **common
        )
        assert [f.sample_id for f in dask.failures] == [ids[2], ids[6]] == [f.sample_id for f in local.failures]
        assert_same_outputs(ds, "lq_local", "lq_dask")
        with pytest.raises(InvalidProbabilitiesError, match=f"sample {ids[2]}"):
            compute_label_quality(
                ds, "ground_truth", score_field="lq_fail", executor=dask_client, shard_size=1, **common
            )


def test_resume_on_cluster_writes_only_missing(dask_client, make_dataset, tmp_path, rng):
    ds = make_dataset()
    segmentation_dataset(ds, tmp_path, rng, n=6, names=NAMES)
    common = dict(probs_field="probs_path", method="num_pixel_issues", output_dir=str(tmp_path / "o"), progress=False)
    compute_label_quality(ds, "ground_truth", score_field="lq_local", **common)
    compute_label_quality(ds, "ground_truth", score_field="lq_dask", executor=dask_client, **common)
    before = outputs(ds, "lq_dask")
    # simulate an interrupted run: two samples lost their outputs
    f = output_fields("lq_dask")
    lost = ds.values("id")[1:3]
    view = ds.select(lost)
    for name in f.values():
        view.set_field(name, None).save()
    keep_mtime = {p: os.path.getmtime(p) for p in ds.exclude(lost).values(f"{f['heatmap']}.map_path")}
    res = compute_label_quality(ds, "ground_truth", score_field="lq_dask", executor=dask_client, resume=True, **common)
    assert res.num_scored == 6
    assert outputs(ds, "lq_dask") == before
    assert {p: os.path.getmtime(p) for p in keep_mtime} == keep_mtime  # untouched
    assert_same_outputs(ds, "lq_local", "lq_dask")


def test_bad_executor_is_refused_before_anything_is_written(make_dataset, tmp_path, rng):
    ds = make_dataset()
    segmentation_dataset(ds, tmp_path, rng, n=2, names=NAMES)
    with pytest.raises(InvalidInputError, match="executor must be a dask.distributed.Client"):
        compute_label_quality(ds, "ground_truth", probs_field="probs_path", executor=4, progress=False)
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}), pytest.raises(
        InvalidInputError, match="cannot reach a Dask scheduler at 'tcp://127.0.0.1:9'"
    ):
        compute_label_quality(
            ds, "ground_truth", probs_field="probs_path", executor="tcp://127.0.0.1:9", progress=False
        )
    assert "label_quality" not in ds.get_field_schema()


def test_storage_not_shared_is_a_clear_error(tmp_path):
    """What a client sees when workers write where it cannot read (the
    guards themselves; a real split file system cannot be made here)."""
    from segqual_fo.execution.dask import NotSharedError, _check_shared_output, _SharedCache
    from segqual_fo.execution.job import Scored as _Scored

    rec = _Scored("abc", 0.5, 0, str(tmp_path / "missing_heatmap.png"), None, [], np.empty(0), np.empty(0))
    with pytest.raises(NotSharedError, match="storage that the client and every worker see"):
        _check_shared_output(rec)
    with pytest.raises(NotSharedError, match="cache entry .*000000003.npz is missing on worker host"):
        _SharedCache(str(tmp_path / "cache")).get(3)


def _add_detections(ds, rng):
    """A ``gt_dets`` Detections field: the whole image as class 0 and a
    masked box of class 1 (instances with and without masks)."""
    for sample in ds.iter_samples(autosave=True):
        mask = rng.random((6, 8)) > 0.3
        sample["gt_dets"] = fo.Detections(
            detections=[
                fo.Detection(label=NAMES[0], bounding_box=[0, 0, 1, 1]),
                fo.Detection(label=NAMES[1], bounding_box=[0.25, 0.25, 0.25, 0.25], mask=mask),
            ]
        )


@pytest.mark.parametrize("method", ["softmin", "num_pixel_issues"])
def test_workers_import_no_fiftyone(make_dataset, tmp_path, rng, method):
    """What workers run is plain data in, plain data out: after a whole run
    (Segmentation and Detections labels), no worker has loaded FiftyOne."""
    from tests.dask import parking
    from tests.dask.conftest import worker_cluster

    ds = make_dataset()
    segmentation_dataset(ds, tmp_path, rng, n=6, k=4, names=NAMES)
    _add_detections(ds, rng)
    with worker_cluster() as client:
        assert all(not mods for mods in client.run(parking.fiftyone_modules).values())
        for field in ("ground_truth", "gt_dets"):
            compute_label_quality(
                ds, field, probs_field="probs_path", method=method, score_field=f"lq_{field}",
                output_dir=str(tmp_path / "out"), executor=client, classes=NAMES, progress=False,
            )  # fmt: skip
            assert None not in ds.values(f"lq_{field}")
        loaded = client.run(parking.fiftyone_modules)
    assert loaded and all(mods == [] for mods in loaded.values()), loaded
