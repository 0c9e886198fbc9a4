"""Review states: what a reviewer decided survives a rescore.

A reviewer marks issue regions with label tags and images with a sample tag:

=================  ==========================================================
``not_an_error``   (region) the label is right; the model is wrong here
``fixed``          (region) corrected (``fix_regions`` sets it)
``reviewed``       (image) every region of it was looked at
=================  ==========================================================

Any other label tag is kept the same way. A rescore replaces the regions
field; before it does, the tags of the tagged regions are read
(:func:`review_marks`), and each sample's new regions get the tags of the
old regions they overlap (:func:`carry_marks`: pixel IoU >= 0.5, each old
region to its best new match), in the same atomic update that writes them,
so a killed run loses no mark (the samples not yet rewritten still hold
theirs). A region that no longer exists takes its tags with it. Sample tags
are never touched by a run.

:func:`review_progress` counts what is left: scored images not tagged
``reviewed``, and regions without a state on those images.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from fiftyone import ViewField as F

from segqual_fo.errors import InvalidInputError
from segqual_fo.options import output_fields

#: Label tags that settle a region.
REGION_STATES = ("not_an_error", "fixed")
#: Sample tag of an image whose regions were all looked at.
REVIEWED = "reviewed"
#: Old and new region must overlap this much (intersection over union of
#: their pixels) for the new one to inherit the old one's tags.
MIN_IOU = 0.5


@dataclass
class Mark:
    """A tagged region of an earlier run: its tags and pixels."""

    tags: List[str]
    pixels: np.ndarray  # flat pixel indices in the image, sorted


def _image_size(bbox: Sequence[float], mask_shape: Tuple[int, int]) -> Tuple[int, int]:
    """(W, H) of the image a region's box is relative to: the box is the
    mask's pixel box divided by the image size, exactly."""
    h, w = mask_shape
    return int(round(w / bbox[2])), int(round(h / bbox[3]))


def region_pixels(bbox: Sequence[float], mask: np.ndarray, size: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """Sorted flat indices (row-major in the W x H image) of a region's
    pixels, from its relative box and its mask inside the box."""
    mask = np.asarray(mask, dtype=bool)
    w_img, h_img = size or _image_size(bbox, mask.shape)
    x0, y0 = int(round(bbox[0] * w_img)), int(round(bbox[1] * h_img))
    ys, xs = np.nonzero(mask)
    return np.sort((ys + y0).astype(np.int64) * w_img + (xs + x0))


def _decode_mask(raw) -> np.ndarray:
    if isinstance(raw, np.ndarray):
        return raw
    return np.load(io.BytesIO(zlib.decompress(bytes(raw))), allow_pickle=False)


def review_marks(sample_collection, regions_field: str) -> Dict[str, List[Mark]]:
    """The tagged regions of ``regions_field`` in the collection, by sample
    id (only samples with at least one tagged region; one query)."""
    if not sample_collection._dataset.has_field(regions_field):
        return {}
    view = sample_collection.filter_labels(regions_field, F("tags").length() > 0, only_matches=True)
    ids, tags, boxes, masks = view.values(
        ["id", f"{regions_field}.detections.tags", f"{regions_field}.detections.bounding_box",
         f"{regions_field}.detections.mask"]
    )  # fmt: skip
    out: Dict[str, List[Mark]] = {}
    for sid, ts, bs, ms in zip(ids, tags, boxes, masks):
        for t, b, m in zip(ts or [], bs or [], ms or []):
            if t and b is not None and m is not None:
                out.setdefault(sid, []).append(Mark(list(t), region_pixels(b, _decode_mask(m))))
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter) if inter else 0.0


def carry_marks(marks: List[Mark], regions: Any) -> int:
    """Gives the new ``regions`` (a ``fo.Detections`` or its document as a
    dict) the tags of the old ``marks`` they overlap; returns how many
    regions got tags."""
    dets = regions["detections"] if isinstance(regions, dict) else regions.detections
    if not dets or not marks:
        return 0
    get = (lambda d, k: d[k]) if isinstance(regions, dict) else (lambda d, k: getattr(d, k))
    pixels = [region_pixels(get(d, "bounding_box"), _decode_mask(get(d, "mask"))) for d in dets]
    pairs = sorted(
        ((_iou(m.pixels, p), i, j) for i, m in enumerate(marks) for j, p in enumerate(pixels)), reverse=True
    )
    used_old, carried = set(), set()
    for iou, i, j in pairs:
        if iou < MIN_IOU:
            break
        if i in used_old:
            continue
        used_old.add(i)
        d = dets[j]
        tags = list(get(d, "tags") or [])
        tags += [t for t in marks[i].tags if t not in tags]
        if isinstance(regions, dict):
            d["tags"] = tags
        else:
            d.tags = tags
        carried.add(j)
    return len(carried)


def review_progress(sample_collection, score_field: str = "label_quality") -> Dict[str, int]:
    """What is left to review in the collection for run ``score_field``.

    Returns a dict: ``images`` (scored), ``images_reviewed``,
    ``images_left``, ``regions`` (on scored images), ``regions_left``
    (without a state, on images not reviewed), and one count per state in
    :data:`REGION_STATES`.
    """
    regions_field = output_fields(score_field)["regions"]
    scored = sample_collection.exists(score_field)
    images = scored.count()
    reviewed = scored.match_tags(REVIEWED).count()
    out = {"images": images, "images_reviewed": reviewed, "images_left": images - reviewed}
    if not sample_collection._dataset.has_field(regions_field):
        out.update(regions=0, regions_left=0, **{s: 0 for s in REGION_STATES})
        return out
    path = f"{regions_field}.detections"
    out["regions"] = int(scored.count(path))
    counts = scored.count_label_tags(label_fields=regions_field)
    out.update({s: int(counts.get(s, 0)) for s in REGION_STATES})
    out["regions_left"] = int(review_view(sample_collection, score_field).count(path))
    return out


def review_view(sample_collection, score_field: str = "label_quality"):
    """The images left to review, worst first, showing only their regions
    without a state."""
    regions_field = output_fields(score_field)["regions"]
    view = sample_collection.exists(score_field).match_tags(REVIEWED, bool=False)
    if sample_collection._dataset.has_field(regions_field):
        view = view.filter_labels(regions_field, ~F("tags").contains(list(REGION_STATES)), only_matches=False)
    return view.sort_by(score_field)


def mark_regions(sample_collection, label_ids: Sequence[str], state: str, score_field: str = "label_quality") -> int:
    """Tags the regions ``label_ids`` of run ``score_field`` with ``state``
    (one of :data:`REGION_STATES`), removing the other state; returns how
    many regions were marked."""
    if state not in REGION_STATES:
        raise InvalidInputError(f"state must be one of {list(REGION_STATES)}, got {state!r}.")
    regions_field = output_fields(score_field)["regions"]
    view = sample_collection.select_labels(ids=list(label_ids), fields=regions_field)
    for other in REGION_STATES:
        if other != state:
            view.untag_labels(other, label_fields=regions_field)
    view.tag_labels(state, label_fields=regions_field)
    return int(view.count(f"{regions_field}.detections"))
