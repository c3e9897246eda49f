"""Which bytes each shard was computed from: ``shard-NNNNN.inputs.json`` beside the shard.

For every input file of the shard (its rows and its skipped files): ``[size, mtime_ns,
sha256]``, the stat taken just before the shard read the file and the sha256 of the very bytes
it decoded (:func:`read_identified`: each file is read once; a file that changes after its
stat shows up as moved next time, and is then compared by content), or ``null`` for a file
that could not be read. Written by the worker after the shard file and
before the driver records the shard as done, so a done shard of a source with files always has
one; it is the shard's only per-image record beside the HDF5 file, and the manifest stays
one record per shard. Sources of arrays have no files and no sidecars.

A re-run compares each input's size and mtime with the sidecar (a stat, cheap) and hashes
only the files whose times moved: the same bytes keep the shard (and the new mtime is
recorded), other bytes make the shard recompute.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bottleneck.storage.atomic import atomic_write, read_json, sha256_file
from bottleneck.storage.remote_file import RemoteFile, stat_of

FORMAT = "bottleneck-shard-inputs"
SUFFIX = ".inputs.json"


def inputs_name(shard_file: str) -> str:
    """``shard-00000.inputs.json`` for ``shard-00000.h5``."""
    return shard_file.removesuffix(".h5") + SUFFIX


@dataclass(frozen=True)
class FileIdentity:
    """A file's size, modification time and the sha256 of its bytes."""

    size: int
    mtime_ns: int
    sha256: str


def identify(path: Path) -> FileIdentity | None:
    """``path``'s identity now (stat, then hash), or None if it cannot be read."""
    try:
        stat = stat_of(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest() \
            if isinstance(path, RemoteFile) else sha256_file(path)
        return FileIdentity(stat.st_size, stat.st_mtime_ns, digest)
    except OSError:  # gone or unreadable: the shard records it as a skipped file
        return None


def read_identified(path: Path) -> tuple[FileIdentity | None, bytes | OSError]:
    """Stat, then read ``path``: its identity (the sha256 of exactly the bytes returned) and
    its bytes, or ``(None, the error)``."""
    try:
        stat = stat_of(path)
        data = path.read_bytes()
    except OSError as exc:
        return None, exc
    return FileIdentity(stat.st_size, stat.st_mtime_ns, hashlib.sha256(data).hexdigest()), data


def write_inputs(folder: Path, shard_file: str, inputs_sha256: str,
                 files: dict[str, FileIdentity | None]) -> None:
    """Write a shard's sidecar (atomically, compact: about 110 bytes per file)."""
    record = {"format": FORMAT, "shard": shard_file, "inputs_sha256": inputs_sha256,
              "files": {key: None if f is None else [f.size, f.mtime_ns, f.sha256]
                        for key, f in files.items()}}
    atomic_write(folder / inputs_name(shard_file),
                 json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n")


def read_inputs(folder: Path, shard_file: str, inputs_sha256: str
                ) -> dict[str, FileIdentity | None] | None:
    """A shard's recorded inputs; None when it has no sidecar (a shard made before sidecars
    were written, or of a source without files). A sidecar that is damaged or belongs to
    other inputs raises ``ValueError``."""
    path = folder / inputs_name(shard_file)
    if not path.is_file():
        return None
    data = read_json(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT \
            or data.get("shard") != shard_file or data.get("inputs_sha256") != inputs_sha256:
        raise ValueError(f"{path} does not describe the inputs of {shard_file}")
    try:
        return {key: None if value is None else FileIdentity(int(value[0]), int(value[1]),
                                                              str(value[2]))
                for key, value in data["files"].items()}
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        raise ValueError(f"{path} is damaged") from None


def compare(path: Path | None, recorded: FileIdentity | None
            ) -> tuple[bool, FileIdentity | None]:
    """(whether ``path`` now differs from ``recorded``, the identity to record from now on).

    Same size and mtime: unchanged, nothing read. Other size: changed. Same size, other
    mtime: the bytes' sha256 decides (a copied or touched file keeps its shard).
    """
    try:
        stat = stat_of(path) if path is not None else None
    except OSError:
        stat = None
    if recorded is None:  # unreadable when the shard ran: changed once it can be read
        now = identify(path) if stat is not None and path is not None else None
        return now is not None, now
    if stat is None or path is None:
        return True, None
    if (stat.st_size, stat.st_mtime_ns) == (recorded.size, recorded.mtime_ns):
        return False, recorded
    if stat.st_size != recorded.size:
        return True, None
    now = identify(path)
    return (now is None or now.sha256 != recorded.sha256), now


def compare_all(files: dict[str, Path | None], recorded: dict[str, FileIdentity | None]
                ) -> dict[str, tuple[bool, FileIdentity | None]]:
    """:func:`compare` for each key of ``recorded`` (on a few threads)."""
    keys = list(recorded)
    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        found = pool.map(lambda key: compare(files.get(key), recorded[key]), keys)
        return dict(zip(keys, found, strict=True))


def remove_inputs(folder: Path, shard_files: Iterable[str]) -> None:
    """Delete the sidecars of these shards (ours: only beside shards we delete)."""
    for shard_file in shard_files:
        (folder / inputs_name(shard_file)).unlink(missing_ok=True)


def source_changes(cache: Any) -> dict[str, Any]:
    """Which rows of ``cache`` were computed from files that have changed since, for
    ``info --verify``: ``{"checked", "changed", "missing", "unrecorded", "error"}``."""
    from bottleneck.data import reopen_source
    from bottleneck.errors import UserError

    report: dict[str, Any] = {"checked": 0, "changed": [], "missing": [], "unrecorded": 0,
                              "error": None}
    sidecars = {}
    for shard in cache.manifest.shards:
        try:
            sidecars[shard.file] = read_inputs(cache.root, shard.file, shard.inputs_sha256)
        except (OSError, ValueError):
            sidecars[shard.file] = None
        if sidecars[shard.file] is None:
            report["unrecorded"] += shard.inputs
    if not any(sidecars.values()):  # a source of arrays, or a cache older than sidecars
        return report
    try:
        source = reopen_source(cache.manifest.source)
    except UserError as exc:
        report["error"] = str(exc.format_message())
        return report
    for recorded in filter(None, sidecars.values()):
        files = {key: source.file_of(key) for key in recorded}
        for key, (changed, _) in compare_all(files, recorded).items():
            report["checked"] += 1
            if changed:
                gone = files[key] is None or not files[key].exists()
                report["missing" if gone else "changed"].append(key)
    return report


def describe_changes(report: dict[str, Any]) -> str | None:
    """One line about rows whose source changed (None when none did)."""
    if report["error"]:
        return f"note: the source files were not checked: {report['error']}"
    changed, missing = report["changed"], report["missing"]
    if not changed and not missing:
        return None
    parts = [f"{len(changed)} changed (e.g. {changed[0]})" if changed else "",
             f"{len(missing)} gone (e.g. {missing[0]})" if missing else ""]
    return (f"note: of {report['checked']} source files the cache was computed from, "
            f"{', '.join(p for p in parts if p)}; re-run the extract command to recompute "
            "their rows.")
