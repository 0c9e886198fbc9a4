"""Runs scored in child processes that park at a known point, so a test can
kill them there: no sleeps, no races.

A child prints ``PARKED <what>`` once it reached the point the test asked
for, then blocks forever; :func:`wait_parked` reads its output until then.
"""

import os
import queue
import subprocess
import sys
import textwrap
import threading
import time

import pytest



ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: Child code that parks in the progress callback once ``pb.iteration``
#: reaches PARK_AT (``{park_at}``), e.g. during the issue-count scan pass.
PARK_IN_PROGRESS = """
    import os, time
    def progress(pb):
        if pb.iteration >= {park_at}:
            # straight to the file descriptor: the progress bar captures
            # sys.stdout while it is shown
            os.write(1, b"PARKED progress %d\\n" % pb.iteration)
            time.sleep(10**6)
"""

#: Child code that parks right after the ``{park_after}``-th database commit.
PARK_AFTER_COMMITS = """
    import time
    import segqual_fo.fo.commit as C
    real_flush = C.FieldCommitter.flush
    flushes = []
    def flush(self):
        had = bool(self._pending)
        real_flush(self)
        flushes.append(had)
        if sum(flushes) >= {park_after}:
            print("PARKED commits", self.committed, flush=True)
            time.sleep(10**6)
    C.FieldCommitter.flush = flush
    progress = False
"""


def child(code: str, **fmt) -> subprocess.Popen:
    """A Python child running ``code`` (dedented, ``str.format``-ed with
    ``fmt``) with the repository on its path."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    source = textwrap.dedent(code).format(**fmt) if fmt else textwrap.dedent(code)
    return subprocess.Popen(
        [sys.executable, "-c", source], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def scoring_child(dataset_name: str, park: str, **kwargs) -> subprocess.Popen:
    """A child that scores ``dataset_name`` (``compute_label_quality`` with
    ``kwargs``, passed as Python literals) and parks as ``park`` says
    (:data:`PARK_IN_PROGRESS` or :data:`PARK_AFTER_COMMITS`, formatted)."""
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    code = textwrap.dedent(park) + textwrap.dedent(
        f"""
        import fiftyone as fo, segqual_fo
        ds = fo.load_dataset({dataset_name!r})
        segqual_fo.compute_label_quality(ds, "ground_truth", progress=progress, {args})
        print("FINISHED", flush=True)
        """
    )
    return child(code)


def wait_parked(proc: subprocess.Popen, timeout: float = 180) -> str:
    """Reads the child's output until it says PARKED; fails with its output
    if it ends or ``timeout`` passes first."""
    lines: "queue.Queue[str | None]" = queue.Queue()

    def read():
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if "PARKED" in line:  # maybe after a progress bar's carriage return
            return line[line.index("PARKED") :].strip()
    proc.kill()
    pytest.fail("the child did not park:\n" + "".join(seen[-40:]))
