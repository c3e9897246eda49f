"""The images behind a cache's rows, read back from its source, and thumbnails of them.

Image files are opened by their recorded paths (the source root + the row's key); array
sources (Fashion-MNIST, npz, any registered kind) are reopened from what the manifest
describes. A source that has moved gives no pixels: the thumbnail says "source not found"
and nothing fails.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from bottleneck.storage.names import find_on_disk

THUMB_SIDE = 96
MAX_THUMBNAILS = 400  # per report: keeps the file a few MB
JPEG_QUALITY = 85


class ImageReader:
    """Pixels of one cache's rows (uint8 H×W×3), or None where the source lacks them."""

    def __init__(self, source: dict[str, Any]) -> None:
        self.kind = str(source.get("kind"))
        self.problem: str | None = None
        self._root: Path | None = None
        self._source: Any = None
        if self.kind == "folder":
            self._root = Path(str(source.get("root")))
            if not self._root.is_dir():
                self.problem = f"source not found: {self._root}"
            return
        from bottleneck.data import reopen_source
        from bottleneck.errors import UserError

        try:
            self._source = reopen_source(source)
        except (UserError, OSError, ValueError) as exc:
            self.problem = f"source not found: {exc}"

    def pixels(self, key: str, split: str = "train", label: int = 0) -> np.ndarray | None:
        """The row's image, or None (the file or source is gone or unreadable)."""
        if self.problem:
            return None
        if self._root is not None:
            path = self._root / key  # the name on disk may be in another Unicode form
            return _read_file(find_on_disk(path) or path)
        from bottleneck.data import Item

        try:
            return np.asarray(self._source.load_image(Item(key, int(label), split)))
        except (ValueError, KeyError, IndexError, OSError):
            return None


def _read_file(path: Path) -> np.ndarray | None:
    """An image file as RGB at a size no smaller than a thumbnail needs."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", (2 * THUMB_SIDE, 2 * THUMB_SIDE))  # JPEG: decode scaled down
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError):
        return None


def encode(pixels: np.ndarray) -> str:
    """A data URI of the image at most ``THUMB_SIDE`` pixels a side: PNG when small (the
    thumbnails of 28×28 Fashion-MNIST stay sharp), JPEG otherwise."""
    image = Image.fromarray(np.asarray(pixels, np.uint8))
    image.thumbnail((THUMB_SIDE, THUMB_SIDE))
    buffer = io.BytesIO()
    small = image.width * image.height <= 48 * 48
    if small:
        image.save(buffer, format="PNG", optimize=True)
    else:
        image.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
    kind = "png" if small else "jpeg"
    return f"data:image/{kind};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


class Thumbnails:
    """Thumbnails for a whole report, at most ``limit`` of them, each row encoded once."""

    def __init__(self, limit: int = MAX_THUMBNAILS) -> None:
        self.limit = limit
        self.made = 0
        self._done: dict[tuple[str, str], dict[str, Any]] = {}

    def get(self, reader: ImageReader, cache_id: str, key: str, split: str, label: int
            ) -> dict[str, Any]:
        """``{"src": data URI}`` or ``{"src": None, "note": why there is no picture}``."""
        if (cache_id, key) in self._done:
            return self._done[cache_id, key]
        if self.made >= self.limit:
            return {"src": None, "note": "thumbnail limit reached"}
        pixels = reader.pixels(key, split, label)
        if pixels is None:
            result = {"src": None, "note": "source not found"}
        else:
            result = {"src": encode(pixels)}
            self.made += 1
        self._done[cache_id, key] = result
        return result
