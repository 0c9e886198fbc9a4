"""The wheel, installed as a user installs it, carries the App plugin and
everything else (issue acceptance test).

A wheel is built from a snapshot of this checkout and installed without
``-e`` into a fresh venv; the venv sees the dev venv's site-packages through
a ``.pth`` path line (FiftyOne and the other dependencies come from there,
nothing is downloaded), but not the dev venv's editable finder: that lives in
a ``.pth`` of the dev site-packages, which a plain path line does not process.
Then, with the venv's own console script and interpreter:

- ``segqual plugin install --dir PLUGINS`` copies the plugin out of the
  installed package (a copy, not a link, for a wheel);
- ``fiftyone plugins list`` / ``plugins info`` / ``operators list`` with
  ``FIFTYONE_PLUGINS_DIR=PLUGINS`` show ``@segqual/label-quality`` with its
  operators and panel, loaded by FiftyOne with the wheel's ``segqual_fo``.

The wheel's file list is compared with the checkout (every package, the
whole plugin, no tests or benchmarks), and ``install_plugin``'s handling of a
plugins directory (other plugins, reinstalls, foreign directories, a link
for a source checkout) is checked in-process.

The build uses the dev venv's setuptools/wheel (``--no-build-isolation``,
offline) when they satisfy ``[build-system] requires``; otherwise pip builds
in an isolated environment, fetching those two from the package index
exactly as ``.ci/run``'s ``pip install -e`` does.
"""

import importlib.util
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from types import SimpleNamespace

import pytest

from segqual_fo.errors import InvalidInputError
from segqual_fo.fo.plugin import INSTALL_NAME, PLUGIN_NAME, install_plugin, plugin_source

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGIN_SRC = os.path.join(REPO, "plugins", "label-quality")
PKG = "segqual_fo"
DIST = "segqual_fo"  # the wheel's dist-info prefix

#: top-level entries of the checkout that are not part of the source
_TOP_IGNORE = {
    ".git", ".venv", "venv", "build", "dist", "test-artifacts", "mutants",
    ".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache", "node_modules",
}
#: a dead database: nothing here may need (or start) MongoDB
_DEAD_DB = "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=1000"


# --------------------------------------------------------------------------
# helpers


def _run(cmd, *, cwd, env=None, timeout=180):
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    p.summary = "$ %s\n[exit %s]\n--- stdout\n%s\n--- stderr\n%s" % (
        " ".join(map(str, cmd)), p.returncode, p.stdout[-6000:], p.stderr[-6000:])
    return p


def _check(cmd, **kw):
    p = _run(cmd, **kw)
    assert p.returncode == 0, p.summary
    return p


def _clean_env(**extra):
    """The environment minus anything that would point a child Python at
    another installation (PYTHONPATH, the dev venv, FiftyOne settings)."""
    env = {
        k: v for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "__PYVENV_LAUNCHER__")
        and not k.startswith(("FIFTYONE_", "COVERAGE_"))
    }
    env.update(extra)
    return env


class _NS(SimpleNamespace):
    def __repr__(self):  # pytest prints fixtures in failure reports: keep it short
        return "<%s>" % ", ".join("%s=%r" % kv for kv in vars(self).items() if isinstance(kv[1], str))


def _ignore_non_source(dirpath, names):
    out = set()
    for n in names:
        p = os.path.join(dirpath, n)
        try:
            mode = os.lstat(p).st_mode
        except FileNotFoundError:  # removed meanwhile by someone editing the tree
            out.add(n)
            continue
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
            out.add(n)  # sockets, FIFOs: copying would block or fail
        elif n == "__pycache__" or n.endswith((".pyc", ".pyo", ".egg-info")):
            out.add(n)
    if os.path.realpath(dirpath) == os.path.realpath(REPO):
        out |= _TOP_IGNORE & set(names)
        out |= {n for n in names if os.path.isfile(os.path.join(dirpath, n, "pyvenv.cfg"))}
    return out


def _files(root):
    """{relative posix path: bytes} of the regular files under root
    (following links), without bytecode."""
    out = {}
    for dirpath, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for n in files:
            if n.endswith((".pyc", ".pyo")):
                continue
            p = os.path.join(dirpath, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root).replace(os.sep, "/")] = f.read()
    return out


def _snapshot(root, exclude=()):
    """Everything under root (links recorded, not followed), except the
    top-level names in exclude."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            if rel.split(os.sep)[0] in exclude:
                continue
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = ("dir",)
            else:
                with open(p, "rb") as f:
                    out[rel] = ("file", f.read())
        dirs[:] = [d for d in dirs if os.path.relpath(os.path.join(dirpath, d), root).split(os.sep)[0] not in exclude]
    return out


def _unmet_build_requirements(pyproject):
    """The [build-system] requirements the running interpreter does not
    satisfy (empty: it can build the wheel offline, without isolation)."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        try:
            import tomli as tomllib
        except ImportError:
            return ["(no TOML reader to read [build-system] requires)"]
    from importlib import metadata

    from packaging.requirements import Requirement

    with open(pyproject, "rb") as f:
        requires = tomllib.load(f)["build-system"]["requires"]
    unmet = []
    for req in map(Requirement, requires):
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            have = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            unmet.append("%s (not installed)" % req)
            continue
        if not req.specifier.contains(have, prereleases=True):
            unmet.append("%s (have %s)" % (req, have))
    return unmet


def _yml(path):
    import yaml

    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def _under(path, root):
    path, root = os.path.realpath(path), os.path.realpath(root)
    return path == root or path.startswith(root + os.sep)


# --------------------------------------------------------------------------
# the wheel, the venv, the installed plugin (built once for the module)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("wheel")


@pytest.fixture(scope="module")
def wheel(work):
    """Builds the wheel from a snapshot of the checkout (a build writes
    ``build/`` and ``*.egg-info`` into the tree it builds, and stale files
    in ``build/lib`` would end up in the wheel)."""
    src = os.path.join(str(work), "src")
    shutil.copytree(REPO, src, symlinks=True, ignore=_ignore_non_source)
    dist = os.path.join(str(work), "dist")
    unmet = _unmet_build_requirements(os.path.join(src, "pyproject.toml"))
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", dist, src]
    if not unmet:
        cmd.insert(4, "--no-build-isolation")
    # pip's own settings (index, find-links) stay: an isolated build needs them
    p = _check(cmd, cwd=str(work), env=_clean_env(), timeout=300)
    wheels = [n for n in os.listdir(dist) if n.endswith(".whl")]
    assert len(wheels) == 1, p.summary
    path = os.path.join(dist, wheels[0])
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        contents = {n: z.read(n) for n in names if not n.endswith("/")}
    mode = "isolated build (unmet in this venv: %s)" % "; ".join(unmet) if unmet else "--no-build-isolation"
    print("wheel %s built with %s" % (wheels[0], mode))
    return _NS(path=path, src=src, names=names, contents=contents, build_mode=mode)


@pytest.fixture(scope="module")
def venv(work, wheel):
    """A fresh venv with the wheel installed (no ``-e``, ``--no-deps``,
    ``--no-index``); it imports everything else from the dev site-packages."""
    root = os.path.join(str(work), "venv")
    _check([sys.executable, "-m", "venv", "--without-pip", root], cwd=str(work), env=_clean_env())
    python = os.path.join(root, "bin", "python")
    site = _check([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                  cwd=str(work), env=_clean_env()).stdout.strip()
    # The dev venv's site-packages (FiftyOne, pip, ...) as a plain path line:
    # its own .pth files (the editable finder among them) are not processed.
    dev_sites = []
    for name in ("fiftyone", "pip", "numpy"):
        spec = importlib.util.find_spec(name)
        d = os.path.dirname(os.path.dirname(spec.origin))
        if d not in dev_sites:
            dev_sites.append(d)
    with open(os.path.join(site, "_segqual_dev_site.pth"), "w") as f:
        f.write("".join(d + "\n" for d in dev_sites))
    # --ignore-installed: pip sees the dev venv's (editable) segqual-fo through
    # the path line and must not try to uninstall it
    _check([python, "-m", "pip", "install", "--isolated", "--no-deps", "--no-index", "--ignore-installed",
            wheel.path], cwd=str(work), env=_clean_env())
    return _NS(root=root, python=python, site=site, dev_sites=dev_sites,
               segqual=os.path.join(root, "bin", "segqual"))


@pytest.fixture(scope="module")
def installed(work, venv):
    """``segqual plugin install --dir PLUGINS`` run by the venv's console
    script."""
    plugins = os.path.join(str(work), "plugins")
    p = _run([venv.segqual, "plugin", "install", "--dir", plugins], cwd=str(work), env=_clean_env())
    return _NS(plugins=plugins, proc=p, target=os.path.join(plugins, INSTALL_NAME))


_PROBE = r"""
import importlib.util, json, os, sys
from importlib import metadata
import segqual_fo
from segqual_fo.fo.plugin import plugin_source
spec = importlib.util.find_spec("segqual_fo._plugin")
dist = metadata.distribution("segqual-fo")
print(json.dumps({
    "prefix": sys.prefix,
    "segqual_fo": segqual_fo.__file__,
    "plugin_spec": list(spec.submodule_search_locations),
    "plugin_source": plugin_source(),
    "dist_site": str(dist.locate_file("")),
    "editable_finders": [repr(f) for f in sys.meta_path
                         if "editable" in (getattr(f, "__module__", "") or type(f).__module__)],
    "editable_modules": sorted(m for m in sys.modules if "editable" in m),
    "fiftyone": importlib.util.find_spec("fiftyone").origin,
    "path": sys.path,
}))
"""

_FO_DRIVER = r"""
import contextlib, io, json, sys
from fiftyone.core.cli import main  # what the `fiftyone` console script runs
runs = []
for argv in json.loads(sys.argv[1]):
    sys.argv = ["fiftyone"] + argv
    buf = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(buf):
        try:
            main()
        except SystemExit as e:
            code = e.code
    runs.append({"argv": argv, "code": code, "stdout": buf.getvalue()})
from fiftyone.plugins.context import build_plugin_contexts
ctx = [c for c in build_plugin_contexts(enabled=True) if c.name == NAME]
result = {"runs": runs, "found": bool(ctx)}
if ctx:
    result["errors"] = ctx[0].errors
    result["instances"] = {i.name: sys.modules[type(i).__module__].__file__ for i in ctx[0].instances}
result["segqual_fo"] = getattr(sys.modules.get("segqual_fo"), "__file__", None)
print("@@RESULT@@" + json.dumps(result))
"""

_FO_COMMANDS = [
    ["plugins", "list"],
    ["plugins", "info", PLUGIN_NAME],
    ["operators", "list", "--no-builtins", "--include-unlisted"],
]


@pytest.fixture(scope="module")
def fiftyone_view(work, venv, installed):
    """The FiftyOne CLI, run by the venv's interpreter with
    FIFTYONE_PLUGINS_DIR=PLUGINS (and no database)."""
    assert installed.proc.returncode == 0, installed.proc.summary
    driver = os.path.join(str(work), "fo_driver.py")
    with open(driver, "w") as f:
        f.write("NAME = %r\n" % PLUGIN_NAME + _FO_DRIVER)
    env = _clean_env(FIFTYONE_PLUGINS_DIR=installed.plugins, FIFTYONE_DO_NOT_TRACK="true",
                     FIFTYONE_DATABASE_URI=_DEAD_DB)
    p = _check([venv.python, driver, json.dumps(_FO_COMMANDS)], cwd=str(work), env=env)
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("@@RESULT@@")]
    assert line, p.summary
    result = json.loads(line[-1][len("@@RESULT@@"):])
    result["runs"] = {" ".join(r["argv"]): r for r in result["runs"]}
    result["summary"] = p.summary
    return result


# --------------------------------------------------------------------------
# the wheel's files


def test_wheel_holds_every_package_and_nothing_else(wheel):
    names = set(wheel.names)
    pkg_root = os.path.join(wheel.src, PKG)
    packages, missing = [], []
    for dirpath, dirs, files in os.walk(pkg_root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        rel = os.path.relpath(dirpath, wheel.src).replace(os.sep, "/")
        if "__init__.py" in files:
            packages.append(rel.replace("/", "."))
        for n in files:
            if n.endswith(".py") or n == "py.typed":
                if "%s/%s" % (rel, n) not in names:
                    missing.append("%s/%s" % (rel, n))
    assert PKG in packages and len(packages) > 1, packages
    absent = [p for p in packages if p.replace(".", "/") + "/__init__.py" not in names]
    assert not absent, (
        "packages on disk but not in the wheel (add them to [tool.setuptools] packages in pyproject.toml): %s"
        % absent)
    assert not missing, "files of %s on disk but not in the wheel: %s" % (PKG, missing)

    dist_info = [n for n in names if n.split("/")[0].endswith(".dist-info")]
    assert {n.split("/")[0] for n in dist_info} == {"%s-%s.dist-info" % (DIST, os.path.basename(wheel.path).split("-")[1])}
    stray = sorted(n for n in names if n not in dist_info and not n.startswith(PKG + "/"))
    assert not stray, "files outside %s/ in the wheel: %s" % (PKG, stray)
    assert not [n for n in names if re.search(r"(^|/)(tests|benchmarks)/", n)]
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]

    # every module in the wheel comes from the checkout (no stale build/ files)
    plugin_prefix = PKG + "/_plugin/"
    for n in names:
        if n.startswith(PKG + "/") and not n.startswith(plugin_prefix) and not n.endswith("/"):
            assert os.path.isfile(os.path.join(wheel.src, n)), "%s is in the wheel, not in the checkout" % n

    entry_points = [n for n in dist_info if n.endswith("/entry_points.txt")]
    assert entry_points and re.search(
        r"^segqual\s*=\s*segqual_fo\.cli:main\s*$", wheel.contents[entry_points[0]].decode(), flags=re.M)


def test_wheel_holds_the_whole_plugin(wheel):
    plugin = _files(os.path.join(wheel.src, "plugins", "label-quality"))
    assert "fiftyone.yml" in plugin and "__init__.py" in plugin, sorted(plugin)
    prefix = PKG + "/_plugin/"
    shipped = {n[len(prefix):]: data for n, data in wheel.contents.items() if n.startswith(prefix)}
    missing = sorted(set(plugin) - set(shipped))
    assert not missing, (
        "plugin files not in the wheel (pyproject [tool.setuptools.package-data] \"segqual_fo._plugin\"): %s"
        % missing)
    assert sorted(shipped) == sorted(plugin)
    for name, data in plugin.items():
        assert shipped[name] == data, name
    yml = _yml(os.path.join(wheel.src, "plugins", "label-quality", "fiftyone.yml"))
    assert yml["name"] == PLUGIN_NAME


# --------------------------------------------------------------------------
# the installed wheel


def test_the_new_venv_imports_the_wheel_not_the_checkout(work, venv):
    p = _check([venv.python, "-c", _PROBE], cwd=str(work), env=_clean_env())
    info = json.loads(p.stdout)
    ctx = p.summary
    assert os.path.realpath(info["prefix"]) == os.path.realpath(venv.root), ctx
    assert _under(info["segqual_fo"], os.path.join(venv.site, PKG)), ctx
    assert not _under(info["segqual_fo"], REPO), ctx
    installed_plugin = os.path.join(venv.site, PKG, "_plugin")
    assert [os.path.realpath(p) for p in info["plugin_spec"]] == [os.path.realpath(installed_plugin)], ctx
    assert info["plugin_source"] == os.path.realpath(installed_plugin), ctx
    assert os.path.realpath(info["dist_site"]) == os.path.realpath(venv.site), ctx
    assert not info["editable_finders"] and not info["editable_modules"], ctx
    # ... while FiftyOne comes from the dev venv (nothing was installed)
    assert any(_under(info["fiftyone"], d) for d in venv.dev_sites), ctx
    with open(venv.segqual) as f:
        shebang = f.readline()
    assert shebang.startswith("#!" + venv.root), shebang


def test_segqual_plugin_install_copies_the_plugin_out_of_the_wheel(venv, installed):
    p = installed.proc
    assert p.returncode == 0, p.summary
    assert p.stdout.strip().splitlines() == [installed.target], p.summary
    assert "FIFTYONE_PLUGINS_DIR=%s" % installed.plugins in p.stderr, p.summary
    assert os.path.isdir(installed.target) and not os.path.islink(installed.target)
    assert os.listdir(installed.plugins) == [INSTALL_NAME]  # no staging leftovers
    copied = _files(installed.target)
    shipped = _files(os.path.join(venv.site, PKG, "_plugin"))
    assert copied == shipped
    assert "fiftyone.yml" in copied and "__init__.py" in copied
    operators = _yml(os.path.join(installed.target, "fiftyone.yml")).get("operators") or []
    assert operators
    assert re.search(r"^def register\(", copied["__init__.py"].decode(), flags=re.M)
    assert not [n for n in copied if "__pycache__" in n]


def test_fiftyone_lists_the_plugin_with_its_operators(venv, installed, fiftyone_view):
    fv = fiftyone_view
    yml = _yml(os.path.join(installed.target, "fiftyone.yml"))
    operators, panels = yml.get("operators") or [], yml.get("panels") or []
    assert operators, yml

    # fiftyone plugins list
    run = fv["runs"]["plugins list"]
    rows = [ln.split() for ln in run["stdout"].splitlines() if ln.split()[:1] == [PLUGIN_NAME]]
    assert len(rows) == 1, run["stdout"]
    assert rows[0][-1] == installed.target and "✓" in rows[0] and yml["version"] in rows[0], run["stdout"]

    # fiftyone plugins info @segqual/label-quality
    run = fv["runs"]["plugins info " + PLUGIN_NAME]
    table, key = {}, None
    for ln in run["stdout"].splitlines()[2:]:  # header, rule
        if not ln.strip():
            continue
        if not ln[0].isspace():
            key, _, value = ln.partition(" ")
            table[key] = [value.strip()] if value.strip() else []
        elif key is not None:
            table[key].append(ln.strip())
    assert table.get("name") == [PLUGIN_NAME], run["stdout"]
    assert table.get("directory") == [installed.target], run["stdout"]
    assert table.get("operators") == operators, run["stdout"]
    assert table.get("panels", []) == panels, run["stdout"]

    # fiftyone operators list: the operators were registered, i.e. FiftyOne
    # executed the plugin, which imported the wheel's segqual_fo
    run = fv["runs"]["operators list --no-builtins --include-unlisted"]
    listed = {ln.split()[0]: ln for ln in run["stdout"].splitlines() if ln.startswith(PLUGIN_NAME + "/")}
    for name in operators + panels:
        uri = "%s/%s" % (PLUGIN_NAME, name)
        assert uri in listed and "✓" in listed[uri], run["stdout"]

    assert fv["found"] and not fv["errors"], fv["summary"]
    assert sorted(fv["instances"]) == sorted(operators + panels), fv["summary"]
    for name, module_file in fv["instances"].items():
        assert _under(module_file, installed.target), (name, module_file)
    assert fv["segqual_fo"] and _under(fv["segqual_fo"], os.path.join(venv.site, PKG)), fv["summary"]


def test_segqual_plugin_install_from_the_wheel_reinstalls_and_refuses_a_foreign_directory(work, venv):
    plugins = os.path.join(str(work), "plugins-cli")
    target = os.path.join(plugins, INSTALL_NAME)
    cmd = [venv.segqual, "plugin", "install", "--dir", plugins]
    _check(cmd, cwd=str(work), env=_clean_env())
    with open(os.path.join(target, "stale.txt"), "w") as f:
        f.write("left over from an older version\n")
    p = _check(cmd, cwd=str(work), env=_clean_env())
    assert p.stdout.strip() == target
    assert not os.path.islink(target) and not os.path.exists(os.path.join(target, "stale.txt"))
    assert _files(target) == _files(os.path.join(venv.site, PKG, "_plugin"))

    foreign = os.path.join(str(work), "plugins-foreign")
    os.makedirs(os.path.join(foreign, INSTALL_NAME))
    with open(os.path.join(foreign, INSTALL_NAME, "fiftyone.yml"), "w") as f:
        f.write('name: "@someone/label-quality"\n')
    before = _snapshot(foreign)
    p = _run([venv.segqual, "plugin", "install", "--dir", foreign], cwd=str(work), env=_clean_env())
    assert p.returncode == 2, p.summary
    assert "is not the %s plugin" % PLUGIN_NAME in p.stderr and p.stdout == "", p.summary
    assert _snapshot(foreign) == before


# --------------------------------------------------------------------------
# install_plugin in-process (the dev venv: a source checkout)


def _make_other_plugins(d, outside):
    os.makedirs(os.path.join(d, "other-plugin", "assets"))
    with open(os.path.join(d, "other-plugin", "fiftyone.yml"), "w") as f:
        f.write('name: "@someone/other"\noperators:\n  - do_things\n')
    with open(os.path.join(d, "other-plugin", "__init__.py"), "w") as f:
        f.write("def register(p):\n    pass\n")
    with open(os.path.join(d, "other-plugin", "assets", "icon.svg"), "w") as f:
        f.write("<svg/>\n")
    os.makedirs(os.path.join(d, "@someone", "nested"))
    with open(os.path.join(d, "@someone", "nested", "fiftyone.yml"), "w") as f:
        f.write('name: "@someone/nested"\n')
    os.makedirs(outside)
    with open(os.path.join(outside, "fiftyone.yml"), "w") as f:
        f.write('name: "@someone/linked"\n')
    os.symlink(outside, os.path.join(d, "linked-plugin"))
    with open(os.path.join(d, "notes.txt"), "w") as f:
        f.write("my plugins\n")


def test_a_source_checkout_gets_a_link_by_default(tmp_path):
    assert plugin_source() == os.path.realpath(PLUGIN_SRC)  # this process runs the editable install
    d = str(tmp_path / "plugins")
    target = install_plugin(d, link=None)
    assert target == os.path.join(d, INSTALL_NAME)
    assert os.path.islink(target) and os.path.realpath(target) == os.path.realpath(PLUGIN_SRC)
    assert install_plugin(d, link=None) == target  # already linked: kept
    assert os.path.islink(target) and os.listdir(d) == [INSTALL_NAME]


def test_other_plugins_in_the_directory_are_left_alone(tmp_path):
    d = str(tmp_path / "plugins")
    outside = str(tmp_path / "elsewhere" / "linked")
    _make_other_plugins(d, outside)
    before, outside_before = _snapshot(d), _snapshot(outside)
    others = sorted(os.listdir(d))
    for link in (False, True, False, None, True):
        target = install_plugin(d, link=link)
        assert os.path.islink(target) == bool(link is not False)
        assert _snapshot(d, exclude={INSTALL_NAME}) == before, link
        assert _snapshot(outside) == outside_before
        assert sorted(os.listdir(d)) == sorted(others + [INSTALL_NAME]), link  # no staging leftovers


def test_reinstalling_replaces_our_copy_and_never_touches_the_source(tmp_path):
    d = str(tmp_path / "plugins")
    source_before = _files(PLUGIN_SRC)
    target = install_plugin(d, link=False)
    assert os.path.isdir(target) and not os.path.islink(target)
    assert _files(target) == source_before
    with open(os.path.join(target, "stale.txt"), "w") as f:
        f.write("from an older version\n")
    with open(os.path.join(target, "fiftyone.yml"), "a") as f:
        f.write("# a local edit\n")
    assert install_plugin(d, link=False) == target
    assert not os.path.islink(target) and _files(target) == source_before  # stale file gone, yml restored
    install_plugin(d, link=True)  # copy -> link
    assert os.path.islink(target) and os.path.realpath(target) == os.path.realpath(PLUGIN_SRC)
    install_plugin(d, link=False)  # link -> copy: the link is removed, not what it points at
    assert not os.path.islink(target) and _files(target) == source_before
    assert _files(PLUGIN_SRC) == source_before
    assert os.listdir(d) == [INSTALL_NAME]


@pytest.mark.parametrize("kind", ["other plugin", "no fiftyone.yml", "a file"])
@pytest.mark.parametrize("link", [None, True, False])
def test_a_foreign_directory_with_our_name_is_refused(tmp_path, kind, link):
    d = str(tmp_path / "plugins")
    target = os.path.join(d, INSTALL_NAME)
    if kind == "a file":
        os.makedirs(d)
        with open(target, "w") as f:
            f.write("not a plugin\n")
    else:
        os.makedirs(target)
        with open(os.path.join(target, "data.txt"), "w") as f:
            f.write("someone's files\n")
        if kind == "other plugin":
            with open(os.path.join(target, "fiftyone.yml"), "w") as f:
                f.write('name: "@someone/label-quality"\noperators:\n  - compute_label_quality\n')
    before = _snapshot(d)
    with pytest.raises(InvalidInputError, match=re.escape("%s exists and is not the %s plugin" % (target, PLUGIN_NAME))):
        install_plugin(d, link=link)
    assert _snapshot(d) == before
