"""The package's layers import downward only, without cycles, and the
execution layer (what Dask workers run) loads no FiftyOne.

    front ends   cli, report, demo, evaluation, (the plugin)
    fo           segqual_fo.fo.*                 FiftyOne
    execution    segqual_fo.execution.*          no FiftyOne
    options      segqual_fo.options
    adapters     segqual_fo.adapters.*, writers  files and formats
    core         segqual_fo.core.*               numpy only

Imports are read from the source (every ``import``, also inside
functions), so a lazy import cannot hide a wrong direction.
"""

import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "segqual_fo")

#: Layer of each module prefix (longest prefix wins) and its rank: a module
#: may import its own layer and lower ranks only.
LAYERS = {
    "segqual_fo.errors": ("base", 0),
    "segqual_fo.core": ("core", 1),
    "segqual_fo.adapters": ("adapters", 2),
    "segqual_fo.writers": ("writers", 2),
    "segqual_fo.options": ("options", 3),
    "segqual_fo.execution": ("execution", 4),
    "segqual_fo.fo": ("fo", 5),
    "segqual_fo.evaluation": ("front", 6),
    "segqual_fo.demo": ("front", 6),
    "segqual_fo.report": ("front", 6),
    "segqual_fo.cli": ("front", 6),
    "segqual_fo": ("package", 6),
}
#: Layers that must never import FiftyOne (workers run them).
NO_FIFTYONE = {"base", "core", "adapters", "writers", "options", "execution"}
#: Most lines a module may have without saying why at its top.
MAX_LINES = 500


def _modules():
    for dirpath, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                yield (rel[: -len(".__init__")] if rel.endswith(".__init__") else rel), path


def _layer(module):
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def _import_names(nodes, module, is_init):
    """Absolute names imported by the import statements within ``nodes``."""
    out = set()
    for top in nodes:
        for node in ast.walk(top):
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative
                    base = module.split(".")
                    base = base[: len(base) - node.level + (1 if is_init else 0)]
                    name = ".".join(base + ([node.module] if node.module else []))
                else:
                    name = node.module
                out.add(name)
                out.update(f"{name}.{a.name}" for a in node.names)
    return out


def _imports(path, module, module_level=False):
    tree = ast.parse(open(path).read())
    nodes = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))] if module_level else [tree]
    return _import_names(nodes, module, path.endswith("__init__.py"))


def _own(name, modules):
    """The segqual_fo module ``name`` refers to (a module, or a name in one)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def test_layers_import_downward_only():
    modules = dict(_modules())
    wrong = []
    for module, path in modules.items():
        layer, rank = _layer(module)
        for name in _imports(path, module):
            if name.split(".")[0] == "fiftyone" and layer in NO_FIFTYONE:
                wrong.append(f"{module} ({layer}) imports {name}")
            target = _own(name, modules) if name.startswith("segqual_fo") else None
            if target is None or target == module:
                continue
            t_layer, t_rank = _layer(target)
            if t_rank > rank and not (layer == "package" or target == "segqual_fo"):
                wrong.append(f"{module} ({layer}) imports {target} ({t_layer})")
    assert wrong == []


def test_no_import_cycles():
    """Module-level imports between segqual_fo modules form no cycle."""
    modules = dict(_modules())
    graph = {}
    for module, path in modules.items():
        targets = {_own(n, modules) for n in _imports(path, module, module_level=True) if n.startswith("segqual_fo")}
        graph[module] = {t for t in targets if t and t not in (module, "segqual_fo")}
    seen, stack, cycles = set(), [], []

    def visit(m):
        if m in stack:
            cycles.append(stack[stack.index(m):] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            visit(d)
        stack.pop()

    for m in sorted(graph):
        visit(m)
    assert cycles == []


def test_execution_layer_loads_no_fiftyone():
    code = (
        "import sys, segqual_fo.execution.dask, segqual_fo.execution.local, segqual_fo.options; "
        "print(','.join(m for m in sys.modules if m.split('.')[0] == 'fiftyone'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""


def test_big_modules_say_why():
    """A module over MAX_LINES lines explains at its top why it is one."""
    long = []
    for module, path in _modules():
        lines = open(path).read().splitlines()
        if len(lines) > MAX_LINES and not any("one module" in line.lower() for line in lines[:40]):
            long.append(f"{module}: {len(lines)} lines")
    assert long == []
