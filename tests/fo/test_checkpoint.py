"""Run totals of committed samples and their checkpoint document
(segqual_fo.fo.checkpoint), by hand, on the real embedded database."""

import numpy as np
import pytest

import fiftyone.core.odm as foo

from segqual_fo.fo.checkpoint import COLLECTION, RunCheckpoint, Totals, fingerprint

A = "65a1b2c3d4e5f60718293a4b"
B = "65a1b2c3d4e5f60718293a4c"
TOP = "f" * 24  # 2**96 - 1


def _stored(key):
    return foo.get_db_conn()[COLLECTION].find_one({"_id": key})


# ------------------------------------------------------------ fingerprint


def test_fingerprint_is_the_sum_of_the_ids_modulo_2_to_the_96():
    assert COLLECTION == "segqual_run_checkpoints"
    assert fingerprint([]) == 0
    assert fingerprint([A]) == int(A, 16)
    assert fingerprint([A, B]) == int(A, 16) + int(B, 16) == fingerprint([B, A])
    assert fingerprint([TOP, "0" * 23 + "2"]) == 1  # (2**96 - 1 + 2) mod 2**96
    assert fingerprint(iter([A])) == int(A, 16)


# ----------------------------------------------------------------- Totals


def test_zeros():
    t = Totals.zeros(3)
    assert t.confusion.dtype == np.int64
    np.testing.assert_array_equal(t.confusion, np.zeros(9))
    assert (t.num_samples, t.fingerprint, t.num_undefined) == (0, 0, 0)


def test_add_sample_counts_pairs_and_samples():
    t = Totals.zeros(2)
    # repeated pair codes accumulate (np.add.at, not fancy assignment)
    t.add_sample(A, np.array([1, 1, 2]), np.array([3, 4, 5]), False)
    np.testing.assert_array_equal(t.confusion, [0, 7, 5, 0])
    assert (t.num_samples, t.fingerprint, t.num_undefined) == (1, int(A, 16), 0)
    t.add_sample(B, np.empty(0, np.int64), np.empty(0, np.int64), True)
    np.testing.assert_array_equal(t.confusion, [0, 7, 5, 0])
    assert (t.num_samples, t.fingerprint, t.num_undefined) == (2, int(A, 16) + int(B, 16), 1)
    t.add_sample(A, np.array([3]), np.array([2]), 1)  # a truthy flag counts once
    assert t.num_undefined == 2


def test_add_sample_fingerprint_wraps_at_2_to_the_96():
    t = Totals.zeros(1)
    t.add_sample(TOP, np.empty(0, np.int64), np.empty(0, np.int64), False)
    t.add_sample("0" * 23 + "2", np.empty(0, np.int64), np.empty(0, np.int64), False)
    assert t.fingerprint == 1 == fingerprint([TOP, "0" * 23 + "2"])


def test_describes_needs_the_same_number_and_fingerprint():
    t = Totals.zeros(2)
    assert t.describes([])
    t.add_sample(A, np.empty(0, np.int64), np.empty(0, np.int64), False)
    assert t.describes([A])
    assert not t.describes([B])  # same count, other sample
    assert not t.describes([])
    assert not t.describes([A, A])
    # the count alone, and the fingerprint alone, must refuse
    same_fp = Totals(np.zeros(4, np.int64), num_samples=2, fingerprint=int(A, 16))
    assert not same_fp.describes([A])
    assert not Totals(np.zeros(4, np.int64), num_samples=1, fingerprint=0).describes([A])


# ---------------------------------------------------------- RunCheckpoint


@pytest.fixture
def ds(make_dataset):
    return make_dataset()


def test_save_writes_one_document_per_dataset_and_key(ds):
    t = Totals(np.arange(4, dtype=np.int64), num_samples=3, fingerprint=2**95 + 7, num_undefined=2)
    cp = RunCheckpoint(ds, "lq", "aaaaaaaa")
    cp.save(t)
    key = f"{ds._doc.id}/lq"
    assert _stored(key) == {
        "_id": key,
        "token": "aaaaaaaa",
        "confusion": [0, 1, 2, 3],
        "num_samples": 3,
        "fingerprint": str(2**95 + 7),
        "num_undefined": 2,
    }
    loaded = cp.load(2)
    np.testing.assert_array_equal(loaded.confusion, [0, 1, 2, 3])
    assert loaded.confusion.dtype == np.int64
    assert (loaded.num_samples, loaded.fingerprint, loaded.num_undefined) == (3, 2**95 + 7, 2)

    # saving again replaces it
    cp.save(Totals(np.ones(4, dtype=np.int64), num_samples=1, fingerprint=5))
    assert foo.get_db_conn()[COLLECTION].count_documents({"_id": key}) == 1
    again = cp.load(2)
    np.testing.assert_array_equal(again.confusion, [1, 1, 1, 1])
    assert (again.num_samples, again.fingerprint, again.num_undefined) == (1, 5, 0)
    cp.delete()


def test_load_refuses_another_run_another_size_or_nothing(ds):
    cp = RunCheckpoint(ds, "lq", "aaaaaaaa")
    assert cp.load(2) is None  # nothing saved
    cp.save(Totals.zeros(2))
    assert cp.load(3) is None  # another class count
    assert RunCheckpoint(ds, "lq", "bbbbbbbb").load(2) is None  # another run's token
    assert RunCheckpoint(ds, "other", "aaaaaaaa").load(2) is None  # another key
    assert cp.load(2) is not None
    cp.delete()
    assert cp.load(2) is None
    assert _stored(f"{ds._doc.id}/lq") is None


def test_load_reads_a_document_without_num_undefined(ds):
    key = f"{ds._doc.id}/lq"
    coll = foo.get_db_conn()[COLLECTION]
    coll.insert_one({"_id": key, "token": "aaaaaaaa", "confusion": [1, 2, 3, 4], "num_samples": 2, "fingerprint": "9"})
    try:
        t = RunCheckpoint(ds, "lq", "aaaaaaaa").load(2)
        assert (t.num_samples, t.fingerprint, t.num_undefined) == (2, 9, 0)
        np.testing.assert_array_equal(t.confusion, [1, 2, 3, 4])
    finally:
        coll.delete_one({"_id": key})


def test_load_refuses_a_document_without_confusion(ds):
    key = f"{ds._doc.id}/lq"
    coll = foo.get_db_conn()[COLLECTION]
    coll.insert_one({"_id": key, "token": "aaaaaaaa", "num_samples": 0, "fingerprint": "0"})
    try:
        assert RunCheckpoint(ds, "lq", "aaaaaaaa").load(1) is None
    finally:
        coll.delete_one({"_id": key})


def test_delete_removes_only_its_own_document(ds):
    a = RunCheckpoint(ds, "lq", "aaaaaaaa")
    b = RunCheckpoint(ds, "lq2", "aaaaaaaa")
    a.save(Totals.zeros(1))
    b.save(Totals.zeros(1))
    a.delete()
    assert a.load(1) is None and b.load(1) is not None
    b.delete()


def test_move_to_files_it_under_the_new_key(ds):
    cp = RunCheckpoint(ds, "lq", "aaaaaaaa")
    cp.save(Totals(np.array([5], dtype=np.int64), num_samples=1, fingerprint=3, num_undefined=1))
    cp.move_to("renamed")
    assert _stored(f"{ds._doc.id}/lq") is None
    assert _stored(f"{ds._doc.id}/renamed") == {
        "_id": f"{ds._doc.id}/renamed",
        "token": "aaaaaaaa",
        "confusion": [5],
        "num_samples": 1,
        "fingerprint": "3",
        "num_undefined": 1,
    }
    moved = RunCheckpoint(ds, "renamed", "aaaaaaaa").load(1)
    assert (moved.num_samples, moved.fingerprint, moved.num_undefined) == (1, 3, 1)
    RunCheckpoint(ds, "renamed", "aaaaaaaa").delete()


def test_move_to_replaces_a_stale_document_under_the_new_key(ds):
    RunCheckpoint(ds, "renamed", "old00000").save(Totals.zeros(1))
    RunCheckpoint(ds, "lq", "aaaaaaaa").save(Totals(np.array([2], dtype=np.int64), num_samples=1))
    RunCheckpoint(ds, "lq", "aaaaaaaa").move_to("renamed")
    assert _stored(f"{ds._doc.id}/renamed")["token"] == "aaaaaaaa"
    RunCheckpoint(ds, "renamed", "aaaaaaaa").delete()


def test_move_to_without_a_document_does_nothing(ds):
    RunCheckpoint(ds, "lq", "aaaaaaaa").move_to("renamed")
    assert _stored(f"{ds._doc.id}/renamed") is None
    assert _stored(f"{ds._doc.id}/lq") is None

