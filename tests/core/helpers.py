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
