"""Running the plugin's operators and panel in-process, as the App would."""

import fiftyone as fo
import fiftyone.operators as foo
from fiftyone.operators.executor import ExecutionContext

from tests.plugin.conftest import uri


def resolve_inputs(operator_name, dataset, params=None, **request_params):
    """The operator's form for ``params`` (name -> Property), resolved the
    way the App resolves it (``resolve_type``, which adds the target picker)."""
    op = foo.get_operator(uri(operator_name))
    ctx = ExecutionContext(
        {"dataset_name": dataset.name, "params": dict(params or {}), **request_params},
        operator_uri=op.uri,
    )
    return op.resolve_type(ctx, "inputs").type.properties


def invalid(properties):
    """{name: error message} of the form's invalid properties."""
    return {name: p.error_message for name, p in properties.items() if p.invalid}


def run(operator_name, dataset, params=None, **ctx):
    """``fiftyone.operators.execute_operator`` with a dataset and params,
    the documented way to run an operator from a script."""
    return foo.execute_operator(uri(operator_name), {"dataset": dataset, "params": dict(params or {}), **ctx})


def triggered(result, operator_name):
    """Params of the App operations the run triggered (e.g. "set_view")."""
    return [r["params"] for r in result.executor.to_json()["requests"] if r["operator_uri"] == operator_name]


def view_set_by(result, dataset):
    """The view the run set in the App (its one ``set_view`` request)."""
    (params,) = triggered(result, "set_view")
    return fo.DatasetView._build(dataset, params["view"])
