"""The output labels as FiftyOne objects, and the check that the plain
documents of :mod:`segqual_fo.writers.documents` equal FiftyOne's own
serialisation (done once per run; the run falls back to the objects when
they differ)."""

from __future__ import annotations

from typing import List, Sequence

import bson
import numpy as np

import fiftyone as fo

from segqual_fo.writers.documents import REGION_FLOATS, detections_doc, heatmap_doc, segmentation_doc
from segqual_fo.writers.regions import IssueRegion


def regions_to_detections(regions: Sequence[IssueRegion], classes: Sequence[str]) -> fo.Detections:
    """The regions as a ``fo.Detections`` (the slow, always-right way)."""
    return fo.Detections(
        detections=[
            fo.Detection(
                label=classes[r.given_class],
                bounding_box=list(r.bounding_box),
                mask=r.mask,
                confidence=None if r.confidence is None else float(r.confidence),
                predicted_label=classes[r.predicted_class],
                area=int(r.area),
                **{name: float(getattr(r, name)) for name in REGION_FLOATS},
            )
            for r in regions
        ]
    )


def _without_ids(doc):
    if isinstance(doc, dict):
        return {k: _without_ids(v) for k, v in doc.items() if k != "_id"}
    if isinstance(doc, list):
        return [_without_ids(v) for v in doc]
    return doc


def matches_fiftyone(examples: List[List[IssueRegion]]) -> bool:
    """Whether the plain documents equal FiftyOne's own serialisation (ids
    aside) for ``examples``, a list of region lists."""
    classes = [f"class_{k}" for k in range(256)]
    pairs = [
        (heatmap_doc("/x/h.png"), fo.Heatmap(map_path="/x/h.png", range=[0, 255])),
        (segmentation_doc("/x/m.png"), fo.Segmentation(mask_path="/x/m.png")),
    ] + [(detections_doc(regions, classes), regions_to_detections(regions, classes)) for regions in examples]
    try:  # compared as BSON: value types count (1 and 1.0 differ)
        return all(
            bson.encode(_without_ids(ours)) == bson.encode(_without_ids(theirs.to_mongo())) for ours, theirs in pairs
        )
    except Exception:  # any surprise: use FiftyOne's objects
        return False


def example_regions() -> List[List[IssueRegion]]:
    """Region lists that exercise every attribute (for :func:`matches_fiftyone`)."""
    rng = np.random.default_rng(0)
    return [
        [],
        [
            IssueRegion((0.1, 0.2, 0.3, 0.4), rng.random((5, 7)) > 0.5, 1, 2, 17, np.float32(0.1)),  # not exact in binary
            IssueRegion((np.float64(0.0), 0.5, 1.0, 0.5), np.ones((1, 1), bool), 255, 0, np.int64(1), np.float32(0.5)),
            IssueRegion(
                (0.5, 0.5, 0.1, 0.1), np.ones((2, 3), bool), 3, 4, 6, 0.125, np.float32(0.0), 0.5, 0.25,
                np.float64(0.75), 1.5, confidence=np.float64(0.01),
            ),
        ],
    ]
