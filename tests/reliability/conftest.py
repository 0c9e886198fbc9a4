"""``make_dataset`` comes from tests/conftest.py."""

import pytest

from tests.fo.helpers import segmentation_dataset


@pytest.fixture
def persistent(make_dataset, tmp_path, rng):
    """A persistent dataset of 80 small images (children load it by name)."""
    ds = make_dataset("segqual-rel", persistent=True)
    labels, probs, ids = segmentation_dataset(ds, tmp_path, rng, n=80, shape=(24, 32))
    return ds, labels, probs, ids
