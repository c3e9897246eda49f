"""I/O errors the user's machine causes: one line naming the path and what to do.

A full disk or quota, a file-size limit, a read-only file system, a missing permission, a
folder that vanished mid-run: none is a bug, so none deserves a traceback. Each public entry
point that writes outputs (extract, targets, fit, finetune, bench, export) is wrapped in
:func:`machine_errors`; anything else (another errno, no errno) keeps its traceback.
"""

from __future__ import annotations

import errno
import functools
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from bottleneck.errors import PartialFailure, UserError
from bottleneck.storage.atomic import TEMP_MARK

F = TypeVar("F", bound=Callable[..., Any])

RERUN = "re-run the same command"
# errno → (what happened, what to do)
CAUSES = {
    errno.ENOSPC: ("no space left on the device",
                   f"free some space there (or choose another --out) and {RERUN}"),
    errno.EDQUOT: ("disk quota exceeded",
                   f"free some space there (or choose another --out) and {RERUN}"),
    errno.EFBIG: ("file too large for this file system or the process's size limit",
                  f"choose an --out on another file system (or raise `ulimit -f`) and {RERUN}"),
    errno.EROFS: ("read-only file system",
                  f"choose a writable --out (or remount it read-write) and {RERUN}"),
    errno.EACCES: ("permission denied", f"fix its permissions (or choose another path) and "
                                        f"{RERUN}"),
    errno.EPERM: ("operation not permitted", f"fix its permissions (or choose another path) "
                                             f"and {RERUN}"),
}


def machine_error(exc: BaseException, where: Path | None = None, kept: str = "") -> str | None:
    """The one line for an ``OSError`` the user's machine caused, else None (a bug).

    ``where``: the output folder of the command; a missing file counts as the machine's only
    when it lies in that folder and the folder itself has gone. ``kept``: what survives,
    e.g. "finished shards are kept".
    """
    if not isinstance(exc, OSError) or exc.errno is None:
        return None
    suffix = f" ({kept})" if kept else ""
    path = exc.filename or where
    if exc.errno == errno.ENOENT:
        inside = path is not None and where is not None and \
            Path(path).absolute().is_relative_to(where.absolute())
        if not inside or where.exists():
            return None
        return (f"{where}: the folder vanished while the command ran (removed, or its disk "
                f"unmounted?); {RERUN}{suffix}.")
    if exc.errno not in CAUSES:
        return None
    what, todo = CAUSES[exc.errno]
    return f"{shown(Path(path)) if path else 'output'}: {what}; {todo}{suffix}."


def shown(path: Path) -> Path:
    """The file a user knows for one of our temp names: ``dir/.NAME.tmp-PID`` → ``dir/NAME``
    (also ``dir/.NAME.tmp-PID/NAME``, a staging folder's file)."""
    for candidate in (path, path.parent):
        name, mark, pid = candidate.name.rpartition(TEMP_MARK)
        if mark and name.startswith(".") and pid.isdigit():
            return candidate.with_name(name[1:])
    return path


def machine_errors(out: str, kept: str = "",
                   partial: Callable[[Path], bool] | None = None) -> Callable[[F], F]:
    """Decorate an entry point: a machine-caused ``OSError`` becomes a :class:`UserError`
    (exit 2), or a :class:`PartialFailure` (exit 1) when ``partial(out folder)`` says work
    was kept. ``out`` names the parameter that holds the output path."""

    def decorate(func: F) -> F:
        signature = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except OSError as exc:
                given = signature.bind_partial(*args, **kwargs).arguments.get(out)
                if given is not None and not isinstance(given, str | os.PathLike):
                    given = getattr(given, "root", None)  # a Cache
                where = Path(given).expanduser() if given is not None else None
                line = machine_error(exc, where, kept)
                if line is None:
                    raise
                failure = PartialFailure if where and partial and _safely(partial, where) \
                    else UserError
                raise failure(line) from None

        return wrapper  # type: ignore[return-value]

    return decorate


def _safely(question: Callable[[Path], bool], where: Path) -> bool:
    try:
        return question(where)
    except Exception:  # asked while handling a failure: no answer is "no"
        return False
