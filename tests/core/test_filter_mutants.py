"""find_label_issues: tests written against surviving mutants of
segqual_fo/core/filter.py (verdicts: .ci/mutation-verdicts/core-filter.md).

Masks are checked against the plain-numpy reference of tests/reference.py;
progress lines are parsed from stderr.
"""

import re

import numpy as np
import pytest

from segqual_fo.core import find_label_issues
from segqual_fo.errors import InvalidInputError
from tests.core.helpers import random_probs
from tests.reference import reference

# -- downsample=None is refused first, before the other arguments and the data ----


@pytest.mark.parametrize(
    "other",
    [
        {"n_jobs": 0},
        {"batch_size": 0},
        {"unnormalized": "ignore"},
        {"ignore_index": "void"},
        {"mismatched_n": True},
    ],
    ids=["n_jobs", "batch_size", "unnormalized", "ignore_index", "data"],
)
def test_downsample_none_is_named_before_any_other_problem(rng, other):
    # find_label_issues#13, #16 (allow_none=True): downsample=None got through
    # the first check and was refused only by the IssueFinder, after the other
    # arguments and the data: the error then named n_jobs, batch_size, ... or
    # the shapes (a ShapeMismatchError) instead of downsample
    other = dict(other)
    probs = random_probs(rng, (2, 3, 4, 4))
    labels = rng.integers(0, 3, (2, 4, 4))
    if other.pop("mismatched_n", False):
        labels = labels[:1]
    with pytest.raises(InvalidInputError, match="downsample must be a positive integer, got None") as info:
        find_label_issues(labels, probs, downsample=None, **other)
    assert type(info.value) is InvalidInputError


# -- n_jobs is validated -----------------------------------------------------------


@pytest.mark.parametrize("n_jobs", [0, -1, 2.5, True, "2"])
def test_n_jobs_is_validated(rng, n_jobs):
    # find_label_issues#50 (n_jobs not passed on) and #53 (resolve_n_jobs(None)):
    # any n_jobs was accepted and silently replaced by 1 / the CPU count
    probs = random_probs(rng, (2, 3, 4, 4))
    labels = rng.integers(0, 3, (2, 4, 4))
    with pytest.raises(InvalidInputError, match="n_jobs must be a positive integer"):
        find_label_issues(labels, probs, n_jobs=n_jobs)


@pytest.mark.parametrize("n_jobs", [None, 1, 2])
def test_valid_n_jobs_give_the_reference_masks(rng, n_jobs):
    probs = random_probs(rng, (4, 3, 5, 5), dtype=np.float64, concentration=0.3)
    labels = probs.argmax(1)
    labels[0, 2, 2] = (labels[0, 2, 2] + 1) % 3
    labels[3, 0, 4] = (labels[3, 0, 4] + 2) % 3
    masks = find_label_issues(labels, probs, n_jobs=n_jobs)
    expected = np.stack(reference(labels, probs).issues)
    assert masks.dtype == np.bool_
    np.testing.assert_array_equal(masks, expected)


# -- verbose progress ----------------------------------------------------------------


def _reports(err: str, desc: str):
    """(done, total) of every ``desc: done/total (rate/s)`` report."""
    found = re.findall(re.escape(desc) + r": (\S+)/(\S+) \(", err)
    return [(d, t) for d, t in found]


@pytest.mark.parametrize("with_issues", [True, False])
def test_verbose_progress_ends_at_its_totals(rng, capsys, with_issues):
    # run_issue_finder#42 (the scanning bar disabled): no "scanning images"
    # line under verbose=True; #71 (total 2/N) and #72 (total 3N): the
    # "selecting issues" bar's total is not 2N or it never reaches it.
    # Without issues, finish reports (1..N, 2N)/2N: the bar used to count calls
    # (N + 1 of 2N) instead of following finish's done; it now ends at 2N/2N.
    n = 3
    probs = random_probs(rng, (n, 3, 4, 4), dtype=np.float64, concentration=0.3)
    labels = probs.argmax(1)
    if with_issues:
        labels[1, 2, 1] = (labels[1, 2, 1] + 1) % 3
    masks = find_label_issues(labels, probs, verbose=True, n_jobs=1)
    np.testing.assert_array_equal(masks, np.stack(reference(labels, probs).issues))
    assert masks.any() == with_issues
    err = capsys.readouterr().err
    scanning = _reports(err, "scanning images")
    selecting = _reports(err, "selecting issues")
    assert scanning and selecting, err
    assert all(t == str(n) for _, t in scanning), scanning
    assert scanning[-1] == (str(n), str(n)), scanning
    assert all(t == str(2 * n) for _, t in selecting), selecting
    assert selecting[-1] == (str(2 * n), str(2 * n)), selecting
    done = [int(d) for d, _ in selecting]
    assert done == sorted(done)
    assert err.index("scanning images") < err.index("selecting issues")
