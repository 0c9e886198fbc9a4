"""Run totals of the samples committed so far, saved after every commit.

A run's results hold dataset totals (the given-vs-predicted confusion
counts of issue pixels, the number of undefined scores). A resumed softmin
run scores only the samples the interrupted run did not commit, so it needs
the totals of those that were: this checkpoint, one small document per run
in the ``segqual_run_checkpoints`` collection of FiftyOne's database,
written right after each batch commit.

The checkpoint says which samples it covers by their number and an
order-free fingerprint of their ids (the sum of the ids as integers). A
process killed between a commit and its checkpoint leaves one batch
uncovered; a resume then sees that the checkpoint does not describe the
samples it finds committed and re-reads them instead (see
:func:`segqual_fo.compute_label_quality`). The checkpoint stays
after the run completes (it then holds the final totals), so resuming a
finished run reads nothing; the next run under the key replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np

COLLECTION = "segqual_run_checkpoints"
_FINGERPRINT_MOD = 1 << 96  # ObjectIds are 96-bit integers


def fingerprint(sample_ids: Iterable[str]) -> int:
    """Order-free fingerprint of a set of sample ids."""
    return sum(int(sid, 16) for sid in sample_ids) % _FINGERPRINT_MOD


@dataclass
class Totals:
    """Totals over a set of committed samples."""

    confusion: np.ndarray  # (K*K,) int64, [given * K + predicted]
    num_samples: int = 0
    fingerprint: int = 0
    num_undefined: int = 0

    @classmethod
    def zeros(cls, num_classes: int) -> "Totals":
        return cls(np.zeros(num_classes * num_classes, dtype=np.int64))

    def add_sample(self, sample_id: str, pairs: np.ndarray, counts: np.ndarray, undefined: bool) -> None:
        """Counts one committed sample (its issue pixels' pair codes)."""
        np.add.at(self.confusion, pairs, counts)
        self.num_samples += 1
        self.fingerprint = (self.fingerprint + int(sample_id, 16)) % _FINGERPRINT_MOD
        self.num_undefined += bool(undefined)

    def describes(self, sample_ids) -> bool:
        """Whether these totals cover exactly the samples ``sample_ids``."""
        return self.num_samples == len(sample_ids) and self.fingerprint == fingerprint(sample_ids)


class RunCheckpoint:
    """The checkpoint of run ``token`` under ``score_field`` of a dataset."""

    def __init__(self, dataset, score_field: str, token: str):
        self._id = f"{dataset._doc.id}/{score_field}"
        self.token = token
        self._coll = None

    def _collection(self):
        if self._coll is None:
            import fiftyone.core.odm as foo

            self._coll = foo.get_db_conn()[COLLECTION]
        return self._coll

    def save(self, totals: Totals) -> None:
        self._collection().replace_one(
            {"_id": self._id},
            {
                "_id": self._id,
                "token": self.token,
                "confusion": totals.confusion.tolist(),
                "num_samples": totals.num_samples,
                # as a string: MongoDB integers are at most 64 bits
                "fingerprint": str(totals.fingerprint),
                "num_undefined": totals.num_undefined,
            },
            upsert=True,
        )

    def load(self, num_classes: int) -> Optional[Totals]:
        """The saved totals of this run, or None (none saved, another run's,
        or another class count)."""
        doc = self._collection().find_one({"_id": self._id})
        if doc is None or doc.get("token") != self.token or len(doc.get("confusion", ())) != num_classes**2:
            return None
        return Totals(
            np.asarray(doc["confusion"], dtype=np.int64),
            int(doc["num_samples"]),
            int(doc["fingerprint"]),
            int(doc.get("num_undefined", 0)),
        )

    def delete(self) -> None:
        self._collection().delete_one({"_id": self._id})

    def move_to(self, score_field: str) -> None:
        """Files the checkpoint under another key (a renamed run)."""
        doc = self._collection().find_one({"_id": self._id})
        if doc is None:
            return
        dataset_id = self._id.rsplit("/", 1)[0]
        doc["_id"] = f"{dataset_id}/{score_field}"
        self._collection().replace_one({"_id": doc["_id"]}, doc, upsert=True)
        self.delete()
