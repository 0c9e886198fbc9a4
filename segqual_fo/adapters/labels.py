"""Label files and instance labels to label masks (no FiftyOne here).

- Mask files (what ``fo.Segmentation.mask_path`` points to): a PNG, 8/16-bit
  or RGB, read as stored (:func:`read_mask_file`).
- Instance labels (what FiftyOne's ``fo.Detections`` with instance masks
  hold, e.g. from its COCO importer), given as plain :class:`Instance`
  records (the FiftyOne layer converts them, so that Dask workers decode
  without importing FiftyOne): rasterised to a semantic mask at the image
  size (each instance mask pasted where the importer cut it, see
  :func:`_render`), using the same rule as :mod:`segqual_fo.adapters.coco`:
  uncovered pixels are void (255), larger objects are painted first so
  smaller ones stay visible, crowd objects are void except where another
  object covers them. Instances without a mask fill their bounding box.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from segqual_fo.adapters.masks import VOID_VALUE
from segqual_fo.errors import FiftyOneInputError, InvalidFileError


@dataclass
class Instance:
    """One object of an instance label (a ``fo.Detection``'s essentials).

    Attributes:
        label: class name
        bounding_box: [x, y, w, h] relative to the image, in [0, 1]
        mask: (h, w) instance mask inside the box, or None (the whole box)
        iscrowd: a COCO crowd region (void unless another object covers it)
    """

    label: str
    bounding_box: Tuple[float, float, float, float]
    mask: Optional[np.ndarray] = None
    iscrowd: bool = False


def read_mask_file(path: str) -> np.ndarray:
    """Reads a mask image as stored (8/16-bit gray or RGB, no conversion).

    Raises:
        InvalidFileError: missing or unreadable file
    """
    import os

    import cv2

    if not os.path.isfile(path):
        raise InvalidFileError(f"mask file {path} does not exist.")
    m = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if m is None:
        raise InvalidFileError(f"cannot read mask file {path} (not an image OpenCV can decode).")
    if m.ndim == 3:
        m = m[:, :, 2::-1] if m.shape[2] >= 3 else m  # BGR(A) -> RGB
    return m


def _area(det: Instance) -> float:
    if det.mask is not None:
        bw, bh = det.bounding_box[2], det.bounding_box[3]
        m = np.asarray(det.mask)
        return float(np.count_nonzero(m)) / max(m.size, 1) * bw * bh
    return float(det.bounding_box[2] * det.bounding_box[3])


def _render(canvas_shape: Tuple[int, int], det: Instance) -> Tuple[np.ndarray, Tuple[int, int]]:
    """(object mask clipped to the image, (x0, y0)) in pixels.

    The instance mask is the crop of the full-image mask at
    ``round(x * W), round(y * H)`` (how FiftyOne's COCO importer cuts it), so
    it is pasted there at its own size, without resampling: this reproduces
    pycocotools' masks exactly. A mask whose size disagrees with its box by
    more than a rounding pixel is resized to the box (nearest neighbour).
    """
    h, w = canvas_shape
    bx, by, bw, bh = det.bounding_box
    x0, y0 = int(round(bx * w)), int(round(by * h))
    box_w = max(int(round((bx + bw) * w)) - x0, 0)
    box_h = max(int(round((by + bh) * h)) - y0, 0)
    if det.mask is None:
        obj = np.ones((box_h, box_w), dtype=bool)
    else:
        obj = np.asarray(det.mask).astype(bool)
        if abs(obj.shape[0] - box_h) > 1 or abs(obj.shape[1] - box_w) > 1:
            import cv2

            obj = cv2.resize(obj.astype(np.uint8), (max(box_w, 1), max(box_h, 1)), interpolation=cv2.INTER_NEAREST).astype(bool)
    # clip to the image
    cx0, cy0 = max(x0, 0), max(y0, 0)
    obj = obj[cy0 - y0 : max(h - y0, 0), cx0 - x0 : max(w - x0, 0)]
    return obj, (cx0, cy0)


def instances_to_mask(
    instances: Optional[Sequence[Instance]],
    frame_size: Tuple[int, int],
    class_index: Dict[str, int],
    *,
    void: int = VOID_VALUE,
    where: str = "sample",
) -> np.ndarray:
    """Semantic (H,W) mask from instance detections (see the module docs).

    Args:
        instances: the image's objects (None or empty: no objects)
        frame_size: (width, height) of the image
        class_index: detection label -> class index
        void (255): value of uncovered and crowd pixels
        where ("sample"): how to name the sample in errors

    Raises:
        FiftyOneInputError: a detection label that is not a class
    """
    w, h = frame_size
    dtype = np.uint8 if void <= 255 else np.uint16
    out = np.full((h, w), void, dtype=dtype)
    dets = list(instances or [])
    if not dets:
        return out
    painted = np.zeros((h, w), dtype=bool)
    crowds = [d for d in dets if d.iscrowd]
    things = [d for d in dets if not d.iscrowd]
    for det in sorted(things, key=_area, reverse=True):
        if det.label not in class_index:
            raise FiftyOneInputError(
                f"{where} has a detection labelled {det.label!r}, which is not one of the "
                f"{len(class_index)} classes; pass classes=[...] including it, or ignore it."
            )
        obj, (x0, y0) = _render((h, w), det)
        dh, dw = obj.shape
        out[y0 : y0 + dh, x0 : x0 + dw][obj] = class_index[det.label]
        painted[y0 : y0 + dh, x0 : x0 + dw] |= obj
    for det in crowds:
        obj, (x0, y0) = _render((h, w), det)
        dh, dw = obj.shape
        region = obj & ~painted[y0 : y0 + dh, x0 : x0 + dw]
        out[y0 : y0 + dh, x0 : x0 + dw][region] = void
    return out
