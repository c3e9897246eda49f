"""WebDataset tar shards as a source: ``data/{00000..00099}.tar``, a URL, or a folder of .tar.

The layout img2dataset writes: in each uncompressed tar, the members of one sample share a key
(the member's name up to the first dot of its basename) and differ by extension: one image
(``jpg``, ``png``, ``webp``...), its label in ``cls`` (an integer), or in a key of ``json``
(``--label-key``), or none (unlabelled features are a valid cache); other members are ignored.
Each tar is scanned once (headers and the small label members only, seeking over the images
in a local tar, as a stream at a URL; nothing unpacked to disk) to list its samples and where
each image's bytes lie, and that list is kept for the next run over the same version of the
tar (:mod:`.tar_index`); decoding then reads exactly those bytes (a range request for a URL).
A truncated tar keeps the samples before the damage and is noted; a member that is not an
image becomes a recorded failure of its row.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
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
from bottleneck.data.tar_index import scan_kept
from bottleneck.errors import UserError
from bottleneck.storage.location import Remote, is_url, redact_url, remote_errors, resolve

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "ppm")
LABEL_MEMBERS = ("cls", "json")


def expand(pattern: str) -> list[str]:
    """The tar files a SOURCE names: a brace pattern, one file, or a folder of .tar files."""
    if "{" in pattern:
        try:
            from braceexpand import braceexpand
        except ImportError:
            raise UserError("brace patterns need braceexpand: pip install "
                            "'bottleneck[webdataset]'.") from None
        return list(braceexpand(pattern))
    if pattern.endswith(".tar"):
        return [pattern]
    if is_url(pattern):
        remote = resolve(pattern)
        assert isinstance(remote, Remote)
        return [remote.url_of(n) for n in remote.names() if n.endswith(".tar")]
    return sorted(str(p) for p in Path(pattern).expanduser().glob("*.tar"))


def is_webdataset(spec: str) -> bool:
    """SOURCE names tar shards: ends with .tar (a pattern too), or is a local folder holding
    .tar files and no sub-folders."""
    if spec.endswith(".tar"):
        return True
    if is_url(spec):  # a URL folder holding .tar objects and no folders
        remote = resolve(spec)
        assert isinstance(remote, Remote)
        with remote_errors(remote.url, "check the URL and run the command again"):
            try:
                listed = remote.fs.ls(remote.path, detail=True)
            except FileNotFoundError:
                return False
        return any(str(e["name"]).endswith(".tar") for e in listed) and \
            not any(e.get("type") == "directory" for e in listed)
    folder = Path(spec).expanduser()
    try:
        children = list(folder.iterdir()) if folder.is_dir() else []
    except OSError:
        return False
    return any(p.suffix == ".tar" for p in children) and not any(p.is_dir() for p in children)


@dataclass(frozen=True)
class Sample:
    """Where one sample's image bytes are: its tar, the offset and size of the member."""

    tar: str
    offset: int
    size: int


def _split_name(name: str) -> tuple[str, str]:
    folder, _, base = name.rpartition("/")
    stem, _, extension = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), extension.lower()


def _scan(tar: str, label_key: str | None) -> tuple[dict[str, dict[str, Any]], str | None]:
    """The samples of one tar (key → image offset/size, label) and why its scan stopped
    early, if it did."""
    samples: dict[str, dict[str, Any]] = {}
    problem = None
    # a local tar is read header by header, seeking over the members' data (a stream, as a
    # URL's is read, would read every image once more before the decode reads it)
    mode = "r|" if is_url(tar) else "r:"
    with _open(tar) as handle:
        try:
            with tarfile.open(fileobj=handle, mode=mode) as stream:
                for member in stream:
                    if not member.isfile():
                        continue
                    key, extension = _split_name(member.name)
                    sample = samples.setdefault(key, {})
                    if extension in IMAGE_EXTENSIONS and "image" not in sample:
                        sample["image"] = (member.offset_data, member.size, extension)
                    elif extension == "cls" or (extension == "json" and label_key):
                        data = stream.extractfile(member)
                        sample[extension] = data.read() if data is not None else b""
        except (tarfile.TarError, EOFError, OSError) as exc:
            problem = f"truncated or damaged tar ({exc or type(exc).__name__})"
    return samples, problem


def _open(tar: str) -> Any:
    if is_url(tar):
        remote_folder, _, name = tar.rpartition("/")
        remote = resolve(remote_folder)
        assert isinstance(remote, Remote)
        return remote.fs.open(remote.child(name), "rb", block_size=1 << 22)
    return open(Path(tar).expanduser(), "rb")


def _label(sample: dict[str, Any], label_key: str | None) -> str | None:
    if label_key and "json" in sample:
        try:
            value = json.loads(sample["json"]).get(label_key)
        except (ValueError, AttributeError):
            value = None
        return None if value is None else str(value)
    if "cls" in sample:
        text = sample["cls"].decode("utf-8", "replace").strip()
        return text or None
    return None


class WebDatasetSource(Source):
    """Samples of WebDataset tar shards, read in place."""

    def __init__(self, pattern: str, val_percent: float = 10, test_percent: float = 10,
                 limit: int | None = None, label_key: str | None = None) -> None:
        check_percents(val_percent, test_percent)
        self.pattern, self.label_key = redact_url(pattern), label_key  # recorded: no secret
        self.val_percent, self.test_percent, self.limit = val_percent, test_percent, limit
        self.tars = expand(pattern)
        if not self.tars:
            raise UserError(f"{self.pattern} names no .tar files; give a tar, a brace pattern such "
                            "as 'data/{00000..00009}.tar', or a folder of .tar files.")
        self._where: dict[str, Sample] = {}
        skipped: list[tuple[Path, str]] = []
        labelled: dict[str, str | None] = {}
        for tar in self.tars:
            with remote_errors(tar, "check the URL and run the command again"):
                try:
                    found, problem = scan_kept(tar, bool(label_key),
                                               lambda tar=tar: _scan(tar, label_key))
                except FileNotFoundError:
                    raise UserError(f"{redact_url(tar)} not found; check the SOURCE "
                                    "pattern.") from None
            if problem:
                skipped.append((Path(redact_url(tar)),
                                problem + "; the samples before it are kept"))
            name = tar.rstrip("/").rsplit("/", 1)[-1]
            for key, sample in found.items():
                if "image" not in sample:
                    continue
                offset, size, _ = sample["image"]
                item_key = f"{name}/{key}"
                self._where[item_key] = Sample(tar, offset, size)
                labelled[item_key] = _label(sample, label_key)
        values = {v for v in labelled.values() if v is not None}
        if values and None in labelled.values():
            unlabelled = [k for k, v in labelled.items() if v is None]
            skipped += [(Path(k), "no label") for k in unlabelled]
            for key in unlabelled:
                labelled.pop(key)
        self.classes = sorted(values, key=lambda v: (not v.lstrip("-").isdigit(),
                                                     int(v) if v.lstrip("-").isdigit() else 0, v))
        index = {name: i for i, name in enumerate(self.classes)}
        self.skipped = skipped
        self._items = stratified_limit(sort_items([
            Item(key, index[label] if label is not None else -1,
                 hash_split(key, val_percent, test_percent))
            for key, label in labelled.items()]), limit)

    def items(self) -> list[Item]:
        return self._items

    def describe(self) -> dict[str, Any]:
        return {"kind": "webdataset", "pattern": self.pattern, "label_key": self.label_key,
                "tars": len(self.tars), "val_percent": self.val_percent,
                "test_percent": self.test_percent, "limit": self.limit}

    def load_image(self, item: Item, decode_size: int | None = None,
                   data: bytes | None = None) -> np.ndarray:
        if data is None:
            where = self._where[item.key]
            data = _read_range(where)
            if len(data) != where.size:
                raise ValueError(f"{where.tar} ends inside this member")
        try:
            return images.decode_bytes(data, decode_size)
        except ValueError:
            raise
        except Exception as exc:  # not an image: a recorded failure, not a crash
            raise ValueError(f"not a readable image ({exc})") from None


def _read_range(where: Sample) -> bytes:
    if is_url(where.tar):
        folder, _, name = where.tar.rpartition("/")
        remote = resolve(folder)
        assert isinstance(remote, Remote)
        return bytes(remote.fs.cat_file(remote.child(name), start=where.offset,
                                        end=where.offset + where.size))
    with open(Path(where.tar).expanduser(), "rb") as handle:
        handle.seek(where.offset)
        return handle.read(where.size)


def reopen(description: dict[str, Any]) -> WebDatasetSource:
    """The source again from what a manifest recorded."""
    return WebDatasetSource(description["pattern"], description["val_percent"],
                            description["test_percent"], description["limit"],
                            description.get("label_key"))
