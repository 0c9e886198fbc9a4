"""What users see after compute_label_quality, against hand-computed values.

A tiny real dataset (three 12x16 images, label PNGs with a 255 ignore value,
float32 .npy probabilities) whose probabilities are exact binary fractions,
so every pixel score is known exactly and every output (scores, issue
counts, heatmap and issue-mask PNGs, regions, confusion) can be written down
by hand. Nothing here computes an expected value with the library.

Image A (labels "road" = 0 unless said otherwise):

    R1  an L of 26 "road" pixels the model calls "car": a bar rows 2-7 x
        columns 2-3 (s = 1/16) and a foot rows 6-7 x columns 4-10 (s = 1/32)
    R2  rows 8-11 x columns 12-15 (bottom-right corner), labelled "car", the
        model says "sky" (s = 1/16): 16 pixels, exactly min_region_area
    R3  rows 0-2 x columns 11-15 (top border), "road" called "sky"
        (s = 1/16): 15 pixels, an issue but too small to be a region
    row 9, columns 0-7:  s = 0.75 (model agrees, unsure)
    row 10, columns 0-7: s = 0.5 (model agrees, unsure)
    row 11, columns 0-3: 255 (ignored)
    everything else: s = 1

Image B ("sky" = 2): rows 3-6 x columns 5-9 called "road" (s = 1/16), 20 px.
Image C: all "road", s = 1 (clean).
"""

import math

import cv2
import numpy as np
import pytest

import fiftyone as fo

from segqual_fo import compute_label_quality
from segqual_fo.fo import documents
from segqual_fo.writers import documents as plain_documents

H, W = 12, 16
NAMES = ["road", "car", "sky"]
ROAD, CAR, SKY = 0, 1, 2
VOID = 255
T = 0.1  # the default softmin temperature


def _image_a():
    labels = np.full((H, W), ROAD, np.uint8)
    probs = np.zeros((3, H, W), np.float32)
    probs[ROAD] = 1.0

    def put(rows, cols, label, p):
        labels[rows, cols] = label
        probs[:, rows, cols] = np.array(p, np.float32)[:, None, None]

    put(slice(2, 8), slice(2, 4), ROAD, [1 / 16, 15 / 16, 0])  # R1 bar
    put(slice(6, 8), slice(4, 11), ROAD, [1 / 32, 31 / 32, 0])  # R1 foot
    put(slice(8, 12), slice(12, 16), CAR, [0, 1 / 16, 15 / 16])  # R2
    put(slice(0, 3), slice(11, 16), ROAD, [1 / 16, 0, 15 / 16])  # R3
    put(slice(9, 10), slice(0, 8), ROAD, [0.75, 0.25, 0])
    put(slice(10, 11), slice(0, 8), ROAD, [0.5, 0.25, 0.25])
    put(slice(11, 12), slice(0, 4), VOID, [0, 1, 0])
    return labels, probs


def _image_b():
    labels = np.full((H, W), SKY, np.uint8)
    probs = np.zeros((3, H, W), np.float32)
    probs[SKY] = 1.0
    probs[:, 3:7, 5:10] = np.array([15 / 16, 0, 1 / 16], np.float32)[:, None, None]
    return labels, probs


def _image_c():
    labels = np.full((H, W), ROAD, np.uint8)
    probs = np.zeros((3, H, W), np.float32)
    probs[ROAD] = 1.0
    return labels, probs


def _heatmap_a():
    e = np.zeros((H, W), np.uint8)
    e[2:8, 2:4] = 239  # round(255 * 15/16) = round(239.06)
    e[6:8, 4:11] = 247  # round(255 * 31/32) = round(247.03)
    e[8:12, 12:16] = 239
    e[0:3, 11:16] = 239
    e[9, 0:8] = 64  # round(63.75)
    e[10, 0:8] = 128  # round(127.5): 128 half-up and half-to-even
    e[11, 0:4] = 0  # ignored: transparent
    return e


def _issues_a():
    e = np.zeros((H, W), np.uint8)
    e[2:8, 2:4] = ROAD + 1
    e[6:8, 4:11] = ROAD + 1
    e[8:12, 12:16] = CAR + 1
    e[0:3, 11:16] = ROAD + 1
    return e


def _heatmap_b():
    e = np.zeros((H, W), np.uint8)
    e[3:7, 5:10] = 239
    return e


def _issues_b():
    e = np.zeros((H, W), np.uint8)
    e[3:7, 5:10] = SKY + 1
    return e


def _softmin(counts):
    """sum(s * exp(-s/T)) / sum(exp(-s/T)) over the valid pixels, from
    {score: number of pixels} (the DESIGN formula, by hand)."""
    num = sum(n * s * math.exp(-s / T) for s, n in counts.items())
    den = sum(n * math.exp(-s / T) for s, n in counts.items())
    return num / den


#: pixel scores of the valid pixels, by hand from the module docstring
COUNTS = {
    "A": {1 / 16: 12 + 16 + 15, 1 / 32: 14, 0.75: 8, 0.5: 8, 1.0: 188 - 43 - 14 - 16},
    "B": {1 / 16: 20, 1.0: 172},
    "C": {1.0: 192},
}
VALID = {"A": 188, "B": 192, "C": 192}
NUM_ISSUES = {"A": 26 + 16 + 15, "B": 20, "C": 0}
EXPECTED_SCORES = {
    "softmin": {k: _softmin(c) for k, c in COUNTS.items()},
    "num_pixel_issues": {k: 1 - NUM_ISSUES[k] / VALID[k] for k in COUNTS},
}
# confusion[given][predicted] among issue pixels: A's R1 road->car 26, R3
# road->sky 15, R2 car->sky 16; B sky->road 20
CONFUSION = [[0, 26, 15], [0, 0, 16], [20, 0, 0]]

R1_MASK = np.zeros((6, 9), bool)
R1_MASK[:, 0:2] = True
R1_MASK[4:6, :] = True


def _build(ds, tmp_path):
    images = {"A": _image_a(), "B": _image_b(), "C": _image_c()}
    for sub in ("img", "mask", "probs"):
        (tmp_path / sub).mkdir()
    samples = []
    for key, (labels, probs) in images.items():
        # the probabilities are distributions wherever they are scored
        assert np.array_equal(probs.sum(axis=0), np.ones((H, W), np.float32))
        img = tmp_path / "img" / f"{key}.png"
        cv2.imwrite(str(img), np.full((H, W, 3), 100, np.uint8))
        mask = tmp_path / "mask" / f"{key}.png"
        cv2.imwrite(str(mask), labels)
        pp = tmp_path / "probs" / f"{key}.npy"
        np.save(pp, probs)
        samples.append(fo.Sample(filepath=str(img), ground_truth=fo.Segmentation(mask_path=str(mask)), probs_path=str(pp), key=key))
    ds.add_samples(samples, progress=False)
    ds.mask_targets = {"ground_truth": dict(enumerate(NAMES))}
    ds.save()
    return images


def _cl_flags(images):
    """Confident learning, step by step from DESIGN.md, in plain numpy over
    the hand-made arrays: checks that the planted pixels are exactly what
    the method flags (so NUM_ISSUES holds for both methods)."""
    labs = np.stack([lab for lab, _ in images.values()])
    probs = np.stack([p for _, p in images.values()])
    valid = labs != VOID
    lab = np.where(valid, labs, 0).astype(int)
    t = np.array([max(probs[:, k][valid & (lab == k)].mean(), 2e-6) for k in range(3)])
    am = probs.argmax(axis=1)
    pam = np.take_along_axis(probs, am[:, None], axis=1)[:, 0]
    count = int(np.count_nonzero(valid & (am != lab) & (pam >= t[am] - 1e-6)))
    s = np.take_along_axis(probs, lab[:, None], axis=1)[:, 0]
    s = np.where(valid, s, np.inf)
    cut = np.sort(s, axis=None)[count - 1]
    assert np.sort(s, axis=None)[count] > cut  # no tie across the cut
    return (s <= cut) & (am != lab)


def test_hand_design_is_what_confident_learning_flags():
    images = {"A": _image_a(), "B": _image_b(), "C": _image_c()}
    flags = _cl_flags(images)
    for i, (key, issues) in enumerate((("A", _issues_a()), ("B", _issues_b()), ("C", np.zeros((H, W))))):
        np.testing.assert_array_equal(flags[i], issues > 0, err_msg=key)
        assert flags[i].sum() == NUM_ISSUES[key]


def _read(path):
    out = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    assert out is not None, path
    return out


@pytest.mark.parametrize(
    "method,fast_docs",
    [("softmin", True), ("num_pixel_issues", True), ("softmin", False)],
    ids=["softmin", "num_pixel_issues", "softmin-fiftyone-objects"],
)
def test_outputs_equal_hand_computed_values(make_dataset, tmp_path, monkeypatch, method, fast_docs):
    if not fast_docs:
        # the pipeline's other way of writing labels (FiftyOne's own objects,
        # used when the fast documents do not match the installed FiftyOne)
        monkeypatch.setattr(documents, "matches_fiftyone", lambda examples: False)
    ds = make_dataset()
    _build(ds, tmp_path)
    field = "lq"
    res = compute_label_quality(
        ds, "ground_truth", probs_field="probs_path", method=method, ignore_index=255,
        score_field=field, output_dir=str(tmp_path / "out"), progress=False,
    )
    assert res.classes == NAMES and res.num_scored == 3 and not res.failures

    keys = ds.values("key")
    assert keys == ["A", "B", "C"]
    scores = dict(zip(keys, ds.values(field)))
    for k in keys:
        assert scores[k] == pytest.approx(EXPECTED_SCORES[method][k], rel=1e-9, abs=1e-12), k
    assert scores["C"] == 1.0
    assert dict(zip(keys, ds.values(f"{field}_num_issues"))) == NUM_ISSUES
    # worst first
    assert ds.sort_by(field).values("key") == ["A", "B", "C"]

    # heatmaps and issue masks, read back from the files the App reads
    expected_heat = {"A": _heatmap_a(), "B": _heatmap_b(), "C": np.zeros((H, W), np.uint8)}
    expected_iss = {"A": _issues_a(), "B": _issues_b(), "C": np.zeros((H, W), np.uint8)}
    for sample in ds.iter_samples():
        heat = sample[f"{field}_heatmap"]
        assert isinstance(heat, fo.Heatmap)
        assert list(heat.range) == [0, 255]
        img = _read(heat.map_path)
        assert img.dtype == np.uint8 and img.shape == (H, W)
        np.testing.assert_array_equal(img, expected_heat[sample.key], err_msg=f"heatmap {sample.key}")
        iss = sample[f"{field}_issues"]
        assert isinstance(iss, fo.Segmentation)
        np.testing.assert_array_equal(_read(iss.mask_path), expected_iss[sample.key], err_msg=f"issues {sample.key}")
    assert ds.mask_targets[f"{field}_issues"] == {1: "road", 2: "car", 3: "sky"}

    # regions: largest first, label = given class name
    regions = {s.key: s[f"{field}_regions"].detections for s in ds.iter_samples()}
    r1, r2 = regions["A"]
    assert (r1.label, r1["predicted_label"], r1["area"]) == ("road", "car", 26)
    assert r1["mean_score"] == pytest.approx((12 / 16 + 14 / 32) / 26, rel=1e-6)
    assert r1.bounding_box == pytest.approx([2 / 16, 2 / 12, 9 / 16, 6 / 12])
    np.testing.assert_array_equal(r1.mask, R1_MASK)
    assert (r2.label, r2["predicted_label"], r2["area"]) == ("car", "sky", 16)
    assert r2["mean_score"] == pytest.approx(1 / 16, rel=1e-6)
    assert r2.bounding_box == pytest.approx([12 / 16, 8 / 12, 4 / 16, 4 / 12])
    np.testing.assert_array_equal(r2.mask, np.ones((4, 4), bool))
    (rb,) = regions["B"]
    assert (rb.label, rb["predicted_label"], rb["area"]) == ("sky", "road", 20)
    assert rb["mean_score"] == pytest.approx(1 / 16, rel=1e-6)
    assert rb.bounding_box == pytest.approx([5 / 16, 3 / 12, 5 / 16, 4 / 12])
    np.testing.assert_array_equal(rb.mask, np.ones((4, 5), bool))
    assert regions["C"] == []

    # confusion counts, [given][predicted]
    np.testing.assert_array_equal(np.asarray(ds.load_run_results(field).confusion), CONFUSION)
    np.testing.assert_array_equal(res.confusion, CONFUSION)
    assert res.confusion_rows() == [
        {"given_label": "road", "predicted_label": "car", "num_pixel_issues": 26},
        {"given_label": "sky", "predicted_label": "road", "num_pixel_issues": 20},
        {"given_label": "car", "predicted_label": "sky", "num_pixel_issues": 16},
        {"given_label": "road", "predicted_label": "sky", "num_pixel_issues": 15},
    ]


def test_min_region_area_is_inclusive(make_dataset, tmp_path):
    # with min_region_area=15, A's 15-pixel R3 becomes a region too (regions
    # come most likely error first; compared by area here)
    ds = make_dataset()
    _build(ds, tmp_path)
    compute_label_quality(
        ds, "ground_truth", probs_field="probs_path", ignore_index=255, score_field="lq",
        output_dir=str(tmp_path / "out"), progress=False, min_region_area=15,
    )
    dets = ds.match(fo.ViewField("key") == "A").first()["lq_regions"].detections
    dets = sorted(dets, key=lambda d: -d["area"])
    assert [(d.label, d["predicted_label"], d["area"]) for d in dets] == [
        ("road", "car", 26), ("car", "sky", 16), ("road", "sky", 15)
    ]
    assert dets[2].bounding_box == pytest.approx([11 / 16, 0.0, 5 / 16, 3 / 12])


def test_fast_documents_are_in_use():
    # the pipeline writes the documents built by segqual_fo.writers.documents only
    # when they equal FiftyOne's own serialisation; with the installed
    # FiftyOne they must (otherwise every run silently takes the slow path)
    assert documents.matches_fiftyone(documents.example_regions())


def test_region_documents_by_hand():
    from segqual_fo.writers.regions import IssueRegion

    mask = np.array([[True, False, False], [True, True, True]])
    region = IssueRegion((0.125, 0.25, 0.375, 0.5), mask, 2, 0, 4, 0.1875)
    for dets in (
        fo.Detections.from_dict(plain_documents.detections_doc([region], NAMES)),
        documents.regions_to_detections([region], NAMES),
    ):
        (d,) = dets.detections
        assert d.label == "sky" and d["predicted_label"] == "road"
        assert d.bounding_box == [0.125, 0.25, 0.375, 0.5]
        assert d["area"] == 4 and d["mean_score"] == 0.1875
        np.testing.assert_array_equal(d.mask, mask)
    doc = plain_documents.heatmap_doc("/x/h.png")
    assert doc["map_path"] == "/x/h.png" and doc["range"] == [0.0, 255.0]
