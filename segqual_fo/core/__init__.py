"""Pure-numpy scoring core of segqual_fo (no FiftyOne, no file paths).

Legend: N images, K classes, H x W pixels. ``labels`` are class indices,
``pred_probs`` softmax probabilities (K,H,W) per image.

Drop-in functions (cleanlab's names and semantics, more inputs):
:func:`get_label_quality_scores`, :func:`find_label_issues`,
:func:`issues_from_scores`, :func:`common_label_issues` (a pandas
DataFrame; pandas is imported when it is called), :func:`filter_by_class`,
:func:`display_issues` (matplotlib, imported when it is called),
:func:`softmin`, :data:`METHODS`. Like cleanlab they accept unnormalised
class scores, used as given with one warning per call.

Streaming (one image at a time, bounded memory): :func:`iter_label_quality`
yields one :class:`ImageResult` per image from lazy sequences; its building
blocks are :func:`pixel_evidence`, which scores one image, :class:`IssueFinder` accumulates
thresholds and selects issues across a dataset, :func:`image_softmin_score`
pools one image.

Probabilities at the model's resolution: :class:`LowResProbs` wraps one
image's (K,h,w) array and reads it at the mask's (H,W), bilinearly
interpolated on the fly; every function above takes sequences of them and
gives exactly the scores of the full-resolution array, without making it.
"""

from segqual_fo.core.display import display_issues
from segqual_fo.core.filter import find_label_issues
from segqual_fo.core.issues import DirectoryCache, IssueFinder, IssueSelection, MemoryCache
from segqual_fo.core.pixel import PixelEvidence, pixel_evidence
from segqual_fo.core.resample import LowResProbs
from segqual_fo.core.rank import (
    METHODS,
    get_label_quality_scores,
    image_softmin_score,
    issues_from_scores,
)
from segqual_fo.core.pooling import softmin
from segqual_fo.core.stream import DEFAULT_ISSUE_THRESHOLD, ImageResult, iter_label_quality
from segqual_fo.core.summary import (
    common_label_issues,
    confusion_rows,
    filter_by_class,
    issue_confusion_matrix,
)

__all__ = [
    "DEFAULT_ISSUE_THRESHOLD",
    "METHODS",
    "ImageResult",
    "iter_label_quality",
    "DirectoryCache",
    "IssueFinder",
    "IssueSelection",
    "LowResProbs",
    "MemoryCache",
    "PixelEvidence",
    "common_label_issues",
    "confusion_rows",
    "display_issues",
    "filter_by_class",
    "find_label_issues",
    "get_label_quality_scores",
    "image_softmin_score",
    "issue_confusion_matrix",
    "issues_from_scores",
    "pixel_evidence",
    "softmin",
]
