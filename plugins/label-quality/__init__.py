"""FiftyOne plugin ``@segqual/label-quality``.

Operators (see ``operators.py``):

- ``compute_label_quality``: score a dataset, view or selection with
  ``segqual_fo.compute_label_quality`` (immediate or delegated, with
  progress);
- ``sort_by_label_quality``: show the worst-scored images first;
- ``tag_label_issues``: tag the worst images (and their issue regions);
- ``fix_label_regions``: write a corrected copy of the labels, the chosen
  issue regions relabelled with the model's class (``segqual_fo.fix_regions``).

Run lifecycle operators (see ``run_operators.py``), listing segqual runs
only: ``get_label_quality_info``, ``rename_label_quality_run`` and
``delete_label_quality_run`` (fields and PNG files follow the run).

Panel (see ``panel.py``): ``label_quality_panel``, a score histogram and the
given-vs-predicted class confusion table of a run, both clickable.

The plugin ships inside the ``segqual_fo`` package; ``segqual plugin
install [--dir DIR]`` puts it where FiftyOne looks (``segqual app`` does it
for you). The App server's Python must be able to import ``segqual_fo``:
the plugin only builds forms and calls the library.
"""

import sys

# FiftyOne re-executes this file when the plugin directory changes, but
# would keep serving the submodules it imported the first time: drop them so
# edits take effect without restarting the App server.
for _name in ("operators", "run_operators", "panel"):
    sys.modules.pop("%s.%s" % (__name__, _name), None)

from .operators import ComputeLabelQuality, SortByLabelQuality, TagLabelIssues  # noqa: E402
from .operators import FixLabelRegions  # noqa: E402
from .panel import LabelQualityPanel  # noqa: E402
from .run_operators import DeleteLabelQualityRun, GetLabelQualityInfo, RenameLabelQualityRun  # noqa: E402


def register(p):
    p.register(ComputeLabelQuality)
    p.register(SortByLabelQuality)
    p.register(TagLabelIssues)
    p.register(FixLabelRegions)
    p.register(GetLabelQualityInfo)
    p.register(RenameLabelQualityRun)
    p.register(DeleteLabelQualityRun)
    p.register(LabelQualityPanel)
