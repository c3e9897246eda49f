"""One object of a store seen as a file: what freshness checks and readers ask of a Path.

A source listed at a URL hands these out (``Source.file_of``), so a shard records each input's
identity and a re-run compares it as it does for local files: the size, then the ETag (the
modification time where a store has no ETag) in place of the mtime, then the bytes' sha256.
The listing's details are used as they were listed: a stat costs no request.
"""

from __future__ import annotations

import errno
import hashlib
import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RemoteStat:
    st_size: int
    st_mtime_ns: int  # a number fixed by the object's ETag (or modification time)


def version_number(info: dict[str, Any]) -> int:
    """A number fixed by an object's ETag (or modification time), from its listing."""
    marker = info.get("ETag") or info.get("etag") or info.get("md5Hash") \
        or info.get("LastModified") or info.get("mtime") or info.get("created") or ""
    return int(hashlib.sha256(str(marker).encode()).hexdigest()[:15], 16)


class RemoteFile:
    """An object at ``url`` (``fs`` path ``path``) with the details its listing gave."""

    def __init__(self, fs: Any, path: str, url: str, info: dict[str, Any]) -> None:
        self.fs, self.path, self.url, self.info = fs, path, url, info

    def __fspath__(self) -> str:  # only for messages; opening goes through read_bytes
        return self.url

    def __str__(self) -> str:
        return self.url

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    def stat(self) -> RemoteStat:
        return RemoteStat(int(self.info.get("size") or 0), version_number(self.info))

    def read_bytes(self) -> bytes:
        """The object's bytes; a store's or the network's error is an ``OSError`` (the row
        is then a recorded failure, read again by the next run)."""
        from bottleneck.storage.location import remote_error_types, remote_message

        try:
            return bytes(self.fs.cat_file(self.path))
        except FileNotFoundError as exc:
            raise FileNotFoundError(errno.ENOENT, "no such object", self.url) from exc
        except remote_error_types() as exc:
            raise OSError(errno.EIO, remote_message(exc), self.url) from exc

    def exists(self) -> bool:
        return bool(self.fs.exists(self.path))

    def is_file(self) -> bool:
        return self.exists()


def stat_of(path: Any) -> Any:
    """``os.stat`` for a local path, the listed details for a :class:`RemoteFile`."""
    return path.stat() if isinstance(path, RemoteFile) else os.stat(path)
