"""The OpenVINO engine: the feature function converted once, cached, run on the CPU.

The conversion (``openvino.convert_model`` of the traced ``tf.function``) is kept as
``<user cache dir>/openvino/<openvino version>/<backbone>-<size>-<key>.xml`` (+ ``.bin``, fp32
weights), so it runs once per (backbone, weights digest, layers, pooling, size). Precision is
always passed explicitly: OpenVINO would otherwise pick bf16 by itself on CPUs that have it.
A CPU that cannot run the requested precision is refused rather than silently run in another.
OpenVINO's converter reports usage over the network unless told not to; it is imported with
its own no-op telemetry stub, so extraction never touches the network.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.errors import UserError
from bottleneck.extraction.engines import EngineJob, Runner
from bottleneck.storage.atomic import TEMP_MARK, install, user_cache_dir

PIN = "openvino==2026.4.1"
OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}  # the hint's values, also openvino.Type's names


def _import_openvino() -> Any:
    """``openvino``, imported with its own telemetry stub in place of the ``openvino_telemetry``
    package, which would otherwise send a usage event on import and on every conversion."""
    if sys.modules.get("openvino") is None:
        saved = sys.modules.get("openvino_telemetry", _MISSING)
        sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]  # → ImportError
        try:
            import openvino  # noqa: F401  (its model converter binds the stub now)
        except ImportError:
            raise UserError(f"the openvino engine needs OpenVINO, which is not installed: pip "
                            f"install 'bottleneck[openvino]' (or {PIN}), or use --engine "
                            "keras.") from None
        finally:
            if saved is _MISSING:
                del sys.modules["openvino_telemetry"]
            else:
                sys.modules["openvino_telemetry"] = saved
    return sys.modules["openvino"]


_MISSING = object()


def version() -> str | None:
    """OpenVINO's version, or None when it is not installed."""
    try:
        return _import_openvino().__version__
    except UserError:
        return None


def model_path(job: EngineJob) -> Path:
    """Where the converted model for ``job`` lives (the ``.xml``; its ``.bin`` beside it)."""
    ov = _import_openvino()
    release = ov.__version__.split("-")[0]
    return user_cache_dir() / "openvino" / release / f"{job.name}-{job.key[:20]}.xml"


def converted_model(job: EngineJob) -> Path:
    """The cached conversion of ``job.function``, converting it first if there is none.

    Written under a temp folder and renamed into place, ``.bin`` first: an ``.xml`` that
    exists always has its weights beside it.
    """
    ov = _import_openvino()
    xml = model_path(job)
    if xml.is_file() and xml.with_suffix(".bin").is_file():
        return xml
    xml.parent.mkdir(parents=True, exist_ok=True)
    staging = xml.parent / f".{xml.stem}{TEMP_MARK}{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        from bottleneck.extraction.runtime import compile_tensorflow

        function = compile_tensorflow(job.model, job.preprocess, job.size)
        model = ov.convert_model(function.get_concrete_function())
        ov.save_model(model, staging / xml.name, compress_to_fp16=False)  # keep fp32 weights
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
    ov = _import_openvino()
    core = ov.Core()
    xml = converted_model(job)
    try:
        model = core.read_model(xml)
    except RuntimeError:  # a damaged file in our own cache: convert again
        xml.unlink(missing_ok=True)
        model = core.read_model(converted_model(job))
    compiled = core.compile_model(model, "CPU", compile_config(job.precision, job.threads))
    ran = compiled.get_property("INFERENCE_PRECISION_HINT")
    if ran != getattr(ov.Type, OV_PRECISION[job.precision]):
        raise UserError(f"OpenVINO cannot run {job.precision} on this CPU (it would run "
                        f"{ran.get_type_name()}); use --precision fp32.")
    request = compiled.create_infer_request()
    outputs = list(compiled.outputs)

    def run(images: Any) -> list[np.ndarray]:
        array = images.numpy() if hasattr(images, "numpy") else images
        result = request.infer({0: np.ascontiguousarray(array, dtype=np.float32)},
                               share_inputs=True)  # synchronous: no copy of the batch
        return [result[output] for output in outputs]

    return run
