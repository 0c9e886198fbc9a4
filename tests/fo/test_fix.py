"""fix_regions on the real embedded database, with real files.

Hand-built 12x16 masks whose probabilities are exact, so every issue region
and every pixel a fix changes is known (nothing expected is computed with
the library):

Image A (labels "road" unless said otherwise):
    R1  rows 2-7 x columns 2-4, "road", the model says "car" (18 pixels)
    R2  rows 8-11 x columns 10-15, labelled "car", the model says "sky" (24)
Image B ("sky" everywhere): rows 3-6 x columns 5-9 the model says "road" (20)
Image C: all "road", clean.

Mask values are codes, not class indices (mask targets {0: road, 64: car,
128: sky}; 16-bit: {0, 300, 1000}; RGB: black, red, blue), so a fix must
write the stored value of the predicted class.
"""

import os

import cv2
import numpy as np
import pytest

import fiftyone as fo

from segqual_fo import compute_label_quality, fix_regions
from segqual_fo.errors import FiftyOneInputError, InvalidInputError
from segqual_fo.fo.fix import FIXED_TAG

H, W = 12, 16
NAMES = ["road", "car", "sky"]
ROAD, CAR, SKY = 0, 1, 2
CODES8 = {ROAD: 0, CAR: 64, SKY: 128}
CODES16 = {ROAD: 0, CAR: 300, SKY: 1000}
COLORS = {ROAD: "#000000", CAR: "#ff0000", SKY: "#0000ff"}
RGB = {ROAD: (0, 0, 0), CAR: (255, 0, 0), SKY: (0, 0, 255)}
R1 = (slice(2, 8), slice(2, 5))
R2 = (slice(8, 12), slice(10, 16))
RB = (slice(3, 7), slice(5, 10))


def _classes():
    """Class index masks and probabilities of images A, B, C."""
    a = np.full((H, W), ROAD, np.uint8)
    pa = np.zeros((3, H, W), np.float32)
    pa[ROAD] = 1
    pa[:, R1[0], R1[1]] = np.array([1 / 16, 15 / 16, 0], np.float32)[:, None, None]
    a[R2] = CAR
    pa[:, R2[0], R2[1]] = np.array([0, 1 / 16, 15 / 16], np.float32)[:, None, None]
    b = np.full((H, W), SKY, np.uint8)
    pb = np.zeros((3, H, W), np.float32)
    pb[SKY] = 1
    pb[:, RB[0], RB[1]] = np.array([15 / 16, 0, 1 / 16], np.float32)[:, None, None]
    c = np.full((H, W), ROAD, np.uint8)
    pc = np.zeros((3, H, W), np.float32)
    pc[ROAD] = 1
    return [a, b, c], [pa, pb, pc]


def _encode(classes, kind):
    if kind == "rgb":
        out = np.zeros(classes.shape + (3,), np.uint8)
        for k, rgb in RGB.items():
            out[classes == k] = rgb
        return out
    codes = CODES16 if kind == "16bit" else CODES8
    out = np.zeros(classes.shape, np.uint16 if kind == "16bit" else np.uint8)
    for k, v in codes.items():
        out[classes == k] = v
    return out


def _targets(kind):
    if kind == "rgb":
        return {COLORS[k]: NAMES[k] for k in COLORS}
    return {v: NAMES[k] for k, v in (CODES16 if kind == "16bit" else CODES8).items()}


def build(ds, tmp_path, kind="8bit", inline=False):
    """The three samples, scored (softmin, defaults) into ``label_quality``.
    Returns the stored masks (as the files/documents hold them)."""
    labels, probs = _classes()
    os.makedirs(tmp_path / "in", exist_ok=True)
    samples, stored = [], []
    for i, (lab, p) in enumerate(zip(labels, probs)):
        img = tmp_path / "in" / f"im{i}.png"
        cv2.imwrite(str(img), np.zeros((H, W, 3), np.uint8))
        mask = _encode(lab, kind)
        stored.append(mask)
        if inline:
            gt = fo.Segmentation(mask=mask)
        else:
            mp = tmp_path / "in" / f"gt{i}.png"
            cv2.imwrite(str(mp), mask[..., ::-1] if kind == "rgb" else mask)
            gt = fo.Segmentation(mask_path=str(mp))
        pp = tmp_path / "in" / f"p{i}.npy"
        np.save(pp, p)
        samples.append(fo.Sample(filepath=str(img), ground_truth=gt, probs_path=str(pp)))
    ds.add_samples(samples, progress=False)
    ds.mask_targets = {"ground_truth": _targets(kind)}
    ds.save()
    compute_label_quality(ds, "ground_truth", probs_field="probs_path", classes=NAMES,
                          output_dir=str(tmp_path / "out"), progress=False)
    return stored


def region_id(ds, index, rows, cols):
    """The id of the region of sample ``index`` whose box is rows x cols."""
    sample = ds.skip(index).first()
    box = [cols.start / W, rows.start / H, (cols.stop - cols.start) / W, (rows.stop - rows.start) / H]
    (det,) = [d for d in sample.label_quality_regions.detections if np.allclose(d.bounding_box, box)]
    return det.id


def tag_regions(ds, ids, tag="approve"):
    ds.select_labels(ids=ids, fields="label_quality_regions").tag_labels(tag, label_fields="label_quality_regions")


def read(path):
    m = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    return m[..., ::-1] if m.ndim == 3 else m


def originals(ds, tmp_path):
    """Everything a fix must leave alone: the label documents and the bytes
    and modification times of the input files."""
    files = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted((tmp_path / "in").iterdir())}
    docs = [None if g is None else g.to_dict() for g in ds.values("ground_truth")]
    return files, docs, dict(ds.mask_targets["ground_truth"])


@pytest.fixture
def ds(make_dataset):
    return make_dataset("segqual-fix")


def test_fix_by_tag_changes_exactly_the_region_and_never_the_original(ds, tmp_path):
    stored = build(ds, tmp_path)
    tag_regions(ds, [region_id(ds, 0, *R1)])
    before = originals(ds, tmp_path)

    res = fix_regions(ds, "ground_truth", tag="approve")

    assert (res.fixed_field, res.num_samples, res.num_regions, res.num_pixels, res.num_skipped) == (
        "ground_truth_fixed", 1, 1, 18, 0)
    expected = stored[0].copy()
    expected[R1] = 64  # "car"
    a, b, c = ds.values("ground_truth_fixed")
    assert b is None and c is None  # no chosen region: no corrected mask
    assert res.files == [a.mask_path]
    assert os.path.dirname(a.mask_path) == str(tmp_path / "out" / "ground_truth_fixed")
    assert os.path.basename(a.mask_path).startswith(ds.first().id)
    fixed = read(a.mask_path)
    assert fixed.dtype == np.uint8
    np.testing.assert_array_equal(fixed, expected)
    assert originals(ds, tmp_path) == before  # bytes, mtimes, documents, targets
    assert ds.mask_targets["ground_truth_fixed"] == ds.mask_targets["ground_truth"]
    assert ds.count_label_tags("label_quality_regions") == {"approve": 1, FIXED_TAG: 1}
    (fixed_region,) = ds.select_labels(tags=FIXED_TAG).values("label_quality_regions.detections.id", unwind=True)
    assert fixed_region == region_id(ds, 0, *R1)


def test_rerun_adds_to_the_fixed_mask_and_is_idempotent(ds, tmp_path):
    stored = build(ds, tmp_path)
    tag_regions(ds, [region_id(ds, 0, *R1)])
    first = fix_regions(ds, "ground_truth", tag="approve").files[0]
    before = originals(ds, tmp_path)

    tag_regions(ds, [region_id(ds, 0, *R2)])
    res = fix_regions(ds, "ground_truth", tag="approve")
    assert (res.num_samples, res.num_regions, res.num_pixels, res.num_skipped) == (1, 1, 24, 1)
    expected = stored[0].copy()
    expected[R1] = 64
    expected[R2] = 128  # "sky"
    path = ds.first().ground_truth_fixed.mask_path
    assert path != first and not os.path.exists(first)  # a new file; the replaced one is gone
    np.testing.assert_array_equal(read(path), expected)
    assert os.listdir(tmp_path / "out" / "ground_truth_fixed") == [os.path.basename(path)]

    again = fix_regions(ds, "ground_truth", tag="approve")
    assert (again.num_samples, again.num_regions, again.num_pixels, again.num_skipped, again.files) == (0, 0, 0, 2, [])
    assert ds.first().ground_truth_fixed.mask_path == path
    np.testing.assert_array_equal(read(path), expected)
    assert originals(ds, tmp_path) == before


def test_fix_by_min_confidence(ds, tmp_path):
    stored = build(ds, tmp_path)
    conf = {region_id(ds, 0, *R1): 0.9, region_id(ds, 0, *R2): 0.2, region_id(ds, 1, *RB): 0.8}
    for sample in ds.iter_samples(autosave=True):
        for det in sample.label_quality_regions.detections:
            det["confidence"] = conf[det.id]

    res = fix_regions(ds, "ground_truth", min_confidence=0.8, fixed_field="gt_auto")
    assert (res.num_samples, res.num_regions, res.num_pixels) == (2, 2, 18 + 20)
    a, b, c = ds.values("gt_auto")
    expected_a, expected_b = stored[0].copy(), stored[1].copy()
    expected_a[R1] = 64
    expected_b[RB] = 0  # "road"
    np.testing.assert_array_equal(read(a.mask_path), expected_a)
    np.testing.assert_array_equal(read(b.mask_path), expected_b)
    assert c is None and not ds.has_field("ground_truth_fixed")
    assert ds.count_label_tags("label_quality_regions") == {FIXED_TAG: 2}


def test_fix_selected_ids_only_in_the_collection(ds, tmp_path):
    stored = build(ds, tmp_path)
    rb = region_id(ds, 1, *RB)
    res = fix_regions(ds, "ground_truth", label_ids=[rb])
    assert (res.num_samples, res.num_regions, res.num_pixels) == (1, 1, 20)
    expected = stored[1].copy()
    expected[RB] = 0
    np.testing.assert_array_equal(read(ds.skip(1).first().ground_truth_fixed.mask_path), expected)

    # a region outside the view is not a region of the collection
    r1 = region_id(ds, 0, *R1)
    with pytest.raises(FiftyOneInputError, match="not regions of 'label_quality_regions'"):
        fix_regions(ds.skip(1), "ground_truth", label_ids=[r1])
    with pytest.raises(FiftyOneInputError, match="not regions"):
        fix_regions(ds, "ground_truth", label_ids=[ds.first().ground_truth.id])
    assert ds.first().ground_truth_fixed is None


def test_inline_masks_stay_inline_and_untouched(ds, tmp_path):
    stored = build(ds, tmp_path, inline=True)
    before = originals(ds, tmp_path)
    tag_regions(ds, [region_id(ds, 0, *R2)])
    res = fix_regions(ds, "ground_truth", tag="approve")
    assert (res.num_regions, res.num_pixels) == (1, 24)
    expected = stored[0].copy()
    expected[R2] = 128
    fixed = ds.first().ground_truth_fixed
    assert fixed.mask is None and fixed.mask_path.endswith(".png")
    np.testing.assert_array_equal(read(fixed.mask_path), expected)
    assert originals(ds, tmp_path) == before
    np.testing.assert_array_equal(ds.first().ground_truth.mask, stored[0])


def test_16bit_masks_stay_16bit(ds, tmp_path):
    stored = build(ds, tmp_path, kind="16bit")
    before = originals(ds, tmp_path)
    tag_regions(ds, [region_id(ds, 0, *R1), region_id(ds, 0, *R2), region_id(ds, 1, *RB)])
    res = fix_regions(ds, "ground_truth", tag="approve")
    assert (res.num_samples, res.num_regions, res.num_pixels) == (2, 3, 18 + 24 + 20)
    a, b, _ = ds.values("ground_truth_fixed")
    expected_a, expected_b = stored[0].copy(), stored[1].copy()
    expected_a[R1], expected_a[R2], expected_b[RB] = 300, 1000, 0
    for label, expected in ((a, expected_a), (b, expected_b)):
        fixed = read(label.mask_path)
        assert fixed.dtype == np.uint16
        np.testing.assert_array_equal(fixed, expected)
    assert originals(ds, tmp_path) == before


def test_rgb_masks_get_the_colour_of_the_predicted_class(ds, tmp_path):
    stored = build(ds, tmp_path, kind="rgb")
    before = originals(ds, tmp_path)
    tag_regions(ds, [region_id(ds, 0, *R1), region_id(ds, 0, *R2)])
    res = fix_regions(ds, "ground_truth", tag="approve")
    assert (res.num_regions, res.num_pixels) == (2, 18 + 24)
    expected = stored[0].copy()
    expected[R1], expected[R2] = RGB[CAR], RGB[SKY]
    fixed = read(ds.first().ground_truth_fixed.mask_path)
    assert fixed.shape == (H, W, 3) and fixed.dtype == np.uint8
    np.testing.assert_array_equal(fixed, expected)
    assert originals(ds, tmp_path) == before


def test_scoring_the_fixed_field_works_and_scores_better(ds, tmp_path):
    build(ds, tmp_path)
    tag_regions(ds, [region_id(ds, 0, *R1), region_id(ds, 0, *R2)])
    fix_regions(ds, "ground_truth", tag="approve")
    fixed_view = ds.exists("ground_truth_fixed")
    res = compute_label_quality(fixed_view, "ground_truth_fixed", probs_field="probs_path", classes=NAMES,
                                score_field="lq_fixed", output_dir=str(tmp_path / "out"), progress=False)
    assert res.num_scored == 1 and not res.failures
    a = ds.first()
    # the 42 fixed pixels now score 15/16, the 150 others 1 (softmin, T = 0.1)
    w = np.exp((1 - 15 / 16) / 0.1)
    assert a.lq_fixed == pytest.approx((42 * w * 15 / 16 + 150) / (42 * w + 150), abs=1e-6)
    assert a.lq_fixed > a.label_quality
    assert a.lq_fixed_num_issues == 0 and a.label_quality_num_issues == 18 + 24


def test_refusals(ds, tmp_path, make_dataset):
    build(ds, tmp_path)
    tag_regions(ds, [region_id(ds, 0, *R1)])
    with pytest.raises(InvalidInputError, match="exactly one of tag"):
        fix_regions(ds, "ground_truth")
    with pytest.raises(InvalidInputError, match="got tag and min_confidence"):
        fix_regions(ds, "ground_truth", tag="approve", min_confidence=0.5)
    with pytest.raises(InvalidInputError, match="min_confidence must be a number in"):
        fix_regions(ds, "ground_truth", min_confidence=1.5)
    with pytest.raises(InvalidInputError, match="label_ids must be a list"):
        fix_regions(ds, "ground_truth", label_ids="abc")
    with pytest.raises(InvalidInputError, match="is the label field"):
        fix_regions(ds, "ground_truth", tag="approve", fixed_field="ground_truth")
    with pytest.raises(InvalidInputError, match="written by a segqual run"):
        fix_regions(ds, "ground_truth", tag="approve", fixed_field="label_quality_issues")
    with pytest.raises(FiftyOneInputError, match="'other' is not a segqual run"):
        fix_regions(ds, "ground_truth", tag="approve", score_field="other")
    ds.clone_sample_field("ground_truth", "gt_copy")
    with pytest.raises(FiftyOneInputError, match="scored 'ground_truth', not 'gt_copy'"):
        fix_regions(ds, "gt_copy", tag="approve")
    ds.add_sample_field("notes", fo.StringField)
    with pytest.raises(FiftyOneInputError, match="does not hold fo.Segmentation"):
        fix_regions(ds, "ground_truth", tag="approve", fixed_field="notes")
    assert not ds.has_field("ground_truth_fixed")
    assert FIXED_TAG not in ds.count_label_tags()
    assert not os.path.exists(tmp_path / "out" / "ground_truth_fixed")


def test_detections_label_fields_are_refused(make_dataset, tmp_path):
    ds = make_dataset("segqual-fix-det")
    img = tmp_path / "im.png"
    cv2.imwrite(str(img), np.zeros((H, W, 3), np.uint8))
    np.save(tmp_path / "p.npy", np.full((2, H, W), 0.5, np.float32))
    ds.add_sample(fo.Sample(filepath=str(img), probs_path=str(tmp_path / "p.npy"),
                            gt=fo.Detections(detections=[fo.Detection(label="a", bounding_box=[0, 0, 0.5, 0.5])])))
    compute_label_quality(ds, "gt", probs_field="probs_path", classes=["a", "b"], output_dir=str(tmp_path / "o"),
                          progress=False)
    with pytest.raises(FiftyOneInputError, match="fo.Segmentation fields only"):
        fix_regions(ds, "gt", min_confidence=0.5)


def test_no_chosen_region_changes_nothing(ds, tmp_path):
    build(ds, tmp_path)
    res = fix_regions(ds, "ground_truth", tag="nobody-used-this")
    assert (res.num_samples, res.num_regions, res.files) == (0, 0, [])
    assert not ds.has_field("ground_truth_fixed")


def test_refused_while_the_run_or_another_fix_is_writing(ds, tmp_path):
    from segqual_fo.fo.runlock import RunLock, RunLockedError

    build(ds, tmp_path)
    tag_regions(ds, [region_id(ds, 0, *R1)])
    for key in ("label_quality", "ground_truth_fixed"):
        with RunLock(ds, key):
            with pytest.raises(RunLockedError):
                fix_regions(ds, "ground_truth", tag="approve")
    assert not ds.has_field("ground_truth_fixed")
    assert fix_regions(ds, "ground_truth", tag="approve").num_regions == 1  # the locks were released


def test_regions_marked_not_an_error_are_never_fixed(ds, tmp_path):
    from segqual_fo import mark_regions

    stored = build(ds, tmp_path)
    for sample in ds.iter_samples(autosave=True):
        for det in sample.label_quality_regions.detections:
            det["confidence"] = 0.99
    r1, r2, rb = region_id(ds, 0, *R1), region_id(ds, 0, *R2), region_id(ds, 1, *RB)
    mark_regions(ds, [r2, rb], "not_an_error")
    res = fix_regions(ds, "ground_truth", min_confidence=0.5)
    assert (res.num_samples, res.num_regions, res.num_pixels, res.num_skipped) == (1, 1, 18, 2)
    expected = stored[0].copy()
    expected[R1] = 64
    np.testing.assert_array_equal(read(ds.first().ground_truth_fixed.mask_path), expected)
    assert ds.skip(1).first().ground_truth_fixed is None
    assert fix_regions(ds, "ground_truth", label_ids=[rb]).num_skipped == 1  # even when selected
    assert ds.count_label_tags("label_quality_regions") == {"not_an_error": 2, FIXED_TAG: 1}
    assert r1 in ds.select_labels(tags=FIXED_TAG).values("label_quality_regions.detections.id", unwind=True)
