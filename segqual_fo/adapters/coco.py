"""COCO instance annotations to semantic label masks, via pycocotools.

Class index k is the k-th entry of the JSON's ``categories`` list (so mask
value k and probability channel k), whatever the (often non-contiguous)
category ids are.

Rasterisation rule, documented because instance annotations overlap:

- pixels covered by no annotation are void (:data:`~segqual_fo.adapters.masks.VOID_VALUE`, 255);
- instances are painted from the largest area to the smallest, so where two
  objects overlap the smaller one wins (a cup stays visible on a table);
- crowd regions (``iscrowd=1``, usually RLE) are void, except where a
  non-crowd instance covers them: the crowd's label is ambiguous by design.

pycocotools decodes polygons and compressed/uncompressed RLE
(``COCO.annToMask``).
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from segqual_fo.adapters.masks import void_value
from segqual_fo.errors import InvalidFileError, InvalidInputError


def load_coco(annotations_path: str):
    """Loads a COCO annotations JSON with pycocotools (quietly).

    Raises:
        InvalidFileError: missing or malformed file
    """
    import contextlib
    import io

    from pycocotools.coco import COCO

    if not os.path.isfile(annotations_path):
        raise InvalidFileError(f"COCO annotations file {annotations_path} does not exist.")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(annotations_path)
    except (ValueError, KeyError, TypeError, OSError) as e:
        raise InvalidFileError(f"cannot read COCO annotations {annotations_path}: {e!r}") from None


def coco_classes(coco) -> Tuple[List[str], Dict[int, int]]:
    """(class names in ``categories`` order, category id -> class index)."""
    cats = coco.dataset.get("categories") or []
    if not cats:
        raise InvalidInputError("the COCO file has no categories.")
    names = [str(c["name"]) for c in cats]
    if len(set(names)) != len(names):
        raise InvalidInputError("COCO category names are not unique.")
    return names, {int(c["id"]): k for k, c in enumerate(cats)}


def coco_annotations_to_label_mask(
    coco, image_id: int, category_index: Dict[int, int], *, void: Optional[int] = None
) -> np.ndarray:
    """Semantic (H,W) mask of one image (see the module docs for the rules).

    Args:
        coco: a ``pycocotools.coco.COCO``
        image_id: the COCO image id
        category_index: category id -> class index (from :func:`coco_classes`)
        void (None): value of unlabelled/crowd pixels (255, or 65535 when
            there are 255+ classes)

    Returns:
        (H,W) uint8 (uint16 for 255+ classes) mask
    """
    info = coco.imgs.get(image_id)
    if info is None:
        raise InvalidInputError(f"image id {image_id} is not in the COCO file.")
    k = len(category_index)
    void = void_value(k) if void is None else void
    dtype = np.uint8 if void <= 255 else np.uint16
    h, w = int(info["height"]), int(info["width"])
    out = np.full((h, w), void, dtype=dtype)
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id], iscrowd=None))
    # crowd annotations are never painted: their pixels stay void (``out``
    # starts void) unless an ordinary object covers them
    instances = [a for a in anns if not a.get("iscrowd", 0)]
    for ann in sorted(instances, key=lambda a: -float(a.get("area") or 0)):
        cls = category_index.get(int(ann["category_id"]))
        if cls is None:
            raise InvalidInputError(
                f"annotation {ann.get('id')} of image {image_id} has category_id "
                f"{ann['category_id']}, which is not in categories."
            )
        m = coco.annToMask(ann).astype(bool)
        out[m] = cls
    return out
