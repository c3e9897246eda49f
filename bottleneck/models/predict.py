"""Backbone + head on raw image files: the extractor is rebuilt from MODEL_DIR alone.

Pixels take the extraction path exactly: TensorFlow's decoder with the Pillow fallback (at
the same DCT scale when the cache was made with fast decode), the same bilinear resize, the
backbone's own ``preprocess_input`` and pooling, run by the same engine at the same precision
(all inside :class:`~bottleneck.extraction.FeatureExtractor`, built from the recorded config,
whose weights digest must match). A file neither decoder can read becomes one error entry.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bottleneck.errors import UserError, arg
from bottleneck.models.model_dir import Model, is_model_dir, load_model
from bottleneck.storage.names import find_on_disk

if TYPE_CHECKING:  # imported where used: a refused input needs no backbone, head or decoder
    from bottleneck.extraction import ExtractConfig


def list_inputs(inputs: Sequence[str | Path]) -> list[tuple[Path, str | None]]:
    """Every file named or found (recursively, hidden ones skipped) under a named folder.

    Returns ``(path, None)`` per file and ``(path, reason)`` for a name that does not exist,
    each file once (by resolved path, in the order first met): a file named and also inside a
    named folder is answered once. A name finds its file whichever Unicode form either is
    written in (:func:`~bottleneck.storage.names.find_on_disk`).
    """
    found: list[tuple[Path, str | None]] = []
    seen: set[Path] = set()
    for name in inputs:
        path = Path(name).expanduser()
        path = find_on_disk(path) or path
        if path.is_dir():
            named = [(p, None) for p in sorted(path.rglob("*")) if p.is_file()
                     and not any(part.startswith(".") for part in p.relative_to(path).parts)]
        elif path.is_file():
            named = [(path, None)]
        else:
            named = [(path, "no such file or folder")]
        for item in named:
            key = item[0].resolve()
            if key not in seen:
                seen.add(key)
                found.append(item)
    return found


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _describe(model: Model, features: np.ndarray, top: int) -> list[dict[str, Any]]:
    """Per row: the predicted class with its probability (or score) and the top K, or a value."""
    from bottleneck.heads import class_scores

    predictions = np.asarray(model.head.predict(features))
    if model.task == "regress":
        return [{"value": float(v)} for v in predictions]
    kind, scores = class_scores(model.head, features, len(model.classes))
    rows = []
    for label, row in zip(predictions, scores, strict=True):
        best = np.argsort(-row, kind="stable")[:top]
        rows.append({
            "class": model.classes[int(label)], kind: float(row[int(label)]),
            "top": [{"class": model.classes[i], kind: float(row[i])} for i in best],
        })
    return rows


def serving_config(recorded: dict[str, Any], engine: str | None = None,
                   precision: str | None = None) -> ExtractConfig:
    """The cache's extraction config, run by another engine or precision where asked.

    A new engine keeps the recorded precision when it runs it, else runs fp32.
    """
    from bottleneck.extraction import ExtractConfig
    from bottleneck.extraction.engines import get_engine

    config = ExtractConfig.from_dict(recorded)
    if engine is not None and precision is None and \
            config.precision not in get_engine(engine).precisions:
        precision = "fp32"
    precision = precision or config.precision
    return replace(config, engine=engine or config.engine, precision=precision,
                   calibration=config.calibration if precision == "int8" else None)


def predict(model_dir: str | Path, inputs: Sequence[str | Path], top: int = 1,
            batch_size: int = 32, engine: str | None = None, precision: str | None = None,
            threads: int | None = None) -> list[dict[str, Any]]:
    """Predict every image file in ``inputs`` (files or folders) with a saved model.

    Returns one dict per file, in order: ``path`` plus ``class``, ``probability`` (or
    ``score`` for heads without probabilities) and ``top`` (the ``top`` best classes), or
    ``value`` for regression, or ``error`` for a file that could not be read; ``warning`` for
    an image far smaller than the model's input (upscaled ``SMALL``× or more). ``engine`` and
    ``precision`` default to those the cache was made with; the backend is this process's.
    """
    if top < 1 or batch_size < 1:
        raise UserError(f"{arg('--top', 'top')} and {arg('--batch-size', 'batch_size')} must be "
                        "positive.")
    files = list_inputs(inputs)
    if not files:
        raise UserError("no image files found in the given folders.")
    if all(error for _, error in files) and is_model_dir(Path(model_dir).expanduser()):
        return [{"path": str(path), "error": error} for path, error in files]  # no model needed
    from bottleneck.data import images
    from bottleneck.data.decode_gpu import check_gpu_decode
    from bottleneck.extraction import FeatureExtractor

    model = load_model(model_dir)
    if model.config.get("decode") == "gpu":  # the cache's photos were decoded by nvJPEG
        check_gpu_decode()
    if model.takes_images:  # fine-tuned: the model holds its backbone, and takes pixels
        size = int(model.config["image_size"])
        fast_decode = bool(model.config.get("fast_decode", False))
        decode = model.config.get("decode", "cpu")

        def extractor(pixels: Any) -> Any:
            return pixels
    else:
        extractor = FeatureExtractor(serving_config(model.config, engine, precision),
                                     threads=threads)
        if extractor.feature_shape != model.feature_shape:
            raise UserError(f"the rebuilt backbone gives {extractor.feature_shape} features but "
                            f"the model expects {model.feature_shape}; re-run fit.")
        size, fast_decode = extractor.config.image_size, extractor.config.fast_decode
        decode = extractor.config.decode
    results: list[dict[str, Any]] = [{"path": str(path)} for path, _ in files]
    for chunk in _chunks(list(enumerate(files)), batch_size):  # one batch in memory at a time
        readable = []
        for index, (path, error) in chunk:
            if error is None:
                try:
                    pixels, shape = images.load_image_sized(path, size, fast_decode, decode)
                    readable.append((index, pixels))
                    if shape and max(shape) * SMALL < size:
                        results[index]["warning"] = small_image(shape, size)
                    continue
                except ValueError as exc:
                    error = str(exc)
            results[index]["error"] = error
        if not readable:
            continue
        features = extractor(np.stack([pixels for _, pixels in readable]))
        for (index, _), described in zip(readable, _describe(model, features, top), strict=True):
            results[index].update(described)
    return results


SMALL = 4  # an image whose longer side is under a quarter of the model's input is warned of


def small_image(shape: tuple[int, int], size: int) -> str:
    """Why a prediction on a tiny image is unreliable."""
    return (f"{shape[1]}×{shape[0]} pixels, far below the model's {size}×{size} input: "
            f"upscaled {size / max(shape):.0f}×, so this prediction is unreliable")


def require_some(results: list[dict[str, Any]]) -> None:
    """Raise a UserError when not a single file could be read, naming the first reason."""
    if results and all("error" in r for r in results):
        first = results[0]
        if len(results) == 1:
            raise UserError(f"{first['path']} could not be read as an image: {first['error']}.")
        raise UserError(f"none of the {len(results)} inputs could be read as an image "
                        f"(e.g. {first['path']}: {first['error']}).")


def format_prediction(result: dict[str, Any]) -> str:
    """One line: ``path  class  0.9731`` (top K: ``class 0.97, other 0.02``) or a value."""
    if "error" in result:
        return f"{result['path']}: cannot predict: {result['error']}"
    if "value" in result:
        return f"{result['path']}\t{result['value']:.6g}"
    kind = "probability" if "probability" in result else "score"
    if len(result["top"]) == 1:
        return f"{result['path']}\t{result['class']}\t{result[kind]:.4f}"
    ranked = ", ".join(f"{entry['class']} {entry[kind]:.4f}" for entry in result["top"])
    return f"{result['path']}\t{result['class']}\t{ranked}"
