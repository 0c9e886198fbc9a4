"""Operators: compute_label_quality, sort_by_label_quality, tag_label_issues.

Each ``resolve_input`` builds a form from the dataset (only the fields that
fit are offered, bad choices are marked invalid with a message), and each
``execute`` unpacks ``ctx.params`` and calls the library or a FiftyOne view
method. The params of ``compute_label_quality`` carry the names of
``segqual_fo.compute_label_quality``'s arguments, so scripts can run it with
``fiftyone.operators.execute_operator(uri, {"dataset": ..., "params": {...}})``;
the one exception is the model, which params name by its file: ``model_path``
(an ONNX network on the server, run with ``segqual_fo.onnx_model``).

Form checks use the library's rules (:mod:`segqual_fo.options`) and its
queries about runs and fields (:mod:`segqual_fo.fo.queries`): nothing here
restates them.
"""

import inspect
import os

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types
from fiftyone import ViewField as F

from segqual_fo import options
from segqual_fo.errors import SegQualError
from segqual_fo.fo import queries
from segqual_fo.fo.runs import overwrite_state

DEFAULT_SCORE_FIELD = options.DEFAULTS["score_field"]
_MAX_FAILURES_SHOWN = 50
DEFAULT_TAG = "label_issue"
#: Samples looked at when checking that a probability directory matches.
_PEEK = 50

#: Arguments of ``compute_label_quality`` that the plugin decides itself
#: (``model`` is built from the ``model_path`` param).
_PLUGIN_ARGS = ("sample_collection", "skip_failures", "progress", "model")
#: The params that name each source of class scores (for options.check_probs_source).
_SOURCE_PARAMS = ("probs_field", "probs_dir", "model_path")
#: compute_label_quality's options that apply to files only, or to a model only.
_FILE_ONLY = ("probs_field", "probs_dir", "probs_key", "layout", "resize")
_MODEL_ONLY = ("batch_size",)


def library_args():
    """Names of ``segqual_fo.compute_label_quality``'s arguments that params
    may set, read from its signature so that new options pass through."""
    from segqual_fo import compute_label_quality

    return [n for n in inspect.signature(compute_label_quality).parameters if n not in _PLUGIN_ARGS]


def _invalid(prop, message):
    prop.invalid = True
    prop.error_message = message
    return prop


def _check(prop, check, *args, **kwargs):
    """Runs one of the library's option checks; marks ``prop`` invalid with
    its message on failure. Returns whether the value is valid."""
    try:
        check(*args, **kwargs)
    except SegQualError as e:
        _invalid(prop, str(e))
        return False
    return True


def normalize_params(params):
    """Brings script-style params into the form's shape, in place (the
    executor validates ``ctx.params`` against the form after
    ``resolve_input``): ignore values and classes as lists of strings."""
    for name, parse in (("ignore_index", options.parse_ignore), ("classes", options.parse_classes)):
        if name in params:
            values = parse(params[name])
            params[name] = None if values is None else [str(v) for v in values]
    if not params.get("probs_source"):
        # the one source given (several are refused by the form), else the default
        given = [name for name in _SOURCE_PARAMS if params.get(name)]
        params["probs_source"] = {"probs_dir": "dir", "model_path": "model"}.get(given[0], "field") if len(given) == 1 else "field"
    return params


def library_kwargs(params):
    """``ctx.params`` -> keyword arguments of ``compute_label_quality``."""
    params = normalize_params(dict(params))
    kwargs = {}
    for name in library_args():
        value = params.get(name)
        if value is None or value == "" or value == []:
            continue
        kwargs[name] = value
    source = params["probs_source"]
    unused = _FILE_ONLY if source == "model" else _MODEL_ONLY + ("probs_field" if source == "dir" else "probs_dir",)
    for name in unused:
        kwargs.pop(name, None)
    if source == "model":
        from segqual_fo import onnx_model

        kwargs["model"] = onnx_model(options.check_model_path(params.get("model_path")))
    if "ignore_index" in kwargs:
        kwargs["ignore_index"] = options.parse_ignore(kwargs["ignore_index"])
    return kwargs


def _failures_table():
    table = types.TableView()
    table.add_column("sample_id", label="Sample")
    table.add_column("filepath", label="File")
    table.add_column("reason", label="Reason")
    return table


# --------------------------------------------------------------------------


class ComputeLabelQuality(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="compute_label_quality",
            label="Compute segmentation label quality",
            description=(
                "Scores every image's segmentation labels against a model's class probabilities "
                "(stored, or from an ONNX network) and writes scores, heatmaps, issue masks and issue regions"
            ),
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )

    def resolve_delegation(self, ctx):
        # the form's checkbox forces delegation; otherwise the App's (or the
        # caller's request_delegation) choice stands
        return True if ctx.params.get("delegate") else None

    def resolve_run_name(self, ctx):
        return "compute_label_quality (%s)" % (ctx.params.get("score_field") or DEFAULT_SCORE_FIELD)

    def resolve_input(self, ctx):
        inputs = types.Object()
        form = types.View(label="Compute segmentation label quality")
        explicit_source = bool(ctx.params.get("probs_source"))
        params = normalize_params(ctx.params)
        inputs.view_target(ctx, action_description="Score")
        target = ctx.target_view()

        ok = self._label_inputs(inputs, params, target)
        ok = self._probs_inputs(inputs, params, target, explicit_source) and ok
        self._method_inputs(inputs, params, options.METHODS)
        self._output_inputs(inputs, params, ctx.dataset)

        inputs.bool(
            "delegate",
            default=False,
            label="Delegate execution",
            description="Queue the run for a delegated-operation worker (`fiftyone delegated launch`)",
            view=types.CheckboxView(),
        )
        if ok and len(target) == 0:
            _invalid(inputs.view("empty", types.Warning(label="The target has no samples")), "no samples")
        return types.Property(inputs, view=form)

    def _label_inputs(self, inputs, params, target):
        choices = queries.label_field_choices(target)
        dropdown = types.DropdownView()
        for name, kind in choices.items():
            dropdown.add_choice(name, label="%s (%s)" % (name, kind))
        values = list(choices)
        default = values[0] if values else None
        prop = inputs.enum(
            "label_field",
            values or [""],
            default=default,
            required=True,
            label="Label field",
            description="The annotations to check: an fo.Segmentation or fo.Detections (instance masks) field",
            view=dropdown,
        )
        if not values:
            _invalid(prop, "This dataset has no fo.Segmentation or fo.Detections field to check.")
            return False
        chosen = params.get("label_field", default)
        if chosen not in choices:
            _invalid(prop, "%r is not a Segmentation/Detections field; choose one of: %s" % (chosen, ", ".join(values)))
            return False
        if choices[chosen] == "Detections":
            inputs.list(
                "classes",
                types.String(),
                label="Classes (probability-channel order)",
                description="Needed only when the dataset has no class list for this field",
                view=types.AutocompleteView(allow_user_input=True, allow_duplicates=False),
            )
        return True

    def _probs_inputs(self, inputs, params, target, explicit_source=True):
        source = types.RadioGroup(orientation="horizontal")
        source.add_choice("field", label="Path field", description="A string field with each sample's .npy/.npz file")
        source.add_choice("dir", label="Directory", description="Files named like the images (by file stem)")
        source.add_choice("model", label="ONNX model", description="Run an .onnx network on the images")
        prop = inputs.enum("probs_source", source.values(), default="field", label="Probabilities", view=source)
        if not explicit_source and any(params.get(name) for name in _SOURCE_PARAMS):
            # a script's params without probs_source: exactly one source, as in the library
            values = [params.get(name) or None for name in _SOURCE_PARAMS]
            if not _check(prop, options.check_probs_source, *values, names=_SOURCE_PARAMS):
                return False

        if params.get("probs_source") == "model":
            return self._model_inputs(inputs, params)
        ok = True
        if params.get("probs_source", "field") == "dir":
            prop = inputs.str(
                "probs_dir",
                required=True,
                label="Probability directory",
                description="A directory of <image stem>.npy or .npz files on the App server",
            )
            ok = self._check_probs_dir(prop, params.get("probs_dir"), target)
        else:
            strings = queries.string_field_choices(target)
            default = queries.looks_like_probs_field(target, strings) or (strings[0] if strings else None)
            prop = inputs.enum(
                "probs_field",
                strings or [""],
                default=default,
                required=True,
                label="Probability path field",
                description="A string field holding each sample's probability file (.npy or .npz)",
                view=types.DropdownView(),
            )
            if not strings:
                ok = False
                _invalid(prop, "No string field holds probability paths; choose Directory instead.")
            else:
                ok = self._check_probs_field(prop, params.get("probs_field", default), strings, target)

        inputs.str(
            "probs_key",
            label="Array name in .npz files",
            description="Leave empty for .npy files or single-array .npz files",
        )
        layout = types.RadioGroup(orientation="horizontal")
        layout.add_choice("KHW", label="K x H x W", description="classes first")
        layout.add_choice("HWK", label="H x W x K", description="classes last")
        inputs.enum("layout", layout.values(), default="KHW", label="Array layout", view=layout)
        inputs.bool("logits", default=False, label="Files hold logits (apply a softmax)", view=types.CheckboxView())
        inputs.bool(
            "resize",
            default=False,
            label="Resize lower-resolution probabilities to the mask",
            view=types.CheckboxView(),
        )
        return ok

    @staticmethod
    def _model_inputs(inputs, params):
        from segqual_fo.adapters.models import DEFAULT_BATCH_SIZE

        prop = inputs.str(
            "model_path",
            required=True,
            label="ONNX model",
            description=(
                "An .onnx file on the App server: RGB images in [0, 1], shape (N, 3, H, W), in; "
                "class scores (N, K, h, w), at any resolution, out"
            ),
        )
        path = params.get("model_path")
        ok = bool(path) and _check(prop, options.check_model_path, path)  # empty: required, the form asks
        prop = inputs.int("batch_size", default=DEFAULT_BATCH_SIZE, label="Batch size", description="Images per model call")
        if params.get("batch_size") is not None:
            ok = _check(prop, options.check_batch_size, params["batch_size"]) and ok
        inputs.bool("logits", default=False, label="The model outputs logits (apply a softmax)", view=types.CheckboxView())
        return ok

    @staticmethod
    def _check_probs_field(prop, name, strings, target):
        if name not in strings:
            _invalid(prop, "%r is not a string field; choose one of: %s" % (name, ", ".join(strings)))
            return False
        first = target.exists(name).limit(1).values(name)
        if not first:
            _invalid(prop, "No sample in the target has a value in %r." % name)
            return False
        path = first[0]
        if not options.is_probs_file(path):
            _invalid(prop, "%r holds %r; expected paths of .npy or .npz files." % (name, path))
            return False
        if not os.path.isfile(path):
            _invalid(prop, "%r points to %s, which does not exist on the App server." % (name, path))
            return False
        return True

    @staticmethod
    def _check_probs_dir(prop, path, target):
        if not path:
            return False  # required: the form asks for it
        try:
            stems = options.probs_files_by_stem(path)
        except SegQualError as e:
            _invalid(prop, "%s (on the App server)" % e)
            return False
        if not stems:
            _invalid(prop, "%s holds no .npy or .npz files." % path)
            return False
        peek = [options.image_stem(p) for p in target.limit(_PEEK).values("filepath")]
        if peek and not set(stems).intersection(peek):
            _invalid(
                prop,
                "None of the first %d images has a file in %s (looked for e.g. %s.npy)." % (len(peek), path, peek[0]),
            )
            return False
        return True

    def _method_inputs(self, inputs, params, methods):
        method = types.RadioGroup()
        method.add_choice(
            "softmin",
            label="Softmin",
            description="Soft minimum of pixel self-confidences: low when any region disagrees with the model",
        )
        method.add_choice(
            "num_pixel_issues",
            label="Issue count",
            description="1 - fraction of pixels flagged by confident learning (two passes over the dataset)",
        )
        for m in methods:
            if m not in method.values():
                method.add_choice(m, label=m)
        inputs.enum("method", list(methods), default="softmin", label="Scoring method", view=method)

        if params.get("method", "softmin") == "softmin":
            prop = inputs.float(
                "temperature",
                default=0.1,
                label="Temperature",
                description="Low (0.01) -> the worst pixel decides; high (10) -> the mean decides",
            )
            t = params.get("temperature", options.DEFAULTS["temperature"])
            if t is not None:
                _check(prop, options.check_temperature, t)
        else:
            prop = inputs.int(
                "downsample",
                default=1,
                label="Downsample factor",
                description="Average f x f pixel blocks before computing the statistics",
            )
            f = params.get("downsample", options.DEFAULTS["downsample"])
            if f is not None:
                _check(prop, lambda v: options.check_positive_int(v, "downsample", allow_none=False), f)

        inputs.list(
            "ignore_index",
            types.String(),
            label="Ignore values",
            description="Mask values or class names excluded from scoring (255 is ignored unless it is a class)",
            view=types.AutocompleteView(allow_user_input=True, allow_duplicates=False),
        )

    def _output_inputs(self, inputs, params, dataset):
        prop = inputs.str(
            "score_field",
            default=DEFAULT_SCORE_FIELD,
            label="Score field",
            description="Also the prefix of the other output fields and the run key",
        )
        name = params.get("score_field") or DEFAULT_SCORE_FIELD
        if not _check(prop, options.check_field_name, name, "the score field"):
            return
        if params.get("label_field") and not _check(prop, options.check_label_field, params["label_field"], name):
            return
        fields = options.output_fields(name)
        try:
            existing, previous = overwrite_state(dataset, fields, name)
        except SegQualError as e:
            _invalid(prop, str(e))
            return
        if existing and previous:
            inputs.view(
                "replaces",
                types.Notice(label="Replaces the results of the previous run %r for the scored samples" % name),
            )
        elif existing:
            ow = inputs.bool(
                "overwrite",
                default=False,
                label="Overwrite existing fields",
                description="Fields %s exist and were not written by segqual" % ", ".join(existing),
                view=types.CheckboxView(),
            )
            if not params.get("overwrite"):
                _invalid(ow, "Fields %s exist; tick Overwrite or choose another score field." % ", ".join(existing))
                _invalid(prop, "Fields %s already exist." % ", ".join(existing))
        inputs.view(
            "writes",
            types.Notice(label="Writes: %s" % ", ".join(fields.values())),
        )
        inputs.str(
            "output_dir",
            label="Output directory (optional)",
            description="Where heatmap and issue-mask PNGs go (default: FiftyOne's dataset dir)",
        )
        inputs.str(
            "executor",
            label="Dask scheduler (optional)",
            description=(
                "Score on the Dask cluster at this address (tcp://HOST:8786); its workers must "
                "see the probability files and the output directory under the same paths"
            ),
        )

    def execute(self, ctx):
        from segqual_fo import compute_label_quality

        kwargs = library_kwargs(ctx.params)
        if ctx.delegated:
            progress = fo.report_progress(
                lambda pb: ctx.set_progress(
                    progress=pb.progress, label="label quality: step %d of %d" % (pb.iteration, pb.total or 0)
                ),
                dt=0.5,
            )
        else:
            progress = False
        results = compute_label_quality(ctx.target_view(), skip_failures=True, progress=progress, **kwargs)
        if not ctx.delegated:
            ctx.trigger("reload_dataset")
        failures = [
            {"sample_id": f.sample_id, "filepath": f.filepath, "reason": f.reason}
            for f in results.failures[:_MAX_FAILURES_SHOWN]
        ]
        return {
            "score_field": results.score_field,
            "method": results.method,
            "fields": list(results.fields.values()),
            "num_samples": results.num_samples,
            "num_scored": results.num_scored,
            "num_undefined": results.num_undefined,
            "num_failures": len(results.failures),
            "failures": failures,
            "output_dir": results.output_dir,
        }

    def resolve_output(self, ctx):
        outputs = types.Object()
        res = ctx.results or {}
        summary = "Scored %s of %s images with %s into `%s`." % (
            res.get("num_scored"),
            res.get("num_samples"),
            res.get("method"),
            res.get("score_field"),
        )
        if res.get("num_undefined"):
            summary += " %d images have every pixel ignored (score left empty)." % res["num_undefined"]
        outputs.md(summary, name="summary")
        outputs.int("num_scored", label="Images scored")
        outputs.int("num_failures", label="Images that failed")
        if res.get("num_failures"):
            outputs.list(
                "failures",
                types.Object(),
                label="Failures (first %d)" % _MAX_FAILURES_SHOWN,
                view=_failures_table(),
            )
        outputs.md(
            "Next: run **sort_by_label_quality** or open the **Label quality** panel.",
            name="next",
        )
        return types.Property(outputs, view=types.View(label="Label quality computed"))


# --------------------------------------------------------------------------


def _score_field_input(inputs, ctx, description):
    """The score field picker shared by sort and tag. Returns (name, ok)."""
    choices = queries.score_field_choices(ctx.dataset)
    default = choices[0] if choices else DEFAULT_SCORE_FIELD
    prop = inputs.enum(
        "score_field",
        choices or [default],
        default=default,
        label="Score field",
        description=description,
        view=types.DropdownView(),
    )
    name = ctx.params.get("score_field") or default
    if not choices:
        _invalid(prop, "No label-quality scores yet: run compute_label_quality first.")
        return name, False
    if name not in choices:
        _invalid(prop, "%r holds no label-quality scores; choose one of: %s" % (name, ", ".join(choices)))
        return name, False
    return name, True


class SortByLabelQuality(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="sort_by_label_quality",
            label="Sort by label quality (worst first)",
            description="Shows the images with the most likely wrong labels first",
            dynamic=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        _score_field_input(inputs, ctx, "Lower scores = labels more likely wrong")
        inputs.bool(
            "only_issues",
            default=False,
            label="Only images with issue pixels",
            view=types.CheckboxView(),
        )
        ctx.target_view()  # offers the system target picker (dataset, view, selection)
        return types.Property(inputs, view=types.View(label="Sort by label quality"))

    def execute(self, ctx):
        score_field = ctx.params.get("score_field") or queries.default_score_field(ctx.dataset)
        view = queries.worst_first(ctx.target_view(), score_field)
        if ctx.params.get("only_issues"):
            num_issues = queries.run_fields(ctx.dataset, score_field)["num_issues"]
            view = view.match(F(num_issues) > 0)
        ctx.ops.set_view(view=view)
        return {"score_field": score_field, "num_samples": len(view)}


def _default_threshold(sample_collection, score_field):
    """The 10th percentile of the scores, rounded for display."""
    q = sample_collection.quantiles(score_field, 0.1)
    return None if q is None else round(float(q), 4)


class TagLabelIssues(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="tag_label_issues",
            label="Tag label issues for review",
            description="Tags the worst-scored images, and optionally their issue regions",
            dynamic=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        score_field, ok = _score_field_input(inputs, ctx, "The scores to select by")
        target = ctx.target_view()

        mode = types.RadioGroup(orientation="horizontal")
        mode.add_choice("worst", label="Worst K images")
        mode.add_choice("below", label="All below a threshold")
        inputs.enum("mode", mode.values(), default="worst", label="Select", view=mode)

        if ctx.params.get("mode", "worst") == "worst":
            prop = inputs.int("k", default=20, label="K", description="How many of the worst images to tag")
            k = ctx.params.get("k", 20)
            if isinstance(k, (int, float)) and k < 1:
                _invalid(prop, "K must be at least 1, got %s." % k)
        else:
            default = _default_threshold(target, score_field) if ok else None
            inputs.float(
                "threshold",
                default=default,
                label="Score threshold",
                description="Tag images scoring below it (default: the 10th percentile)",
            )
            threshold = ctx.params.get("threshold", default)
            if ok and isinstance(threshold, (int, float)):
                n = target.match(F(score_field) < threshold).count()
                inputs.view("preview", types.Notice(label="%d images score below %s" % (n, threshold)))

        inputs.str("tag", default=DEFAULT_TAG, label="Sample tag")
        inputs.bool(
            "tag_regions",
            default=False,
            label="Also tag their issue regions (label tags)",
            view=types.CheckboxView(),
        )
        if ctx.params.get("tag_regions"):
            inputs.str("region_tag", default=DEFAULT_TAG, label="Region tag")
            inputs.float(
                "min_confidence",
                label="Minimum region confidence",
                description="Tag only regions at least this likely to be annotation errors (0-1; empty: all)",
                min=0.0,
                max=1.0,
            )
            if ok and not ctx.dataset.has_field(queries.run_fields(ctx.dataset, score_field)["regions"]):
                prop = inputs.view("no_regions", types.Warning(label="This run has no regions field"))
                _invalid(prop, "no regions field")
        return types.Property(inputs, view=types.View(label="Tag label issues"))

    def execute(self, ctx):
        params = ctx.params
        score_field = params.get("score_field") or queries.default_score_field(ctx.dataset)
        view = ctx.target_view().exists(score_field)
        if params.get("mode", "worst") == "worst":
            view = view.sort_by(score_field).limit(int(params.get("k", 20)))
        else:
            threshold = params.get("threshold")
            if threshold is None:
                threshold = _default_threshold(view, score_field)
            view = view.match(F(score_field) < threshold)
        tag = params.get("tag") or DEFAULT_TAG
        ids = view.values("id")
        view.tag_samples(tag)
        num_regions = 0
        if params.get("tag_regions"):
            regions = queries.run_fields(ctx.dataset, score_field)["regions"]
            chosen = view
            if params.get("min_confidence") is not None:
                chosen = view.filter_labels(regions, F("confidence") >= float(params["min_confidence"]), only_matches=False)
            chosen.tag_labels(params.get("region_tag") or tag, label_fields=regions)
            num_regions = chosen.count("%s.detections" % regions)
        if not ctx.delegated:
            ctx.trigger("reload_dataset")
        return {"tag": tag, "num_samples": len(ids), "num_regions": num_regions, "sample_ids": ids}

    def resolve_output(self, ctx):
        outputs = types.Object()
        res = ctx.results or {}
        text = "Tagged %s images `%s`" % (res.get("num_samples"), res.get("tag"))
        if res.get("num_regions"):
            text += " and %s issue regions" % res["num_regions"]
        outputs.md(text + ".", name="summary")
        return types.Property(outputs, view=types.View(label="Label issues tagged"))


# --------------------------------------------------------------------------


_FIX_MODES = ("selected", "tag", "confidence")
_DEFAULT_MIN_CONFIDENCE = 0.9


def _selected_regions(ctx, regions_field):
    """Ids of the App's selected labels that are regions of ``regions_field``."""
    return [s["label_id"] for s in ctx.selected_labels or [] if s.get("field") == regions_field]


class FixLabelRegions(foo.Operator):
    """Applies the model's class to chosen issue regions in a new field
    (``segqual_fo.fix_regions``): the regions selected in the App, or those
    with a label tag, or those with a minimum confidence. The label field
    and its files are never changed."""

    @property
    def config(self):
        return foo.OperatorConfig(
            name="fix_label_regions",
            label="Fix label regions (into a new field)",
            description=(
                "Writes a corrected copy of the label masks: the chosen issue regions get the class the "
                "model predicts. The original labels are never changed"
            ),
            dynamic=True,
        )

    def resolve_input(self, ctx):
        from segqual_fo.fo.fix import check_fix_target, check_selection

        inputs = types.Object()
        params = ctx.params
        score_field, ok = _score_field_input(inputs, ctx, "The run whose issue regions are fixed")
        label_field = None
        if ok:
            label_field = getattr(ctx.dataset.get_run_info(score_field).config, "label_field", None)
            inputs.view("label_field_notice", types.Notice(label="Label field (never changed): %s" % label_field))
        regions_field = queries.run_fields(ctx.dataset, score_field)["regions"]
        selected = _selected_regions(ctx, regions_field)

        mode = types.RadioGroup(orientation="horizontal")
        mode.add_choice("selected", label="Selected regions", description="The regions selected in the App")
        mode.add_choice("tag", label="Regions with a tag")
        mode.add_choice("confidence", label="Confident regions", description="confidence at least a threshold")
        default_mode = "selected" if selected else "tag"
        inputs.enum("mode", list(_FIX_MODES), default=default_mode, label="Fix", view=mode)
        chosen = params.get("mode") or default_mode
        selection = {}
        if chosen == "selected":
            prop = inputs.view("selection", types.Notice(label="%d selected regions" % len(selected)))
            if not selected:
                _invalid(prop, "Select issue regions of %s in the App (click them in the sample view)." % regions_field)
            selection = {"label_ids": selected}
        elif chosen == "tag":
            prop = inputs.str("tag", default=DEFAULT_TAG, label="Region tag")
            selection = {"tag": params.get("tag", DEFAULT_TAG) or None}
        else:
            prop = inputs.float(
                "min_confidence",
                default=_DEFAULT_MIN_CONFIDENCE,
                label="Minimum confidence",
                description="Fix the regions whose confidence is at least this",
            )
            selection = {"min_confidence": params.get("min_confidence", _DEFAULT_MIN_CONFIDENCE)}
        if chosen != "selected" and list(selection.values())[0] is not None:
            _check(prop, lambda: check_selection(**selection))

        default_fixed = "%s_fixed" % label_field if label_field else None
        prop = inputs.str(
            "fixed_field",
            default=default_fixed,
            label="Corrected field",
            description="A new fo.Segmentation field; a rerun adds to it (regions already fixed are skipped)",
        )
        if ok and label_field:
            _check(prop, check_fix_target, ctx.dataset, label_field, score_field, params.get("fixed_field") or None)
        return types.Property(inputs, view=types.View(label="Fix label regions"))

    def execute(self, ctx):
        from segqual_fo import fix_regions

        params = ctx.params
        score_field = params.get("score_field") or queries.default_score_field(ctx.dataset)
        label_field = ctx.dataset.get_run_info(score_field).config.label_field
        regions_field = queries.run_fields(ctx.dataset, score_field)["regions"]
        mode = params.get("mode") or ("selected" if _selected_regions(ctx, regions_field) else "tag")
        if mode == "selected":
            collection, selection = ctx.dataset, {"label_ids": _selected_regions(ctx, regions_field)}
        elif mode == "tag":
            collection, selection = ctx.target_view(), {"tag": params.get("tag") or DEFAULT_TAG}
        else:
            collection = ctx.target_view()
            selection = {"min_confidence": params.get("min_confidence", _DEFAULT_MIN_CONFIDENCE)}
        res = fix_regions(
            collection, label_field, score_field=score_field, fixed_field=params.get("fixed_field") or None, **selection
        )
        if not ctx.delegated:
            ctx.trigger("reload_dataset")
        return {
            "fixed_field": res.fixed_field,
            "label_field": label_field,
            "num_samples": res.num_samples,
            "num_regions": res.num_regions,
            "num_pixels": res.num_pixels,
            "num_skipped": res.num_skipped,
        }

    def resolve_output(self, ctx):
        outputs = types.Object()
        res = ctx.results or {}
        text = "Fixed %s regions in %s images (%s pixels) into `%s`; `%s` is unchanged." % (
            res.get("num_regions"),
            res.get("num_samples"),
            res.get("num_pixels"),
            res.get("fixed_field"),
            res.get("label_field"),
        )
        if res.get("num_skipped"):
            text += " %s regions were already fixed or marked not_an_error." % res["num_skipped"]
        outputs.md(text, name="summary")
        return types.Property(outputs, view=types.View(label="Label regions fixed"))
