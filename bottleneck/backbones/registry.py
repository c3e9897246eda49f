"""Backbone registry: name → builder, preprocessing, sizes, dims and weight resolvers.

Each backbone's ``preprocess_input`` is defined once and reached through :func:`get_backbone`,
so a cache can never be built with one scaling and served with another. Where ImageNet
weights come from is the backbone's own business: its ``resolvers`` map a weights name
(``imagenet``) to a function, so no other code names a backbone to find its weights.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.errors import UserError, arg
from bottleneck.storage.atomic import sha256_file

RANDOM_WEIGHTS_SEED = 0


@dataclass(frozen=True)
class ResolvedWeights:
    """What a builder takes (None, ``"imagenet"`` or a file path), a readable name, the
    file's sha256 when there is a file, and what the user asked for."""

    arg: str | None
    name: str
    sha256: str | None = None
    spec: str = "none"


def keras_download(include_top: bool) -> ResolvedWeights:
    """keras.applications' own ``weights="imagenet"`` (downloads on first use)."""
    return ResolvedWeights("imagenet", "imagenet (keras.applications download)", None,
                           "imagenet")


@dataclass(frozen=True)
class Backbone:
    """A frozen ImageNet model that can be cut at any layer."""

    name: str
    module: str  # module that holds the builder and preprocess_input
    builder: str  # attribute name of the keras.applications-style builder
    default_size: int
    min_size: int
    dims: int  # channels of the default (last block, pooled) output
    description: str
    preprocess_module: str | None = None  # defaults to ``module``
    resolvers: Mapping[str, Callable[[bool], ResolvedWeights]] = field(
        default_factory=lambda: {"imagenet": keras_download})
    # fresh Keras layers equal to preprocess_input (see backbones.preprocessing); None: the
    # backbone cannot be fine-tuned or exported as one model
    keras_preprocessing: Callable[[], list[Any]] | None = None
    # the stable name of its input scaling, recorded in the manifest: ``tf`` (x/127.5 - 1),
    # ``caffe`` (BGR minus ImageNet means), ``torch``, ``lite0`` ((x - 127) / 128)
    preprocess_mode: str = "tf"
    # module paths earlier versions recorded as ``preprocess_input`` (read as this mode)
    preprocess_aliases: tuple[str, ...] = ()

    def _builder(self) -> Callable[..., Any]:
        from bottleneck.backend import import_keras

        import_keras()  # the chosen backend, imported without its C++ start-up lines
        return getattr(importlib.import_module(self.module), self.builder)

    def build(self, weights: str | None, image_size: int) -> Any:
        """The model without its classifier top, at ``image_size``, in inference mode."""
        model = self._builder()(include_top=False, weights=weights,
                                input_shape=(image_size, image_size, 3))
        model.trainable = False
        return model

    def build_with_top(self, weights: str | None, image_size: int) -> Any:
        """The full ImageNet classifier (1000 probabilities)."""
        model = self._builder()(include_top=True, weights=weights,
                                input_shape=(image_size, image_size, 3))
        model.trainable = False
        return model

    @property
    def preprocess_name(self) -> str:
        """Dotted name of the ``preprocess_input`` function (recorded in the manifest)."""
        return f"{self.preprocess_module or self.module}.preprocess_input"

    @property
    def preprocess_input(self) -> Callable[[Any], Any]:
        """The model's own input scaling: float RGB in 0..255 → model input."""
        from bottleneck.backend import import_keras

        import_keras()
        return importlib.import_module(self.preprocess_module or self.module).preprocess_input

    def preprocess_layers(self) -> list[Any]:
        """Fresh, non-trainable Keras layers numerically equal to :attr:`preprocess_input`."""
        if self.keras_preprocessing is None:
            able = [b.name for b in BACKBONES.values() if b.keras_preprocessing is not None]
            raise UserError(f"{self.name} has no preprocessing as Keras layers, so it cannot be "
                            f"fine-tuned or exported; backbones that can: {', '.join(able)}.")
        return self.keras_preprocessing()

    def check_size(self, image_size: int) -> None:
        """Refuse an input size the model cannot take."""
        if image_size < self.min_size:
            raise UserError(
                f"--image-size {image_size} is below {self.name}'s minimum of {self.min_size}; "
                f"use --image-size {self.min_size} or more (default {self.default_size})."
            )

    def resolve_weights(self, spec: str, include_top: bool = False) -> ResolvedWeights:
        """``none`` (seeded random), a resolver's name (``imagenet``) or a weights file."""
        if spec.lower() == "none":
            return ResolvedWeights(None, f"random (seed {RANDOM_WEIGHTS_SEED})", None, "none")
        resolver = self.resolvers.get(spec.lower())
        if resolver is not None:
            return resolver(include_top)
        path = Path(spec).expanduser()
        if not path.is_file():
            raise UserError(
                f"weights file not found: {spec}; use --weights "
                f"{', --weights '.join(self.resolvers)}, --weights none or a path to a Keras "
                ".h5 / .weights.h5 file."
            )
        resolved = str(path.resolve())  # predict may run from another directory
        return ResolvedWeights(resolved, path.name, sha256_file(path), resolved)

    def load(self, weights: ResolvedWeights, image_size: int, include_top: bool = False) -> Any:
        """Build with resolved weights; random weights are seeded, so they rebuild identically.

        A failed ImageNet download or an unreadable weights file is one line saying what to do.
        """
        build = self.build_with_top if include_top else self.build
        try:
            model = build(weights.arg, image_size)
            if weights.arg is None:
                seeded_random_weights(model)
            return model
        except ValueError as exc:
            what = f"cannot load weights {weights.arg}" if weights.arg not in (None, "imagenet") \
                else self.name
            raise UserError(f"{what}: {str(exc).splitlines()[0]}") from None
        except OSError as exc:
            raise UserError(f"cannot load weights {weights.arg}: {exc}") from None
        except Exception as exc:  # keras' get_file raises a bare Exception when offline
            if weights.arg != "imagenet":
                raise
            which = ("with the classifier top (Keras' *_tf_kernels.h5, not *_notop.h5)"
                     if include_top else "without the top (Keras' *_notop.h5)")
            raise UserError(
                f"could not download ImageNet weights for {self.name} ({type(exc).__name__}); "
                f"offline, download its weights file {which} by hand and pass "
                f"{arg('--weights PATH', 'weights=PATH')}, or use "
                f"{arg('--backbone efficientnet_lite0', 'backbone=efficientnet_lite0')}, whose "
                "weights need no network."
            ) from None


def seeded_random_weights(model: Any, seed: int = RANDOM_WEIGHTS_SEED) -> None:
    """Redraw every randomly initialised weight with NumPy (Glorot-uniform, Keras' default
    for kernels), so ``--weights none`` gives the same model on every backend; constant
    weights (biases, BatchNorm statistics) keep their initial values."""
    arrays = []
    for index, array in enumerate(model.get_weights()):
        if array.size > 1 and np.ptp(array) > 0:
            receptive = int(np.prod(array.shape[:-2])) if array.ndim > 2 else 1
            fan_in = array.shape[-2] * receptive if array.ndim > 1 else array.shape[0]
            fan_out = array.shape[-1] * receptive
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            rng = np.random.default_rng([seed, index])
            array = rng.uniform(-limit, limit, array.shape).astype(array.dtype)
        arrays.append(array)
    model.set_weights(arrays)


BACKBONES: dict[str, Backbone] = {}


def preprocess_mode(recorded: str) -> str:
    """The stable preprocessing mode for what a manifest recorded: a mode itself, a
    backbone's name, or the ``preprocess_input`` module path an earlier version wrote."""
    for backbone in BACKBONES.values():
        if recorded in (backbone.name, backbone.preprocess_name, *backbone.preprocess_aliases):
            return backbone.preprocess_mode
    return recorded


def register_backbone(backbone: Backbone) -> Backbone:
    """Add a backbone to the registry (one line per backbone)."""
    BACKBONES[backbone.name] = backbone
    return backbone


def get_backbone(name: str) -> Backbone:
    """Look a backbone up by name, or fail with the list of valid names."""
    try:
        return BACKBONES[name.lower()]
    except KeyError:
        raise UserError(
            f"unknown backbone '{name}'; choose one of: {', '.join(sorted(BACKBONES))}."
        ) from None
