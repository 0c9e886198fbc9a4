"""The confidence formula of issue regions, value by value (mutation survivors
of segqual_fo/core/regions.py; see .ci/mutation-verdicts/core-regions-rest.md).

Every expected value is the documented formula written out by hand:
``sigmoid(0.84 log(area) - 0.84 log(mean_score) + 1.68 min(ring_given,
ring_predicted) - 1.68 ring_score - 1.68 log(thickness) + 0.21 rarity - 9.6)``.
"""

import math
import warnings

import numpy as np
import pytest

from segqual_fo.core.regions import (
    ConfidenceWeights,
    pair_rarity,
    region_confidence,
    region_features,
    region_logits,
    sigmoid,
)

# one region; min_score is not a term of the formula
FEATURES = {
    "area": [100],
    "mean_score": [0.01],
    "min_score": [0.0],
    "ring_given": [0.6],
    "ring_predicted": [0.3],
    "ring_score": [0.8],
    "thickness": [1.5],
}
# the default weights' logit of FEATURES
Z_DEFAULT = (
    0.84 * math.log(100) - 0.84 * math.log(0.01) + 1.68 * 0.3 - 1.68 * 0.8 - 1.68 * math.log(1.5) - 9.6
)

# every term its own weight, so a lost or flipped term shows
CUSTOM = ConfidenceWeights(
    log_area=1.0,
    log_mean_score=2.0,
    ring_given=3.0,
    ring_predicted=5.0,
    ring_mixed=7.0,
    ring_score=11.0,
    log_thickness=13.0,
    pair_rarity=17.0,
    bias=19.0,
)
Z_CUSTOM = (
    1.0 * math.log(100)
    + 2.0 * math.log(0.01)
    + 3.0 * 0.6
    + 5.0 * 0.3
    + 7.0 * 0.3
    + 11.0 * 0.8
    + 13.0 * math.log(1.5)
    + 19.0
)


def _sig(z):
    return 1.0 / (1.0 + math.exp(-z))


def test_region_logits_by_hand_default_weights():
    z = region_logits(FEATURES)
    assert z.dtype == np.float64
    np.testing.assert_allclose(z, [Z_DEFAULT], rtol=1e-12)


def test_region_logits_by_hand_custom_weights():
    np.testing.assert_allclose(region_logits(FEATURES, weights=CUSTOM), [Z_CUSTOM], rtol=1e-12)


def test_region_logits_one_pixel_region():
    # log(1) = 0: a one-pixel region adds nothing for its area
    f = dict(FEATURES, area=[1])
    np.testing.assert_allclose(region_logits(f), [Z_DEFAULT - 0.84 * math.log(100)], rtol=1e-12)


def test_region_logits_rarity_term():
    # float32 rarity (3.0 is exact in float32) is still weighted in float64
    z = region_logits(FEATURES, np.array([3.0], dtype=np.float32))
    assert z.dtype == np.float64
    np.testing.assert_allclose(z, [Z_DEFAULT + 0.21 * 3.0], rtol=1e-13)


def test_region_logits_float32_features_in_float64():
    f32 = {k: np.array(v, dtype=np.float32) for k, v in FEATURES.items()}
    x = {k: float(v[0]) for k, v in f32.items()}  # the float32 values, exactly
    expected = (
        0.84 * math.log(x["area"])
        - 0.84 * math.log(x["mean_score"])
        + 1.68 * min(x["ring_given"], x["ring_predicted"])
        - 1.68 * x["ring_score"]
        - 1.68 * math.log(x["thickness"])
        - 9.6
    )
    z = region_logits(f32)
    assert z.dtype == np.float64
    np.testing.assert_allclose(z, [expected], rtol=1e-13)


def test_sigmoid_by_hand():
    z = np.array([-3.0, -1.0, 0.0, 0.25, 0.5, 2.0])
    np.testing.assert_allclose(sigmoid(z), [_sig(v) for v in z], rtol=1e-14)


def test_sigmoid_float32_input_gives_float64():
    z32 = np.array([-0.3, 0.7], dtype=np.float32)
    s = sigmoid(z32)
    assert s.dtype == np.float64
    np.testing.assert_allclose(s, [_sig(float(v)) for v in z32], rtol=1e-14)


def test_pair_rarity_region_with_all_issue_pixels():
    # the region holds every issue pixel of the run: nothing is left,
    # so its pair is as rare as any of the K * K = 4 (Laplace)
    r = pair_rarity(np.array([[0, 7], [0, 0]]), np.array([0]), np.array([1]), np.array([7]))
    np.testing.assert_allclose(r, [math.log(4)], rtol=1e-14)


def test_pair_rarity_accepts_float_class_arrays():
    confusion = np.array([[0, 100], [5, 0]])
    r = pair_rarity(confusion, np.array([0.0, 1.0]), np.array([1.0, 0.0]), np.array([10, 1]))
    # pair (0,1): (100 - 10 + 1) / (105 - 10 + 4); pair (1,0): (5 - 1 + 1) / (105 - 1 + 4)
    np.testing.assert_allclose(r, [-math.log(91 / 99), -math.log(5 / 108)], rtol=1e-14)


def test_pair_rarity_float32_confusion_is_summed_in_float64():
    # 2**24 + 1 is not a float32: the total must be counted in float64
    confusion = np.array([[2**24, 1], [0, 0]], dtype=np.float32)
    r = pair_rarity(confusion, np.array([0]), np.array([1]), np.array([1]))
    np.testing.assert_allclose(r, [-math.log(1 / (2**24 + 4))], rtol=1e-14)


def test_region_confidence_by_hand_with_confusion():
    confusion = np.array([[0, 100], [5, 0]])
    # the region (area 100) is all of its pair: rarity -log(1 / (105 - 100 + 4))
    c = region_confidence(FEATURES, [0], [1], confusion)
    np.testing.assert_allclose(c, [_sig(Z_DEFAULT + 0.21 * math.log(9))], rtol=1e-12)
    # without the run's confusion: the local part alone
    np.testing.assert_allclose(region_confidence(FEATURES, [0], [1]), [_sig(Z_DEFAULT)], rtol=1e-12)


def test_region_confidence_uses_the_given_weights():
    confusion = np.array([[0, 100], [5, 0]])
    c = region_confidence(FEATURES, [0], [1], confusion, weights=CUSTOM)
    np.testing.assert_allclose(c, [_sig(Z_CUSTOM + 17.0 * math.log(9))], rtol=1e-12)
    c = region_confidence(FEATURES, [0], [1], weights=CUSTOM)
    np.testing.assert_allclose(c, [_sig(Z_CUSTOM)], rtol=1e-12)


def test_region_features_all_nan_inside_warns_nothing():
    region = np.zeros((3, 3), bool)
    region[1, 1] = True
    scores = np.full((3, 3), 0.5)
    scores[1, 1] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = region_features(region, np.zeros((3, 3), int), scores, given=0, predicted=1)
    assert f["area"] == 1
    assert math.isnan(f["mean_score"]) and math.isnan(f["min_score"])
    assert f["ring_score"] == pytest.approx(0.5)
