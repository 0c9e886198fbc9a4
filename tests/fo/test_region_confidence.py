"""Region confidence in the FiftyOne pipeline: both methods write it, in
[0, 1], equal to the core formula over the stored evidence and the run's
confusion (the final pass), deterministic across runs; the final pass
writes nothing when nothing changes."""

import numpy as np
import pytest

from segqual_fo import compute_label_quality
from segqual_fo.core.regions import LOCAL_FEATURES, region_confidence
from segqual_fo.fo.confidence import write_region_confidence
from segqual_fo.options import output_fields
from tests.fo.helpers import segmentation_dataset

NAMES = ["sky", "road", "car", "tree"]


def _regions(ds, key):
    path = f"{key}_regions.detections"
    cols = ds.values([f"{path}.{n}" for n in ("label", "predicted_label", "confidence") + LOCAL_FEATURES])
    return [[v for dets in col if dets for v in dets] for col in cols]


@pytest.mark.parametrize("method", ["softmin", "num_pixel_issues"])
def test_confidence_is_the_formula_over_stored_evidence(make_dataset, tmp_path, rng, method):
    ds = make_dataset()
    segmentation_dataset(ds, tmp_path, rng, n=6, shape=(40, 48), plant=(1, 3), names=NAMES)
    common = dict(probs_field="probs_path", method=method, output_dir=str(tmp_path / "out"), progress=False)
    res = compute_label_quality(ds, "ground_truth", score_field="lq", min_region_area=1, **common)
    labels, predicted, conf, *features = _regions(ds, "lq")
    assert conf and all(isinstance(c, float) and 0.0 <= c <= 1.0 for c in conf)
    index = {name: k for k, name in enumerate(res.classes)}
    expected = region_confidence(
        {n: np.array(v, dtype=np.float64) for n, v in zip(LOCAL_FEATURES, features)},
        np.array([index[v] for v in labels]),
        np.array([index[v] for v in predicted]),
        res.confusion,
    )
    np.testing.assert_array_equal(conf, expected)
    # deterministic: a second run under another key writes the same values
    compute_label_quality(ds, "ground_truth", score_field="lq2", min_region_area=1, **common)
    assert _regions(ds, "lq2") == _regions(ds, "lq")


def test_final_pass_writes_nothing_when_nothing_changes(make_dataset, tmp_path, rng):
    ds = make_dataset()
    segmentation_dataset(ds, tmp_path, rng, n=4, shape=(40, 48), plant=(1,), names=NAMES)
    res = compute_label_quality(
        ds, "ground_truth", probs_field="probs_path", score_field="lq", output_dir=str(tmp_path / "out"), progress=False
    )
    stamps = ds.values("last_modified_at")
    n = write_region_confidence(ds, output_fields("lq"), res.classes, res.confusion)
    assert n == len(_regions(ds, "lq")[0]) > 0
    assert ds.values("last_modified_at") == stamps
    # with other totals the values change and are written back
    other = res.confusion.copy()
    other[1, 0] += 10**6
    write_region_confidence(ds, output_fields("lq"), res.classes, other)
    assert _regions(ds, "lq")[2] != [None] * n
