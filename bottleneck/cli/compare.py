"""Commands that compare heads: bench, and heads (what there is to compare)."""

from __future__ import annotations

import click

from bottleneck.cli._options import backend_option


@click.command()
@click.argument("caches", metavar="CACHE...", nargs=-1, required=True)
@click.option("--heads", default=None,
              help="Comma-separated heads (default: every head that can do the task).")
@click.option("--grid", "grid_pairs", multiple=True, metavar="KEY=V1,V2,...",
              help="Hyperparameter values to try, repeatable; applied to the heads that take KEY.")
@click.option("--seeds", type=int, default=1, show_default=True, help="Fits per variant.")
@click.option("--cv", type=int, help="K-fold cross-validation over train+val instead of val.")
@click.option("--task", type=click.Choice(["classify", "regress"]),
              help="Default: the one the --heads can do, else regress if every cache has "
                   "targets, else classify.")
@click.option("--jobs", type=int, default=-1, show_default=True,
              help="Parallel scikit-learn fits (joblib); Keras heads run one at a time.")
@click.option("--out", "-o", required=True, type=click.Path(), help="REPORT_DIR to write.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@backend_option
def bench(caches: tuple[str, ...], heads: str | None, grid_pairs: tuple[str, ...], seeds: int,
          cv: int | None, task: str | None, jobs: int, out: str, quiet: bool) -> None:
    """Fit head variants on one or more caches of the same images and rank them on val."""
    import bottleneck
    from bottleneck.benching import parse_grid
    from bottleneck.benching.leaderboard import format_table

    names = [h.strip() for h in heads.split(",") if h.strip()] if heads else None
    report = bottleneck.bench(list(caches), heads=names, grid=parse_grid(grid_pairs), seeds=seeds,
                              cv=cv, task=task, jobs=jobs, out=out, progress=not quiet)
    click.echo(format_table(report))
    click.echo(f"reports in {out}: leaderboard.csv, leaderboard.json, leaderboard.md, "
               "score_vs_fit_time.png" + (", best-model/ (the top variant, fitted again)"
                                          if report.get("model") else ""))


@click.command("heads")
def list_heads() -> None:
    """List the registered heads, their tasks and their parameters with their defaults."""
    from bottleneck.heads import HEADS
    from bottleneck.heads.registry import listed_params

    for spec in HEADS.values():
        click.echo(f"{spec.name:<11} {'/'.join(spec.tasks):<17} {spec.description}")
        click.echo(f"{'':<11} params: {listed_params(spec.name, defaults=True)}")
