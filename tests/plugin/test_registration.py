"""The plugin is discovered, and fiftyone.yml lists exactly what register()
registers (FiftyOne silently drops operators the yml does not name)."""

import importlib.util
import os
import sys

import pytest
import yaml

import fiftyone.operators as foo
import fiftyone.plugins as fop
from fiftyone.plugins.context import build_plugin_contexts

from tests.plugin.conftest import PLUGIN, PLUGINS_DIR, uri

PLUGIN_DIR = os.path.join(PLUGINS_DIR, "label-quality")
OPERATORS = [
    "compute_label_quality",
    "sort_by_label_quality",
    "tag_label_issues",
    "fix_label_regions",
    "get_label_quality_info",
    "rename_label_quality_run",
    "delete_label_quality_run",
]
PANELS = ["label_quality_panel"]


class _Recorder:
    def __init__(self):
        self.classes = []

    def register(self, cls):
        self.classes.append(cls)


def _registered():
    """(operator names, panel names) that the plugin's register() registers."""
    name = "segqual_plugin_under_test"
    spec = importlib.util.spec_from_file_location(name, os.path.join(PLUGIN_DIR, "__init__.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # relative imports of the submodules need it
    try:
        spec.loader.exec_module(module)
        recorder = _Recorder()
        module.register(recorder)
    finally:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]
    operators, panels = [], []
    for cls in recorder.classes:
        (panels if issubclass(cls, foo.Panel) else operators).append(cls().config.name)
    return operators, panels


def test_yml_lists_exactly_the_registered_operators_and_panels():
    with open(os.path.join(PLUGIN_DIR, "fiftyone.yml")) as f:
        meta = yaml.safe_load(f)
    operators, panels = _registered()
    assert meta["name"] == PLUGIN
    assert sorted(meta.get("operators", [])) == sorted(operators) == sorted(OPERATORS)
    assert sorted(meta.get("panels", [])) == sorted(panels) == sorted(PANELS)
    assert len(set(operators + panels)) == len(operators + panels)


def test_plugin_is_discovered_without_errors():
    assert PLUGIN in [p.name for p in fop.list_plugins()]
    (ctx,) = [c for c in build_plugin_contexts() if c.name == PLUGIN]
    assert not ctx.errors, ctx.errors


@pytest.mark.parametrize("name", OPERATORS + PANELS)
def test_registry_lists_each_operator(name):
    assert uri(name) in [op.uri for op in foo.list_operators(builtin=False)]
    op = foo.get_operator(uri(name))
    assert op.name == name and op.plugin_name == PLUGIN


def test_listed_operators_are_in_the_operator_browser_and_panel_is_not():
    for name in OPERATORS:
        assert not foo.get_operator(uri(name)).config.unlisted
    assert foo.get_operator(uri("label_quality_panel")).config.unlisted  # panels never are


def test_only_compute_is_delegable():
    assert foo.get_operator(uri("compute_label_quality")).config.allow_delegated_execution
    for name in [n for n in OPERATORS if n != "compute_label_quality"]:
        assert not foo.get_operator(uri(name)).config.allow_delegated_execution
