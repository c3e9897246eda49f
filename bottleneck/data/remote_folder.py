"""The folder layouts of :mod:`bottleneck.data.folder` at a URL (``s3://bucket/photos``).

The store is listed once (one recursive listing, sizes and ETags included); the layout rules
are the local ones: a folder per class, optionally under ``train/``, ``validation/``
(``val/``), ``test/``, hidden names and outputs of ours (a cache, a model, an export's
lineage) left out. Each image is fetched whole when its shard decodes it, on
:attr:`RemoteFolderSource.io_threads` threads so the requests' latency overlaps, and its
identity (size, ETag, sha256) is recorded as a local file's is, so a re-run recomputes only
shards whose objects changed.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from bottleneck.data import images
from bottleneck.data.folder import SPLIT_FOLDERS
from bottleneck.data.sources import (
    Item,
    Source,
    check_percents,
    hash_split,
    sort_items,
    stratified_limit,
)
from bottleneck.errors import UserError
from bottleneck.storage.location import Remote, remote_errors, resolve
from bottleneck.storage.ours import CACHE_MANIFEST, LINEAGE_SUFFIX, LOCK_FILE, MODEL_HEAD
from bottleneck.storage.remote_file import RemoteFile

OURS = (CACHE_MANIFEST, MODEL_HEAD, LOCK_FILE)


class RemoteFolderSource(Source):
    """Class folders (optionally under split folders) at a URL."""

    io_threads = 16

    def __init__(self, url: str, val_percent: float = 10, test_percent: float = 10,
                 limit: int | None = None) -> None:
        check_percents(val_percent, test_percent)
        remote = resolve(url)
        assert isinstance(remote, Remote)
        self.remote, self.root = remote, remote.url
        self.val_percent, self.test_percent, self.limit = val_percent, test_percent, limit
        with remote_errors(remote.url, "check the URL and run the command again"):
            remote.refresh()
            try:
                listed = remote.fs.find(remote.path, detail=True)
            except FileNotFoundError:
                listed = {}
        prefix = remote.path.rstrip("/") + "/"
        files = {str(p)[len(prefix):]: info for p, info in listed.items()
                 if str(p).startswith(prefix) and info.get("type", "file") != "directory"}
        self.skipped = []
        files = self._visible(files)
        self._info = files
        tops = {name.split("/", 1)[0] for name in files if "/" in name}
        self.split_dirs = self._split_dirs(tops)
        bases = self.split_dirs or {None: ""}
        by_class: dict[str, list[tuple[str | None, str]]] = defaultdict(list)
        for split, base in bases.items():
            start = f"{base}/" if base else ""
            for name in files:
                if not name.startswith(start):
                    continue
                rest = name[len(start):]
                if "/" in rest:
                    by_class[rest.split("/", 1)[0]].append((split, name))
        self.classes = sorted(by_class)
        label_of = {name: i for i, name in enumerate(self.classes)}
        items = [Item(key, label_of[class_name],
                      split or hash_split(key, val_percent, test_percent))
                 for class_name, entries in by_class.items() for split, key in entries]
        self._items = stratified_limit(sort_items(items), limit)
        if not self._items:
            raise UserError(f"no images found at {remote.url}: put each class's images in its "
                            "own folder (URL/CLASS/image.jpg).")

    def _visible(self, files: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Without hidden names and without the folders and files bottleneck wrote."""
        ours = {name.rsplit("/", 1)[0] if "/" in name else "" for name in files
                if name.rsplit("/", 1)[-1] in OURS}
        kept = {}
        for name, info in files.items():
            parts = name.split("/")
            folders = ["/".join(parts[:i]) for i in range(1, len(parts))]
            if any(part.startswith(".") for part in parts):
                continue
            if any(folder in ours for folder in folders) or "" in ours:
                continue
            if name.endswith(LINEAGE_SUFFIX) or name + LINEAGE_SUFFIX in files:
                continue
            kept[name] = info
        for folder in sorted(ours):
            self.skipped.append((self.remote.url_of(folder) if folder else self.remote.url,
                                 "an output of bottleneck"))
        return kept

    @staticmethod
    def _split_dirs(tops: set[str]) -> dict[str, str]:
        found = {}
        for split, names in SPLIT_FOLDERS.items():
            for name in names:
                if name in tops:
                    found[split] = name
                    break
        return found if "train" in found and len(found) >= 2 else {}

    def items(self) -> list[Item]:
        return self._items

    def file_of(self, key: str) -> RemoteFile:  # type: ignore[override]
        return RemoteFile(self.remote.fs, self.remote.child(key), self.remote.url_of(key),
                          self._info.get(key, {}))

    def describe(self) -> dict[str, Any]:
        return {"kind": "folder-url", "root": self.root,
                "splits": "folders" if self.split_dirs else "hash",
                "val_percent": self.val_percent, "test_percent": self.test_percent,
                "limit": self.limit}

    def load_image(self, item: Item, decode_size: int | None = None,
                   data: bytes | None = None) -> np.ndarray:
        if data is None:
            data = self.file_of(item.key).read_bytes()
        return images.decode_bytes(data, decode_size)


def reopen(description: dict[str, Any]) -> RemoteFolderSource:
    return RemoteFolderSource(description["root"], description["val_percent"],
                              description["test_percent"], description["limit"])
