"""A minimal stderr progress line for ``verbose=True`` (stdlib only)."""

from __future__ import annotations

import sys
import time


class Progress:
    """Prints ``desc: done/total`` to stderr at most every 0.25 s.

    Args:
        total: number of steps
        desc: label
        enabled (True): print anything at all
    """

    def __init__(self, total: int, desc: str, enabled: bool = True):
        self.total = total
        self.desc = desc
        self.enabled = enabled
        self.done = 0
        self._last = -float("inf")  # the first update prints, whatever the clock's zero
        self._start = time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last >= 0.25 or self.done >= self.total:
            self._last = now
            rate = self.done / max(now - self._start, 1e-9)
            sys.stderr.write(f"\r{self.desc}: {self.done}/{self.total} ({rate:.1f}/s)")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
