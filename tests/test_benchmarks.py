"""The benchmarks run, and what they measure is what their docs say.

``benchmarks/bench_model.py``: its hand-set ONNX network is the documented
nearest-colour classifier (logits = -beta * squared colour distance, up to a
per-pixel constant), its width does not change the function, its data has
planted errors exactly where recorded, its statistics are right, and the
script runs end to end (at a tiny size: two fresh FiftyOne workers are most
of the time).
"""

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from benchmarks import bench_model as bm  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(path, images):
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = np.stack(images).astype(np.float32).transpose(0, 3, 1, 2) / np.float32(255)
    return sess.run(None, {"image": x})[0]


@pytest.mark.parametrize("width,stride", [(1, 4), (2, 8)])
def test_network_logits_are_minus_beta_squared_colour_distance(tmp_path, width, stride):
    path = bm.build_network(str(tmp_path / "net.onnx"), width=width, stride=stride)
    colours = [bm.PALETTE[13], bm.PALETTE[15], np.array([30, 200, 90], dtype=np.uint8)]
    out = _run(path, [np.broadcast_to(c, (32, 64, 3)).copy() for c in colours])
    assert out.shape == (3, bm.K, 32 // stride, 64 // stride)
    c = bm.PALETTE.astype(np.float64) / 255
    for colour, logits in zip(colours, out):
        x = colour.astype(np.float64) / 255
        expected = -bm.BETA * ((x - c) ** 2).sum(axis=1) + bm.BETA * (x @ x)  # the constant: softmax ignores it
        np.testing.assert_allclose(logits, np.broadcast_to(expected[:, None, None], logits.shape), atol=1e-3)
    assert out[0].argmax(axis=0).tolist() == np.full((32 // stride, 64 // stride), 13).tolist()


def test_network_width_changes_the_cost_not_the_function(tmp_path):
    rng = np.random.default_rng(0)
    truth, _ = bm.make_scene(rng, 64, 128)
    image = bm.render(rng, truth)
    narrow = _run(bm.build_network(str(tmp_path / "a.onnx"), width=1), [image])
    wide = _run(bm.build_network(str(tmp_path / "b.onnx"), width=3), [image])
    np.testing.assert_allclose(narrow, wide, atol=2e-3)
    assert bm.network_macs(bm.Config(width=3)) > 5 * bm.network_macs(bm.Config(width=1))


def test_data_has_planted_errors_exactly_where_recorded_and_the_network_sees_the_truth(tmp_path):
    import cv2

    cfg = bm.Config(n=10, h=128, w=256)
    records = bm.write_data(str(tmp_path), cfg, seed=3)
    assert sum(r["planted"] > 0 for r in records) == round(bm.ERROR_RATE * cfg.n)
    net = bm.build_network(str(tmp_path / "net.onnx"), width=1)
    correct = 0
    for r in records:
        mask = cv2.imread(r["mask_path"], cv2.IMREAD_UNCHANGED)
        truth = cv2.imread(r["truth_path"], cv2.IMREAD_UNCHANGED)
        wrong = int((mask != truth).sum())
        if r["planted"]:
            assert wrong >= bm.MIN_ERROR_SHARE * cfg.h * cfg.w
        else:
            assert wrong == 0
        image = cv2.imread(r["filepath"])[:, :, ::-1]
        pred = _run(net, [image])[0].argmax(axis=0)
        correct += int((pred == truth[2::4, 2::4]).sum())
    assert correct / (cfg.n * pred.size) > 0.85  # errors only along boundaries and between close colours


def test_statistics():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    a = rng.integers(0, 6, size=40).astype(float)  # many ties
    b = a + rng.normal(0, 2, size=40)
    assert bm.spearman(a, b) == pytest.approx(scipy_stats.spearmanr(a, b)[0], abs=1e-12)
    assert bm.worst(np.array([0.5, 0.1, 0.1, 0.9]), 2).tolist() == [1, 2]
    c = bm.compare_scores({"x": 0.2, "y": 0.9, "z": 0.5}, {"x": 0.25, "y": 1.0, "z": 0.4}, {"x": 1, "y": 0, "z": 0})
    assert c["max_abs_diff"] == pytest.approx(0.1) and c["worst_m"] == 1 and c["worst_overlap"] == 1
    assert c["planted_in_worst_model"] == 1 and c["perfect_stored"] == 1


@pytest.mark.slow
def test_bench_model_runs_end_to_end():
    env = dict(os.environ, PYTHONPATH=ROOT, FIFTYONE_DATABASE_VALIDATION="false")
    cmd = [sys.executable, os.path.join(ROOT, "benchmarks", "bench_model.py"),
           "--n", "5", "--size", "32x64", "--width", "1", "--repeats", "1"]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for heading in ("== (a)", "== (b)", "== (c)", "== Summary"):
        assert heading in proc.stdout, proc.stdout
