"""Bad input: each case is a clear per-sample failure (skip_failures=True) or
a clear error naming the sample (False); never a crash deep in numpy, never
a half-written dataset."""

import os
import zipfile

import cv2
import numpy as np
import pytest

import fiftyone as fo

from segqual_fo import compute_label_quality
from segqual_fo.errors import FiftyOneInputError, InvalidFileError, SegQualError
from tests.fo.helpers import segmentation_dataset

NAMES = ["sky", "road", "car", "tree"]


def _huge_header_npy(path):
    """A tiny .npy file whose header declares a 64 GiB array."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 65536, 65536), }"
    header = header + " " * (63 - (len(header) + 10) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin1"))
        f.write(b"\x00" * 1024)


def _corrupt(ds, ids, probs, tmp_path):
    """One way to break each of several samples; returns {sample id: reason regex}."""
    s = lambda i: ds[ids[i]]  # noqa: E731
    expected = {}
    os.remove(s(0).probs_path)
    expected[ids[0]] = "does not exist"
    with open(s(1).probs_path, "r+b") as f:  # truncated .npy
        f.truncate(200)
    expected[ids[1]] = "truncated"
    np.save(s(2).probs_path, np.empty(3, dtype=object), allow_pickle=True)  # a pickle
    expected[ids[2]] = "pickled array"
    _huge_header_npy(s(3).probs_path)  # header bomb
    expected[ids[3]] = "over the .* limit"
    np.save(s(4).probs_path, probs[4][:, :10])  # wrong shape
    expected[ids[4]] = "label mask is"
    np.save(s(5).probs_path, probs[5][:3] / probs[5][:3].sum(0))  # K disagrees with the classes
    expected[ids[5]] = "3 class channels .* 4 classes"
    bad = probs[6].copy()
    bad[1, 3, 3] = np.nan
    np.save(s(6).probs_path, bad)
    expected[ids[6]] = "NaN"
    # rows sum to 2: finite and non-negative, so the core's cleanlab-compatible
    # functions would use them with a warning; the pipeline rejects them
    # (README, "Drop-in for cleanlab"), naming the fix
    np.save(s(7).probs_path, probs[7] * 2.0)
    expected[ids[7]] = r"sum to 2\b.*softmax.*logits=True"
    neg = probs[8].copy()
    neg[0] -= 0.5
    np.save(s(8).probs_path, neg)
    expected[ids[8]] = "logits|outside"
    lab = cv2.imread(s(9).ground_truth.mask_path, cv2.IMREAD_UNCHANGED)
    lab[0, 0] = 9
    cv2.imwrite(s(9).ground_truth.mask_path, lab)
    expected[ids[9]] = r"mask values \[9\]"
    os.remove(s(10).ground_truth.mask_path)
    expected[ids[10]] = "mask file .* does not exist"
    inf = probs[11].copy()
    inf[2, 0, 0] = np.inf
    np.save(s(11).probs_path, inf)
    expected[ids[11]] = "NaN or infinite|outside"
    np.savez(s(12).probs_path.replace(".npy", ".npz"), other=probs[12])
    sample = s(12)
    sample.probs_path = s(12).probs_path.replace(".npy", ".npz")
    sample.save()
    expected[ids[12]] = "no array 'probs'"
    return expected


def test_every_bad_sample_is_reported_and_the_rest_scored(make_dataset, tmp_path, rng):
    ds = make_dataset()
    labels, probs, ids = segmentation_dataset(ds, tmp_path, rng, n=16, names=NAMES)
    expected = _corrupt(ds, ids, probs, tmp_path)
    res = compute_label_quality(
        ds, "ground_truth", probs_field="probs_path", probs_key="probs", skip_failures=True,
        output_dir=str(tmp_path / "o"), progress=False,
    )
    reasons = {f.sample_id: f.reason for f in res.failures}
    assert set(reasons) == set(expected)
    for sid, pattern in expected.items():
        import re

        assert re.search(pattern, reasons[sid]), (pattern, reasons[sid])
        assert sid in reasons[sid]  # the reason names the sample
    scores = dict(zip(ds.values("id"), ds.values("label_quality")))
    for sid in ids:
        assert (scores[sid] is None) == (sid in expected)
    assert res.num_scored == 16 - len(expected)


def test_fail_fast_names_sample_and_path(make_dataset, tmp_path, rng):
    ds = make_dataset()
    _, probs, ids = segmentation_dataset(ds, tmp_path, rng, n=4, names=NAMES)
    np.save(ds[ids[2]].probs_path, probs[2] * 3)
    with pytest.raises(SegQualError) as e:
        compute_label_quality(ds, "ground_truth", probs_field="probs_path", output_dir=str(tmp_path / "o"), progress=False)
    assert ids[2] in str(e.value) and ds[ids[2]].filepath in str(e.value)
    assert isinstance(e.value, ValueError)


def test_only_ignored_pixels_scores_none_and_is_counted(make_dataset, tmp_path, rng):
    ds = make_dataset()
    labels, _, ids = segmentation_dataset(ds, tmp_path, rng, n=4, names=NAMES)
    cv2.imwrite(ds[ids[1]].ground_truth.mask_path, np.full(labels[1].shape, 255, np.uint8))
    for method in ("softmin", "num_pixel_issues"):
        res = compute_label_quality(ds, "ground_truth", probs_field="probs_path", method=method, score_field="lq_" + method[:3], output_dir=str(tmp_path / "o"), progress=False)
        assert res.num_undefined == 1 and not res.failures
        scores = dict(zip(ds.values("id"), ds.values("lq_" + method[:3])))
        assert scores[ids[1]] is None and all(scores[i] is not None for i in ids if i != ids[1])


def test_empty_mask_and_wrong_label_type(make_dataset, tmp_path, rng):
    ds = make_dataset()
    _, _, ids = segmentation_dataset(ds, tmp_path, rng, n=3, names=NAMES)
    sample = ds[ids[0]]
    sample.ground_truth = None
    sample.save()
    res = compute_label_quality(ds, "ground_truth", probs_field="probs_path", skip_failures=True, output_dir=str(tmp_path / "o"), progress=False)
    assert [f.sample_id for f in res.failures] == [ids[0]] and "empty" in res.failures[0].reason
    ds.add_sample_field("gt_cls", fo.EmbeddedDocumentField, embedded_doc_type=fo.Classification)
    with pytest.raises(FiftyOneInputError, match="must hold fo.Segmentation or fo.Detections"):
        compute_label_quality(ds, "gt_cls", probs_field="probs_path")


def test_pickled_probabilities_are_refused(tmp_path):
    from segqual_fo.adapters.probs import read_prob_array

    path = tmp_path / "evil.npy"
    np.save(path, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InvalidFileError, match="pickled array"):
        read_prob_array(str(path))
    npz = tmp_path / "evil.npz"
    np.savez(npz, probs=np.array([{"x": 1}], dtype=object))
    with pytest.raises(InvalidFileError, match="pickled array"):
        read_prob_array(str(npz), key="probs")


def test_zip_bomb_sized_npz_header_is_refused_before_reading(tmp_path):
    from segqual_fo.adapters.probs import read_prob_array

    npy = tmp_path / "big.npy"
    _huge_header_npy(npy)
    npz = tmp_path / "big.npz"
    with zipfile.ZipFile(npz, "w") as z:
        z.write(npy, "probs.npy")
    with pytest.raises(InvalidFileError, match="64.0 GiB"):
        read_prob_array(str(npz), key="probs")
