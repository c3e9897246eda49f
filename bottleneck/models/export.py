"""One file to serve: RGB images of any size in, class probabilities (or the value) out.

The exported model resizes inside exactly as extraction did (a Keras ``Resizing`` layer,
bilinear, no antialias, no crop: the same op as ``tf.image.resize(..., "bilinear")``), then
runs the recorded preprocessing, the backbone and the head, all Keras' own layers: the
``.keras`` file loads with ``safe_mode=True``, and nothing of bottleneck is needed to load any
format. Input: a batch ``N × H × W × 3`` of RGB values 0..255 (the ``.keras`` model takes uint8
or float; SavedModel, TFLite and ONNX take float32). Output: ``N × classes`` probabilities
(softmax of the decision scores for ridge and linear-svm heads), or ``N × 1`` values.
Works from a head's MODEL_DIR (backbone + head as fitted) or a fine-tuned one.
"""

from __future__ import annotations

import datetime
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bottleneck.storage.atomic import atomic_output, read_json, write_json
from bottleneck.storage.machine import machine_errors
from bottleneck.backend import import_keras, installed
from bottleneck.errors import UserError
from bottleneck.storage.location import is_url, redact_url
from bottleneck.models.assemble import assemble
from bottleneck.models.lineage import cache_record, model_record, sha256_path
from bottleneck.models.model_dir import Model, load_model

FORMATS = ("keras", "saved_model", "tflite", "onnx")
SUFFIXES = {"keras": ".keras", "tflite": ".tflite", "onnx": ".onnx"}
KERAS_EXPORT = {"saved_model": "tf_saved_model", "tflite": "litert", "onnx": "onnx"}
LINEAGE_SUFFIX = ".lineage.json"
EXPORTS_JSON = "exports.json"


@dataclass
class ExportResult:
    """Where the export went, in which format, its sha256 and its lineage file."""

    path: Path | str  # a file or folder, or the URL it was uploaded to
    format: str
    sha256: str
    lineage_file: Path

    def summary(self) -> str:
        return (f"exported {self.format} → {self.path} (sha256 {self.sha256[:12]}…; lineage in "
                f"{self.lineage_file.name})")


def choose_format(out: Path, format: str | None) -> str:
    """The format asked for, else the one ``out``'s suffix names (no suffix: saved_model)."""
    if format is None:
        by_suffix = {suffix: name for name, suffix in SUFFIXES.items()}
        if out.suffix and out.suffix.lower() not in by_suffix:
            raise UserError(f"--out {out.name}: no format writes {out.suffix} files; use "
                            f"{', '.join(sorted(by_suffix))}, no suffix (a SavedModel folder), "
                            "or --format.")
        format = by_suffix.get(out.suffix.lower(), "saved_model")
    if format not in FORMATS:
        raise UserError(f"unknown format '{format}'; choose one of: {', '.join(FORMATS)}.")
    suffix = SUFFIXES.get(format)
    if suffix and out.suffix.lower() != suffix:
        raise UserError(f"--format {format} writes a {suffix} file; name --out like "
                        f"{out.with_suffix(suffix).name}.")
    if format == "onnx" and not all(importlib.util.find_spec(m) for m in ("tf2onnx", "onnx")):
        raise UserError("--format onnx needs the tf2onnx and onnx packages: "
                        "pip install 'bottleneck[onnx]' (or pip install tf2onnx onnx).")
    return format


def serving_model(model: Model) -> Any:
    """``image`` (N × H × W × 3, any H and W, 0..255) → resize → the model's answer."""
    keras = import_keras()

    if model.takes_images:
        inner, size = model.head.model_, int(model.config["image_size"])
    else:
        assembled = assemble(model)
        inner, size = assembled.model, assembled.image_size
    image = keras.Input((None, None, 3), name="image")
    resized = keras.layers.Resizing(size, size, interpolation="bilinear",
                                    crop_to_aspect_ratio=False, antialias=False,
                                    name="resize")(image)
    return keras.Model(image, inner(resized), name="bottleneck_export")


def _check_out(out: Path, overwrite: bool) -> Path:
    sidecar = out.with_name(out.name + LINEAGE_SUFFIX)
    if out.exists() or sidecar.exists():
        if not overwrite:
            raise UserError(f"{out} already exists; pass --overwrite to replace an earlier "
                            "export, or choose another --out.")
        if not sidecar.is_file():
            raise UserError(f"{out} was not written by `bottleneck export` (no {sidecar.name} "
                            "beside it); choose another --out.")
    return sidecar


def _lineage(model: Model, out: Path, format: str, sha256: str) -> dict[str, Any]:
    chain = dict(model.info.get("lineage") or {})
    if "cache" not in chain and Path(model.info.get("cache", "")).is_dir():
        from bottleneck.cache import open_cache

        chain["cache"] = cache_record(open_cache(model.info["cache"]))
    step = "finetuned" if model.takes_images else "head"
    chain[step] = {**model_record(model.root), **chain.get(step, {})}
    chain["export"] = {"path": str(out.resolve()), "format": format, "sha256": sha256,
                       "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
                           timespec="seconds")}
    chain["outputs"] = ({"task": "classify", "classes": list(model.classes),
                         "meaning": "one probability per class, columns in this order"}
                        if model.task == "classify" else
                        {"task": "regress", "meaning": "one value per image, in the "
                                                       "target's own units"})
    return chain


@machine_errors("out")
def export(model_dir: str | Path, out: str | Path, format: str | None = None,
           overwrite: bool = False) -> ExportResult:
    """Write MODEL_DIR as one servable model at ``out`` (see the module docstring); a URL
    ``out`` is written locally, then uploaded whole, its lineage file last."""
    if is_url(out):
        return _export_to_url(model_dir, str(out), format, overwrite)
    model = load_model(model_dir)
    out = Path(out).expanduser()
    format = choose_format(out, format)
    if format != "keras" and not installed("tensorflow"):
        raise UserError(f"--format {format} is written by TensorFlow, which is not installed: "
                        "pip install 'bottleneck[tensorflow]', or export a .keras file (any "
                        "backend writes it).")
    sidecar = _check_out(out, overwrite)
    served = serving_model(model)
    with atomic_output(out) as target:
        if format == "keras":
            served.save(target)
        else:
            import tensorflow as tf

            signature = [tf.TensorSpec((None, None, None, 3), tf.float32, name="image")]
            served.export(str(target), format=KERAS_EXPORT[format], verbose=False,
                          input_signature=signature)
    sha256 = sha256_path(out)
    lineage = _lineage(model, out, format, sha256)
    write_json(sidecar, lineage)
    exports = model.root / EXPORTS_JSON
    try:
        records = read_json(exports) if exports.is_file() else []
    except ValueError:
        records = []
    records = records if isinstance(records, list) else []
    write_json(exports, [*records, {**lineage["export"], "lineage": str(sidecar.resolve())}])
    return ExportResult(out, format, sha256, sidecar)


def _export_to_url(model_dir: str | Path, url: str, format: str | None,
                   overwrite: bool) -> ExportResult:
    from bottleneck.storage.remote_output import publish_paths, staging_for, url_exists

    lineage_url = url + LINEAGE_SUFFIX
    if url_exists(url) or url_exists(lineage_url):
        if not overwrite:
            raise UserError(f"{url} already exists; pass --overwrite to replace an earlier "
                            "export, or choose another --out.")
        if not url_exists(lineage_url):
            raise UserError(f"{url} was not written by `bottleneck export` (no "
                            f"{lineage_url.rsplit('/', 1)[-1]} beside it); choose another --out.")
    local = staging_for(url) / url.rstrip("/").rsplit("/", 1)[-1]
    result = export(model_dir, local, format, overwrite=False)
    lineage = read_json(result.lineage_file)
    lineage["export"]["path"] = redact_url(url)  # recorded and printed without credentials
    write_json(result.lineage_file, lineage)
    publish_paths([(url, local), (lineage_url, result.lineage_file)])
    return ExportResult(redact_url(url), result.format, result.sha256, result.lineage_file)
