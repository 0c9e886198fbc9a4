"""A run killed with SIGKILL leaves each sample old or complete-new; resume
finishes only what is missing; concurrent runs on other fields both finish."""

import os
import signal

import cv2
import numpy as np
import pytest


from segqual_fo import compute_label_quality
from segqual_fo.writers.files import token_of
from segqual_fo.core import get_label_quality_scores
from tests.reliability.children import PARK_AFTER_COMMITS, child, scoring_child, wait_parked


def _committed(ds, field, token):
    ds.reload()
    return sum(token_of(p) == token for p in ds.values(f"{field}.map_path"))


@pytest.mark.parametrize("method", ["softmin", "num_pixel_issues"])
def test_sigkill_then_resume(persistent, tmp_path, method):
    ds, labels, probs, ids = persistent
    out = str(tmp_path / "out")
    compute_label_quality(ds, "ground_truth", probs_field="probs_path", method=method, temperature=0.1, output_dir=out, progress=False)
    old_scores = dict(zip(ds.values("id"), ds.values("label_quality")))
    old_token = ds.get_run_info("label_quality").config.token
    new_expected, _ = get_label_quality_scores(labels, probs, method=method, temperature=0.7)
    new_expected = dict(zip(ids, new_expected))

    # a second run, parked (then killed) right after its second commit of 8
    proc = scoring_child(
        ds.name, PARK_AFTER_COMMITS.format(park_after=2), probs_field="probs_path", method=method,
        temperature=0.7, output_dir=out, commit_every=8, n_jobs=1,
    )
    assert wait_parked(proc) == "PARKED commits 16"
    ds.reload()
    new_token = ds.get_run_info("label_quality").config.token
    assert new_token != old_token
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _committed(ds, "label_quality_heatmap", new_token) == 16

    # every sample is entirely old or entirely new, and its files exist
    ds.reload()
    for s in ds.iter_samples():
        heat, iss = s.label_quality_heatmap.map_path, s.label_quality_issues.mask_path
        assert token_of(heat) == token_of(iss)
        assert os.path.isfile(heat) and os.path.isfile(iss)
        if token_of(heat) == old_token:
            assert s.label_quality == old_scores[s.id]
        else:
            assert token_of(heat) == new_token
            assert s.label_quality == pytest.approx(new_expected[s.id], abs=1e-12)
            assert s.label_quality_num_issues == (cv2.imread(iss, cv2.IMREAD_UNCHANGED) > 0).sum()

    # resume finishes only what is missing, with the same token
    compute_label_quality(ds, "ground_truth", probs_field="probs_path", method=method, temperature=0.7, output_dir=out, resume=True, progress=False)
    ds.reload()
    assert ds.get_run_info("label_quality").config.status == "completed"
    heat = ds.values("label_quality_heatmap.map_path")
    assert all(token_of(p) == new_token for p in heat)
    np.testing.assert_allclose(ds.values("label_quality"), [new_expected[i] for i in ds.values("id")], atol=1e-12)
    # no file of the old run nor an orphan of the killed one is left
    files = set(os.listdir(os.path.join(out, "label_quality")))
    referenced = {os.path.basename(p) for p in heat} | {os.path.basename(p) for p in ds.values("label_quality_issues.mask_path")}
    assert files == referenced


def test_two_runs_on_other_fields_at_once(persistent, tmp_path):
    ds, labels, probs, ids = persistent
    out = str(tmp_path / "out")
    procs = [
        child(f"""
            import fiftyone as fo, segqual_fo
            ds = fo.load_dataset({ds.name!r})
            segqual_fo.compute_label_quality(ds, "ground_truth", probs_field="probs_path", method={m!r},
                score_field={f!r}, output_dir={out!r}, commit_every=8, progress=False)
            print("FINISHED")
        """)
        for m, f in (("softmin", "lq_a"), ("num_pixel_issues", "lq_b"))
    ]
    for p in procs:
        output = p.communicate(timeout=300)[0]
        assert p.returncode == 0 and "FINISHED" in output, output
    ds.reload()
    for method, field in (("softmin", "lq_a"), ("num_pixel_issues", "lq_b")):
        expected, _ = get_label_quality_scores(labels, probs, method=method)
        np.testing.assert_allclose(ds.values(field), expected, atol=1e-12)
        assert ds.get_run_info(field).config.status == "completed"
        assert f"{field}_issues" in ds.mask_targets
    assert set(ds.list_runs()) == {"lq_a", "lq_b"}
