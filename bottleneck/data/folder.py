"""A folder per class, optionally under ``train/``, ``validation/`` (``val/``), ``test/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.data import images
from bottleneck.data.sources import (
    Item,
    Source,
    check_percents,
    hash_split,
    sort_items,
    stratified_limit,
)
from bottleneck.errors import UserError

SPLIT_FOLDERS = {"train": ("train",), "val": ("validation", "val"), "test": ("test",)}


class FolderSource(Source):
    """A folder per class, optionally under ``train/``, ``validation/`` (``val/``), ``test/``."""

    def __init__(
        self, root: str | Path, val_percent: float = 10, test_percent: float = 10,
        limit: int | None = None,
    ) -> None:
        self.root = Path(root).expanduser().resolve()
        if self.root.is_file():
            raise UserError(f"{root} is a file; SOURCE is a folder with a subfolder per class, "
                            "fashion-mnist, or an .npz file.")
        if not self.root.is_dir():
            raise UserError(f"source folder not found: {root} (expected a folder per class).")
        self.val_percent, self.test_percent, self.limit = val_percent, test_percent, limit
        check_percents(val_percent, test_percent)
        self.split_dirs = self._find_split_dirs()
        class_dirs = {
            child.name
            for base in (self.split_dirs.values() if self.split_dirs else [self.root])
            for child in base.iterdir()
            if child.is_dir() and not child.name.startswith(".")
        }
        self.classes = sorted(class_dirs)
        self._items = stratified_limit(self._list_items(), limit)
        if not self._items:
            raise UserError(
                f"no images found in {root}: put each class's images in its own subfolder "
                "(root/CLASS/image.jpg)."
            )

    def _find_split_dirs(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for split, names in SPLIT_FOLDERS.items():
            for name in names:
                if (self.root / name).is_dir():
                    found[split] = self.root / name
                    break
        return found if "train" in found and len(found) >= 2 else {}

    def _list_items(self) -> list[Item]:
        label_of = {name: i for i, name in enumerate(self.classes)}
        items = []
        bases = self.split_dirs.items() if self.split_dirs else [(None, self.root)]
        for split, base in bases:
            for class_name in self.classes:
                class_dir = base / class_name
                if not class_dir.is_dir():
                    continue
                for path in sorted(class_dir.rglob("*")):
                    key = path.relative_to(self.root).as_posix()
                    # hidden below the root only: the root itself may sit under ~/.keras
                    if path.is_file() and not any(p.startswith(".") for p in key.split("/")):
                        item_split = split or hash_split(
                            key, self.val_percent, self.test_percent
                        )
                        items.append(Item(key, label_of[class_name], item_split))
        return sort_items(items)

    def items(self) -> list[Item]:
        return self._items

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "folder", "root": str(self.root),
            "splits": "folders" if self.split_dirs else "hash",
            "val_percent": self.val_percent, "test_percent": self.test_percent,
            "limit": self.limit,
        }

    def load_image(self, item: Item, decode_size: int | None = None) -> np.ndarray:
        return images.decode_file(self.root / item.key, decode_size)
