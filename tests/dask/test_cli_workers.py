"""segqual score --workers N / --scheduler ADDRESS give the single-process
results."""

import dask

from segqual_fo.cli import main
from tests.dask.test_distributed import NAMES, assert_same_outputs
from tests.fo.helpers import segmentation_dataset



def _score(ds, tmp_path, key, *extra):
    return main(
        ["score", ds.name, "--label-field", "ground_truth", "--probs-field", "probs_path", "--method",
         "num_pixel_issues", "--score-field", key, "--output-dir", str(tmp_path / "o"), "--quiet", *extra]
    )


def test_workers_and_scheduler_flags(dask_client, make_dataset, tmp_path, rng, capsys):
    ds = make_dataset()
    segmentation_dataset(ds, tmp_path, rng, n=6, names=NAMES)
    assert _score(ds, tmp_path, "lq_local") == 0
    assert _score(ds, tmp_path, "lq_workers", "--workers", "2", "--shard-size", "2") == 0
    assert _score(ds, tmp_path, "lq_sched", "--scheduler", dask_client.scheduler.address) == 0
    ds.reload()
    assert_same_outputs(ds, "lq_local", "lq_workers")
    assert_same_outputs(ds, "lq_local", "lq_sched")
    assert "scored 6 of 6 images" in capsys.readouterr().out


def test_unreachable_scheduler_is_one_clear_line(make_dataset, tmp_path, rng, capsys):
    ds = make_dataset()
    segmentation_dataset(ds, tmp_path, rng, n=2, names=NAMES)
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        assert _score(ds, tmp_path, "lq", "--scheduler", "tcp://127.0.0.1:9") == 2
    err = capsys.readouterr().err
    assert "cannot reach a Dask scheduler at 'tcp://127.0.0.1:9'" in err and "dask scheduler" in err
    assert "Traceback" not in err
    assert _score(ds, tmp_path, "lq", "--workers", "0") == 2
    assert "number of workers must be a positive integer" in capsys.readouterr().err
