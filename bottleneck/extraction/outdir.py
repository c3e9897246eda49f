"""The ``--out`` folder of an extraction: what may be written there, and what an earlier run
left that can be kept. Only files an earlier manifest of ours records are ever replaced."""

from __future__ import annotations

from pathlib import Path

from bottleneck.cache.index_files import remove_index
from bottleneck.cache.inputs import remove_inputs
from bottleneck.cache.manifest import MANIFEST, Manifest, ShardRecord, is_cache
from bottleneck.cache.reader import TARGETS_FILE
from bottleneck.cache.shards import read_column
from bottleneck.data import location_fields
from bottleneck.errors import UserError, arg
from bottleneck.extraction.config import identity_config
from bottleneck.storage.atomic import is_stale_temp, sha256_file
from bottleneck.storage.lock import LOCK_FILE
from bottleneck.storage.names import name_key


def check_out_dir(out: Path) -> None:
    """Refuse an --out that is a file, or a folder with things in it that is not our cache."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a directory for the cache.")
    if out.is_dir() and not is_cache(out) and any(
            p.name != LOCK_FILE and not is_stale_temp(p) for p in out.iterdir()):  # killed early
        raise UserError(f"{out} is not empty and is not a bottleneck cache; choose a new or "
                        "empty --out directory.")


def remove_cache_files(out: Path, old: Manifest) -> None:
    """Delete what an earlier cache recorded (shards and their sidecars, targets, manifest)
    and its nearest-neighbour index, nothing else."""
    for shard in old.shards:
        (out / shard.file).unlink(missing_ok=True)
    remove_inputs(out, [shard.file for shard in old.shards])
    if old.targets is not None:
        (out / old.targets.get("file", TARGETS_FILE)).unlink(missing_ok=True)
    remove_index(out)
    (out / MANIFEST).unlink(missing_ok=True)


def previous_run(out: Path, fresh: Manifest, overwrite: bool) -> Manifest | None:
    """The manifest of an earlier run with the same config and source, or None.

    One made another way is refused, or with ``overwrite`` its recorded files are deleted.
    """
    old = Manifest.load(out)
    moved = location_fields(fresh.source)  # a moved folder: its files are checked instead
    if old is not None and not old.same_identity(fresh, identity_config, moved):
        if not overwrite:
            differ = ", ".join(old.differences(fresh, identity_config, moved)[:3])
            if differ == "classes" and list(map(name_key, old.classes)) == fresh.classes:
                differ = ("class names recorded in another Unicode form, by a version that "
                          "did not compare names in NFC")
            raise UserError(f"{out} holds a cache made with a different config or source "
                            f"({differ}); use another {arg('--out', 'out')}, or "
                            f"{arg('--overwrite', 'overwrite=True')} to replace it.")
        remove_cache_files(out, old)
        return None
    return old


def intact(out: Path, shard: ShardRecord) -> bool:
    """The shard file is there and whole: its size (recorded since) or else its sha256."""
    path = out / shard.file
    if not path.is_file():
        return False
    if shard.bytes is not None:
        return path.stat().st_size == shard.bytes
    return sha256_file(path) == shard.sha256


def shard_keys(out: Path, old: Manifest) -> dict[str, list[str]]:
    """The keys each intact done shard was planned with: its rows and its skipped files. A
    shard unlike its record (see :func:`~bottleneck.cache.shards.open_shard`) is left out,
    to be computed again like one that is not intact."""
    keys = {}
    for shard in old.shards:
        if not (shard.done and intact(out, shard)):
            continue
        try:
            paths = read_column(out / shard.file, "paths", old, shard)
        except UserError:  # damaged, or not what the manifest records: never trusted
            continue
        keys[shard.file] = [*map(str, paths), *(f["path"] for f in shard.failures)]
    return keys
