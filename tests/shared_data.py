"""Locate the workplace's shared data sets (read-only, never copied here).

Looked up in $SEGQUAL_SHARED_DATA, then in ``shared/data`` next to any parent
of the repository (``../shared/data`` from the project root), so a clone
anywhere under the workplace finds them. Tests skip when absent, and fail
under CI=true (tests/conftest.py).
"""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shared_data(name: str):
    env = os.environ.get("SEGQUAL_SHARED_DATA")
    candidates = [os.path.join(env, name)] if env else []
    d = ROOT
    while True:
        candidates.append(os.path.join(d, "shared", "data", name))
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    candidates.append(os.path.join("/work/shared/data", name))
    for c in candidates:
        if os.path.isdir(c):
            return c
    return None
