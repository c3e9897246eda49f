"""Commands that make and inspect caches: extract, info, targets, export-features."""

from __future__ import annotations

import json

import click

from bottleneck._text import plural
from bottleneck.cli._options import (
    ENGINE_HELP,
    PRECISION_HELP,
    PRECISIONS,
    THREADS_HELP,
    backend_option,
)


@click.command()
@click.argument("source")
@click.option("--backbone", "-b", required=True, help="Backbone name (see `bottleneck backbones`).")
@click.option("--out", "-o", required=True, type=click.Path(),
              help="Cache directory to write, or a URL (s3://bucket/cache, gs://, az://...).")
@click.option("--weights", default="imagenet", show_default=True,
              help="imagenet, none (random, for tests) or a path to a weights file.")
@click.option("--layer", "layers", multiple=True,
              help="Keep this layer's output instead of the last block's; repeat it to cache "
                   "several layers in one pass, one cache per layer in OUT/<layer>/.")
@click.option("--pooling", type=click.Choice(["avg", "max", "none"]), default="avg",
              show_default=True, help="Global pooling of a spatial output; none keeps H×W×C.")
@click.option("--image-size", type=int, help="Input size (default: the backbone's).")
@click.option("--dtype", type=click.Choice(["float32", "float16"]), default="float32",
              show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--shard-size", type=int, default=1024, show_default=True, help="Images per shard.")
@click.option("--val-percent", type=float, default=10, show_default=True,
              help="Share of images hashed into val when the source has no split folders.")
@click.option("--test-percent", type=float, default=10, show_default=True,
              help="Share of images hashed into test when the source has no split folders.")
@click.option("--limit", type=int, help="At most N images per split, stratified by class.")
@click.option("--data-dir", type=click.Path(), help="Where fashion-mnist's idx files are.")
@click.option("--label-key", metavar="KEY",
              help="WebDataset source: the label is this key of each sample's .json member "
                   "(default: its .cls member, else no labels).")
@click.option("--engine", default="keras", show_default=True,
              help=ENGINE_HELP)
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32",
              show_default=True, help=PRECISION_HELP)
@backend_option
@click.option("--devices", type=click.Choice(["auto", "cpu", "gpu"]), default="auto",
              show_default=True, help="auto: the GPUs if the backend sees any, else the CPU.")
@click.option("--fast-decode", is_flag=True,
              help="Decode JPEGs at 1/2, 1/4 or 1/8 scale from the DCT (never below "
                   "--image-size) before the resize: faster on large photos, features differ "
                   "slightly from the default; predict does the same.")
@click.option("--decode", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True,
              help="gpu: JPEGs decoded by nvJPEG on the GPU (PyTorch backend with "
                   "torchvision); its pixels differ slightly from the CPU's, so the cache is "
                   "another config, and predict decodes the same way.")
@click.option("--threads", type=int, help=THREADS_HELP)
@click.option("--overwrite", is_flag=True, help="Replace a cache made with another config.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
              show_default=True, help="Who computes the shards: this process, or Ray actors.")
@click.option("--workers", type=int,
              help="ray: actors (default: one per GPU, else one per CPU of the cluster); "
                   "local: processes (default: one per visible GPU, else this process).")
@click.option("--ray-address", help="ray: an existing cluster (default: start a local one).")
@click.option("--augment", type=int, default=0, show_default=True, metavar="K",
              help="Also cache K seeded augmented views of every train image.")
@click.option("--augment-ops", metavar="OPS",
              help="With --augment: flip,rotate=F,zoom=F,translate=F,contrast=F "
                   "(Keras' meanings; default flip,rotate=0.1,zoom=0.1).")
@click.option("--no-lock", is_flag=True,
              help="Write a URL whose store has no conditional writes (memory://, gs://, "
                   "az://) without the lock: only when no other run writes there.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def extract(source: str, backbone: str, out: str, weights: str, layers: tuple[str, ...],
            pooling: str, image_size: int | None, dtype: str, batch_size: int, shard_size: int,
            val_percent: float, test_percent: float, limit: int | None, data_dir: str | None,
            label_key: str | None,
            engine: str, precision: str, fast_decode: bool, threads: int | None,
            overwrite: bool, executor: str, workers: int | None, ray_address: str | None,
            augment: int, augment_ops: str | None, devices: str, decode: str,
            no_lock: bool, quiet: bool) -> None:
    """Run a frozen BACKBONE once over SOURCE and cache the features.

    SOURCE is a folder with a subfolder per class (optionally under train/, val/, test/),
    WebDataset tar shards ('data/{00000..00099}.tar', a URL, or a folder of .tar files),
    `fashion-mnist`, or an .npz file with `images` and `labels`.
    """
    import bottleneck
    from bottleneck.backbones import get_backbone
    from bottleneck.cache.summary import runtime_line
    from bottleneck.data import open_source

    get_backbone(backbone)  # a wrong name is refused before SOURCE is scanned
    src = open_source(source, data_dir, val_percent, test_percent, limit, label_key=label_key)
    result = bottleneck.extract(src, backbone=backbone, out=out, weights=weights,
                                layer=list(layers) or None,
                                pooling=pooling, image_size=image_size, dtype=dtype,
                                batch_size=batch_size, shard_size=shard_size,
                                overwrite=overwrite, progress=not quiet, engine=engine,
                                precision=precision, fast_decode=fast_decode, threads=threads,
                                executor=executor, workers=workers, ray_address=ray_address,
                                augment=augment, augment_ops=augment_ops, devices=devices,
                                decode=decode, lock=not no_lock)
    caches = list(result.values()) if isinstance(result, dict) else [result]
    for cache in caches:
        counts = ", ".join(f"{k} {v}" for k, v in cache.split_counts().items())
        click.echo(f"cached {plural(cache.rows, 'image')} ({counts}) × "
                   f"{'×'.join(map(str, cache.feature_shape))} features in {cache.where} "
                   f"[{cache.config['weights_name']} weights, {runtime_line(cache)}]")
    cache = caches[0]
    if cache.failures:
        click.echo(f"skipped {plural(len(cache.failures), 'unreadable file')} (listed in "
                   f"`bottleneck info {out}`), e.g. {cache.failures[0]['path']}: "
                   f"{cache.failures[0]['reason']}", err=True)


@click.command()
@click.argument("cache_dir", metavar="CACHE")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--verify", is_flag=True, help="Also check every shard's sha256.")
def info(cache_dir: str, as_json: bool, verify: bool) -> None:
    """Counts per split and class, feature shape, config and skipped files of CACHE."""
    from bottleneck.cache.summary import cache_summary, format_summary

    summary = cache_summary(cache_dir, verify=verify)
    click.echo(json.dumps(summary, indent=2) if as_json else format_summary(summary))


@click.command()
@click.argument("cache_dir", metavar="CACHE")
@click.option("--synthetic-prices", is_flag=True,
              help="Draw each image's price from Normal(class price, sigma).")
@click.option("--sigma", type=float, default=5.0, show_default=True,
              help="Spread of the synthetic prices around the class price.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--class-prices", type=click.Path(),
              help="JSON file {class: price}; default: the Fashion-MNIST price table.")
@click.option("--from-csv", type=click.Path(), help="CSV with path (or id) and target columns.")
def targets(cache_dir: str, synthetic_prices: bool, sigma: float, seed: int,
            class_prices: str | None, from_csv: str | None) -> None:
    """Attach per-image numeric targets to CACHE (no re-extraction)."""
    from bottleneck.cache.targets import set_targets

    info = set_targets(cache_dir, synthetic=synthetic_prices, sigma=sigma, seed=seed,
                       class_prices_file=class_prices, csv_file=from_csv)
    click.echo(f"targets attached to {cache_dir}: {plural(info['rows'], 'row')}, mean "
               f"{info['mean']:.2f}, std {info['std']:.2f} ({info['kind']})")


@click.command("export-features")
@click.argument("cache_dir", metavar="CACHE")
@click.option("--out", "-o", required=True, type=click.Path(),
              help="Parquet file to write (e.g. features.parquet).")
@click.option("--split", type=click.Choice(["train", "val", "test"]),
              help="Only this split (default: every row).")
@click.option("--row-group-rows", type=int, default=8192, show_default=True,
              help="Rows per row group at most (a row group never spans two shards).")
@click.option("--overwrite", is_flag=True, help="Replace a feature table bottleneck wrote.")
def export_features(cache_dir: str, out: str, split: str | None, row_group_rows: int,
                    overwrite: bool) -> None:
    """Write CACHE's rows (path, label, class, split, content hash, [target,] features) as a
    Parquet file that DuckDB, Polars, pandas and Hugging Face datasets read."""
    from bottleneck.cache import open_cache

    written = open_cache(cache_dir).to_parquet(out, split, row_group_rows, overwrite)
    click.echo(f"{written['rows']} rows in {written['row_groups']} row groups, "
               f"{written['bytes'] / 2**20:.1f} MiB → {written['out']}")
