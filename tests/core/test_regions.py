"""Region evidence and confidence (segqual_fo.core.regions): hand-computed
features, the leave-own-pixels-out pair rarity, range and determinism."""

import numpy as np
import pytest

from segqual_fo.core.regions import (
    LOCAL_FEATURES,
    WEIGHTS,
    pair_rarity,
    region_confidence,
    region_features,
    region_logits,
    sigmoid,
)
from segqual_fo.writers.regions import find_regions


def test_features_by_hand():
    # a 2x2 region in a 4x5 window; given class 1, predicted 2
    region = np.zeros((4, 5), bool)
    region[1:3, 1:3] = True
    labels = np.array(
        [
            [1, 1, 1, 2, 2],
            [1, 1, 1, 2, 2],
            [1, 1, 1, 2, 2],
            [3, 3, 3, 3, 3],
        ]
    )
    scores = np.full((4, 5), 0.9)
    scores[region] = [0.05, 0.01, 0.03, 0.01]
    scores[0, 0] = np.nan  # an ignored ring pixel is not counted
    f = region_features(region, labels, scores, given=1, predicted=2)
    assert set(f) == set(LOCAL_FEATURES)
    assert f["area"] == 4
    assert f["mean_score"] == pytest.approx(0.025)
    assert f["min_score"] == pytest.approx(0.01)
    # ring: the 3x3 box grown by one minus the region = 12 pixels, one ignored
    # -> 11: labels 1 at (0,1),(0,2),(1,0),(2,0) = 4 ... count by hand
    ring = np.zeros((4, 5), bool)
    ring[0:4, 0:4] = True
    ring[1:3, 1:3] = False
    ring[0, 0] = False
    assert f["ring_given"] == pytest.approx(np.mean(labels[ring] == 1))
    assert f["ring_predicted"] == pytest.approx(np.mean(labels[ring] == 2))
    assert f["ring_score"] == pytest.approx(0.9)
    assert f["thickness"] == pytest.approx(1.0)  # every pixel of a 2x2 block is on its boundary


def test_thickness_grows_with_blobs():
    line = np.zeros((3, 12), bool)
    line[1, 1:11] = True
    blob = np.zeros((12, 12), bool)
    blob[1:11, 1:11] = True
    kw = dict(given=0, predicted=1)
    t_line = region_features(line, np.zeros((3, 12), int), np.where(line, 0.0, 1.0), **kw)["thickness"]
    t_blob = region_features(blob, np.zeros((12, 12), int), np.where(blob, 0.0, 1.0), **kw)["thickness"]
    assert t_line == 1.0
    assert t_blob == pytest.approx(100 / 36)


def test_region_filling_its_window_has_no_ring():
    region = np.ones((2, 2), bool)
    f = region_features(region, np.zeros((2, 2), int), np.zeros((2, 2)), given=0, predicted=1)
    assert (f["ring_given"], f["ring_predicted"], f["ring_score"]) == (0.0, 0.0, 1.0)


def test_pair_rarity_leaves_the_region_out():
    confusion = np.array([[0, 100], [5, 0]])
    # the region is the whole of its pair's count: as rare as an unseen pair
    r = pair_rarity(confusion, np.array([0, 1]), np.array([1, 0]), np.array([100, 5]))
    expected = -np.log(1.0 / (105 - np.array([100, 5]) + 4))
    np.testing.assert_allclose(r, expected)
    # a small region of a common pair is not rare
    small = pair_rarity(confusion, np.array([0]), np.array([1]), np.array([1]))
    assert small[0] < r[0]


def test_confidence_in_unit_interval_and_deterministic():
    rng = np.random.default_rng(0)
    n = 500
    f = {
        "area": rng.integers(1, 10**6, n),
        "mean_score": rng.random(n) * 0.1,
        "min_score": rng.random(n) * 0.01,
        "ring_given": rng.random(n),
        "ring_predicted": rng.random(n),
        "ring_score": rng.random(n),
        "thickness": 1 + rng.random(n) * 50,
    }
    g, p = rng.integers(0, 5, n), rng.integers(0, 5, n)
    confusion = rng.integers(0, 10**7, (5, 5))
    c = region_confidence(f, g, p, confusion)
    assert c.dtype == np.float64 and c.shape == (n,)
    assert np.all((c >= 0) & (c <= 1))
    np.testing.assert_array_equal(c, region_confidence(f, g, p, confusion))
    # local only (no dataset evidence) is the formula without the rarity term
    np.testing.assert_allclose(region_confidence(f, g, p), sigmoid(region_logits(f)))


def test_sigmoid_is_stable():
    np.testing.assert_allclose(sigmoid(np.array([-1000.0, 0.0, 1000.0])), [0.0, 0.5, 1.0])


def test_weights_prefer_a_region_the_model_is_sure_about():
    sure = dict(area=[900], mean_score=[0.002], ring_given=[0.5], ring_predicted=[0.5], ring_score=[0.5], thickness=[3.0])
    unsure = dict(sure, mean_score=[0.08])
    assert region_logits(sure)[0] > region_logits(unsure)[0]
    assert region_logits(dict(sure, area=[1800]))[0] > region_logits(sure)[0]


def test_find_regions_keeps_the_most_likely_errors_first():
    # two compact regions: a larger one the model is unsure about, a smaller
    # one it is sure about (same shape evidence otherwise)
    issues = np.zeros((40, 60), bool)
    issues[2:10, 2:10] = True  # 64 px, score 0.09
    issues[20:26, 20:26] = True  # 36 px, score 0.001
    labels = np.zeros((40, 60), np.uint8)
    pred = np.where(issues, 1, 255).astype(np.uint8)
    scores = np.full((40, 60), 0.95, np.float32)
    scores[2:10, 2:10] = 0.09
    scores[20:26, 20:26] = 0.001
    regions = find_regions(issues, labels, pred, scores, min_area=16)
    assert [r.area for r in regions] == [36, 64]
    assert all(0 <= r.confidence <= 1 for r in regions)
    assert regions[0].confidence > regions[1].confidence
    # max_regions keeps the most likely ones, not the largest
    (top,) = find_regions(issues, labels, pred, scores, min_area=16, max_regions=1)
    assert top.area == 36
