"""``segqual fix`` run as users run it: the console script in a child
process on the same database, results read back here (the hand-built
dataset of tests/fo/test_fix.py, whose changed pixels are known)."""

import os
import subprocess
import sys
import uuid

import cv2
import numpy as np
import pytest

import fiftyone as fo

from tests.fo.test_fix import R1, RB, build, originals, region_id, tag_regions

SCRIPT = os.path.join(os.path.dirname(sys.executable), "segqual")
MONGO_NOTICE = "oldest supported major version of MongoDB"


def segqual(*args):
    return subprocess.run([SCRIPT, *map(str, args)], capture_output=True, text=True, timeout=180, env=dict(os.environ))


def lines(text):
    return [line for line in text.splitlines() if line.strip() and MONGO_NOTICE not in line]


def show(r):
    return f"\nexit {r.returncode}\n--- stdout\n{r.stdout[-2000:]}\n--- stderr\n{r.stderr[-2000:]}"


@pytest.fixture
def ds(tmp_path):
    dataset = fo.Dataset(f"segqual-fix-cli-{uuid.uuid4().hex[:12]}", persistent=True)  # the child loads it by name
    yield dataset
    if dataset.name in fo.list_datasets():
        fo.delete_dataset(dataset.name)


def test_fix_by_tag_then_again(ds, tmp_path):
    stored = build(ds, tmp_path)
    tag_regions(ds, [region_id(ds, 0, *R1)])
    before = originals(ds, tmp_path)

    r = segqual("fix", ds.name, "--label-field", "ground_truth", "--tag", "approve")
    assert r.returncode == 0, show(r)
    out = lines(r.stdout)
    assert out[0] == ("fixed 1 regions in 1 samples: 18 pixels changed; corrected masks in field "
                      "'ground_truth_fixed' ('ground_truth' is unchanged)"), show(r)
    assert out[1] == f"files in {tmp_path / 'out' / 'ground_truth_fixed'}"
    ds.reload()
    expected = stored[0].copy()
    expected[R1] = 64
    np.testing.assert_array_equal(cv2.imread(ds.first().ground_truth_fixed.mask_path, cv2.IMREAD_UNCHANGED), expected)
    assert originals(ds, tmp_path) == before

    r = segqual("fix", ds.name, "--label-field", "ground_truth", "--tag", "approve")
    assert r.returncode == 0, show(r)
    assert lines(r.stdout) == [
        "fixed 0 regions in 0 samples: 0 pixels changed; corrected masks in field 'ground_truth_fixed' "
        "('ground_truth' is unchanged)",
        "skipped 1 regions already fixed or marked not_an_error",
    ], show(r)


def test_fix_by_min_confidence_into_a_named_field(ds, tmp_path):
    stored = build(ds, tmp_path)
    rb = region_id(ds, 1, *RB)
    for sample in ds.iter_samples(autosave=True):
        for det in sample.label_quality_regions.detections:
            det["confidence"] = 0.95 if det.id == rb else 0.5
    r = segqual("fix", ds.name, "--label-field", "ground_truth", "--score-field", "label_quality",
                "--min-confidence", "0.9", "--fixed-field", "gt_auto")
    assert r.returncode == 0, show(r)
    assert lines(r.stdout)[0].startswith("fixed 1 regions in 1 samples: 20 pixels changed; corrected masks in field 'gt_auto'")
    ds.reload()
    expected = stored[1].copy()
    expected[RB] = 0
    np.testing.assert_array_equal(cv2.imread(ds.skip(1).first().gt_auto.mask_path, cv2.IMREAD_UNCHANGED), expected)


@pytest.mark.parametrize(
    "argv, message, scored",
    [  # argparse's refusals, then the library's (on a scored dataset)
        (["--label-field", "ground_truth"], "one of the arguments --tag --min-confidence is required", False),
        (["--label-field", "ground_truth", "--tag", "a", "--min-confidence", "0.5"], "not allowed with argument", False),
        (["--label-field", "ground_truth", "--tag", "a", "--fixed-field", "ground_truth"], "is the label field", True),
        (["--label-field", "ground_truth", "--min-confidence", "2"], "min_confidence must be a number in [0, 1]", True),
    ],
)
def test_mistakes_exit_2_with_one_line(ds, tmp_path, argv, message, scored):
    if scored:
        build(ds, tmp_path)
    r = segqual("fix", ds.name, *argv)
    assert r.returncode == 2, show(r)
    assert message in r.stderr and "Traceback" not in r.stderr, show(r)
    assert not ds.has_field("ground_truth_fixed")
