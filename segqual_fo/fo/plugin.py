"""Installing the ``@segqual/label-quality`` App plugin where FiftyOne looks.

The plugin ships inside the package (``segqual_fo/_plugin`` in a wheel; in
a source checkout it is ``plugins/label-quality``, mapped to that name by
``pyproject.toml``). FiftyOne loads plugins from one directory,
``fo.config.plugins_dir`` (``FIFTYONE_PLUGINS_DIR``). :func:`install_plugin`
puts the plugin there, the way ``fiftyone plugins download`` does for a
plugin from a repository: a symbolic link for a source checkout (edits take
effect at once), a copy for an installed wheel. Other plugins in that
directory are left alone.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from typing import Optional

from segqual_fo.errors import InvalidInputError

#: The plugin's name (fiftyone.yml) and its directory name when installed.
PLUGIN_NAME = "@segqual/label-quality"
INSTALL_NAME = "segqual-label-quality"


def plugin_source() -> str:
    """The directory of the plugin that ships with this package."""
    spec = importlib.util.find_spec("segqual_fo._plugin")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidInputError(
            "the label-quality plugin is not part of this installation of segqual_fo; reinstall the package."
        )
    return os.path.realpath(list(spec.submodule_search_locations)[0])


def _is_source_checkout(path: str) -> bool:
    parts = set(os.path.normpath(path).split(os.sep))
    return not parts & {"site-packages", "dist-packages"}


def _is_our_plugin(path: str) -> bool:
    """Whether ``path`` holds a plugin named :data:`PLUGIN_NAME`."""
    import yaml  # FiftyOne's dependency, as the plugin manifest's reader

    try:
        with open(os.path.join(path, "fiftyone.yml"), encoding="utf-8") as f:
            manifest = yaml.safe_load(f)
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(manifest, dict) and manifest.get("name") == PLUGIN_NAME


def install_plugin(directory: Optional[str] = None, *, link: Optional[bool] = None) -> str:
    """Installs the plugin into ``directory`` (default: FiftyOne's
    ``fo.config.plugins_dir``, created if needed); returns the installed
    plugin's path.

    Args:
        directory (None): a plugins directory
        link (None): symlink (True) or copy (False); default: a link for a
            source checkout, a copy for an installed package

    Raises:
        InvalidInputError: the target exists and is not this plugin
    """
    if directory is None:
        import fiftyone as fo

        directory = fo.config.plugins_dir
        if not directory:
            raise InvalidInputError("FiftyOne has no plugins directory configured; pass a directory.")
    source = plugin_source()
    if link is None:
        link = _is_source_checkout(source)
    directory = os.path.abspath(os.path.expanduser(directory))
    os.makedirs(directory, exist_ok=True)
    target = os.path.join(directory, INSTALL_NAME)
    if os.path.lexists(target):
        if os.path.islink(target):
            if os.path.realpath(target) == source and link:
                return target  # already linked here
            os.unlink(target)
        elif _is_our_plugin(target):
            shutil.rmtree(target)
        else:
            raise InvalidInputError(f"{target} exists and is not the {PLUGIN_NAME} plugin; move it away first.")
    if link:
        os.symlink(source, target, target_is_directory=True)
        return target
    staging = tempfile.mkdtemp(prefix=f".{INSTALL_NAME}-", dir=directory)
    try:
        shutil.copytree(source, os.path.join(staging, "p"), ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        os.replace(os.path.join(staging, "p"), target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def installed_plugin(directory: Optional[str] = None) -> Optional[str]:
    """The path of this plugin in ``directory`` (default: FiftyOne's plugins
    directory) if it is installed there, else None."""
    if directory is None:
        import fiftyone as fo

        directory = fo.config.plugins_dir
    if not directory or not os.path.isdir(directory):
        return None
    for root, dirs, files in os.walk(directory, followlinks=True):
        if "fiftyone.yml" in files and _is_our_plugin(root):
            return root
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
    return None

