"""Real data: CamVid images, labels and a pretrained model's probabilities."""

import glob
import os

import cv2
import numpy as np
import pytest

import fiftyone as fo

from segqual_fo import compute_label_quality
from tests.shared_data import shared_data

CAMVID = shared_data("camvid-mini")
pytestmark = pytest.mark.skipif(CAMVID is None, reason="shared camvid-mini data absent: set SEGQUAL_SHARED_DATA to the workplace's shared/data")
NAMES = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist", "void"]


@pytest.fixture
def camvid(make_dataset):
    ds = make_dataset()
    samples = []
    for path in sorted(glob.glob(os.path.join(CAMVID, "images", "*.png"))):
        stem = os.path.splitext(os.path.basename(path))[0]
        samples.append(
            fo.Sample(
                filepath=path,
                ground_truth=fo.Segmentation(mask_path=os.path.join(CAMVID, "labels", stem + ".png")),
                probs_path=os.path.join(CAMVID, "pred_probs", stem + ".npz"),
            )
        )
    ds.add_samples(samples, progress=False)
    ds.mask_targets = {"ground_truth": dict(enumerate(NAMES))}
    return ds


def _disagreement(ds):
    """Fraction of valid pixels whose model argmax is not the label."""
    out = []
    for s in ds.iter_samples():
        lab = cv2.imread(s.ground_truth.mask_path, cv2.IMREAD_UNCHANGED)
        with np.load(s.probs_path) as z:
            pred = z["probs_u8"].argmax(0)
        valid = lab != 11
        out.append(float((pred != lab)[valid].mean()))
    return np.array(out)


@pytest.mark.parametrize("method", ["softmin", "num_pixel_issues"])
def test_worst_ranked_images_disagree_most(camvid, tmp_path, method):
    res = compute_label_quality(
        camvid, "ground_truth", probs_field="probs_path", probs_key="probs_u8",
        ignore_index="void", method=method, output_dir=str(tmp_path), progress=False,
    )
    assert res.num_scored == 30 and not res.failures and res.classes == NAMES
    scores = np.array(camvid.values("label_quality"))
    dis = _disagreement(camvid)
    order = np.argsort(scores)
    worst, best = dis[order[:5]].mean(), dis[order[-5:]].mean()
    assert worst > 2 * best  # the 5 worst images disagree far more than the 5 best
    rho = np.corrcoef(np.argsort(np.argsort(scores)), np.argsort(np.argsort(-dis)))[0, 1]
    assert rho > 0.5  # and the ranking follows the disagreement overall
    # void pixels are never issues
    for s in camvid.iter_samples():
        iss = cv2.imread(s.label_quality_issues.mask_path, cv2.IMREAD_UNCHANGED)
        lab = cv2.imread(s.ground_truth.mask_path, cv2.IMREAD_UNCHANGED)
        assert not iss[lab == 11].any()
