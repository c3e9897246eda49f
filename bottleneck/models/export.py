"""One file to serve: RGB images of any size in, class probabilities (or the value) out.

The exported model resizes inside exactly as extraction did (a Keras ``Resizing`` layer,
bilinear, no antialias, no crop: the same op as ``tf.image.resize(..., "bilinear")``), then
runs the recorded preprocessing, the backbone and the head, all Keras' own layers: the
``.keras`` file loads with ``safe_mode=True``, and nothing of bottleneck is needed to load any
format. Input: a batch ``N × H × W × 3`` of RGB values 0..255 (the ``.keras`` model takes uint8
or float; SavedModel, TFLite and ONNX take float32). Output: ``N × classes`` probabilities
(softmax of the decision scores for ridge and linear-svm heads), or ``N × 1`` values.
Works from a head's MODEL_DIR (backbone + head as fitted) or a fine-tuned one.

Only inference reaches the file (:mod:`bottleneck.models.serving`), and a written file is
installed only once its format's own loader, run on probe images, answers as the Keras model's
``predict`` does (:mod:`bottleneck.models.export_formats`); else the export is refused.
"""

from __future__ import annotations

import datetime
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bottleneck.backend import installed
from bottleneck.errors import UserError
from bottleneck.models.export_formats import converter_output, largest_difference, write
from bottleneck.models.lineage import cache_record, model_record, sha256_path
from bottleneck.models.model_dir import Model, load_model, share_records
from bottleneck.models.serving import (
    pixels_model,
    probe_images,
    reference_answers,
    serving_model,
)
from bottleneck.storage.atomic import atomic_output, read_json, write_json
from bottleneck.storage.location import is_url, redact_url
from bottleneck.storage.machine import machine_errors

FORMATS = ("keras", "saved_model", "tflite", "onnx")
SUFFIXES = {"keras": ".keras", "tflite": ".tflite", "onnx": ".onnx"}
# largest difference allowed between the written file's answers and the Keras model's (as a
# fraction of the answers' scale, at least 1: probabilities as they are)
TOLERANCE = 1e-4
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
    onnx = ("tf2onnx", "onnx", "onnxruntime")  # onnxruntime checks the written file
    if format == "onnx" and not all(importlib.util.find_spec(m) for m in onnx):
        raise UserError("--format onnx needs the tf2onnx, onnx and onnxruntime packages: "
                        "pip install 'bottleneck[onnx]' (or pip install tf2onnx onnx "
                        "onnxruntime).")
    return format


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
           overwrite: bool = False, verbose: bool = False) -> ExportResult:
    """Write MODEL_DIR as one servable model at ``out`` (see the module docstring), after
    checking that the written file, run by its format's own loader, answers as the Keras
    model's ``predict`` does; the converters' notices are printed only if ``verbose``. A URL
    ``out`` is written locally, then uploaded whole, its lineage file last."""
    model = load_model(model_dir)
    if is_url(out):
        result = _export_to_url(model, str(out), format, overwrite, verbose)
        _record(model, read_json(result.lineage_file)["export"], str(result.path) +
                LINEAGE_SUFFIX)
        return result
    result = _export_here(model, Path(out).expanduser(), format, overwrite, verbose)
    _record(model, read_json(result.lineage_file)["export"],
            str(result.lineage_file.resolve()))
    return result


def _record(model: Model, export: dict[str, Any], lineage: str) -> None:
    """Add the export to the model's ``exports.json`` (at its URL too, for a model there)."""
    exports = model.root / EXPORTS_JSON
    try:
        records = read_json(exports) if exports.is_file() else []
    except ValueError:
        records = []
    records = records if isinstance(records, list) else []
    write_json(exports, [*records, {**export, "lineage": lineage}])
    share_records(model, [exports])


def _export_here(model: Model, out: Path, format: str | None, overwrite: bool,
                 verbose: bool) -> ExportResult:
    format = choose_format(out, format)
    if format != "keras" and not installed("tensorflow"):
        raise UserError(f"--format {format} is written by TensorFlow, which is not installed: "
                        "pip install 'bottleneck[tensorflow]', or export a .keras file (any "
                        "backend writes it).")
    sidecar = _check_out(out, overwrite)
    inner, size = pixels_model(model)
    probe = probe_images(size)
    with atomic_output(out) as target:
        with converter_output(verbose):
            expected = reference_answers(inner, size, probe)
            write(serving_model(inner, size), target, format)
            how, difference = largest_difference(target, format, probe, expected)
        if difference > TOLERANCE:
            raise UserError(f"the {format} export does not answer as the model does (run by "
                            f"{how}, off by up to {difference:.2g}), so nothing was written; "
                            "try another --format.")
    sha256 = sha256_path(out)
    lineage = _lineage(model, out, format, sha256)
    lineage["export"]["checked"] = {"by": how, "probe_images": len(probe),
                                    "largest_difference": difference}
    write_json(sidecar, lineage)
    return ExportResult(out, format, sha256, sidecar)


def _export_to_url(model: Model, url: str, format: str | None,
                   overwrite: bool, verbose: bool = False) -> ExportResult:
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
    result = _export_here(model, local, format, overwrite=False, verbose=verbose)
    lineage = read_json(result.lineage_file)
    lineage["export"]["path"] = redact_url(url)  # recorded and printed without credentials
    write_json(result.lineage_file, lineage)
    publish_paths([(url, local), (lineage_url, result.lineage_file)])
    return ExportResult(redact_url(url), result.format, result.sha256, result.lineage_file)
