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
from typing import Dict, Sequence

import numpy as np
from bson import Binary, ObjectId

#: A heatmap's stored value range (8-bit PNGs, see writers.files).
HEATMAP_RANGE = [0.0, 255.0]


#: ``.npy`` headers of C-ordered bool masks by shape (see :func:`serialize_mask`)
_MASK_HEADERS: Dict[tuple, bytes] = {}
_MASK_HEADERS_MAX = 4096


def _save_bytes(mask: np.ndarray) -> bytes:
    with io.BytesIO() as f:
        np.save(f, mask, allow_pickle=False)
        return f.getvalue()


def serialize_mask(mask: np.ndarray) -> bytes:
    """An instance mask as FiftyOne stores it: the ``.npy`` bytes of the
    array, zlib-compressed.

    For a C-ordered bool mask (every region's), the bytes ``np.save`` writes
    are its header, which depends only on the shape, then the raw values;
    the header is made by ``np.save`` once per shape, so a mask costs one
    ``tobytes`` instead of a pass through numpy's writer (~30 us each).
    """
    mask = np.asarray(mask)
    if mask.dtype != np.bool_ or not mask.flags.c_contiguous:
        return zlib.compress(_save_bytes(mask))
    header = _MASK_HEADERS.get(mask.shape)
    if header is None:
        whole = _save_bytes(mask)
        header = whole[: len(whole) - mask.nbytes]
        if len(_MASK_HEADERS) >= _MASK_HEADERS_MAX:
            _MASK_HEADERS.clear()
        _MASK_HEADERS[mask.shape] = header
    return zlib.compress(header + mask.tobytes())


def heatmap_doc(map_path: str) -> dict:
    return {"_id": ObjectId(), "_cls": "Heatmap", "tags": [], "map_path": map_path, "range": list(HEATMAP_RANGE)}


def segmentation_doc(mask_path: str) -> dict:
    return {"_id": ObjectId(), "_cls": "Segmentation", "tags": [], "mask_path": mask_path}


def detections_doc(regions: Sequence, classes: Sequence[str]) -> dict:
    """The regions as a ``fo.Detections`` document (see
    :class:`~segqual_fo.writers.regions.IssueRegion`)."""
    return {"_cls": "Detections", "detections": [_detection_doc(r, classes) for r in regions]}


#: The regions' float attributes after ``area``, in the order FiftyOne
#: stores them (see :func:`segqual_fo.fo.documents.regions_to_detections`).
REGION_FLOATS = ("mean_score", "min_score", "ring_given", "ring_predicted", "ring_score", "thickness")


def _detection_doc(r, classes: Sequence[str]) -> dict:
    doc = {
        "_id": ObjectId(),
        "_cls": "Detection",
        "attributes": {},
        "tags": [],
        "label": classes[r.given_class],
        "bounding_box": [float(v) for v in r.bounding_box],
        "mask": Binary(serialize_mask(r.mask)),
    }
    if r.confidence is not None:  # FiftyOne's own field, stored before the custom ones
        doc["confidence"] = float(r.confidence)
    doc["predicted_label"] = classes[r.predicted_class]
    doc["area"] = int(r.area)
    for name in REGION_FLOATS:
        doc[name] = float(getattr(r, name))
    return doc
