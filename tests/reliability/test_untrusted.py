"""Output files live only under output_dir, are named from sample ids, and
nothing outside is ever touched, whatever the file paths or field values."""

import hashlib
import os
import re


import fiftyone as fo

from segqual_fo import compute_label_quality
from tests.fo.helpers import segmentation_dataset


def _digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_outputs_stay_in_output_dir(make_dataset, tmp_path, rng):
    ds = make_dataset()
    _, _, ids = segmentation_dataset(ds, tmp_path, rng, n=4)
    # hostile-looking file paths: traversal and shell characters in the names
    weird = tmp_path / "img" / "..;rm -rf ~ $(x)"
    weird.mkdir()
    for i, sample in enumerate(ds.iter_samples(autosave=True)):
        target = weird / f"../../{i}'; drop.png"
        os.link(sample.filepath, target) if not target.exists() else None
        sample.filepath = str(target)
    # a user's own file referenced by the heatmap field must survive a re-run
    precious = tmp_path / "precious.png"
    precious.write_bytes(b"not ours")
    sample = ds[ids[0]]
    sample["label_quality_heatmap"] = fo.Heatmap(map_path=str(precious), range=[0, 255])
    sample.save()
    before = {p: _digest(p) for p in map(str, tmp_path.rglob("*")) if os.path.isfile(p)}
    out = tmp_path / "out"
    compute_label_quality(ds, "ground_truth", probs_field="probs_path", output_dir=str(out), overwrite=True, progress=False)
    after = {p: _digest(p) for p in map(str, tmp_path.rglob("*")) if os.path.isfile(p)}
    new_files = set(after) - set(before)
    assert new_files and all(p.startswith(str(out / "label_quality") + os.sep) for p in new_files)
    pattern = re.compile(r"^[0-9a-f]{24}-[0-9a-f]{8}_(heatmap|issues)\.png$")
    assert all(pattern.match(os.path.basename(p)) for p in new_files)
    assert {os.path.basename(p)[:24] for p in new_files} == set(ids)
    for path, digest in before.items():  # nothing that existed was changed or removed
        assert after.get(path) == digest, path
    assert precious.read_bytes() == b"not ours"
