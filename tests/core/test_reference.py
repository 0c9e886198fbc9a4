"""segqual_fo.core against an independent oracle (tests/reference.py).

The reference is first validated against cleanlab on the inputs cleanlab
accepts (same-size images, no ignored values, tie-free probabilities); the
library is then compared with the reference where cleanlab cannot go:
ignored values (255 and values inside 0..K-1), downsampling with whole and
partial ignored blocks, mixed image sizes, combinations of these, and ties at
the cut-off. A few tiny cases have their expected numbers worked out by hand
in the comments, so the reference itself is checked too.
"""

import math
import warnings

import numpy as np
import pytest

import segqual_fo.core as core
from segqual_fo.core import IssueFinder
from segqual_fo.errors import ShapeMismatchError, UnnormalizedProbabilitiesWarning
from tests.core.helpers import random_probs
from tests.reference import reference

# ---------------------------------------------------------------------------
# helpers


def _dataset(rng, sizes, k, *, concentration=0.5, flip=0.25, quantise=None):
    """Labels and float64 probabilities, one image per (H, W) in ``sizes``.

    Labels are the argmax with a fraction ``flip`` replaced at random, so
    there are confident disagreements to find. ``quantise=q`` makes every
    probability a multiple of 1/q (q a power of two: block means stay exact)
    so pixel scores tie a lot.
    """
    labels, probs = [], []
    for h, w in sizes:
        p = random_probs(rng, (k, h, w), dtype=np.float64, concentration=concentration)
        if quantise:
            counts = rng.multinomial(quantise, p.transpose(1, 2, 0).reshape(-1, k))
            p = (counts / quantise).reshape(h, w, k).transpose(2, 0, 1).copy()
        lab = p.argmax(0)
        wrong = rng.random((h, w)) < flip
        lab[wrong] = rng.integers(0, k, size=int(wrong.sum()))
        labels.append(lab.astype(np.int64))
        probs.append(p)
    return labels, probs


def _ignore_blocks(rng, labels, value, factor, *, whole=0.25, scattered=0.15):
    """Sets about ``whole`` of the factor x factor blocks entirely to
    ``value`` and about ``scattered`` of the other pixels too, so that some
    blocks are fully ignored and others only partly."""
    out = []
    for lab in labels:
        lab = lab.copy()
        h, w = lab.shape
        blocks = rng.random((h // factor, w // factor)) < whole
        lab[np.kron(blocks, np.ones((factor, factor), dtype=bool))] = value
        lab[rng.random((h, w)) < scattered] = value
        out.append(lab)
    return out


def _block_kinds(labels, ignore, factor):
    """(number of fully ignored blocks, number of partly ignored blocks)."""
    whole = partial = 0
    for lab in labels:
        h, w = lab.shape
        ign = np.isin(lab, ignore).reshape(h // factor, factor, w // factor, factor).sum(axis=(3, 1))
        whole += int((ign == factor * factor).sum())
        partial += int(((ign > 0) & (ign < factor * factor)).sum())
    return whole, partial


def _stack_if_same(arrays):
    """An (N, ...) array when all images share a shape, else the list."""
    return np.stack(arrays) if len({a.shape for a in arrays}) == 1 else list(arrays)


def _assert_masks_equal(got, expected):
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected)):
        np.testing.assert_array_equal(np.asarray(g), e, err_msg=f"issue mask of image {i}")


def _assert_pixel_scores(got, ref):
    for i, (g, e) in enumerate(zip(got, ref.pixel_scores)):
        np.testing.assert_array_equal(np.asarray(g, dtype=np.float64), e, err_msg=f"image {i}")


def check_against_reference(
    labels, probs, *, ignore=None, downsample=1, temperature=0.1, issue_threshold=0.1, unnormalized=False
):
    """Every public core entry point agrees with the reference on one dataset.

    ``unnormalized=True``: the class scores do not sum to 1; the entry points
    are run in the mode that accepts them (their warning is expected).
    """
    if unnormalized:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnnormalizedProbabilitiesWarning)
            return _check_against_reference(
                labels, probs, ignore, downsample, temperature, issue_threshold, True
            )
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnnormalizedProbabilitiesWarning)
        return _check_against_reference(labels, probs, ignore, downsample, temperature, issue_threshold, False)


def _check_against_reference(labels, probs, ignore, downsample, temperature, issue_threshold, unnormalized):
    ref = reference(
        labels,
        probs,
        ignore=() if ignore is None else ignore,
        downsample=downsample,
        temperature=temperature,
    )
    k = np.shape(probs[0])[0]

    # dataset-wide statistics: thresholds and T
    finder = IssueFinder(k, ignore_index=ignore, downsample=downsample, allow_unnormalized=unnormalized)
    for i in range(len(labels)):
        finder.update(labels[i], probs[i], index=i)
    sel = finder.finish()
    finder.close()
    # block means may differ in the last bit (summation order), so rtol
    np.testing.assert_allclose(sel.thresholds, ref.thresholds, rtol=1e-12, atol=0)
    assert sel.num_issues == ref.num_issues

    # find_label_issues
    masks = core.find_label_issues(labels, probs, downsample=downsample, ignore_index=ignore)
    _assert_masks_equal(masks, ref.issues)

    # get_label_quality_scores, both methods
    scores, pixel = core.get_label_quality_scores(
        labels, probs, method="num_pixel_issues", downsample=downsample, ignore_index=ignore
    )
    np.testing.assert_allclose(scores, ref.num_pixel_issues_scores, rtol=0, atol=1e-12)
    _assert_pixel_scores(pixel, ref)
    scores, pixel = core.get_label_quality_scores(
        labels, probs, method="softmin", temperature=temperature, ignore_index=ignore
    )
    np.testing.assert_allclose(scores, ref.softmin_scores, rtol=1e-12, atol=1e-15)
    _assert_pixel_scores(pixel, ref)

    # iter_label_quality(with_issues=True), both methods
    expected_issues = {
        "num_pixel_issues": ref.issues,
        "softmin": ref.threshold_issues(issue_threshold),
    }
    for method in core.METHODS:
        results = list(
            core.iter_label_quality(
                labels,
                probs,
                method=method,
                temperature=temperature,
                downsample=downsample if method == "num_pixel_issues" else 1,
                ignore_index=ignore,
                with_issues=True,
                issue_threshold=issue_threshold,
                unnormalized="warn" if unnormalized else "error",
            )
        )
        assert [r.index for r in results] == list(range(len(labels)))
        np.testing.assert_allclose(
            [r.score for r in results], ref.image_scores(method), rtol=1e-12, atol=1e-15, err_msg=method
        )
        assert [r.num_valid for r in results] == ref.num_valid.tolist()
        _assert_masks_equal([r.issues for r in results], expected_issues[method])
        _assert_pixel_scores([r.pixel_scores for r in results], ref)
        for r, am, valid, lab in zip(results, ref.argmax, ref.valid, ref.labels):
            # pred: the argmax where it differs from a valid label, else the sentinel
            disagree = valid & (am != lab)
            np.testing.assert_array_equal(r.pred, np.where(disagree, am, r.sentinel), err_msg=method)
    return ref


# ---------------------------------------------------------------------------
# the reference against cleanlab (inputs cleanlab accepts)


@pytest.mark.parametrize("downsample", [1, 2, 4])
def test_reference_matches_cleanlab(rng, downsample):
    from cleanlab.segmentation.filter import find_label_issues as cl_find_label_issues
    from cleanlab.segmentation.rank import get_label_quality_scores as cl_get_label_quality_scores

    labels, probs = _dataset(rng, [(16, 16)] * 4, 4)
    labels, probs = np.stack(labels), np.stack(probs)
    ref = reference(labels, probs, downsample=downsample, temperature=0.05)
    # cleanlab breaks ties arbitrarily: make sure there are none on the grid
    grid_scores = [
        g.probs[r][c][g.labels[r][c]]
        for g in ref.grids
        for r in range(g.shape[0])
        for c in range(g.shape[1])
    ]
    assert len(set(grid_scores)) == len(grid_scores)
    assert 0 < ref.num_issues and np.any(ref.issues)  # not a vacuous comparison

    cl_masks = cl_find_label_issues(labels, probs, downsample=downsample, n_jobs=1, verbose=False)
    np.testing.assert_array_equal(np.stack(ref.issues), cl_masks)
    cl_scores, cl_pixel = cl_get_label_quality_scores(
        labels, probs, method="num_pixel_issues", downsample=downsample, n_jobs=1, verbose=False
    )
    np.testing.assert_allclose(ref.num_pixel_issues_scores, cl_scores, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.stack(ref.pixel_scores), cl_pixel, rtol=0, atol=1e-6)
    cl_scores, _ = cl_get_label_quality_scores(
        labels, probs, method="softmin", temperature=0.05, verbose=False
    )
    np.testing.assert_allclose(ref.softmin_scores, cl_scores, rtol=0, atol=1e-6)


@pytest.mark.parametrize("temperature", [0.01, 0.1, 1.0])
def test_reference_softmin_matches_cleanlab(rng, temperature):
    from cleanlab.segmentation.rank import get_label_quality_scores as cl_get_label_quality_scores

    labels, probs = _dataset(rng, [(8, 12)] * 3, 5)
    labels, probs = np.stack(labels), np.stack(probs)
    ref = reference(labels, probs, temperature=temperature)
    cl_scores, _ = cl_get_label_quality_scores(
        labels, probs, method="softmin", temperature=temperature, verbose=False
    )
    np.testing.assert_allclose(ref.softmin_scores, cl_scores, rtol=0, atol=1e-6)


def test_reference_refuses_undivisible_sizes_like_the_library(rng):
    labels, probs = _dataset(rng, [(6, 8)], 3)
    with pytest.raises(ValueError, match="not divisible by downsample=4"):
        reference(labels, probs, downsample=4)
    with pytest.raises(ShapeMismatchError, match="not divisible by downsample=4"):
        core.find_label_issues(labels, probs, downsample=4)


# ---------------------------------------------------------------------------
# tiny cases computed by hand


def _pixels(rows):
    """(K,H,W) probabilities from an H x W nested list of K-vectors."""
    return np.array(rows, dtype=np.float64).transpose(2, 0, 1)


def test_hand_computed_2x4_with_ignored_pixel():
    # K=3; pixel (1,2) is ignored (255) although its argmax (0) differs.
    labels = np.array([[0, 0, 1, 2], [1, 2, 255, 1]])
    probs = _pixels(
        [
            [[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.5, 0.45, 0.05], [0.3, 0.3, 0.4]],
            [[0.55, 0.3, 0.15], [0.1, 0.1, 0.8], [0.9, 0.05, 0.05], [0.1, 0.8, 0.1]],
        ]
    )
    # self-confidence: [[.7, .2, .45, .4], [.3, .8, ignored, .8]]
    # t0 = (.7 + .2)/2 = .45; t1 = (.45 + .3 + .8)/3 = .51666..; t2 = (.4 + .8)/2 = .6
    # confident disagreements: (0,1) p1=.7 >= t1, (0,2) p0=.5 >= t0,
    # (1,0) p0=.55 >= t0  ->  T = 3; (0,3) agrees (argmax 2 = label).
    # the 3 lowest scores: (0,1) .2, (1,0) .3, (0,3) .4; (0,3) agrees -> dropped
    expected_mask = np.array([[False, True, False, False], [True, False, False, False]])
    expected_score = 1 - 2 / 7  # 7 valid pixels, 2 issues

    finder = IssueFinder(3, ignore_index=255)
    finder.update(labels, probs, index=0)
    sel = finder.finish()
    np.testing.assert_allclose(sel.thresholds, [0.45, 1.55 / 3, 0.6], rtol=1e-12)
    assert sel.num_issues == 3
    masks = core.find_label_issues(labels[None], probs[None], ignore_index=255)
    np.testing.assert_array_equal(masks[0], expected_mask)
    scores, _ = core.get_label_quality_scores(
        labels[None], probs[None], method="num_pixel_issues", ignore_index=255
    )
    assert scores[0] == pytest.approx(expected_score, abs=1e-15)

    ref = check_against_reference([labels], [probs], ignore=255)
    assert ref.num_issues == 3
    np.testing.assert_array_equal(ref.issues[0], expected_mask)


def test_hand_computed_softmin_2x4():
    # s is 1 or 0; with T = 1/ln 3 the softmax weights exp((1 - s)/T) are
    # 1 (s = 1) and 3 (s = 0).
    t = 1 / math.log(3)
    s = np.array([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 1.0]])
    probs = np.stack([s, 1 - s])  # K=2, every label 0
    labels = np.zeros((2, 4), dtype=np.int64)
    with_void = labels.copy()
    with_void[1, 2] = 255  # ignore one of the two zero scores
    # image 0: six 1s, two 0s: (6*1*1 + 2*0*3) / (6*1 + 2*3) = 6/12
    # image 1: six 1s, one 0:  6 / (6 + 3) = 2/3
    expected = [0.5, 2 / 3]

    stacked, _ = core.get_label_quality_scores(
        np.stack([labels, labels]), np.stack([probs, probs]), temperature=t
    )
    np.testing.assert_allclose(stacked, [0.5, 0.5], rtol=1e-12)
    scores, _ = core.get_label_quality_scores(
        [labels, with_void], [probs, probs], temperature=t, ignore_index=255
    )
    np.testing.assert_allclose(scores, expected, rtol=1e-12)
    results = list(
        core.iter_label_quality([labels, with_void], [probs, probs], temperature=t, ignore_index=255)
    )
    np.testing.assert_allclose([r.score for r in results], expected, rtol=1e-12)
    np.testing.assert_allclose(float(core.softmin(s, temperature=t)), 0.5, rtol=1e-12)
    ref = reference([labels, with_void], [probs, probs], ignore=255, temperature=t)
    np.testing.assert_allclose(ref.softmin_scores, expected, rtol=1e-12)


def test_hand_computed_downsample_drops_fully_ignored_blocks():
    # 2x6 image, K=3, downsample 2 -> three 2x2 blocks A | B | C.
    labels = np.array([[0, 0, 255, 255, 1, 1], [0, 2, 255, 255, 1, 1]])
    a, b, c = [0.1, 0.1, 0.8], [0.05, 0.9, 0.05], [0.02, 0.97, 0.01]
    probs = _pixels([[a, a, b, b, c, c], [a, a, b, b, c, c]])
    # A: valid labels 0,0,0,2 -> mean .5 -> rounds (half to even) to 0;
    #    block probs a: s = .1, argmax 2 (p = .8)
    # B: every pixel ignored -> not a block at all
    # C: label 1, s = .97 (argmax agrees)
    # t0 = .1, t1 = .97, t2 = 2e-6 (no block labelled 2) -> T = 1 (A)
    # flag A; its pixels labelled 0 have argmax 2 -> 3 issues; (1,1) is
    # labelled 2 = argmax -> not an issue. 8 valid pixels -> 1 - 3/8.
    # (Were B kept as a block labelled 0 with s = .05, it would take the only
    # slot and no pixel would be flagged.)
    expected_mask = np.zeros((2, 6), dtype=bool)
    expected_mask[0, 0] = expected_mask[0, 1] = expected_mask[1, 0] = True

    masks = core.find_label_issues(labels[None], probs[None], downsample=2, ignore_index=255)
    np.testing.assert_array_equal(masks[0], expected_mask)
    scores, _ = core.get_label_quality_scores(
        labels[None], probs[None], method="num_pixel_issues", downsample=2, ignore_index=255
    )
    assert scores[0] == pytest.approx(0.625, abs=1e-15)
    ref = check_against_reference([labels], [probs], ignore=255, downsample=2)
    assert ref.num_issues == 1
    np.testing.assert_array_equal(ref.issues[0], expected_mask)


# Tie order: X and Y are labelled 0 with s = .25; Z is labelled 1 (s = 1).
# t0 = .25, t1 = 1, t2 = 2e-6. X (argmax 2, p .75) is a confident
# disagreement, Y (argmax 1, p .5 < t1) is not: T = #X = 2. Six pixels tie at
# .25: the first two in (image, row-major) order are flagged; all of them
# disagree, so both become issues.
_X, _Y, _Z = [0.25, 0.0, 0.75], [0.25, 0.5, 0.25], [0.0, 1.0, 0.0]
_ROW_IMAGE = ([[1, 0, 0, 0]], [[_Z, _Y, _Y, _X]])  # 1x4: Z Y Y X
_SQUARE_IMAGE = ([[0, 0], [0, 1]], [[_X, _Y], [_Y, _Z]])  # 2x2: X Y / Y Z


@pytest.mark.parametrize(
    "images, expected_masks, expected_scores",
    [
        # the 1x4 image first: its pixels (0,1) and (0,2) take both slots
        ((_ROW_IMAGE, _SQUARE_IMAGE), [[[0, 1, 1, 0]], [[0, 0], [0, 0]]], [0.5, 1.0]),
        # the 2x2 image first: (0,0) X and (0,1) Y take them
        ((_SQUARE_IMAGE, _ROW_IMAGE), [[[1, 1], [0, 0]], [[0, 0, 0, 0]]], [0.5, 1.0]),
    ],
)
def test_hand_computed_tie_order(images, expected_masks, expected_scores):
    labels = [np.array(lab) for lab, _ in images]
    probs = [_pixels(p) for _, p in images]
    masks = core.find_label_issues(labels, probs)
    _assert_masks_equal(masks, [np.array(m, dtype=bool) for m in expected_masks])
    scores, _ = core.get_label_quality_scores(labels, probs, method="num_pixel_issues")
    np.testing.assert_allclose(scores, expected_scores, rtol=0, atol=1e-15)
    ref = check_against_reference(labels, probs)
    assert ref.num_issues == 2
    _assert_masks_equal(ref.issues, [np.array(m, dtype=bool) for m in expected_masks])


# ---------------------------------------------------------------------------
# the library against the reference, where cleanlab cannot go


@pytest.mark.parametrize("ignore", [255, [255, 7]])
def test_ignore_255(rng, ignore):
    labels, probs = _dataset(rng, [(12, 10)] * 3, 4)
    labels = [np.where(rng.random(lab.shape) < 0.2, 255, lab) for lab in labels]
    ref = check_against_reference(_stack_if_same(labels), _stack_if_same(probs), ignore=ignore)
    assert ref.num_issues > 0


@pytest.mark.parametrize("ignore", [1, [0, 255]])
def test_ignored_value_that_is_a_channel(rng, ignore):
    # an ignored class still has a probability channel: it can be a pixel's
    # argmax, but its threshold is +inf so it never counts towards T
    labels, probs = _dataset(rng, [(10, 12)] * 3, 4, flip=0.4)
    if 255 in np.atleast_1d(ignore):
        labels[0][:2] = 255
    ref = check_against_reference(np.stack(labels), np.stack(probs), ignore=ignore)
    channel = np.atleast_1d(ignore)[0]
    assert np.isinf(ref.thresholds[channel])
    # exercised: some flagged pixels predict the ignored class
    assert any((m & (am == channel)).any() for m, am in zip(ref.issues, ref.argmax))


@pytest.mark.parametrize("downsample", [2, 4])
@pytest.mark.parametrize("ignore", [255, 2])
def test_downsample_with_whole_and_partial_ignored_blocks(rng, downsample, ignore):
    labels, probs = _dataset(rng, [(16, 16)] * 3, 4)
    labels = _ignore_blocks(rng, labels, ignore, downsample)
    whole, partial = _block_kinds(labels, [ignore], downsample)
    assert whole > 0 and partial > 0  # both kinds of block are exercised
    ref = check_against_reference(np.stack(labels), np.stack(probs), ignore=ignore, downsample=downsample)
    assert ref.num_issues > 0 and any(m.any() for m in ref.issues)
    if ignore < 4:
        # an ignored class: some blocks hold valid pixels whose rounded mean
        # label is the ignored class itself; the library leaves those blocks
        # out too (IssueFinder.scan), and so does the reference
        dropped = 0
        for g, lab in zip(ref.grids, labels):
            for r in range(g.shape[0]):
                for c in range(g.shape[1]):
                    block = lab[r * downsample:(r + 1) * downsample, c * downsample:(c + 1) * downsample]
                    dropped += bool((block != ignore).any() and not g.valid[r][c])
        assert dropped > 0


@pytest.mark.parametrize("downsample", [1, 2])
def test_mixed_sizes(rng, downsample):
    labels, probs = _dataset(rng, [(8, 12), (12, 8), (4, 4), (10, 6)], 3)
    ref = check_against_reference(labels, probs, downsample=downsample)
    assert ref.num_issues > 0


def test_mixed_sizes_downsample_and_ignore_combined(rng):
    labels, probs = _dataset(rng, [(8, 16), (16, 8), (4, 4), (12, 12)], 5, flip=0.35)
    labels = _ignore_blocks(rng, labels, 255, 4)
    labels[1][labels[1] == 0] = 0  # class 0 is ignored too (a void class)
    labels[2][:] = 255  # one image with no valid pixel: NaN scores
    whole, partial = _block_kinds(labels, [255, 0], 4)
    assert whole > 0 and partial > 0
    ref = check_against_reference(labels, probs, ignore=[255, 0], downsample=4, temperature=0.03)
    assert np.isnan(ref.num_pixel_issues_scores[2]) and np.isnan(ref.softmin_scores[2])
    assert ref.num_issues > 0


@pytest.mark.parametrize(
    "sizes, ignore, downsample, quantise",
    [
        ([(8, 8)] * 4, None, 1, 8),
        ([(8, 8)] * 4, 255, 1, 8),
        ([(8, 8), (4, 8), (8, 4)], [255, 3], 2, 8),
        # 4x4 block means of multiples of 1/8 rarely tie: coarser input
        ([(16, 16)] * 4, 255, 4, 2),
    ],
)
def test_ties_at_the_cutoff(rng, sizes, ignore, downsample, quantise):
    # multiples of 1/q (q a power of two, so block means are exact): scores
    # tie in large groups, the cut-off falls inside a tie group and the
    # documented order (image, then row-major) decides which pixels are taken
    labels, probs = _dataset(rng, sizes, 4, quantise=quantise, concentration=1.0, flip=0.4)
    if ignore is not None:
        labels = _ignore_blocks(rng, labels, np.atleast_1d(ignore)[-1], downsample, whole=0.1)
    ref = check_against_reference(
        _stack_if_same(labels), _stack_if_same(probs), ignore=ignore, downsample=downsample
    )
    # the cut-off really splits a tie group: some, not all, of the grid
    # pixels with the cut-off score are flagged
    scores = [
        (g.probs[r][c][g.labels[r][c]], ref.flagged[i][r, c])
        for i, g in enumerate(ref.grids)
        for r in range(g.shape[0])
        for c in range(g.shape[1])
        if g.valid[r][c]
    ]
    cutoff = max(s for s, flagged in scores if flagged)
    at_cutoff = [flagged for s, flagged in scores if s == cutoff]
    assert any(at_cutoff) and not all(at_cutoff)


def test_float32_inputs_match_the_reference_on_their_values(rng):
    # float32 is computed in float32; the reference sees the same values
    labels, probs = _dataset(rng, [(12, 12)] * 3, 4)
    labels = [np.where(rng.random(lab.shape) < 0.1, 255, lab) for lab in labels]
    probs32 = np.stack(probs).astype(np.float32)
    ref = reference(np.stack(labels), probs32, ignore=255)
    masks = core.find_label_issues(np.stack(labels), probs32, ignore_index=255)
    _assert_masks_equal(masks, ref.issues)
    scores, _ = core.get_label_quality_scores(
        np.stack(labels), probs32, method="num_pixel_issues", ignore_index=255
    )
    np.testing.assert_allclose(scores, ref.num_pixel_issues_scores, rtol=0, atol=1e-12)
    scores, _ = core.get_label_quality_scores(np.stack(labels), probs32, ignore_index=255)
    np.testing.assert_allclose(scores, ref.softmin_scores, rtol=1e-12)


@pytest.mark.parametrize("downsample", [2, 4])
def test_downsample_renormalises_block_probabilities(rng, downsample):
    # per-pixel sums off by up to 5e-4 (the core accepts 1e-3): block means
    # are renormalised before scoring, so the block scores, thresholds and
    # ranking are those of the renormalised blocks
    labels, probs = _dataset(rng, [(16, 16)] * 3, 4)
    probs = [p * rng.uniform(1 - 5e-4, 1 + 5e-4, size=p.shape[1:]) for p in probs]
    labels = _ignore_blocks(rng, labels, 255, downsample, whole=0.1)
    ref = check_against_reference(np.stack(labels), np.stack(probs), ignore=255, downsample=downsample)
    assert ref.num_issues > 0


def test_unnormalised_pixels_are_scored_as_given(rng):
    # without downsampling nothing is renormalised (as in cleanlab): the
    # self-confidence is the stored probability
    labels, probs = _dataset(rng, [(10, 10)] * 3, 4)
    probs = [p * rng.uniform(1 - 5e-4, 1 + 5e-4, size=p.shape[1:]) for p in probs]
    ref = check_against_reference(np.stack(labels), np.stack(probs))
    np.testing.assert_array_equal(ref.pixel_scores[0], np.take_along_axis(probs[0], labels[0][None], 0)[0])


@pytest.mark.parametrize("downsample", [1, 2, 4])
@pytest.mark.parametrize("scale", [1.0, 40.0])
def test_unnormalised_scores_match_the_reference(rng, downsample, scale):
    # class scores that do not sum to 1 are used as given (cleanlab's
    # semantics, checked against cleanlab in test_unnormalized.py), also
    # where cleanlab cannot go: mixed sizes, ignored values (255 and a class
    # index), downsampling with ignored blocks. scale=40 puts most scores
    # above 1 (softmin's shifted form, the issue histogram's top bin).
    sizes = [(8, 8), (12, 16), (4, 8), (16, 12)]
    labels = [rng.integers(0, 4, size) for size in sizes]
    probs = [rng.random((4, *size)) * scale for size in sizes]
    labels = _ignore_blocks(rng, labels, 255, downsample, whole=0.1)
    labels[2][labels[2] == 3] = 255
    ref = check_against_reference(
        labels, probs, ignore=[255, 1], downsample=downsample, unnormalized=True
    )
    assert ref.num_issues > 0
