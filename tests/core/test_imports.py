"""The core stays importable and fast without FiftyOne."""

import subprocess
import sys


def _modules_after(statement):
    code = f"import sys; {statement}; print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('fiftyone', 'cleanlab', 'pandas', 'cv2', 'matplotlib'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def test_import_package_loads_no_fiftyone():
    assert _modules_after("import segqual_fo") == []


def test_import_core_loads_no_fiftyone():
    assert _modules_after("import segqual_fo.core; from segqual_fo.core import *") == []


def test_lazy_pipeline_name_is_listed():
    import segqual_fo

    assert "compute_label_quality" in dir(segqual_fo)
