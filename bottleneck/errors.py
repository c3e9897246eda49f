"""The one exception type users see: one line on stderr, exit code 2, no traceback.

It is a ``click.ClickException``, so the CLI prints it through click's own error path; from
Python it is an ordinary exception whose message says what to do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO, Any

import click

_FROM_CLI: ContextVar[bool] = ContextVar("bottleneck_from_cli", default=False)


def arg(flag: str, python: str) -> str:
    """An option as the caller spells it: ``flag`` (``--overwrite``) under the CLI, ``python``
    (``overwrite=True``) from Python."""
    return flag if _FROM_CLI.get() else python


@contextmanager
def cli_messages() -> Iterator[None]:
    """Inside this block (a CLI command) messages name options as flags (see :func:`arg`)."""
    token = _FROM_CLI.set(True)
    try:
        yield
    finally:
        _FROM_CLI.reset(token)


class UserError(click.ClickException):
    """An error caused by user input: printed as one line, exit code 2."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


class PartialFailure(UserError):
    """Part of the work failed and the rest was kept: one line naming it, exit code 1."""

    exit_code = 1
