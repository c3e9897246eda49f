"""Whole files to and from a :class:`~bottleneck.storage.location.Remote` folder.

Downloads go through a size-bounded local read-through cache keyed by each file's sha256
(``user_cache_dir()/remote/blobs``; ``--local-cache DIR|none`` or ``BOTTLENECK_LOCAL_CACHE``
moves or disables it; ``BOTTLENECK_LOCAL_CACHE_GB``, default 20, bounds it): a file is fetched
whole (many in parallel), checked against the sha256 its manifest records, and only then
becomes visible, so the second read of the same remote cache costs what a local one costs.
Uploads send finished local files whole and check the stored size before anything names them.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bottleneck.errors import UserError
from bottleneck.storage.atomic import atomic_path, sha256_file, user_cache_dir
from bottleneck.storage.location import Remote

LOCAL_CACHE_ENV = "BOTTLENECK_LOCAL_CACHE"
LOCAL_CACHE_GB_ENV = "BOTTLENECK_LOCAL_CACHE_GB"
CONCURRENCY = 16
_temp_root: list[Path] = []


def set_local_cache(value: str | None) -> None:
    """``--local-cache DIR|none`` for this process (None: the default place)."""
    if value is None:
        os.environ.pop(LOCAL_CACHE_ENV, None)
    else:
        os.environ[LOCAL_CACHE_ENV] = value


def local_cache_root() -> Path:
    """Where remote files are kept locally: the read-through cache, or with ``none`` a
    temporary folder removed when the process ends."""
    chosen = os.environ.get(LOCAL_CACHE_ENV, "").strip()
    if chosen.lower() == "none":
        if not _temp_root:
            _temp_root.append(Path(tempfile.mkdtemp(prefix="bottleneck-remote-")))
            atexit.register(shutil.rmtree, _temp_root[0], True)
        return _temp_root[0]
    return Path(chosen).expanduser() if chosen else user_cache_dir() / "remote"


def url_folder(kind: str, url: str) -> Path:
    """A local folder of ours for one URL (``kind``: views, staging...)."""
    digest = hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:20]
    folder = local_cache_root() / kind / digest
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _limit_bytes() -> int:
    try:
        return int(float(os.environ.get(LOCAL_CACHE_GB_ENV, "20")) * (1 << 30))
    except ValueError:
        raise UserError(f"{LOCAL_CACHE_GB_ENV} must be a number of GB.") from None


def blob_path(sha256: str) -> Path:
    return local_cache_root() / "blobs" / sha256[:2] / sha256


def _download(remote: Remote, name: str, target: Path) -> None:
    with atomic_path(target, fsync=False) as tmp:
        remote.fs.get_file(remote.child(name), str(tmp))


def _cached(blob: Path) -> bool:
    """True when the verified blob is here (marked recently used: evicted last). A blob is
    trusted without re-hashing: it only ever appears, under its sha256, after its download
    was checked against that sha256 and synced to disk, in a folder that is ours."""
    try:
        os.utime(blob)
    except FileNotFoundError:
        return False
    return blob.is_file()


def _fetch_blob(remote: Remote, name: str, sha256: str) -> Path:
    """The verified local copy of ``name`` (sha256 known), downloaded if not cached yet."""
    blob = blob_path(sha256)
    if _cached(blob):
        return blob
    blob.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(blob) as tmp:  # synced: a power cut leaves no blob trusted half-written
        remote.fs.get_file(remote.child(name), str(tmp))
        if sha256_file(tmp) != sha256:
            raise UserError(f"{remote.url_of(name)} changed since it was written (sha256 "
                            "mismatch): a shard's features cannot be repaired; extract again "
                            "into a new URL, then remove this one.")
    return blob


def _link(blob: Path, at: Path) -> None:
    """``at`` names ``blob`` (a symlink, else a copy), replacing what was there; a symlink
    that already names ``blob`` is left as it is (a warm open renames nothing)."""
    if at.is_symlink() and os.readlink(at) == str(blob):
        return
    at.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(at, fsync=False) as tmp:
        try:
            os.symlink(blob, tmp)
        except OSError:
            shutil.copyfile(blob, tmp)


def fetch(remote: Remote, files: dict[str, str | None], into: Path,
          keep: Callable[[Path, str], bool] | None = None) -> dict[str, Path]:
    """Bring the named files of ``remote`` to ``into/NAME``, many at a time.

    A file with a sha256 comes through the read-through cache and is verified; one without
    (a small sidecar) is downloaded directly. ``keep(path, sha)``: a file already at
    ``into/NAME`` that it accepts stays as it is.
    """
    found: dict[str, Path] = {}
    blobs: dict[str, str] = {}  # sha → a name to fetch it by (each blob once)
    direct = []
    for name, sha in files.items():
        at = into / name
        if keep is not None and sha is not None and at.is_file() and keep(at, sha):
            found[name] = at
        elif sha is None:
            direct.append(name)
        else:
            blobs.setdefault(sha, name)

    def download(name: str) -> None:
        (into / name).parent.mkdir(parents=True, exist_ok=True)
        _download(remote, name, into / name)

    local = {sha: blob_path(sha) for sha in blobs}
    missing = [sha for sha in blobs if not _cached(local[sha])]
    if missing or direct:  # a warm read starts no threads and sends no request
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(lambda sha: _fetch_blob(remote, blobs[sha], sha), missing))
            list(pool.map(download, direct))
    for name, sha in files.items():
        if name not in found:
            if sha is not None:
                _link(local[sha], into / name)
            found[name] = into / name
    evict(keep_shas={sha for sha in files.values() if sha})
    return found


def evict(keep_shas: Iterable[str] = ()) -> None:
    """Delete the least recently used blobs until the read-through cache fits its bound."""
    root = local_cache_root() / "blobs"
    if not root.is_dir():
        return
    keep = set(keep_shas)
    blobs = [(p.stat().st_mtime, p.stat().st_size, p) for p in root.glob("*/*") if p.is_file()]
    total, limit = sum(size for _, size, _ in blobs), _limit_bytes()
    for _, size, path in sorted(blobs):
        if total <= limit:
            break
        if path.name not in keep:
            path.unlink(missing_ok=True)
            total -= size


def upload(remote: Remote, files: dict[str, Path]) -> None:
    """Send each finished local file whole to ``remote/NAME`` (many at a time) and check the
    store holds all of its bytes before returning."""
    def one(item: tuple[str, Path]) -> None:
        name, local = item
        remote.fs.put_file(str(local), remote.child(name))
        stored = remote.fs.info(remote.child(name)).get("size")
        if stored is not None and int(stored) != local.stat().st_size:
            raise OSError(f"{remote.url_of(name)} holds {stored} bytes after the upload, not "
                          f"{local.stat().st_size}")

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(one, files.items()))


def put_bytes(remote: Remote, name: str, data: bytes) -> None:
    """Write a small object in one request (a reader sees the old one or the new one)."""
    remote.fs.pipe_file(remote.child(name), data)


def remove(remote: Remote, names: Iterable[str]) -> None:
    """Delete objects of ours (missing ones are fine)."""
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            remote.fs.rm_file(remote.child(name))


def abort_unfinished_uploads(remote: Remote) -> int:
    """On S3, abort the multipart uploads left under this folder by a writer that died (the
    caller holds the folder's lock); returns how many. Other stores keep no such parts."""
    if remote.protocol not in ("s3", "s3a"):
        return 0
    bucket, _, prefix = remote.path.partition("/")
    listed = remote.fs.call_s3("list_multipart_uploads", Bucket=bucket,
                               Prefix=prefix.rstrip("/") + "/" if prefix else "")
    uploads = listed.get("Uploads", [])
    for upload_ in uploads:
        remote.fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=upload_["Key"],
                          UploadId=upload_["UploadId"])
    return len(uploads)
