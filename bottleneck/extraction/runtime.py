"""The feature function on the active Keras backend: compiled once, fed float32 batches.

Only this module (and the engines) knows which backend runs. A Keras model plus its
``preprocess_input`` becomes ``run(batch) -> [features per output]``: ``tf.function`` on
TensorFlow, ``jax.jit`` over ``stateless_call`` on JAX, ``no_grad`` on PyTorch. Batches go
to the device as resized float32 (uint8 would round away the resize) and are preprocessed
there. fp32 is exact (TF32 off, see :mod:`bottleneck.backend`); bf16 and fp16 use Keras'
mixed-precision policies where the device runs them, and are refused where it does not.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.backend import active_backend, backend_version, import_keras, set_backend
from bottleneck.errors import UserError

Run = Callable[[np.ndarray], list[np.ndarray]]
POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
DEVICES = ("auto", "cpu", "gpu")


@dataclass(frozen=True)
class Device:
    """Where the model runs: ``cpu`` or ``gpu``, the device's name and, for GPUs, its CUDA
    compute capability."""

    kind: str
    name: str
    capability: tuple[int, int] | None = None

    def describe(self) -> str:
        return self.kind if self.kind == "cpu" else f"{self.kind}:{self.name}"


def choose_devices(devices: str, backend: str | None = None) -> None:
    """Settle the backend and, with ``--devices cpu``, hide every GPU from it (both only take
    effect before Keras is first imported)."""
    if devices not in DEVICES:
        raise UserError(f"unknown --devices '{devices}'; choose one of: {', '.join(DEVICES)}.")
    set_backend(backend)
    if devices == "cpu" and "keras" not in sys.modules:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        os.environ["JAX_PLATFORMS"] = "cpu"


def check_device(devices: str, device: Device) -> None:
    """``--devices gpu`` on a process that found no GPU is one line, not a silent CPU run."""
    if devices == "gpu" and device.kind != "gpu":
        builds = {"tensorflow": "pip install 'tensorflow[and-cuda]'",
                  "jax": "pip install 'jax[cuda13]'", "torch": "a CUDA build of torch"}
        raise UserError(f"--devices gpu, but the {active_backend()} backend sees no GPU here; "
                        f"install its CUDA build ({builds[active_backend()]}) or use "
                        "--devices auto or cpu.")


def current_device() -> Device:
    """The device the active backend places models on (its first GPU, else the CPU)."""
    backend = active_backend()
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return Device("gpu", torch.cuda.get_device_name(0),
                          tuple(torch.cuda.get_device_capability(0)))
    elif backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "gpu":
            cc = getattr(device, "compute_capability", None)
            capability = tuple(int(p) for p in str(cc).split(".")[:2]) if cc else None
            return Device("gpu", device.device_kind, capability)  # type: ignore[arg-type]
    else:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            cc = details.get("compute_capability")
            return Device("gpu", details.get("device_name", "GPU"),
                          tuple(cc) if cc else None)
    return Device("cpu", _cpu_name())


def visible_gpus() -> list[str]:
    """The CUDA device ids this process's backend may use (for one worker each)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    backend = active_backend()
    if backend == "torch":
        import torch

        count = torch.cuda.device_count()
    elif backend == "jax":
        import jax

        count = sum(d.platform == "gpu" for d in jax.devices())
    else:
        import tensorflow as tf

        count = len(tf.config.list_physical_devices("GPU"))
    ids = [i.strip() for i in listed.split(",") if i.strip()] if listed else \
        [str(i) for i in range(count)]
    return ids[:count]


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "cpu"


def cpu_has_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def check_precision(precision: str, device: Device) -> None:
    """Refuse a reduced precision the device does not run (never silently fp32)."""
    if precision not in POLICIES:
        raise UserError(f"unknown precision '{precision}'; choose one of: "
                        f"{', '.join(POLICIES)}.")
    if precision == "fp32":
        return
    cc = device.capability or (0, 0)
    if device.kind == "gpu" and (cc >= (8, 0) or (precision == "fp16" and cc >= (7, 0))
                                 or device.capability is None):
        return
    if device.kind == "cpu" and precision == "bf16" and cpu_has_bf16():
        return
    need = ("a GPU of compute capability 8.0 or more, or a CPU with AVX512-BF16/AMX"
            if precision == "bf16" else "a GPU of compute capability 7.0 or more")
    raise UserError(f"--precision {precision} needs {need}; this process runs on "
                    f"{device.describe()} ({device.name}). Use --precision fp32.")


@contextmanager
def dtype_policy(precision: str) -> Iterator[None]:
    """Build layers under the precision's Keras policy, then restore the previous one."""
    keras = import_keras()

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(POLICIES[precision])
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def runtime_record(device: Device, engine: str) -> dict[str, str]:
    """What the manifest (and each shard) records about what computed the features."""
    keras = import_keras()

    backend = active_backend()
    return {"engine": engine, "backend": backend, "backend_version": backend_version(backend),
            "keras": keras.__version__, "device": device.describe()}


def _as_tuple(outputs: Any) -> tuple[Any, ...]:
    return tuple(outputs) if isinstance(outputs, list | tuple) else (outputs,)


def _to_numpy(values: Any) -> list[np.ndarray]:
    keras = import_keras()

    return [np.asarray(keras.ops.convert_to_numpy(v)).astype(np.float32, copy=False)
            for v in values]


def compile_tensorflow(model: Any, preprocess: Callable[[Any], Any], size: int) -> Any:
    """The ``tf.function`` over a (None, size, size, 3) float32 batch (also what OpenVINO
    converts)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((None, size, size, 3), tf.float32)],
                 reduce_retracing=True)
    def run(images: Any) -> tuple[Any, ...]:
        return _as_tuple(model(preprocess(images), training=False))

    return run


def eager_function(model: Any, preprocess: Callable[[Any], Any]) -> Run:
    """The same model called op by op: no tracing or compiling, for runs of a few batches
    (compiling MobileNetV2 costs more than computing a hundred images with it)."""
    keras = import_keras()

    def run(images: np.ndarray) -> list[np.ndarray]:
        batch = keras.ops.convert_to_tensor(images)
        if active_backend() == "torch":
            import torch

            with torch.no_grad():
                return _to_numpy(_as_tuple(model(preprocess(batch), training=False)))
        return _to_numpy(_as_tuple(model(preprocess(batch), training=False)))

    return run


def compile_function(model: Any, preprocess: Callable[[Any], Any], size: int) -> Run:
    """``run(float32 batch) -> features per output`` on the active backend."""
    backend = active_backend()
    if backend == "tensorflow":
        function = compile_tensorflow(model, preprocess, size)
        return lambda images: _to_numpy(function(images))
    if backend == "jax":
        return _compile_jax(model, preprocess)
    return _compile_torch(model, preprocess)


def _compile_jax(model: Any, preprocess: Callable[[Any], Any]) -> Run:
    import jax

    trainable = [v.value for v in model.trainable_variables]
    frozen = [v.value for v in model.non_trainable_variables]

    @jax.jit
    def forward(trainable: Any, frozen: Any, images: Any) -> tuple[Any, ...]:
        outputs, _ = model.stateless_call(trainable, frozen, preprocess(images), training=False)
        return _as_tuple(outputs)

    seen: set[int] = set()

    def run(images: np.ndarray) -> list[np.ndarray]:
        # one compilation per batch size: a short last batch is padded to a size seen before
        n = len(images)
        size = min((s for s in seen if s >= n), default=n)
        seen.add(size)
        if size > n:
            images = np.concatenate([images, np.zeros((size - n, *images.shape[1:]),
                                                      images.dtype)])
        return [f[:n] for f in _to_numpy(forward(trainable, frozen, images))]

    return run


def _compile_torch(model: Any, preprocess: Callable[[Any], Any]) -> Run:
    keras = import_keras()
    import torch

    def run(images: np.ndarray) -> list[np.ndarray]:
        with torch.no_grad():
            batch = keras.ops.convert_to_tensor(images)  # on Keras' device
            return _to_numpy(_as_tuple(model(preprocess(batch), training=False)))

    return run


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a device running out of memory on any backend (retried at half the batch)."""
    name = type(exc).__name__
    text = str(exc)
    return (name in ("ResourceExhaustedError", "OutOfMemoryError")
            or "RESOURCE_EXHAUSTED" in text or "CUDA out of memory" in text
            or "out of memory" in text.lower() and name in ("XlaRuntimeError", "RuntimeError",
                                                             "JaxRuntimeError"))
