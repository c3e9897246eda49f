"""The ``bottleneck`` command line: parse, call the Python API, print. No logic lives here.

One module per stage holds its commands as thin wrappers: ``cache`` (extract, info, targets),
``model`` (fit, evaluate, predict, finetune, export), ``compare`` (bench, heads), ``report``
(report) and ``backbone`` (backbones, layers, imagenet). This module is the group that gathers them.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from bottleneck.cli import backbone, cache, compare, model, report
from bottleneck.cli._options import storage_options
from bottleneck.errors import cli_messages


class _Main(click.Group):
    """The command group. A ``UserError`` is a ``click.ClickException`` (one line, exit 2);
    Ctrl-C says what was kept instead of click's bare "Aborted!"."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with cli_messages():
                return super().invoke(ctx)
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
