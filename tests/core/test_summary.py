import warnings

import numpy as np
import pytest

from segqual_fo.core import common_label_issues, filter_by_class, find_label_issues, issue_confusion_matrix
from tests.core.helpers import blob_labels, plausible_model

import cleanlab.segmentation.summary as cl_summary  # noqa: E402  (the parity oracle; a hard test dependency)


@pytest.fixture
def data(rng):
    labels = blob_labels(rng, 8, 5, 16, 16)
    probs = plausible_model(rng, labels, 5, strength=1.0)
    labels[1, :6, :6] = (labels[1, :6, :6] + 1) % 5
    return labels, probs, find_label_issues(labels, probs)


def test_common_label_issues_match_cleanlab(data):
    labels, probs, issues = data
    names = [f"c{i}" for i in range(5)]
    ours = common_label_issues(issues, labels, probs, class_names=names, top=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = cl_summary.common_label_issues(issues, labels, probs, class_names=names, verbose=False, top=100)
    assert [tuple(r.values()) for r in ours] == [tuple(r) for r in ref.itertuples(index=False)]
    assert sum(r["num_pixel_issues"] for r in ours) == issues.sum()


def test_confusion_matrix_counts(data):
    labels, probs, issues = data
    m = issue_confusion_matrix(issues, labels, probs)
    assert m.shape == (5, 5) and m.sum() == issues.sum() and np.trace(m) == 0


def test_exclude_and_top(data):
    labels, probs, issues = data
    rows = common_label_issues(issues, labels, probs, exclude=[0], top=2)
    assert len(rows) <= 2 and all(r["predicted_label"] != "0" for r in rows)


@pytest.mark.parametrize("c", [0, 3])
def test_filter_by_class_matches_cleanlab(data, c):
    labels, probs, issues = data
    np.testing.assert_array_equal(
        filter_by_class(c, issues, labels, probs), cl_summary.filter_by_class(c, issues, labels, probs)
    )
