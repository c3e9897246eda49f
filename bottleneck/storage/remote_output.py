"""Folders of ours at a URL (a model directory, a report, an export, bench output).

Written: the writer fills a local staging folder as it would a local output; on success every
file is uploaded whole, the folder's marker file (``head.json`` of a model...) last, and only
then are files the earlier output there named and the new one does not removed. Read: the
whole folder is downloaded into a local copy, which the local reader opens as usual.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bottleneck.errors import UserError
from bottleneck.storage.location import Remote, remote_errors, resolve
from bottleneck.storage.remote_files import remove, upload, url_folder


def _listing(remote: Remote) -> list[str]:
    """Every object under the folder, as names relative to it (empty when there is none)."""
    remote.refresh()
    try:
        found = remote.fs.find(remote.path)
    except FileNotFoundError:
        return []
    prefix = remote.path.rstrip("/") + "/"
    return sorted(str(p)[len(prefix):] for p in found if str(p).startswith(prefix))


@contextmanager
def publish_folder(url: str, marker: str, is_ours: Callable[[Path], bool],
                   overwrite: bool = False, what: str = "output") -> Iterator[Path]:
    """A local staging folder for the output at ``url``; uploaded whole when the block ends
    well, ``marker`` last. An earlier output there is replaced only with ``overwrite`` and
    only when ``is_ours`` says the copy of its marker is ours."""
    remote = resolve(url)
    assert isinstance(remote, Remote)
    staging = url_folder("outputs", remote.url)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with remote_errors(remote.url):
        earlier = _listing(remote)
        if earlier:
            probe = url_folder("probes", remote.url)
            if marker in earlier:
                remote.fs.get_file(remote.child(marker), str(probe / marker))
            if marker not in earlier or not is_ours(probe):
                raise UserError(f"{remote.url} exists and is not a bottleneck {what}; choose "
                                "another --out.")
            if not overwrite:
                raise UserError(f"{remote.url} already holds a {what}; pass --overwrite "
                                "(overwrite=True) to replace it, or choose another --out.")
    try:
        yield staging
        with remote_errors(remote.url):
            files = {p.relative_to(staging).as_posix(): p
                     for p in sorted(staging.rglob("*")) if p.is_file()}
            upload(remote, {n: p for n, p in files.items() if n != marker})
            if marker in files:
                upload(remote, {marker: files[marker]})
            remove(remote, [n for n in earlier if n not in files])
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def local_copy(url: str) -> Path:
    """The folder at ``url`` downloaded whole into a local copy (refreshed each call)."""
    remote = resolve(url)
    assert isinstance(remote, Remote)
    copy = url_folder("copies", remote.url)
    with remote_errors(remote.url):
        names = _listing(remote)
        if not names:
            raise UserError(f"{remote.url} not found (nothing there); check the URL.")
        shutil.rmtree(copy, ignore_errors=True)
        copy.mkdir(parents=True)
        for name in names:
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
        remote.fs.get([remote.child(n) for n in names], [str(copy / n) for n in names])
    return copy


def _parent(url: str) -> tuple[Remote, str]:
    folder, _, name = url.rstrip("/").rpartition("/")
    remote = resolve(folder)
    assert isinstance(remote, Remote)
    return remote, name


def url_exists(url: str) -> bool:
    """True when an object (or a folder of them) is at ``url``."""
    remote, name = _parent(url)
    with remote_errors(url):
        remote.refresh()
        return bool(remote.fs.exists(remote.child(name)))


def publish_paths(pairs: list[tuple[str, Path]]) -> None:
    """Upload each local file (or folder, file by file) whole to its URL, in the given order:
    the last one (a marker such as a lineage file) lands only after the others."""
    for url, local in pairs:
        remote, name = _parent(url)
        with remote_errors(url):
            if local.is_dir():
                upload(remote, {f"{name}/{p.relative_to(local).as_posix()}": p
                                for p in sorted(local.rglob("*")) if p.is_file()})
            else:
                upload(remote, {name: local})


def staging_for(url: str) -> Path:
    """An empty local folder to make an output of ``url`` in."""
    remote, _ = _parent(url)
    staging = url_folder("outputs", url)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging
