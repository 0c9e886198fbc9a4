"""Small real models for the tests: ONNX networks built with the ``onnx``
package (run by onnxruntime), and the numpy twin of each, to compute the
expected outputs independently.

``make_conv_net(path, k, stride)``: one convolution with a ``stride x
stride`` kernel and stride (so the output is at 1/stride of the input, like
a segmentation backbone's), weights from a seed; outputs logits
(N, K, H/stride, W/stride). ``conv_net_numpy`` computes the same in numpy.
"""

from __future__ import annotations

import numpy as np


def conv_weights(k: int, stride: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 2.0, size=(k, 3, stride, stride)).astype(np.float32)
    b = rng.normal(0, 0.5, size=(k,)).astype(np.float32)
    return w, b


def make_conv_net(path: str, k: int = 4, stride: int = 4, seed: int = 0, *, fixed_size=None, opset: int = 13) -> str:
    """Writes the network to ``path``; ``fixed_size=(H, W)`` declares a
    fixed input size (else height and width are dynamic)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w, b = conv_weights(k, stride, seed)
    h, wd = fixed_size if fixed_size is not None else ("H", "W")
    oh, ow = (h // stride, wd // stride) if fixed_size is not None else ("h", "w")
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, h, wd])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", k, oh, ow])
    conv = helper.make_node("Conv", ["image", "W", "B"], ["logits"], kernel_shape=[stride, stride], strides=[stride, stride])
    graph = helper.make_graph(
        [conv], "segnet", [x], [y], initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def conv_net_numpy(image: np.ndarray, k: int = 4, stride: int = 4, seed: int = 0) -> np.ndarray:
    """The network's logits for one HxWx3 uint8 image (input scaled to
    [0, 1]), in float64: (K, H/stride, W/stride)."""
    w, b = conv_weights(k, stride, seed)
    x = image.astype(np.float64).transpose(2, 0, 1) / 255.0
    c, hh, ww = x.shape
    oh, ow = hh // stride, ww // stride
    patches = x[:, : oh * stride, : ow * stride].reshape(c, oh, stride, ow, stride)
    return np.einsum("kcij,cyixj->kyx", w.astype(np.float64), patches) + b[:, None, None]


def build_logged_onnx(path: str, log_dir: str):
    """A model factory for :class:`~segqual_fo.adapters.models.LazyModel`
    that leaves a file per build (named by process id and a counter), so a
    test can count the builds in each process (Dask workers included)."""
    import os
    import uuid

    from segqual_fo.adapters.onnx import OnnxModel

    with open(os.path.join(log_dir, f"{os.getpid()}-{uuid.uuid4().hex[:8]}"), "w"):
        pass
    return OnnxModel(path)
