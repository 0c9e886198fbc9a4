"""One run per score_field at a time: a second run on the same key is
refused while the first is alive; a killed run's lock is taken over; runs on
other keys are independent."""

import datetime
import os
import signal
import threading

import numpy as np
import pytest

import fiftyone.core.odm as foo

from segqual_fo import compute_label_quality
from segqual_fo.core import get_label_quality_scores
from segqual_fo.errors import SegQualError
from segqual_fo.fo.runlock import COLLECTION, STALE_SECONDS, RunLock, RunLockedError
from tests.fo.helpers import segmentation_dataset
from tests.reliability.children import PARK_AFTER_COMMITS, scoring_child, wait_parked


def _locks(ds):
    return list(foo.get_db_conn()[COLLECTION].find({"_id": {"$regex": f"^{ds._doc.id}/"}}))


def _run(ds, out, **kwargs):
    return compute_label_quality(ds, "ground_truth", probs_field="probs_path", output_dir=out, progress=False, **kwargs)


def test_second_run_on_the_same_key_is_refused_until_the_first_dies(persistent, tmp_path):
    ds, labels, probs, ids = persistent
    out = str(tmp_path / "out")
    proc = scoring_child(ds.name, PARK_AFTER_COMMITS.format(park_after=1), probs_field="probs_path", output_dir=out, commit_every=8)
    try:
        assert wait_parked(proc) == "PARKED commits 8"
        ds.reload()
        token = ds.get_run_info("label_quality").config.token
        assert ds.get_run_info("label_quality").config.lock["pid"] == proc.pid
        files_before = sorted(os.listdir(os.path.join(out, "label_quality")))

        with pytest.raises(RunLockedError, match=rf"another segqual run is writing score_field 'label_quality'.*process {proc.pid}"):
            _run(ds, out, temperature=0.5)
        with pytest.raises(RunLockedError):
            _run(ds, out, resume=True)
        # the refused runs changed nothing: the live run's record and files stand
        ds.reload()
        assert ds.get_run_info("label_quality").config.token == token
        assert sorted(os.listdir(os.path.join(out, "label_quality"))) == files_before

        # another key is independent, even while the first run holds its lock
        _run(ds, out, score_field="lq_other", method="num_pixel_issues")
        expected, _ = get_label_quality_scores(labels, probs, method="num_pixel_issues")
        np.testing.assert_allclose(ds.select(ids, ordered=True).values("lq_other"), expected, atol=1e-12)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    # the holder is dead: its lock is taken over at once (same machine)
    _run(ds, out, temperature=0.5)
    expected, _ = get_label_quality_scores(labels, probs, temperature=0.5)
    np.testing.assert_allclose(ds.select(ids, ordered=True).values("label_quality"), expected, atol=1e-12)
    assert _locks(ds) == []  # released at the end


def _foreign_lock(ds, age_seconds):
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)
    beat = now - datetime.timedelta(seconds=age_seconds)
    foo.get_db_conn()[COLLECTION].insert_one(
        {"_id": f"{ds._doc.id}/label_quality", "host": "elsewhere.example", "pid": 1, "process_start": "1",
         "started_at": beat, "heartbeat_at": beat}
    )


def test_lock_from_another_machine_expires_without_heartbeat(make_dataset, tmp_path, rng):
    ds = make_dataset()
    segmentation_dataset(ds, tmp_path, rng, n=3)
    out = str(tmp_path / "out")
    _foreign_lock(ds, age_seconds=5)  # alive: it beat 5 s ago
    with pytest.raises(RunLockedError, match=r"host 'elsewhere\.example'.*last heartbeat \d+ s ago"):
        _run(ds, out)
    assert not ds.has_field("label_quality")

    foo.get_db_conn()[COLLECTION].delete_many({"_id": f"{ds._doc.id}/label_quality"})
    _foreign_lock(ds, age_seconds=STALE_SECONDS + 60)  # abandoned
    _run(ds, out)
    assert None not in ds.values("label_quality")
    assert _locks(ds) == []


def test_failed_run_releases_its_lock(make_dataset, tmp_path, rng):
    ds = make_dataset()
    segmentation_dataset(ds, tmp_path, rng, n=3)
    os.remove(ds.first().probs_path)
    with pytest.raises(SegQualError, match="does not exist"):
        _run(ds, str(tmp_path / "out"))
    assert _locks(ds) == []
    _run(ds, str(tmp_path / "out"), skip_failures=True)


def test_only_one_of_simultaneous_acquirers_wins(make_dataset):
    ds = make_dataset()
    locks = [RunLock(ds, "label_quality") for _ in range(8)]
    start = threading.Barrier(len(locks))
    won, refused = [], []

    def take(lock):
        start.wait()
        try:
            won.append(lock.acquire())
        except RunLockedError:
            refused.append(lock)

    threads = [threading.Thread(target=take, args=(lock,)) for lock in locks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(refused) == len(locks) - 1
    won[0].release()
    assert _locks(ds) == []
