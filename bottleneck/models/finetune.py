"""Fine-tune the top of the backbone under a trained head: phase 2 of every transfer tutorial.

From a head's MODEL_DIR: assemble pixels → the recorded preprocessing → backbone → layer and
pooling → the head (its fitted weights), check the cache's source still holds the cached
images, score the assembled model on ``val`` and ``test`` ("before"), unfreeze the top of the
backbone and train on ``train`` images (augmented if asked) with a small learning rate, keep
the epoch with the lowest ``val`` loss (the start counts: fine-tuning that only hurts changes
nothing), score again ("after") and write a MODEL_DIR that ``evaluate``, ``predict`` and
``export`` use like any other.
"""

from __future__ import annotations

import datetime
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.backend import import_keras
from bottleneck.cache import open_cache
from bottleneck.errors import UserError
from bottleneck.models.assemble import assemble
from bottleneck.models.evaluate import check_compatible, evaluate_split
from bottleneck.models.finetune_parts import (
    epoch_lines,
    keep_best,
    parse_augment,
    trainer,
    unfreeze,
)
from bottleneck.models.image_data import cache_images, score_split, split_dataset
from bottleneck.models.lineage import cache_record, model_record
from bottleneck.models.metrics import headline
from bottleneck.models.model_dir import (
    FORMAT,
    FORMAT_VERSION,
    HEAD_JSON,
    INPUT_IMAGES,
    KERAS_FILE,
    METRICS_JSON,
    check_out_dir,
    is_model_dir,
    load_model,
    staging_dir,
    write_checksums,
)
from bottleneck.storage.atomic import sha256_file, to_jsonable, write_json
from bottleneck.storage.location import is_url, redact_url
from bottleneck.storage.machine import machine_errors
from bottleneck.storage.remote_output import publish_folder

OPTIMIZERS = ("rmsprop", "adam", "sgd")
TUTORIAL_RATE = 1e-4  # the TensorFlow tutorial's head rate, for heads trained without one
RATE_FACTOR = 0.1  # fine-tune at a tenth of the head's rate
METRICS_BEFORE = "metrics_before.json"
HISTORY = "history.json"
EVAL_SPLITS = ("val", "test")
MEMORISED = 0.999  # train accuracy of the head above which fine-tuning has little signal


@dataclass
class FinetuneResult:
    """What :func:`finetune` did and how the model scored before and after."""

    model_dir: Path | str  # a folder, or the URL it was uploaded to
    head: str
    task: str
    before: dict[str, dict[str, Any]]
    metrics: dict[str, dict[str, Any]]
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: head, what trained, each split's score before → after, time, where; plus a
        note when fine-tuning kept the start of a head that memorised its train rows."""
        scores = [f"{split} {headline(self.before[split], self.task)} → "
                  f"{headline(m, self.task).split(' ', 1)[-1]}"
                  for split, m in self.metrics.items()]
        unfrozen = self.settings["unfrozen"]
        return (f"{self.head} fine-tuned (top {unfrozen['trainable_layers']} of "
                f"{unfrozen['layers']} backbone layers from {unfrozen['layer']}, "
                f"{self.settings['optimizer']} lr {self.settings['learning_rate']:.3g}, "
                f"{epochs_text(self.settings)}): "
                f"{'; '.join(scores) or 'no val/test rows'} | {self.seconds:.1f} s → "
                f"{self.model_dir}{self.hint()}")

    def hint(self) -> str:
        """Why fine-tuning kept the start, where the head leaves it nothing to learn."""
        fit = self.settings.get("head_train") or {}
        if self.settings["best_epoch"] or fit.get("accuracy", 0.0) < MEMORISED:
            return ""
        loss = f", log loss {fit['log_loss']:.3g}" if "log_loss" in fit else ""
        augment = "" if self.settings.get("augment") else "with --augment, or "
        return (f"\n  note: the head already fits its train rows (accuracy "
                f"{fit['accuracy']:.3f}{loss}), so training on them has little to learn from; "
                f"fine-tune {augment}from a head that does not memorise them (dense, or a "
                "smaller C)")


def epochs_text(settings: dict[str, Any]) -> str:
    """Which epoch was kept, numbered from 1 among the epochs run, and why fewer ran than asked
    (0 is the start: no epoch improved on it)."""
    best, run, asked = settings["best_epoch"], settings["epochs_run"], settings["epochs"]
    text = (f"best epoch {best} of {run}" if best else
            f"kept the starting weights: no epoch of {run} improved {settings['monitor']}")
    if run < asked:
        text += (f"; stopped after {run} of {asked} epochs, {settings['patience']} without "
                 "improvement (--patience)")
    return text


def _say(progress: bool, message: str) -> None:
    """A line on stderr saying what runs now (before the first epoch, which takes a while)."""
    if progress:
        print(message, file=sys.stderr, flush=True)


def _check_settings(epochs: int, batch_size: int, learning_rate: float | None, optimizer: str,
                    patience: int) -> None:
    if epochs < 1 or batch_size < 1 or patience < 0:
        raise UserError("--epochs and --batch-size must be positive, --patience ≥ 0.")
    if learning_rate is not None and learning_rate <= 0:
        raise UserError("--learning-rate must be a positive number.")
    if optimizer not in OPTIMIZERS:
        raise UserError(f"unknown optimizer '{optimizer}'; choose one of: "
                        f"{', '.join(OPTIMIZERS)}.")


@machine_errors("out")
def finetune(
    model_dir: str | Path, out: str | Path, unfreeze_from: str | int | None = None,
    unfreeze_top: int | None = None, epochs: int = 10, learning_rate: float | None = None,
    optimizer: str = "rmsprop", augment: str | None = None, batch_size: int = 32,
    patience: int = 3, seed: int = 0, overwrite: bool = False, progress: bool = False,
) -> FinetuneResult:
    """Fine-tune the head in ``model_dir`` with the top of its backbone; write MODEL_DIR ``out``.

    ``learning_rate`` defaults to a tenth of the head's (dense: its own; scikit-learn heads:
    the tutorial's 1e-4), ``unfreeze_*`` to the top ~30% of the backbone's layers.
    """
    if is_url(out):  # made in local staging, then uploaded whole (head.json last)
        with publish_folder(str(out), HEAD_JSON, is_model_dir, overwrite, "model directory") \
                as local:
            result = finetune(model_dir, local, unfreeze_from, unfreeze_top, epochs,
                              learning_rate, optimizer, augment, batch_size, patience, seed,
                              False, progress)
        result.model_dir = redact_url(str(out))
        return result
    keras = import_keras()

    _check_settings(epochs, batch_size, learning_rate, optimizer, patience)
    source_model = load_model(model_dir)
    if source_model.takes_images:
        raise UserError(f"{model_dir} is already fine-tuned; fine-tune the head directory it "
                        f"came from ({source_model.info['lineage']['head']['path']}).")
    out = Path(out).expanduser()
    if out.resolve() == source_model.root.resolve():
        raise UserError("--out must be a new directory: fine-tuning keeps the head it starts "
                        "from.")
    check_out_dir(out, overwrite)
    recorded = source_model.info["cache"]  # a URL's cache is read through its local view
    cache_path = open_cache(recorded).root if is_url(recorded) else Path(recorded)
    if not cache_path.is_dir():
        raise UserError(f"the cache this head was trained on ({cache_path}) is gone; "
                        "fine-tuning reads its manifest to find the images.")
    cache = open_cache(cache_path)
    check_compatible(source_model, cache)
    augment_record, augment_layer = parse_augment(augment)
    keras.utils.set_random_seed(seed)
    assembled = assemble(source_model)
    unfrozen = unfreeze(assembled.backbone, unfreeze_from, unfreeze_top)
    task, classes, size = source_model.task, source_model.classes, assembled.image_size
    splits = tuple(s for s in ("train", *EVAL_SPLITS) if cache.split_counts().get(s))
    if "train" not in splits:
        raise UserError(f"{cache.root} has no train rows to fine-tune on.")
    head_train = (evaluate_split(source_model.head, task, cache, "train")[0]
                  if task == "classify" else {})
    count = "" if cache.config.get("augment") else \
        f"{sum(cache.split_counts()[s] for s in splits)} "
    trained = unfrozen.to_dict()
    _say(progress, f"built the model ({cache.config['backbone']} + {source_model.head_name} "
                   f"head, top {trained['trainable_layers']} of {trained['layers']} backbone "
                   f"layers trainable); decoding the {count}images of {', '.join(splits)} (they "
                   "must still match the cache)…")
    source, data = cache_images(cache, task, splits, size)
    _say(progress, f"scoring the start on {', '.join(s for s in EVAL_SPLITS if s in data)}, "
                   f"then training up to {epochs} epochs…")
    start = time.perf_counter()
    before = {s: score_split(assembled.model, source, data[s], size, task, classes)
              for s in EVAL_SPLITS if s in data}
    rate = learning_rate or RATE_FACTOR * (assembled.learning_rate or TUTORIAL_RATE)
    model = trainer(assembled.preprocess, assembled.backbone, assembled.head)
    optimizers = {"rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam,
                  "sgd": keras.optimizers.SGD}
    classify = task == "classify"
    model.compile(optimizer=optimizers[optimizer](learning_rate=rate),
                  loss="sparse_categorical_crossentropy" if classify else "mse",
                  metrics=["accuracy" if classify else "mae"])
    train, _ = split_dataset(source, data["train"], size, batch_size, seed=seed,
                             augment=augment_layer)
    val = split_dataset(source, data["val"], size, batch_size)[0] if "val" in data else None
    monitor = "val_loss" if val is not None else "loss"
    start_loss = (before["val"]["log_loss" if classify else "mse"] if val is not None
                  else np.inf)
    keeper = keep_best(monitor, start_loss, patience)
    callbacks = [keeper] + ([epoch_lines(epochs)] if progress else [])
    history = model.fit(train, validation_data=val, epochs=epochs, callbacks=callbacks,
                        shuffle=False, verbose=0).history
    metrics = {s: score_split(assembled.model, source, data[s], size, task, classes)
               for s in EVAL_SPLITS if s in data}
    seconds = time.perf_counter() - start
    settings = {
        "from": str(source_model.root.resolve()), "unfrozen": unfrozen.to_dict(),
        "epochs": epochs, "epochs_run": len(next(iter(history.values()), [])),
        "best_epoch": keeper.best_epoch, "monitor": monitor, "optimizer": optimizer,
        "learning_rate": float(rate), "batch_size": batch_size, "patience": patience,
        "augment": augment_record, "seed": seed, "seconds": round(seconds, 3),
        "backbone_in_inference_mode": True,
        "head_train": {k: head_train[k] for k in ("accuracy", "log_loss") if k in head_train},
    }
    result = FinetuneResult(out, source_model.head_name, task, before, metrics, seconds,
                            settings)
    with staging_dir(out, overwrite) as tmp:
        assembled.model.save(tmp / KERAS_FILE)
        files = [KERAS_FILE, *_write_reports(tmp, result, history, classes, keeper.best_epoch)]
        info = _record(source_model, cache, result, files, sha256_file(tmp / KERAS_FILE))
        write_json(tmp / HEAD_JSON, info)
        write_checksums(tmp)
    return result


def _write_reports(directory: Path, result: FinetuneResult, history: dict[str, list[float]],
                   classes: list[str], best_epoch: int) -> list[str]:
    """metrics.json (after), metrics_before.json, history.json and the plots."""
    from bottleneck.models import plots
    from bottleneck.models.confusion_png import confusion_png

    write_json(directory / METRICS_JSON, result.metrics)
    write_json(directory / METRICS_BEFORE, result.before)
    curves = {k: [float(v) for v in values] for k, values in history.items()}
    write_json(directory / HISTORY, curves)
    files = [METRICS_JSON, METRICS_BEFORE, HISTORY]
    if curves:
        files.append(plots.plot_history(curves, directory / "training_curves.png",
                                        best_epoch or None).name)
    for split, metrics in result.metrics.items():
        title = f"{result.head} fine-tuned on {split}: {headline(metrics, result.task)}"
        if result.task == "classify":
            files.append(confusion_png(metrics["confusion_matrix"], classes,
                                       directory / f"confusion_{split}.png", title).name)
    return files


def _record(source_model: Any, cache: Any, result: FinetuneResult, files: list[str],
            model_sha256: str) -> dict[str, Any]:
    """head.json of the fine-tuned model: the head's record, what trained, the lineage."""
    keras = import_keras()

    from bottleneck import __version__

    info = source_model.info
    keep = ("head", "task", "classes", "feature_shape", "config", "source", "targets", "rows")
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "input": INPUT_IMAGES,
        **{key: info.get(key) for key in keep},
        "cache": str(cache.root.resolve()), "finetune": to_jsonable(result.settings),
        "lineage": {"cache": info.get("lineage", {}).get("cache") or cache_record(cache),
                    "head": model_record(source_model.root),
                    "finetuned": {"model_keras_sha256": model_sha256}},
        "files": files,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"bottleneck": __version__, "keras": keras.__version__},
    }
