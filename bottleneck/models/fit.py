"""Train one head on a cache's ``train`` split, score it on ``val`` and ``test``, save MODEL_DIR.

The task defaults to ``regress`` when the cache has targets and the head can regress, and to
``classify`` otherwise. scikit-learn heads load the train split as arrays (after checking it
fits in memory); heads that stream load arrays when they fit and otherwise stream from the
shards. Scoring always reads the cache batch by batch, so it never needs a split in memory.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.cache import Cache
from bottleneck.cache.batches import feature_batches
from bottleneck.errors import UserError
from bottleneck.heads import (
    HEADS,
    HeadSpec,
    InvalidParameterError,
    check_rows,
    get_head_spec,
    make_head,
)
from bottleneck.models.evaluate import check_task_data, evaluate_split, open_any
from bottleneck.models.lineage import cache_record
from bottleneck.models.memory import check_fits_in_memory, fits_in_memory
from bottleneck.models.metrics import headline
from bottleneck.models.model_dir import (
    FORMAT,
    FORMAT_VERSION,
    HEAD_JSON,
    METRICS_JSON,
    check_out_dir,
    is_model_dir,
    save_head,
    staging_dir,
    write_checksums,
)
from bottleneck.models.tasks import target_key
from bottleneck.storage.atomic import to_jsonable, write_json
from bottleneck.storage.location import is_url, redact_url
from bottleneck.storage.machine import machine_errors
from bottleneck.storage.remote_output import publish_folder

EVAL_SPLITS = ("val", "test")


@dataclass
class FitResult:
    """What :func:`fit` did: where the model is and how it scored."""

    model_dir: Path | str  # a folder, or the URL it was uploaded to
    head: str
    task: str
    metrics: dict[str, dict[str, Any]]
    fit_seconds: float
    streamed: bool = False
    params: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: head, task, val/test score, fit time, where it was saved."""
        scores = [f"{split} {headline(m, self.task)}" for split, m in self.metrics.items()]
        how = ", streamed from the shards" if self.streamed else ""
        return (f"{self.head} ({self.task}): {'; '.join(scores) or 'no val/test rows'} | "
                f"fit {self.fit_seconds:.2f} s{how} → {self.model_dir}")


def default_task(head: str, cache: Cache) -> str:
    """``regress`` if the cache has targets and the head can regress, else ``classify``."""
    return "regress" if cache.has_targets and "regress" in get_head_spec(head).tasks \
        else "classify"


def load_split(cache: Cache, split: str, task: str) -> tuple[np.ndarray, np.ndarray]:
    """``(features, labels or targets)`` of one split as arrays."""
    data = cache.load(split)
    return data["features"], data[target_key(task)]


def stream_split(cache: Cache, split: str, task: str, batch_size: int, shuffle: bool = False,
                 seed: int | None = None) -> Any:
    """A batched stream (``keras.utils.PyDataset``) of one split read from the shards.

    Shuffling mixes rows within a window of up to ``batches.SHUFFLE_BYTES`` (the whole split
    when it fits), since the shards hold rows in class order.
    """
    return feature_batches(cache, split, batch_size, target_key(task), shuffle, seed)


@contextmanager
def head_errors(head: str) -> Iterator[None]:
    """A bad hyperparameter value surfaces as one line; anything else keeps its traceback."""
    try:
        yield
    except InvalidParameterError as exc:
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        raise UserError(f"bad parameter value for head '{head}': {first}") from None


def _fit_head(estimator: Any, spec: HeadSpec, cache: Cache, task: str, stream: bool | None,
              seed: int | None) -> bool:
    """Fit ``estimator`` on train (val for early stopping); returns whether it streamed."""
    has_val = cache.split_counts().get("val", 0) > 0
    classes = np.arange(len(cache.classes)) if task == "classify" else None
    with_val = spec.takes_validation
    check_rows(spec, task, cache.column("labels", "train"), f"the train split of {cache.root}")
    if stream and not spec.streams:
        able = ", ".join(name for name, other in HEADS.items() if other.streams)
        raise UserError(f"the '{spec.name}' head cannot stream from the shards; drop --stream "
                        f"or use a head that streams: {able}.")
    splits = ("train", "val") if has_val and with_val else ("train",)
    streaming = bool(stream) or (stream is None and spec.streams
                                 and not fits_in_memory(cache, splits, head=spec.name))
    if streaming:
        batch = int(getattr(estimator, "batch_size", 32))
        train = stream_split(cache, "train", task, batch, shuffle=spec.shuffled, seed=seed)
        extra = {"classes": classes} if task == "classify" else {}
        if with_val:
            extra["validation_data"] = stream_split(cache, "val", task, batch) \
                if has_val else None
        estimator.fit(train, **extra)
        return True
    if not spec.streams:
        check_fits_in_memory(cache, "train", spec.name)
    X, y = load_split(cache, "train", task)
    if with_val:
        estimator.fit(X, y, classes=classes,
                      validation_data=load_split(cache, "val", task) if has_val else None)
    else:
        estimator.fit(X, y)
    return False


@machine_errors("out")
def fit(
    cache: str | Path | Cache, head: str, out: str | Path, task: str | None = None,
    params: Mapping[str, Any] | None = None, seed: int | None = 0, overwrite: bool = False,
    stream: bool | None = None, progress: bool = False,
) -> FitResult:
    """Train ``head`` on ``cache`` and write MODEL_DIR ``out``; see the module docstring.

    ``params``: short-named hyperparameters (``{"C": 0.1}``, ``{"hidden": (512,)}``).
    ``stream``: heads that stream only (linear, dense); None streams when the split does not
    fit in memory.
    ``progress``: let the dense head print one line per epoch (the CLI does unless ``-q``;
    off by default from Python, where ``params={"verbose": 1}`` asks for it too).
    """
    if is_url(out):  # made in local staging, then uploaded whole (head.json last)
        with publish_folder(str(out), HEAD_JSON, is_model_dir, overwrite, "model directory") \
                as local:
            result = fit(cache, head, local, task, params, seed, False, stream, progress)
        result.model_dir = redact_url(str(out))
        return result
    cache = open_any(cache)
    spec = get_head_spec(head)
    task = task or default_task(spec.name, cache)
    params = dict(params or {})
    estimator = make_head(spec.name, task, params, random_state=seed)
    check_task_data(cache, task)
    out = Path(out).expanduser()
    check_out_dir(out, overwrite)
    if not cache.split_counts().get("train"):
        raise UserError(f"{cache.root} has no train rows; extract with a train split.")
    if "verbose" not in params and "verbose" in estimator.get_params() and spec.streams:
        estimator.set_params(verbose=int(progress))
    start = time.perf_counter()
    with head_errors(spec.name):
        streamed = _fit_head(estimator, spec, cache, task, stream, seed)
    seconds = time.perf_counter() - start
    result = FitResult(out, spec.name, task, {}, seconds, streamed, params)
    with staging_dir(out, overwrite) as tmp:
        files = save_head(estimator, spec.name, tmp)
        files += _score_and_plot(estimator, spec.name, task, cache, tmp, result)
        write_json(tmp / HEAD_JSON, _head_record(estimator, spec.name, task, cache, result,
                                                 seed, files))
        write_checksums(tmp)
    return result


def _score_and_plot(estimator: Any, head: str, task: str, cache: Cache, directory: Path,
                    result: FitResult) -> list[str]:
    """Write metrics.json and the plots; fills ``result.metrics``; returns the file names."""
    from bottleneck.cache.targets import r2_ceiling
    from bottleneck.models.confusion_png import confusion_png

    files = []
    for split in EVAL_SPLITS:
        if not cache.split_counts().get(split):
            continue
        metrics, truth, predictions = evaluate_split(estimator, task, cache, split)
        if task == "regress":
            metrics["r2_ceiling"] = r2_ceiling(cache, split)
        result.metrics[split] = metrics
        title = f"{head} on {split}: {headline(metrics, task)}"
        if task == "regress":
            from bottleneck.models import plots

            path = plots.plot_predictions(truth, predictions,
                                          directory / f"predictions_{split}.png", title)
        else:
            path = confusion_png(metrics["confusion_matrix"], cache.classes,
                                 directory / f"confusion_{split}.png", title)
        files.append(path.name)
    history = getattr(estimator, "history_", None)
    if history:
        from bottleneck.models import plots

        files.append(plots.plot_history(history, directory / "training_curves.png",
                                        getattr(estimator, "best_epoch_", None)).name)
    write_json(directory / METRICS_JSON, result.metrics)
    return [*files, METRICS_JSON]


def _head_record(estimator: Any, head: str, task: str, cache: Cache, result: FitResult,
                 seed: int | None, files: list[str]) -> dict[str, Any]:
    """What head.json says: enough to rebuild the extractor and check a cache matches."""
    from importlib.metadata import version

    from bottleneck import __version__

    return {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "head": head, "task": task, "params": to_jsonable(result.params),
        "estimator": type(estimator).__name__,
        "resolved_params": to_jsonable(estimator.get_params(deep=False)),
        "classes": cache.classes, "feature_shape": list(cache.feature_shape),
        "cache": cache.location or str(cache.root.resolve()), "config": cache.config,
        "source": cache.manifest.source, "targets": cache.manifest.targets,
        "rows": cache.split_counts(), "seed": seed, "streamed": result.streamed,
        "lineage": {"cache": cache_record(cache)},
        "fit_seconds": round(result.fit_seconds, 4), "files": files,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"bottleneck": __version__, "scikit-learn": version("scikit-learn"),
                     "keras": version("keras")},  # from metadata: no backend imported
    }


