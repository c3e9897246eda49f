"""The command that looks at the data through the cache: report."""

from __future__ import annotations

import click

from bottleneck.cli._options import backend_option


@click.command()
@click.argument("targets", metavar="TARGET...", nargs=-1, required=True)
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False),
              help="HTML file to write (one self-contained page).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False),
              help="Also write the same figures and row lists as JSON to this file.")
@backend_option
def report(targets: tuple[str, ...], out: str, json_out: str | None) -> None:
    """One HTML report of caches, model directories and bench folders: scores, mistakes with
    their nearest training images, likely label errors, near-duplicates, the feature map.

    Each model's sections use the cache its lineage records; opens offline in any browser.
    """
    import bottleneck

    click.echo(bottleneck.report(list(targets), out, json_out=json_out).summary())
