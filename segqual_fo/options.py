"""One place for the rules of every user-facing option.

The library (:func:`segqual_fo.compute_label_quality`), the ``segqual`` CLI
and the plugin's form all validate through these functions, so a rule (a
field name's shape, which temperatures are allowed, how a probability file
is matched to an image, how ignore values typed as text are read) is stated
once. Each check returns the normalised value or raises
:class:`~segqual_fo.errors.InvalidInputError` with a message that names the
option, what arrived, and what is expected; front ends show that message
as it is (the CLI on one line, the plugin next to the form field).

No FiftyOne here: these are plain values.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from segqual_fo.adapters.masks import void_value
from segqual_fo.adapters.probs import LAYOUTS, check_layout
from segqual_fo.core._inputs import check_positive_int, check_temperature
from segqual_fo.core.rank import METHODS, check_method
from segqual_fo.core.stream import DEFAULT_ISSUE_THRESHOLD
from segqual_fo.errors import InvalidFileError, InvalidInputError

__all__ = [
    "DEFAULTS",
    "LAYOUTS",
    "METHODS",
    "PROBS_EXTS",
    "ScoringOptions",
    "check_field_name",
    "check_label_field",
    "check_model_path",
    "check_probs_source",
    "check_batch_size",
    "check_image_normalization",
    "check_input_size",
    "check_issue_threshold",
    "check_layout",
    "check_method",
    "check_positive_int",
    "check_temperature",
    "check_workers",
    "image_stem",
    "is_probs_file",
    "output_fields",
    "parse_classes",
    "parse_ignore",
    "probs_files_by_stem",
    "void_value",
]

#: Field names: what MongoDB and FiftyOne accept without escaping.
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
#: Probability file extensions (matched case-insensitively).
PROBS_EXTS = (".npy", ".npz")
#: Network files onnxruntime loads: ONNX, and its own ORT format.
MODEL_EXTS = (".onnx", ".ort")
#: The names of the three sources of class scores (the library's arguments).
PROBS_SOURCES = ("probs_field", "probs_dir", "model")

#: Defaults shared by the library signature, the CLI flags and the form.
DEFAULTS: Dict[str, Any] = {
    "method": "softmin",
    "temperature": 0.1,
    "downsample": 1,
    "issue_threshold": DEFAULT_ISSUE_THRESHOLD,
    "min_region_area": 16,
    "layout": "KHW",
    "score_field": "label_quality",
    "commit_every": 64,
}


def output_fields(score_field: str) -> Dict[str, str]:
    """The fields a run with ``score_field`` writes (kind -> name)."""
    return {
        "score": score_field,
        "num_issues": f"{score_field}_num_issues",
        "heatmap": f"{score_field}_heatmap",
        "issues": f"{score_field}_issues",
        "regions": f"{score_field}_regions",
    }


def check_field_name(name: Any, what: str) -> str:
    """A sample field name (letters, digits, underscores; not starting
    with a digit; at most 64 characters)."""
    if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name):
        raise InvalidInputError(f"{what} must be a field name (letters, digits, underscores), got {name!r}.")
    return name


def check_issue_threshold(value: Any) -> float:
    """A pixel-score threshold in [0, 1]."""
    try:
        t = float(value)
    except (TypeError, ValueError):
        t = math.nan
    if isinstance(value, bool) or not 0 <= t <= 1:
        raise InvalidInputError(f"issue_threshold must be a number in [0, 1], got {value!r}.")
    return t


def check_workers(value: Any) -> int:
    """A number of worker processes (at least 1)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"the number of workers must be a positive integer, got {value!r}.")
    return value


def parse_ignore(values: Any) -> Optional[List[Any]]:
    """Ignore values as a user types them: ``"255"``, ``["255", "void"]`` or
    ``"255, void"`` -> ``[255, "void"]`` (integers are mask values, other
    entries class names); None or empty -> None. Non-strings pass through."""
    if values is None:
        return None
    if isinstance(values, str):
        values = [v for v in values.split(",")]
    elif not isinstance(values, (list, tuple)):
        values = [values]
    out: List[Any] = []
    for v in values:
        if isinstance(v, str):
            v = v.strip()
            if not v:
                continue
            out.append(int(v) if re.fullmatch(r"[-+]?\d+", v) else v)
        else:
            out.append(v)
    return out or None


def parse_classes(value: Any) -> Optional[List[str]]:
    """Class names in probability-channel order: a list, or one
    comma-separated string; None or empty -> None."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [str(v).strip() for v in items if str(v).strip()]
    return names or None


def is_probs_file(path: str) -> bool:
    """Whether ``path`` names a probability file (.npy/.npz, any case)."""
    return isinstance(path, str) and os.path.splitext(path)[1].lower() in PROBS_EXTS


def probs_files_by_stem(directory: str) -> Dict[str, str]:
    """``{file stem: path}`` of the probability files in ``directory``.

    An image ``.../0001.png`` is matched by the file whose stem is exactly
    ``0001`` (stems are case-sensitive, as file names are; the extension may
    be .npy or .npz in any case).

    Raises:
        InvalidInputError: not a directory, or two files with the same stem
    """
    if not isinstance(directory, str) or not os.path.isdir(directory):
        raise InvalidInputError(f"probs_dir {directory!r} is not a directory.")
    by_stem: Dict[str, str] = {}
    for name in sorted(os.listdir(directory)):
        if not is_probs_file(name):
            continue
        stem = os.path.splitext(name)[0]
        if stem in by_stem:
            raise InvalidInputError(
                f"probs_dir holds both {os.path.basename(by_stem[stem])} and {name}; keep one file per image stem."
            )
        by_stem[stem] = os.path.join(directory, name)
    return by_stem


def image_stem(filepath: str) -> str:
    """The stem a probability file must have for the image ``filepath``."""
    return os.path.splitext(os.path.basename(filepath))[0]


@dataclass(frozen=True)
class ScoringOptions:
    """The validated scoring options of a run (see
    :func:`segqual_fo.compute_label_quality` for their meaning)."""

    method: str = DEFAULTS["method"]
    temperature: float = DEFAULTS["temperature"]
    downsample: int = DEFAULTS["downsample"]
    issue_threshold: float = DEFAULTS["issue_threshold"]
    min_region_area: int = DEFAULTS["min_region_area"]
    layout: str = DEFAULTS["layout"]
    logits: bool = False
    resize: bool = False
    probs_key: Optional[str] = None
    score_field: str = DEFAULTS["score_field"]
    commit_every: int = DEFAULTS["commit_every"]
    shard_size: Optional[int] = None

    @classmethod
    def validate(cls, **kwargs: Any) -> "ScoringOptions":
        """Checks every option; raises at the first bad one."""
        opts = cls(**kwargs)
        check_method(opts.method)
        check_temperature(opts.temperature)
        check_layout(opts.layout)
        check_positive_int(opts.downsample, "downsample", allow_none=False)
        check_positive_int(opts.min_region_area, "min_region_area", allow_none=False)
        check_positive_int(opts.commit_every, "commit_every", allow_none=False)
        check_positive_int(opts.shard_size, "shard_size")
        check_field_name(opts.score_field, "score_field")
        if opts.probs_key is not None and not isinstance(opts.probs_key, str):
            raise InvalidInputError(f"probs_key must be the name of an array in the .npz files, got {opts.probs_key!r}.")
        return cls(
            **{
                **kwargs,
                "temperature": float(opts.temperature),
                "issue_threshold": check_issue_threshold(opts.issue_threshold),
                "logits": bool(opts.logits),
                "resize": bool(opts.resize),
            }
        )

    @property
    def fields(self) -> Dict[str, str]:
        return output_fields(self.score_field)


def check_probs_source(
    probs_field: Any, probs_dir: Any, model: Any = None, *, names: Sequence[str] = PROBS_SOURCES
) -> None:
    """Exactly one source of class scores.

    ``names``: how the caller's front end spells the three options, in the
    same order (the CLI passes its flags), so the message names what the
    user typed.
    """
    probs_field_name, probs_dir_name, model_name = names
    given = [name for name, v in zip(names, (probs_field, probs_dir, model)) if v is not None]
    if len(given) != 1:
        what = f"got {' and '.join(given)}" if given else "got none"
        raise InvalidInputError(
            f"pass exactly one of {probs_field_name} (a field holding each sample's probability file), {probs_dir_name} "
            f"(a directory of files named like the images) or {model_name} (a model to run on the images); {what}."
        )


def check_model_path(path: Any) -> str:
    """An ONNX network file that exists (.onnx, or onnxruntime's .ort);
    returns its absolute path.

    Raises:
        InvalidFileError: no such file
        InvalidInputError: not a path, or not an ONNX file
    """
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise InvalidInputError(f"the model must be the path of an .onnx file, got {path!r}.")
    path = os.fspath(path)
    if not os.path.isfile(path):
        what = "is a directory" if os.path.isdir(path) else "does not exist"
        raise InvalidFileError(f"ONNX model {path} {what}.")
    if os.path.splitext(path)[1].lower() not in MODEL_EXTS:
        raise InvalidInputError(
            f"the model {path} is not an ONNX file (.onnx); export the network to ONNX first "
            "(PyTorch: torch.onnx.export)."
        )
    return os.path.abspath(path)


def check_image_normalization(mean: Any, std: Any) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """A network's input normalisation ``(pixel / 255 - mean) / std``: three
    finite numbers each (R, G, B), no ``std`` of 0. Returns them as tuples
    of floats."""
    out = []
    for name, values in (("mean", mean), ("std", std)):
        try:
            floats = tuple(float(v) for v in values)
        except (TypeError, ValueError):
            floats = ()
        if len(floats) != 3 or not all(math.isfinite(v) for v in floats) or any(isinstance(v, bool) for v in values):
            raise InvalidInputError(f"{name} must be three finite numbers (R, G, B), got {values!r}.")
        out.append(floats)
    if 0.0 in out[1]:
        raise InvalidInputError(f"std divides the pixels, so it cannot be 0; got {std!r}.")
    return out[0], out[1]


def check_input_size(input_size: Any) -> Optional[Tuple[int, int]]:
    """The (H, W) a network's input is resized to: two positive ints (None:
    no resizing)."""
    if input_size is None:
        return None
    if isinstance(input_size, (str, bytes)) or not hasattr(input_size, "__len__") or len(input_size) != 2:
        raise InvalidInputError(f"input_size must be (height, width), got {input_size!r}.")
    h, w = (check_positive_int(v, "input_size", allow_none=False) for v in input_size)
    return h, w


def check_batch_size(batch_size: Any) -> int:
    """Images per model call: a positive int (None: the default)."""
    from segqual_fo.adapters.models import DEFAULT_BATCH_SIZE

    if batch_size is None:
        return DEFAULT_BATCH_SIZE
    return check_positive_int(batch_size, "batch_size", allow_none=False)


def check_label_field(label_field: Any, score_field: str) -> str:
    """A label field name that is not one of the run's output fields."""
    if not isinstance(label_field, str) or not label_field:
        raise InvalidInputError(f"label_field must be the name of a label field, got {label_field!r}.")
    fields = output_fields(score_field)
    if label_field in fields.values():
        raise InvalidInputError(f"label_field {label_field!r} is one of the output fields {list(fields.values())}.")
    return label_field
