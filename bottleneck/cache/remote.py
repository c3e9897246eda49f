"""A cache at a URL: read through a local view, written from a local staging folder.

Reading (:func:`open_remote_cache`): the manifest is fetched, then every shard it records, in
parallel, through the read-through cache of :mod:`bottleneck.storage.remote_files` (each
checked against its recorded sha256), into a local *view* folder that every reader uses like
a local cache. Writing (:class:`RemoteOutput`): the extraction runs in a local staging folder
that first mirrors what the URL holds; :meth:`RemoteOutput.publish` uploads each finished
file whole and then the manifest, so the manifest at the URL never names a shard the store
does not hold whole. During a run a shard's publishing is queued (``wait=False``) to one
background thread (:mod:`bottleneck.storage.background`), in order, so the next shard's
compute overlaps its upload; the session waits for every queued upload before it lets the
lock go, and an upload's error ends the run at the next shard with its one line.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bottleneck.cache.inputs import inputs_name
from bottleneck.cache.manifest import MANIFEST
from bottleneck.cache.reader import TARGETS_FILE, Cache, open_local_cache
from bottleneck.errors import UserError
from bottleneck.storage.atomic import atomic_write, sha256_file
from bottleneck.storage.background import Background
from bottleneck.storage.location import Remote, remote_errors, resolve
from bottleneck.storage.ours import LOCK_FILE
from bottleneck.storage.remote_files import (
    abort_unfinished_uploads,
    fetch,
    put_bytes,
    remove,
    upload,
    url_folder,
)
from bottleneck.storage.remote_lock import remote_lock


def recorded_files(manifest: dict[str, Any]) -> dict[str, str | None]:
    """The files a manifest (JSON form) names, with their sha256: done shards, their inputs
    sidecars (no recorded sha256) and the targets file."""
    files: dict[str, str | None] = {}
    for shard in manifest.get("shards", []):
        if shard.get("status") == "done":
            files[shard["file"]] = shard.get("sha256")
    targets = manifest.get("targets")
    if isinstance(targets, dict):
        files[targets.get("file", TARGETS_FILE)] = targets.get("sha256")
    return files


def _load(remote: Remote) -> tuple[bytes | None, dict[str, Any] | None]:
    raw = remote.read_bytes(MANIFEST)
    if raw is None:
        return None, None
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    return raw, data if isinstance(data, dict) else None


def open_remote_cache(url: str) -> Cache:
    """A complete cache at ``url``, its shards fetched (verified) into a local view."""

    remote = resolve(url)
    assert isinstance(remote, Remote)
    view = url_folder("views", remote.url)
    with remote_errors(remote.url, "run the command again"):
        raw, data = _load(remote)
        if raw is None:
            raise UserError(f"{remote.url} is not a bottleneck cache (no manifest.json there); "
                            "run extract first.")
        files = recorded_files(data or {})
        for child in view.iterdir():  # a view holds only what the manifest names; the
            if child.name not in (MANIFEST, *files):  # others are replaced in one rename
                child.unlink() if not child.is_dir() or child.is_symlink() \
                    else shutil.rmtree(child)
        if (data or {}).get("complete"):
            fetch(remote, files, view)
        if not (view / MANIFEST).is_file() or (view / MANIFEST).read_bytes() != raw:
            atomic_write(view / MANIFEST, raw, fsync=False)
    cache = open_local_cache(view)
    cache.location = remote.url
    return cache


def fetch_sidecars(cache: Cache) -> None:
    """Bring a remote cache's inputs sidecars into its view (for ``info --verify``, which
    compares the source files with them); other readers never need them."""
    if cache.location is None:
        return
    remote = resolve(cache.location)
    assert isinstance(remote, Remote)
    with remote_errors(remote.url, "run the command again"):
        present = set(remote.names())
        fetch(remote, {inputs_name(s.file): None for s in cache.manifest.shards
                       if inputs_name(s.file) in present}, cache.root)


class RemoteOutput:
    """The local staging folder of an extraction into ``url``, and its publishing."""

    def __init__(self, url: str, lock: bool = True, action: str = "extract") -> None:
        remote = resolve(url)
        assert isinstance(remote, Remote)
        self.remote, self.lock_enabled, self.action = remote, lock, action
        self.staging = url_folder("staging", remote.url)
        self._uploaded: dict[str, str] = {}  # staging-relative name → sha256 the store holds
        self._named: dict[Path, set[str]] = {}  # folder → files its remote manifest names
        self._lock: Any = None
        self._background: Background | None = None

    def _remote_of(self, folder: Path) -> Remote:
        relative = folder.relative_to(self.staging).as_posix()
        return self.remote if relative == "." else self.remote.sub(relative)

    @contextmanager
    def session(self, folders: list[Path]) -> Iterator[None]:
        """Lock the URL, abort uploads a dead writer left, and mirror each cache folder of
        ``folders`` (the URL's, or one per layer) into staging."""
        with remote_errors(self.remote.url), remote_lock(
                self.remote, self.action, self.lock_enabled) as held:
            self._lock = held
            abort_unfinished_uploads(self.remote)
            found = {folder: self._remote_state(folder) for folder in folders}
            self._clean_staging(folders, {folder / name for folder, (raw, files) in found.items()
                                          for name in [MANIFEST, *files]})
            for folder, (raw, files) in found.items():
                folder.mkdir(parents=True, exist_ok=True)
                self._named[folder] = set(files)
                if raw is None:
                    continue
                atomic_write(folder / MANIFEST, raw)
                fetch(self._remote_of(folder), files, folder,
                      keep=lambda path, sha: sha256_file(path) == sha)
                for name, sha in files.items():
                    key = (folder / name).relative_to(self.staging).as_posix()
                    self._uploaded[key] = sha or sha256_file(folder / name)
            self._background = Background("bottleneck-upload")
            try:
                yield
            except Exception:  # what finished still goes up (a re-run keeps it); the
                with contextlib.suppress(Exception):  # error the caller sees is the first
                    self._background.drain()
                raise
            else:
                self._background.drain()
            finally:
                self._background.close()
                self._background = None

    def _remote_state(self, folder: Path) -> tuple[bytes | None, dict[str, str | None]]:
        """The manifest at ``folder``'s URL and the files it names (with their sidecars)."""
        remote = self._remote_of(folder)
        remote.refresh()
        raw, data = _load(remote)
        names = [n for n in remote.names() if n != LOCK_FILE]
        if raw is None:
            if names:
                raise UserError(f"{remote.url} is not empty and is not a bottleneck cache; "
                                "choose a new or empty --out URL.")
            return None, {}
        files = recorded_files(data or {})
        for shard in [name for name in files if name.endswith(".h5")]:
            if inputs_name(shard) in names:
                files[inputs_name(shard)] = None
        return raw, files

    def _clean_staging(self, folders: list[Path], keep: set[Path]) -> None:
        """Staging is ours and holds only what the URL holds: drop anything else."""
        for path in sorted(self.staging.rglob("*"), reverse=True):
            if path.is_symlink() or path.is_file():
                if path not in keep:
                    path.unlink()
            elif path.is_dir() and not any(f == path or f.is_relative_to(path)
                                           for f in folders):
                shutil.rmtree(path)

    def adopt(self, folder: Path, shard_file: str, sha256: str) -> None:
        """A shard a worker uploaded itself: fetched (verified) into staging, so the driver
        records it like one made here, and known to be in the store already."""
        remote = self._remote_of(folder)
        with remote_errors(remote.url, "re-run the same command (finished shards are kept)"):
            remote.refresh()
            sidecar = inputs_name(shard_file)
            files: dict[str, str | None] = {shard_file: sha256}
            if remote.exists(sidecar):
                files[sidecar] = None
            fetch(remote, files, folder)
        for name in files:
            key = (folder / name).relative_to(self.staging).as_posix()
            self._uploaded[key] = files[name] or sha256_file(folder / name)

    def url_of(self, folder: Path) -> str:
        """The URL of a staging folder (the cache's, or a layer's)."""
        return self._remote_of(folder).url

    def publish(self, folder: Path, wait: bool = True) -> None:
        """Upload what ``folder``'s manifest names and the store lacks, then the manifest,
        then delete what the previous manifest named and this one does not (all ours).

        ``wait=False`` (inside :meth:`session`): the manifest as it is now is published by the
        background thread after those queued earlier, while the caller goes on."""
        raw = (folder / MANIFEST).read_bytes()
        if self._background is None:
            self._publish(folder, raw)
        elif wait:
            self._background.drain()
            self._publish(folder, raw)
        else:
            self._background.submit(lambda: self._publish(folder, raw))

    def _publish(self, folder: Path, raw: bytes) -> None:
        remote = self._remote_of(folder)
        with remote_errors(remote.url, "re-run the same command (finished shards are kept)"):
            if self._lock is not None:
                self._lock.check()
            files = recorded_files(json.loads(raw))
            for shard in list(files):
                if (folder / inputs_name(shard)).is_file() and shard.endswith(".h5"):
                    files[inputs_name(shard)] = None
            todo: dict[str, Path] = {}
            shas: dict[str, str] = {}
            for name, sha in files.items():
                key = (folder / name).relative_to(self.staging).as_posix()
                shas[key] = sha or sha256_file(folder / name)
                if self._uploaded.get(key) != shas[key]:
                    todo[name] = folder / name
            upload(remote, todo)
            for name in todo:
                key = (folder / name).relative_to(self.staging).as_posix()
                self._uploaded[key] = shas[key]
            put_bytes(remote, MANIFEST, raw)
            gone = self._named.get(folder, set()) - set(files)
            remove(remote, sorted(gone))
            for name in gone:
                self._uploaded.pop((folder / name).relative_to(self.staging).as_posix(), None)
            self._named[folder] = set(files)
