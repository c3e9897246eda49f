"""The OpenVINO engine: the feature function converted once, cached, run on the CPU.

The conversion (``openvino.convert_model`` of the traced ``tf.function``) is kept as
``<user cache dir>/openvino/<openvino version>/<backbone>-<size>-<key>.xml`` (+ ``.bin``, fp32
weights), so it runs once per (backbone, weights digest, layers, pooling, size). Precision is
always passed explicitly: OpenVINO would otherwise pick bf16 by itself on CPUs that have it.
A CPU that cannot run the requested precision is refused rather than silently run in another.
int8 (:mod:`.int8`): the fp32 conversion quantized by NNCF on the dataset's own images, kept
beside it as ``…-int8-<calibration digest>-nncf<version>.xml``, run with fp32 for what stays
unquantized.
OpenVINO's converter and NNCF report usage over the network unless told not to; they are
imported with the telemetry package hidden, so extraction never touches the network.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.errors import UserError
from bottleneck.extraction import int8
from bottleneck.extraction.engines import EngineJob, Runner
from bottleneck.storage.atomic import TEMP_MARK, install, user_cache_dir

PIN = "openvino==2026.4.1"
# the hint's values, also openvino.Type's names; int8 runs what stays unquantized in f32
OV_PRECISION = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}


def _import_openvino() -> Any:
    """``openvino``, imported with its telemetry package hidden (it would otherwise send a
    usage event on import and on every conversion)."""
    try:
        return int8.import_quietly("openvino")
    except ImportError:
        raise UserError(f"the openvino engine needs OpenVINO, which is not installed: pip "
                        f"install 'bottleneck[openvino]' (or {PIN}), or use --engine "
                        "keras.") from None


def check_precision(precision: str) -> None:
    """Refuse, before anything is built, a precision this machine cannot run (int8: VNNI or
    AMX-INT8; bf16: AVX512-BF16 or AMX, and again on the compiled model). OpenVINO compiles
    bf16 on AVX-512 CPUs without AVX512-BF16 too, emulated: not what the flag promises."""
    if precision == "int8":
        int8.check_int8_cpu()
    if precision == "bf16":
        from bottleneck.extraction.runtime import cpu_has_bf16

        if not cpu_has_bf16():
            raise UserError("OpenVINO cannot run bf16 on this CPU (it has neither AVX512-BF16 "
                            "nor AMX); use --precision fp32.")


def version() -> str | None:
    """OpenVINO's version, or None when it is not installed."""
    try:
        return _import_openvino().__version__
    except UserError:
        return None


def model_path(job: EngineJob) -> Path:
    """Where the converted model for ``job`` lives (the ``.xml``; its ``.bin`` beside it)."""
    return converted_path(job.name, job.key)


def converted_path(name: str, key: str) -> Path:
    """Where the conversion named ``name`` (backbone-size) with ``key`` lives."""
    release = _import_openvino().__version__.split("-")[0]
    return user_cache_dir() / "openvino" / release / f"{name}-{key[:20]}.xml"


def converted_model(job: EngineJob) -> Path:
    """The cached conversion of ``job.function``, converting it first if there is none."""

    def convert() -> Any:
        from bottleneck.extraction.runtime import compile_tensorflow

        function = compile_tensorflow(job.model, job.preprocess, job.size)
        return _import_openvino().convert_model(function.get_concrete_function())

    return _cached(model_path(job), convert)


def quantized_model(job: EngineJob) -> Path:
    """The cached int8 model of ``job`` (quantized on its calibration sample), quantizing the
    fp32 conversion first if there is none. Without the sample's pixels at hand (a model
    served elsewhere than it was made) a missing one is refused; pixels that no longer match
    the recorded digest too."""
    digest = job.calibration or ""
    xml = model_path(job)
    xml = xml.with_name(f"{xml.stem}-int8-{digest[:16]}-nncf{int8.nncf_version()}.xml")

    def quantize() -> Any:
        if job.calibration_pixels is None:
            raise UserError(f"this int8 feature model (calibration {digest[:12]}) was "
                            "quantized on another machine; extract the cache again here with "
                            "--precision int8, or serve with --precision fp32.")
        pixels = job.calibration_pixels()
        if int8.pixels_digest(pixels) != digest:
            raise UserError("the calibration images of this int8 cache (or the int8 recipe) "
                            "changed since it was made; extract it again with --overwrite.")
        model = _import_openvino().Core().read_model(converted_model(job))
        return int8.quantize(model, pixels)

    return _cached(xml, quantize)


def _cached(xml: Path, make: Callable[[], Any]) -> Path:
    """``xml`` (+ ``.bin``) in our cache, made by ``make()`` (an OpenVINO model) if missing.

    Written under a temp folder and renamed into place, ``.bin`` first: an ``.xml`` that
    exists always has its weights beside it.
    """
    if xml.is_file() and xml.with_suffix(".bin").is_file():
        return xml
    xml.parent.mkdir(parents=True, exist_ok=True)
    staging = xml.parent / f".{xml.stem}{TEMP_MARK}{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        model = make()
        # keep fp32 weights
        _import_openvino().save_model(model, staging / xml.name, compress_to_fp16=False)
        install(staging / xml.with_suffix(".bin").name, xml.with_suffix(".bin"))
        install(staging / xml.name, xml)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return xml


def compile_config(precision: str, threads: int) -> dict[str, Any]:
    """The CPU plugin's settings: precision and thread count always explicit, one stream."""
    return {"INFERENCE_PRECISION_HINT": OV_PRECISION[precision], "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1, "INFERENCE_NUM_THREADS": int(threads)}


def prepare(job: EngineJob) -> Runner:
    """Convert (once), compile for the CPU and return the runner."""
    from bottleneck.backend import active_backend

    if active_backend() != "tensorflow":
        raise UserError(f"the openvino engine converts a TensorFlow function, so it needs "
                        f"--backend tensorflow (this process runs {active_backend()}); or use "
                        "--engine keras.")
    check_precision(job.precision)
    cached = quantized_model if job.precision == "int8" else converted_model
    xml = cached(job)
    try:
        return open_runner(xml, job.precision, job.threads)
    except RuntimeError:  # a damaged file in our own cache: make it again
        xml.unlink(missing_ok=True)
        return open_runner(cached(job), job.precision, job.threads)


def open_runner(xml: Path, precision: str, threads: int) -> Runner:
    """The converted model at ``xml`` compiled for the CPU: a runner (RuntimeError: a file
    OpenVINO cannot read). Its outputs' shapes are the runner's ``shapes``."""
    ov = _import_openvino()
    core = ov.Core()
    model = core.read_model(xml)
    compiled = core.compile_model(model, "CPU", compile_config(precision, threads))
    ran = compiled.get_property("INFERENCE_PRECISION_HINT")
    if ran != getattr(ov.Type, OV_PRECISION[precision]):
        raise UserError(f"OpenVINO cannot run {precision} on this CPU (it would run "
                        f"{ran.get_type_name()}); use --precision fp32.")
    request = compiled.create_infer_request()
    outputs = list(compiled.outputs)

    def run(images: Any) -> list[np.ndarray]:
        array = images.numpy() if hasattr(images, "numpy") else images
        result = request.infer({0: np.ascontiguousarray(array, dtype=np.float32)},
                               share_inputs=True)  # synchronous: no copy of the batch
        return [result[output] for output in outputs]

    run.shapes = [_row_shape(o.get_partial_shape()) for o in outputs]  # type: ignore
    return run


def _row_shape(shape: Any) -> tuple[int, ...]:
    """One row's shape of an output whose first dimension is the batch (-1: dynamic)."""
    return tuple(shape[i].get_length() if shape[i].is_static else -1
                 for i in range(1, shape.rank.get_length()))
