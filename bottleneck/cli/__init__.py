"""The ``bottleneck`` command line: parse, call the Python API, print. No logic lives here.

One module per stage holds its commands as thin wrappers: ``cache`` (extract, info, targets),
``model`` (fit, evaluate, predict, finetune, export), ``compare`` (bench, heads), ``report``
(report) and ``backbone`` (backbones, layers, imagenet). This module is the group that gathers them.
"""

from __future__ import annotations

import io
import sys
from typing import IO, Any

import click

from bottleneck.cli import backbone, cache, compare, model, report
from bottleneck.cli._options import storage_options
from bottleneck.errors import cli_messages


class _UsageError(click.UsageError):
    """click's usage error (a wrong option or argument) with the prefix every error of this
    tool has, ``error:`` (click writes ``Error:``)."""

    @classmethod
    def of(cls, exc: click.UsageError) -> _UsageError:
        ours = cls(exc.format_message(), exc.ctx)
        ours.exit_code = exc.exit_code
        return ours

    def show(self, file: IO[Any] | None = None) -> None:
        shown = io.StringIO()
        super().show(shown)
        text = shown.getvalue()
        start = text.rfind("Error: ")
        if start == 0 or text[start - 1:start] == "\n":
            text = f"{text[:start]}error: {text[start + len('Error: '):]}"
        click.echo(text, file=file, err=file is None, nl=False)


class _Main(click.Group):
    """The command group. A ``UserError`` is a ``click.ClickException`` (one line, exit 2);
    a usage error says ``error:`` like every other; Ctrl-C says what was kept instead of
    click's bare "Aborted!"."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            raise _UsageError.of(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with cli_messages():
                return super().invoke(ctx)
        except click.UsageError as exc:
            if isinstance(exc, _UsageError):
                raise
            raise _UsageError.of(exc) from None
        except KeyboardInterrupt:
            click.echo("interrupted: complete shards are kept; re-run the same command to "
                       "resume.", err=True)
            sys.exit(130)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bottleneck")
@storage_options
def main() -> None:
    """Cache frozen-backbone features once, then fit and compare heads in seconds."""


COMMAND_MODULES = (cache, model, compare, report, backbone)
"""The modules whose commands make up the CLI, in the order a user meets them."""

# the commands that take a cache, model, report, export or source location (a URL too)
LOCATION_COMMANDS = ("extract", "info", "targets", "fit", "evaluate", "predict", "finetune",
                     "export", "bench", "report")

for _module in COMMAND_MODULES:
    for _command in vars(_module).values():
        if isinstance(_command, click.Command):
            if _command.name in LOCATION_COMMANDS:
                storage_options(_command)
            main.add_command(_command)
