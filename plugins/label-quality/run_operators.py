"""Run lifecycle operators: get_label_quality_info, rename_label_quality_run,
delete_label_quality_run.

Like the brain plugin's ``get_brain_info`` / ``rename_brain_run`` /
``delete_brain_run``, but each lists only segqual runs
(:func:`segqual_fo.fo.queries.label_quality_runs`). The forms ask the
library what is wrong (:func:`segqual_fo.fo.runs.rename_problem`,
:func:`~segqual_fo.fo.runs.running_problem`) and ``execute`` calls
:func:`~segqual_fo.fo.runs.rename_label_quality_run` /
:func:`~segqual_fo.fo.runs.delete_label_quality_run`, which upgrade runs
recorded by segqual 0.1 first and leave nothing half done.
"""

import os

import fiftyone.operators as foo
import fiftyone.operators.types as types

from segqual_fo import options
from segqual_fo.fo import queries
from segqual_fo.fo.runs import (
    delete_label_quality_run,
    rename_label_quality_run,
    rename_problem,
    running_problem,
)

from .operators import _invalid

_NO_RUNS = "This dataset has no label-quality runs: run compute_label_quality first."


# --------------------------------------------------------------------------
# form pieces


def _run_input(ctx, inputs, *, description, default_first=True):
    """The run picker (segqual runs only, most recent first). Returns the
    chosen run's info, or None (nothing chosen, or the form is invalid)."""
    infos = queries.label_quality_runs(ctx.dataset)
    if not infos:
        prop = inputs.view("no_runs", types.Warning(label="No label-quality runs", description=_NO_RUNS))
        _invalid(prop, _NO_RUNS)
        return None
    dropdown = types.DropdownView()
    for info in infos:
        legacy = " (segqual 0.1)" if queries.is_legacy(info) else ""
        when = queries.format_timestamp(info.timestamp)
        dropdown.add_choice(
            info.key, label=info.key, description="%s, %s%s" % (getattr(info.config, "method", None), when, legacy)
        )
    keys = [i.key for i in infos]
    default = keys[0] if default_first else None
    prop = inputs.enum(
        "run_key", keys, default=default, required=True, label="Run", description=description, view=dropdown
    )
    key = ctx.params.get("run_key", default)
    if key is None:
        return None
    if key not in keys:
        _invalid(prop, "%r is not a label-quality run on this dataset; choose one of: %s" % (key, ", ".join(keys)))
        return None
    return infos[keys.index(key)]


def _refuse_if_running(inputs, dataset, key, prop_name):
    """Marks the form invalid while a scoring run holds ``key``."""
    problem = running_problem(dataset, key)
    if problem is not None:
        _invalid(inputs.view(prop_name, types.Warning(label=problem)), problem)


def _legacy_notice(inputs, info):
    if queries.is_legacy(info):
        inputs.view(
            "legacy",
            types.Notice(
                label="Recorded by segqual 0.1: its record is upgraded first, so that its fields "
                "and files are included"
            ),
        )


# --------------------------------------------------------------------------


class GetLabelQualityInfo(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="get_label_quality_info",
            label="Get label quality run info",
            description="Shows the settings, fields and status of a label-quality run",
            dynamic=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        _run_input(ctx, inputs, description="The run to describe (its key is its score field)")
        return types.Property(inputs, view=types.View(label="Get label quality run info"))

    def execute(self, ctx):
        return queries.run_summary(ctx.dataset, ctx.params["run_key"])

    def resolve_output(self, ctx):
        outputs = types.Object()
        res = ctx.results or {}
        outputs.str("run_key", label="Run key")
        outputs.str("config_class", label="Config class")
        if res.get("legacy"):
            outputs.md("Recorded by segqual 0.1 (generic run config).", name="legacy_note")
        outputs.str("timestamp", label="Created")
        outputs.str("fiftyone_version", label="FiftyOne version")
        outputs.str("segqual_version", label="segqual version")
        outputs.str("status", label="Status")
        if res.get("lock"):
            outputs.str("lock", label="Being written by")
        outputs.str("method", label="Method")
        if "downsample" in res:
            outputs.int("downsample", label="Downsample factor")
        else:
            outputs.float("temperature", label="Temperature")
        outputs.float("issue_threshold", label="Issue threshold")
        outputs.int("min_region_area", label="Smallest issue region (pixels)")
        outputs.str("label_field", label="Label field")
        outputs.obj("probs", label="Probabilities", view=types.JSONView())
        outputs.list("classes", types.String(), label="Classes")
        outputs.obj("ignore", label="Ignored", view=types.JSONView())
        outputs.str("output_dir", label="Output directory")
        outputs.list("fields", types.String(), label="Fields written")
        if res.get("missing_fields"):
            outputs.list("missing_fields", types.String(), label="Fields missing from the dataset")
        outputs.int("num_scored", label="Scored samples")
        outputs.int("num_samples", label="Samples in the dataset")
        return types.Property(outputs, view=types.View(label="Label quality run info"))


class RenameLabelQualityRun(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="rename_label_quality_run",
            label="Rename label quality run",
            description="Renames a label-quality run and all its output fields",
            dynamic=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        info = _run_input(ctx, inputs, description="The run to rename")
        prop = inputs.str(
            "new_run_key",
            required=True,
            label="New key",
            description="The new score field; the other output fields are renamed after it",
        )
        new_key = ctx.params.get("new_run_key")
        if info is not None and new_key:
            problem = rename_problem(ctx.dataset, info.key, new_key)
            if problem:
                _invalid(prop, problem)
            else:
                old = queries.run_fields(ctx.dataset, info.key)
                new = options.output_fields(new_key)
                inputs.view(
                    "renames",
                    types.Notice(label="Renames: %s" % ", ".join("%s -> %s" % (old[k], new[k]) for k in old)),
                )
        if info is not None:
            _legacy_notice(inputs, info)
            _refuse_if_running(inputs, ctx.dataset, info.key, "running")
        return types.Property(inputs, view=types.View(label="Rename label quality run"))

    def execute(self, ctx):
        key, new_key = ctx.params["run_key"], ctx.params["new_run_key"]
        fields = rename_label_quality_run(ctx.dataset, key, new_key)
        ctx.trigger("reload_dataset")
        return {"run_key": key, "new_run_key": new_key, "fields": list(fields.values())}

    def resolve_output(self, ctx):
        outputs = types.Object()
        res = ctx.results or {}
        outputs.md(
            "Renamed run `%s` to `%s`; fields: %s."
            % (res.get("run_key"), res.get("new_run_key"), ", ".join("`%s`" % f for f in res.get("fields", []))),
            name="summary",
        )
        return types.Property(outputs, view=types.View(label="Label quality run renamed"))


class DeleteLabelQualityRun(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="delete_label_quality_run",
            label="Delete label quality run",
            description="Deletes a label-quality run, its output fields and its PNG files",
            dynamic=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        info = _run_input(ctx, inputs, description="The run to delete", default_first=False)
        if info is not None:
            fields = queries.run_fields(ctx.dataset, info.key)
            existing = [f for f in fields.values() if ctx.dataset.has_field(f)]
            pngs = queries.output_files(ctx.dataset, info.key)
            directories = sorted({os.path.dirname(p) for p in pngs})
            text = "Deletes run '%s' and its fields %s" % (info.key, ", ".join(existing) or "(none exist)")
            if pngs:
                text += ", and the heatmap and issue-mask PNGs segqual wrote for them (%d files in %s)" % (
                    len(pngs),
                    ", ".join(directories),
                )
            inputs.view("warning", types.Warning(label=text + ". This cannot be undone."))
            _legacy_notice(inputs, info)
            _refuse_if_running(inputs, ctx.dataset, info.key, "running")
        return types.Property(inputs, view=types.View(label="Delete label quality run"))

    def execute(self, ctx):
        key = ctx.params["run_key"]
        files = [p for p in queries.output_files(ctx.dataset, key) if os.path.isfile(p)]
        deleted = delete_label_quality_run(ctx.dataset, key)
        ctx.trigger("reload_dataset")
        return {
            "run_key": key,
            "deleted_fields": deleted,
            "num_files_deleted": sum(not os.path.exists(p) for p in files),
        }

    def resolve_output(self, ctx):
        outputs = types.Object()
        res = ctx.results or {}
        outputs.md(
            "Deleted run `%s`, its fields %s and %s PNG files."
            % (
                res.get("run_key"),
                ", ".join("`%s`" % f for f in res.get("deleted_fields", [])) or "(none)",
                res.get("num_files_deleted"),
            ),
            name="summary",
        )
        return types.Property(outputs, view=types.View(label="Label quality run deleted"))
