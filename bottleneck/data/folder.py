"""A folder per class, optionally under ``train/``, ``validation/`` (``val/``), ``test/``.

Keys (and class names) are the paths below the root in one Unicode form (NFC, see
:mod:`bottleneck.storage.names`), so a file keeps its key, split and cached row when its name
is rewritten in another form (copied through macOS, unzipped elsewhere); :meth:`file_of`
finds the file as it is named on disk.
"""

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
from bottleneck.storage.names import name_key
from bottleneck.storage.ours import LINEAGE_SUFFIX, what_of_ours

SPLIT_FOLDERS = {"train": ("train",), "val": ("validation", "val"), "test": ("test",)}


def _order(name: str) -> tuple[str, bool]:
    """Names in the order read: by :func:`name_key`, the one already in that form first (the
    one read when two names differ only in their Unicode form)."""
    key = name_key(name)
    return key, key != name


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
        self._class_dirs = self._find_class_dirs()
        self.classes = sorted({name for _, name, _ in self._class_dirs})
        self._on_disk: dict[str, Path] = {}  # key → file, where the name is not in NFC
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

    def _same_name(self, met: dict[str, Path], key: str, path: Path) -> bool:
        """True (and noted) when ``key`` was met before as another name: one that looks the
        same, written in another Unicode form; the first one met is read."""
        first = met.setdefault(key, path)
        if first != path:
            self.skipped.append((path, f"the same name as {first.name} in another Unicode "
                                       "form: rename one of them"))
        return first != path

    def _find_class_dirs(self) -> list[tuple[str | None, str, Path]]:
        """``(split, class name, folder)`` per class folder of each base; class names (like
        keys) are compared in one Unicode form (:func:`name_key`)."""
        bases = self.split_dirs.items() if self.split_dirs else [(None, self.root)]
        found = []
        for split, base in bases:
            met: dict[str, Path] = {}
            for child in sorted(base.iterdir(), key=lambda c: _order(c.name)):
                if child.is_dir() and not child.name.startswith(".") and \
                        not self._skip(child) and not self._same_name(met, name_key(child.name),
                                                                      child):
                    found.append((split, name_key(child.name), child))
        return found

    def _list_items(self) -> list[Item]:
        label_of = {name: i for i, name in enumerate(self.classes)}
        items = []
        met: dict[str, Path] = {}
        claimed = [entry for entry in self._class_dirs if self._claim(entry[2])]  # first
        for split, class_name, class_dir in claimed:
            for path in self._files(class_dir):
                name = path.relative_to(self.root).as_posix()
                key = name_key(name)
                if self._same_name(met, key, path):
                    continue
                if key != name:
                    self._on_disk[key] = path
                item_split = split or hash_split(key, self.val_percent, self.test_percent)
                items.append(Item(key, label_of[class_name], item_split))
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
            for name in sorted(files, key=_order):
                path = here / name
                if name.startswith(".") or not path.is_file():
                    continue
                if name.endswith(LINEAGE_SUFFIX) or name + LINEAGE_SUFFIX in names:
                    self._skip(path)  # an export and its lineage
                    continue
                yield path

    def file_of(self, key: str) -> Path | None:
        """The file of ``key``, whichever Unicode form its name is written in on disk."""
        key = name_key(key)
        return self._on_disk.get(key, self.root / key)

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
        return images.decode_file(self.file_of(item.key), decode_size)
