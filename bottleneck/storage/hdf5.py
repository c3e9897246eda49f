"""HDF5 files written through a Python file object that keeps the first write error, so a
full disk fails with one clear OSError and HDF5 can still close the file (it would otherwise
crash the process at exit). Part of the atomic-write floor beside
:mod:`bottleneck.storage.atomic`."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any


class HeldErrorFile(io.RawIOBase):
    """The file under an HDF5 file being written (h5py's ``fileobj`` driver).

    HDF5 cannot close a file after a failed write (a full disk): it keeps retrying its flush
    and the process crashes at exit. So the first ``OSError`` of a write is held and later
    writes are dropped, the HDF5 file closes cleanly, and :meth:`check` raises what was held,
    naming ``name`` (the file the user will know).
    """

    def __init__(self, path: Path, name: Path | None = None) -> None:
        super().__init__()
        self._raw = open(path, "w+b", buffering=0)  # noqa: SIM115 - closed by close()
        self.name_shown = name or path
        self.error: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def readinto(self, buffer: Any) -> int:
        return self._raw.readinto(buffer)

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if self.error is None:
            try:
                done = 0
                while done < len(view):  # a raw write may write less than asked
                    done += self._raw.write(view[done:])
            except OSError as exc:
                self.error = exc
        return len(view)

    def truncate(self, size: int | None = None) -> int:
        if self.error is None:
            try:
                return self._raw.truncate(size)
            except OSError as exc:
                self.error = exc
        return size or 0

    def check(self) -> None:
        """Raise the held write error, if any, as an ``OSError`` naming the file."""
        if self.error is not None:
            raise OSError(self.error.errno, self.error.strerror, str(self.name_shown))

    def close(self) -> None:
        self._raw.close()
        super().close()


class Hdf5Output:
    """An HDF5 file written at ``path`` whose write errors surface as one ``OSError`` (see
    :class:`HeldErrorFile`); ``.file`` is the ``h5py.File``."""

    def __init__(self, path: Path, name: Path | None = None, **options: Any) -> None:
        import h5py

        self.raw = HeldErrorFile(path, name)
        try:
            self.file = h5py.File(self.raw, "w", **options)
        except BaseException:
            self.raw.close()
            raise

    def check(self) -> None:
        """Raise the first write error so far."""
        self.raw.check()

    def close(self, check: bool = True) -> None:
        """Close the HDF5 file and its file; then raise a held write error if ``check``."""
        try:
            self.file.close()
        finally:
            self.raw.close()
        if check:
            self.raw.check()

    def __enter__(self) -> Any:
        return self.file

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.close(check=kind is None)
