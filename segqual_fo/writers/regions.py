"""Connected issue regions: one record per 8-connected group of issue pixels.

Each region says which class the annotation gives it (the most common given
class of its pixels), which class the model predicts (the most common argmax
over its pixels), its area in pixels and its mean pixel score, with a tight
bounding box and the region's mask inside that box (FiftyOne's instance-mask
convention).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import numpy as np


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
    """

    bounding_box: Tuple[float, float, float, float]
    mask: np.ndarray
    given_class: int
    predicted_class: int
    area: int
    mean_score: float


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
    """Connected regions of an issue mask, largest first.

    Args:
        issues: (H,W) bool issue mask
        labels: (H,W) given class indices
        pred: (H,W) predicted class indices (valid where ``issues``)
        pixel_scores: (H,W) pixel scores
        min_area (1): drop smaller regions
        max_regions (100): keep at most this many (the largest)

    Returns:
        list of :class:`IssueRegion`
    """
    import cv2

    if not issues.any():
        return []
    n, comp, stats, _ = cv2.connectedComponentsWithStats(issues.astype(np.uint8), connectivity=8)
    h, w = issues.shape
    order = sorted(range(1, n), key=lambda i: -stats[i, cv2.CC_STAT_AREA])
    regions = []
    for i in order:
        area = int(stats[i, cv2.CC_STAT_AREA])
        if area < min_area or len(regions) >= max_regions:
            break
        x, y = int(stats[i, cv2.CC_STAT_LEFT]), int(stats[i, cv2.CC_STAT_TOP])
        bw, bh = int(stats[i, cv2.CC_STAT_WIDTH]), int(stats[i, cv2.CC_STAT_HEIGHT])
        box = comp[y : y + bh, x : x + bw] == i
        regions.append(
            IssueRegion(
                bounding_box=(x / w, y / h, bw / w, bh / h),
                mask=box,
                given_class=_majority(labels[y : y + bh, x : x + bw][box]),
                predicted_class=_majority(pred[y : y + bh, x : x + bw][box]),
                area=area,
                mean_score=float(np.nanmean(pixel_scores[y : y + bh, x : x + bw][box])),
            )
        )
    return regions
