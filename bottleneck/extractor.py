"""A frozen backbone cut at a layer, with its own preprocessing: raw RGB in, features out.

Built from an :class:`ExtractConfig` alone, so ``extract`` and ``predict`` construct the very
same function from the manifest.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.backbones import get_backbone
from bottleneck.errors import UserError

POOLINGS = ("avg", "max", "none")
DTYPES = ("float32", "float16")
RANDOM_WEIGHTS_SEED = 0


@dataclass
class ExtractConfig:
    """Everything that decides a cached feature's value."""

    backbone: str
    weights: str = "imagenet"  # "imagenet", "none", or a path to a weights file
    layer: str | None = None  # None: the last block
    pooling: str = "avg"
    image_size: int | None = None  # None: the backbone's default
    dtype: str = "float32"
    weights_name: str = field(default="", compare=False)
    weights_sha256: str | None = None
    weights_digest: str | None = None  # sha256 of the loaded weight arrays

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExtractConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def weights_digest(model: Any) -> str:
    """sha256 over the model's weight arrays: identifies exactly which weights ran."""
    digest = hashlib.sha256()
    for array in model.get_weights():
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _keras_weights_arg(config: ExtractConfig) -> tuple[str | None, str, str | None]:
    """(argument for the builder, a readable name, sha256 of the file) for ``config.weights``."""
    from bottleneck.cache import sha256_file

    spec = config.weights
    if spec.lower() == "none":
        return None, f"random (seed {RANDOM_WEIGHTS_SEED})", None
    if spec.lower() == "imagenet":
        if config.backbone == "efficientnet_lite0":
            from bottleneck.offline_weights import efficientnet_lite0_weights

            path = efficientnet_lite0_weights(include_top=False)
            return str(path), f"imagenet (converted offline: {path.name})", sha256_file(path)
        return "imagenet", "imagenet (keras.applications download)", None
    path = Path(spec).expanduser()
    if not path.is_file():
        raise UserError(
            f"weights file not found: {spec}; use --weights imagenet, --weights none or a path "
            "to a Keras .h5 / .weights.h5 file."
        )
    config.weights = str(path.resolve())  # predict may run from another directory
    return config.weights, path.name, sha256_file(path)


class FeatureExtractor:
    """Raw float RGB (0..255) batches → features, exactly as the cache stores them."""

    def __init__(self, config: ExtractConfig) -> None:
        import keras
        import tensorflow as tf

        backbone = get_backbone(config.backbone)
        config.backbone = backbone.name
        config.image_size = config.image_size or backbone.default_size
        backbone.check_size(config.image_size)
        if config.pooling not in POOLINGS:
            raise UserError(f"unknown pooling '{config.pooling}'; choose one of: "
                            f"{', '.join(POOLINGS)}.")
        if config.dtype not in DTYPES:
            raise UserError(f"unknown dtype '{config.dtype}'; choose one of: {', '.join(DTYPES)}.")
        weights_arg, config.weights_name, file_sha = _keras_weights_arg(config)
        if file_sha:
            config.weights_sha256 = file_sha
        base = _build_base(backbone, weights_arg, config.image_size)
        output = base.output
        if config.layer:
            try:
                output = base.get_layer(config.layer).output
            except ValueError:
                raise UserError(
                    f"{backbone.name} has no layer '{config.layer}'; list them with "
                    f"`bottleneck layers {backbone.name} --image-size {config.image_size}`."
                ) from None
        if len(output.shape) == 4 and config.pooling != "none":
            pool = (keras.layers.GlobalAveragePooling2D if config.pooling == "avg"
                    else keras.layers.GlobalMaxPooling2D)
            output = pool(name=f"bottleneck_{config.pooling}_pool")(output)
        self.model = keras.Model(base.input, output, name=f"{backbone.name}_features")
        self.model.trainable = False
        digest = weights_digest(self.model)
        if config.weights_digest and config.weights_digest != digest:
            raise UserError(
                f"the {backbone.name} weights differ from those the cache was built with "
                f"({config.weights_name}); pass the same --weights as at extraction."
            )
        config.weights_digest = digest
        self.config = config
        self.feature_shape: tuple[int, ...] = tuple(int(d) for d in output.shape[1:])
        preprocess = backbone.preprocess_input
        size = config.image_size
        model = self.model

        @tf.function(input_signature=[tf.TensorSpec((None, size, size, 3), tf.float32)],
                     reduce_retracing=True)
        def run(images: tf.Tensor) -> tf.Tensor:
            return model(preprocess(images), training=False)

        self._run = run

    def __call__(self, images: Any) -> np.ndarray:
        """Features for a batch of float32 RGB images in 0..255 at the configured size."""
        features = self._run(images).numpy()
        return features.astype(self.config.dtype, copy=False)


def _build_base(backbone: Any, weights_arg: str | None, image_size: int) -> Any:
    """The backbone model; random weights are seeded so they can be rebuilt identically."""
    import keras

    if weights_arg is None:
        keras.utils.set_random_seed(RANDOM_WEIGHTS_SEED)
    try:
        return backbone.build(weights_arg, image_size)
    except ValueError as exc:
        raise UserError(f"{backbone.name}: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # the imagenet download failed (offline) or a bad weights file
        if weights_arg == "imagenet":
            raise UserError(
                f"could not download ImageNet weights for {backbone.name} ({type(exc).__name__}); "
                "offline, download the *_notop.h5 file by hand and pass --weights PATH, or use "
                "--backbone efficientnet_lite0 whose weights need no network."
            ) from None
        raise UserError(f"cannot load weights {weights_arg}: {str(exc).splitlines()[0]}") from None
