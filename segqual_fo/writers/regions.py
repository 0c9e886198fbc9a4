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

from segqual_fo.core.regions import components_features, region_logits, sigmoid


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
    (:func:`~segqual_fo.core.regions.region_features`, computed for all of
    them at once by :func:`~segqual_fo.core.regions.components_features`);
    the ``max_regions``
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
    ids = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] >= min_area)
    ids = ids[ids > 0]
    if ids.size == 0:
        return []
    given, predicted, f = components_features(comp, ids, labels, pred, pixel_scores)
    logits = region_logits(f)
    order = np.lexsort((-f["area"], -logits))[:max_regions]  # stable: raster order breaks the last ties
    confidence = sigmoid(logits)
    out = []
    for j in order:
        i = int(ids[j])
        x, y = int(stats[i, cv2.CC_STAT_LEFT]), int(stats[i, cv2.CC_STAT_TOP])
        bw, bh = int(stats[i, cv2.CC_STAT_WIDTH]), int(stats[i, cv2.CC_STAT_HEIGHT])
        out.append(
            IssueRegion(
                bounding_box=(x / w, y / h, bw / w, bh / h),
                mask=np.ascontiguousarray(comp[y : y + bh, x : x + bw] == i),
                given_class=int(given[j]),
                predicted_class=int(predicted[j]),
                area=int(stats[i, cv2.CC_STAT_AREA]),
                mean_score=float(f["mean_score"][j]),
                min_score=float(f["min_score"][j]),
                ring_given=float(f["ring_given"][j]),
                ring_predicted=float(f["ring_predicted"][j]),
                ring_score=float(f["ring_score"][j]),
                thickness=float(f["thickness"][j]),
                confidence=float(confidence[j]),
            )
        )
    return out
