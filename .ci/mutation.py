#!/usr/bin/env python3
"""Mutation testing for segqual_fo with mutmut 3, one module group at a time.

Not part of CI (too slow for every run): a habit, run by hand after a change
to a group's code or tests. Usage::

    .venv/bin/python .ci/mutation.py writers
    .venv/bin/python .ci/mutation.py segqual_fo/core/pixel.py      # one module
    .venv/bin/python .ci/mutation.py core --tests "tests/core -k softmin"
    .venv/bin/python .ci/mutation.py write-back --functions "commit:*,writeback:Collector"
    .venv/bin/python .ci/mutation.py adapters --ref HEAD --time-limit 60 --json out.json

Needs mutmut 3 in the venv (it is in the ``dev`` extra). No network is used.

How it works
------------
* The working tree is never touched. Every file ``git ls-files`` knows, plus
  the untracked, not ignored ones (so test files not yet committed take part),
  is copied as it is on disk to ``/tmp/segqual-mutation-XXXX`` (``--ref REV``:
  the files of that commit instead, for a baseline that others' uncommitted
  edits cannot disturb); a
  ``[tool.mutmut]`` table is appended to *that copy's* ``pyproject.toml``, and
  ``mutmut run`` runs there. mutmut writes its ``mutants/`` tree inside the
  copy, which is deleted afterwards (``--keep`` keeps it and prints its path;
  then ``cd`` there and ``.venv``-python ``-m mutmut show NAME`` / ``browse``
  work as usual).
* mutmut only mutates code inside functions and methods (not module-level
  constants), and for each mutant runs only the tests that called the mutated
  function during its stats run (``-x``, stop at the first failure).
* FiftyOne: ``process_isolation = "forkserver"``: mutmut's main process never
  imports pytest, FiftyOne or pymongo; a fork server imports them once
  (``pytest --collect-only``) and forks one child per mutant, so no MongoClient
  or pymongo monitor thread is ever inherited across a fork (a pymongo client
  opened before ``fork()`` is not fork-safe). Each child opens its own
  connection.
* The database: the script starts a private ``mongod`` (FiftyOne's own
  binary) on a free loopback port with a data directory inside the temporary
  copy, and points every test process at it with ``FIFTYONE_DATABASE_URI``.
  Mutant children then connect in milliseconds instead of each starting
  FiftyOne's database service, a mutant killed by its timeout cannot leave
  datasets in the developer's own database, and other people's concurrent
  test runs do not share it. The ``mongod`` is stopped at the end.
* ``PYTHONPATH`` is set to the mutated tree, so tests that start Python
  children (``tests/reliability`` kill-and-resume tests) run the mutated code
  in those children too (the active mutant's name reaches them through the
  ``MUTANT_UNDER_TEST`` environment variable).
* Hypothesis runs with ``--hypothesis-seed=0`` so a mutant's verdict does not
  depend on the examples drawn.
* Before mutmut starts, the selected tests run once on the unmutated copy;
  tests that fail there (work in progress) are deselected and listed, since
  mutmut refuses to start on a red suite.
* ``--time-limit`` stops mutmut (SIGINT: it ends its workers and keeps every
  verdict so far) and reports what was tested; mutmut runs the mutants with
  the cheapest tests first, so a partial run over-represents cheap functions.
* ``--functions`` restricts the run to some functions (mutmut's own mutant
  name globs), e.g. the write-back functions of a large module.

Test subsets (missing paths are skipped, so ``tests/adapters`` or
``tests/writers`` can appear later). A mutant runs only the selected tests that
call its function, all of them when it survives, so slow tests in the
selection cost (their time) x (surviving mutants of the functions they reach):

* core -> ``tests/core`` (includes the cleanlab / reference oracles) and
  ``tests/reliability/test_properties.py`` (Hypothesis invariants); no
  database. ``candidates.py`` is not mutated (experimental, moved out).
* adapters -> ``tests/adapters``; ``tests/fo/test_coco.py`` (COCO rasterising
  against pycocotools, FiftyOne detections; needs the shared COCO data);
  ``tests/fo/test_pipeline.py`` (mask value mappings, RGB masks, void values,
  logits, layouts); ``tests/fo/test_outputs_oracle.py`` (label PNGs with a 255
  ignore value, .npy probabilities); ``tests/reliability/test_bad_input.py``
  (corrupt / pickled / zip-bomb probability files); the CLI's COCO import test.
* writers -> ``tests/writers`` (hand-written arrays), ``tests/fo/test_outputs_oracle.py``
  (the PNGs and regions a run writes, by hand), ``tests/fo/test_pipeline.py``,
  ``tests/reliability/test_untrusted.py`` (outputs stay in the output dir).
* write-back (``fo/commit.py``, ``fo/writeback.py``, ``fo/documents.py``,
  ``fo/runs.py``, ``fo/checkpoint.py``, ``execution/job.py``) -> ``tests/fo``
  except the CamVid ranking test (slow, checks ranking only) and the COCO file;
  ``tests/reliability/test_bad_input.py``, ``test_untrusted.py`` and
  ``test_resume.py`` (resume=True, committed samples untouched);
  ``tests/cli/test_report_oracle.py`` (reads back every stored field). Left
  out: the tests that kill child processes (``test_interruptions.py``,
  ``test_run_lock.py``, the kill test of ``test_resume.py``: 10-20 s each,
  mostly waiting, and every surviving pipeline mutant would run them all) and
  the soak. Add them with ``--tests`` for a thorough run.

Measured wall times (mutmut 3.8.1, 2 cores shared with other jobs): writers
256 mutants in 5 min (2 children); adapters 1,184 in 46 min (2 children);
core 4,806 mutants (with the model-resolution path), 2,788 of them in 50 min
with 1 child (all: about 2.5 h); write-back 1,621 mutants, 891 of them in 60
min with 1 child (every FiftyOne test a surviving mutant reaches runs; use
``--functions`` or ``--time-limit``). The README's "Mutation testing"
section records the scores and what the survivors are.

Output: per group the total number of mutants, killed, survived, timeout,
suspicious, skipped, "no tests" (the mutated function is not called by any
selected test), the score killed / (killed + survived), and every surviving
mutant with its diff (file, line, the original and mutated line), grouped by
file. Exit code 0 whatever the score (this is a report, not a gate); 2 for a
setup failure (e.g. the clean test run failed).
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PKG = "segqual_fo"
SHARED_DATA_DEFAULT = "/work/shared/data"

# group -> (modules to mutate (globs, relative to the repo), modules not to
# mutate, default test selection (pytest arguments; a path that does not
# exist is dropped), rough minutes with 2 children)
GROUPS = {
    "core": dict(
        mutate=[f"{PKG}/core/*.py"],
        exclude=[f"{PKG}/core/candidates.py"],
        tests=["tests/core", "tests/reliability/test_properties.py"],
        minutes=90,
    ),
    "adapters": dict(
        mutate=[f"{PKG}/adapters/*.py"],
        exclude=[],
        tests=[
            "tests/adapters",
            "tests/fo/test_coco.py",
            "tests/fo/test_pipeline.py",
            "tests/fo/test_outputs_oracle.py",
            "tests/reliability/test_bad_input.py",
            "tests/cli/test_cli.py::test_import_coco_masks_agree_with_ann_to_mask",
        ],
        minutes=135,
    ),
    "writers": dict(
        mutate=[f"{PKG}/writers/*.py"],
        exclude=[],
        tests=[
            "tests/writers",
            "tests/fo/test_outputs_oracle.py",
            "tests/fo/test_pipeline.py",
            "tests/reliability/test_untrusted.py",
        ],
        minutes=5,
    ),
    "write-back": dict(
        mutate=[f"{PKG}/fo/commit.py", f"{PKG}/fo/writeback.py", f"{PKG}/fo/documents.py",
                f"{PKG}/fo/runs.py", f"{PKG}/fo/checkpoint.py", f"{PKG}/execution/job.py"],
        exclude=[],
        tests=[
            "tests/fo",
            "--ignore=tests/fo/test_camvid.py",
            "--ignore=tests/fo/test_coco.py",
            "tests/reliability/test_bad_input.py",
            "tests/reliability/test_untrusted.py",
            "tests/reliability/test_resume.py",
            "--deselect=tests/reliability/test_resume.py::test_kill_during_issue_count_scan_then_resume",
            "tests/cli/test_report_oracle.py",
        ],
        minutes=300,
    ),
}
ALIASES = {"writeback": "write-back", "write_back": "write-back"}

STATUS_BY_EXIT_CODE = {  # mirrors mutmut.stats.status_by_exit_code (3.8)
    1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests",
    2: "interrupted", None: "not checked", 34: "skipped", 35: "suspicious",
    36: "timeout", 37: "caught by type check", -24: "timeout", 24: "timeout",
    152: "timeout", 255: "timeout", -11: "segfault", -9: "segfault",
}


def _status(code):
    try:
        from mutmut.stats import status_by_exit_code  # the tool's own table
        return status_by_exit_code[code]
    except Exception:
        return STATUS_BY_EXIT_CODE.get(code, "suspicious")


# --------------------------------------------------------------------------
# arguments


def _epilog() -> str:
    lines = ["groups (wall time measured with --max-children 2 on a busy 2-core machine;",
             "write-back in full takes hours: use --functions / --time-limit, or one module):"]
    for name, g in GROUPS.items():
        mods = ", ".join(g["mutate"]) + (f" (not {', '.join(g['exclude'])})" if g["exclude"] else "")
        lines.append(f"  {name:<11} ~{g['minutes']} min   {mods}")
        lines.append(f"  {'':<11} tests: {' '.join(g['tests'])}")
    lines.append("  or one module: segqual_fo/core/pixel.py or segqual_fo.core.pixel "
                 "(tests: its group's; a time in proportion to its size)")
    return "\n".join(lines)


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Run mutmut on a segqual_fo module group or one module, in a temporary copy "
                    "of the repository, and print the score and the surviving mutants.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("target", help="core | adapters | writers | write-back | a module path or dotted name")
    p.add_argument("--tests", help="pytest arguments selecting the tests (one string, shell-quoted), "
                                   "instead of the group's default")
    p.add_argument("--max-children", type=int, default=2, help="parallel mutant runs (default 2)")
    p.add_argument("--keep", action="store_true", help="keep the temporary copy (with mutants/) and print its path")
    p.add_argument("--timeout-multiplier", type=float, default=10.0,
                   help="a mutant times out after (its tests' clean time + 1 s) x this (default 10)")
    p.add_argument("--functions", metavar="NAMES",
                   help="only mutate these functions of the target's modules: comma-separated "
                        "[MODULE:]NAME, NAME a function, 'Class' or 'Class.method', globs allowed, '*' = all; "
                        "MODULE (optional) the end of a dotted module name "
                        "(e.g. 'commit:*,pipeline:_image_outputs,pipeline:_Collector')")
    p.add_argument("--ref", metavar="REV",
                   help="test the files of this commit (git archive REV) instead of the working tree "
                        "(which includes uncommitted and untracked files)")
    p.add_argument("--time-limit", type=float, metavar="MINUTES",
                   help="stop mutmut after this many minutes and report what was tested "
                        "(the rest count as 'not checked'; the score is then an estimate)")
    p.add_argument("--debug", action="store_true", help="mutmut's debug mode: pytest output in the log (mutmut-run.log)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    p.add_argument("--show-no-tests", action="store_true",
                   help="also print the diffs of mutants that no selected test reaches")
    return p.parse_args(argv)


def resolve_target(target: str):
    """(label, mutate globs, exclude globs, default tests)"""
    t = ALIASES.get(target, target)
    if t in GROUPS:
        g = GROUPS[t]
        return t, g["mutate"], g["exclude"], g["tests"]
    path = t
    if not path.endswith(".py"):
        path = path.replace(".", "/") + ".py"
    if not path.startswith(PKG + "/"):
        path = f"{PKG}/{path}"
    if not (REPO / path).is_file():
        sys.exit(f"error: {target!r} is neither a group ({', '.join(GROUPS)}) nor a module ({path} not found)")
    for name, g in GROUPS.items():
        if any(fnmatch.fnmatch(path, m) for m in g["mutate"]):
            return path, [path], [], g["tests"]
    print(f"note: {path} is in no group; testing it with the write-back tests", file=sys.stderr)
    return path, [path], [], GROUPS["write-back"]["tests"]


def existing_tests(args, root: Path):
    """Keeps options, and paths (or node ids) whose file exists in ``root``."""
    kept, dropped = [], []
    for a in args:
        if a.startswith("-"):
            m = re.match(r"--(deselect|ignore)=(.*)", a)
            if m and not (root / m.group(2).split("::")[0]).exists():
                continue  # deselecting something absent is a no-op
            kept.append(a)
        elif (root / a.split("::")[0]).exists():
            kept.append(a)
        else:
            dropped.append(a)
    return kept, dropped


def module_names(root: Path, mutate, exclude):
    names = []
    for path in sorted(root.glob(f"{PKG}/**/*.py")):
        rel = str(path.relative_to(root))
        if any(fnmatch.fnmatch(rel, m) for m in mutate) and not any(fnmatch.fnmatch(rel, e) for e in exclude):
            names.append(rel[:-3].replace("/", "."))
    return names


def function_globs(functions: str, modules):
    """mutmut mutant-name globs for ``--functions``."""
    globs = []
    for f in (x.strip() for x in functions.split(",")):
        if not f:
            continue
        mods = modules
        if ":" in f:
            suffix, _, f = f.partition(":")
            mods = [m for m in modules if m == suffix or m.endswith("." + suffix)]
            if not mods:
                raise RuntimeError(f"--functions: no module of the target ends with {suffix!r} "
                                   f"(modules: {', '.join(m.split('.', 1)[1] for m in modules)})")
        if "." in f:
            cls, _, meth = f.partition(".")
            mangled = [f"x\u01c1{cls}\u01c1{meth}__mutmut_*"]
        else:
            mangled = [f"x_{f}__mutmut_*", f"x\u01c1{f}\u01c1*__mutmut_*"]
        globs += [f"{m}.{g}" for m in mods for g in mangled]
    return globs


# --------------------------------------------------------------------------
# the temporary copy


def git_files():
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=REPO, check=True, capture_output=True).stdout
    return sorted({f for f in out.decode().split("\0") if f})


def make_copy(dest: Path, ref=None):
    if ref:
        archive = subprocess.run(["git", "archive", "--format=tar", ref], cwd=REPO, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        return sum(1 for p in dest.rglob("*") if p.is_file())
    n = 0
    for rel in git_files():
        src = REPO / rel
        if not src.is_file() or rel.startswith("mutants/"):
            continue  # deleted in the working tree
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
        n += 1
    return n


def toml_list(values):
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def write_mutmut_config(root: Path, mutate, exclude, tests, timeout_multiplier, debug=False):
    pytest_args = PYTEST_ARGS
    cfg = f"""

# ---- added by .ci/mutation.py in this temporary copy only ----
[tool.mutmut]
source_paths = ["{PKG}"]
only_mutate = {toml_list(mutate)}
do_not_mutate = {toml_list(exclude)}
also_copy = ["plugins"]
pytest_add_cli_args_test_selection = {toml_list(tests)}
pytest_add_cli_args = {toml_list(pytest_args)}
process_isolation = "forkserver"
forkserver_warmup = "collect"
use_git_change_detection = false
timeout_multiplier = {timeout_multiplier}
timeout_constant = 1.0
debug = {"true" if debug else "false"}
"""
    with open(root / "pyproject.toml", "a") as f:
        f.write(cfg)


# --------------------------------------------------------------------------
# the private database


def find_mongod(python: str) -> str:
    code = ("import os, fiftyone.constants as c; "
            "print(os.path.join(c.FIFTYONE_DB_BIN_DIR, 'mongod'))")
    env = dict(os.environ, FIFTYONE_DO_NOT_TRACK="true")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env)
    path = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    if out.returncode or not os.access(path, os.X_OK):
        raise RuntimeError(f"cannot find FiftyOne's mongod: {out.stderr.strip()[-500:]}")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mongod(python: str, dbdir: Path):
    mongod = find_mongod(python)
    dbdir.mkdir(parents=True)
    port = free_port()
    proc = subprocess.Popen(
        [mongod, "--dbpath", str(dbdir), "--port", str(port), "--bind_ip", "127.0.0.1",
         "--nounixsocket", "--logpath", str(dbdir / "mongod.log"), "--wiredTigerCacheSizeGB", "0.25"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mongod exited with {proc.returncode}; see {dbdir / 'mongod.log'}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, f"mongodb://127.0.0.1:{port}/"
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("mongod did not start listening within 60 s")


def stop_process(proc, grace=10.0):
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the process and its children only
    except ProcessLookupError:
        return
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


# --------------------------------------------------------------------------
# running mutmut

PYTEST_ARGS = ["-p", "no:cacheprovider", "-o", "addopts=", "--hypothesis-seed=0"]


def preflight(python: str, root: Path, env, tests):
    """Runs the selection once on the unmutated copy. mutmut refuses to start
    when a test fails without mutation, and tests are being written while
    this runs, so tests that fail here are left out (and listed).
    Returns (extra pytest arguments, failing node ids, seconds)."""
    t0 = time.time()
    out = subprocess.run([python, "-m", "pytest", "-q", "-rfE", "--tb=no", *PYTEST_ARGS, *tests],
                         cwd=root, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    secs = time.time() - t0
    if out.returncode in (0, 5):
        return [], [], secs
    failing = []
    for line in out.stdout.splitlines():
        m = re.match(r"^(FAILED|ERROR) (\S+)", line)
        if m:
            failing.append(m.group(2))
    if not failing:
        raise RuntimeError("the clean test run failed:\n" + (out.stdout + out.stderr)[-3000:])
    extra = []
    for nodeid in dict.fromkeys(failing):
        extra.append(f"--deselect={nodeid}" if "::" in nodeid else f"--ignore={nodeid}")
    return extra, failing, secs



def run_mutmut(python: str, root: Path, env, max_children: int, log_path: Path, names=(), time_limit=None):
    """Runs ``mutmut run`` in ``root``; its output goes to ``log_path``, with a
    progress line here every 30 s. After ``time_limit`` seconds mutmut gets
    SIGINT (it stops its workers and keeps the verdicts it has), and SIGTERM a
    minute later if it is still running. Returns the
    exit code."""
    import threading

    exe = Path(python).parent / "mutmut"  # mutmut warns against ``python -m mutmut``
    cmd = [str(exe)] if exe.exists() else [python, "-m", "mutmut"]
    cmd += ["run", "--max-children", str(max_children), *names]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=root, env=dict(env, PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        timer = None
        if time_limit:
            def _stop():
                print("  time limit reached: stopping mutmut", flush=True)
                # SIGINT lets mutmut end its workers and keep its verdicts;
                # it does not always take it (seen with a long core run), so
                # SIGTERM follows a minute later (verdicts so far are kept
                # in its meta files; the mutant then running may count as
                # survived)
                for sig, wait in ((signal.SIGINT, 60), (signal.SIGTERM, 0)):
                    try:
                        os.kill(proc.pid, sig)
                    except ProcessLookupError:
                        return
                    try:
                        proc.wait(timeout=wait) if wait else None
                        if proc.poll() is not None:
                            return
                    except subprocess.TimeoutExpired:
                        print(f"  mutmut ignored SIGINT for {wait} s: sending SIGTERM", flush=True)
            timer = threading.Timer(time_limit, _stop)
            timer.daemon = True
            timer.start()
        try:
            last_print = time.time()
            tail = b""
            assert proc.stdout is not None
            for chunk in iter(lambda: proc.stdout.read1(65536), b""):
                log.write(chunk)
                tail = (tail + chunk)[-4000:]
                if time.time() - last_print > 30:
                    last_print = time.time()
                    line = _last_progress_line(tail)
                    if line:
                        print(f"  [{time.strftime('%H:%M:%S')}] {line}", flush=True)
            return proc.wait()
        finally:
            if timer is not None:
                timer.cancel()
            stop_process(proc)


def _last_progress_line(tail: bytes) -> str:
    text = tail.decode("utf-8", "replace")
    parts = [p.strip() for p in re.split(r"[\r\n]", text) if p.strip()]
    return parts[-1][:160] if parts else ""


# --------------------------------------------------------------------------
# results


def function_spans(source_path: Path):
    """{mangled name: (first line, last line)} for top-level functions
    (``x_name``) and methods (``xǁClassǁname``), as mutmut names them."""
    tree = ast.parse(source_path.read_text())
    spans = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            spans[f"x_{node.name}"] = (node.lineno, node.end_lineno)
        elif isinstance(node, ast.ClassDef):
            for sub in node.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    spans[f"x\u01c1{node.name}\u01c1{sub.name}"] = (sub.lineno, sub.end_lineno)
    return spans


def locate_line(diff: str, source_lines, span):
    """Line number (1-based) in the original file of the first changed line."""
    removed = [l[1:] for l in diff.splitlines() if l.startswith("-") and not l.startswith("---")]
    hunk = re.search(r"^@@ -(\d+)", diff, re.M)
    if not removed or span is None:
        return None
    first, last = span
    # the function text in the diff starts at its ``def`` line (decorators aside)
    guess = first + (int(hunk.group(1)) - 1 if hunk else 0)
    # lines between the hunk start and the first removed line
    if hunk:
        body = diff[hunk.end():].splitlines()[1:]
        for l in body:
            if l.startswith("-"):
                break
            guess += 1
    want = removed[0].strip()
    cands = [i for i in range(first, last + 1) if source_lines[i - 1].strip() == want]
    if not cands:
        return guess
    return min(cands, key=lambda i: abs(i - guess))


def collect_results(root: Path):
    """Reads mutmut's results in ``root``: list of dicts."""
    here = os.getcwd()
    os.chdir(root)
    sys.path.insert(0, str(root))
    try:
        from mutmut.configuration import reset_config
        reset_config()
        from mutmut.mutation.data import SourceFileMutationData
        from mutmut.mutation.diff_apply import get_diff_for_mutant
        from mutmut.utils.file_utils import walk_mutatable_files

        results = []
        for path in walk_mutatable_files():
            data = SourceFileMutationData(path=path)
            data.load()
            spans = function_spans(root / path)
            lines = (root / path).read_text().splitlines()
            for name, code in sorted(data.exit_code_by_key.items(), key=lambda kv: _mutant_sort_key(kv[0])):
                status = _status(code)
                rec = dict(file=str(path), mutant=name, status=status, exit_code=code,
                           duration=data.durations_by_key.get(name))
                if status != "killed":
                    try:
                        diff = get_diff_for_mutant(name, path=path)
                    except Exception as e:  # noqa: BLE001 - report, do not die
                        diff = f"(no diff: {e})"
                    func = name.rpartition(".")[2].rsplit("__mutmut_", 1)[0]
                    line = locate_line(diff, lines, spans.get(func))
                    rec.update(diff=diff, line=line, function=pretty_function(func),
                               original=[l[1:] for l in diff.splitlines() if l.startswith("-") and not l.startswith("---")],
                               mutated=[l[1:] for l in diff.splitlines() if l.startswith("+") and not l.startswith("+++")])
                if status == "survived":
                    rec["kind"] = survivor_kind(rec)
                results.append(rec)
        return results
    finally:
        os.chdir(here)
        sys.path.remove(str(root))


def _tokens(lines):
    """(type, text) tokens of some source lines, tolerating unclosed brackets."""
    import io
    import tokenize
    out = []
    try:
        for t in tokenize.generate_tokens(io.StringIO("\n".join(l.strip() for l in lines) + "\n").readline):
            if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                              tokenize.ENDMARKER, tokenize.COMMENT):
                out.append((t.type, t.string))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass  # a line cut out of a longer statement: the tokens so far
    return out


def survivor_kind(rec) -> str:
    """A triage hint for a surviving mutant, not a verdict.

    ``display``: in ``core/display.py`` (pictures); ``text``: only string
    literals differ between the original and the mutated lines (mostly
    message wording, but a changed key or mode string is text too, so read
    them); ``other``: everything else (read these one by one).
    """
    import tokenize
    if rec.get("file", "").endswith("core/display.py"):
        return "display"
    a, b = _tokens(rec.get("original") or []), _tokens(rec.get("mutated") or [])
    if a and b and len(a) == len(b) and a != b and all(
        x == y or (x[0] == y[0] == tokenize.STRING) for x, y in zip(a, b)
    ):
        return "text"
    return "other"


def pretty_function(mangled: str) -> str:
    """``x_name`` -> ``name``; ``x\u01c1Class\u01c1name`` -> ``Class.name``."""
    if mangled.startswith("x_"):
        return mangled[2:]
    if mangled.startswith("x\u01c1"):
        return mangled[2:].replace("\u01c1", ".")
    return mangled


def _mutant_sort_key(name: str):
    base, _, num = name.rpartition("__mutmut_")
    return (base, int(num) if num.isdigit() else 0)


def report(label, results, elapsed, tests, show_no_tests):
    counts = Counter(r["status"] for r in results)
    killed, survived = counts.get("killed", 0), counts.get("survived", 0)
    total = len(results)
    print()
    print("=" * 78)
    print(f"mutation testing: {label}")
    print(f"tests: {' '.join(tests)}")
    print(f"wall time: {elapsed / 60:.1f} min")
    print("-" * 78)
    print(f"total mutants   {total}")
    print(f"killed          {killed}")
    print(f"survived        {survived}")
    others = [s for s in counts if s not in ("killed", "survived")]
    for s in ("timeout", "suspicious", "skipped", "no tests", "segfault"):
        print(f"{s:<15} {counts.get(s, 0)}")
    for s in sorted(set(others) - {"timeout", "suspicious", "skipped", "no tests", "segfault"}):
        print(f"{s:<15} {counts[s]}")
    score = killed / (killed + survived) if killed + survived else float("nan")
    print(f"score           {score:.1%}  (killed / (killed + survived))")
    nt = counts.get("no tests", 0)
    if nt:
        s2 = killed / (killed + survived + nt)
        print(f"score, counting 'no tests' as survivors: {s2:.1%}")
    kinds = Counter(r.get("kind") or survivor_kind(r) for r in results if r["status"] == "survived")
    if kinds:
        print("survivors by kind (a hint; read them): "
              + ", ".join(f"{k} {kinds[k]}" for k in ("other", "text", "display") if kinds.get(k)))
    by_file = defaultdict(list)
    for r in results:
        if r["status"] in ("survived", "timeout", "suspicious", "segfault") or (
            r["status"] == "no tests" and show_no_tests
        ):
            by_file[r["file"]].append(r)
    if by_file:
        print()
        print("surviving (and timeout / suspicious) mutants, by file:")
    for f in sorted(by_file):
        print()
        print(f"## {f}  ({sum(r['status'] == 'survived' for r in by_file[f])} survived)")
        for r in sorted(by_file[f], key=lambda r: (r["line"] or 0, _mutant_sort_key(r["mutant"]))):
            tag = f" <{r.get('kind') or survivor_kind(r)}>" if r["status"] == "survived" else f" [{r['status']}]"
            print(f"  {f}:{r['line']}  {r['function']}  ({r['mutant'].rpartition('.')[2]}){tag}")
            for o in r["original"]:
                print(f"      - {o.strip()}")
            for m in r["mutated"]:
                print(f"      + {m.strip()}")
    if nt and not show_no_tests:
        funcs = Counter(r["mutant"].rpartition(".")[0] + "."
                        + pretty_function(r["mutant"].rpartition(".")[2].rsplit("__mutmut_", 1)[0])
                        for r in results if r["status"] == "no tests")
        print()
        print("functions no selected test calls ('no tests' mutants; --show-no-tests for diffs):")
        for fn, n in sorted(funcs.items()):
            print(f"  {fn}: {n}")
    print("=" * 78)
    return dict(target=label, tests=tests, elapsed_s=round(elapsed, 1), total=total, killed=killed,
                survived=survived, counts=dict(counts), score=score)


# --------------------------------------------------------------------------


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        import mutmut  # noqa: F401
        from importlib.metadata import version
        mv = version("mutmut")
    except ImportError:
        sys.exit("error: mutmut is not installed here: .venv/bin/pip install 'mutmut>=3.8,<4'")
    if not mv.startswith("3."):
        sys.exit(f"error: this script drives mutmut 3.x, found {mv}")
    if args.max_children < 1:
        sys.exit("error: --max-children must be at least 1")

    label, mutate, exclude, default_tests = resolve_target(args.target)
    tests = shlex.split(args.tests) if args.tests else default_tests

    python = sys.executable
    start = time.time()
    root = Path(tempfile.mkdtemp(prefix="segqual-mutation-", dir="/tmp"))
    mongod = None
    code = 0
    print(f"mutmut {mv}: {label} -> {', '.join(mutate)}" + (f" (not {', '.join(exclude)})" if exclude else ""))
    print(f"tests: {' '.join(tests)}")
    print(f"copy: {root}" + (f" (files of {args.ref})" if args.ref else " (working tree, with untracked files)"))
    try:
        n = make_copy(root, args.ref)
        print(f"copied {n} files")
        tests, dropped = existing_tests(tests, root)
        for d in dropped:
            print(f"note: skipping missing test path {d}")
        if not any(not a.startswith("-") for a in tests):
            raise RuntimeError("no existing test path in the selection")
        names = function_globs(args.functions, module_names(root, mutate, exclude)) if args.functions else []
        if args.functions:
            label += f" [{args.functions}]"
        (root / "mutants").mkdir()  # so the PYTHONPATH entry below exists from the start
        env = dict(os.environ)
        env.update(
            SEGQUAL_SHARED_DATA=os.environ.get("SEGQUAL_SHARED_DATA", SHARED_DATA_DEFAULT),
            PYTHONPATH=str(root / "mutants") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""),
            FIFTYONE_DO_NOT_TRACK="true",
            PYTHONDONTWRITEBYTECODE="1",
            OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
        )
        env.pop("MUTANT_UNDER_TEST", None)
        needs_db = not all(a.startswith("-") or a.startswith("tests/core") or a.startswith("tests/writers")
                           or a.startswith("tests/reliability/test_properties") for a in tests)
        if needs_db:
            mongod, uri = start_mongod(python, root / ".mutation-db")
            env["FIFTYONE_DATABASE_URI"] = uri
            env["FIFTYONE_DATABASE_NAME"] = "segqual-mutation"
            print(f"private mongod at {uri} (pid {mongod.pid})")
        print("clean run of the selected tests ...", flush=True)
        extra, failing, secs = preflight(python, root, env, tests)
        print(f"  {secs:.0f} s" + (f"; {len(failing)} failing without mutation, left out:" if failing else ""))
        for f in failing:
            print(f"    {f}")
        tests = tests + extra
        write_mutmut_config(root, mutate, exclude, tests, args.timeout_multiplier, args.debug)
        log_path = root / "mutmut-run.log"
        limit = max(args.time_limit * 60 - (time.time() - start), 1.0) if args.time_limit else None
        rc = run_mutmut(python, root, env, args.max_children, log_path, names, limit)
        elapsed = time.time() - start
        if rc != 0:
            print(f"mutmut exited with {rc}; last lines of its log:", file=sys.stderr)
            text = log_path.read_text(errors="replace").replace("\r", "\n")
            print("\n".join([l for l in text.splitlines() if l.strip()][-40:]), file=sys.stderr)
            code = 2
        results = collect_results(root)
        if names:
            results = [r for r in results if any(fnmatch.fnmatch(r["mutant"], g) for g in names)]
        if not any(r["status"] != "not checked" for r in results):
            print("no mutants were tested", file=sys.stderr)
            code = 2
        else:
            summary = report(label, results, elapsed, tests, args.show_no_tests)
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(dict(summary, mutmut=mv, mutants=results), f, indent=1, default=str)
                print(f"results written to {args.json}")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        code = 2
    finally:
        stop_process(mongod)
        if args.keep:
            print(f"kept: {root}  (mutants/ and mutmut-run.log inside; cd there and run "
                  f"{python} -m mutmut show NAME / browse)")
        else:
            shutil.rmtree(root, ignore_errors=True)
        if (REPO / "mutants").exists():
            print(f"warning: {REPO / 'mutants'} exists (not made by this script?)", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
