"""The ONNX adapter's documented behaviour, pinned where the mutation run of
segqual_fo/adapters/onnx.py found it unchecked (verdicts in
.ci/mutation-verdicts/adapters-onnx.md): every argument of
:func:`onnx_model` reaches the network (input_size resize, mean/std/scale,
output_name, providers, threads), fixed-size and float16 networks, images of
mixed sizes, and the errors that name the file, provider or output.

Expected outputs come from numpy: the networks' weights are known
(``tests.model_nets.conv_weights``) and the preprocessing is the documented
``(pixel * scale - mean) / std``. Resizes are checked with images made of
2x2 blocks of one colour, whose bilinear half-size resize is exactly the
image of the blocks.
"""

import os
import re
import sys

import numpy as np
import pytest

from segqual_fo.adapters.onnx import OnnxModel, onnx_model
from segqual_fo.errors import InvalidFileError, InvalidInputError
from tests.model_nets import conv_weights, make_conv_net

pytest.importorskip("onnxruntime")  # in the dev extra; under CI=true a skip is a failure
pytest.importorskip("onnx")

K = 4
STRIDE = 4


def _expected(image, *, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), scale=1 / 255, float16=False):
    """The conv net's logits (K, H/4, W/4) for one HxWx3 uint8 image, in
    float64, from the documented preprocessing."""
    w, b = conv_weights(K, STRIDE, 0)
    x = image.astype(np.float64).transpose(2, 0, 1) * scale
    x = (x - np.asarray(mean)[:, None, None]) / np.asarray(std)[:, None, None]
    if float16:
        x = x.astype(np.float16).astype(np.float64)
    c, hh, ww = x.shape
    oh, ow = hh // STRIDE, ww // STRIDE
    patches = x[:, : oh * STRIDE, : ow * STRIDE].reshape(c, oh, STRIDE, ow, STRIDE)
    return np.einsum("kcij,cyixj->kyx", w.astype(np.float64), patches) + b[:, None, None]


def _blocks(small):
    """``small`` with every pixel a 2x2 block: its half-size bilinear resize is ``small``."""
    return np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)


def _save(model, path):
    import onnx

    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _conv_initializers():
    """The conv net's weights W and bias B, as graph initialisers."""
    from onnx import numpy_helper

    w, b = conv_weights(K, STRIDE, 0)
    return [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")]


def make_two_output_net(path):
    """The conv net with a first output 'negated' (-logits) before its
    'logits' output."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])
    neg = helper.make_tensor_value_info("negated", TensorProto.FLOAT, ["N", K, "h", "w"])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", K, "h", "w"])
    nodes = [
        helper.make_node("Conv", ["image", "W", "B"], ["logits"], kernel_shape=[STRIDE] * 2, strides=[STRIDE] * 2),
        helper.make_node("Neg", ["logits"], ["negated"]),
    ]
    graph = helper.make_graph(nodes, "two", [x], [neg, y], initializer=_conv_initializers())
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def make_float16_net(path):
    """The conv net taking a float16 input (cast to float32 inside)."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("image", TensorProto.FLOAT16, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", K, "h", "w"])
    nodes = [
        helper.make_node("Cast", ["image"], ["image32"], to=TensorProto.FLOAT),
        helper.make_node("Conv", ["image32", "W", "B"], ["logits"], kernel_shape=[STRIDE] * 2, strides=[STRIDE] * 2),
    ]
    graph = helper.make_graph(nodes, "half", [x], [y], initializer=_conv_initializers())
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def make_class_map_net(path):
    """The conv net, fixed to 16x24 inputs, that outputs the argmax class
    map (N, 4, 6) instead of class scores: it declares no K."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 16, 24])
    y = helper.make_tensor_value_info("classes", TensorProto.INT64, ["N", 4, 6])
    nodes = [
        helper.make_node("Conv", ["image", "W", "B"], ["logits"], kernel_shape=[STRIDE] * 2, strides=[STRIDE] * 2),
        helper.make_node("ArgMax", ["logits"], ["classes"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(nodes, "classmap", [x], [y], initializer=_conv_initializers())
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def make_rank3_net(path):
    """A network whose one input is 3-D (not an (N, 3, H, W) image batch)."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [3, "H", "W"])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [3, "H", "W"])
    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["out"])], "rank3", [x], [y])
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


@pytest.fixture
def net(tmp_path):
    return make_conv_net(str(tmp_path / "net.onnx"), k=K, stride=STRIDE)


@pytest.fixture
def images(rng):
    """A 32x48 image of 2x2 blocks (resized to 16x24: its blocks), the 16x24
    image of its blocks, and another 16x24 image."""
    small = rng.integers(0, 256, size=(16, 24, 3), dtype=np.uint8)
    other = rng.integers(0, 256, size=(16, 24, 3), dtype=np.uint8)
    return _blocks(small), small, other


# ------------------------------------------------------------ preprocessing


def test_input_size_mean_std_and_scale_reach_the_network(net, images):
    """input_size=(H, W) resizes (bilinear) what is not that size already;
    every pixel becomes (pixel * scale - mean) / std per channel."""
    big, small, other = images
    pre = {"mean": (0.5, 0.4, 0.3), "std": (0.2, 0.25, 0.5), "scale": 1 / 127.5}
    model = onnx_model(net, input_size=(16, 24), **pre)
    out = model([big, other, small])
    assert [o.shape for o in out] == [(K, 4, 6)] * 3
    np.testing.assert_allclose(out[0], _expected(small, **pre), atol=1e-4)
    np.testing.assert_allclose(out[1], _expected(other, **pre), atol=1e-4)
    np.testing.assert_allclose(out[2], _expected(small, **pre), atol=1e-4)
    assert model.input_size == (16, 24)


def test_a_fixed_size_network_gets_its_own_size(tmp_path, images):
    """A network that declares its input size (16, 24): images of other
    sizes are resized to it, the others pass as they are."""
    big, small, other = images
    fixed = make_conv_net(str(tmp_path / "fixed.onnx"), k=K, stride=STRIDE, fixed_size=(16, 24))
    model = onnx_model(fixed)
    out = model([big, other])
    np.testing.assert_allclose(out[0], _expected(small), atol=1e-4)
    np.testing.assert_allclose(out[1], _expected(other), atol=1e-4)
    assert model.input_size == (16, 24) and model.num_classes == K


def test_images_of_mixed_sizes_without_input_size(net, rng):
    """A network of any input size: each image is run at its own size, in
    input order."""
    a = rng.integers(0, 256, size=(32, 40, 3), dtype=np.uint8)
    b = rng.integers(0, 256, size=(16, 24, 3), dtype=np.uint8)
    c = rng.integers(0, 256, size=(32, 40, 3), dtype=np.uint8)
    out = onnx_model(net)([a, b, c])
    assert [o.shape for o in out] == [(K, 8, 10), (K, 4, 6), (K, 8, 10)]
    for o, im in zip(out, [a, b, c]):
        np.testing.assert_allclose(o, _expected(im), atol=1e-4)


def test_a_float16_network_gets_float16_input(tmp_path, rng):
    half = make_float16_net(str(tmp_path / "half.onnx"))
    img = rng.integers(0, 256, size=(16, 24, 3), dtype=np.uint8)
    pre = {"mean": (0.5, 0.4, 0.3), "std": (0.2, 0.25, 0.5)}
    out = onnx_model(half, **pre)([img])
    # the input rounded to float16 (a float32 input would be refused by onnxruntime)
    np.testing.assert_allclose(out[0], _expected(img, float16=True, **pre), atol=5e-3)


# ------------------------------------------------------------ outputs


def test_output_name_picks_the_output(tmp_path, rng):
    two = make_two_output_net(str(tmp_path / "two.onnx"))
    img = rng.integers(0, 256, size=(16, 24, 3), dtype=np.uint8)
    np.testing.assert_allclose(onnx_model(two, output_name="logits")([img])[0], _expected(img), atol=1e-4)
    # without it, the first output
    np.testing.assert_allclose(onnx_model(two)([img])[0], -_expected(img), atol=1e-4)


def test_num_classes_is_none_when_the_output_is_not_class_scores(tmp_path, net):
    """num_classes is K only when the output is (N, K, h, w) with K fixed."""
    class_map = make_class_map_net(str(tmp_path / "classmap.onnx"))
    assert onnx_model(class_map).num_classes is None
    assert onnx_model(net).num_classes == K


def test_the_model_keeps_its_absolute_path(net, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = onnx_model("net.onnx")
    assert model.path == os.path.abspath(net)


# ------------------------------------------------------------ onnxruntime settings


def test_unknown_providers_are_refused_by_name(net):
    """onnxruntime itself would fall back to the CPU with a warning."""
    model = onnx_model(net, providers=["NoSuchExecutionProvider"])
    with pytest.raises(InvalidInputError, match=r"\['NoSuchExecutionProvider'\] are not available"):
        model.build()


def test_one_provider_may_be_a_string(net):
    """Not split into letters (which were then refused one by one)."""
    model = onnx_model(net, providers="CPUExecutionProvider")
    assert model.session.get_providers() == ["CPUExecutionProvider"]
    with pytest.raises(InvalidInputError, match=r"\['NoSuchExecutionProvider'\] are not available"):
        onnx_model(net, providers="NoSuchExecutionProvider").build()


def test_the_providers_asked_for_run_the_network(net):
    import onnxruntime as ort

    others = [p for p in ort.get_available_providers() if p != "CPUExecutionProvider"]
    if not others:
        pytest.skip("this onnxruntime has no provider other than the CPU's")
    model = onnx_model(net, providers=[others[0], "CPUExecutionProvider"])
    assert model.session.get_providers() == [others[0], "CPUExecutionProvider"]


def test_threads_reach_the_session(net):
    model = onnx_model(net, threads=1)
    assert model.session.get_session_options().intra_op_num_threads == 1


# ------------------------------------------------------------ errors name the file, provider, output


def test_a_missing_file_is_named(tmp_path, net):
    missing = str(tmp_path / "missing.onnx")
    with pytest.raises(InvalidFileError, match=re.escape(f"ONNX model {missing} does not exist")):
        onnx_model(missing)
    # a file gone by the first use (a Dask worker that does not see it)
    model = onnx_model(net)
    os.remove(net)
    with pytest.raises(InvalidFileError, match=re.escape(f"ONNX model {net} does not exist")):
        model.build()


def test_an_unloadable_file_is_named(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"garbage")
    with pytest.raises(InvalidFileError, match=re.escape(f"cannot load ONNX model {broken}")):
        onnx_model(str(broken)).build()


def test_a_network_without_an_image_batch_input_is_refused(tmp_path):
    rank3 = make_rank3_net(str(tmp_path / "rank3.onnx"))
    with pytest.raises(InvalidInputError, match=re.escape(f"ONNX model {rank3} must take one (N, 3, H, W) image input")):
        OnnxModel(rank3)


def test_an_unknown_output_name_is_named(net):
    with pytest.raises(InvalidInputError, match=re.escape("has no output 'scores'; it has ['logits']")):
        onnx_model(net, output_name="scores").build()


def test_without_onnxruntime_the_error_says_how_to_install_it(net, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises ImportError
    with pytest.raises(InvalidInputError, match=re.escape("pip install 'segqual-fo[onnx]'")):
        OnnxModel(net)
