"""Tests that kill the surviving mutants of segqual_fo/core/display.py (issue 12).

test_display.py compares figures with cleanlab's by structure only; these
check what the user sees: the colours actually drawn (``im.to_rgba``), the
palette by hand (matplotlib's tab10 / tab20 hex codes, golden-ratio hues
through the standard library's ``colorsys``), the legend's patches and
layout, the figure size, and the ``index`` of the errors. On matplotlib's
Agg backend; every test starts and ends with no figure open (the fixture of
test_display.py).
"""

import colorsys
import sys
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

import segqual_fo.core as core  # noqa: E402
from segqual_fo.core.display import IGNORED_COLOR, class_colors  # noqa: E402
from segqual_fo.errors import InvalidLabelsError, ShapeMismatchError  # noqa: E402
from tests.core.test_display import _draw, _no_figures_left  # noqa: E402,F401  (autouse fixture)

TAB10 = ["1f77b4", "ff7f0e", "2ca02c", "d62728", "9467bd", "8c564b", "e377c2", "7f7f7f", "bcbd22", "17becf"]
TAB20 = [
    "1f77b4", "aec7e8", "ff7f0e", "ffbb78", "2ca02c", "98df8a", "d62728", "ff9896", "9467bd", "c5b0d5",
    "8c564b", "c49c94", "e377c2", "f7b6d2", "7f7f7f", "c7c7c7", "bcbd22", "dbdb8d", "17becf", "9edae5",
]  # fmt: skip
RED = (1.0, 0.0, 0.0, 1.0)
CLEAR = (0.0, 0.0, 0.0, 0.0)


def _hex(codes):
    return np.array([to_rgba("#" + c) for c in codes])


def _golden(k):
    """The documented palette beyond 20 classes, computed with colorsys."""
    out = []
    for i in range(k):
        hue = (i * 0.6180339887498949) % 1.0
        value = (0.55, 0.75, 0.95)[i % 3]  # three alternating lightness levels
        out.append(colorsys.hsv_to_rgb(hue, 0.75, value) + (1.0,))
    return np.array(out)


def _open_figures(*args, **kw):
    """Calls display_issues; returns its figures, still open (the fixture closes them)."""
    plt.close("all")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        core.display_issues(*args, **kw)
    return [plt.figure(num) for num in plt.get_fignums()]


def _drawn_colours(ax):
    im = ax.get_images()[0]
    return np.asarray(im.to_rgba(im.get_array(), norm=True))


# ---------------------------------------------------------------- the palette


@pytest.mark.parametrize("k", [3, 10])
def test_up_to_10_classes_get_tab10(k):
    # kills class_colors#8 (k < 10: ten classes got tab20)
    np.testing.assert_allclose(class_colors(k), _hex(TAB10[:k]), atol=1e-12)


@pytest.mark.parametrize("k", [11, 20])
def test_11_to_20_classes_get_tab20(k):
    # kills class_colors#9 (11 classes from tab10: error), #22 (20 classes got golden-ratio hues)
    np.testing.assert_allclose(class_colors(k), _hex(TAB20[:k]), atol=1e-12)


@pytest.mark.parametrize("k", [21, 50])
def test_beyond_20_classes_hues_spread_by_the_golden_ratio(k):
    # kills class_colors#23 (21 classes from tab20: error) and #38-#52 (hue, saturation, lightness)
    expected = _golden(k)
    np.testing.assert_allclose(class_colors(k), expected, atol=1e-12)
    # by hand: class 0 is hue 0 (red), saturation 0.75, value 0.55
    np.testing.assert_allclose(class_colors(k)[0], [0.55, 0.1375, 0.1375, 1.0], atol=1e-12)


@pytest.mark.parametrize("k", [0, -3])
def test_no_classes_no_colours(k):
    # kills class_colors#7 (max(k, 1): one colour for no class)
    assert class_colors(k).shape == (0, 4)


# ------------------------------------------------- colours of the label panels


def test_labels_only_with_ignored_values_use_the_palette_of_the_classes():
    # K from the labels without the ignored value 255: 3 classes, tab10.
    # kills _num_classes_from_labels#7-#12 (ignored values counted, or a crash) and
    # display_issues#77 (ignore not passed): K = 256 gave golden-ratio hues
    labels = [np.array([[0, 1, 2], [255, 1, 0]]), np.array([[2, 255], [255, 0]])]
    issues = [np.array([[True, False, False], [True, False, False]]), np.zeros((2, 2), bool)]
    figures = _draw(core.display_issues, issues, labels=labels, ignore_index=255, top=2)
    assert [f["axes"][1]["title"] for f in figures] == [
        "Image 0: Suggested Errors (in Red)",
        "Image 1: Suggested Errors (in Red)",
    ]
    palette = np.vstack([_hex(TAB10[:3]), [IGNORED_COLOR]])
    for fig, lab in zip(figures, labels):
        given = fig["axes"][0]["images"][0]
        np.testing.assert_allclose(given, palette[np.where(lab == 255, 3, lab)], atol=1e-12)
    # ignored pixels never show as issues
    np.testing.assert_array_equal(figures[0]["axes"][1]["images"][0], [[True, False, False], [False, False, False]])


def test_labels_only_up_to_class_9_is_ten_classes():
    # kills _num_classes_from_labels#21 (K = largest + 2: eleven colours, tab20)
    labels = np.arange(10).reshape(1, 2, 5)
    issues = np.zeros((1, 2, 5), bool)
    (fig,) = _draw(core.display_issues, issues, labels=labels)
    np.testing.assert_allclose(fig["axes"][0]["images"][0], _hex(TAB10)[labels[0]], atol=1e-12)


def test_a_list_of_probabilities_sets_k_from_its_first_axis():
    # K = 3 from (K, H, W), not H = 12: tab10, not tab20.
    # kills display_issues#74 (np.shape(pred_probs[0])[1])
    probs = np.zeros((3, 12, 12))
    probs[np.arange(12) % 3, np.arange(12)[:, None], np.arange(12)[None, :]] = 1.0  # argmax = column % 3
    (fig,) = _draw(core.display_issues, [np.zeros((12, 12), bool)], pred_probs=[probs])
    predicted = fig["axes"][0]["images"][0]
    np.testing.assert_allclose(predicted, _hex(TAB10[:3])[np.arange(12) % 3][None].repeat(12, 0), atol=1e-12)


def test_a_label_equal_to_k_is_refused():
    # kills display_issues#184 (K + 1 classes checked: label 3 passed with 3 classes, drawn as ignored)
    labels = np.zeros((1, 4, 4), np.int64)
    labels[0, 2, 1] = 3
    probs = np.full((1, 3, 4, 4), 1 / 3)
    with pytest.raises(InvalidLabelsError) as e:
        core.display_issues(np.ones((1, 4, 4), bool), labels=labels, pred_probs=probs)
    assert e.value.index == 0


# ------------------------------------------------------------ the issue panel


def test_issue_pixels_are_red_and_the_rest_transparent():
    # image 0: some issues; image 1: every pixel an issue (vmin from the data would be 1)
    # kills display_issues#130/#235/#239 (default colormap), #132/#134 (unknown colour name),
    # #236/#240 (no vmin: an all-issue image drawn transparent), #242 (vmin=1: nothing red)
    issues = np.array([[[True, False], [False, True]], [[True, True], [True, True]]])
    figures = _open_figures(issues)
    assert [fig.axes[0].get_title() for fig in figures] == [
        "Image 1: Suggested Errors (in Red)",
        "Image 0: Suggested Errors (in Red)",
    ]
    np.testing.assert_array_equal(_drawn_colours(figures[0].axes[0]), np.full((2, 2, 4), RED))
    np.testing.assert_array_equal(
        _drawn_colours(figures[1].axes[0]), [[RED, CLEAR], [CLEAR, RED]]
    )


def test_float_issue_masks_are_read_as_bool():
    # kills display_issues#140/#142 (mask kept float: `mask & ~isin(...)` is a TypeError)
    issues = np.array([[[1.0, 0.0], [1.0, 1.0]]])
    labels = np.array([[[0, 1], [1, 0]]])
    (fig,) = _draw(core.display_issues, issues, labels=labels, exclude=[0])
    np.testing.assert_array_equal(fig["axes"][1]["images"][0], [[False, False], [True, False]])


def test_ties_keep_the_input_order():
    # 12 images with 2, 1 or 0 issue pixels: worst first, ties in input order.
    # kills display_issues#39/#41 (default quicksort is not stable from 10 items on)
    counts = [i % 3 for i in range(12)]
    issues = np.zeros((12, 2, 2), bool)
    for i, c in enumerate(counts):
        issues[i].ravel()[:c] = True
    figures = _draw(core.display_issues, issues, top=12)
    shown = [int(f["axes"][0]["title"].split()[1].rstrip(":")) for f in figures]
    assert shown == [2, 5, 8, 11, 1, 4, 7, 10, 0, 3, 6, 9]


def test_figure_size_is_5_inches_per_panel():
    # kills display_issues#152/#156 (default size), #159/#160 (width), #161 (height)
    labels = np.zeros((1, 3, 3), np.int64)
    probs = np.full((1, 2, 3, 3), 0.5)
    (three,) = _open_figures(np.ones((1, 3, 3), bool), labels=labels, pred_probs=probs)
    np.testing.assert_array_equal(three.get_size_inches(), [15, 5])
    (one,) = _open_figures(np.ones((1, 3, 3), bool))
    np.testing.assert_array_equal(one.get_size_inches(), [5, 5])


# ---------------------------------------------------------------- the legend


def test_legend_patches_layout_and_frame():
    # 4 class names for K = 3: the 4th name gets the 4th class colour; the ignored patch is grey.
    # A style with a black legend does not darken it (facecolor="white").
    # kills display_issues#85 (4th patch grey), #96/#98 (default patch colours), #105/#107 (ignored
    # patch), #113/#118 (loc), #119 (one column), #115/#120 (frame from the style), #116/#121/#126
    # (font size), #127 (axes of the legend figure left on)
    labels = np.array([[[0, 1], [2, 255]]])
    probs = np.full((1, 3, 2, 2), 1 / 3)
    with plt.rc_context({"legend.facecolor": "black", "patch.facecolor": "black"}):
        figures = _open_figures(
            np.zeros((1, 2, 2), bool),
            labels=labels,
            pred_probs=probs,
            class_names=["sky", "road", "car", "bus"],
            ignore_index=255,
        )
    legend_fig = figures[0]
    (legend,) = legend_fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["sky", "road", "car", "bus", "ignored"]
    np.testing.assert_allclose(
        [h.get_facecolor() for h in legend.legend_handles],
        np.vstack([_hex(TAB10[:4]), [IGNORED_COLOR]]),
        atol=1e-12,
    )
    assert legend._loc == 10  # "center"
    assert legend._ncols == 5
    assert [t.get_fontsize() for t in legend.get_texts()] == [20.0] * 5
    assert legend.get_frame().get_facecolor()[:3] == (1.0, 1.0, 1.0)  # white (alpha: legend.framealpha)
    assert [ax.axison for ax in legend_fig.axes] == [False]


def test_class_names_without_a_class_panel_draw_no_legend():
    # kills display_issues#63 (colors = "": a legend with ""[0], IndexError)
    figures = _draw(core.display_issues, np.ones((1, 2, 2), bool), class_names=["sky", "road"])
    assert [f["legend"] for f in figures] == [[]]
    assert [a["title"] for a in figures[0]["axes"]] == ["Image 0: Suggested Errors (in Red)"]


def test_no_images_draw_only_the_legend():
    # K = 12 from an empty (0, 12, H, W) array: the legend's colours come from tab20.
    # kills display_issues#69 (K read from pred_probs[0] of an empty array: IndexError, or K = 0
    # and tab10); an empty list of probabilities has no K (it used to fail with an IndexError)
    issues = np.zeros((0, 4, 4), bool)
    for probs, palette in ((np.zeros((0, 12, 4, 4)), TAB20), ([], TAB10)):
        figures = _open_figures(issues, pred_probs=probs, class_names=["a", "b"])
        assert len(figures) == 1 and figures[0].axes[0].get_images() == []
        (legend,) = figures[0].legends
        assert [t.get_text() for t in legend.get_texts()] == ["a", "b"]
        np.testing.assert_allclose([h.get_facecolor() for h in legend.legend_handles], _hex(palette[:2]))
        assert _draw(core.display_issues, issues, pred_probs=probs) == []


# ---------------------------------------------------------------- the errors


def test_an_issue_mask_that_is_not_2d_names_its_image():
    # kills display_issues#145 (message None), #147 (no message: TypeError), #146/#148 (index)
    issues = [np.zeros((2, 2), bool), np.ones((1, 2, 2), bool)]
    with pytest.raises(ShapeMismatchError, match=r"issues\[1\] has shape \(1, 2, 2\); expected \(H, W\)") as e:
        core.display_issues(issues)
    assert e.value.index == 1


def test_labels_of_another_size_name_their_image():
    # kills display_issues#171 (message None), #173 (no message: TypeError), #172/#174 (index)
    issues = np.zeros((2, 2, 3), bool)
    issues[1, 0, 0] = True
    labels = [np.zeros((2, 3), np.int64), np.zeros((3, 2), np.int64)]
    with pytest.raises(ShapeMismatchError, match=r"labels\[1\] has shape \(3, 2\) but issues\[1\]") as e:
        core.display_issues(issues, labels=labels)
    assert e.value.index == 1


def test_probabilities_of_another_size_name_their_image_and_the_expected_shape():
    # kills display_issues#222/#224 (index) and #225 (expected (K, W, W) in the message)
    issues = np.zeros((2, 2, 3), bool)
    issues[1, 0, 0] = True
    probs = [np.full((2, 2, 3), 0.5), np.full((2, 3, 2), 0.5)]
    with pytest.raises(ShapeMismatchError, match=r"pred_probs\[1\] has shape \(2, 3, 2\); expected \(K, 2, 3\)") as e:
        core.display_issues(issues, pred_probs=probs)
    assert e.value.index == 1


def test_without_matplotlib_the_error_says_how_to_install_it(monkeypatch):
    # kills display_issues#54 (ImportError(None): the remedy gone)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        core.display_issues(np.zeros((1, 2, 2), bool))
