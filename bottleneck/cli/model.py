"""Commands on one model: fit, evaluate, predict, finetune, export."""

from __future__ import annotations

import json

import click

from bottleneck.cli._options import ENGINE_HELP, PRECISIONS, THREADS_HELP, backend_option


@click.command()
@click.argument("cache_dir", metavar="CACHE")
@click.option("--head", "head_name", required=True,
              help="Head to train: logreg, linear-svm, svm, ridge, dense, linear (a wrong name "
                   "lists all).")
@click.option("--task", type=click.Choice(["classify", "regress"]),
              help="Default: regress if CACHE has targets and the head can regress, else classify.")
@click.option("--param", "-p", "param_pairs", multiple=True, metavar="KEY=VALUE",
              help="A head hyperparameter, repeatable: -p C=0.1 -p hidden=512,128.")
@click.option("--params", "params_file", type=click.Path(),
              help="JSON or YAML file of hyperparameters (--param overrides it).")
@click.option("--out", "-o", required=True, type=click.Path(), help="MODEL_DIR to write.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--stream/--no-stream", default=None,
              help="linear, dense: read batches from the shards (default: when train does not "
                   "fit in memory).")
@click.option("--overwrite", is_flag=True, help="Replace an earlier model in --out.")
@click.option("--quiet", "-q", is_flag=True, help="No per-epoch lines.")
@backend_option
def fit(cache_dir: str, head_name: str, task: str | None, param_pairs: tuple[str, ...],
        params_file: str | None, out: str, seed: int, stream: bool | None, overwrite: bool,
        quiet: bool) -> None:
    """Train a head on CACHE's train split, score it on val and test, save it to --out."""
    from bottleneck.heads import check_head_name

    check_head_name(head_name)  # before any head (and scikit-learn) is loaded
    import bottleneck
    from bottleneck.heads.hyperparams import collect_params

    result = bottleneck.fit(cache_dir, head=head_name, out=out, task=task,
                            params=collect_params(param_pairs, params_file), seed=seed,
                            overwrite=overwrite, stream=stream, progress=not quiet)
    click.echo(result.summary())


@click.command()
@click.argument("model_dir", metavar="MODEL_DIR")
@click.argument("cache_dir", metavar="[CACHE]", required=False)
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test",
              show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@backend_option
def evaluate(model_dir: str, cache_dir: str | None, split: str, as_json: bool) -> None:
    """Score MODEL_DIR on a split of CACHE (default: the cache it was trained on)."""
    import bottleneck

    evaluation = bottleneck.evaluate(model_dir, cache_dir, split=split)
    click.echo(json.dumps(evaluation.to_dict(), indent=2) if as_json else evaluation.report())


@click.command()
@click.argument("model_dir", metavar="MODEL_DIR")
@click.argument("inputs", metavar="IMAGE_OR_FOLDER...", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.option("--top", type=int, default=1, show_default=True, help="Show the K best classes.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--engine", help=ENGINE_HELP.replace(".", " (default: the cache's).", 1))
@click.option("--precision", type=click.Choice(PRECISIONS),
              help="fp32, bf16, fp16 or int8 (default: the cache's, where the engine runs it).")
@click.option("--threads", type=int, help=THREADS_HELP)
@backend_option
def predict(model_dir: str, inputs: tuple[str, ...], as_json: bool, top: int,
            batch_size: int, engine: str | None, precision: str | None,
            threads: int | None) -> None:
    """Run the backbone and head of MODEL_DIR on image files (folders are walked)."""
    import bottleneck
    from bottleneck.models.predict import format_prediction, require_some

    results = bottleneck.predict(model_dir, inputs, top=top, batch_size=batch_size,
                                 engine=engine, precision=precision, threads=threads)
    if len(results) == 1:
        require_some(results)  # one unreadable input: one line, not two
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        for result in results:
            click.echo(format_prediction(result), err="error" in result)
    for result in results:
        if "warning" in result:
            click.echo(f"warning: {result['path']} is {result['warning']}.", err=True)
    require_some(results)


@click.command()
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
@click.option("--quiet", "-q", is_flag=True, help="No progress lines (what runs, each epoch).")
@backend_option
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


@click.command()
@click.argument("model_dir", metavar="MODEL_DIR")
@click.option("--out", "-o", required=True, type=click.Path(),
              help="File to write (.keras, .tflite, .onnx) or a SavedModel folder.")
@click.option("--format", "fmt", type=click.Choice(["keras", "saved_model", "tflite", "onnx"]),
              help="Default: from --out's suffix (none: saved_model).")
@click.option("--overwrite", is_flag=True, help="Replace an earlier export at --out.")
@click.option("--verbose", "-v", is_flag=True, help="Show the converter's own output.")
@backend_option
def export(model_dir: str, out: str, fmt: str | None, overwrite: bool, verbose: bool) -> None:
    """Write MODEL_DIR as one model: RGB images of any size in, probabilities out."""
    import bottleneck

    click.echo(bottleneck.export(model_dir, out, format=fmt, overwrite=overwrite,
                                 verbose=verbose).summary())
