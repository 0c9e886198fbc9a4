"""compute_label_quality, the operator: its form, and that running it (from
a script, or delegated) writes what the Python API writes."""

import os

import cv2
import numpy as np
import pytest

import fiftyone as fo
from fiftyone.operators.delegated import DelegatedOperationService
from fiftyone.operators.executor import ExecutionError, ExecutionRunState

from segqual_fo import compute_label_quality, onnx_model
from segqual_fo.demo import CLASSES
from segqual_fo.options import output_fields
from tests.model_nets import make_conv_net
from tests.plugin.conftest import add_demo_samples, uri
from tests.plugin.helpers import invalid, resolve_inputs, run, triggered

OP = "compute_label_quality"


def _add_distractor_fields(ds):
    ds.add_sample_field("objects", fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)
    ds.add_sample_field("weather", fo.EmbeddedDocumentField, embedded_doc_type=fo.Classification)
    ds.add_sample_field("note", fo.StringField)
    ds.add_sample_field("confidence", fo.FloatField)


# --------------------------------------------------------------------------
# the form


def test_form_offers_only_label_fields_and_string_fields(demo_dataset):
    _add_distractor_fields(demo_dataset)
    props = resolve_inputs(OP, demo_dataset)
    assert props["label_field"].type.values == ["ground_truth", "objects"]
    assert props["label_field"].default == "ground_truth"
    assert props["probs_field"].type.values == ["note", "pred_probs_path"]
    assert props["probs_field"].default == "pred_probs_path"  # its values are .npy paths
    assert props["method"].type.values == ["softmin", "num_pixel_issues"]
    assert "view_target" in props and list(props)[0] == "view_target"
    assert not invalid(props)


def test_form_hides_segqual_outputs_from_the_label_choices(scored_dataset):
    props = resolve_inputs(OP, scored_dataset)
    assert props["label_field"].type.values == ["ground_truth"]  # not label_quality_issues/_regions
    assert "replaces" in props  # a re-run notice, not an error
    assert not invalid(props)


def test_form_follows_the_choices(demo_dataset):
    props = resolve_inputs(OP, demo_dataset, {"method": "num_pixel_issues", "probs_source": "dir"})
    assert "downsample" in props and "temperature" not in props
    assert "probs_dir" in props and "probs_field" not in props
    assert props["probs_dir"].required


def test_form_for_a_model_asks_for_its_file_batch_size_and_logits(demo_dataset, tmp_path):
    net = tmp_path / "net.onnx"
    net.write_bytes(b"not parsed by the form")  # loading a network on every form change would be slow
    props = resolve_inputs(OP, demo_dataset, {"probs_source": "model", "model_path": str(net)})
    assert props["probs_source"].type.values == ["field", "dir", "model"]
    assert props["model_path"].required and props["batch_size"].default == 8 and "logits" in props
    for name in ("probs_field", "probs_dir", "probs_key", "layout", "resize"):  # file options do not apply
        assert name not in props, name
    assert not invalid(props)
    # a script's params name their one source; probs_source follows
    props = resolve_inputs(OP, demo_dataset, {"model_path": str(net)})
    assert "model_path" in props and "probs_field" not in props and not invalid(props)


def test_form_offers_the_selection_as_target(demo_dataset):
    ids = demo_dataset.values("id")[:2]
    props = resolve_inputs(OP, demo_dataset, selected=ids)
    assert "SELECTED_SAMPLES" in props["view_target"].type.values


@pytest.mark.parametrize(
    "params, field, message",
    [
        ({"label_field": "weather"}, "label_field", "not a Segmentation/Detections field"),
        ({"probs_field": "note"}, "probs_field", "expected paths of .npy or .npz"),
        ({"probs_source": "dir", "probs_dir": "/nonexistent/probs"}, "probs_dir", "is not a directory"),
        ({"temperature": 0}, "temperature", "positive finite number"),
        ({"method": "num_pixel_issues", "downsample": 0}, "downsample", "positive integer"),
        ({"score_field": "bad name"}, "score_field", "must be a field name"),
        ({"score_field": "ground_truth"}, "overwrite", "tick Overwrite"),
        ({"probs_source": "model", "model_path": "/nonexistent/net.onnx"}, "model_path", "does not exist"),
        ({"probs_source": "model", "model_path": "NOTE_FILE"}, "model_path", "is not an ONNX file (.onnx)"),
        ({"probs_source": "model", "model_path": "NET", "batch_size": 0}, "batch_size", "batch_size must be a positive integer"),
        # script params with two sources and no probs_source: the library's rule and message
        ({"probs_field": "pred_probs_path", "model_path": "NET"}, "probs_source",
         "pass exactly one of probs_field (a field holding each sample's probability file), probs_dir (a directory "
         "of files named like the images) or model_path (a model to run on the images); got probs_field and model_path."),
    ],
)
def test_form_marks_bad_choices_invalid(demo_dataset, tmp_path, params, field, message):
    _add_distractor_fields(demo_dataset)
    demo_dataset.set_values("note", ["hello.txt"] * len(demo_dataset))
    (tmp_path / "hello.txt").write_text("")
    (tmp_path / "net.onnx").write_bytes(b"")
    files = {"NOTE_FILE": str(tmp_path / "hello.txt"), "NET": str(tmp_path / "net.onnx")}
    params = {k: files.get(v, v) if isinstance(v, str) else v for k, v in params.items()}
    errors = invalid(resolve_inputs(OP, demo_dataset, params))
    assert field in errors and message in errors[field], errors


def test_form_checks_the_first_probability_file(demo_dataset, tmp_path):
    demo_dataset.set_values("pred_probs_path", [str(tmp_path / "gone.npy")] * len(demo_dataset))
    errors = invalid(resolve_inputs(OP, demo_dataset))
    assert "does not exist" in errors["probs_field"]


def test_form_checks_a_directory_matches_the_images(demo_dataset, tmp_path):
    np.save(tmp_path / "other_name.npy", np.zeros((6, 2, 2), np.float32))
    errors = invalid(resolve_inputs(OP, demo_dataset, {"probs_source": "dir", "probs_dir": str(tmp_path)}))
    assert "None of the first 8 images has a file" in errors["probs_dir"]


def test_form_without_label_fields_is_invalid(make_dataset, demo_records):
    ds = make_dataset()
    ds.add_samples([fo.Sample(filepath=r["filepath"], pred_probs_path=r["probs_path"]) for r in demo_records])
    errors = invalid(resolve_inputs(OP, ds))
    assert "no fo.Segmentation or fo.Detections field" in errors["label_field"]


def test_invalid_params_are_refused_with_the_form_message(demo_dataset):
    with pytest.raises(ExecutionError, match="positive finite number"):
        run(OP, demo_dataset, {"label_field": "ground_truth", "probs_field": "pred_probs_path", "temperature": -1})
    assert not demo_dataset.has_field("label_quality")


# --------------------------------------------------------------------------
# execution


def _assert_same_outputs(ds_a, ds_b, score_field="label_quality"):
    """Field by field (and PNG by PNG), two runs wrote the same results."""
    f = output_fields(score_field)
    assert ds_a.values("filepath") == ds_b.values("filepath")
    np.testing.assert_array_equal(ds_a.values(f["score"]), ds_b.values(f["score"]))
    assert ds_a.values(f["num_issues"]) == ds_b.values(f["num_issues"])
    for kind, path in (("heatmap", "map_path"), ("issues", "mask_path")):
        for pa, pb in zip(ds_a.values("%s.%s" % (f[kind], path)), ds_b.values("%s.%s" % (f[kind], path))):
            assert pa != pb  # each run wrote its own files ...
            np.testing.assert_array_equal(  # ... with the same pixels
                cv2.imread(pa, cv2.IMREAD_UNCHANGED), cv2.imread(pb, cv2.IMREAD_UNCHANGED)
            )
    for ra, rb in zip(ds_a.values(f["regions"]), ds_b.values(f["regions"])):
        keys = ("label", "predicted_label", "area", "mean_score", "bounding_box")
        assert [[d[k] for k in keys] for d in ra.detections] == [[d[k] for k in keys] for d in rb.detections]
    ca, cb = ds_a.get_run_info(score_field).config, ds_b.get_run_info(score_field).config
    for key in ("method", "temperature", "label_field", "probs", "classes", "ignore", "fields", "downsample"):
        assert getattr(ca, key) == getattr(cb, key), key
    assert ds_a.load_run_results(score_field).confusion == ds_b.load_run_results(score_field).confusion
    assert ds_a.mask_targets[f["issues"]] == ds_b.mask_targets[f["issues"]]


@pytest.mark.parametrize(
    "params",
    [
        {"method": "softmin", "temperature": 0.1},
        {"method": "softmin", "temperature": 1.0, "ignore_index": [0], "score_field": "lq_t1"},
        {"method": "num_pixel_issues", "score_field": "lq_cl"},
    ],
    ids=["softmin", "softmin-t1-ignore0", "num_pixel_issues"],
)
def test_execute_writes_what_the_python_api_writes(make_dataset, demo_records, tmp_path, params):
    ds_op, ds_api = add_demo_samples(make_dataset(), demo_records), add_demo_samples(make_dataset(), demo_records)
    common = {"label_field": "ground_truth", "probs_field": "pred_probs_path", **params}

    result = run(OP, ds_op, {**common, "output_dir": str(tmp_path / "op")})
    compute_label_quality(ds_api, **common, output_dir=str(tmp_path / "api"), progress=False)

    score_field = params.get("score_field", "label_quality")
    _assert_same_outputs(ds_op, ds_api, score_field)
    assert result.result["num_scored"] == 8 and result.result["num_failures"] == 0
    assert result.result["fields"] == list(output_fields(score_field).values())
    assert triggered(result, "reload_dataset") == [{}]  # the App refreshes


@pytest.mark.parametrize(
    "ignore_index, values, classes",
    [
        (0, [255], ["sky"]),  # mask value 0 is the class "sky"
        ("0", [255], ["sky"]),
        ([0], [255], ["sky"]),
        (["sky"], [255], ["sky"]),
        ("sky, 200", [200, 255], ["sky"]),  # a comma-separated string, as typed
        ([200], [200, 255], []),
    ],
)
def test_ignore_index_accepts_script_forms(demo_dataset, tmp_path, ignore_index, values, classes):
    run(OP, demo_dataset, {"label_field": "ground_truth", "probs_field": "pred_probs_path",
                           "ignore_index": ignore_index, "output_dir": str(tmp_path)})
    ignore = demo_dataset.get_run_info("label_quality").config.ignore
    assert sorted(ignore["values"]) == values and ignore["classes"] == classes


def test_probs_dir_gives_the_same_scores_as_probs_field(make_dataset, demo_records, tmp_path):
    ds_dir, ds_field = add_demo_samples(make_dataset(), demo_records), add_demo_samples(make_dataset(), demo_records)
    probs_dir = os.path.dirname(demo_records[0]["probs_path"])
    run(OP, ds_dir, {"label_field": "ground_truth", "probs_dir": probs_dir, "output_dir": str(tmp_path / "a")})
    run(OP, ds_field, {"label_field": "ground_truth", "probs_field": "pred_probs_path", "output_dir": str(tmp_path / "b")})
    assert ds_dir.values("label_quality") == ds_field.values("label_quality")
    assert ds_dir.get_run_info("label_quality").config.probs["probs_dir"] == probs_dir


@pytest.mark.parametrize("explicit", [True, False], ids=["probs_source", "model_path-only"])
def test_execute_with_an_onnx_model_writes_what_the_python_api_writes(make_dataset, demo_records, tmp_path, explicit):
    """A real network (one strided convolution, run by onnxruntime) on the
    demo images, through the form's model source and through the API."""
    pytest.importorskip("onnxruntime")
    net = make_conv_net(str(tmp_path / "net.onnx"), k=len(CLASSES), stride=4)
    ds_op, ds_api = add_demo_samples(make_dataset(), demo_records), add_demo_samples(make_dataset(), demo_records)
    params = {"label_field": "ground_truth", "model_path": net, "logits": True, "batch_size": 3,
              "output_dir": str(tmp_path / "op")}
    if explicit:
        params["probs_source"] = "model"
    result = run(OP, ds_op, params)
    compute_label_quality(ds_api, "ground_truth", model=onnx_model(net), logits=True, batch_size=3,
                          output_dir=str(tmp_path / "api"), progress=False)
    _assert_same_outputs(ds_op, ds_api)
    assert result.result["num_scored"] == 8 and result.result["num_failures"] == 0
    assert ds_op.get_run_info("label_quality").config.probs == {"model": "onnx:" + net, "logits": True, "resize": True}


def test_a_model_that_does_not_load_is_refused(demo_dataset, tmp_path):
    (tmp_path / "broken.onnx").write_bytes(b"garbage")
    with pytest.raises(ExecutionError, match=r"cannot load ONNX model .*broken\.onnx"):
        run(OP, demo_dataset, {"label_field": "ground_truth", "probs_source": "model",
                               "model_path": str(tmp_path / "broken.onnx"), "output_dir": str(tmp_path)})
    assert not demo_dataset.has_field("label_quality")


def test_selected_samples_target_scores_only_the_selection(demo_dataset, tmp_path):
    ids = demo_dataset.values("id")
    result = run(
        OP,
        demo_dataset,
        {"label_field": "ground_truth", "probs_field": "pred_probs_path", "view_target": "SELECTED_SAMPLES",
         "output_dir": str(tmp_path)},
        selected=ids[2:5],
    )
    assert result.result["num_samples"] == 3
    scored = dict(zip(ids, demo_dataset.values("label_quality")))
    assert [sid for sid, s in scored.items() if s is not None] == ids[2:5]


def test_failed_samples_are_reported_not_raised(demo_dataset, tmp_path):
    last = demo_dataset.last()
    last["pred_probs_path"] = str(tmp_path / "missing.npy")
    last.save()
    result = run(OP, demo_dataset, {"label_field": "ground_truth", "probs_field": "pred_probs_path",
                                    "output_dir": str(tmp_path)})
    assert result.result["num_scored"] == 7 and result.result["num_failures"] == 1
    (failure,) = result.result["failures"]
    assert failure["sample_id"] == last.id and "missing.npy" in failure["reason"]
    assert demo_dataset.values("label_quality")[-1] is None


# --------------------------------------------------------------------------
# delegated execution


@pytest.fixture
def delegated_ops():
    """The delegated-operation service; removes the operations a test queued."""
    service = DelegatedOperationService()
    queued = []
    yield service, queued
    for op_id in queued:
        service.delete_operation(op_id)


@pytest.mark.parametrize("how", ["request_delegation", "delegate_param"])
def test_delegated_run_completes_through_the_service(make_dataset, demo_records, tmp_path, delegated_ops, how):
    service, queued = delegated_ops
    ds, ds_api = add_demo_samples(make_dataset(), demo_records), add_demo_samples(make_dataset(), demo_records)
    params = {"label_field": "ground_truth", "probs_field": "pred_probs_path", "output_dir": str(tmp_path / "op")}
    if how == "request_delegation":
        result = run(OP, ds, params, request_delegation=True)
    else:  # the form's checkbox forces delegation (resolve_delegation)
        result = run(OP, ds, {**params, "delegate": True})
    assert result.delegated
    op_id = result.result["id"]
    queued.append(op_id)
    assert service.get(op_id).run_state == ExecutionRunState.QUEUED
    assert not ds.has_field("label_quality")  # nothing ran yet

    # what `fiftyone delegated launch` does, in-process, for this dataset only
    service.execute_queued_operations(dataset_name=ds.name)

    doc = service.get(op_id)
    assert doc.run_state == ExecutionRunState.COMPLETED, doc.result
    assert doc.operator == uri(OP)
    assert doc.result.result["num_scored"] == 8
    assert doc.status.progress == 1.0  # progress reached the service
    compute_label_quality(ds_api, "ground_truth", probs_field="pred_probs_path",
                          output_dir=str(tmp_path / "api"), progress=False)
    _assert_same_outputs(ds, ds_api)


def test_execute_on_a_dask_scheduler(make_dataset, demo_records, tmp_path):
    """The form's "Dask scheduler" field runs the scoring on that cluster."""
    from segqual_fo.execution.dask import local_cluster

    ds_op, ds_api = add_demo_samples(make_dataset(), demo_records), add_demo_samples(make_dataset(), demo_records)
    common = {"label_field": "ground_truth", "probs_field": "pred_probs_path", "method": "num_pixel_issues"}
    with local_cluster(2) as client:
        address = client.scheduler.address
        form = resolve_inputs(OP, ds_op, {**common, "executor": address})
        assert "executor" in form
        result = run(OP, ds_op, {**common, "executor": address, "output_dir": str(tmp_path / "op")})
    compute_label_quality(ds_api, **common, output_dir=str(tmp_path / "api"), progress=False)
    _assert_same_outputs(ds_op, ds_api, "label_quality")
    assert result.result["num_scored"] == 8
    with pytest.raises(ExecutionError, match="cannot reach a Dask scheduler"):
        import dask

        with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
            run(OP, ds_op, {**common, "executor": "tcp://127.0.0.1:9", "score_field": "lq_x"})
