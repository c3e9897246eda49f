"""A folder per class, optionally under ``train/``, ``validation/`` (``val/``), ``test/``."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
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
from bottleneck.storage.ours import LINEAGE_SUFFIX, what_of_ours

SPLIT_FOLDERS = {"train": ("train",), "val": ("validation", "val"), "test": ("test",)}


class FolderSource(Source):
    """A folder per class, optionally under ``train/``, ``validation/`` (``val/``), ``test/``."""

    def __init__(
        self, root: str | Path, val_percent: float = 10, test_percent: float = 10,
        limit: int | None = None, exclude: Sequence[str | Path] = (),
    ) -> None:
        self.root = Path(root).expanduser().resolve()
        if self.root.is_file():
            raise UserError(f"{root} is a file; SOURCE is a folder with a subfolder per class, "
                            "fashion-mnist, or an .npz file.")
        if not self.root.is_dir():
            raise UserError(f"source folder not found: {root} (expected a folder per class).")
        self.val_percent, self.test_percent, self.limit = val_percent, test_percent, limit
        check_percents(val_percent, test_percent)
        # never read as images: the given paths (an --out) and anything bottleneck wrote
        self.exclude = tuple(Path(p).expanduser().resolve() for p in exclude)
        self.skipped: list[tuple[Path, str]] = []
        self._read_dirs: dict[tuple[int, int], Path] = {}  # (device, inode) → its first path
        self._claim(self.root)
        self.split_dirs = self._find_split_dirs()
        for base in self.split_dirs.values():
            self._claim(base)
        class_dirs = {
            child.name
            for base in (self.split_dirs.values() if self.split_dirs else [self.root])
            for child in base.iterdir()
            if child.is_dir() and not child.name.startswith(".") and not self._skip(child)
        }
        self.classes = sorted(class_dirs)
        self._items = stratified_limit(self._list_items(), limit)
        if not self._items:
            raise UserError(
                f"no images found in {root}: put each class's images in its own subfolder "
                "(root/CLASS/image.jpg)."
            )

    def _skip(self, path: Path) -> bool:
        """True (and noted in ``skipped``) when ``path`` is excluded or an output of ours."""
        if any(p == path for p, _ in self.skipped):
            return True
        reason = "the --out of this run" if path in self.exclude else what_of_ours(path)
        if reason is not None:
            self.skipped.append((path, reason))
        return reason is not None

    def _claim(self, path: Path) -> bool:
        """True the first time the real folder at ``path`` (its device and inode, through any
        link) is met; after that, the path is noted in ``skipped`` (once) as a link to a
        folder already read, and not followed: a link loop is read once."""
        try:
            stat = os.stat(path)
        except OSError:  # vanished, or a dangling link: nothing to read there
            return False
        first = self._read_dirs.setdefault((stat.st_dev, stat.st_ino), path)
        if first == path:
            return True
        if all(p != path for p, _ in self.skipped):
            self.skipped.append((path, f"the folder {first} again, through a link: read once"))
        return False

    def excluding(self, paths: Sequence[str | Path]) -> FolderSource:
        """This source, scanned again without ``paths`` where any lies inside its root."""
        left_out = {*self.exclude, *(path for path, _ in self.skipped)}
        inside = [p for p in (Path(p).expanduser().resolve() for p in paths)
                  if p != self.root and p.is_relative_to(self.root) and p not in left_out]
        if not inside:
            return self
        return FolderSource(self.root, self.val_percent, self.test_percent, self.limit,
                            (*self.exclude, *inside))

    def _find_split_dirs(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for split, names in SPLIT_FOLDERS.items():
            for name in names:
                if (self.root / name).is_dir() and not self._skip(self.root / name):
                    found[split] = self.root / name
                    break
        return found if "train" in found and len(found) >= 2 else {}

    def _list_items(self) -> list[Item]:
        label_of = {name: i for i, name in enumerate(self.classes)}
        items = []
        bases = self.split_dirs.items() if self.split_dirs else [(None, self.root)]
        class_dirs = [(split, base / name) for split, base in bases for name in self.classes
                      if (base / name).is_dir() and not self._skip(base / name)]
        class_dirs = [(split, folder) for split, folder in class_dirs if self._claim(folder)]
        for split, class_dir in class_dirs:
            for path in self._files(class_dir):
                key = path.relative_to(self.root).as_posix()
                item_split = split or hash_split(key, self.val_percent, self.test_percent)
                items.append(Item(key, label_of[class_dir.name], item_split))
        return sort_items(items)

    def _files(self, folder: Path) -> Iterator[Path]:
        """Every visible file under ``folder``, leaving out folders and exports of ours
        (hidden only below the root: the root itself may sit under ~/.keras). Links are
        followed, each real folder read once (see :meth:`_claim`)."""
        for top, dirs, files in os.walk(folder, followlinks=True):
            here = Path(top)
            dirs[:] = [d for d in dirs if not d.startswith(".") and not self._skip(here / d)
                       and self._claim(here / d)]
            names = set(files)
            for name in files:
                path = here / name
                if name.startswith(".") or not path.is_file():
                    continue
                if name.endswith(LINEAGE_SUFFIX) or name + LINEAGE_SUFFIX in names:
                    self._skip(path)  # an export and its lineage
                    continue
                yield path

    def file_of(self, key: str) -> Path | None:
        return self.root / key

    def items(self) -> list[Item]:
        return self._items

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "folder", "root": str(self.root),
            "splits": "folders" if self.split_dirs else "hash",
            "val_percent": self.val_percent, "test_percent": self.test_percent,
            "limit": self.limit,
        }

    def load_image(self, item: Item, decode_size: int | None = None,
                   data: bytes | None = None) -> np.ndarray:
        if data is not None:
            return images.decode_bytes(data, decode_size)
        return images.decode_file(self.root / item.key, decode_size)
