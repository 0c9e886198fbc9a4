"""FiftyOne fixtures: the real embedded database, uniquely named datasets
deleted after each test."""

import uuid

import pytest

import fiftyone as fo


@pytest.fixture
def make_dataset():
    created = []

    def _make(prefix="segqual-test"):
        ds = fo.Dataset(f"{prefix}-{uuid.uuid4().hex[:12]}")
        created.append(ds)
        return ds

    yield _make
    for ds in created:
        if not ds.deleted:
            ds.delete()
