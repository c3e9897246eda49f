"""Augmented views: which ops, with which factors (``--augment-ops``), and the image-key seed.

No TensorFlow here: :mod:`bottleneck.data.augment` (TensorFlow) and
:mod:`bottleneck.data.augment_np` (NumPy) both apply what :class:`Augment` describes. The ops
keep the meanings and defaults of Keras' preprocessing layers (see ``augment.py``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from bottleneck.errors import UserError

OPS = ("flip", "rotate", "zoom", "translate", "contrast")
DEFAULT_OPS = "flip,rotate=0.1,zoom=0.1"
FLIP_MODES = {"horizontal": (False, True), "vertical": (True, False), "both": (True, True)}


@dataclass(frozen=True)
class Augment:
    """Parsed ``--augment-ops``: which ops, with which factors."""

    flip: str | None = None
    rotate: float = 0.0
    zoom: float = 0.0
    translate: float = 0.0
    contrast: float = 0.0

    @classmethod
    def parse(cls, text: str | None) -> Augment:
        """``"flip,rotate=0.1,zoom=0.1"`` → Augment; a bad op is one line saying what is valid."""
        values: dict[str, object] = {}
        for part in (p.strip() for p in (text or DEFAULT_OPS).split(",") if p.strip()):
            name, _, value = part.partition("=")
            if name not in OPS:
                raise UserError(f"unknown augment op '{name}'; choose from: {', '.join(OPS)} "
                                "(e.g. --augment-ops flip,rotate=0.1,zoom=0.1).")
            if name == "flip":
                mode = value or "horizontal"
                if mode not in FLIP_MODES:
                    raise UserError(f"flip={mode} is not valid; use flip, flip=vertical or "
                                    "flip=both.")
                values[name] = mode
                continue
            try:
                factor = float(value)
            except ValueError:
                raise UserError(f"augment op {part!r} needs a number, e.g. {name}=0.1.") from None
            if not 0 < factor < 1:
                raise UserError(f"augment op {part!r}: the factor must be between 0 and 1.")
            values[name] = factor
        return cls(**values)  # type: ignore[arg-type]

    def describe(self) -> str:
        """The canonical text recorded in the manifest."""
        parts = [f"flip={self.flip}"] if self.flip else []
        parts += [f"{op}={getattr(self, op)}" for op in OPS[1:] if getattr(self, op)]
        return ",".join(parts)


def key_seed(key: str) -> int:
    """A stable 62-bit number for an image key (the first half of every view's seed)."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:15], 16) >> 2
