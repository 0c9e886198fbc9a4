"""Scoring from a model on a Dask cluster: each worker builds the model
once from a picklable recipe (LazyModel), and the results are identical to
the single-process run."""

import os
from collections import Counter

import pytest

from segqual_fo import LazyModel, compute_label_quality, onnx_model
from segqual_fo.errors import InvalidInputError
from tests.dask.test_distributed import assert_same_outputs
from tests.fo.test_model_path import _dataset
from tests.model_nets import build_logged_onnx, make_conv_net

pytest.importorskip("onnxruntime")


class Heavy:
    """A model that carries its weights when pickled."""

    def __init__(self):
        self.weights = bytes(3 << 20)

    def __call__(self, images):
        return images


@pytest.mark.parametrize("method, downsample", [("softmin", 1), ("num_pixel_issues", 1), ("num_pixel_issues", 2)])
def test_model_on_cluster_equals_single_process(dask_client, make_dataset, tmp_path, rng, method, downsample):
    ds = _dataset(make_dataset(), tmp_path, rng, n=9)
    net = make_conv_net(str(tmp_path / "net.onnx"), k=4, stride=4)
    log = tmp_path / "builds"
    log.mkdir()
    common = dict(method=method, downsample=downsample, logits=True, output_dir=str(tmp_path / "out"), progress=False)
    compute_label_quality(ds, "gt", model=onnx_model(net), score_field="local", **common)
    model = LazyModel(build_logged_onnx, net, str(log))
    res = compute_label_quality(
        ds, "gt", model=model, score_field="dask", executor=dask_client, shard_size=2, batch_size=2, **common
    )
    assert res.num_scored == len(ds)
    assert_same_outputs(ds, "local", "dask")
    builds = Counter(name.split("-")[0] for name in os.listdir(log))
    # once per process: this one (it reads K from the network) and each worker that ran a task
    assert set(builds.values()) == {1}
    assert str(os.getpid()) in builds and len(builds) <= 3


def test_model_for_cluster_must_pickle_small(dask_client, make_dataset, tmp_path, rng):
    ds = _dataset(make_dataset(), tmp_path, rng, n=2)
    with pytest.raises(InvalidInputError, match="must be picklable.*LazyModel"):
        compute_label_quality(ds, "gt", model=lambda images: images, executor=dask_client)

    with pytest.raises(InvalidInputError, match=r"pickles to 3\.0 MiB.*LazyModel"):
        compute_label_quality(ds, "gt", model=Heavy(), executor=dask_client)
    assert not ds.has_field("label_quality")
