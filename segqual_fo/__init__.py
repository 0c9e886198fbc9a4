"""segqual_fo: find wrong labels in semantic-segmentation datasets and curate
them in FiftyOne.

``import segqual_fo`` is cheap: the FiftyOne layer is imported on first use
of the names that need it.
"""

__version__ = "0.1.0"

_LAZY = {
    "compute_label_quality": "segqual_fo.pipeline",
}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'segqual_fo' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
