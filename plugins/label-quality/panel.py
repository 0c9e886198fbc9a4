"""The Label quality panel: score histogram, class confusions, run settings.

- Clicking a histogram bar sets the App view to the images whose score lies
  in that bar's range (worst first).
- Clicking a row of the given-vs-predicted table sets the view to the images
  with an issue region of that confusion, showing only those regions.

The histogram bins and the table rows live in the panel state, so the click
handlers act on exactly what the user saw.
"""

import datetime

import numpy as np

import fiftyone.operators as foo
import fiftyone.operators.types as types
from fiftyone import ViewField as F

from segqual_fo.fo import queries, review

#: Rows of the confusion table (most issue pixels first).
TOP_CONFUSIONS = 15
HISTOGRAM_HEIGHT = 280


def histogram_bins(scores):
    """(edges, counts) with 5-30 equal bins spanning the scores."""
    scores = np.asarray(scores, dtype=float)
    n = int(np.clip(2 * np.ceil(np.sqrt(max(len(scores), 1))), 5, 30))
    lo, hi = (float(scores.min()), float(scores.max())) if len(scores) else (0.0, 1.0)
    if hi - lo < 1e-9:  # all equal: give the single bar some width
        lo, hi = lo - 0.005, hi + 0.005
    edges = np.linspace(lo, hi, n + 1)
    counts, _ = np.histogram(scores, edges)
    return edges.tolist(), counts.tolist()


def bin_view(dataset, score_field, edges, index):
    """Images whose score is in bin ``index`` (the last bin is closed)."""
    lo, hi = edges[index], edges[index + 1]
    upper = F(score_field) <= hi if index == len(edges) - 2 else F(score_field) < hi
    return dataset.match((F(score_field) >= lo) & upper).sort_by(score_field)


def confusion_view(dataset, score_field, regions_field, given, predicted):
    """Images with an issue region labelled ``given`` where the model
    predicts ``predicted``, showing only those regions, worst first."""
    match = (F("label") == given) & (F("predicted_label") == predicted)
    return dataset.filter_labels(regions_field, match).sort_by(score_field)


def _confusion_rows(dataset, score_field, fields, classes):
    from segqual_fo.core import confusion_rows

    try:
        matrix = dataset.load_run_results(score_field, cache=False).confusion
    except (ValueError, AttributeError):  # no results saved (older run)
        return []
    rows = confusion_rows(np.asarray(matrix), class_names=classes, top=TOP_CONFUSIONS)
    regions = fields.get("regions")
    images = {}
    if regions and dataset.has_field(regions):
        labels = dataset.values("%s.detections.label" % regions)
        preds = dataset.values("%s.detections.predicted_label" % regions)
        for ls, ps in zip(labels, preds):
            for pair in set(zip(ls or [], ps or [])):
                images[pair] = images.get(pair, 0) + 1
    for row in rows:
        row["num_images"] = images.get((row["given_label"], row["predicted_label"]), 0)
    return rows


def _settings_markdown(info, num_scored, num_samples):
    cfg = info.config
    probs = getattr(cfg, "probs", None) or {}
    if probs.get("model"):
        source = "model `%s`" % probs["model"]
    elif probs.get("probs_field"):
        source = "field `%s`" % probs["probs_field"]
    else:
        source = "directory `%s`" % probs.get("probs_dir")
    if not probs.get("model"):
        source += ", %s" % probs.get("layout", "KHW")
    if probs.get("probs_key"):
        source += ", key `%s`" % probs["probs_key"]
    ignore = getattr(cfg, "ignore", None) or {}
    ignored = ", ".join(str(v) for v in (ignore.get("values") or []) + (ignore.get("classes") or [])) or "none"
    method = cfg.method
    if method == "softmin":
        method += " (temperature %s)" % getattr(cfg, "temperature", None)
    stamp = info.timestamp
    when = stamp.strftime("%Y-%m-%d %H:%M UTC") if isinstance(stamp, datetime.datetime) else str(stamp)
    fields = ", ".join("`%s`" % f for f in (getattr(cfg, "fields", None) or {}).values())
    lines = [
        "**Run `%s`**" % info.key,
        "",
        "- method: %s" % method,
        "- labels: `%s`" % getattr(cfg, "label_field", "?"),
        "- probabilities: %s" % source,
        "- ignored: %s" % ignored,
        "- classes: %s" % ", ".join(getattr(cfg, "classes", None) or []),
        "- fields: %s" % fields,
        "- scored: %d of %d images, %s" % (num_scored, num_samples, when),
    ]
    return "\n".join(lines)


def _review_markdown(p):
    """One line on what is left to review (see segqual_fo.fo.review)."""
    return (
        "**Review**: %d of %d images left (%d reviewed); %d of %d regions left "
        "(%d not an error, %d fixed)"
        % (p["images_left"], p["images"], p["images_reviewed"], p["regions_left"], p["regions"],
           p["not_an_error"], p["fixed"])
    )  # fmt: skip


def _layout():
    # one column that may shrink below its content's width: otherwise a
    # plot first drawn wider than the panel keeps the column (and itself)
    # too wide to fit
    return types.GridView(
        orientation="vertical",
        gap=2,
        componentsProps={"grid": {"sx": {"gridTemplateColumns": "minmax(0, 1fr)"}}},
    )


class LabelQualityPanel(foo.Panel):
    @property
    def config(self):
        return foo.PanelConfig(
            name="label_quality_panel",
            label="Label quality",
            icon="bar_chart",
            surfaces="grid",
            help_markdown=(
                "Scores from segqual's `compute_label_quality`: lower = labels more likely wrong. "
                "Click a bar or a confusion row to see those images."
            ),
        )

    # ---- events

    def on_load(self, ctx):
        self._load(ctx)

    def on_change_dataset(self, ctx):
        self._load(ctx)

    def on_refresh(self, ctx):
        self._load(ctx)

    def on_change_run(self, ctx):
        self._load(ctx, ctx.params.get("value"))

    def on_histogram_click(self, ctx):
        score_field = ctx.panel.state.score_field
        edges = ctx.panel.state.hist_edges
        if not score_field or not edges:
            return
        index = self._clicked_bin(ctx.params, edges)
        if index is None:
            return
        view = bin_view(ctx.dataset, score_field, edges, index)
        ctx.ops.set_view(view=view)
        return {"bin": index, "num_samples": len(view)}

    @staticmethod
    def _clicked_bin(params, edges):
        # the bar's id is its bin index; fall back to the clicked x value
        for key in ("id", "idx"):
            value = params.get(key)
            if value is not None and str(value).isdigit() and int(value) < len(edges) - 1:
                return int(value)
        x = params.get("x")
        if isinstance(x, (int, float)):
            index = int(np.searchsorted(edges, x, side="right")) - 1
            return min(max(index, 0), len(edges) - 2)
        return None

    def on_confusion_click(self, ctx):
        rows = ctx.panel.state.confusion or []
        row = ctx.params.get("row")
        score_field = ctx.panel.state.score_field
        if not isinstance(row, int) or not 0 <= row < len(rows) or not score_field:
            return
        regions = queries.run_fields(ctx.dataset, score_field)["regions"]
        given, predicted = rows[row]["given_label"], rows[row]["predicted_label"]
        view = confusion_view(ctx.dataset, score_field, regions, given, predicted)
        ctx.ops.set_view(view=view)
        return {"given_label": given, "predicted_label": predicted, "num_samples": len(view)}

    def on_review_left(self, ctx):
        score_field = ctx.panel.state.score_field
        if score_field:
            view = review.review_view(ctx.dataset, score_field)
            ctx.ops.set_view(view=view)
            return {"num_samples": len(view)}

    def on_sort(self, ctx):
        score_field = ctx.panel.state.score_field
        if score_field:
            ctx.ops.set_view(view=ctx.dataset.exists(score_field).sort_by(score_field))

    def on_reset_view(self, ctx):
        ctx.ops.clear_view()

    # ---- state

    def _load(self, ctx, score_field=None):
        dataset = ctx.dataset
        choices = queries.score_field_choices(dataset)
        if score_field not in choices:
            previous = ctx.panel.state.score_field
            score_field = previous if previous in choices else (choices[0] if choices else None)
        state = {"score_fields": choices, "score_field": score_field}
        if score_field is None:
            ctx.panel.state.set(state)
            return

        fields = queries.run_fields(dataset, score_field)
        scores = [s for s in dataset.values(score_field) if s is not None]
        edges, counts = histogram_bins(scores)
        centers = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
        state["hist_edges"] = edges
        ctx.panel.data.histogram = [
            {
                "type": "bar",
                "name": score_field,
                "x": centers,
                "y": counts,
                "width": [(edges[1] - edges[0]) * 0.95] * len(counts),
                # a clicked bar reports its id: the bin index
                "ids": [str(i) for i in range(len(counts))],
                "customdata": [[a, b] for a, b in zip(edges[:-1], edges[1:])],
                "hovertemplate": "%{customdata[0]:.4f} - %{customdata[1]:.4f}: %{y} images<extra></extra>",
                "marker": {"color": "#FF6D04"},
            }
        ]

        num_issues = fields.get("num_issues")
        has_counts = num_issues and dataset.has_field(num_issues)
        n_with = dataset.match(F(num_issues) > 0).count() if has_counts else 0
        state["summary"] = "%d images scored, %d with issue pixels; median score %.4f" % (
            len(scores),
            n_with,
            float(np.median(scores)) if scores else float("nan"),
        )

        state["review"] = _review_markdown(review.review_progress(dataset, score_field))
        info = dataset.get_run_info(score_field) if score_field in dataset.list_runs() else None
        classes = list(getattr(info.config, "classes", None) or []) if info else []
        state["confusion"] = _confusion_rows(dataset, score_field, fields, classes) if info else []
        state["settings"] = _settings_markdown(info, len(scores), len(dataset)) if info else ""
        ctx.panel.state.set(state)

    # ---- layout

    def render(self, ctx):
        panel = types.Object()
        state = ctx.panel.state
        score_field = state.score_field
        if not score_field:
            panel.md(
                "### Label quality\n\nNo label-quality scores on this dataset yet. Press the backtick key "
                "and run **Compute segmentation label quality**, then **Refresh**.",
                name="empty",
            )
            panel.btn("refresh", label="Refresh", on_click=self.on_refresh, variant="outlined")
            return types.Property(panel, view=_layout())

        if len(state.score_fields or []) > 1:
            panel.enum(
                "run",
                state.score_fields,
                default=score_field,
                label="Run",
                on_change=self.on_change_run,
                view=types.DropdownView(),
            )
        panel.md("**Label quality: %s**  \n%s" % (score_field, state.summary or ""), name="header")
        buttons = panel.h_stack("buttons", align_x="left", gap=1)
        buttons.btn("sort", label="Worst first", icon="sort", on_click=self.on_sort, variant="contained")
        buttons.btn("reset", label="Reset view", on_click=self.on_reset_view, variant="outlined")
        buttons.btn("refresh", label="Refresh", on_click=self.on_refresh, variant="outlined")
        if state.review:
            panel.md(state.review, name="review")
            panel.btn(
                "review_left", label="Show what is left to review", on_click=self.on_review_left, variant="outlined"
            )

        panel.plot(
            "histogram",
            layout={
                "title": {"text": "Image scores (click a bar to show those images)"},
                "xaxis": {"title": {"text": "%s (lower = worse)" % score_field}},
                "yaxis": {"title": {"text": "images"}},
                "bargap": 0.05,
                "margin": {"t": 40, "l": 50, "b": 50, "r": 10},
            },
            config={"displayModeBar": False, "responsive": True},
            on_click=self.on_histogram_click,
            height=HISTOGRAM_HEIGHT,
            width="100%",
            # the plot fills its grid cell: give the cell the plot's height
            componentsProps={"item": {"sx": {"height": HISTOGRAM_HEIGHT, "minHeight": HISTOGRAM_HEIGHT}}},
        )

        if state.confusion:
            panel.md(
                "**Given vs predicted class** (issue pixels): click a row to see those images",
                name="confusion_title",
            )
            table = types.TableView(
                on_click_row=self.on_confusion_click,
                # the App's tables are at least 650 px wide; the panel may be narrower
                componentsProps={"table": {"sx": {"minWidth": 0}}},
            )
            table.add_column("given_label", label="Given")
            table.add_column("predicted_label", label="Predicted")
            table.add_column("num_pixel_issues", label="Issue pixels")
            table.add_column("num_images", label="Images")
            panel.list("confusion", types.Object(), view=table)
        else:
            panel.md("No class confusions recorded for this run.", name="confusion_title")

        if state.settings:
            panel.md(state.settings, name="settings")
        return types.Property(panel, view=_layout())
