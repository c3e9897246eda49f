"""The commands that look at the data through the cache: report, similar."""

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


@click.command()
@click.argument("cache_dir", metavar="CACHE")
@click.argument("queries", metavar="QUERY...", nargs=-1, required=True)
@click.option("--top", type=int, default=10, show_default=True,
              help="How many similar rows to answer per query.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False),
              help="Also write the answers as JSON to this file.")
@click.option("--rebuild-index", is_flag=True,
              help="Build CACHE's nearest-neighbour index (CACHE/index/) again from scratch.")
@backend_option
def similar(cache_dir: str, queries: tuple[str, ...], top: int, json_out: str | None,
            rebuild_index: bool) -> None:
    """The cached rows most like each QUERY: an image file or folder (run through the
    cache's own backbone, as predict does) or a row key of CACHE, with label, split and
    cosine.

    The first search builds CACHE's nearest-neighbour index; later ones add new shards.
    """
    import bottleneck
    from bottleneck.models.similar import format_answer, require_some

    answers = bottleneck.similar(cache_dir, list(queries), top=top, json_out=json_out,
                                 rebuild_index=rebuild_index)
    for answer in answers:
        click.echo(format_answer(answer), err="error" in answer)
    require_some(answers)
