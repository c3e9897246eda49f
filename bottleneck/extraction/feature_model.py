"""A frozen backbone cut at a layer, with its own preprocessing: raw RGB in, features out.

Built from an :class:`ExtractConfig` alone, so ``extract`` and ``predict`` construct the very
same function from the manifest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from bottleneck.backbones import get_backbone
from bottleneck.backend import backend_version, import_keras
from bottleneck.data.sources import Source
from bottleneck.errors import UserError
from bottleneck.extraction.config import ExtractConfig, resolve_config
from bottleneck.extraction.engines import EngineJob, default_threads, get_engine
from bottleneck.extraction.runtime import (
    check_precision,
    current_device,
    dtype_policy,
    eager_function,
    runtime_record,
)

EAGER_BATCHES = 4  # a run of at most this many batches is not worth compiling the model for


def weights_digest(model: Any) -> str:
    """sha256 over the model's weight arrays: identifies exactly which weights ran."""
    digest = hashlib.sha256()
    for array in model.get_weights():
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def cut_and_pool(base: Any, layer: str | None, pooling: str, name: str) -> Any:
    """``base`` up to ``layer`` (None: its output), globally pooled unless ``pooling='none'``."""
    keras = import_keras()

    output = base.output
    if layer:
        try:
            output = base.get_layer(layer).output
        except ValueError:
            raise UserError(
                f"{name} has no layer '{layer}'; list them with `bottleneck layers {name} "
                f"--image-size {base.input.shape[1]}`."
            ) from None
    if len(output.shape) == 4 and pooling != "none":
        pool = (keras.layers.GlobalAveragePooling2D if pooling == "avg"
                else keras.layers.GlobalMaxPooling2D)
        output = pool(name=f"bottleneck_{pooling}_pool_{layer or 'top'}")(output)
    model = keras.Model(base.input, output, name=f"{name}_features")
    model.trainable = False
    return model


def conversion_key(configs: Sequence[ExtractConfig], backend: str | None = None) -> str:
    """Names one feature function: backbone, size, pooling, each layer with its weights, and
    the backend (default: the active one) and Keras that traced it (their preprocessing could
    change). Computed from versions alone: neither Keras nor the backend is imported."""
    from importlib.metadata import version

    first = configs[0]
    parts = [first.backbone, first.image_size, first.pooling,
             [(c.layer, c.weights_digest) for c in configs], backend_version(backend),
             version("keras")]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


class FeatureExtractor:
    """Raw float RGB (0..255) batches → features, exactly as the cache stores them.

    ``config`` is resolved (a new object; the argument is not changed) and, where it records a
    weights digest, the rebuilt weights (up to its first layer) must match it. ``layers``
    (default: ``config.layer`` alone) makes one model with an output per layer, all from one
    pass of the backbone; each has its own config in ``configs``, shape in ``feature_shapes``.
    The engine named by the config runs the model with ``threads`` threads (default: the cores
    this process may use) on the active Keras backend's device; ``runtime`` is what the
    manifest records of that (engine, backend and its version, device). ``source``: the
    dataset, which int8 calibrates on (:mod:`.int8`; a config without a ``calibration``
    digest gets the digest of its sample).
    """

    def __init__(self, config: ExtractConfig, layers: Sequence[str | None] | None = None,
                 threads: int | None = None, source: Source | None = None) -> None:
        keras = import_keras()

        if threads is not None and threads < 1:
            raise UserError("--threads must be a positive number of threads.")
        resolved, weights = resolve_config(config)
        backbone = get_backbone(resolved.backbone)
        self.device = current_device()
        if resolved.engine == "keras":
            check_precision(resolved.precision, self.device)
        layers = [resolved.layer] if layers is None else list(layers)
        with dtype_policy(resolved.precision if resolved.engine == "keras" else "fp32"):
            base = backbone.load(weights, resolved.image_size)
            models = [cut_and_pool(base, layer, resolved.pooling, backbone.name)
                      for layer in layers]
        digests = [weights_digest(model) for model in models]
        if resolved.weights_digest and resolved.weights_digest != digests[0]:
            raise UserError(
                f"the {backbone.name} weights differ from those the cache was built with "
                f"({resolved.weights_name}); pass the same --weights as at extraction."
            )
        self.configs = [replace(resolved, layer=layer, weights_digest=digest)
                        for layer, digest in zip(layers, digests, strict=True)]
        self.config = self.configs[0]
        self.feature_shapes = [tuple(int(d) for d in m.output.shape[1:]) for m in models]
        self.feature_shape: tuple[int, ...] = self.feature_shapes[0]
        # one layer: its cut model as before; several: one model with an output per layer
        self.model = model = models[0] if len(models) == 1 else keras.Model(
            base.input, [m.output for m in models], name=f"{backbone.name}_features")
        size = resolved.image_size
        calibration, pixels = _calibration(resolved, source)
        self.configs = [replace(c, calibration=calibration) for c in self.configs]
        self.config = self.configs[0]
        self.engine = get_engine(resolved.engine)
        self.job = EngineJob(model, backbone.preprocess_input, size, conversion_key(self.configs),
                             f"{backbone.name}-{size}", resolved.precision,
                             threads or default_threads(), calibration, pixels)
        self._run = self.engine.prepare(self.job)
        self._called = False
        self.runtime = runtime_record(self.device, self.engine.name)

    def expect_images(self, count: int, batch_size: int) -> None:
        """Told how many images this run computes: a run of at most ``EAGER_BATCHES`` batches
        on the keras engine calls the model op by op instead of compiling it (the compile
        costs more than those batches; the features agree within float rounding)."""
        if self.engine.name == "keras" and count <= EAGER_BATCHES * batch_size \
                and not self._called:
            self._run = eager_function(self.model, self.job.preprocess)

    def run(self, images: Any) -> list[np.ndarray]:
        """Features of every layer for a batch of float32 RGB images (0..255, at size)."""
        self._called = True
        # pixels decoded on the GPU (--decode gpu) are torch tensors there already
        on_device = hasattr(images, "device") and not isinstance(images, np.ndarray | list)
        batch = images if on_device else np.asarray(images, dtype=np.float32)
        return [np.asarray(f).astype(self.config.dtype, copy=False) for f in self._run(batch)]

    def __call__(self, images: Any) -> np.ndarray:
        """Features for a batch of float32 RGB images in 0..255 at the configured size."""
        return self.run(images)[0]


def _calibration(config: ExtractConfig, source: Source | None
                 ) -> tuple[str | None, Callable[[], np.ndarray] | None]:
    """int8's calibration digest and a way to get its pixels (None where no source is at
    hand); (None, None) for other precisions."""
    if config.precision != "int8":
        return None, None
    from bottleneck.extraction import int8

    if source is None:
        if config.calibration is None:
            raise UserError("int8 features come from a model calibrated on a dataset's own "
                            "images: extract a cache with --precision int8 first (predict serves "
                            "int8 only for models made from such a cache).")
        return config.calibration, None
    size = int(config.image_size or 0)
    if config.calibration is not None:  # recorded: the sample is only needed to re-quantize
        return config.calibration, lambda: int8.calibration_pixels(source, size,
                                                                   config.fast_decode)
    pixels = int8.calibration_pixels(source, size, config.fast_decode)
    return int8.pixels_digest(pixels), lambda: pixels

