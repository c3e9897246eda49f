"""What decides a cached feature's value, and its resolution into a complete config.

Decoding, preprocessing, weights, layer, pooling, size, dtype, precision and augmentation
define a cache. The engine and the backend that ran it are *recorded* but do not make a cache
another config: in fp32 every backend (and OpenVINO) gives the same features within
tolerance, so a cache started on TensorFlow may be resumed or grown on JAX. Everything is
compared by stable names (:func:`identity_config`), never by module paths.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from bottleneck.backbones import Backbone, ResolvedWeights, get_backbone, preprocess_mode
from bottleneck.data.augment import AUGMENT_RNG, Augment
from bottleneck.data.decode_gpu import DECODES
from bottleneck.errors import UserError, arg
from bottleneck.extraction.engines import Engine, check_engine

POOLINGS = ("avg", "max", "none")
DTYPES = ("float32", "float16")


@dataclass(frozen=True)
class ExtractConfig:
    """Everything that decides a cached feature's value (recorded in the manifest)."""

    backbone: str
    weights: str = "imagenet"  # "imagenet", "none", or a path to a weights file
    layer: str | None = None  # None: the last block
    pooling: str = "avg"
    image_size: int | None = None  # None: the backbone's default
    dtype: str = "float32"
    weights_name: str = field(default="", compare=False)
    weights_sha256: str | None = None
    weights_digest: str | None = None  # sha256 of the loaded weight arrays
    augment: int = 0  # K augmented views per train image (view 0 is the image itself)
    augment_ops: str | None = None  # canonical --augment-ops, None without views
    augment_rng: str | None = None  # the random stream of the views (data/augment.py)
    engine: str = "keras"  # what runs the feature function (recorded; see engines.py)
    precision: str = "fp32"  # fp32 (exact), bf16 or fp16 (where the device runs them)
    fast_decode: bool = False  # JPEGs decoded at a DCT scale >= image_size (data/images.py)
    decode: str = "cpu"  # "cpu" (libjpeg-turbo) or "gpu" (nvJPEG; data/decode_gpu.py)
    calibration: str | None = None  # int8: its calibration sample's digest (extraction/int8)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExtractConfig:
        """From a manifest's config; fields older manifests lack take their defaults."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


# Fields added after format_version 1 first shipped, with the value every older cache had.
LATER_FIELDS = {"engine": "tf", "precision": "fp32", "fast_decode": False, "augment": 0,
                "augment_ops": None, "augment_rng": None, "decode": "cpu", "calibration": None}


# Recorded for people and for serving, but not what decides a feature's value.
RECORDED_ONLY = ("engine", "weights_name", "preprocessing", "feature_shape")


def with_later_fields(config: dict[str, Any]) -> dict[str, Any]:
    """A manifest's config with the fields older caches lack filled in as they were made."""
    return LATER_FIELDS | config


def identity_config(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a recorded config that decides the features, by stable names: the
    preprocessing as the backbone's mode (``tf``, ``caffe``, ``lite0``; the module paths of
    every earlier version read as their mode), the decode rule as ``fast_decode`` and
    ``decode`` (``cpu``: libjpeg-turbo, ``gpu``: nvJPEG)."""
    full = with_later_fields(dict(config))
    recorded = full.get("preprocessing") or {}
    identity = {k: v for k, v in full.items() if k not in RECORDED_ONLY}
    identity["preprocess"] = preprocess_mode(
        recorded.get("preprocess") or recorded.get("preprocess_input") or full["backbone"])
    return identity


def resolve_config(config: ExtractConfig) -> tuple[ExtractConfig, ResolvedWeights]:
    """A new, complete config (canonical backbone name, size, resolved weights) and the
    weights to build with; the given config is not changed.

    A recorded weights-file sha256 (a config read back from a manifest) must match the file.
    """
    backbone, size, ops, engine = check_config(config)
    weights = backbone.resolve_weights(config.weights)
    if config.weights_sha256 and weights.sha256 and weights.sha256 != config.weights_sha256:
        raise UserError(
            f"the weights file {weights.arg} differs from the one the cache was built with "
            f"({config.weights_name}, sha256 {config.weights_sha256[:12]}…); restore that file."
        )
    resolved = replace(config, backbone=backbone.name, image_size=size, weights=weights.spec,
                       engine=engine.name, fast_decode=bool(config.fast_decode),
                       weights_name=weights.name,
                       weights_sha256=weights.sha256 or config.weights_sha256,
                       augment_ops=ops, augment_rng=AUGMENT_RNG if config.augment else None)
    return resolved, weights


def check_config(config: ExtractConfig) -> tuple[Backbone, int, str | None, Engine]:
    """The checks that need neither a model nor its weights (so a bad argument is refused
    before any backend is imported): the backbone, its size, and its pooling, dtype, views,
    engine and decode; returns the backbone, the size, the views' ops and the engine."""
    backbone = get_backbone(config.backbone)
    size = config.image_size or backbone.default_size
    if not isinstance(size, int) or isinstance(size, bool):
        raise UserError(f"{arg('--image-size', 'image_size')} must be a whole number of pixels, "
                        f"got {size!r}.")
    backbone.check_size(size)
    if config.pooling not in POOLINGS:
        raise UserError(f"unknown pooling '{config.pooling}'; choose one of: "
                        f"{', '.join(POOLINGS)}.")
    if config.dtype not in DTYPES:
        raise UserError(f"unknown dtype '{config.dtype}'; choose one of: {', '.join(DTYPES)}.")
    if not isinstance(config.augment, int) or config.augment < 0:
        raise UserError(f"--augment must be a number of views ≥ 0, got {config.augment!r}.")
    ops = Augment.parse(config.augment_ops).describe() if config.augment else None
    if config.augment and not ops:
        raise UserError("--augment needs at least one op in --augment-ops.")
    engine = check_engine(config.engine, config.precision)
    check_decode(config)
    return backbone, size, ops, engine


def check_decode(config: ExtractConfig) -> None:
    """``--decode gpu`` hands pixels from nvJPEG straight to the model on the GPU: it does not
    combine with what runs on the CPU between them."""
    if config.decode not in DECODES:
        raise UserError(f"unknown --decode '{config.decode}'; choose one of: "
                        f"{', '.join(DECODES)}.")
    if config.decode != "gpu":
        return
    engine = check_engine(config.engine, config.precision).name
    clash = ("--augment (its views are made on the CPU)" if config.augment
             else "--fast-decode (nvJPEG decodes at full size)" if config.fast_decode
             else f"--engine {engine} (it runs on the CPU)" if engine != "keras" else None)
    if clash:
        raise UserError(f"--decode gpu does not combine with {clash}; drop one of them.")
