"""The README's deployment commands, for real: `dask scheduler` and
`dask worker` processes started from the command line, then
`segqual score --scheduler ADDRESS`."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from segqual_fo.cli import main
from tests.dask.conftest import WORKER_ENV
from tests.dask.test_distributed import NAMES, assert_same_outputs
from tests.fo.helpers import segmentation_dataset


DASK = os.path.join(os.path.dirname(sys.executable), "dask")


def _wait_for(predicate, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def cli_cluster(tmp_path):
    if not os.path.exists(DASK):
        pytest.skip("the dask command is not installed next to this Python")
    sched_file = tmp_path / "scheduler.json"
    env = dict(os.environ, **WORKER_ENV)
    # the README's advice for `dask worker`: a config file that drops
    # Dask's MALLOC_TRIM_THRESHOLD_ (DASK_CONFIG names the directory)
    config_dir = tmp_path / "dask-config"
    config_dir.mkdir()
    (config_dir / "segqual.yaml").write_text(
        "distributed:\n  nanny:\n    pre-spawn-environ:\n      MALLOC_TRIM_THRESHOLD_: null\n"
    )
    env["DASK_CONFIG"] = str(config_dir)
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    procs = [
        subprocess.Popen(
            [DASK, "scheduler", "--scheduler-file", str(sched_file), "--port", "0", "--dashboard-address", ":0"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    ]
    try:
        _wait_for(sched_file.exists, 60, "the scheduler file")
        address = json.loads(sched_file.read_text())["address"]
        procs.append(
            subprocess.Popen(
                [DASK, "worker", address, "--nworkers", "2", "--nthreads", "1", "--local-directory", str(tmp_path / "w")],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(tmp_path),
            )
        )
        import distributed

        with distributed.Client(address) as client:
            client.wait_for_workers(2, timeout=90)
            trims = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
        assert list(trims.values()) == [None, None], trims
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp_path / "w", ignore_errors=True)


def test_score_on_dask_scheduler_and_workers_from_the_command_line(cli_cluster, make_dataset, tmp_path, rng):
    ds = make_dataset()
    segmentation_dataset(ds, tmp_path, rng, n=8, names=NAMES, plant=(2, 5))
    base = ["score", ds.name, "--label-field", "ground_truth", "--probs-field", "probs_path",
            "--output-dir", str(tmp_path / "o"), "--quiet", "--method", "num_pixel_issues"]
    assert main(base + ["--score-field", "lq_local"]) == 0
    assert main(base + ["--score-field", "lq_cluster", "--scheduler", cli_cluster]) == 0
    ds.reload()
    assert_same_outputs(ds, "lq_local", "lq_cluster")
