"""Soak: score, through the FiftyOne pipeline, far more probability data than
the scoring process is allowed to map (RLIMIT_AS), and check its peak RSS.

Disk stays small: the samples share a pool of distinct probability files,
but every sample's file is read and scored on its own, so memory behaves as
with distinct files.
"""

import json
import os
import subprocess
import sys
import textwrap
import uuid

import cv2
import numpy as np
import pytest

import fiftyone as fo

from tests.core.helpers import blob_labels, plausible_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE, K, POOL, N = 512, 21, 12, 700
HEADROOM = 768 << 20  # address space the scoring may add on top of its baseline


@pytest.mark.slow
@pytest.mark.parametrize("method", ["softmin", "num_pixel_issues"])
def test_bigger_than_memory(tmp_path, method):
    rng = np.random.default_rng(0)
    labels = blob_labels(rng, POOL, K, SIZE, SIZE, cells=6)
    probs = plausible_model(rng, labels, K, strength=3.0).astype(np.float16)
    masks, files = [], []
    for i in range(POOL):
        masks.append(str(tmp_path / f"m{i}.png"))
        cv2.imwrite(masks[-1], labels[i].astype(np.uint8))
        files.append(str(tmp_path / f"p{i}.npy"))
        np.save(files[-1], probs[i])
    del probs
    image = str(tmp_path / "img.png")
    cv2.imwrite(image, np.zeros((8, 8, 3), np.uint8))
    ds = fo.Dataset(f"segqual-soak-{uuid.uuid4().hex[:10]}", persistent=True)
    try:
        ds.add_samples(
            [fo.Sample(filepath=image, ground_truth=fo.Segmentation(mask_path=masks[i % POOL]), probs_path=files[i % POOL]) for i in range(N)],
            progress=False,
        )
        code = f"""
            import json, resource, fiftyone as fo, segqual_fo
            def status(key):
                for line in open("/proc/self/status"):
                    if line.startswith(key):
                        return int(line.split()[1]) * 1024
            ds = fo.load_dataset({ds.name!r})
            ds.count()
            base_vm, base_rss = status("VmSize"), status("VmRSS")
            limit = base_vm + {HEADROOM}
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            res = segqual_fo.compute_label_quality(ds, "ground_truth", probs_field="probs_path",
                method={method!r}, output_dir={str(tmp_path / "out")!r}, n_jobs=2, progress=False)
            print(json.dumps(dict(limit=limit, base_rss=base_rss, peak_rss=status("VmHWM"), scored=res.num_scored,
                                  failures=len(res.failures))))
        """
        env = dict(os.environ, PYTHONPATH=ROOT, MALLOC_ARENA_MAX="2", TMPDIR=str(tmp_path))
        out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, out.stderr[-3000:]
        stats = json.loads(out.stdout.strip().splitlines()[-1])
        data_bytes = N * K * SIZE * SIZE * 2
        assert stats["scored"] == N and stats["failures"] == 0
        assert data_bytes > 3 * stats["limit"]  # several times what the process may map
        assert stats["peak_rss"] - stats["base_rss"] < HEADROOM
        ds.reload()
        scores = np.array(ds.values("label_quality"), dtype=float)
        assert np.isfinite(scores).all()
        if method == "softmin":  # repeated files give repeated scores
            assert len(set(np.round(scores, 12))) <= POOL
    finally:
        ds.delete()
