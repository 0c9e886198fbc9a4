"""Exception types raised by segqual_fo.

Every error the library raises on purpose derives from :class:`SegQualError`;
errors about the caller's input are also :class:`ValueError` so that code
written against cleanlab (which raises ``ValueError``) keeps working.

Errors about one image carry its position in ``index`` (and, in the FiftyOne
layer, ``sample_id`` and ``filepath``) so callers can report or skip it.
"""

from __future__ import annotations

from typing import Optional


class SegQualError(Exception):
    """Base class of all segqual_fo errors."""


class InvalidInputError(SegQualError, ValueError):
    """An argument or an input array is not what the function accepts.

    Attributes:
        index: position of the offending image in the input, or None when the
            error is not about one image
    """

    def __init__(self, message: str, *, index: Optional[int] = None):
        super().__init__(message)
        self.index = index


class ShapeMismatchError(InvalidInputError):
    """Labels and probabilities (or images among themselves) disagree in shape."""


class InvalidLabelsError(InvalidInputError):
    """A label mask holds values that are neither a class nor ignored."""


class InvalidProbabilitiesError(InvalidInputError):
    """Probabilities are NaN, negative, above 1, or do not sum to 1."""


class InvalidFileError(InvalidInputError):
    """A probability or mask file is missing, unreadable, corrupt or unsafe."""


class FiftyOneInputError(InvalidInputError):
    """A dataset, field or sample does not have what the operation needs."""


class UnnormalizedProbabilitiesWarning(UserWarning):
    """``pred_probs`` are finite and non-negative but do not sum to 1 over the
    classes; the cleanlab-compatible functions use them as given (as cleanlab
    does) and warn once per call."""
