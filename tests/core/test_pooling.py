import numpy as np
import pytest

from segqual_fo.core import softmin
from segqual_fo.core.pooling import softmin_1d, softmin_rows
from segqual_fo.errors import InvalidInputError


def test_softmin_hand_computed():
    s = np.array([1.0, 0.5])
    w = np.exp(-s / 0.1)
    expected = (s * w).sum() / w.sum()
    assert softmin(s, temperature=0.1) == pytest.approx(expected, abs=1e-15)
    # the worst pixel dominates
    assert softmin([1.0, 1.0, 1.0, 0.0], temperature=0.1) == pytest.approx(3 * np.exp(-10) / (1 + 3 * np.exp(-10)))


def test_softmin_limits():
    s = np.array([0.2, 0.9, 0.95, 1.0])
    assert softmin(s, temperature=1e-4) == pytest.approx(0.2, abs=1e-12)
    assert softmin(s, temperature=1e4) == pytest.approx(s.mean(), abs=1e-4)


def test_small_temperature_uses_shift_and_agrees(rng):
    s = rng.random(1000)
    t = 1e-3  # below the no-shift bound: shifted path
    shifted = np.exp((s.min() - s) / t)
    assert softmin_1d(s, t) == pytest.approx((s * shifted).sum() / shifted.sum(), rel=1e-12)
    assert np.isfinite(softmin_1d(s, 1e-5))


def test_rows_match_1d(rng):
    x = rng.random((4, 50)).astype(np.float32)
    np.testing.assert_allclose(softmin_rows(x, 0.1), [softmin_1d(r, 0.1) for r in x], rtol=1e-12)


def test_nan_entries_are_skipped():
    s = np.array([[1.0, 0.5, np.nan], [np.nan, np.nan, np.nan]])
    out = softmin(s, temperature=0.1, axis=1)
    assert out[0] == pytest.approx(softmin([1.0, 0.5]))
    assert np.isnan(out[1])
    assert np.isnan(softmin([np.nan]))


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "hot"])
def test_bad_temperature(bad):
    with pytest.raises(InvalidInputError, match="temperature"):
        softmin([0.5], temperature=bad)


@pytest.mark.parametrize("temperature", [1e-4, 0.002, 0.01, 0.1])
def test_scores_outside_0_1_pool_without_overflow(temperature):
    # raw scores (not in [0, 1]): above T = 1.01/600 the plain weights
    # exp(-s/T) underflow to 0 (0/0) for s >= 30 and overflow (inf/inf) for
    # s = -20 at T <= 0.01; shifted, the worst score dominates, as when
    # pooling over an axis
    import warnings

    # (also one score alone, and scores just above 1: 1.6 / 0.002 is past
    # exp's underflow too)
    for scores, worst in (([50.0, 30.0, 40.0], 30.0), ([-20.0, 0.5, 30.0], -20.0), ([50.0], 50.0), ([1.9, 1.6], 1.6)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = softmin(scores, temperature=temperature)
            by_axis = softmin(np.array([scores]), temperature=temperature, axis=1)[0]
        assert got == pytest.approx(by_axis, rel=1e-12)
        if temperature <= 0.01:
            assert got == pytest.approx(worst, abs=1e-12)
