"""segqual_fo.writers.documents: instance masks serialised as ``np.save``
writes them, zlib-compressed (the bytes FiftyOne stores)."""

import io
import zlib

import numpy as np
import pytest

from segqual_fo.writers import documents
from segqual_fo.writers.documents import serialize_mask


def _numpy_bytes(mask):
    with io.BytesIO() as f:
        np.save(f, np.asarray(mask), allow_pickle=False)
        return f.getvalue()


@pytest.mark.parametrize(
    "mask",
    [
        np.array([[True, True], [True, False]]),
        np.array([[True]]),
        np.ones((1, 7), bool),
        np.ones((7, 1), bool),
        np.zeros((0, 3), bool),
        np.eye(5, dtype=bool)[:, ::2],  # not contiguous
        np.asfortranarray(np.eye(4, 3, dtype=bool)),  # Fortran-ordered: its own header
        np.array([[0, 1], [2, 3]], dtype=np.uint8),  # not bool
        [[True, False]],  # a list
    ],
)
def test_serialize_mask_writes_numpys_bytes(mask):
    documents._MASK_HEADERS.clear()
    for _ in range(2):  # the first makes the header, the second reuses it
        out = serialize_mask(mask)
        assert zlib.decompress(out) == _numpy_bytes(mask)
        np.testing.assert_array_equal(np.load(io.BytesIO(zlib.decompress(out))), np.asarray(mask))


def test_masks_of_many_shapes_share_headers_only_by_shape():
    documents._MASK_HEADERS.clear()
    rng = np.random.default_rng(0)
    for _ in range(50):
        h, w = rng.integers(1, 9, size=2)
        mask = rng.random((h, w)) < 0.5
        assert zlib.decompress(serialize_mask(mask)) == _numpy_bytes(mask)
    assert all(isinstance(k, tuple) and len(k) == 2 for k in documents._MASK_HEADERS)
