"""Region evidence and confidence (segqual_fo.core.regions): hand-computed
features, the leave-own-pixels-out pair rarity, range and determinism."""

import numpy as np
import pytest

from segqual_fo.core.regions import (
    LOCAL_FEATURES,
    WEIGHTS,
    components_features,
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


# ---------------------------------------------------------------------------
# components_features (all regions at once) is region_features (one region
# at a time), value for value; find_regions built on it is the per-region
# loop it replaced


def _per_region_find_regions(issues, labels, pred, pixel_scores, *, min_area=1, max_regions=100):
    """find_regions as it was: region_features on each region's window."""
    import cv2

    if not issues.any():
        return []
    n, comp, stats, _ = cv2.connectedComponentsWithStats(issues.astype(np.uint8), connectivity=8)
    h, w = issues.shape
    regions = []
    for i in range(1, n):
        area = int(stats[i, cv2.CC_STAT_AREA])
        if area < min_area:
            continue
        x, y = int(stats[i, cv2.CC_STAT_LEFT]), int(stats[i, cv2.CC_STAT_TOP])
        bw, bh = int(stats[i, cv2.CC_STAT_WIDTH]), int(stats[i, cv2.CC_STAT_HEIGHT])
        y0, x0, y1, x1 = max(y - 1, 0), max(x - 1, 0), min(y + bh + 1, h), min(x + bw + 1, w)
        window = comp[y0:y1, x0:x1] == i
        box = window[y - y0 : y - y0 + bh, x - x0 : x - x0 + bw]
        given = int(np.bincount(labels[y : y + bh, x : x + bw][box].astype(np.intp)).argmax())
        predicted = int(np.bincount(pred[y : y + bh, x : x + bw][box].astype(np.intp)).argmax())
        f = region_features(window, labels[y0:y1, x0:x1], pixel_scores[y0:y1, x0:x1], given, predicted)
        regions.append(dict(f, bounding_box=(x / w, y / h, bw / w, bh / h), mask=box.copy(), given_class=given,
                            predicted_class=predicted))
    if not regions:
        return []
    logits = region_logits({k: np.array([r[k] for r in regions]) for k in LOCAL_FEATURES})
    areas = np.array([r["area"] for r in regions])
    order = np.lexsort((-areas, -logits))[:max_regions]
    confidence = sigmoid(logits)
    return [dict(regions[j], confidence=float(confidence[j])) for j in order]


def _assert_same_regions(got, expected):
    assert len(got) == len(expected)
    for r, e in zip(got, expected):
        for key in ("bounding_box", "given_class", "predicted_class", "area", *LOCAL_FEATURES, "confidence"):
            a, b = getattr(r, key), e[key]
            assert a == b or (a != a and b != b), (key, a, b)  # bit for bit (NaN == NaN)
            assert type(a) is type(b), (key, type(a), type(b))
        np.testing.assert_array_equal(r.mask, e["mask"])


def _random_case(rng, h, w, k, dtype, *, density, nan_share, fill=False):
    """Issue pixels: blobs plus scattered noise (many tiny regions), some
    touching the image's edges; ignored (NaN) pixels around and inside."""
    issues = rng.random((h, w)) < density
    for _ in range(rng.integers(1, 6)):
        r, c = rng.integers(0, h), rng.integers(0, w)
        issues[max(r - 3, 0) : r + rng.integers(1, 8), max(c - 4, 0) : c + rng.integers(1, 9)] = True
    if fill:
        issues[:] = True
    labels = rng.integers(0, k, size=(h, w)).astype(np.uint8)
    labels[: h // 2] = rng.integers(0, k)  # majorities with ties and without
    pred = np.where(issues, rng.integers(0, k, size=(h, w)), 255).astype(np.uint8)
    scores = rng.random((h, w)).astype(dtype)
    scores[rng.random((h, w)) < nan_share] = np.nan
    scores[rng.random((h, w)) < 0.2] = dtype(0.25)  # ties (a minimum reached twice)
    return issues, labels, pred, scores


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("seed", range(6))
def test_components_features_equal_region_features(seed, dtype):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(1, 60)), int(rng.integers(1, 90))
    issues, labels, pred, scores = _random_case(
        rng, h, w, int(rng.integers(1, 30)), dtype, density=rng.choice([0.02, 0.2, 0.6]), nan_share=rng.choice([0, 0.1])
    )
    for min_area in (1, 3, 16):
        for max_regions in (100, 5):
            got = find_regions(issues, labels, pred, scores, min_area=min_area, max_regions=max_regions)
            expected = _per_region_find_regions(issues, labels, pred, scores, min_area=min_area, max_regions=max_regions)
            _assert_same_regions(got, expected)


def test_components_features_edge_cases():
    rng = np.random.default_rng(7)
    # one region filling the whole image (no ring); a single pixel; a
    # region with ignored (NaN) pixels inside; regions on every edge
    for h, w in [(1, 1), (1, 7), (6, 1), (9, 13)]:
        issues, labels, pred, scores = _random_case(rng, h, w, 4, np.float32, density=0.3, nan_share=0.0, fill=True)
        _assert_same_regions(find_regions(issues, labels, pred, scores), _per_region_find_regions(issues, labels, pred, scores))
    issues = np.zeros((8, 9), bool)
    issues[0, :] = issues[:, 0] = issues[-1, 4:] = issues[3:5, -1] = True
    issues[4, 4] = True
    labels = np.arange(72).reshape(8, 9).astype(np.uint8) % 5
    pred = np.where(issues, 2, 255).astype(np.uint8)
    scores = np.linspace(0, 1, 72, dtype=np.float32).reshape(8, 9)
    scores[0, 3] = scores[1, 1] = scores[5, 5] = np.nan  # inside, on a ring, elsewhere
    got = find_regions(issues, labels, pred, scores)
    _assert_same_regions(got, _per_region_find_regions(issues, labels, pred, scores))
    assert any(r.area == 1 for r in got)
    # identical regions: the order falls back to area, then raster order
    issues = np.zeros((10, 40), bool)
    for c in (2, 12, 22, 32):
        issues[3:6, c : c + 3] = True
    labels = np.zeros((10, 40), np.uint8)
    pred = np.where(issues, 1, 255).astype(np.uint8)
    scores = np.full((10, 40), 0.5, np.float32)
    got = find_regions(issues, labels, pred, scores)
    _assert_same_regions(got, _per_region_find_regions(issues, labels, pred, scores))
    assert [r.bounding_box[0] for r in got] == sorted(r.bounding_box[0] for r in got)


def test_components_features_region_with_a_single_ring_pixel():
    # a 4x4 region minus its corner: the corner is its whole ring (one pixel),
    # so the ring features are that pixel's label and score, not the defaults
    comp = np.ones((4, 4), dtype=np.int32)
    comp[0, 0] = 0
    labels = np.full((4, 4), 2, dtype=np.int64)
    labels[0, 0] = 5
    pred = np.full((4, 4), 5, dtype=np.int64)
    scores = np.full((4, 4), 0.25)
    scores[0, 0] = 0.75
    given, predicted, f = components_features(comp, np.array([1]), labels, pred, scores)
    assert (given[0], predicted[0]) == (2, 5)
    assert f["ring_given"][0] == 0.0  # the ring pixel's label 5 is not the given class 2
    assert f["ring_predicted"][0] == 1.0  # but is the predicted one
    assert f["ring_score"][0] == 0.75
    assert f["area"][0] == 15.0
