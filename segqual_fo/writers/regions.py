"""Connected issue regions: one record per 8-connected group of issue pixels.

Each region says which class the annotation gives it (the most common given
class of its pixels), which class the model predicts (the most common argmax
over its pixels), its area in pixels and its mean pixel score, with a tight
bounding box and the region's mask inside that box (FiftyOne's instance-mask
convention), plus the local evidence of
:func:`segqual_fo.core.regions.region_features` and a confidence (that the
region is an annotation error) from that evidence alone; the FiftyOne layer
replaces it with the dataset-aware confidence at the end of a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from segqual_fo.core.regions import LOCAL_FEATURES, region_features, region_logits, sigmoid


@dataclass
class IssueRegion:
    """One connected region of issue pixels.

    Attributes:
        bounding_box: [x, y, w, h] relative to the image size, in [0, 1]
        mask: (h, w) bool mask of the region inside its box
        given_class: class index the labels give (majority)
        predicted_class: class index the model predicts (majority)
        area: pixels in the region
        mean_score: mean pixel score (self-confidence) over the region
        min_score: lowest pixel score over the region
        ring_given: share of the region's outer ring labelled ``given_class``
        ring_predicted: share of the ring labelled ``predicted_class``
        ring_score: mean pixel score on the ring
        thickness: area / boundary pixels
        confidence: estimated probability that the region is an annotation
            error (local evidence only, see :mod:`segqual_fo.core.regions`)
    """

    bounding_box: Tuple[float, float, float, float]
    mask: np.ndarray
    given_class: int
    predicted_class: int
    area: int
    mean_score: float
    min_score: float = float("nan")
    ring_given: float = 0.0
    ring_predicted: float = 0.0
    ring_score: float = 1.0
    thickness: float = 1.0
    confidence: Optional[float] = None


def _majority(values: np.ndarray) -> int:
    return int(np.bincount(values.astype(np.intp)).argmax())


def find_regions(
    issues: np.ndarray,
    labels: np.ndarray,
    pred: np.ndarray,
    pixel_scores: np.ndarray,
    *,
    min_area: int = 1,
    max_regions: int = 100,
) -> List[IssueRegion]:
    """Connected regions of an issue mask, most likely annotation errors
    first.

    Every region of at least ``min_area`` pixels gets its local evidence
    (:func:`~segqual_fo.core.regions.region_features`); the ``max_regions``
    with the highest local confidence are kept, in that order (ties: the
    larger first, then the first found in raster order).

    Args:
        issues: (H,W) bool issue mask
        labels: (H,W) given class indices
        pred: (H,W) predicted class indices (valid where ``issues``)
        pixel_scores: (H,W) pixel scores
        min_area (1): drop smaller regions
        max_regions (100): keep at most this many (the most likely errors)

    Returns:
        list of :class:`IssueRegion`
    """
    import cv2

    if not issues.any():
        return []
    n, comp, stats, _ = cv2.connectedComponentsWithStats(issues.astype(np.uint8), connectivity=8)
    h, w = issues.shape
    regions = []
    for i in range(1, n):
        area = int(stats[i, cv2.CC_STAT_AREA])
        if area < min_area:
            continue
        x, y = int(stats[i, cv2.CC_STAT_LEFT]), int(stats[i, cv2.CC_STAT_TOP])
        bw, bh = int(stats[i, cv2.CC_STAT_WIDTH]), int(stats[i, cv2.CC_STAT_HEIGHT])
        # the box grown by one pixel (inside the image) holds the region's ring
        y0, x0, y1, x1 = max(y - 1, 0), max(x - 1, 0), min(y + bh + 1, h), min(x + bw + 1, w)
        window = comp[y0:y1, x0:x1] == i
        box = window[y - y0 : y - y0 + bh, x - x0 : x - x0 + bw]
        given = _majority(labels[y : y + bh, x : x + bw][box])
        predicted = _majority(pred[y : y + bh, x : x + bw][box])
        f = region_features(window, labels[y0:y1, x0:x1], pixel_scores[y0:y1, x0:x1], given, predicted)
        regions.append(
            IssueRegion(
                bounding_box=(x / w, y / h, bw / w, bh / h),
                mask=np.ascontiguousarray(box),
                given_class=given,
                predicted_class=predicted,
                area=area,
                mean_score=f["mean_score"],
                min_score=f["min_score"],
                ring_given=f["ring_given"],
                ring_predicted=f["ring_predicted"],
                ring_score=f["ring_score"],
                thickness=f["thickness"],
            )
        )
    if not regions:
        return []
    logits = region_logits({k: np.array([getattr(r, k) for r in regions]) for k in LOCAL_FEATURES})
    areas = np.array([r.area for r in regions])
    order = np.lexsort((-areas, -logits))[:max_regions]  # stable: raster order breaks the last ties
    confidence = sigmoid(logits)
    out = []
    for j in order:
        regions[j].confidence = float(confidence[j])
        out.append(regions[j])
    return out
