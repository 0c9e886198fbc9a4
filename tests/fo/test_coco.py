"""COCO annotations: pycocotools decoding and FiftyOne Detections agree."""

import os

import numpy as np
import pytest

import fiftyone as fo

from segqual_fo import compute_label_quality
from segqual_fo.adapters.coco import coco_annotations_to_label_mask, coco_classes, load_coco
from segqual_fo.adapters.labels import instances_to_mask
from segqual_fo.fo.inputs import detections_to_instances
from tests.core.helpers import plausible_model

from tests.shared_data import shared_data

COCO_DIR = shared_data("coco-val2017-10") or "/nonexistent"
ANNS = os.path.join(COCO_DIR, "annotations", "instances_val2017_subset.json")
pytestmark = pytest.mark.skipif(not os.path.isfile(ANNS), reason="shared COCO data absent: set SEGQUAL_SHARED_DATA to the workplace's shared/data")


@pytest.fixture(scope="module")
def coco():
    return load_coco(ANNS)


def test_semantic_masks_agree_with_ann_to_mask(coco):
    names, index = coco_classes(coco)
    assert len(names) == 80 and index[1] == 0  # class k = k-th category
    crowd_seen = False
    for image_id in coco.getImgIds():
        mask = coco_annotations_to_label_mask(coco, image_id, index)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
        union = {}
        for a in anns:
            if not a["iscrowd"]:
                k = index[a["category_id"]]
                union[k] = union.get(k, False) | coco.annToMask(a).astype(bool)
        covered = sum((m.astype(int) for m in union.values()), np.zeros(mask.shape, int))
        for k, u in union.items():
            assert ((mask == k) <= u).all()  # a class only where its annotations are
            alone = u & (covered == 1)
            assert (mask[alone] == k).all()  # and everywhere only it is
        assert (mask[covered == 0] == 255).all()  # unannotated (and crowd) pixels are void
        for a in anns:
            if a["iscrowd"]:
                crowd_seen = True
                only_crowd = coco.annToMask(a).astype(bool) & (covered == 0)
                assert only_crowd.any() and (mask[only_crowd] == 255).all()
    assert crowd_seen


@pytest.fixture
def coco_dataset(make_dataset):
    ds = fo.Dataset.from_dir(
        dataset_type=fo.types.COCODetectionDataset,
        data_path=os.path.join(COCO_DIR, "images"),
        labels_path=ANNS,
        label_types=["segmentations"],
        label_field="ground_truth",
        name=make_dataset().name + "-coco",
        progress=False,
    )
    yield ds
    ds.delete()


def test_fiftyone_detections_rasterise_like_pycocotools(coco, coco_dataset):
    names, index = coco_classes(coco)
    by_file = {img["file_name"]: img["id"] for img in coco.dataset["images"]}
    class_index = {n: k for k, n in enumerate(names)}
    for sample in coco_dataset.iter_samples():
        w, h = sample.metadata.width, sample.metadata.height
        ours = instances_to_mask(detections_to_instances(sample.ground_truth), (w, h), class_index)
        ref = coco_annotations_to_label_mask(coco, by_file[os.path.basename(sample.filepath)], index)
        assert (ours != ref).sum() <= 0.0005 * ours.size  # within rounding of a few boundary pixels


def test_score_detections_field(coco_dataset, tmp_path, rng):
    coco = load_coco(ANNS)
    names, index = coco_classes(coco)
    by_file = {img["file_name"]: img["id"] for img in coco.dataset["images"]}
    os.makedirs(tmp_path / "p")
    for sample in coco_dataset.iter_samples(autosave=True):
        m = coco_annotations_to_label_mask(coco, by_file[os.path.basename(sample.filepath)], index).astype(np.int64)
        clean = np.where(m == 255, 0, m)
        probs = plausible_model(rng, clean[None], 80, strength=6.0)[0].astype(np.float16)
        path = tmp_path / "p" / (os.path.splitext(os.path.basename(sample.filepath))[0] + ".npy")
        np.save(path, probs)
        sample["pred_probs_path"] = str(path)
    res = compute_label_quality(
        coco_dataset, "ground_truth", probs_field="pred_probs_path", output_dir=str(tmp_path / "o"), progress=False
    )
    assert res.num_scored == len(coco_dataset) and res.classes == names
    scores = coco_dataset.values("label_quality")
    assert all(0 <= s <= 1 for s in scores)
