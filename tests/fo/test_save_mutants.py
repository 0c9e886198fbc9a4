"""save_probabilities: what the mutants of segqual_fo/fo/save.py showed
untested (see .ci/mutation-verdicts/fo-save.md). Small datasets of tiny
flat-grey images and a plain callable whose output is known by hand: an
image of grey level v gets class scores (v / 255, 1 - v / 255), so its
stored file holds exactly (v, 255 - v)."""

import os

import cv2
import numpy as np
import pytest

import fiftyone as fo

import segqual_fo
from segqual_fo.errors import FiftyOneInputError, InvalidInputError, InvalidProbabilitiesError
from segqual_fo.fo import save
from segqual_fo.fo.writeback import Failure

H, W = 2, 3  # the model's output size (the images are 4x6)


class GreyModel:
    """Scores (v / 255, 1 - v / 255) for a flat image of grey level v;
    NaN scores for the levels in ``nan``. Records the levels of each call."""

    def __init__(self, nan=()):
        self.nan = set(nan)
        self.calls = []

    def __call__(self, images):
        levels = [int(img[0, 0, 0]) for img in images]
        self.calls.append(levels)
        outs = []
        for v in levels:
            a = np.nan if v in self.nan else v / 255
            outs.append(np.stack([np.full((H, W), a), np.full((H, W), 1 - a)]).astype(np.float32))
        return outs


def _grey_dataset(ds, tmp_path, levels, *, unreadable=()):
    """One flat 4x6 image per grey level; the indices in ``unreadable`` are
    files that are not images. Returns (ids, filepaths)."""
    os.makedirs(tmp_path / "img", exist_ok=True)
    samples = []
    for i, v in enumerate(levels):
        p = tmp_path / "img" / f"im{i}.png"
        if i in unreadable:
            p.write_bytes(b"not an image")
        else:
            cv2.imwrite(str(p), np.full((4, 6, 3), v, np.uint8))
        samples.append(fo.Sample(filepath=str(p)))
    ids = ds.add_samples(samples, progress=False)
    return ids, [s.filepath for s in samples]


def _stored(path):
    with np.load(path, allow_pickle=False) as z:
        assert z.files == ["probs"]
        return z["probs"]


def _expected(v):
    return np.stack([np.full((H, W), v), np.full((H, W), 255 - v)]).astype(np.uint8)


LEVELS = [10, 60, 110, 160, 210]


def test_default_stores_the_model_scores_as_probabilities_and_reports_what_it_did(make_dataset, tmp_path, monkeypatch):
    ds = make_dataset()
    ids, _ = _grey_dataset(ds, tmp_path, LEVELS)
    monkeypatch.chdir(tmp_path)
    saved = segqual_fo.save_probabilities(ds, GreyModel(), "p", progress=False)  # relative: stored absolute
    probs_dir = str(tmp_path / "p")
    paths = [os.path.join(probs_dir, f"{i}.npz") for i in ids]
    assert ds.values("pred_probs_path") == paths
    for v, p in zip(LEVELS, paths):
        q = _stored(p)
        # logits=False by default: round(p * 255) of the scores as given, no softmax
        assert q.dtype == np.uint8
        np.testing.assert_array_equal(q, _expected(v))
    assert saved == save.SavedProbabilities(
        probs_dir=probs_dir,
        probs_field="pred_probs_path",
        num_samples=5,
        num_written=5,
        num_skipped=0,
        bytes_written=sum(os.path.getsize(p) for p in paths),
        failures=[],
    )


def test_batch_size_is_the_number_of_images_per_model_call(make_dataset, tmp_path):
    ds = make_dataset()
    _grey_dataset(ds, tmp_path, LEVELS)
    model = GreyModel()
    saved = segqual_fo.save_probabilities(ds, model, str(tmp_path / "p"), batch_size=2, progress=False)
    assert model.calls == [[10, 60], [110, 160], [210]]
    assert saved.num_written == 5
    with pytest.raises(InvalidInputError, match="batch_size"):
        segqual_fo.save_probabilities(ds, GreyModel(), str(tmp_path / "q"), batch_size=0, progress=False)
    assert not os.path.exists(tmp_path / "q")


@pytest.mark.parametrize("probs_dir", ["", None, 3])
def test_a_probs_dir_that_is_not_a_path_is_refused(make_dataset, tmp_path, monkeypatch, probs_dir):
    ds = make_dataset()
    _grey_dataset(ds, tmp_path, LEVELS[:2])
    monkeypatch.chdir(tmp_path)
    before = sorted(os.listdir(tmp_path))
    model = GreyModel()
    with pytest.raises(InvalidInputError, match=rf"^probs_dir must be a directory path, got {probs_dir!r}\.$"):
        segqual_fo.save_probabilities(ds, model, probs_dir, progress=False)
    assert model.calls == [] and sorted(os.listdir(tmp_path)) == before  # nothing written ('' is not the cwd)
    assert not ds.has_field("pred_probs_path")


def test_a_bad_probs_field_is_refused_naming_the_argument(make_dataset, tmp_path):
    ds = make_dataset()
    _grey_dataset(ds, tmp_path, LEVELS[:2])
    with pytest.raises(InvalidInputError, match=r"^probs_field must be a field name .*got 'no good'"):
        segqual_fo.save_probabilities(ds, GreyModel(), str(tmp_path / "p"), probs_field="no good", progress=False)


def test_other_paths_are_refused_naming_the_first_such_sample_and_overwrite_replaces_them(make_dataset, tmp_path):
    ds = make_dataset()
    ids, _ = _grey_dataset(ds, tmp_path, LEVELS[:4])
    ds.add_sample_field("probs", fo.StringField)
    ds.set_values("probs", {ids[1]: "/elsewhere/b.npz"}, key_field="id")
    probs_dir = str(tmp_path / "p")
    with pytest.raises(FiftyOneInputError, match=rf"for 1 samples \(e\.g\. sample {ids[1]}: /elsewhere/b\.npz\)"):
        segqual_fo.save_probabilities(ds, GreyModel(), probs_dir, probs_field="probs", progress=False)
    ds.set_values("probs", {ids[2]: "/elsewhere/c.npz"}, key_field="id")
    with pytest.raises(FiftyOneInputError, match=rf"for 2 samples \(e\.g\. sample {ids[1]}: /elsewhere/b\.npz\)"):
        segqual_fo.save_probabilities(ds, GreyModel(), probs_dir, probs_field="probs", progress=False)
    assert ds.values("probs") == [None, "/elsewhere/b.npz", "/elsewhere/c.npz", None]
    assert not os.path.exists(probs_dir)
    # overwrite=True: replaced
    saved = segqual_fo.save_probabilities(ds, GreyModel(), probs_dir, probs_field="probs", overwrite=True, progress=False)
    assert saved.num_written == 4
    assert ds.values("probs") == [os.path.join(probs_dir, f"{i}.npz") for i in ids]


def test_the_field_is_declared_even_when_every_image_fails(make_dataset, tmp_path):
    ds = make_dataset()
    ids, fps = _grey_dataset(ds, tmp_path, LEVELS[:2], unreadable=(0, 1))
    saved = segqual_fo.save_probabilities(ds, GreyModel(), str(tmp_path / "p"), skip_failures=True, progress=False)
    assert [(f.sample_id, f.filepath) for f in saved.failures] == list(zip(ids, fps))
    assert (saved.num_written, saved.bytes_written) == (0, 0)
    assert isinstance(ds.get_field_schema().get("pred_probs_path"), fo.StringField)
    assert ds.values("pred_probs_path") == [None, None]


def test_skip_failures_lists_each_failing_sample_with_its_file_and_cause(make_dataset, tmp_path):
    """Image 1 cannot be read (fails before the model); image 3 gets NaN
    scores (fails when its output is checked)."""
    ds = make_dataset()
    ids, fps = _grey_dataset(ds, tmp_path, LEVELS, unreadable=(1,))
    probs_dir = str(tmp_path / "p")
    saved = segqual_fo.save_probabilities(ds, GreyModel(nan={160}), probs_dir, batch_size=2, skip_failures=True, progress=False)
    assert [(f.sample_id, f.filepath) for f in saved.failures] == [(ids[1], fps[1]), (ids[3], fps[3])]
    assert all(isinstance(f, Failure) for f in saved.failures)
    assert saved.failures[0].reason.startswith(f"sample {ids[1]} ({fps[1]}): ")
    assert saved.failures[1].reason.startswith(f"sample {ids[3]} ({fps[3]}): ")
    assert "NaN or infinite" in saved.failures[1].reason
    paths = [os.path.join(probs_dir, f"{i}.npz") for i in ids]
    assert ds.values("pred_probs_path") == [paths[0], None, paths[2], None, paths[4]]
    assert sorted(os.listdir(probs_dir)) == sorted(f"{ids[i]}.npz" for i in (0, 2, 4))
    assert (saved.num_written, saved.bytes_written) == (3, sum(os.path.getsize(paths[i]) for i in (0, 2, 4)))


def test_without_skip_failures_the_first_failing_sample_stops_the_call(make_dataset, tmp_path):
    """Images 0 and 2 get NaN scores; more images than the write queue
    holds are run before image 0's output is checked."""
    ds = make_dataset()
    ids, fps = _grey_dataset(ds, tmp_path, [10, 40, 70, 100, 130, 160, 190, 220])
    probs_dir = tmp_path / "p"
    with pytest.raises(InvalidProbabilitiesError, match="NaN or infinite") as info:
        segqual_fo.save_probabilities(ds, GreyModel(nan={10, 70}), str(probs_dir), batch_size=1, progress=False)
    assert info.type is InvalidProbabilitiesError
    assert str(info.value).startswith(f"sample {ids[0]} ({fps[0]}): ")
    assert ds.values("pred_probs_path")[0] is None


def test_paths_are_committed_in_batches_of_commit_every(make_dataset, tmp_path, monkeypatch):
    ds = make_dataset()
    ids, _ = _grey_dataset(ds, tmp_path, LEVELS)
    commits = []
    set_values = fo.Dataset.set_values

    def spy(self, field_name, values, **kwargs):
        if field_name == "pred_probs_path":
            commits.append(sorted(values))
        return set_values(self, field_name, values, **kwargs)

    monkeypatch.setattr(save, "_COMMIT_EVERY", 2)
    monkeypatch.setattr(fo.Dataset, "set_values", spy)
    segqual_fo.save_probabilities(ds, GreyModel(), str(tmp_path / "p"), batch_size=1, progress=False)
    assert commits == [sorted(ids[:2]), sorted(ids[2:4]), [ids[4]]]
    assert None not in ds.values("pred_probs_path")


def test_a_progress_callback_sees_the_fraction_of_the_images_to_run(make_dataset, tmp_path):
    ds = make_dataset()
    ids, _ = _grey_dataset(ds, tmp_path, LEVELS)
    probs_dir = str(tmp_path / "p")
    segqual_fo.save_probabilities(ds.select(ids[:2]), GreyModel(), probs_dir, progress=False)
    seen = []
    saved = segqual_fo.save_probabilities(ds, GreyModel(), probs_dir, progress=lambda pb: seen.append(pb.progress))
    assert (saved.num_skipped, saved.num_written) == (2, 3)
    assert seen[-3:] == pytest.approx([1 / 3, 2 / 3, 1.0])  # of the 3 images run, not the 5 samples


def test_a_failure_that_stops_the_call_keeps_the_path_of_every_file_written(make_dataset, tmp_path):
    """The docstring's promise, "nothing written is lost": image 2 gets NaN
    scores; the images after it that were run and written while its output
    waited in the write queue have their paths recorded too."""
    ds = make_dataset()
    ids, _ = _grey_dataset(ds, tmp_path, [10, 40, 70, 100, 130, 160, 190, 220])
    probs_dir = tmp_path / "p"
    with pytest.raises(InvalidProbabilitiesError, match=f"^sample {ids[2]} "):
        segqual_fo.save_probabilities(ds, GreyModel(nan={70}), str(probs_dir), batch_size=1, progress=False)
    paths = ds.values("pred_probs_path")
    assert paths[:3] == [str(probs_dir / f"{ids[0]}.npz"), str(probs_dir / f"{ids[1]}.npz"), None]
    written = sorted(str(probs_dir / f) for f in os.listdir(probs_dir))
    assert len(written) > 2  # later images were written before image 2's output was checked
    assert sorted(p for p in paths if p is not None) == written
