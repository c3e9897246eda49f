"""``manifest.json``: the single record of how a cache's features were made.

This module alone knows the file's layout. Everything else reads and writes it through
:class:`Manifest` (typed fields, :meth:`Manifest.load`, :meth:`Manifest.save`); a folder is a
cache only when its manifest says ``"format": "bottleneck-cache"``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bottleneck.errors import UserError
from bottleneck.storage.atomic import write_json

MANIFEST = "manifest.json"
FORMAT = "bottleneck-cache"
FORMAT_VERSION = 1
# What decides a feature's value: two manifests that agree on these describe the same cache.
IDENTITY = ("config", "source", "classes")


def shard_name(index: int) -> str:
    """``shard-00000.h5`` for shard 0."""
    return f"shard-{index:05d}.h5"


def shard_index(name: str) -> int:
    """0 for ``shard-00000.h5``."""
    return int(name.removeprefix("shard-").removesuffix(".h5"))


@dataclass
class ShardRecord:
    """One shard: its planned inputs and, once done, its rows, sha256 and skipped files."""

    file: str
    inputs: int
    inputs_sha256: str
    status: str = "pending"
    rows: int | None = None
    sha256: str | None = None
    failures: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None  # why the last attempt failed (status "failed")
    bytes: int | None = None  # the file's size, a cheap check that a kept shard is intact
    # what computed it (engine, backend and its version, device) and the batch size that ran
    runtime: dict[str, Any] | None = None

    @property
    def done(self) -> bool:
        return self.status == "done"

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"file": self.file, "inputs": self.inputs,
                                  "inputs_sha256": self.inputs_sha256, "status": self.status}
        if self.done:
            record |= {"rows": self.rows, "sha256": self.sha256, "bytes": self.bytes,
                       "failures": self.failures}
            if self.runtime:
                record["runtime"] = self.runtime
        if self.error:
            record["error"] = self.error
        return record

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardRecord:
        return cls(data["file"], int(data["inputs"]), data["inputs_sha256"],
                   data.get("status", "pending"), data.get("rows"), data.get("sha256"),
                   list(data.get("failures", [])), data.get("error"), data.get("bytes"),
                   data.get("runtime"))


@dataclass
class Manifest:
    """The typed manifest. ``manifest["key"]`` reads the JSON form (read-only)."""

    config: dict[str, Any]
    source: dict[str, Any]
    classes: list[str]
    versions: dict[str, str]
    shards: list[ShardRecord]
    complete: bool = False
    targets: dict[str, Any] | None = None
    rows: int | None = None
    split_counts: dict[str, int] | None = None
    failures: int | None = None
    format_version: int = FORMAT_VERSION
    # what ran the latest extraction (engine, backend and its version, device); recorded,
    # never part of the identity: fp32 features agree across backends within tolerance
    runtime: dict[str, Any] | None = None

    # -- the JSON form ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": FORMAT, "format_version": self.format_version, "complete": self.complete,
            "config": self.config, "source": self.source, "classes": self.classes,
            "versions": self.versions, "shards": [s.to_dict() for s in self.shards],
            "targets": self.targets,
        }
        if self.runtime:
            data["runtime"] = self.runtime
        if self.complete:
            data |= {"rows": self.rows, "split_counts": self.split_counts,
                     "failures": self.failures}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        return cls(config=data["config"], source=data["source"], classes=list(data["classes"]),
                   versions=data.get("versions", {}),
                   shards=[ShardRecord.from_dict(s) for s in data["shards"]],
                   complete=bool(data.get("complete")), targets=data.get("targets"),
                   rows=data.get("rows"), split_counts=data.get("split_counts"),
                   failures=data.get("failures"),
                   format_version=int(data.get("format_version", FORMAT_VERSION)),
                   runtime=data.get("runtime"))

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)

    # -- on disk ---------------------------------------------------------------------------
    def save(self, root: Path) -> None:
        """Replace ``root/manifest.json`` atomically (temp, fsync, rename)."""
        write_json(Path(root) / MANIFEST, self.to_dict())

    @staticmethod
    def load(root: str | Path) -> Manifest | None:
        """The manifest of a cache folder; None when the folder holds no cache of ours.

        A ``manifest.json`` of another tool (no ``"format": "bottleneck-cache"``) is not ours:
        None. Ours but unreadable is a UserError naming the way out.
        """
        path = Path(root) / MANIFEST
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            if FORMAT.encode() not in path.read_bytes():
                return None
            raise UserError(f"{path} is damaged (not valid JSON); extract into a new --out, "
                            f"or delete {Path(root)} yourself and extract again.") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return None
        try:
            return Manifest.from_dict(data)
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{path} is damaged (fields missing); extract into a new --out, or "
                            f"delete {Path(root)} yourself and extract again.") from None

    # -- questions ---------------------------------------------------------------------------
    def same_identity(self, other: Manifest,
                      normalize: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                      ignore: tuple[str, ...] = ()) -> bool:
        """True when both describe features made the same way from the same source (values
        compare as numbers: a percentage of 10 is 10.0). ``normalize`` maps a config to the
        part of it that decides the features (the extraction stage owns that rule);
        ``ignore``: fields such as ``source.root`` that do not decide the features."""
        return not self.differences(other, normalize, ignore)

    def differences(self, other: Manifest,
                    normalize: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                    ignore: tuple[str, ...] = ()) -> list[str]:
        """Where two manifests' identities differ: ``config.image_size``, ``source.root``..."""
        mine, theirs = self.to_dict(), other.to_dict()
        if normalize is not None:
            mine["config"], theirs["config"] = normalize(mine["config"]), \
                normalize(theirs["config"])
        found = []
        for key in IDENTITY:
            a, b = mine[key], theirs[key]
            if isinstance(a, dict) and isinstance(b, dict):
                found += [f"{key}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
            elif a != b:
                found.append(key)
        return [name for name in found if name not in ignore]

    @property
    def done_shards(self) -> int:
        return sum(s.done for s in self.shards)

    @property
    def failure_list(self) -> list[dict[str, str]]:
        return [f for shard in self.shards for f in shard.failures]


def is_cache(root: str | Path) -> bool:
    """True when ``root`` holds a manifest of ours (readable or not)."""
    try:
        return Manifest.load(root) is not None
    except UserError:
        return True
