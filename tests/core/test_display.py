"""display_issues: cleanlab's figures (same panels, titles, image shapes), more inputs.

Figures are compared by structure, on matplotlib's Agg backend: the figures
in order, their axes' titles, the shapes of the images drawn, the issue
panels' data (identical), and the label panels' colours up to renaming
(the same pixels share a colour; the palettes differ on purpose).
"""

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import segqual_fo.core as core  # noqa: E402
from segqual_fo.errors import InvalidInputError, InvalidLabelsError, ShapeMismatchError  # noqa: E402
from tests.core.helpers import blob_labels, plausible_model  # noqa: E402

import cleanlab.segmentation.summary as cl_summary  # noqa: E402  (the parity oracle)


@pytest.fixture(autouse=True)
def _no_figures_left():
    plt.close("all")
    yield
    plt.close("all")


@pytest.fixture
def data(rng):
    # 6 images, 3 classes, each image with a different number of issue pixels
    labels = blob_labels(rng, 6, 3, 12, 12)
    probs = plausible_model(rng, labels, 3, strength=2.0)
    issues = np.zeros(labels.shape, dtype=bool)
    for i, n in enumerate([5, 30, 0, 12, 44, 3]):
        issues[i].ravel()[rng.permutation(144)[:n]] = True
    return labels, probs, issues


def _draw(func, *args, **kw):
    """Calls a display function; returns what each new figure shows."""
    plt.close("all")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        func(*args, **kw)
    figures = []
    for num in plt.get_fignums():
        fig = plt.figure(num)
        figures.append(
            {
                "legend": [t.get_text() for legend in fig.legends for t in legend.get_texts()],
                "axes": [
                    {
                        "title": ax.get_title(),
                        "images": [np.asarray(im.get_array()) for im in ax.get_images()],
                    }
                    for ax in fig.axes
                ],
            }
        )
    plt.close("all")
    return figures


def _same_partition(a, b):
    """True when the same pixels share a colour in RGBA images a and b."""
    _, ia = np.unique(a.reshape(-1, a.shape[-1]), axis=0, return_inverse=True)
    _, ib = np.unique(b.reshape(-1, b.shape[-1]), axis=0, return_inverse=True)
    pairs = np.unique(np.stack([ia.ravel(), ib.ravel()]), axis=1).shape[1]
    return pairs == len(np.unique(ia)) == len(np.unique(ib))


def _assert_same_figures(ours, ref):
    assert len(ours) == len(ref)
    for fo, fr in zip(ours, ref):
        assert fo["legend"] == fr["legend"]
        assert [a["title"] for a in fo["axes"]] == [a["title"] for a in fr["axes"]]
        for ao, ar in zip(fo["axes"], fr["axes"]):
            assert [im.shape for im in ao["images"]] == [im.shape for im in ar["images"]]
            for io, ir in zip(ao["images"], ar["images"]):
                if io.ndim == 2:  # the issue panel: the very same mask
                    np.testing.assert_array_equal(io, ir)
                else:  # a label panel: RGBA, colours differ, classes the same
                    assert _same_partition(io, ir)


CALLS = [
    {"top": 1},
    {"top": 2, "with_labels": True, "with_probs": True, "class_names": ["sky", "road", "car"]},
    {"top": 2, "with_labels": True, "with_probs": True},
    {"top": 2, "with_labels": True},
    {"top": 2, "with_probs": True},
    {"top": 100, "with_labels": True, "with_probs": True},  # more than there are images
    {"top": 3, "with_labels": True, "with_probs": True, "exclude": [0]},
    {"top": 3, "with_labels": True, "class_names": ["sky", "road", "car"], "exclude": [1, 2]},
    {"top": 0},
]


@pytest.mark.parametrize("call", CALLS)
def test_same_figures_as_cleanlab(data, call):
    labels, probs, issues = data
    kw = dict(call)
    if kw.pop("with_labels", False):
        kw["labels"] = labels
    if kw.pop("with_probs", False):
        kw["pred_probs"] = probs
    ours = _draw(core.display_issues, issues, **kw)
    ref = _draw(cl_summary.display_issues, issues, **kw)
    _assert_same_figures(ours, ref)
    # images ranked by their number of issue pixels, worst first
    shown = [int(a["title"].split()[1].rstrip(":")) for f in ours for a in f["axes"] if "Errors" in a["title"]]
    assert shown == [4, 1, 3, 0, 5, 2][: len(shown)]


def test_default_top_is_20(rng):
    # image i has i + 1 issue pixels: no ties in the ranking
    issues = np.zeros((25, 6, 6), dtype=bool)
    for i in range(25):
        issues[i].ravel()[rng.permutation(36)[: i + 1]] = True
    ours = _draw(core.display_issues, issues)
    ref = _draw(cl_summary.display_issues, issues)
    assert len(ours) == 20
    _assert_same_figures(ours, ref)


def test_exclude_without_labels_is_a_value_error(data):
    labels, probs, issues = data
    with pytest.raises(ValueError):
        cl_summary.display_issues(issues, pred_probs=probs, exclude=[0])
    with pytest.raises(InvalidInputError, match="exclude .* needs labels"):
        core.display_issues(issues, pred_probs=probs, exclude=[0])
    assert plt.get_fignums() == []  # nothing drawn before the error


def test_keyword_arguments_go_to_show(data, monkeypatch):
    labels, probs, issues = data
    calls = []
    monkeypatch.setattr(plt, "show", lambda **kw: calls.append(kw))
    core.display_issues(issues, labels=labels, class_names=["a", "b", "c"], top=2, block=False)
    assert calls == [{"block": False}] * 3  # the legend, then one per image


def test_images_of_different_sizes_and_ignored_pixels(rng):
    # beyond cleanlab: a list of images of different sizes, ignored pixels
    # drawn in their own colour, never as issues, and named in the legend
    sizes = [(8, 8), (6, 10), (12, 5)]
    labels = [rng.integers(0, 3, s) for s in sizes]
    probs = [rng.dirichlet(np.ones(3), size=s).transpose(2, 0, 1) for s in sizes]
    issues = [rng.random(s) < 0.3 for s in sizes]
    labels[1][:2] = 255
    issues[1][:2] = True
    figures = _draw(
        core.display_issues,
        issues,
        labels=labels,
        pred_probs=probs,
        class_names=["sky", "road", "car"],
        ignore_index=255,
    )
    assert figures[0]["legend"] == ["sky", "road", "car", "ignored"]
    by_image = {int(f["axes"][2]["title"].split()[1].rstrip(":")): f for f in figures[1:]}
    assert sorted(by_image) == [0, 1, 2]
    for i, fig in by_image.items():
        given, predicted, errors = (a["images"][0] for a in fig["axes"])
        assert given.shape == predicted.shape == sizes[i] + (4,)
        assert errors.shape == sizes[i]
        valid = labels[i] != 255
        np.testing.assert_array_equal(errors, issues[i] & valid)
    given = by_image[1]["axes"][0]["images"][0]
    ignored_colour = np.unique(given[:2].reshape(-1, 4), axis=0)
    assert len(ignored_colour) == 1  # one colour for every ignored pixel ...
    assert not (given[2:] == ignored_colour[0]).all(axis=-1).any()  # ... and for nothing else
    # the same picture as cleanlab for a same-size image without ignored values
    ref = _draw(
        cl_summary.display_issues, issues[0][None], labels=labels[0][None], pred_probs=probs[0][None], top=1
    )
    ours = _draw(core.display_issues, [issues[0]], labels=[labels[0]], pred_probs=[probs[0]], top=1)
    _assert_same_figures(ours, ref)


def test_mismatched_inputs_raise(data):
    labels, probs, issues = data
    with pytest.raises(ShapeMismatchError, match="labels holds 5"):
        core.display_issues(issues, labels=labels[:5])
    with pytest.raises(ShapeMismatchError, match=r"pred_probs\[4\] has shape"):
        core.display_issues(issues, pred_probs=probs[:, :, :6])
    bad = labels.copy()
    bad[4, 0, 0] = 7
    with pytest.raises(InvalidLabelsError, match=r"labels\[4\].*7"):
        core.display_issues(issues, labels=bad, pred_probs=probs)


def test_more_classes_than_the_qualitative_palettes():
    colours = core.display.class_colors(50)
    assert colours.shape == (50, 4)
    assert len(np.unique(colours, axis=0)) == 50
    assert len(np.unique(core.display.class_colors(20), axis=0)) == 20
