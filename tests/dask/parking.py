"""Code the Dask tests run on workers (light: imports no FiftyOne).

Makes one Dask worker park inside a segqual task, so a test can kill it
there: a real signal (a marker file holding the worker's pid), no race.

:func:`install` runs on every worker (``client.run``). It wraps one of the
task functions of :mod:`segqual_fo.execution.dask`; tasks find it by module
attribute when they are unpickled, so they run the wrapper. The wrapper runs
the task in full (its outputs are on disk), then the first worker to get
there creates the marker (atomically, ``O_EXCL``) and blocks forever without
returning its result; every other call returns normally. A worker the nanny
restarts after the kill is a fresh process, without the wrapper.

Light on purpose: workers import this module, and it imports no FiftyOne.
"""

import os
import time

import segqual_fo.execution.dask as tasks


def install(marker: str, task: str) -> None:
    real = getattr(tasks, task)
    if getattr(real, "parks_at", None):
        return

    def parked(*args, **kwargs):
        result = real(*args, **kwargs)
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:  # another task parked already
            return result
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        time.sleep(10**6)  # until killed
        return result

    parked.parks_at = marker
    setattr(tasks, task, parked)


def wait_for_marker(marker: str, timeout: float = 120.0) -> int:
    """The pid of the parked worker, once it has parked."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(marker) as f:
                text = f.read()
            if text:
                return int(text)
        except FileNotFoundError:
            pass
        time.sleep(0.01)  # polling a file the worker writes once; no race on the outcome
    raise AssertionError(f"no worker parked within {timeout:.0f} s ({marker})")


def fiftyone_modules() -> list:
    """The FiftyOne modules this process has imported (run on workers)."""
    import sys

    return sorted(m for m in sys.modules if m == "fiftyone" or m.startswith(("fiftyone.", "fiftyone_")))
