"""One run at a time per ``score_field``: a lock in FiftyOne's database.

Two runs writing the same output fields at once would interleave their
commits, and the orphan sweep at the end of one would delete the files the
other has written but not yet committed. So :func:`compute_label_quality`
holds a lock on ``(dataset, score_field)`` from before it reads the run
record until it has recorded the finished run.

The lock is one document in the ``segqual_run_locks`` collection of the
database FiftyOne uses, keyed by dataset id and score field. Taking it is one
atomic insert (MongoDB refuses a second document with the same ``_id``), so
two processes, or two machines sharing a database, cannot both get it.

A lock held by a process that died (SIGKILL, a lost machine) must not block
the key forever:

- on the same host, a lock whose process no longer exists (pid and process
  start time checked, so a recycled pid does not count) is taken over at
  once;
- from another host, liveness cannot be checked, so the holder refreshes a
  heartbeat every :data:`HEARTBEAT_SECONDS`; a lock whose heartbeat is older
  than :data:`STALE_SECONDS` is taken over.

Taking over a stale lock is a compare-and-swap on the old heartbeat, so of
two processes racing for a stale lock exactly one wins.
"""

from __future__ import annotations

import datetime
import os
import socket
import threading
from typing import Optional

from segqual_fo.errors import FiftyOneInputError

COLLECTION = "segqual_run_locks"
#: How often a running run refreshes its lock.
HEARTBEAT_SECONDS = 20.0
#: A lock not refreshed for this long is considered abandoned.
STALE_SECONDS = 120.0


class RunLockedError(FiftyOneInputError):
    """Another run is writing the same ``score_field`` of the dataset."""


def _now() -> datetime.datetime:
    # MongoDB keeps millisecond precision: round here so the value read back
    # equals the value written (the compare-and-swap below relies on it)
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _process_start(pid: int) -> Optional[str]:
    """The start time of process ``pid`` (Linux: field 22 of /proc/pid/stat),
    None if there is no such process; "" where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
        return stat.rsplit(")", 1)[1].split()[19]
    except FileNotFoundError:
        return None
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except OSError:
        pass
    return ""


def _holder_is_dead(doc: dict, host: str, now: datetime.datetime) -> bool:
    beat = doc.get("heartbeat_at")
    if beat is None or (now - beat).total_seconds() > STALE_SECONDS:
        return True
    if doc.get("host") != host:
        return False
    start = _process_start(int(doc.get("pid", -1)))
    return start is None or (start != "" and doc.get("process_start") not in (None, "", start))


def _describe(doc: dict, now: datetime.datetime) -> str:
    beat = doc.get("heartbeat_at")
    ago = f"{(now - beat).total_seconds():.0f} s ago" if beat else "never"
    started = doc.get("started_at")
    started = started.strftime("%Y-%m-%d %H:%M:%S UTC") if started else "?"
    return f"process {doc.get('pid')} on host {doc.get('host')!r}, started {started}, last heartbeat {ago}"


class RunLock:
    """The lock on one ``(dataset, score_field)``; use as a context manager.

    Args:
        dataset: the ``fo.Dataset`` (views lock their dataset)
        score_field: the run key

    Raises:
        RunLockedError: a live run holds the lock; the message names it and
            what to do
    """

    def __init__(self, dataset, score_field: str):
        self.dataset_name = dataset.name
        self.score_field = score_field
        self._id = f"{dataset._doc.id}/{score_field}"
        self._host = socket.gethostname()
        self._pid = os.getpid()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._coll = None

    @property
    def owner(self) -> dict:
        """Who holds the lock (recorded with the run while it runs)."""
        return {"host": self._host, "pid": self._pid}

    def _collection(self):
        if self._coll is None:
            import fiftyone.core.odm as foo

            self._coll = foo.get_db_conn()[COLLECTION]
        return self._coll

    def _document(self, now: datetime.datetime) -> dict:
        return {
            "_id": self._id,
            "dataset": self.dataset_name,
            "score_field": self.score_field,
            "host": self._host,
            "pid": self._pid,
            "process_start": _process_start(self._pid) or "",
            "started_at": now,
            "heartbeat_at": now,
        }

    def acquire(self) -> "RunLock":
        from pymongo.errors import DuplicateKeyError

        coll = self._collection()
        for _ in range(3):
            now = _now()
            try:
                coll.insert_one(self._document(now))
                break
            except DuplicateKeyError:
                pass
            held = coll.find_one({"_id": self._id})
            if held is None:  # released meanwhile: try the insert again
                continue
            if not _holder_is_dead(held, self._host, now):
                raise RunLockedError(
                    f"another segqual run is writing score_field {self.score_field!r} of dataset "
                    f"{self.dataset_name!r} ({_describe(held, now)}). Wait for it to finish, or "
                    "use another score_field. A run that was killed releases the lock by itself: "
                    f"at once on the same machine, after {STALE_SECONDS:.0f} s without heartbeat "
                    "elsewhere."
                )
            # abandoned: take it over, unless another process just did
            swapped = coll.find_one_and_replace(
                {"_id": self._id, "heartbeat_at": held.get("heartbeat_at")}, self._document(now)
            )
            if swapped is not None:
                break
        else:
            raise RunLockedError(
                f"could not take the lock on score_field {self.score_field!r} of dataset "
                f"{self.dataset_name!r}: other runs keep taking it. Wait for them to finish."
            )
        self._thread = threading.Thread(target=self._beat, name="segqual-run-lock", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self._collection().update_one(
                    {"_id": self._id, "pid": self._pid, "host": self._host}, {"$set": {"heartbeat_at": _now()}}
                )
            except Exception:  # a missed beat is retried; the run goes on
                pass

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._collection().delete_one({"_id": self._id, "pid": self._pid, "host": self._host})

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def lock_holder(dataset, score_field: str) -> Optional[str]:
    """Who is writing ``score_field`` of ``dataset`` right now (process,
    host, start, last heartbeat), or None. A dead or silent holder does not
    count: the next run would take its lock over."""
    import fiftyone.core.odm as foo

    doc = foo.get_db_conn()[COLLECTION].find_one({"_id": f"{dataset._doc.id}/{score_field}"})
    now = _now()
    if doc is None or _holder_is_dead(doc, socket.gethostname(), now):
        return None
    return _describe(doc, now)
