"""HDF5 files: written through a Python file object that keeps the first write error, so a
full disk fails with one clear OSError and HDF5 can still close the file (it would otherwise
crash the process at exit); read through :func:`open_checked`, which opens read-only and checks
the file's structure against what its caller expects before anything is read. Part of the
atomic-write floor beside :mod:`bottleneck.storage.atomic`; the only place that opens HDF5.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bottleneck.errors import UserError


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


@dataclass(frozen=True)
class Column:
    """What one dataset of a file must be: ``dtype`` (a NumPy dtype name, ``"string"`` for
    UTF-8 strings, or a kind: ``"int"``, ``"uint"``) and ``tail``, its shape after the first
    (row) axis. An optional one may be absent."""

    dtype: str
    tail: tuple[int, ...] = ()
    optional: bool = False


KINDS = {"int": "iu", "uint": "u"}


def _dtype_problem(name: str, dataset: Any, column: Column) -> str | None:
    import h5py
    import numpy as np

    found = dataset.dtype
    if column.dtype == "string":
        info = h5py.check_string_dtype(found)
        return None if info is not None and info.encoding == "utf-8" else \
            f"{name} holds {found}, not UTF-8 strings"
    if column.dtype in KINDS:
        return None if found.kind in KINDS[column.dtype] else \
            f"{name} holds {found}, not {column.dtype} numbers"
    return None if found == np.dtype(column.dtype) else \
        f"{name} holds {found}, recorded {column.dtype}"


def _member_problem(handle: Any, name: str) -> tuple[str | None, Any]:
    """(why ``name`` is not a plain dataset stored in ``handle``'s file, the dataset): a soft
    or external link, a group, a virtual dataset or one with external storage is refused,
    and nothing is followed to find out."""
    import h5py

    link = handle.get(name, getlink=True)
    if isinstance(link, h5py.SoftLink):
        return f"{name} is a soft link (to {link.path})", None
    if isinstance(link, h5py.ExternalLink):
        return f"{name} is an external link (to {link.filename}:{link.path})", None
    if not isinstance(link, h5py.HardLink):
        return f"{name} is a link of an unknown kind", None
    item = handle[name]
    if not isinstance(item, h5py.Dataset):
        return f"{name} is a {type(item).__name__.lower()}, not a dataset", None
    if item.is_virtual:
        return f"{name} is a virtual dataset (its rows live in other files)", None
    if item.external:
        return f"{name} keeps its rows in an external file", None
    return None, item


def structure_problem(handle: Any, columns: Mapping[str, Column] | None,
                      rows: int | None) -> str | None:
    """Why ``handle`` is not a file of plain datasets (no links, groups or rows stored
    elsewhere) that are exactly ``columns`` (names, dtypes, shapes), each of ``rows`` rows when
    given; None when it is. ``columns=None``: any plain datasets."""
    found = {}
    for name in handle:
        problem, dataset = _member_problem(handle, name)
        if problem:
            return problem
        if columns is not None and name not in columns:
            return f"holds {name!r}, which is not one of its recorded datasets"
        found[name] = dataset
    for name, column in (columns or {}).items():
        if name not in found:
            if column.optional:
                continue
            return f"has no {name!r} dataset"
        dataset = found[name]
        problem = _dtype_problem(name, dataset, column)
        if problem:
            return problem
        shape = tuple(dataset.shape)
        if len(shape) < 1 or shape[1:] != column.tail:
            wanted = ", ".join(map(str, ("rows", *column.tail)))
            return f"{name} has shape {shape}, recorded ({wanted})"
        if rows is not None and shape[0] != rows:
            return f"{name} has {shape[0]} rows, recorded {rows}"
    return None


@contextmanager
def open_checked(path: Path, columns: Mapping[str, Column] | None, rows: int | None,
                 repair: str) -> Iterator[Any]:
    """``path`` opened read-only as an ``h5py.File``, once it is known to hold ``columns``
    (see :func:`structure_problem`; ``None``: any plain datasets, still no links). A file that
    cannot be opened or does not match is a UserError: ``{path} {what is wrong}; {repair}``."""
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        reason = str(exc).split("(")[-1].rstrip(")") if "(" in str(exc) else str(exc)
        raise UserError(f"{path} cannot be read ({reason}); {repair}") from None
    with handle:
        problem = structure_problem(handle, columns, rows)
        if problem:
            raise UserError(f"{path} does not match its record: {problem}; {repair}")
        yield handle
