"""The ``bottleneck`` command line: parse, call the Python API, print. No logic lives here."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

ENGINE_HELP = ("What runs the backbone: tf (TensorFlow, the reference) or openvino (a converted "
               "copy, faster on CPUs; pip install 'bottleneck[openvino]').")
PRECISION_HELP = ("fp32 gives TensorFlow's features; bf16 (openvino, on CPUs with bf16) is faster "
                  "and within cosine 0.9999 of them.")
THREADS_HELP = "Inference threads of the openvino engine (default: the cores this process may use)."


class _Main(click.Group):
    """The command group. A ``UserError`` is a ``click.ClickException`` (one line, exit 2);
    Ctrl-C says what was kept instead of click's bare "Aborted!"."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("interrupted: complete shards are kept; re-run the same command to "
                       "resume.", err=True)
            sys.exit(130)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bottleneck")
def main() -> None:
    """Cache frozen-backbone features once, then fit and compare heads in seconds."""
    from bottleneck._tf import import_tensorflow_quietly

    import_tensorflow_quietly()


@main.command()
def backbones() -> None:
    """List the registered backbones with their sizes and output dims."""
    from bottleneck.backbones import BACKBONES

    click.echo(f"{'name':<20}{'dims':>6}{'default':>9}{'min':>5}  description")
    for backbone in BACKBONES.values():
        click.echo(f"{backbone.name:<20}{backbone.dims:>6}{backbone.default_size:>9}"
                   f"{backbone.min_size:>5}  {backbone.description}")


@main.command()
@click.argument("backbone")
@click.option("--image-size", type=int, help="Input size (default: the backbone's).")
def layers(backbone: str, image_size: int | None) -> None:
    """List BACKBONE's layer names and output shapes (for --layer)."""
    from bottleneck.backbones import get_backbone

    spec = get_backbone(backbone)
    size = image_size or spec.default_size
    spec.check_size(size)
    model = spec.load(spec.resolve_weights("none"), size)
    for layer in model.layers:
        shape = "×".join(str(d) for d in layer.output.shape[1:])
        click.echo(f"{layer.name:<40}{shape}")


@main.command()
@click.argument("source")
@click.option("--backbone", "-b", required=True, help="Backbone name (see `bottleneck backbones`).")
@click.option("--out", "-o", required=True, type=click.Path(), help="Cache directory to write.")
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
@click.option("--engine", default="tf", show_default=True,
              help=ENGINE_HELP)
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32",
              show_default=True, help=PRECISION_HELP)
@click.option("--fast-decode", is_flag=True,
              help="Decode JPEGs at 1/2, 1/4 or 1/8 scale from the DCT (never below "
                   "--image-size) before the resize: faster on large photos, features differ "
                   "slightly from the default; predict does the same.")
@click.option("--threads", type=int, help=THREADS_HELP)
@click.option("--overwrite", is_flag=True, help="Replace a cache made with another config.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
              show_default=True, help="Who computes the shards: this process, or Ray actors.")
@click.option("--workers", type=int,
              help="ray: actors (default: one per GPU, else one per CPU of the cluster).")
@click.option("--ray-address", help="ray: an existing cluster (default: start a local one).")
@click.option("--augment", type=int, default=0, show_default=True, metavar="K",
              help="Also cache K seeded augmented views of every train image.")
@click.option("--augment-ops", metavar="OPS",
              help="With --augment: flip,rotate=F,zoom=F,translate=F,contrast=F "
                   "(Keras' meanings; default flip,rotate=0.1,zoom=0.1).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def extract(source: str, backbone: str, out: str, weights: str, layers: tuple[str, ...],
            pooling: str, image_size: int | None, dtype: str, batch_size: int, shard_size: int,
            val_percent: float, test_percent: float, limit: int | None, data_dir: str | None,
            engine: str, precision: str, fast_decode: bool, threads: int | None,
            overwrite: bool, executor: str, workers: int | None, ray_address: str | None,
            augment: int, augment_ops: str | None, quiet: bool) -> None:
    """Run a frozen BACKBONE once over SOURCE and cache the features.

    SOURCE is a folder with a subfolder per class (optionally under train/, val/, test/),
    `fashion-mnist`, or an .npz file with `images` and `labels`.
    """
    import bottleneck
    from bottleneck.data import open_source

    src = open_source(source, data_dir, val_percent, test_percent, limit)
    result = bottleneck.extract(src, backbone=backbone, out=out, weights=weights,
                                layer=list(layers) or None,
                                pooling=pooling, image_size=image_size, dtype=dtype,
                                batch_size=batch_size, shard_size=shard_size,
                                overwrite=overwrite, progress=not quiet, engine=engine,
                                precision=precision, fast_decode=fast_decode, threads=threads,
                                executor=executor, workers=workers, ray_address=ray_address,
                                augment=augment, augment_ops=augment_ops)
    caches = list(result.values()) if isinstance(result, dict) else [result]
    for cache in caches:
        counts = ", ".join(f"{k} {v}" for k, v in cache.split_counts().items())
        click.echo(f"cached {cache.rows} images ({counts}) × "
                   f"{'×'.join(map(str, cache.feature_shape))} features in {cache.root} "
                   f"[{cache.config['weights_name']} weights, {cache.config['engine']} "
                   f"{cache.config['precision']}]")
    cache = caches[0]
    if cache.failures:
        click.echo(f"skipped {len(cache.failures)} unreadable files (listed in "
                   f"`bottleneck info {out}`), e.g. {cache.failures[0]['path']}: "
                   f"{cache.failures[0]['reason']}", err=True)


@main.command()
@click.argument("cache_dir", metavar="CACHE")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--verify", is_flag=True, help="Also check every shard's sha256.")
def info(cache_dir: str, as_json: bool, verify: bool) -> None:
    """Counts per split and class, feature shape, config and skipped files of CACHE."""
    from bottleneck.cache import open_cache
    from bottleneck.cache.summary import cache_summary, format_summary

    if verify:
        open_cache(cache_dir).verify()
    summary = cache_summary(cache_dir)
    click.echo(json.dumps(summary, indent=2) if as_json else format_summary(summary))


@main.command()
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
    click.echo(f"targets attached to {cache_dir}: {info['rows']} rows, mean "
               f"{info['mean']:.2f}, std {info['std']:.2f} ({info['kind']})")


@main.command()
@click.argument("cache_dir", metavar="CACHE")
@click.option("--head", "head_name", required=True,
              help="Head to train: logreg, linear-svm, svm, ridge, dense (a wrong name lists all).")
@click.option("--task", type=click.Choice(["classify", "regress"]),
              help="Default: regress if CACHE has targets and the head can regress, else classify.")
@click.option("--param", "-p", "param_pairs", multiple=True, metavar="KEY=VALUE",
              help="A head hyperparameter, repeatable: -p C=0.1 -p hidden=512,128.")
@click.option("--params", "params_file", type=click.Path(),
              help="JSON or YAML file of hyperparameters (--param overrides it).")
@click.option("--out", "-o", required=True, type=click.Path(), help="MODEL_DIR to write.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--stream/--no-stream", default=None,
              help="dense: read batches from the shards (default: when train does not fit in "
                   "memory).")
@click.option("--overwrite", is_flag=True, help="Replace an earlier model in --out.")
@click.option("--quiet", "-q", is_flag=True, help="No per-epoch lines.")
def fit(cache_dir: str, head_name: str, task: str | None, param_pairs: tuple[str, ...],
        params_file: str | None, out: str, seed: int, stream: bool | None, overwrite: bool,
        quiet: bool) -> None:
    """Train a head on CACHE's train split, score it on val and test, save it to --out."""
    import bottleneck
    from bottleneck.heads.hyperparams import collect_params

    result = bottleneck.fit(cache_dir, head=head_name, out=out, task=task,
                            params=collect_params(param_pairs, params_file), seed=seed,
                            overwrite=overwrite, stream=stream, progress=not quiet)
    click.echo(result.summary())


@main.command()
@click.argument("model_dir", metavar="MODEL_DIR")
@click.argument("cache_dir", metavar="[CACHE]", required=False)
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test",
              show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate(model_dir: str, cache_dir: str | None, split: str, as_json: bool) -> None:
    """Score MODEL_DIR on a split of CACHE (default: the cache it was trained on)."""
    import bottleneck

    evaluation = bottleneck.evaluate(model_dir, cache_dir, split=split)
    click.echo(json.dumps(evaluation.to_dict(), indent=2) if as_json else evaluation.report())


@main.command()
@click.argument("model_dir", metavar="MODEL_DIR")
@click.argument("inputs", metavar="IMAGE_OR_FOLDER...", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.option("--top", type=int, default=1, show_default=True, help="Show the K best classes.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--engine", help=ENGINE_HELP.replace(".", " (default: the cache's).", 1))
@click.option("--precision", type=click.Choice(["fp32", "bf16"]),
              help="fp32 or bf16 (default: the cache's, where the engine runs it).")
@click.option("--threads", type=int, help=THREADS_HELP)
def predict(model_dir: str, inputs: tuple[str, ...], as_json: bool, top: int,
            batch_size: int, engine: str | None, precision: str | None,
            threads: int | None) -> None:
    """Run the backbone and head of MODEL_DIR on image files (folders are walked)."""
    import bottleneck
    from bottleneck.models.predict import format_prediction, require_some

    results = bottleneck.predict(model_dir, inputs, top=top, batch_size=batch_size,
                                 engine=engine, precision=precision, threads=threads)
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        for result in results:
            click.echo(format_prediction(result), err="error" in result)
    require_some(results)


@main.command()
@click.argument("model_dir", metavar="MODEL_DIR")
@click.option("--out", "-o", required=True, type=click.Path(), help="New MODEL_DIR to write.")
@click.option("--unfreeze-from", metavar="LAYER",
              help="Train the backbone from this layer (name or index) up.")
@click.option("--unfreeze-top", type=int, metavar="N", help="Train the top N backbone layers.")
@click.option("--epochs", type=int, default=10, show_default=True)
@click.option("--learning-rate", type=float,
              help="Default: a tenth of the head's (scikit-learn heads: 1e-5).")
@click.option("--optimizer", type=click.Choice(["rmsprop", "adam", "sgd"]), default="rmsprop",
              show_default=True)
@click.option("--augment", metavar="LIST",
              help="Training augmentation, e.g. flip,rotate=0.1,zoom=0.1 (also translate, "
                   "contrast).")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--patience", type=int, default=3, show_default=True,
              help="Stop after this many epochs without a better val loss (0: never).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an earlier model in --out.")
@click.option("--quiet", "-q", is_flag=True, help="No per-epoch lines.")
def finetune(model_dir: str, out: str, unfreeze_from: str | None, unfreeze_top: int | None,
             epochs: int, learning_rate: float | None, optimizer: str, augment: str | None,
             batch_size: int, patience: int, seed: int, overwrite: bool, quiet: bool) -> None:
    """Fine-tune the top of the backbone under MODEL_DIR's head, on the cache's images."""
    import bottleneck

    result = bottleneck.finetune(model_dir, out, unfreeze_from=unfreeze_from,
                                 unfreeze_top=unfreeze_top, epochs=epochs,
                                 learning_rate=learning_rate, optimizer=optimizer,
                                 augment=augment, batch_size=batch_size, patience=patience,
                                 seed=seed, overwrite=overwrite, progress=not quiet)
    click.echo(result.summary())


@main.command()
@click.argument("model_dir", metavar="MODEL_DIR")
@click.option("--out", "-o", required=True, type=click.Path(),
              help="File to write (.keras, .tflite, .onnx) or a SavedModel folder.")
@click.option("--format", "fmt", type=click.Choice(["keras", "saved_model", "tflite", "onnx"]),
              help="Default: from --out's suffix (none: saved_model).")
@click.option("--overwrite", is_flag=True, help="Replace an earlier export at --out.")
def export(model_dir: str, out: str, fmt: str | None, overwrite: bool) -> None:
    """Write MODEL_DIR as one model: RGB images of any size in, probabilities out."""
    import bottleneck

    click.echo(bottleneck.export(model_dir, out, format=fmt, overwrite=overwrite).summary())


@main.command()
@click.argument("caches", metavar="CACHE...", nargs=-1, required=True)
@click.option("--heads", default=None,
              help="Comma-separated heads (default: every head that can do the task).")
@click.option("--grid", "grid_pairs", multiple=True, metavar="KEY=V1,V2,...",
              help="Hyperparameter values to try, repeatable; applied to the heads that take KEY.")
@click.option("--seeds", type=int, default=1, show_default=True, help="Fits per variant.")
@click.option("--cv", type=int, help="K-fold cross-validation over train+val instead of val.")
@click.option("--task", type=click.Choice(["classify", "regress"]),
              help="Default: regress if every cache has targets, else classify.")
@click.option("--jobs", type=int, default=-1, show_default=True,
              help="Parallel scikit-learn fits (joblib); Keras heads run one at a time.")
@click.option("--out", "-o", required=True, type=click.Path(), help="REPORT_DIR to write.")
def bench(caches: tuple[str, ...], heads: str | None, grid_pairs: tuple[str, ...], seeds: int,
          cv: int | None, task: str | None, jobs: int, out: str) -> None:
    """Fit head variants on one or more caches of the same images and rank them on val."""
    import bottleneck
    from bottleneck.benching import parse_grid
    from bottleneck.benching.leaderboard import format_table

    names = [h.strip() for h in heads.split(",") if h.strip()] if heads else None
    report = bottleneck.bench(list(caches), heads=names, grid=parse_grid(grid_pairs), seeds=seeds,
                              cv=cv, task=task, jobs=jobs, out=out)
    click.echo(format_table(report))
    click.echo(f"reports in {out}: leaderboard.csv, leaderboard.json, leaderboard.md, "
               "score_vs_fit_time.png")


@main.command("heads")
def list_heads() -> None:
    """List the registered heads, their tasks and their parameters."""
    from bottleneck.heads import HEADS, head_param_names, make_head

    for spec in HEADS.values():
        params = head_param_names(make_head(spec.name, spec.tasks[0]))
        click.echo(f"{spec.name:<11} {'/'.join(spec.tasks):<17} {spec.description}")
        click.echo(f"{'':<11} params: {', '.join(params)}")


@main.command("imagenet")
@click.argument("inputs", metavar="IMAGE_OR_FOLDER...", nargs=-1, required=True)
@click.option("--backbone", "-b", default="efficientnet_lite0", show_default=True,
              help="A backbone whose ImageNet weights you have (efficientnet_lite0: offline).")
@click.option("--top", type=int, default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def imagenet(inputs: tuple[str, ...], backbone: str, top: int, as_json: bool) -> None:
    """Name the ImageNet classes the backbone itself sees in each image (a sanity check)."""
    from bottleneck.models.imagenet import classify_imagenet
    from bottleneck.models.predict import require_some

    results = classify_imagenet(inputs, backbone=backbone, top=top)
    if as_json:
        click.echo(json.dumps(results, indent=2))
    for result in [] if as_json else results:
        if "error" in result:
            click.echo(f"{result['path']}: cannot classify: {result['error']}", err=True)
        else:
            ranked = ", ".join(f"{e['class']} {e['probability']:.3f}" for e in result["top"])
            click.echo(f"{result['path']}\t{ranked}")
    require_some(results)


if __name__ == "__main__":
    main()
