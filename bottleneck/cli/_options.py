"""Help texts and options that several commands share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from bottleneck.backend import BACKENDS

ENGINE_HELP = ("What runs the backbone: keras (the Keras backend, the reference; `tf` is the "
               "same) or openvino (a converted copy, faster on CPUs, needs --backend "
               "tensorflow; pip install 'bottleneck[openvino]').")
PRECISION_HELP = ("fp32 gives the reference features on every backend; bf16 / fp16 (keras on "
                  "GPUs that run them, bf16 also openvino on CPUs with bf16) are faster and "
                  "within cosine 0.999 of them; int8 (openvino on CPUs with VNNI or AMX-INT8) "
                  "is quantized on 300 of the dataset's own train images, another cache.")
PRECISIONS = ("fp32", "bf16", "fp16", "int8")  # as extraction/engines.py (the CLI imports less)
THREADS_HELP = "Inference threads of the openvino engine (default: the cores this process may use)."


def _set_backend(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:
        from bottleneck.backend import set_backend

        set_backend(value)


def backend_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--backend tensorflow|jax|torch``, applied before Keras is first imported."""
    return click.option(
        "--backend", type=click.Choice(BACKENDS), expose_value=False, is_eager=True,
        callback=_set_backend,
        help="Keras backend to run on (default: KERAS_BACKEND, else ~/.keras/keras.json, "
             "else tensorflow).")(command)
