"""Database documents of the output labels, built as plain dicts.

Building ``fo.Heatmap`` / ``fo.Segmentation`` / ``fo.Detections`` objects and
serialising them with FiftyOne costs about 1 ms of CPU per sample (more with
many regions), mostly in mongoengine; in a Dask run that falls on the one
client process. The functions here write the same documents as plain dicts
where the image was scored (a writer thread or a Dask worker), without
importing FiftyOne. :func:`segqual_fo.fo.documents.matches_fiftyone` checks,
once per run, that they equal what the installed FiftyOne writes; when they
do not (another FiftyOne version changed the layout), the run builds the
objects the slow way instead.
"""

from __future__ import annotations

import io
import zlib
from typing import Sequence

import numpy as np
from bson import Binary, ObjectId

#: A heatmap's stored value range (8-bit PNGs, see writers.files).
HEATMAP_RANGE = [0.0, 255.0]


def serialize_mask(mask: np.ndarray) -> bytes:
    """An instance mask as FiftyOne stores it: the ``.npy`` bytes of the
    array, zlib-compressed."""
    with io.BytesIO() as f:
        np.save(f, np.asarray(mask), allow_pickle=False)
        return zlib.compress(f.getvalue())


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
                "mask": Binary(serialize_mask(r.mask)),
                "predicted_label": classes[r.predicted_class],
                "area": int(r.area),
                "mean_score": float(r.mean_score),
            }
            for r in regions
        ],
    }
