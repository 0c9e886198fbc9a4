"""Fixtures for the plugin tests: real datasets in the embedded database,
the plugin found through FIFTYONE_PLUGINS_DIR.

FiftyOne reads FIFTYONE_PLUGINS_DIR into ``fo.config.plugins_dir`` when it is
first imported, so it is set here before the import below; when another
conftest imported FiftyOne first, the live config is updated as well.
Subprocesses (the App server of the browser test) inherit the variable.
"""

import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGINS_DIR = os.path.join(REPO, "plugins")
os.environ["FIFTYONE_PLUGINS_DIR"] = PLUGINS_DIR
if "fiftyone" in sys.modules:
    sys.modules["fiftyone"].config.plugins_dir = PLUGINS_DIR

import fiftyone as fo  # noqa: E402

from segqual_fo.demo import CLASSES, build_demo_files  # noqa: E402

PLUGIN = "@segqual/label-quality"
NUM_SAMPLES = 8


def uri(name):
    """The URI of one of the plugin's operators or panels."""
    return "%s/%s" % (PLUGIN, name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Exposes each phase's report as ``item.rep_<phase>`` so fixtures can
    react to a failed test (the browser test saves a screenshot)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


@pytest.fixture(scope="session")
def demo_records(tmp_path_factory):
    """Images, label masks and float16 probabilities of 8 synthetic scenes
    with planted annotation errors (read-only inputs, shared by all tests)."""
    return build_demo_files(str(tmp_path_factory.mktemp("segqual_demo")), NUM_SAMPLES, seed=0)


def add_demo_samples(dataset, records):
    """The way ``segqual demo`` loads the files (cli.cmd_demo)."""
    dataset.add_samples(
        [
            fo.Sample(
                filepath=r["filepath"],
                ground_truth=fo.Segmentation(mask_path=r["mask_path"]),
                pred_probs_path=r["probs_path"],
                planted=r["planted"] is not None,
            )
            for r in records
        ],
        progress=False,
    )
    dataset.mask_targets = {"ground_truth": dict(enumerate(CLASSES))}
    return dataset


@pytest.fixture
def demo_dataset(make_dataset, demo_records):
    return add_demo_samples(make_dataset("segqual-plugin-test"), demo_records)


@pytest.fixture
def scored_dataset(demo_dataset, tmp_path):
    """The demo dataset scored with the library (softmin, defaults)."""
    from segqual_fo import compute_label_quality

    compute_label_quality(
        demo_dataset, "ground_truth", probs_field="pred_probs_path", output_dir=str(tmp_path / "out"), progress=False
    )
    return demo_dataset
