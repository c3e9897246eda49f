"""An image query without Keras: the feature function's OpenVINO conversion, kept and reused.

``similar`` answers an image by running it through the cache's feature function. Building
that function in Keras (the backbone's layers, then its weights) costs seconds in a fresh
process, more than the query itself. The openvino engine already keeps each feature function
it converts in the user cache dir, named by :func:`~.feature_model.conversion_key`: the
backbone, size, pooling, layer, the digest of the weights and the versions that traced it. A
manifest records all of those, so where that conversion exists a fresh process opens it
without importing Keras or its backend (:func:`open_converted`), and an image query takes
well under a second.

What runs is the same preprocessing, backbone, cut and pooling in fp32; its features agree
with the Keras engine's within float rounding (measured on real EfficientNet-Lite0 weights:
cosine 1.0000, largest difference 1.2e-5 on values up to 4), as the op-by-op run of a few
images already does (:meth:`~.feature_model.FeatureExtractor.expect_images`). It serves
fp32 caches of the keras and openvino engines, read from files (not ``--decode gpu``), where
OpenVINO is installed. A query that had to build the Keras model keeps its conversion for the
next one (:func:`keep_converted`; about 2 s, once per feature function and machine). Neither
``predict`` nor ``export`` takes this path: they serve with the engine the model records.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bottleneck.extraction.config import ExtractConfig, resolve_config
from bottleneck.extraction.engines import ALIASES, Runner, default_threads
from bottleneck.extraction.feature_model import FeatureExtractor, conversion_key

ENGINES = ("keras", "openvino")  # the engines whose fp32 features the conversion reproduces
BACKEND = "tensorflow"  # the openvino engine converts a TensorFlow function


@dataclass
class ConvertedExtractor:
    """Raw float RGB (0..255) batches → features, by the kept conversion (the part of
    :class:`~.feature_model.FeatureExtractor` a query uses)."""

    config: ExtractConfig
    feature_shape: tuple[int, ...]
    runner: Runner = field(repr=False)

    def expect_images(self, count: int, batch_size: int) -> None:
        """Nothing to choose: the conversion is compiled already."""

    def __call__(self, images: Any) -> np.ndarray:
        """Features, in the cache's dtype, for a batch of float32 RGB images at size."""
        batch = np.asarray(images, dtype=np.float32)
        return np.asarray(self.runner(batch)[0]).astype(self.config.dtype, copy=False)


def eligible(config: ExtractConfig) -> bool:
    """Whether a conversion can stand in for this config's feature function: fp32 on the
    keras or openvino engine, one layer's recorded weights, images from files, OpenVINO
    installed."""
    engine = ALIASES.get(config.engine, config.engine)
    return (engine in ENGINES and config.precision == "fp32" and bool(config.weights_digest)
            and config.decode != "gpu" and importlib.util.find_spec("openvino") is not None)


def open_converted(config: ExtractConfig, threads: int | None = None
                   ) -> ConvertedExtractor | None:
    """The kept conversion of ``config``'s feature function, compiled; None when it is not
    eligible or not converted on this machine yet."""
    if not eligible(config):
        return None
    from bottleneck.backbones import get_backbone
    from bottleneck.extraction import engine_openvino

    resolved, _ = resolve_config(config)  # checks a recorded weights file is still the same
    name = f"{get_backbone(resolved.backbone).name}-{resolved.image_size}"
    xml = engine_openvino.converted_path(name, conversion_key([resolved], BACKEND))
    if not (xml.is_file() and xml.with_suffix(".bin").is_file()):
        return None
    try:
        runner = engine_openvino.open_runner(xml, "fp32", threads or default_threads())
    except RuntimeError:  # damaged, in our own cache: the Keras model it is, converted again
        xml.unlink(missing_ok=True)
        return None
    return ConvertedExtractor(resolved, tuple(runner.shapes[0]), runner)  # type: ignore


def keep_converted(extractor: FeatureExtractor) -> None:
    """Convert ``extractor``'s feature function for the next query, where eligible and this
    process runs TensorFlow (what converts it); a conversion already kept is left as is."""
    from bottleneck.backend import active_backend

    if eligible(extractor.config) and active_backend() == BACKEND \
            and len(extractor.configs) == 1:
        from bottleneck.extraction import engine_openvino

        engine_openvino.converted_model(extractor.job)
