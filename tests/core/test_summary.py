"""common_label_issues and filter_by_class: cleanlab's tables and masks, more inputs."""

import warnings

import numpy as np
import pandas as pd
import pytest

from segqual_fo.core import (
    common_label_issues,
    confusion_rows,
    filter_by_class,
    find_label_issues,
    issue_confusion_matrix,
)
from segqual_fo.errors import InvalidInputError, InvalidLabelsError, ShapeMismatchError
from tests.core.helpers import blob_labels, plausible_model

import cleanlab.segmentation.summary as cl_summary  # noqa: E402  (the parity oracle; a hard test dependency)


@pytest.fixture
def data(rng):
    labels = blob_labels(rng, 8, 5, 16, 16)
    probs = plausible_model(rng, labels, 5, strength=1.0)
    labels[1, :6, :6] = (labels[1, :6, :6] + 1) % 5
    return labels, probs, find_label_issues(labels, probs)


def _cleanlab_table(*args, capsys=None, **kw):
    """cleanlab's frame and what it printed (its tqdm bar goes to stderr)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = cl_summary.common_label_issues(*args, **kw)
    return frame, (capsys.readouterr().out if capsys else None)


OPTIONS = [
    {},
    {"class_names": [f"c{i}" for i in range(5)]},
    {"class_names": [10, 11, 12, 13, 14]},  # any objects, as cleanlab
    {"exclude": [0]},
    {"exclude": [1, 3], "top": 3},
    {"top": 1},
    {"top": 0},
    {"top": 100},
    {"exclude": [300]},  # no class: excludes nothing
]


@pytest.mark.parametrize("options", OPTIONS)
def test_frame_equals_cleanlabs(data, options):
    labels, probs, issues = data
    ours = common_label_issues(issues, labels, probs, verbose=False, **options)
    ref, _ = _cleanlab_table(issues, labels, probs, verbose=False, **options)
    assert isinstance(ours, pd.DataFrame)
    pd.testing.assert_frame_equal(ours, ref)


def test_frame_equals_cleanlabs_on_random_scores_and_masks(rng):
    # issues need not come from find_label_issues (cleanlab counts any mask,
    # pixels whose argmax is their label included), scores need not sum to 1
    labels = rng.integers(0, 3, (4, 9, 7))
    probs = rng.random((4, 3, 9, 7))
    issues = rng.random((4, 9, 7)) < 0.4
    ours = common_label_issues(issues, labels, probs, verbose=False, top=50)
    ref, _ = _cleanlab_table(issues, labels, probs, verbose=False, top=50)
    pd.testing.assert_frame_equal(ours, ref)
    assert ours["num_pixel_issues"].sum() == issues.sum()


def test_no_issues_gives_cleanlabs_empty_frame(data):
    labels, probs, _ = data
    none = np.zeros(labels.shape, dtype=bool)
    ours = common_label_issues(none, labels, probs, verbose=False)
    ref, _ = _cleanlab_table(none, labels, probs, verbose=False)
    pd.testing.assert_frame_equal(ours, ref)
    assert list(ours.columns) == ["given_label", "predicted_label", "num_pixel_issues"]


def test_default_top_is_20_as_in_cleanlab(rng):
    labels = rng.integers(0, 8, (3, 16, 16))
    probs = rng.random((3, 8, 16, 16))
    issues = np.ones(labels.shape, dtype=bool)
    ours = common_label_issues(issues, labels, probs, verbose=False)
    ref, _ = _cleanlab_table(issues, labels, probs, verbose=False)
    assert len(ours) == 20
    pd.testing.assert_frame_equal(ours, ref)
    assert len(common_label_issues(issues, labels, probs, verbose=False, top=None)) == 20


def test_verbose_prints_one_line_per_row_and_nothing_when_false(data, capsys):
    labels, probs, issues = data
    frame = common_label_issues(issues, labels, probs, class_names=list("abcde"))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(frame) > 0
    first = frame.iloc[0]
    assert lines[0] == (
        f"Class '{first.given_label}' is potentially mislabeled as class "
        f"'{first.predicted_label}' for {first.num_pixel_issues} pixels in the dataset"
    )
    common_label_issues(issues, labels, probs, verbose=False)
    assert capsys.readouterr().out == ""
    # cleanlab prints by default too, the same number of lines
    _, printed = _cleanlab_table(issues, labels, probs, class_names=list("abcde"), capsys=capsys)
    assert len(printed.splitlines()) == len(lines)


def test_mixed_sizes_and_ignored_values(rng):
    # beyond cleanlab: per image lists, and issue pixels on ignored labels
    # are not counted; the counts equal cleanlab's on each image's valid part
    sizes = [(8, 8), (6, 10)]
    labels = [rng.integers(0, 3, s) for s in sizes]
    probs = [rng.dirichlet(np.ones(3), size=s).transpose(2, 0, 1) for s in sizes]
    issues = [rng.random(s) < 0.5 for s in sizes]
    labels[1][:2] = 255
    ours = common_label_issues(issues, labels, probs, verbose=False, ignore_index=255, top=None)
    expected = np.zeros((3, 3), dtype=np.int64)
    for lab, p, m in zip(labels, probs, issues):
        keep = m & (lab != 255)
        np.add.at(expected, (lab[keep], p[:, keep].argmax(0)), 1)
    assert ours["num_pixel_issues"].sum() == expected.sum()
    for row in ours.itertuples():
        assert expected[int(row.given_label), int(row.predicted_label)] == row.num_pixel_issues
    with pytest.raises(InvalidLabelsError, match=r"labels\[1\] has issue pixels labelled 255.*ignore_index"):
        common_label_issues(issues, labels, probs, verbose=False)


def test_errors(data):
    labels, probs, issues = data
    with pytest.raises(InvalidInputError, match="class_names has 2 names for 5 classes"):
        common_label_issues(issues, labels, probs, class_names=["a", "b"], verbose=False)
    with pytest.raises(ShapeMismatchError):
        common_label_issues(issues[:, :8], labels, probs, verbose=False)
    assert issubclass(ShapeMismatchError, ValueError)


def test_confusion_rows_keep_every_row_by_default(data):
    # the plain-data form the FiftyOne layer stores: top=None means all
    labels, probs, issues = data
    m = issue_confusion_matrix(issues, labels, probs)
    rows = confusion_rows(m)
    frame = common_label_issues(issues, labels, probs, verbose=False, top=len(rows))
    assert [tuple(r.values()) for r in rows] == [tuple(r) for r in frame.itertuples(index=False)]


def test_confusion_matrix_counts(data):
    labels, probs, issues = data
    m = issue_confusion_matrix(issues, labels, probs)
    assert m.shape == (5, 5) and m.sum() == issues.sum() and np.trace(m) == 0


@pytest.mark.parametrize("c", [0, 3, 300, [1, 2]])
def test_filter_by_class_matches_cleanlab(data, c):
    labels, probs, issues = data
    np.testing.assert_array_equal(
        filter_by_class(c, issues, labels, probs), cl_summary.filter_by_class(c, issues, labels, probs)
    )


def test_filter_by_class_takes_mixed_sizes(rng):
    sizes = [(8, 8), (6, 10)]
    labels = [rng.integers(0, 3, s) for s in sizes]
    probs = [rng.random((3, *s)) for s in sizes]
    issues = [rng.random(s) < 0.5 for s in sizes]
    out = filter_by_class(1, issues, labels, probs)
    for o, lab, p, m in zip(out, labels, probs, issues):
        np.testing.assert_array_equal(o, cl_summary.filter_by_class(1, m[None], lab[None], p[None])[0])
    # pixels labelled with an ignored value are dropped, even when their
    # argmax is the class asked for
    labels[0][:3] = 255
    out = filter_by_class(1, issues, labels, probs, ignore_index=255)
    assert not out[0][:3].any()
    np.testing.assert_array_equal(out[0][3:], filter_by_class(1, issues, labels, probs)[0][3:])
