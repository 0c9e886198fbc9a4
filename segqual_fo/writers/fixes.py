"""Corrected label masks: issue regions pasted into a label mask, with the
class the model predicts (no FiftyOne here; the FiftyOne side is
:mod:`segqual_fo.fo.fix`).

A region is what a run records in ``{score_field}_regions`` (see
:mod:`segqual_fo.writers.regions`): a bounding box ``[x/W, y/H, w/W, h/H]``
that is exact on the label mask's W x H pixel grid, and an (h, w) bool mask
of the region's pixels inside that box. Pasting a region sets exactly those
pixels to the stored mask value of a class (:func:`class_values`): an int
for grayscale masks (8- or 16-bit), an ``(r, g, b)`` triple for RGB masks
whose mask targets are ``"#rrggbb"`` colours.

The mask's dtype is kept, so an 8-bit mask stays 8-bit and a 16-bit mask
16-bit; a class value that does not fit the dtype is refused rather than
widened or wrapped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Sequence, Tuple, Union

import numpy as np

from segqual_fo.adapters.masks import LabelMapping
from segqual_fo.errors import InvalidInputError

#: A stored mask value: an int (grayscale) or an (r, g, b) colour (RGB).
MaskValue = Union[int, Tuple[int, int, int]]


@dataclass
class RegionPatch:
    """One region to paste.

    Attributes:
        bounding_box: [x, y, w, h] relative to the mask's size (exact pixel
            edges divided by W and H)
        mask: (h, w) bool, the region's pixels inside its box
        value: the stored mask value to write there
        name: how to name the region in errors (its id)
    """

    bounding_box: Sequence[float]
    mask: np.ndarray
    value: MaskValue
    name: str = "region"


def class_values(mapping: LabelMapping) -> Dict[int, MaskValue]:
    """``{class index: stored mask value}``: the inverse of
    :meth:`LabelMapping.decode` for the values a class is written as.

    With the identity mapping, class k is stored as k. With mask targets,
    a class is stored as the value its target names; when several values
    name one class, the smallest is used (every one of them decodes to the
    class). RGB targets give ``(r, g, b)`` triples. Classes that no mask
    target names are missing from the result (they cannot be written).

    Raises:
        InvalidInputError: ``mapping`` is not resolved (K unknown)
    """
    if not mapping.resolved:
        raise InvalidInputError("call LabelMapping.resolve(K) before class_values().")
    if mapping.value_to_class is None and not mapping.rgb:
        return {k: k for k in range(len(mapping.classes))}
    out: Dict[int, MaskValue] = {}
    for value in sorted(mapping.value_to_class):
        k = mapping.value_to_class[value]
        if k in out:
            continue
        out[k] = ((value >> 16) & 255, (value >> 8) & 255, value & 255) if mapping.rgb else int(value)
    return out


def _fits(value: MaskValue, dtype: np.dtype) -> bool:
    values = value if isinstance(value, tuple) else (value,)
    if dtype.kind == "f":
        return True
    if dtype.kind == "b":
        return all(v in (0, 1) for v in values)
    info = np.iinfo(dtype)
    return all(info.min <= v <= info.max for v in values)


def _box(patch: RegionPatch, shape: Tuple[int, int], where: str) -> Tuple[int, int]:
    """The region's top-left pixel (x0, y0); checks that its box and mask
    fit a mask of ``shape``."""
    h, w = shape
    bx, by, bw, bh = (float(v) for v in patch.bounding_box)
    x0, y0 = int(round(bx * w)), int(round(by * h))
    mh, mw = patch.mask.shape
    if (
        int(round(bw * w)) != mw
        or int(round(bh * h)) != mh
        or x0 < 0
        or y0 < 0
        or x0 + mw > w
        or y0 + mh > h
    ):
        raise InvalidInputError(
            f"{patch.name} of {where} (box {list(patch.bounding_box)}, mask {mh}x{mw}) does not fit its "
            f"{w}x{h} label mask: the mask changed size since it was scored. Score the label field again."
        )
    return x0, y0


def paste_regions(label_mask: np.ndarray, patches: Sequence[RegionPatch], *, where: str = "mask") -> Tuple[np.ndarray, int]:
    """A copy of ``label_mask`` with each region's pixels set to its value.

    Regions are pasted in order (a later one wins where they overlap; issue
    regions of one run never overlap). ``label_mask`` is never modified.

    Args:
        label_mask: (H,W) integer mask, or (H,W,3) RGB when the values are
            ``(r, g, b)`` triples
        patches: the regions (:class:`RegionPatch`)
        where ("mask"): how to name the mask in errors (sample id, path)

    Returns:
        (the corrected mask, same shape and dtype; the number of pixels
        whose value changed)

    Raises:
        InvalidInputError: a region that does not fit the mask, a value of
            the wrong kind (colour for a grayscale mask, or the reverse), or
            a value the mask's dtype cannot hold
    """
    base = np.asarray(label_mask)
    rgb = base.ndim == 3
    if base.ndim not in (2, 3) or (rgb and base.shape[2] != 3):
        raise InvalidInputError(f"{where} has shape {base.shape}; expected (H, W) or (H, W, 3).")
    out = base.copy()
    for patch in patches:
        if isinstance(patch.value, tuple) != rgb:
            kind = "an RGB colour" if isinstance(patch.value, tuple) else "a grayscale value"
            raise InvalidInputError(
                f"{patch.name} of {where} would write {kind} into a mask of shape {base.shape}; the "
                "label field's mask targets and its masks disagree (RGB masks need '#rrggbb' targets)."
            )
        if not _fits(patch.value, base.dtype):
            raise InvalidInputError(
                f"{patch.name} of {where} would write the value {patch.value} into a {base.dtype} mask, "
                "which cannot hold it; store the label masks with a wider dtype (16-bit PNGs)."
            )
        x0, y0 = _box(patch, base.shape[:2], where)
        mh, mw = patch.mask.shape
        out[y0 : y0 + mh, x0 : x0 + mw][np.asarray(patch.mask, dtype=bool)] = patch.value
    changed = out != base
    return out, int(np.count_nonzero(changed.any(axis=2) if rgb else changed))


def png_image(label_mask: np.ndarray, *, where: str = "mask") -> np.ndarray:
    """The array to encode as the PNG of a label mask (OpenCV's channel
    order): uint8 and uint16 masks as they are, RGB masks as BGR; inline
    masks of other integer dtypes (or bool, or integral floats) in the
    narrowest of uint8 / uint16 that holds their values.

    Raises:
        InvalidInputError: values a PNG cannot hold (negative, above 65535,
            or not integers)
    """
    m = np.asarray(label_mask)
    if m.ndim == 3:
        if m.dtype not in (np.uint8, np.uint16):
            raise InvalidInputError(f"{where} is an RGB mask of dtype {m.dtype}; expected uint8.")
        return np.ascontiguousarray(m[..., ::-1])
    if m.dtype in (np.uint8, np.uint16):
        return m
    if m.dtype.kind == "b":
        return m.astype(np.uint8)
    if m.dtype.kind not in "iuf" or (m.dtype.kind == "f" and not (m == np.round(m)).all()):
        raise InvalidInputError(f"{where} holds non-integer values ({m.dtype}); a label PNG cannot store them.")
    lo, hi = (m.min(), m.max()) if m.size else (0, 0)
    if lo < 0 or hi > 65535:
        raise InvalidInputError(f"{where} holds values in [{lo}, {hi}]; a label PNG stores 0..65535.")
    return m.astype(np.uint8 if hi <= 255 else np.uint16)
