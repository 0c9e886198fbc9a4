"""Softmin pooling is finite and accurate at every temperature.

The oracle is computed with ``decimal`` at 50 significant digits and no
shift at all: Decimal's exponent range (down to 1e-999999) holds
``exp(-s / T)`` even for ``s / T = 1e4``, so nothing underflows and the
result is the exact softmin to far below float64 precision. The library
shifts the exponent by the minimum score only below a temperature cut-off
(``segqual_fo.core.pooling``); a cut-off set too low, or no shift, makes
every weight underflow to 0 and the score NaN for scores near 1, which these
tests catch. Temperatures are dense around the cut-off (1.01/600 ~ 1.7e-3)
and around the point where ``exp(-1/T)`` leaves the normal float64 range
(T ~ 1/708 ~ 1.4e-3).
"""

from decimal import Decimal, localcontext

import numpy as np
import pytest

import segqual_fo.core as core

TEMPERATURES = [1e-4, 3e-4, 1e-3, 1.2e-3, 1.4e-3, 1.5e-3, 1.7e-3, 2e-3, 5e-3, 1e-2, 0.1, 1.0, 10.0]


def decimal_softmin(scores, temperature):
    """sum(s * w) / sum(w), w = exp(-s / T), in 50-digit decimal arithmetic.

    ``exp(-s/T)`` equals ``softmax((1 - s)/T)`` up to a common factor that
    cancels; the NaN entries (ignored pixels) are skipped; NaN if none is left.
    """
    values = [float(s) for s in scores if not np.isnan(s)]
    if not values:
        return float("nan")
    with localcontext() as ctx:
        ctx.prec = 50
        t = Decimal(temperature)  # exact: Decimal(float) keeps every bit
        weights = [(-Decimal(s) / t).exp() for s in values]
        num = sum(Decimal(s) * w for s, w in zip(values, weights))
        return float(num / sum(weights))


def _score_sets(rng):
    mixed = np.concatenate([rng.uniform(0, 1, 60), [0.0, 1.0, 0.5]])
    with_nan = mixed.copy()
    with_nan[rng.random(mixed.size) < 0.3] = np.nan
    return {
        "near_zero": rng.uniform(0, 1e-3, 64),
        "near_one": rng.uniform(0.8, 1.0, 64),
        "within_1e-7_of_one": 1.0 - rng.uniform(0, 1e-7, 64),
        "all_one": np.ones(16),
        "mixed": mixed,
        "single": np.array([0.3712]),
        "with_nan": with_nan,
    }


SET_NAMES = ["near_zero", "near_one", "within_1e-7_of_one", "all_one", "mixed", "single", "with_nan"]


@pytest.fixture
def score_sets(rng):
    return _score_sets(rng)


def _check(value, scores, temperature, what):
    valid = scores[~np.isnan(scores)]
    lo, hi = valid.min(), valid.max()
    expected = decimal_softmin(scores, temperature)
    assert np.isfinite(value), f"{what}: softmin is {value} at T={temperature}"
    # a weighted mean lies within the range of its values; allow the last
    # bit of rounding in the final division
    slack = 4 * np.finfo(np.float64).eps
    assert lo - slack <= value <= hi + slack, f"{what}: {value} outside [{lo}, {hi}] at T={temperature}"
    assert value == pytest.approx(expected, rel=1e-9, abs=0), f"{what} at T={temperature}"
    if hi - lo > 0:
        # where on [min, max] the value lies, accurately even when the
        # range is 1e-7 wide (rel 1e-9 above is blind at that scale)
        assert (value - lo) / (hi - lo) == pytest.approx((expected - lo) / (hi - lo), abs=1e-5), what


def _images_from_scores(scores):
    """A 1 x n image (labels 0, K=2) whose pixel scores are ``scores``;
    NaN scores become ignored pixels (label 255)."""
    s = np.where(np.isnan(scores), 0.5, scores)
    probs = np.stack([s, 1.0 - s])[:, None, :]  # (2, 1, n) float64
    labels = np.where(np.isnan(scores), 255, 0)[None, :]
    return labels, probs


@pytest.mark.parametrize("name", SET_NAMES)
@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_softmin_function_matches_decimal_reference(score_sets, name, temperature):
    scores = score_sets[name]
    _check(float(core.softmin(scores, temperature=temperature)), scores, temperature, f"softmin {name}")
    # the axis= path: every row pooled separately, NaN rows to NaN
    rows = np.stack([scores, np.full(scores.shape, np.nan), scores[::-1]])
    pooled = core.softmin(rows, temperature=temperature, axis=1)
    assert np.isnan(pooled[1])
    _check(float(pooled[0]), scores, temperature, f"softmin axis=1 {name}")
    _check(float(pooled[2]), scores, temperature, f"softmin axis=1 reversed {name}")
    # the same pixels as a (H,W) image
    if scores.size % 2 == 0:
        grid = scores.reshape(2, -1)
        _check(float(core.softmin(grid, temperature=temperature)), scores, temperature, f"softmin 2-D {name}")


@pytest.mark.parametrize("name", SET_NAMES)
@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_image_scores_match_decimal_reference(score_sets, name, temperature):
    scores = score_sets[name]
    labels, probs = _images_from_scores(scores)
    has_void = bool(np.isnan(scores).any())
    ignore = 255 if has_void else None
    # stacked (N,K,H,W) input: the batched path (without ignored values it
    # pools whole rows of a batch at once)
    got, _ = core.get_label_quality_scores(
        labels[None], probs[None], temperature=temperature, ignore_index=ignore
    )
    _check(float(got[0]), scores, temperature, f"stacked {name}")
    # a list of images of different sizes: the per-image path
    other_labels, other_probs = _images_from_scores(np.array([0.25, 0.75]))
    got, _ = core.get_label_quality_scores(
        [labels, other_labels], [probs, other_probs], temperature=temperature, ignore_index=ignore
    )
    _check(float(got[0]), scores, temperature, f"list {name}")
    results = list(core.iter_label_quality([labels], [probs], temperature=temperature, ignore_index=ignore))
    _check(results[0].score, scores, temperature, f"iter_label_quality {name}")


@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_batch_of_rows_with_different_ranges(rng, temperature):
    # one stacked batch holding a near-one, a near-zero and a mixed image:
    # a shift must be per image, not per batch
    sets = [1.0 - rng.uniform(0, 1e-7, 32), rng.uniform(0, 1e-3, 32), rng.uniform(0, 1, 32)]
    pairs = [_images_from_scores(s) for s in sets]
    labels = np.stack([lab for lab, _ in pairs])
    probs = np.stack([p for _, p in pairs])
    got, _ = core.get_label_quality_scores(labels, probs, temperature=temperature)
    for value, scores in zip(got, sets):
        _check(float(value), scores, temperature, "batch row")


def test_all_ignored_is_nan():
    assert np.isnan(core.softmin(np.full((2, 3), np.nan), temperature=1e-3))
    labels, probs = _images_from_scores(np.full(4, np.nan))
    got, _ = core.get_label_quality_scores(labels[None], probs[None], temperature=1e-3, ignore_index=255)
    assert np.isnan(got[0])


def test_low_temperature_approaches_the_minimum(rng):
    # the minimum is 0.01 below every other score: at T = 1e-4 the other
    # weights are below exp(-100)
    scores = np.concatenate([[0.2], rng.uniform(0.21, 1.0, 50)])
    assert core.softmin(scores, temperature=1e-4) == pytest.approx(0.2, abs=1e-12)


def test_high_temperature_approaches_the_mean(rng):
    # softmin = mean - var/T + O(1/T^2)
    scores = rng.uniform(0, 1, 100)
    value = core.softmin(scores, temperature=1e6)
    assert value == pytest.approx(scores.mean(), abs=1e-6)
    assert value <= scores.mean()


def test_softmin_grows_with_temperature(score_sets):
    # d softmin / d(1/T) = -variance of s under the weights: non-decreasing in T
    scores = score_sets["mixed"]
    values = [core.softmin(scores, temperature=t) for t in TEMPERATURES]
    assert all(b >= a - 1e-15 for a, b in zip(values, values[1:]))


@pytest.mark.parametrize("temperature", [1e-4, 1e-3])
def test_low_temperature_float32_scores_are_pooled_in_float64(rng, temperature):
    # the shifted form must widen float32 scores before subtracting and
    # scaling: float32 arithmetic would be off by ~1e-7 relative
    from segqual_fo.core.pooling import softmin_rows

    values = rng.uniform(0.0, 1.0, size=(3, 4096)).astype(np.float32)
    got = softmin_rows(values, temperature)
    v = values.astype(np.float64)
    w = np.exp((v.min(axis=1)[:, None] - v) / temperature)
    expected = (w * v).sum(axis=1) / w.sum(axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
    assert got.dtype == np.float64
