"""segqual_fo: find wrong labels in semantic-segmentation datasets and curate
them in FiftyOne.

``import segqual_fo`` is cheap: the FiftyOne layer is imported on first use
of the names that need it.

Layers (imports go downward only)::

    cli, report, demo, plugin      front ends
    segqual_fo.fo                  FiftyOne: inputs, write-back, runs, queries
    segqual_fo.execution           the per-image job; threads or Dask (no FiftyOne)
    segqual_fo.adapters / writers  files and formats <-> arrays
    segqual_fo.core                numpy-only scoring

``segqual_fo.options`` holds the rules of every user-facing option (used by
the library, the CLI and the plugin form).
"""

__version__ = "0.1.0"

_LAZY = {
    "compute_label_quality": "segqual_fo.fo.compute",
    "LabelQualityResults": "segqual_fo.fo.compute",
    "upgrade_runs": "segqual_fo.fo.runs",
    "install_plugin": "segqual_fo.fo.plugin",
    "save_probabilities": "segqual_fo.fo.save",
    "fiftyone_model": "segqual_fo.fo.models",
    "LazyModel": "segqual_fo.adapters.models",
    "review_progress": "segqual_fo.fo.review",
    "mark_regions": "segqual_fo.fo.review",
    "onnx_model": "segqual_fo.adapters.onnx",
    "fix_regions": "segqual_fo.fo.fix",
    "FixResults": "segqual_fo.fo.fix",
}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'segqual_fo' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
