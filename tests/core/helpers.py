import numpy as np


def random_probs(rng, shape, *, dtype=np.float32, concentration=1.0):
    """(N,K,H,W) or (K,H,W) probabilities drawn from a Dirichlet, tie-free."""
    x = rng.gamma(concentration, size=shape).astype(np.float64) + 1e-12
    axis = 1 if len(shape) == 4 else 0
    x /= x.sum(axis=axis, keepdims=True)
    return x.astype(dtype)


def blob_labels(rng, n, k, h, w, cells=4):
    """Spatially coherent labels: a coarse random grid of classes upsampled."""
    out = np.empty((n, h, w), dtype=np.int64)
    for i in range(n):
        coarse = rng.integers(0, k, size=(cells, cells))
        rows = np.minimum(np.arange(h) * cells // h, cells - 1)
        cols = np.minimum(np.arange(w) * cells // w, cells - 1)
        out[i] = coarse[rows][:, cols]
    return out


def plausible_model(rng, labels, k, *, dtype=np.float32, strength=3.0):
    """Probabilities of a decent model: the labelled class gets a boost."""
    n, h, w = labels.shape
    logits = rng.normal(size=(n, k, h, w))
    np.put_along_axis(logits, labels[:, None], np.take_along_axis(logits, labels[:, None], 1) + strength, 1)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    return p.astype(dtype)


# ---------------------------------------------------------------------------
# probabilities at the model's resolution (tests of LowResProbs)


def softmax_probs(x, axis=0):
    """Softmax in float64 (the test's own, not the library's)."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def nearest(a, shape):
    """Nearest-neighbour upsampling of the last two axes to ``shape``
    (fancy indexing: the result is not C-contiguous, on purpose)."""
    rows = np.minimum(np.arange(shape[0]) * a.shape[-2] // shape[0], a.shape[-2] - 1)
    cols = np.minimum(np.arange(shape[1]) * a.shape[-1] // shape[1], a.shape[-1] - 1)
    return a[..., rows, :][..., cols]


def lowres_model(rng, k, small, dtype, *, logits=False, strength=4.0):
    """(K,h,w) model output as stored (probabilities in ``dtype``, uint8 as
    round(p * 255), or logits), and the coarse truth it was made from."""
    h, w = small
    coarse = rng.integers(0, k, size=(max(1, h // 3), max(1, w // 3)))
    truth = nearest(coarse, small)
    x = rng.normal(size=(k, h, w)) * 1.5
    np.put_along_axis(x, truth[None], np.take_along_axis(x, truth[None], 0) + strength, 0)
    if logits:
        return x.astype(dtype), truth
    p = softmax_probs(x)
    if dtype == np.uint8:
        return np.round(p * 255).astype(np.uint8), truth
    return p.astype(dtype), truth


def fullres_labels(rng, truth, full, k, ignore=None):
    """Full-resolution labels: the truth, upsampled, with wrong patches,
    scattered wrong pixels and (optionally) an ignored band."""
    lab = nearest(truth, full).astype(np.int64)
    H, W = full
    for _ in range(3):
        r, c = rng.integers(0, H - H // 4), rng.integers(0, W - W // 4)
        lab[r : r + H // 4, c : c + W // 4] = rng.integers(0, k)
    noise = rng.random(full) < 0.03
    lab[noise] = rng.integers(0, k, size=int(noise.sum()))
    if ignore is not None:
        lab[H // 3 : H // 3 + max(1, H // 8)] = ignore
        lab[0, 0] = ignore
    return lab


def assert_lowres_equals_dense(labels, lowres, *, method, ignore=None, downsample=1):
    """Every core entry point gives the same answer on the LowResProbs
    ``lowres`` as on their dense arrays: pixel scores, image scores, issue
    masks, argmax and regions; returns the number of issue pixels found."""
    from segqual_fo.core import find_label_issues, get_label_quality_scores, iter_label_quality
    from segqual_fo.writers.regions import find_regions

    dense = [lr.dense() for lr in lowres]
    kw = dict(method=method, ignore_index=ignore, downsample=downsample, n_jobs=1)
    if method == "softmin":
        kw.pop("downsample")
    a_img, a_px = get_label_quality_scores(labels, lowres, **kw)
    b_img, b_px = get_label_quality_scores(labels, dense, **kw)
    assert type(a_px) is type(b_px)  # stacked for one size, else a list
    for x, y in zip(a_px, b_px):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_allclose(a_img, b_img, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(a_img, b_img)  # in fact bit-identical
    if method == "num_pixel_issues":
        fa = find_label_issues(labels, lowres, ignore_index=ignore, downsample=downsample, n_jobs=1)
        fb = find_label_issues(labels, dense, ignore_index=ignore, downsample=downsample, n_jobs=1)
        for x, y in zip(fa, fb):
            np.testing.assert_array_equal(x, y)
    ra = list(iter_label_quality(labels, lowres, with_issues=True, **kw))
    rb = list(iter_label_quality(labels, dense, with_issues=True, **kw))
    found = 0
    for x, y in zip(ra, rb):
        assert x.score == y.score or (np.isnan(x.score) and np.isnan(y.score))
        np.testing.assert_array_equal(x.pixel_scores, y.pixel_scores)
        np.testing.assert_array_equal(x.issues, y.issues)
        np.testing.assert_array_equal(x.pred, y.pred)  # everywhere, issues included
        np.testing.assert_array_equal(x.labels, y.labels)
        rx = find_regions(x.issues, x.labels, x.pred, x.pixel_scores)
        ry = find_regions(y.issues, y.labels, y.pred, y.pixel_scores)
        assert len(rx) == len(ry)
        for p, q in zip(rx, ry):
            assert (p.bounding_box, p.given_class, p.predicted_class, p.area, p.mean_score) == (
                q.bounding_box,
                q.given_class,
                q.predicted_class,
                q.area,
                q.mean_score,
            )
            np.testing.assert_array_equal(p.mask, q.mask)
        found += x.num_issues
    return found
