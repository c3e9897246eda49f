"""A WebDataset tar's scan, kept: the list of its samples, made once per version of the tar.

Listing a tar's samples reads every member header (a stream of the whole object at a URL, the
images included); extracting the same tars again (another backbone, a resumed or grown run)
would list them again. The scan is kept as JSON under ``<user cache dir>/webdataset/``, named
by the tar's identity (local: resolved path, size and mtime; at a URL: the URL, size and
ETag, from one ``info`` request) and whether ``.json`` members were read, as a re-run's
freshness check compares a file (:mod:`bottleneck.cache.inputs`): a tar rewritten in place is
scanned again. A kept scan that cannot be read is made again. The files are ours and
small (about 60 bytes a sample); the folder may be removed at any time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bottleneck.storage.atomic import read_json, user_cache_dir, write_json
from bottleneck.storage.location import Remote, is_url, resolve

VERSION = 1  # of the kept format
Scan = tuple[dict[str, dict[str, Any]], str | None]


def identity(tar: str) -> list[Any] | None:
    """What names this version of ``tar``; None when it cannot be asked (then not kept)."""
    try:
        if is_url(tar):
            from bottleneck.storage.remote_file import version_number

            folder, _, name = tar.rpartition("/")
            remote = resolve(folder)
            assert isinstance(remote, Remote)
            info = remote.fs.info(remote.child(name))
            return [tar, int(info.get("size") or 0), version_number(info)]
        path = Path(tar).expanduser().resolve()
        stat = path.stat()
        return [str(path), stat.st_size, stat.st_mtime_ns]
    except (OSError, ValueError):
        return None


def kept_path(name: list[Any], json_labels: bool) -> Path:
    digest = hashlib.sha256(json.dumps([VERSION, name, json_labels]).encode()).hexdigest()
    return user_cache_dir() / "webdataset" / f"{digest[:32]}.json"


def scan_kept(tar: str, json_labels: bool, scan: Callable[[], Scan]) -> Scan:
    """``scan()``'s result for ``tar``, from the kept one where this version of the tar was
    scanned before; otherwise scanned now and kept."""
    name = identity(tar)
    if name is None:
        return scan()
    path = kept_path(name, json_labels)
    try:
        kept = read_json(path)
        return ({key: _restored(sample) for key, sample in kept["samples"].items()},
                kept["problem"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    samples, problem = scan()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, {"samples": {key: _stored(sample) for key, sample in samples.items()},
                          "problem": problem}, fsync=False)
    except OSError:  # a full or read-only cache dir: the scan still stands
        pass
    return samples, problem


def _stored(sample: dict[str, Any]) -> dict[str, Any]:
    """A sample as JSON: label members' bytes as Latin-1 text (exact both ways)."""
    return {field: value.decode("latin-1") if isinstance(value, bytes) else value
            for field, value in sample.items()}


def _restored(sample: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field, value in sample.items():
        out[field] = tuple(value) if field == "image" else value.encode("latin-1")
    return out

