"""Queries the front ends ask (segqual_fo.fo.queries) that no front-end test
pins down on its own."""

import numpy as np

import fiftyone as fo

from segqual_fo.fo.queries import stored_probs_need_resize
from tests.fo.helpers import write_image


def test_stored_probs_need_resize(make_dataset, tmp_path, rng):
    ds = make_dataset()
    sizes = [(24, 32), (24, 32), (30, 40)]
    samples = []
    for i, (h, w) in enumerate(sizes):
        write_image(tmp_path / f"im{i}.png", (h, w), rng)
        np.save(tmp_path / f"full{i}.npy", np.zeros((3, h, w), np.float32))
        np.save(tmp_path / f"low{i}.npy", np.zeros((3, h // 4, w // 4), np.float32))
        samples.append(fo.Sample(filepath=str(tmp_path / f"im{i}.png"), full=str(tmp_path / f"full{i}.npy"),
                                 low=str(tmp_path / f"low{i}.npy")))
    ds.add_samples(samples, progress=False)
    assert not stored_probs_need_resize(ds, "full")  # images of two sizes, each file at its image's
    assert stored_probs_need_resize(ds, "low")
    # only the last image's file differs: found within the limit, not beyond it
    ds.set_values("mixed", [str(tmp_path / "full0.npy"), str(tmp_path / "full1.npy"), str(tmp_path / "low2.npy")])
    assert stored_probs_need_resize(ds, "mixed") and not stored_probs_need_resize(ds, "mixed", limit=2)
    # metadata, when computed, is used (the images are not read again); unreadable files are passed over
    ds.compute_metadata()
    for i in range(3):
        (tmp_path / f"im{i}.png").unlink()
    assert stored_probs_need_resize(ds, "low")
    (tmp_path / "low0.npy").write_bytes(b"broken")
    ds.set_values("low", [str(tmp_path / "low0.npy"), None, str(tmp_path / "full2.npy")])
    assert not stored_probs_need_resize(ds, "low")
