"""Database documents of the output labels, built directly.

Building ``fo.Heatmap`` / ``fo.Segmentation`` / ``fo.Detections`` objects and
serialising them with FiftyOne costs about 1 ms of CPU per sample (more with
many regions), mostly in mongoengine; in a Dask run that falls on the one
client process. The
functions here write the same documents as plain dicts, where the image was
scored (a writer thread or a worker). :func:`matches_fiftyone` checks, once
per run, that they equal what the installed FiftyOne writes; when it does
not (another FiftyOne version changed the layout), the pipeline builds the
objects the slow way instead.
"""

from __future__ import annotations

from typing import List, Sequence

import numpy as np
import bson
from bson import Binary, ObjectId

import fiftyone.core.utils as fou

#: A heatmap's stored value range (8-bit PNGs, see writers.files).
HEATMAP_RANGE = [0.0, 255.0]


def heatmap_doc(map_path: str) -> dict:
    return {"_id": ObjectId(), "_cls": "Heatmap", "tags": [], "map_path": map_path, "range": list(HEATMAP_RANGE)}


def segmentation_doc(mask_path: str) -> dict:
    return {"_id": ObjectId(), "_cls": "Segmentation", "tags": [], "mask_path": mask_path}


def detections_doc(regions: Sequence, classes: Sequence[str]) -> dict:
    """The regions as a ``fo.Detections`` document (see
    :class:`~segqual_fo.writers.regions.IssueRegion`)."""
    return {
        "_cls": "Detections",
        "detections": [
            {
                "_id": ObjectId(),
                "_cls": "Detection",
                "attributes": {},
                "tags": [],
                "label": classes[r.given_class],
                "bounding_box": [float(v) for v in r.bounding_box],
                "mask": Binary(fou.serialize_numpy_array(r.mask)),
                "predicted_label": classes[r.predicted_class],
                "area": int(r.area),
                "mean_score": float(r.mean_score),
            }
            for r in regions
        ],
    }


def regions_to_detections(regions: Sequence, classes: Sequence[str]):
    """The regions as a ``fo.Detections`` (the slow, always-right way)."""
    import fiftyone as fo

    return fo.Detections(
        detections=[
            fo.Detection(
                label=classes[r.given_class],
                bounding_box=list(r.bounding_box),
                mask=r.mask,
                predicted_label=classes[r.predicted_class],
                area=int(r.area),
                mean_score=float(r.mean_score),
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


def matches_fiftyone(examples: List) -> bool:
    """Whether the dicts built here equal FiftyOne's own serialisation
    (ids aside) for ``examples``, a list of region lists."""
    import fiftyone as fo

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


def example_regions() -> List:
    """Region lists that exercise every attribute (for :func:`matches_fiftyone`)."""
    from segqual_fo.writers.regions import IssueRegion

    rng = np.random.default_rng(0)
    return [
        [],
        [
            IssueRegion((0.1, 0.2, 0.3, 0.4), rng.random((5, 7)) > 0.5, 1, 2, 17, 0.25),
            IssueRegion((np.float64(0.0), 0.5, 1.0, 0.5), np.ones((1, 1), bool), 255, 0, np.int64(1), np.float32(0.5)),
        ],
    ]
