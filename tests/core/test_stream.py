import numpy as np
import pytest

from segqual_fo.core import (
    METHODS,
    DirectoryCache,
    find_label_issues,
    get_label_quality_scores,
    iter_label_quality,
)
from segqual_fo.errors import InvalidInputError, InvalidLabelsError
from tests.core.helpers import blob_labels, plausible_model, random_probs


class LazyNpy:
    """A sequence that loads one .npy file per item, like a dataset on disk."""

    def __init__(self, paths):
        self.paths = paths
        self.loads = 0

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        self.loads += 1
        return np.load(self.paths[i], allow_pickle=False)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("downsample", [1, 2])
def test_stream_matches_array_api(rng, tmp_path, method, downsample):
    labels = blob_labels(rng, 6, 4, 16, 16)
    probs = plausible_model(rng, labels, 4, strength=1.0)
    paths = []
    for i, p in enumerate(probs):
        paths.append(tmp_path / f"{i}.npy")
        np.save(paths[-1], p)
    lazy = LazyNpy(paths)
    kw = dict(method=method, downsample=downsample) if method != "softmin" else dict(method=method)
    results = list(iter_label_quality(list(labels), lazy, with_issues=True, **kw))
    scores, px = get_label_quality_scores(labels, probs, **kw)
    assert [r.index for r in results] == list(range(6))
    np.testing.assert_array_equal([r.score for r in results], scores)
    for r in results:
        np.testing.assert_array_equal(r.pixel_scores, px[r.index])
    if method == "num_pixel_issues":
        masks = find_label_issues(labels, probs, downsample=downsample)
        for r in results:
            np.testing.assert_array_equal(r.issues, masks[r.index])
            assert r.num_issues == masks[r.index].sum()
            assert (r.pred[r.issues] != labels[r.index][r.issues]).all()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("downsample", [1, 2])
@pytest.mark.parametrize("on_disk", [False, True])
def test_probs_once_reads_each_image_once_and_changes_nothing(rng, tmp_path, method, downsample, on_disk):
    """For a model computing the probabilities, a second read is a second
    inference: with probs_once the issue count keeps the full-resolution
    scores instead, and every result is the same."""
    labels = blob_labels(rng, 5, 4, 16, 16)
    labels[2, :4, :4] = 255
    probs = plausible_model(rng, labels % 4, 4, strength=1.0)
    paths = []
    for i, p in enumerate(probs):
        paths.append(tmp_path / f"{i}.npy")
        np.save(paths[-1], p)
    kw = dict(method=method, downsample=downsample, ignore_index=255, with_issues=True, num_classes=4)
    twice, once = LazyNpy(paths), LazyNpy(paths)
    cache = DirectoryCache(str(tmp_path / "cache")) if on_disk else None
    a = list(iter_label_quality(list(labels), twice, **kw))
    b = list(iter_label_quality(list(labels), once, probs_once=True, cache=cache, **kw))
    assert once.loads == 5
    assert twice.loads == (10 if method == "num_pixel_issues" and downsample > 1 else 5)
    for ra, rb in zip(a, b):
        np.testing.assert_array_equal(ra.score, rb.score)
        np.testing.assert_array_equal(ra.pixel_scores, rb.pixel_scores)
        np.testing.assert_array_equal(ra.issues, rb.issues)
        np.testing.assert_array_equal(ra.pred, rb.pred)
        np.testing.assert_array_equal(ra.labels, rb.labels)


def test_softmin_issue_threshold(rng):
    labels = blob_labels(rng, 3, 3, 8, 8)
    probs = plausible_model(rng, labels, 3, strength=0.0)
    (r, *_) = iter_label_quality(labels, probs, with_issues=True, issue_threshold=0.2)
    expected = (r.pixel_scores < 0.2) & (probs[0].argmax(0) != labels[0])
    np.testing.assert_array_equal(r.issues, expected)
    assert (r.pred[~expected & (probs[0].argmax(0) == labels[0])] == r.sentinel).all()


def test_directory_cache(rng, tmp_path):
    probs = random_probs(rng, (4, 3, 8, 8))
    labels = rng.integers(0, 3, (4, 8, 8))
    a = [r.score for r in iter_label_quality(labels, probs, method="num_pixel_issues")]
    cache = DirectoryCache()
    b = [r.score for r in iter_label_quality(labels, probs, method="num_pixel_issues", cache=cache)]
    assert a == b
    assert cache._tmp is None  # the temporary directory was removed


def test_error_names_the_image(rng):
    probs = random_probs(rng, (3, 3, 4, 4))
    labels = np.zeros((3, 4, 4), int)
    labels[2, 0, 0] = 9
    with pytest.raises(InvalidLabelsError, match=r"labels\[2\]"):
        list(iter_label_quality(labels, probs))


@pytest.mark.parametrize("method", METHODS)
def test_skip_failures_reports_and_excludes(rng, method):
    labels = list(rng.integers(0, 3, (5, 8, 8)))
    probs = list(random_probs(rng, (5, 3, 8, 8)))
    probs[2] = probs[2] * 3  # not probabilities
    labels[4] = np.full((8, 8), 9)  # not classes
    results = list(iter_label_quality(labels, probs, method=method, skip_failures=True, with_issues=True))
    assert [r.failed for r in results] == [False, False, True, False, True]
    assert "sum to" in str(results[2].error) and "labels[4]" in str(results[4].error)
    good = [0, 1, 3]
    ref = list(iter_label_quality([labels[i] for i in good], [probs[i] for i in good], method=method))
    assert [results[i].score for i in good] == [r.score for r in ref]
    for i in good:
        np.testing.assert_array_equal(results[i].labels, labels[i])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("lowres", [False, True], ids=["dense", "lowres"])
@pytest.mark.parametrize("strength", [0.0, 3.0], ids=["unsure", "confident"])
def test_pred_scope_issues_changes_nothing_but_pred_outside_issues(rng, method, lowres, strength):
    # "issues": the argmax only where a pixel can be an issue (what the
    # FiftyOne pipeline reads); masks, scores and pred at issues unchanged.
    # An unsure model takes the dense argmax branch, a confident one the
    # candidate branch.
    from segqual_fo.core import LowResProbs

    labels = blob_labels(rng, 3, 4, 24, 32)
    if lowres:
        small = plausible_model(rng, labels[:, ::4, ::4], 4, strength=strength)
        probs = [LowResProbs(p, (24, 32)) for p in small]
    else:
        probs = plausible_model(rng, labels, 4, strength=strength)
    labels[:, 5:12, 5:12] = (labels[:, 5:12, 5:12] + 1) % 4
    labels[0, 0, :3] = 255
    kw = dict(method=method, with_issues=True, ignore_index=255, issue_threshold=0.3)
    full = list(iter_label_quality(labels, probs, **kw))
    scoped = list(iter_label_quality(labels, probs, pred_scope="issues", **kw))
    assert sum(r.num_issues for r in full) > 0
    for a, b in zip(full, scoped):
        assert a.score == b.score
        np.testing.assert_array_equal(a.pixel_scores, b.pixel_scores)
        np.testing.assert_array_equal(a.issues, b.issues)
        np.testing.assert_array_equal(b.pred, np.where(a.issues, a.pred, a.sentinel))


def test_pred_scope_is_checked(rng):
    with pytest.raises(InvalidInputError, match="pred_scope must be one of 'disagree', 'issues'"):
        next(iter_label_quality(np.zeros((1, 2, 2), int), random_probs(rng, (1, 2, 2, 2)), pred_scope="all"))
