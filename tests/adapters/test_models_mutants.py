"""Models as score sources (segqual_fo/adapters/models.py): behaviour that
surviving mutants showed no test held.

The models are tiny callables that record what they receive; BatchedModel
gets its images from a fake reader (``reader=``), a small array per path
whose pixels hold the image's index, so each output names its image. Only
read_rgb's own tests write image files. No FiftyOne, no ONNX.
"""

import functools
import pickle
import re
import threading

import cv2
import numpy as np
import pytest

from segqual_fo.adapters import models
from segqual_fo.adapters.models import (
    MAX_PICKLED_MODEL_BYTES,
    BatchedModel,
    LazyModel,
    check_model,
    check_model_output,
    describe_model,
    read_rgb,
)
from segqual_fo.errors import InvalidFileError, InvalidInputError, InvalidProbabilitiesError

HERE = __name__  # "tests.adapters.test_models_mutants"


# --------------------------------------------------------------------------
# helpers (module level, so they pickle by reference)


class _Scorer:
    """A model: image i (all pixels i) -> (2, 1, 1) scores (i, 100 + i)."""

    def __init__(self, offset=0):
        self.offset = offset
        self.num_classes = 2
        self._secret = "only the built model has it"

    def __call__(self, images):
        return [np.array([[[im[0, 0, 0] + self.offset]], [[100 + im[0, 0, 0]]]], np.float32) for im in images]


_BUILDS = []


def _build(offset=0, *, scale=1):
    """A LazyModel factory that records its calls."""
    _BUILDS.append((offset, scale))
    return _Scorer(offset * scale)


class _Sized:
    """A callable whose pickle is about ``len(payload)`` bytes."""

    def __init__(self, payload: bytes):
        self.payload = payload

    def __call__(self, images):
        return images


def _image(i):
    return np.full((2, 3, 3), i, np.uint8)


class _Recording:
    """A model that records each call's images (by index) and returns
    ``_Scorer``'s outputs."""

    def __init__(self):
        self.batches = []

    def __call__(self, images):
        self.batches.append([int(im[0, 0, 0]) for im in images])
        return _Scorer()(images)


def _runner(n, batch_size, **kw):
    model = _Recording()
    paths = [f"img{i}.png" for i in range(n)]
    runner = BatchedModel(model, paths, batch_size, reader=lambda p: _image(int(p[3:-4])), **kw)
    return runner, model


def _expected(i):
    return np.array([[[i]], [[100 + i]]], np.float32)


# --------------------------------------------------------------------------
# LazyModel


def test_lazy_model_refuses_a_factory_that_is_not_callable_naming_it():
    with pytest.raises(InvalidInputError, match="LazyModel needs a callable factory"):
        LazyModel(3)


def test_lazy_model_description_is_the_factorys_module_and_name():
    lazy = LazyModel(_build)
    assert lazy.description == f"{HERE}._build"
    assert repr(lazy) == f"LazyModel({HERE}._build)"
    assert describe_model(lazy) == f"{HERE}._build"  # what the run record stores
    # a factory without __qualname__ (a partial): its type's name
    assert LazyModel(functools.partial(_build, 2)).description == "functools.partial"
    # a factory without __module__ (a method descriptor): '?'
    upper = LazyModel(str.upper, "ab")
    assert upper.description == "?.str.upper"
    assert upper.build() == "AB"
    # an explicit description wins
    assert LazyModel(_build, description="my net").description == "my net"


def test_lazy_model_builds_with_the_factorys_args_and_kwargs():
    _BUILDS.clear()
    lazy = LazyModel(_build, 2, scale=5)
    out = lazy([_image(1)])
    assert _BUILDS == [(2, 5)]
    np.testing.assert_array_equal(out[0], [[[11]], [[101]]])  # offset 2 * scale 5
    lazy.release()


def test_release_forgets_the_built_model_and_the_next_use_builds_again():
    _BUILDS.clear()
    lazy = LazyModel(_build, 1)
    lazy.release()  # nothing built yet: no error
    first = lazy.build()
    assert lazy.build() is first and _BUILDS == [(1, 1)]
    lazy.release()
    second = lazy.build()
    assert second is not first and _BUILDS == [(1, 1), (1, 1)]
    lazy.release()


def test_private_names_are_not_read_from_the_built_model():
    """Lookups of names starting with '_' (pickle's probes, private
    attributes) must neither build the model nor return its attributes."""
    _BUILDS.clear()
    lazy = LazyModel(_build, 1)
    restored = pickle.loads(pickle.dumps(lazy))
    assert _BUILDS == []  # pickling sends the recipe, builds nothing
    assert restored.description == lazy.description and restored.token == lazy.token
    assert getattr(lazy, "_secret", "absent") == "absent"
    assert _BUILDS == []
    with pytest.raises(AttributeError, match="_secret"):
        _ = lazy._secret
    assert lazy.num_classes == 2  # public names go to the built model
    assert _BUILDS == [(1, 1)]
    lazy.release()


def test_two_threads_first_using_a_lazy_model_build_it_once(monkeypatch):
    """Thread 1 is inside the factory (holding the build lock) when thread 2
    finds no model and waits for the lock: thread 2 must then take thread
    1's model, not build a second one."""
    entered, gate, second_waits = threading.Event(), threading.Event(), threading.Event()
    builds = []
    second = {}

    def factory():
        builds.append(1)
        entered.set()
        gate.wait(5)
        return _Scorer()

    class WatchedLock:
        """The build lock, telling when thread 2 starts waiting for it."""

        def __init__(self):
            self._lock = threading.Lock()

        def __enter__(self):
            if threading.current_thread() is second.get("thread"):
                second_waits.set()
            return self._lock.__enter__()

        def __exit__(self, *exc):
            return self._lock.__exit__(*exc)

    monkeypatch.setattr(models, "_BUILT_LOCK", WatchedLock())
    lazy = LazyModel(factory)
    got = {}
    t1 = threading.Thread(target=lambda: got.__setitem__(1, lazy.build()))
    t1.start()
    assert entered.wait(5)
    t2 = threading.Thread(target=lambda: got.__setitem__(2, lazy.build()))
    second["thread"] = t2
    t2.start()
    assert second_waits.wait(5)  # thread 2 saw no model and waits for the lock
    gate.set()
    t1.join(5)
    t2.join(5)
    assert not t1.is_alive() and not t2.is_alive()
    assert builds == [1]
    assert got[1] is got[2]
    lazy.release()


# --------------------------------------------------------------------------
# describe_model (stored in the run record; resume compares it)


def test_describe_model_is_module_and_qualified_name():
    assert describe_model(_build) == f"{HERE}._build"
    assert describe_model(_Scorer()) == f"{HERE}._Scorer"  # an instance: its type's names
    assert describe_model(str.upper) == "builtins.str.upper"  # no __module__: its type's module
    nameless = _Scorer()
    nameless.__module__ = None  # a falsy __module__: its type's module
    assert describe_model(nameless) == f"{HERE}._Scorer"
    described = _Scorer()
    described.description = "scorer v2"
    assert describe_model(described) == "scorer v2"
    described.description = 7  # not a string: ignored
    assert describe_model(described) == f"{HERE}._Scorer"


# --------------------------------------------------------------------------
# check_model


def test_check_model_for_dask_accepts_a_small_picklable_model():
    model = _Scorer()
    assert check_model(model, distributed=True) is model
    assert check_model(lambda images: images) is not None  # no pickling without Dask


def test_check_model_for_dask_refuses_an_unpicklable_model_naming_the_argument():
    with pytest.raises(InvalidInputError, match="model= with executor= must be picklable"):
        check_model(lambda images: images, distributed=True)


def test_check_model_for_dask_accepts_exactly_the_size_limit():
    payload = b"x" * MAX_PICKLED_MODEL_BYTES
    for _ in range(3):  # pickle's overhead does not depend on the payload's length at this size
        payload = payload[: len(payload) - (len(pickle.dumps(_Sized(payload))) - MAX_PICKLED_MODEL_BYTES)]
    at_limit = _Sized(payload)
    assert len(pickle.dumps(at_limit)) == MAX_PICKLED_MODEL_BYTES
    assert check_model(at_limit, distributed=True) is at_limit
    over = _Sized(payload + b"x")
    assert len(pickle.dumps(over)) == MAX_PICKLED_MODEL_BYTES + 1
    with pytest.raises(InvalidInputError, match=r"the model pickles to 1\.0 MiB.*segqual_fo\.LazyModel\(factory"):
        check_model(over, distributed=True)


# --------------------------------------------------------------------------
# check_model_output


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_model_output_is_refused(dtype, bad):
    out = np.full((2, 3, 4), 0.5, dtype)
    out[1, 2, 3] = bad
    with pytest.raises(InvalidProbabilitiesError, match=r"^sample 7 \(a\.png\): the model returned NaN or infinite"):
        check_model_output(out, num_classes=2, where="sample 7 (a.png)")


def test_integer_model_output_is_accepted():
    out = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(check_model_output(out, num_classes=2, where="w"), out)


@pytest.mark.parametrize("values", [np.zeros((2, 3, 4), bool), np.zeros((2, 3, 4), complex)])
def test_non_numeric_model_output_is_refused_naming_the_sample(values):
    with pytest.raises(InvalidProbabilitiesError, match=r"^sample 7 \(a\.png\): the model returned (bool|complex128)"):
        check_model_output(values, num_classes=None, where="sample 7 (a.png)")


# --------------------------------------------------------------------------
# read_rgb


def test_read_rgb_returns_the_colours_in_rgb_order(tmp_path):
    path = str(tmp_path / "im.png")
    rgb = np.array([[(255, 0, 0), (0, 255, 0)], [(0, 0, 255), (1, 2, 3)]], np.uint8)
    cv2.imwrite(path, rgb[:, :, ::-1])  # OpenCV writes BGR
    out = read_rgb(path)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, rgb)


def test_read_rgb_of_an_undecodable_file_names_the_file(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"not an image at all")
    with pytest.raises(InvalidFileError, match=re.escape(str(path)) + " cannot be decoded"):
        read_rgb(str(path))


# --------------------------------------------------------------------------
# BatchedModel


@pytest.mark.parametrize(
    "n, batch_size, batches",
    [
        (6, 2, [[0, 1], [2, 3], [4, 5]]),
        (2, 2, [[0, 1]]),
        (3, 1, [[0], [1], [2]]),
        (3, 0, [[0], [1], [2]]),  # batch_size below 1 counts as 1
    ],
)
def test_batched_model_calls_the_model_once_per_batch_in_order(n, batch_size, batches):
    runner, model = _runner(n, batch_size)
    try:
        assert runner.calls == 0
        for i in range(n):
            np.testing.assert_array_equal(runner.get(i), _expected(i))
        assert model.batches == batches
        assert runner.calls == len(batches)
    finally:
        runner.close()


def test_primed_outputs_are_used_and_their_images_not_run():
    primed = np.full((2, 1, 1), 42.0, np.float32)
    runner, model = _runner(3, 2, primed={0: primed})
    try:
        assert runner.get(0) is primed
        np.testing.assert_array_equal(runner.get(1), _expected(1))
        np.testing.assert_array_equal(runner.get(2), _expected(2))
        assert model.batches == [[1], [2]]
        assert runner.calls == 2
    finally:
        runner.close()


def test_an_output_asked_for_again_is_computed_again():
    runner, model = _runner(2, 2)
    try:
        np.testing.assert_array_equal(runner.get(0), _expected(0))
        np.testing.assert_array_equal(runner.get(0), _expected(0))
        np.testing.assert_array_equal(runner.get(1), _expected(1))
        assert model.batches == [[0, 1], [0]]
        assert runner.calls == 2
    finally:
        runner.close()


def test_a_batch_asked_for_out_of_order_holds_only_its_own_images():
    """Batch 0 prefetches batch 1's images; asking for batch 2 next must not
    run the prefetched images of batch 1 with it."""
    runner, model = _runner(6, 2)
    try:
        for i in (0, 4, 2, 1, 5, 3):
            np.testing.assert_array_equal(runner.get(i), _expected(i))
        assert model.batches == [[0, 1], [4, 5], [2, 3]]
    finally:
        runner.close()


def test_closing_a_batched_model_that_never_ran():
    runner, model = _runner(0, 2)
    runner.close()  # e.g. save_probabilities with every file already there
    runner, model = _runner(3, 2)
    runner.close()
    assert model.batches == []
