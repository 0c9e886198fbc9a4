"""Repository promises: CI runs exactly the README's test command."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _readme_commands():
    text = open(os.path.join(ROOT, "README.md")).read()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [line.strip() for b in blocks for line in b.splitlines() if line.strip().startswith("python3 -m venv")]


def test_ci_runs_the_readme_test_command():
    commands = _readme_commands()
    tests = [c for c in commands if "pytest" in c]
    assert len(tests) == 1, commands
    ci = open(os.path.join(ROOT, ".ci", "run")).read().splitlines()
    assert tests[0] in [line.strip() for line in ci]
    assert os.access(os.path.join(ROOT, ".ci", "run"), os.X_OK)


def test_readme_main_job_is_the_demo():
    main = [c for c in _readme_commands() if "pytest" not in c]
    assert len(main) == 1 and main[0].endswith("segqual demo")
