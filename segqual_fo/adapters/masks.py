"""Decode stored label masks into class indices (= probability channels).

What a mask value means is decided once, by :class:`LabelMapping`, from what
the dataset says and what the caller passes. The rules, in order:

1. ``classes`` given (a list of names): probability channel k is
   ``classes[k]``. A mask value maps to the class its mask target names
   (``mask_targets[value]``); without mask targets, value k is class k.
2. No ``classes``, integer mask targets ``{value: name}``: mask value k is
   class k and channel k, named by its target (``str(k)`` when a value has
   no target). This is the common case: targets only name the classes.
3. RGB masks (targets keyed ``"#rrggbb"``): a colour maps to the class its
   target names; without ``classes`` the class order is the order of the
   mask targets.
4. Neither: mask value k is class k and channel k; names are ``"0"..``.

Ignored pixels: ``ignore`` holds mask values (ints, or ``"#rrggbb"`` for RGB)
and/or class names. A value that is also a class (CamVid's "void" = 11 with
a 12th channel) stays a class in the list, but its pixels are excluded from
every score and count. Any other value that maps to no class is an error
naming the values and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from segqual_fo.errors import InvalidInputError, InvalidLabelsError

#: The conventional "void / unlabelled" mask value (VOC, COCO-stuff, ...).
VOID_VALUE = 255


def _class_count_error(names: Sequence[str], num_classes: int) -> InvalidInputError:
    return InvalidInputError(
        f"the probabilities have K={num_classes} channels but the class list has "
        f"{len(names)} classes ({list(names[:8])}{'...' if len(names) > 8 else ''}); "
        "probability channel k must be class k. Pass classes=[...] in channel order."
    )


def void_value(num_classes: int) -> int:
    """The mask value of unlabelled pixels in masks we rasterise (COCO,
    Detections): 255, or 65535 (16-bit masks) when 255 is a class."""
    return VOID_VALUE if num_classes < VOID_VALUE else 65535


def _is_hex_color(x: Any) -> bool:
    return isinstance(x, str) and len(x) == 7 and x.startswith("#")


def hex_to_int(color: str) -> int:
    try:
        return int(color[1:], 16)
    except ValueError:
        raise InvalidInputError(f"{color!r} is not a '#rrggbb' colour.") from None


def rgb_to_int(mask: np.ndarray) -> np.ndarray:
    """(H,W,3) uint8 RGB to (H,W) int32 ``r << 16 | g << 8 | b``."""
    m = mask.astype(np.int32)
    return (m[..., 0] << 16) | (m[..., 1] << 8) | m[..., 2]


@dataclass
class LabelMapping:
    """How stored mask values become class indices.

    Build it with :meth:`from_targets`; call :meth:`decode` per mask.

    Attributes:
        classes: class names in probability-channel order, or None when the
            identity mapping is used and K is not known yet
        rgb: masks are RGB images
        value_to_class: mask value -> class index (None for identity)
        ignore_values: mask values whose pixels are ignored (not classes)
        ignore_classes: class indices whose pixels are ignored
        default_void: ignore 255 when it turns out not to be a class
        resolved: K is fixed (:meth:`resolve` was called)
    """

    classes: Optional[List[str]]
    rgb: bool = False
    value_to_class: Optional[Dict[int, int]] = None
    ignore_values: Tuple[int, ...] = ()
    ignore_classes: Tuple[int, ...] = ()
    default_void: bool = True
    resolved: bool = False
    #: the class list was given (``classes=``): K must equal its length
    explicit_classes: bool = False

    @classmethod
    def from_targets(
        cls,
        *,
        mask_targets: Optional[Dict[Any, str]] = None,
        classes: Optional[Sequence[str]] = None,
        ignore: Any = None,
        default_void: bool = True,
    ) -> "LabelMapping":
        """Builds the mapping (see the module docs for the rules).

        Args:
            mask_targets (None): ``{value: name}`` or ``{"#rrggbb": name}``
            classes (None): class names in probability-channel order
            ignore (None): mask values and/or class names to ignore
            default_void (True): also ignore 255 when it is not a class

        Raises:
            InvalidInputError: contradictory or unknown names/values
        """
        targets = dict(mask_targets or {})
        rgb = any(_is_hex_color(k) for k in targets)
        if rgb and not all(_is_hex_color(k) for k in targets):
            raise InvalidInputError("mask_targets mix '#rrggbb' colours and integer values.")
        if not rgb:
            try:
                targets = {int(k): str(v) for k, v in targets.items()}
            except (TypeError, ValueError):
                raise InvalidInputError(f"mask_targets keys must be ints or '#rrggbb': {list(targets)[:5]}") from None

        names = list(classes) if classes is not None else None
        if names is not None and len(set(names)) != len(names):
            raise InvalidInputError(f"classes holds duplicate names: {names}.")
        value_to_class: Optional[Dict[int, int]] = None
        if rgb:
            if names is None:
                names = list(dict.fromkeys(targets.values()))
            index = {n: i for i, n in enumerate(names)}
            value_to_class = {}
            for color, name in targets.items():
                if name in index:
                    value_to_class[hex_to_int(color)] = index[name]
        elif names is not None and targets:
            index = {n: i for i, n in enumerate(names)}
            value_to_class = {v: index[n] for v, n in targets.items() if n in index}
        elif targets:
            k = max(targets) + 1
            names = [targets.get(v, str(v)) for v in range(k)]
            # identity: value k is class k; K is confirmed by the probabilities

        # ignore: mask values and class names
        items = [] if ignore is None else ([ignore] if np.ndim(ignore) == 0 else list(ignore))
        ignore_values, ignore_classes = set(), set()
        name_to_class = {n: i for i, n in enumerate(names)} if names is not None else {}
        for item in items:
            if isinstance(item, (bool, np.bool_)) or item is None:
                raise InvalidInputError(
                    f"ignore_index values must be mask values or class names, got {item!r}."
                )
            if isinstance(item, str) and not _is_hex_color(item):
                if item in name_to_class:
                    ignore_classes.add(name_to_class[item])
                    continue
                values = [v for v, n in targets.items() if n == item]  # e.g. "unlabeled" -> 255
                if not values:
                    known = sorted(set(name_to_class) | set(targets.values()))
                    raise InvalidInputError(
                        f"ignore_index names {item!r}, which is neither a class nor a mask "
                        f"target; known names: {known[:20]}."
                    )
                ignore_values.update(hex_to_int(v) if rgb else int(v) for v in values)
                continue
            try:
                value = hex_to_int(item) if _is_hex_color(item) else int(item)
            except (TypeError, ValueError):
                raise InvalidInputError(
                    f"ignore_index values must be mask values or class names, got {item!r}."
                ) from None
            if value_to_class is not None and value in value_to_class:
                ignore_classes.add(value_to_class[value])
            else:
                # identity mapping: a value below K is a class, decided in resolve()
                ignore_values.add(value)
        return cls(
            classes=names,
            rgb=rgb,
            value_to_class=value_to_class,
            ignore_values=tuple(sorted(ignore_values)),
            ignore_classes=tuple(sorted(ignore_classes)),
            default_void=default_void and not rgb,
            explicit_classes=classes is not None,
        )

    @property
    def num_classes(self) -> Optional[int]:
        return None if self.classes is None else len(self.classes)

    def resolve(self, num_classes: int) -> "LabelMapping":
        """Fixes K from the probabilities and returns the final mapping.

        With the identity mapping, names missing from the mask targets become
        ``str(k)``, ignored values below K become ignored classes, and 255 is
        ignored by default when it is not a class.

        Raises:
            InvalidInputError: the class list and K disagree
        """
        names = self.classes
        if self.explicit_classes and len(names) != num_classes:
            raise _class_count_error(names, num_classes)
        if self.value_to_class is None and not self.rgb:
            names = list(names or [])
            if len(names) > num_classes:
                raise InvalidInputError(
                    f"the mask targets name {len(names)} classes (values 0..{len(names) - 1}) "
                    f"but the probabilities have K={num_classes} channels; probability "
                    "channel k must be the class of mask value k. Pass classes=[...] in "
                    "channel order with the mask targets mapping values to those names."
                )
            names += [str(k) for k in range(len(names), num_classes)]
            ignore_classes = set(self.ignore_classes) | {v for v in self.ignore_values if 0 <= v < num_classes}
            ignore_values = {v for v in self.ignore_values if not 0 <= v < num_classes}
            if self.default_void and VOID_VALUE >= num_classes:
                ignore_values.add(VOID_VALUE)
        else:
            if len(names) != num_classes:
                raise _class_count_error(names, num_classes)
            ignore_classes = set(self.ignore_classes)
            ignore_values = set(self.ignore_values)
            if self.default_void and VOID_VALUE not in self.value_to_class:
                ignore_values.add(VOID_VALUE)
        return LabelMapping(
            classes=names,
            rgb=self.rgb,
            value_to_class=self.value_to_class,
            ignore_values=tuple(sorted(ignore_values)),
            ignore_classes=tuple(sorted(ignore_classes)),
            default_void=False,
            resolved=True,
        )

    @property
    def sentinel(self) -> int:
        """The decoded value of ignored pixels that are not classes."""
        return 65535 if (self.num_classes or 0) > 254 else 255

    @property
    def core_ignore(self) -> Tuple[int, ...]:
        """``ignore_index`` to pass to the core for decoded masks."""
        return tuple(sorted(set(self.ignore_classes) | {self.sentinel}))

    def decode(self, mask: np.ndarray, *, where: str = "mask") -> np.ndarray:
        """Maps a stored mask to class indices; ignored values become
        :attr:`sentinel`.

        Args:
            mask: (H,W) integer mask, or (H,W,3) RGB when ``rgb``
            where ("mask"): how to name the mask in errors (sample id, path)

        Raises:
            InvalidLabelsError: values that are neither classes nor ignored
        """
        if not self.resolved:
            raise InvalidInputError("call LabelMapping.resolve(K) before decode().")
        k = len(self.classes)
        out_dtype = np.uint16 if k > 254 else np.uint8
        sentinel = self.sentinel
        m = np.asarray(mask)
        if self.rgb:
            if m.ndim != 3 or m.shape[2] < 3:
                raise InvalidLabelsError(
                    f"{where} has shape {m.shape}; RGB mask targets need (H, W, 3) colour masks."
                )
            m = rgb_to_int(m[..., :3])
        elif m.ndim == 3 and m.shape[2] in (3, 4):
            raise InvalidLabelsError(
                f"{where} is a colour image {m.shape} but the mask targets are integers; "
                "give '#rrggbb' mask targets for RGB masks."
            )
        elif m.ndim != 2:
            raise InvalidLabelsError(f"{where} has shape {m.shape}; expected (H, W).")
        if m.dtype.kind == "f":
            if not (m == np.round(m)).all():
                raise InvalidLabelsError(f"{where} holds non-integer values.")
            m = m.astype(np.int64)
        elif m.dtype.kind == "b":
            m = m.astype(np.uint8)

        if self.value_to_class is None and not self.rgb:
            out = m.astype(out_dtype, copy=True) if m.dtype != out_dtype else m.copy()
            bad = (m < 0) | (m >= k)
            if bad.any():
                ign = np.isin(m, self.ignore_values) if self.ignore_values else np.zeros_like(bad)
                unknown = bad & ~ign
                if unknown.any():
                    self._raise_unknown(m[unknown], where)
                out[bad] = sentinel
            return out

        keys = np.array(sorted(self.value_to_class), dtype=np.int64)
        vals = np.array([self.value_to_class[v] for v in keys], dtype=out_dtype)
        flat = m.reshape(-1).astype(np.int64)
        pos = np.searchsorted(keys, flat)
        pos = np.minimum(pos, len(keys) - 1) if len(keys) else pos
        hit = keys[pos] == flat if len(keys) else np.zeros(flat.shape, bool)
        out = np.full(flat.shape, sentinel, dtype=out_dtype)
        out[hit] = vals[pos[hit]]
        if not hit.all():
            missing = flat[~hit]
            if self.ignore_values:
                missing = missing[~np.isin(missing, self.ignore_values)]
            if missing.size:
                self._raise_unknown(missing, where)
        return out.reshape(m.shape)

    def _raise_unknown(self, values: np.ndarray, where: str) -> None:
        uniq = np.unique(values)
        shown = [f"#{int(v):06x}" if self.rgb else int(v) for v in uniq[:10]]
        more = ", ..." if uniq.size > 10 else ""
        raise InvalidLabelsError(
            f"{where} holds mask values {shown}{more} that are neither classes "
            f"({len(self.classes)} classes) nor ignored. Pass ignore_index=[...] to skip "
            "them, or add them to mask_targets / classes."
        )
