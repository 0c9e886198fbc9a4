"""Experimental candidate scores (benchmarks.experimental.candidates): each one
drops on a planted error, skips ignored pixels and stays in [0, 1]; the
building blocks (statistics, components, boundary distance) are exact."""

import subprocess
import sys
from collections import deque

import numpy as np
import pytest

from segqual_fo.core import get_label_quality_scores
from benchmarks.experimental.candidates import (
    CANDIDATES,
    NEEDS_DATASET_STATS,
    DatasetStats,
    boundary_distance,
    class_calibrated_softmin,
    collect_stats,
    confusion_calibrated_softmin,
    connected_components,
    excess_disagreement_score,
    image_stats,
    label_boundaries,
    region_score,
    score_dataset,
    void_conditional_softmin,
)
from tests.core.helpers import random_probs

K = 3


def confident_probs(labels, k=K, p=0.9, dtype=np.float32):
    """(K,H,W) probabilities with ``p`` on ``labels`` and the rest spread evenly."""
    probs = np.full((k,) + labels.shape, (1 - p) / (k - 1), dtype=np.float64)
    np.put_along_axis(probs, labels[None].astype(np.intp), p, axis=0)
    return probs.astype(dtype)


def scene():
    """12x12 labels: class 0 left, class 1 right, a 4x4 class-2 object inside
    the left half; the model sees exactly that."""
    labels = np.zeros((12, 12), dtype=np.int64)
    labels[:, 6:] = 1
    labels[4:8, 1:5] = 2
    return labels, confident_probs(labels)


def dropped(labels):
    """The class-2 object relabelled as its surroundings (a planted error)."""
    out = labels.copy()
    out[out == 2] = 0
    return out


def score_all(name, labels_list, probs_list, ignore=(), **params):
    return score_dataset(name, labels_list, probs_list, ignore=ignore, **params)


# -- each candidate ------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(CANDIDATES))
def test_planted_error_lowers_the_score(name):
    labels, probs = scene()
    bad = dropped(labels)
    # a small dataset: three clean copies and the corrupted one
    scores, pixels = score_all(name, [labels, labels, labels, bad], [probs] * 4)
    assert scores[3] < scores[:3].min()
    # the planted pixels are the most suspicious ones of the corrupted image
    planted = bad != labels
    assert pixels[3][planted].max() < pixels[3][~planted].min()


@pytest.mark.parametrize("name", sorted(CANDIDATES))
def test_ignored_pixels_are_excluded(name):
    labels, probs = scene()
    labels = dropped(labels)
    labels[0:3, :] = 255  # an ignored band
    other = probs.copy()
    other[:, 0:3, :] = confident_probs(np.full((3, 12), 1))  # anything there
    relabelled = labels.copy()
    relabelled[0:2, :] = 254  # another ignored value
    ign = (254, 255)
    a, pa = score_all(name, [labels] * 3, [probs] * 3, ignore=ign)
    b, pb = score_all(name, [labels] * 3, [other] * 3, ignore=ign)
    c, _ = score_all(name, [relabelled] * 3, [probs] * 3, ignore=ign)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert np.isnan(pa[0][0:3]).all() and not np.isnan(pa[0][3:]).any()
    np.testing.assert_array_equal(pa[0], pb[0])


@pytest.mark.parametrize("name", sorted(CANDIDATES))
def test_all_ignored_image_scores_nan(name):
    labels = np.full((4, 5), 255)
    score, px = CANDIDATES[name](labels, random_probs(np.random.default_rng(0), (K, 4, 5)), ignore=(255,))
    assert np.isnan(score) and np.isnan(px).all()


@pytest.mark.parametrize("name", sorted(CANDIDATES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_scores_are_in_the_unit_interval(rng, name, dtype):
    k, n = 5, 4
    probs = [random_probs(rng, (k, 16, 20), concentration=0.3) for _ in range(n)]
    if dtype == np.uint8:
        probs = [np.round(p * 255).astype(np.uint8) for p in probs]
    else:
        probs = [p.astype(dtype) for p in probs]
    labels = [rng.integers(0, k, (16, 20)) for _ in range(n)]
    scores, pixels = score_all(name, labels, probs)
    assert ((scores >= 0) & (scores <= 1)).all()
    for px in pixels:
        assert px.shape == (16, 20) and ((px >= 0) & (px <= 1)).all()


@pytest.mark.parametrize(
    "name,params",
    [
        ("softmin", {}),
        ("softmin", {"temperature": 0.03}),
        ("void_conditional_softmin", {}),  # no ignored value is a channel
        ("class_calibrated_softmin", {}),  # without dataset statistics
        ("confusion_calibrated_softmin", {}),
        ("boundary_weighted_softmin", {"boundary_width": 0}),
    ],
)
def test_neutral_settings_reduce_to_the_library_softmin(rng, name, params):
    probs = random_probs(rng, (6, K, 10, 12))
    labels = rng.integers(0, K, (6, 10, 12))
    labels[0, :2] = 255
    t = params.get("temperature", 0.1)
    ref, ref_px = get_label_quality_scores(labels, probs, temperature=t, ignore_index=255)
    for i in range(6):
        s, px = CANDIDATES[name](labels[i], probs[i], ignore=(255,), **params)
        assert s == pytest.approx(ref[i], abs=1e-6)
        np.testing.assert_allclose(px, ref_px[i], atol=1e-6)


# -- hand-computed values ----------------------------------------------------------
def test_region_score_hand_computed():
    labels = np.zeros((4, 4), dtype=np.int64)
    model = labels.copy()
    model[:2, :2] = 1  # the model sees a 2x2 object of class 1 the label lacks
    probs = confident_probs(model, k=2, dtype=np.float64)  # s = 0.1 inside it
    # the region covers all of the predicted object (rho = 1) ...
    s, px = region_score(labels, probs)
    assert s == pytest.approx(1 - 4 * 0.9 / 16)
    np.testing.assert_allclose(px[:2, :2], 0.1)
    np.testing.assert_allclose(px[2:, :], 1.0)
    # ... and a quarter of the labelled one
    s, _ = region_score(labels, probs, relative_to="label")
    assert s == pytest.approx(1 - 4 * 0.25 * 0.9 / 16)
    s, _ = region_score(labels, probs, relative_to="label", exponent=2.0)
    assert s == pytest.approx(1 - 4 * 0.0625 * 0.9 / 16)
    with pytest.raises(ValueError, match="relative_to"):
        region_score(labels, probs, relative_to="both")


def test_excess_disagreement_hand_computed():
    labels = np.array([[0, 1]])
    probs = np.array([[[0.5, 0.8]], [[0.5, 0.2]]])
    # gini: 0.5 and 0.68; s: 0.5 and 0.2; excess: 0 and 0.48
    s, px = excess_disagreement_score(labels, probs)
    assert s == pytest.approx((1 - 0.24) / 2)
    np.testing.assert_allclose(px, [[1.0, 0.52]], atol=1e-6)


def test_class_calibrated_divides_by_the_class_threshold():
    labels = np.array([[0, 0, 1, 1]])
    probs = np.array([[[0.8, 0.6, 0.3, 0.1]], [[0.2, 0.4, 0.7, 0.9]]])
    stats = image_stats(labels, probs)
    t = stats.thresholds()
    # one pseudo-pixel at the overall mean, 0.75
    np.testing.assert_allclose(t, [(1.4 + 0.75) / 3, (1.6 + 0.75) / 3])
    _, px = class_calibrated_softmin(labels, probs, dataset_stats=stats)
    np.testing.assert_allclose(px, [[min(1, 0.8 / t[0]), 0.6 / t[0], 0.7 / t[1], min(1, 0.9 / t[1])]], rtol=1e-6)


def test_confusion_weight_is_the_scaled_surprise():
    labels = np.array([[0, 0]])
    probs = np.array([[[0.9, 0.2]], [[0.1, 0.8]]])  # pixel 2: label 0, argmax 1
    stats = DatasetStats(
        class_sums=np.zeros(2), class_counts=np.array([10, 0]), confusion=np.array([[7, 3], [0, 0]])
    )
    rate = (3 + 0.5) / (10 + 1)
    _, px = confusion_calibrated_softmin(labels, probs, dataset_stats=stats, surprise_scale=2.0)
    w = min(1.0, -np.log(rate) / 2.0)
    np.testing.assert_allclose(px, [[0.9, 1 - w * 0.8]], rtol=1e-6)


def test_void_conditional_renormalises_without_the_void_channel():
    labels = np.array([[0, 1, 2]])  # 2 = void, also a model output
    probs = np.array([[[0.3, 0.1, 0.2]], [[0.1, 0.3, 0.2]], [[0.6, 0.6, 0.6]]])
    s, px = void_conditional_softmin(labels, probs, ignore=(2,))
    np.testing.assert_allclose(px[0, :2], [0.75, 0.75], rtol=1e-6)
    assert np.isnan(px[0, 2])
    # plain self-confidence would be 0.3: the void mass is not disagreement
    assert s == pytest.approx(0.75, rel=1e-6)


# -- dataset statistics ------------------------------------------------------------------
def test_stats_add_subtract_and_leave_one_out(rng):
    probs = [random_probs(rng, (K, 6, 7)) for _ in range(3)]
    labels = [rng.integers(0, K, (6, 7)) for _ in range(3)]
    total = collect_stats(labels, probs)
    parts = [image_stats(lab, p) for lab, p in zip(labels, probs)]
    np.testing.assert_array_equal((total - parts[0]).confusion, (parts[1] + parts[2]).confusion)
    np.testing.assert_allclose((total - parts[0]).class_sums, (parts[1] + parts[2]).class_sums)
    assert total.confusion.sum() == 3 * 42 and total.class_counts.sum() == 3 * 42
    np.testing.assert_allclose(total.confusion_rates().sum(axis=1), 1.0)


def test_leave_one_out_keeps_an_error_from_calibrating_itself():
    labels, probs = scene()
    bad = labels.copy()
    bad[bad == 2] = 1  # wrong class: a (given 1, argmax 2) pair nothing else has
    data_l, data_p = [labels, labels, bad], [probs] * 3
    # a large scale keeps the weights below their cap of 1
    kw = dict(surprise_scale=20.0)
    loo, _ = score_dataset("confusion_calibrated_softmin", data_l, data_p, **kw)
    full, _ = score_dataset("confusion_calibrated_softmin", data_l, data_p, leave_one_out=False, **kw)
    assert loo[2] < full[2]


STATS_PARAMS = {"class_calibrated_softmin": {}, "confusion_calibrated_softmin": {"surprise_scale": 20.0}}


def test_every_stats_candidate_is_covered():
    assert set(STATS_PARAMS) == set(NEEDS_DATASET_STATS)


@pytest.mark.parametrize("name", sorted(NEEDS_DATASET_STATS))
def test_stats_candidates_use_the_second_pass(name):
    labels, probs = scene()
    bad = dropped(labels)
    params = STATS_PARAMS[name]
    with_stats, _ = score_dataset(name, [labels, bad], [probs, probs], **params)
    alone = CANDIDATES[name](bad, probs, **params)[0]
    assert with_stats[1] != alone


def test_score_dataset_rejects_unknown_names():
    labels, probs = scene()
    with pytest.raises(ValueError, match="unknown candidate"):
        score_dataset("nope", [labels], [probs])


# -- building blocks ------------------------------------------------------------------
def flood_fill(key, connectivity):
    """Reference labelling: breadth-first search, regions in raster order."""
    h, w = key.shape
    out = np.zeros((h, w), dtype=np.int64)
    steps = [(0, 1), (1, 0), (0, -1), (-1, 0)]
    if connectivity == 8:
        steps += [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    n = 0
    for y in range(h):
        for x in range(w):
            if key[y, x] < 0 or out[y, x]:
                continue
            n += 1
            out[y, x] = n
            todo = deque([(y, x)])
            while todo:
                cy, cx = todo.popleft()
                for dy, dx in steps:
                    ny, nx = cy + dy, cx + dx
                    if 0 <= ny < h and 0 <= nx < w and not out[ny, nx] and key[ny, nx] == key[y, x]:
                        out[ny, nx] = n
                        todo.append((ny, nx))
    return out, n


def test_connected_components_hand_made():
    key = np.array(
        [
            [0, 0, -1, 1],
            [-1, 0, 1, -1],
            [2, -1, 0, 0],
        ]
    )
    comp8, n8 = connected_components(key)
    np.testing.assert_array_equal(comp8, [[1, 1, 0, 2], [0, 1, 2, 0], [3, 0, 1, 1]])
    assert n8 == 3
    comp4, n4 = connected_components(key, connectivity=4)
    np.testing.assert_array_equal(comp4, [[1, 1, 0, 2], [0, 1, 3, 0], [4, 0, 5, 5]])
    assert n4 == 5
    with pytest.raises(ValueError, match="connectivity"):
        connected_components(key, connectivity=6)


@pytest.mark.parametrize("connectivity", [4, 8])
def test_connected_components_match_flood_fill(rng, connectivity):
    for _ in range(25):
        h, w = rng.integers(1, 30, size=2)
        key = rng.integers(-1, 3, (h, w))
        got, n = connected_components(key, connectivity=connectivity)
        ref, n_ref = flood_fill(key, connectivity)
        assert n == n_ref
        np.testing.assert_array_equal(got, ref)


def test_connected_components_long_snake():
    key = np.full((41, 40), -1)
    key[::2] = 0
    key[1::4, -1] = 0
    key[3::4, 0] = 0
    comp, n = connected_components(key)
    assert n == 1 and (comp[key >= 0] == 1).all()


def test_label_boundaries_and_distance():
    labels = np.zeros((1, 7), dtype=np.int64)
    labels[0, 5:] = 1
    b = label_boundaries(labels)
    np.testing.assert_array_equal(b, [[0, 0, 0, 0, 1, 1, 0]])
    np.testing.assert_array_equal(boundary_distance(b, 3), [[3, 3, 2, 1, 0, 0, 1]])


def test_candidates_module_is_numpy_only():
    code = (
        "import sys, benchmarks.experimental.candidates; "
        "print(','.join(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('fiftyone', 'cv2', 'scipy', 'sklearn', 'cleanlab'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
