"""The Label quality panel, driven the way the App drives it: each event is
an execution of the panel operator with ``__method__``, ``panel_id`` and the
current ``panel_state``; its output is the App operations it triggers."""

import numpy as np

from segqual_fo.core import confusion_rows
from tests.plugin.helpers import run, triggered, view_set_by

PANEL = "label_quality_panel"


def _event(dataset, method, state=None, **event_params):
    """Runs one panel event; returns (result, the panel state afterwards)."""
    params = {"panel_id": "test-panel", "__method__": method, "panel_state": dict(state or {}), **event_params}
    result = run(PANEL, dataset, params)
    state = dict(state or {})
    for patch in triggered(result, "patch_panel_state"):
        state.update(patch["state"])
    return result, state


def _rendered(result):
    """name -> property JSON of the rendered panel."""
    (output,) = triggered(result, "show_panel_output")
    return output["output"]["type"]["properties"]


def _data(result, key):
    for patch in triggered(result, "patch_panel_data"):
        if key in patch["data"]:
            return patch["data"][key]
    raise KeyError(key)


def test_load_builds_histogram_confusions_and_settings(scored_dataset):
    result, state = _event(scored_dataset, "on_load")
    scores = scored_dataset.values("label_quality")

    assert state["score_field"] == "label_quality" and state["score_fields"] == ["label_quality"]
    (bars,) = _data(result, "histogram")
    edges = state["hist_edges"]
    assert sum(bars["y"]) == len(scores) == 8
    assert edges[0] == min(scores) and edges[-1] == max(scores)
    assert bars["y"] == np.histogram(scores, edges)[0].tolist()

    matrix = scored_dataset.load_run_results("label_quality").confusion
    classes = scored_dataset.get_run_info("label_quality").config.classes
    expected = confusion_rows(np.array(matrix), class_names=classes, top=15)
    rows = state["confusion"]
    assert [{k: r[k] for k in ("given_label", "predicted_label", "num_pixel_issues")} for r in rows] == expected
    top = rows[0]
    with_pair = [
        regs for regs in scored_dataset.values("label_quality_regions")
        if any(d.label == top["given_label"] and d.predicted_label == top["predicted_label"] for d in regs.detections)
    ]
    assert top["num_images"] == len(with_pair)

    for text in ("softmin (temperature 0.1)", "`ground_truth`", "`label_quality_heatmap`", "8 of 8 images", "UTC"):
        assert text in state["settings"], text


def test_render_wires_the_click_handlers(scored_dataset):
    props = _rendered(_event(scored_dataset, "on_load")[0])
    assert props["histogram"]["view"]["name"] == "PlotlyView"
    assert props["histogram"]["view"]["on_click"].endswith("/%s#on_histogram_click" % PANEL)
    table = props["confusion"]["view"]
    assert table["name"] == "TableView" and table["on_click_row"].endswith("#on_confusion_click")
    assert [c["key"] for c in table["columns"]] == ["given_label", "predicted_label", "num_pixel_issues", "num_images"]
    assert "settings" in props


def test_clicking_a_bar_shows_that_score_range(scored_dataset):
    _, state = _event(scored_dataset, "on_load")
    edges = state["hist_edges"]
    scores = dict(zip(scored_dataset.values("id"), scored_dataset.values("label_quality")))
    last = len(edges) - 2
    for index in (0, last):
        # the App sends the bar's id (its bin index), its x and its range
        x = (edges[index] + edges[index + 1]) / 2
        result, _ = _event(scored_dataset, "on_histogram_click", state, id=str(index), idx=index, x=x)
        view = view_set_by(result, scored_dataset)
        hi_ok = (lambda s: s <= edges[-1]) if index == last else (lambda s: s < edges[index + 1])
        expected = [i for i, s in scores.items() if edges[index] <= s and hi_ok(s)]
        assert sorted(view.values("id")) == sorted(expected) and expected
        assert view.values("label_quality") == sorted(view.values("label_quality"))  # worst first


def test_clicking_a_bar_by_x_only(scored_dataset):
    _, state = _event(scored_dataset, "on_load")
    worst = min(scored_dataset.values("label_quality"))
    result, _ = _event(scored_dataset, "on_histogram_click", state, x=worst)
    assert view_set_by(result, scored_dataset).first()["label_quality"] == worst


def test_clicking_a_confusion_row_shows_those_regions(scored_dataset):
    _, state = _event(scored_dataset, "on_load")
    row = state["confusion"][1]
    result, _ = _event(scored_dataset, "on_confusion_click", state, row=1)
    view = view_set_by(result, scored_dataset)
    assert len(view) == row["num_images"] > 0
    for regions in view.values("label_quality_regions"):
        assert regions.detections
        for d in regions.detections:  # only the clicked confusion is shown
            assert (d.label, d.predicted_label) == (row["given_label"], row["predicted_label"])
    assert view.values("label_quality") == sorted(view.values("label_quality"))


def test_panel_without_scores_explains_what_to_run(demo_dataset):
    result, state = _event(demo_dataset, "on_load")
    assert state["score_field"] is None
    props = _rendered(result)
    assert "compute" in str(props["empty"]).lower() and "histogram" not in props


def test_buttons_sort_and_reset(scored_dataset):
    _, state = _event(scored_dataset, "on_load")
    view = view_set_by(_event(scored_dataset, "on_sort", state)[0], scored_dataset)
    assert view.first()["label_quality"] == min(scored_dataset.values("label_quality"))
    assert triggered(_event(scored_dataset, "on_reset_view", state)[0], "clear_view") == [{}]


def test_review_progress_and_what_is_left(scored_dataset):
    import segqual_fo

    ds = scored_dataset
    per_sample = ds.values("label_quality_regions.detections.id")
    ids = [i for regs in per_sample for i in (regs or [])]
    segqual_fo.mark_regions(ds, ids[:2], "not_an_error")
    segqual_fo.mark_regions(ds, ids[2:3], "fixed")
    done = next(s for s, regs in zip(ds.values("id"), per_sample) if regs and not set(regs) & set(ids[:3]))
    sample = ds[done]
    sample.tags.append("reviewed")
    sample.save()
    n_done = len(sample.label_quality_regions.detections)
    result, state = _event(ds, "on_load")
    expected = "%d of 8 images left (1 reviewed); %d of %d regions left (2 not an error, 1 fixed)" % (
        7, len(ids) - 3 - n_done, len(ids)
    )
    assert expected in state["review"]
    props = _rendered(result)
    assert "#on_review_left" in str(props["review_left"])
    view = view_set_by(_event(ds, "on_review_left", state)[0], ds)
    assert done not in view.values("id") and len(view) == 7
    shown = [i for regs in view.values("label_quality_regions.detections.id") for i in (regs or [])]
    on_done = {d.id for d in sample.label_quality_regions.detections}
    assert sorted(shown) == sorted(set(ids[3:]) - on_done)
    scores = view.values("label_quality")
    assert scores == sorted(scores)
