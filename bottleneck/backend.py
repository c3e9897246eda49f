"""The Keras backend: chosen once per process, before Keras is first imported.

``import bottleneck`` imports neither Keras nor TensorFlow. The first module that needs Keras
calls :func:`import_keras`, which settles the backend (``--backend``, else ``KERAS_BACKEND``,
else ``~/.keras/keras.json``, else TensorFlow), checks that its package is installed (one line
naming the extra to install otherwise), applies the process-wide settings that keep fp32
exact and GPU memory shared (TF32 off, no pre-allocation) and imports Keras without the
C++ start-up chatter. Only the modules that compile or place models ask which backend runs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

from bottleneck.errors import UserError

BACKENDS = ("tensorflow", "jax", "torch")
PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
ALIASES = {"tf": "tensorflow", "pytorch": "torch"}


def _configured() -> str:
    """What Keras itself would pick: ``KERAS_BACKEND``, then ``~/.keras/keras.json``."""
    name = os.environ.get("KERAS_BACKEND")
    if name:
        return name
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    try:
        return json.loads((home / "keras.json").read_text()).get("backend") or "tensorflow"
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def canonical(name: str) -> str:
    """``tf`` → ``tensorflow``; an unknown name is one line listing the valid ones."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in BACKENDS:
        raise UserError(f"unknown backend '{name}'; choose one of: {', '.join(BACKENDS)}.")
    return key


def installed(name: str) -> bool:
    """True when the backend's package can be imported here."""
    try:
        return importlib.util.find_spec(PACKAGES[canonical(name)]) is not None
    except (ImportError, ValueError):  # a broken or hidden installation
        return False


def active_backend() -> str:
    """The backend this process runs (or will run once Keras is imported)."""
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "backend"):
        return str(keras.backend.backend())
    return canonical(_configured())


def set_backend(name: str | None) -> str:
    """Choose the backend for this process (``None``: keep the configured one).

    Once Keras is imported the backend is fixed: asking for another is a one-line error.
    """
    if name is None:
        return active_backend()
    wanted = canonical(name)
    if "keras" in sys.modules and active_backend() != wanted:
        raise UserError(f"Keras already runs on {active_backend()} in this process; start a "
                        f"new process with KERAS_BACKEND={wanted} (or --backend {wanted}).")
    os.environ["KERAS_BACKEND"] = wanted
    return wanted


def require(name: str) -> None:
    """One line naming the extra to install when the backend's package is missing."""
    if not installed(name):
        raise UserError(f"the {name} backend is not installed; pip install 'bottleneck[{name}]' "
                        f"or choose another with --backend ({', '.join(BACKENDS)}).")


def _settings(name: str) -> None:
    """Process-wide settings that must precede the backend's import."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if name == "jax":
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # share the GPU
        os.environ.setdefault("JAX_DEFAULT_MATMUL_PRECISION", "highest")  # no TF32 in fp32


def _after_import(name: str) -> None:
    """Settings that need the imported backend: exact fp32 and grown (not grabbed) memory."""
    if name == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_tensor_float_32_execution(False)
        for gpu in tf.config.list_physical_devices("GPU"):
            # RuntimeError: already initialised, so whoever did it set growth
            with contextlib.suppress(RuntimeError):
                tf.config.experimental.set_memory_growth(gpu, True)
    elif name == "torch":
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    elif name == "jax":
        import jax

        jax.config.update("jax_default_matmul_precision", "highest")


def import_keras(name: str | None = None) -> ModuleType:
    """Settle the backend, import Keras quietly and return it."""
    if "keras" in sys.modules:
        set_backend(name)
        return sys.modules["keras"]
    backend = set_backend(name) if name else canonical(_configured())
    require(backend)
    os.environ["KERAS_BACKEND"] = backend
    _settings(backend)
    keras = _quietly(backend)
    _after_import(backend)
    return keras


def _quietly(backend: str) -> ModuleType:
    """Import keras (and the backend) with file descriptor 2 pointed at /dev/null.

    The C++ layers log (oneDNN notices, absl warnings) before any Python setting can silence
    them. Python-level import errors still surface after the descriptor is restored. Set
    BOTTLENECK_DEBUG=1 to see everything.
    """
    if os.environ.get("BOTTLENECK_DEBUG"):
        import keras

        return keras
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            importlib.import_module(PACKAGES[backend])
            import keras
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return keras


def backend_version(name: str | None = None) -> str:
    """The installed version of the backend's package."""
    from importlib.metadata import PackageNotFoundError, version

    name = canonical(name or active_backend())
    for dist in {"tensorflow": ("tensorflow", "tensorflow-cpu"), "jax": ("jaxlib", "jax"),
                 "torch": ("torch",)}[name]:
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return "unknown"
