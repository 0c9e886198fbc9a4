"""The rules of the user-facing options (segqual_fo.options), hand-checked."""

import inspect
import math
import os
import re

import pytest

from segqual_fo import options
from segqual_fo.errors import InvalidFileError, InvalidInputError
from segqual_fo.options import (
    DEFAULTS,
    PROBS_EXTS,
    ScoringOptions,
    check_field_name,
    check_issue_threshold,
    check_label_field,
    check_probs_source,
    check_batch_size,
    check_image_normalization,
    check_input_size,
    check_model_path,
    check_workers,
    image_stem,
    is_probs_file,
    output_fields,
    parse_classes,
    parse_ignore,
    probs_files_by_stem,
)

# ------------------------------------------------------------ output_fields


def test_output_fields():
    assert output_fields("lq") == {
        "score": "lq",
        "num_issues": "lq_num_issues",
        "heatmap": "lq_heatmap",
        "issues": "lq_issues",
        "regions": "lq_regions",
    }


def test_output_fields_default_name():
    assert output_fields("label_quality") == {
        "score": "label_quality",
        "num_issues": "label_quality_num_issues",
        "heatmap": "label_quality_heatmap",
        "issues": "label_quality_issues",
        "regions": "label_quality_regions",
    }


# --------------------------------------------------------- check_field_name


@pytest.mark.parametrize("name", ["a", "_", "_x", "lq_2", "Label_Quality", "a" * 64, "A" + "9" * 63])
def test_check_field_name_valid(name):
    assert check_field_name(name, "score_field") == name


@pytest.mark.parametrize("name", ["", "a" * 65, "1abc", "9", "a.b", "a-b", "a b", "é", "lq\n", "$x"])
def test_check_field_name_invalid(name):
    with pytest.raises(
        InvalidInputError,
        match=r"^score_field must be a field name \(letters, digits, underscores\), got " + re.escape(repr(name)),
    ):
        check_field_name(name, "score_field")


@pytest.mark.parametrize("name", [None, 3, b"abc", ["a"]])
def test_check_field_name_non_str(name):
    with pytest.raises(InvalidInputError, match=r"^the field must be a field name"):
        check_field_name(name, "the field")


# ---------------------------------------------------- check_issue_threshold


@pytest.mark.parametrize("value, expected", [(0, 0.0), (1, 1.0), (0.5, 0.5), ("0.25", 0.25)])
def test_check_issue_threshold_valid(value, expected):
    out = check_issue_threshold(value)
    assert out == expected
    assert type(out) is float


@pytest.mark.parametrize("value", [-0.1, 1.1, "x", True, False, math.nan, None, [0.5]])
def test_check_issue_threshold_invalid(value):
    with pytest.raises(
        InvalidInputError, match=r"^issue_threshold must be a number in \[0, 1\], got " + re.escape(repr(value))
    ):
        check_issue_threshold(value)


# ------------------------------------------------------------ check_workers


@pytest.mark.parametrize("value", [1, 2, 64])
def test_check_workers_valid(value):
    assert check_workers(value) == value


@pytest.mark.parametrize("value", [0, -1, True, False, 1.0, "2", None])
def test_check_workers_invalid(value):
    with pytest.raises(
        InvalidInputError, match=r"^the number of workers must be a positive integer, got " + re.escape(repr(value))
    ):
        check_workers(value)


# ------------------------------------------------------------- parse_ignore


@pytest.mark.parametrize(
    "value, expected",
    [
        ("255", [255]),
        (["255", "void"], [255, "void"]),
        ("255, void", [255, "void"]),
        ("255,void,", [255, "void"]),
        (" -1 ", [-1]),
        ("+3", [3]),
        ("3.5", ["3.5"]),
        ("1e3", ["1e3"]),
        ("-", ["-"]),
        (("0", " sky "), [0, "sky"]),
        ([255, "7"], [255, 7]),
        (255, [255]),
        ([1.5, None], [1.5, None]),
        ("#ff0000", ["#ff0000"]),
    ],
)
def test_parse_ignore(value, expected):
    out = parse_ignore(value)
    assert out == expected
    assert [type(v) for v in out] == [type(v) for v in expected]


@pytest.mark.parametrize("value", [None, "", " ", " , ", [], (), ["", "  "]])
def test_parse_ignore_empty(value):
    assert parse_ignore(value) is None


def test_parse_ignore_non_string_object_passes_through():
    marker = object()
    assert parse_ignore(marker) == [marker]


# ------------------------------------------------------------ parse_classes


@pytest.mark.parametrize(
    "value, expected",
    [
        ("a,b,c", ["a", "b", "c"]),
        (" a , b ,, c ,", ["a", "b", "c"]),
        (["bg", " road "], ["bg", "road"]),
        (("x",), ["x"]),
        ([0, 1], ["0", "1"]),
        (["a", "", " "], ["a"]),
    ],
)
def test_parse_classes(value, expected):
    assert parse_classes(value) == expected


@pytest.mark.parametrize("value", [None, "", " , ", [], [""]])
def test_parse_classes_empty(value):
    assert parse_classes(value) is None


# ------------------------------------------------------------ is_probs_file


def test_probs_exts():
    assert PROBS_EXTS == (".npy", ".npz")


@pytest.mark.parametrize("path", ["a.npy", "a.npz", "A.NPY", "b.Npz", "/d/x.y.nPy", "dir.npz/x.npy"])
def test_is_probs_file_true(path):
    assert is_probs_file(path) is True


@pytest.mark.parametrize("path", ["a.png", "a.npy.png", "a.np", "npy", ".npy", "a.npyz", "a", "", "x.npz/y"])
def test_is_probs_file_false(path):
    assert is_probs_file(path) is False


@pytest.mark.parametrize("path", [None, 3, b"a.npy", ["a.npy"]])
def test_is_probs_file_non_str(path):
    assert is_probs_file(path) is False


# ------------------------------------------------------ probs_files_by_stem


def _touch(directory, *names):
    for name in names:
        (directory / name).write_bytes(b"")


def test_probs_files_by_stem(tmp_path):
    _touch(tmp_path, "0001.npy", "0002.NPZ", "Img.npz", "img.npy", "notes.txt", "0003.png", "a.b.npy")
    (tmp_path / "sub.npy").mkdir()  # listed like a file (the stem rule only looks at names)
    d = str(tmp_path)
    assert probs_files_by_stem(d) == {
        "0001": os.path.join(d, "0001.npy"),
        "0002": os.path.join(d, "0002.NPZ"),
        "Img": os.path.join(d, "Img.npz"),
        "img": os.path.join(d, "img.npy"),
        "a.b": os.path.join(d, "a.b.npy"),
        "sub": os.path.join(d, "sub.npy"),
    }


def test_probs_files_by_stem_empty_directory(tmp_path):
    assert probs_files_by_stem(str(tmp_path)) == {}


def test_probs_files_by_stem_duplicate_stems(tmp_path):
    _touch(tmp_path, "0001.npz", "0001.npy", "0002.npy")
    with pytest.raises(
        InvalidInputError, match=r"^probs_dir holds both 0001\.npy and 0001\.npz; keep one file per image stem\.$"
    ):
        probs_files_by_stem(str(tmp_path))


def test_probs_files_by_stem_duplicate_stems_differing_in_extension_case(tmp_path):
    _touch(tmp_path, "x.NPY", "x.npy")
    with pytest.raises(InvalidInputError, match=r"probs_dir holds both x\.NPY and x\.npy"):
        probs_files_by_stem(str(tmp_path))


def test_probs_files_by_stem_not_a_directory(tmp_path):
    f = tmp_path / "f.npy"
    f.write_bytes(b"")
    with pytest.raises(InvalidInputError, match=r"^probs_dir '.*f\.npy' is not a directory\.$"):
        probs_files_by_stem(str(f))
    with pytest.raises(InvalidInputError, match=r"^probs_dir '.*missing' is not a directory\.$"):
        probs_files_by_stem(str(tmp_path / "missing"))


@pytest.mark.parametrize("value", [None, 3])
def test_probs_files_by_stem_non_str(value):
    with pytest.raises(InvalidInputError, match=rf"^probs_dir {value!r} is not a directory\.$"):
        probs_files_by_stem(value)


def test_probs_files_by_stem_path_object_is_refused(tmp_path):
    with pytest.raises(InvalidInputError, match="is not a directory"):
        probs_files_by_stem(tmp_path)


# --------------------------------------------------------------- image_stem


@pytest.mark.parametrize(
    "path, expected",
    [("/data/img/0001.png", "0001"), ("a.b.jpg", "a.b"), ("Img", "Img"), ("/x/.hidden", ".hidden"), ("d.png/IMG.JPG", "IMG")],
)
def test_image_stem(path, expected):
    assert image_stem(path) == expected


# ---------------------------------------------------------- ScoringOptions


def test_scoring_options_defaults():
    o = ScoringOptions.validate()
    assert o == ScoringOptions(
        method="softmin",
        temperature=0.1,
        downsample=1,
        issue_threshold=0.1,
        min_region_area=16,
        layout="KHW",
        logits=False,
        resize=False,
        probs_key=None,
        score_field="label_quality",
        commit_every=64,
        shard_size=None,
    )
    assert o.fields == {
        "score": "label_quality",
        "num_issues": "label_quality_num_issues",
        "heatmap": "label_quality_heatmap",
        "issues": "label_quality_issues",
        "regions": "label_quality_regions",
    }


def test_scoring_options_normalises():
    o = ScoringOptions.validate(
        method="num_pixel_issues",
        temperature=2,
        issue_threshold=1,
        logits=1,
        resize="yes",
        layout="HWK",
        downsample=4,
        min_region_area=1,
        commit_every=8,
        shard_size=3,
        probs_key="probs",
        score_field="lq",
    )
    assert o.temperature == 2.0 and type(o.temperature) is float
    assert o.issue_threshold == 1.0 and type(o.issue_threshold) is float
    assert o.logits is True
    assert o.resize is True
    assert o.method == "num_pixel_issues"
    assert o.layout == "HWK"
    assert (o.downsample, o.min_region_area, o.commit_every, o.shard_size) == (4, 1, 8, 3)
    assert o.probs_key == "probs"
    assert o.fields == {
        "score": "lq",
        "num_issues": "lq_num_issues",
        "heatmap": "lq_heatmap",
        "issues": "lq_issues",
        "regions": "lq_regions",
    }


def test_scoring_options_false_flags():
    o = ScoringOptions.validate(logits=0, resize="")
    assert o.logits is False
    assert o.resize is False


def test_scoring_options_threshold_string_is_normalised():
    assert ScoringOptions.validate(issue_threshold="0.5").issue_threshold == 0.5


def test_scoring_options_is_frozen():
    o = ScoringOptions.validate()
    with pytest.raises(AttributeError):
        o.method = "x"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"method": "mean"}, r"^method must be one of 'softmin', 'num_pixel_issues'; got 'mean'\.$"),
        ({"temperature": 0}, r"^temperature must be a positive finite number, got 0\."),
        ({"temperature": -1.0}, r"^temperature must be a positive finite number, got -1\.0\."),
        ({"temperature": math.inf}, r"^temperature must be a positive finite number, got inf\."),
        ({"temperature": "hot"}, r"^temperature must be a positive number, got 'hot'\.$"),
        ({"layout": "HW"}, r"^layout must be 'KHW' \(classes first\) or 'HWK' \(classes last\), got 'HW'\.$"),
        ({"downsample": 0}, r"^downsample must be a positive integer, got 0\.$"),
        ({"downsample": None}, r"^downsample must be a positive integer, got None\.$"),
        ({"downsample": 2.0}, r"^downsample must be a positive integer, got 2\.0\.$"),
        ({"min_region_area": 0}, r"^min_region_area must be a positive integer, got 0\.$"),
        ({"min_region_area": None}, r"^min_region_area must be a positive integer, got None\.$"),
        ({"commit_every": True}, r"^commit_every must be a positive integer, got True\.$"),
        ({"commit_every": None}, r"^commit_every must be a positive integer, got None\.$"),
        ({"shard_size": 0}, r"^shard_size must be a positive integer, got 0\.$"),
        ({"score_field": "a.b"}, r"^score_field must be a field name \(letters, digits, underscores\), got 'a\.b'\.$"),
        ({"score_field": "1lq"}, r"^score_field must be a field name"),
        ({"probs_key": 3}, r"^probs_key must be the name of an array in the \.npz files, got 3\.$"),
        ({"issue_threshold": 1.5}, r"^issue_threshold must be a number in \[0, 1\], got 1\.5\.$"),
        ({"issue_threshold": True}, r"^issue_threshold must be a number in \[0, 1\], got True\.$"),
    ],
)
def test_scoring_options_rejects(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        ScoringOptions.validate(**kwargs)


def test_scoring_options_shard_size_none_is_allowed():
    assert ScoringOptions.validate(shard_size=None).shard_size is None


def test_scoring_options_unknown_option():
    with pytest.raises(TypeError):
        ScoringOptions.validate(temprature=0.1)


# -------------------------------------------------------- check_probs_source


@pytest.mark.parametrize(
    "field, directory, model", [("probs_path", None, None), (None, "/probs", None), (None, None, print)]
)
def test_check_probs_source_one(field, directory, model):
    assert check_probs_source(field, directory, model) is None


@pytest.mark.parametrize(
    "field, directory, model, got",
    [
        (None, None, None, "got none"),
        ("probs_path", "/probs", None, "got probs_field and probs_dir"),
        ("probs_path", None, print, "got probs_field and model"),
        (None, "/probs", print, "got probs_dir and model"),
    ],
)
def test_check_probs_source_not_one(field, directory, model, got):
    with pytest.raises(InvalidInputError, match=r"^pass exactly one of probs_field .* or model .*; " + got + r"\.$"):
        check_probs_source(field, directory, model)


def test_check_probs_source_names_the_front_ends_options():
    flags = ("--probs-field", "--probs-dir", "--model")
    with pytest.raises(InvalidInputError, match=r"^pass exactly one of --probs-field \(.*\), --probs-dir \(.*\) or --model \(.*; got --probs-field and --model\.$"):
        check_probs_source("p", None, "net.onnx", names=flags)
    with pytest.raises(InvalidInputError, match=r"; got none\.$"):
        check_probs_source(None, None, None, names=flags)


# -------------------------------------------------------- model options


def test_check_model_path(tmp_path, monkeypatch):
    net = tmp_path / "Net.ONNX"
    net.write_bytes(b"x")
    (tmp_path / "net.ort").write_bytes(b"x")
    assert check_model_path(str(net)) == str(net)
    assert check_model_path(tmp_path / "net.ort") == str(tmp_path / "net.ort")
    monkeypatch.chdir(tmp_path)
    assert check_model_path("Net.ONNX") == str(net)  # absolute
    with pytest.raises(InvalidFileError, match=r"^ONNX model .*missing\.onnx does not exist\.$"):
        check_model_path(str(tmp_path / "missing.onnx"))
    (tmp_path / "dir.onnx").mkdir()
    with pytest.raises(InvalidFileError, match=r"dir\.onnx is a directory"):
        check_model_path(str(tmp_path / "dir.onnx"))
    (tmp_path / "net.pt").write_bytes(b"x")
    with pytest.raises(InvalidInputError, match=r"net\.pt is not an ONNX file \(\.onnx\); export .* torch\.onnx\.export"):
        check_model_path(str(tmp_path / "net.pt"))
    for bad in (None, "", 3):
        with pytest.raises(InvalidInputError, match="must be the path of an .onnx file"):
            check_model_path(bad)


def test_check_image_normalization():
    assert check_image_normalization([0, 0.5, 1], (1, 2, 3)) == ((0.0, 0.5, 1.0), (1.0, 2.0, 3.0))
    assert check_image_normalization(["0.485", 0.456, 0.406], [0.229, 0.224, 0.225])[0] == (0.485, 0.456, 0.406)
    for mean in ((0, 0), (0, 0, 0, 0), (0, math.nan, 0), (0, "x", 0), None, (True, 0, 0)):
        with pytest.raises(InvalidInputError, match=r"^mean must be three finite numbers \(R, G, B\)"):
            check_image_normalization(mean, (1, 1, 1))
    with pytest.raises(InvalidInputError, match=r"^std must be three finite numbers"):
        check_image_normalization((0, 0, 0), (1, math.inf, 1))
    with pytest.raises(InvalidInputError, match=r"^std divides the pixels, so it cannot be 0"):
        check_image_normalization((0, 0, 0), (1, 0, 1))


def test_check_input_size():
    assert check_input_size(None) is None
    assert check_input_size([512, 1024]) == (512, 1024)
    for bad in ((0, 4), (4,), (4, 4, 4), "44", 4, (4.5, 4), (True, 4)):
        with pytest.raises(InvalidInputError, match="input_size must be"):
            check_input_size(bad)


def test_check_batch_size():
    assert check_batch_size(None) == 8
    assert check_batch_size(3) == 3
    for bad in (0, -1, 1.5, "2"):
        with pytest.raises(InvalidInputError, match="batch_size"):
            check_batch_size(bad)


# -------------------------------------------------------- check_label_field


def test_check_label_field_valid():
    assert check_label_field("ground_truth", "label_quality") == "ground_truth"
    # another run's output name is a plain field for this run
    assert check_label_field("lq_issues", "label_quality") == "lq_issues"


@pytest.mark.parametrize("name", ["lq", "lq_num_issues", "lq_heatmap", "lq_issues", "lq_regions"])
def test_check_label_field_refuses_output_fields(name):
    with pytest.raises(
        InvalidInputError,
        match=rf"^label_field '{name}' is one of the output fields "
        r"\['lq', 'lq_num_issues', 'lq_heatmap', 'lq_issues', 'lq_regions'\]\.$",
    ):
        check_label_field(name, "lq")


@pytest.mark.parametrize("name", [None, "", 3])
def test_check_label_field_not_a_name(name):
    with pytest.raises(
        InvalidInputError, match=rf"^label_field must be the name of a label field, got {name!r}\.$"
    ):
        check_label_field(name, "lq")


# ----------------------------------------------------------------- DEFAULTS


def test_defaults_values():
    assert DEFAULTS == {
        "method": "softmin",
        "temperature": 0.1,
        "downsample": 1,
        "issue_threshold": 0.1,
        "min_region_area": 16,
        "layout": "KHW",
        "score_field": "label_quality",
        "commit_every": 64,
    }


def test_defaults_match_compute_label_quality_signature():
    from segqual_fo.fo.compute import compute_label_quality

    params = inspect.signature(compute_label_quality).parameters
    signature_defaults = {name: params[name].default for name in DEFAULTS}
    assert signature_defaults == {
        "method": "softmin",
        "temperature": 0.1,
        "downsample": 1,
        "issue_threshold": 0.1,
        "min_region_area": 16,
        "layout": "KHW",
        "score_field": "label_quality",
        "commit_every": 64,
    }
    assert params["logits"].default is False
    assert params["resize"].default is False
    assert params["probs_key"].default is None
    assert params["shard_size"].default is None
    # every option ScoringOptions holds is a keyword-only argument
    for name in ScoringOptions.__dataclass_fields__:
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, name


def test_all_names_exist():
    for name in options.__all__:
        assert hasattr(options, name), name
