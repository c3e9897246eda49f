"""Inference engines: what runs the feature function (raw float RGB batch in, features out).

An engine takes the feature model (preprocess_input → backbone → cut → pool, one output per
layer) and returns a :data:`Runner`. ``keras`` compiles it on the active Keras backend
(TensorFlow, JAX or PyTorch; see :mod:`.runtime`); ``openvino`` converts its ``tf.function``
once into OpenVINO's format, kept in the user cache directory, and runs it there (so it needs
the TensorFlow backend). Adding an engine is one module with a ``prepare`` and one
:func:`register_engine` line below. The engine and precision are part of the config, so the
manifest records them and ``predict`` serves with the same; ``tf``, the engine's name in
caches made before, reads as ``keras``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bottleneck.errors import UserError

PRECISIONS = ("fp32", "bf16", "fp16", "int8")
ALIASES = {"tf": "keras", "tensorflow": "keras"}
Runner = Callable[[Any], list[np.ndarray]]


@dataclass(frozen=True)
class EngineJob:
    """What an engine is given: the feature model (a Keras model, one output per layer) with
    its ``preprocess_input`` and input size, a key that names its conversion (a digest of
    backbone, weights, layers, pooling and size), a readable name for it, the precision and
    the number of threads to run with."""

    model: Any
    preprocess: Callable[[Any], Any]
    size: int
    key: str
    name: str
    precision: str
    threads: int
    calibration: str | None = None  # int8: the calibration sample's digest (extraction/int8)
    calibration_pixels: Callable[[], np.ndarray] | None = None  # that sample, when at hand


@dataclass(frozen=True)
class Engine:
    """A registered engine: the precisions it runs and how to prepare a runner."""

    name: str
    precisions: tuple[str, ...]
    description: str
    prepare: Callable[[EngineJob], Runner]
    version: Callable[[], str | None]  # the engine library's version, for the manifest
    # refuses, in one line, a precision it lists but this machine cannot run
    check_machine: Callable[[str], None] | None = None


ENGINES: dict[str, Engine] = {}


def register_engine(engine: Engine) -> Engine:
    """Add an engine to the registry."""
    ENGINES[engine.name] = engine
    return engine


def get_engine(name: str) -> Engine:
    """Look an engine up by name, or fail with the list of valid names."""
    try:
        return ENGINES[ALIASES.get(name.lower(), name.lower())]
    except KeyError:
        raise UserError(f"unknown engine '{name}'; choose one of: "
                        f"{', '.join(sorted(ENGINES))}.") from None


def check_engine(name: str, precision: str) -> Engine:
    """The engine, after checking it runs ``precision``."""
    engine = get_engine(name)
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision '{precision}'; choose one of: "
                        f"{', '.join(PRECISIONS)}.")
    if precision not in engine.precisions:
        others = [e.name for e in ENGINES.values() if precision in e.precisions]
        raise UserError(f"the {engine.name} engine runs {', '.join(engine.precisions)} only; "
                        f"use --precision fp32, or --engine {' or '.join(others)} for "
                        f"{precision}.")
    if engine.check_machine:
        engine.check_machine(precision)
    return engine


def default_threads() -> int:
    """The cores this process may run on (its affinity mask, not every core of the host)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _prepare_keras(job: EngineJob) -> Runner:
    """The active Keras backend runs the model, compiled once (see :mod:`.runtime`)."""
    from bottleneck.extraction.runtime import compile_function

    return compile_function(job.model, job.preprocess, job.size)


def _keras_version() -> str:
    from bottleneck.backend import active_backend, backend_version

    return f"{active_backend()} {backend_version()}"


OPENVINO_MODULE = "bottleneck.extraction.engine_openvino"  # imported only when used


def _prepare_openvino(job: EngineJob) -> Runner:
    return importlib.import_module(OPENVINO_MODULE).prepare(job)


def _openvino_version() -> str | None:
    return importlib.import_module(OPENVINO_MODULE).version()


def _openvino_check(precision: str) -> None:
    importlib.import_module(OPENVINO_MODULE).check_precision(precision)


register_engine(Engine("keras", ("fp32", "bf16", "fp16"), "the active Keras backend "
                       "(tensorflow, jax or torch) runs the model (the reference)",
                       _prepare_keras, _keras_version))
register_engine(Engine("openvino", ("fp32", "bf16", "int8"),
                       "OpenVINO runs a converted copy on the CPU (pip install "
                       "'bottleneck[openvino]'; int8: quantized by NNCF on the dataset's own "
                       "images, CPUs with VNNI or AMX-INT8)", _prepare_openvino,
                       _openvino_version, _openvino_check))


def engine_names() -> Sequence[str]:
    """Registered engine names (and the old ``tf``), for the command line's choices."""
    return (*ENGINES, *ALIASES)
