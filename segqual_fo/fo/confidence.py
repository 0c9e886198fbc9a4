"""The run's final pass: every region's dataset-aware confidence.

Each image's regions arrive with a confidence from their local evidence
(:func:`segqual_fo.writers.regions.find_regions`). How common a region's
(given, predicted) class pair is among the run's issue pixels is known only
when every image is scored; this pass reads the stored region attributes of
the whole collection, computes :func:`segqual_fo.core.regions.region_confidence`
with the run's confusion counts, and writes ``confidence`` back in one bulk
write: one update per sample that sets each region's value by its id
(MongoDB array filters). FiftyOne's ``set_values`` on a list field sends one
update per region instead, each rewriting the whole sample document (masks
included): 7x slower at 100 regions per image. It depends only on what is
stored and on the totals, so a run on Dask, a local run and a resumed run
write the same values.
"""

from __future__ import annotations

import datetime
from typing import Dict, List, Sequence

import numpy as np
from bson import ObjectId
from pymongo import UpdateOne

from segqual_fo.core.regions import LOCAL_FEATURES, region_confidence


def write_region_confidence(
    sample_collection, fields: Dict[str, str], classes: Sequence[str], confusion: np.ndarray
) -> int:
    """Sets ``<regions>.detections.confidence`` of every region of the
    collection's samples (one bulk write of the samples whose values
    change); returns the number of regions.

    Args:
        sample_collection: the run's dataset or view
        fields: the run's output field names
        classes: class names in probability-channel order
        confusion: (K,K) issue-pixel counts ``[given, predicted]`` of the run
    """
    path = f"{fields['regions']}.detections"
    names = ("label", "predicted_label", "confidence") + LOCAL_FEATURES
    columns = sample_collection.values([f"{path}.{n}" for n in names] + [f"{path}._id", "id"])
    per_sample, stored, region_ids, ids = columns[0], columns[2], columns[-2], columns[-1]  # a list (or None) per sample
    sizes = [0 if dets is None else len(dets) for dets in per_sample]
    total = sum(sizes)
    if total == 0:
        return 0
    index = {name: k for k, name in enumerate(classes)}

    def flat(col) -> List:
        return [v for dets in col if dets is not None for v in dets]

    given = np.array([index[v] for v in flat(columns[0])], dtype=np.intp)
    predicted = np.array([index[v] for v in flat(columns[1])], dtype=np.intp)
    features = {n: np.array(flat(c), dtype=np.float64) for n, c in zip(LOCAL_FEATURES, columns[3:-2])}
    conf = region_confidence(features, given, predicted, np.asarray(confusion).reshape(len(classes), len(classes)))
    # only samples whose confidences change are written (a finished run
    # resumed, or run again on the same outputs, writes nothing)
    now = datetime.datetime.utcnow()
    ops, changed = [], []
    start = 0
    for sid, old, rids, n in zip(ids, stored, region_ids, sizes):
        if n:
            new = [float(c) for c in conf[start : start + n]]
            if new != old:
                if any(r is None for r in rids):  # ObjectId(None) would be a new id, matching nothing
                    raise ValueError(
                        f"sample {sid}: a region of {fields['regions']} has no id (edited outside "
                        "FiftyOne?); can only set values of array documents with IDs. Rerun with "
                        "overwrite=True to rewrite the regions."
                    )
                # by id, not position: a view may hide some of the regions
                ops.append(UpdateOne(
                    {"_id": ObjectId(sid)},
                    {"$set": {**{f"{path}.$[r{j}].confidence": c for j, c in enumerate(new)},
                              "last_modified_at": now}},
                    array_filters=[{f"r{j}._id": ObjectId(r)} for j, r in enumerate(rids)],
                ))  # fmt: skip
                changed.append(sid)
        start += n
    if ops:
        # FiftyOne's bulk write also refreshes samples loaded in this process
        sample_collection._dataset._bulk_write(ops, ids=changed)
    return total
