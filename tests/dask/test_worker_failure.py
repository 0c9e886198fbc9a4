"""A worker process killed (SIGKILL) mid-run on a LocalCluster: Dask re-runs
its task elsewhere, and the run's outputs equal an undisturbed
single-process run, with nothing lost and nothing written twice."""

import logging
import os
import signal
import threading

import pytest

from segqual_fo import compute_label_quality
from segqual_fo.options import output_fields
from tests.dask import parking
from tests.dask.conftest import worker_cluster
from tests.dask.test_distributed import NAMES, assert_same_outputs
from tests.fo.helpers import segmentation_dataset



@pytest.fixture
def own_cluster():
    """A cluster of its own: this test kills one of its workers."""
    with worker_cluster(silence_logs=logging.CRITICAL) as client:
        yield client


def _written(done_dir, phase):
    """Heatmaps written so far, or (phase "scan") issue-count cache entries."""
    if not os.path.isdir(done_dir):
        return 0
    if phase == "scan":
        caches = [os.path.join(done_dir, d) for d in os.listdir(done_dir) if d.startswith(".cache-")]
        return sum(len(os.listdir(c)) for c in caches if os.path.isdir(c))
    return len([f for f in os.listdir(done_dir) if f.endswith("_heatmap.png")])


@pytest.mark.parametrize(
    "method, phase", [("softmin", "emit"), ("num_pixel_issues", "scan"), ("num_pixel_issues", "emit")]
)
def test_killed_worker_is_retried_without_loss_or_duplicates(own_cluster, make_dataset, tmp_path, rng, method, phase):
    ds = make_dataset()
    n = 24
    segmentation_dataset(ds, tmp_path, rng, n=n, k=4, shape=(384, 384), plant=(3, 17), names=NAMES)
    common = dict(probs_field="probs_path", method=method, output_dir=str(tmp_path / "out"), progress=False)
    compute_label_quality(ds, "ground_truth", score_field="lq_local", **common)

    done_dir = str(tmp_path / "out" / "lq_dask")
    # one worker finishes a task of the phase (its files are written), then
    # parks without returning; it is killed there, so Dask must re-run it
    task = {"scan": "scan_shard", "emit": "emit_shard" if method == "num_pixel_issues" else "score_shard"}[phase]
    marker = str(tmp_path / "parked")
    worker_pids = set(own_cluster.run(os.getpid).values())
    own_cluster.run(parking.install, marker, task)
    killed = {}

    def kill_when_parked():
        pid = parking.wait_for_marker(marker)
        killed["pid"] = pid
        killed["written"] = _written(done_dir, phase)
        os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_when_parked)
    killer.start()
    try:
        res = compute_label_quality(
            ds, "ground_truth", score_field="lq_dask", executor=own_cluster, shard_size=2, **common
        )
    finally:
        killer.join()

    # the kill happened mid-run, after the parked task wrote its outputs: the
    # run could not finish without that task's result
    assert killed["pid"] in worker_pids and killed["written"] > 0
    # nothing lost
    assert res.num_scored == n and not res.failures
    assert None not in ds.values("lq_dask")
    assert_same_outputs(ds, "lq_local", "lq_dask")
    # nothing duplicated: exactly one heatmap and one mask per sample, and no
    # temporary file of an interrupted write is left behind
    names = os.listdir(done_dir)
    assert sorted(names) == sorted(
        os.path.basename(p)
        for f in ("heatmap", "issues")
        for p in ds.values(f"{output_fields('lq_dask')[f]}.{'map_path' if f == 'heatmap' else 'mask_path'}")
    )
    assert len(names) == 2 * n
    # the nanny restarted the killed worker: the cluster is whole again
    own_cluster.wait_for_workers(2, timeout=30)
    assert killed["pid"] not in own_cluster.run(os.getpid).values()
