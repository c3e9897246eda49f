"""int8 on the OpenVINO engine: post-training quantization (NNCF) on the dataset's own images.

The calibration sample is up to :data:`CALIBRATION_IMAGES` train images (every split's where
the source has no train split), the ones whose keys hash lowest (sha256): a fixed sample, the
same on a resume and mostly the same when the dataset grows, spread over the classes. They
are decoded and resized exactly as extraction does (view 0, no augmentation), and NNCF
quantizes the converted fp32 model on them (:data:`RECIPE`). The ``calibration`` field of the
config is the sha256 of the recipe and the sample's float32 pixels: int8 features differ from
fp32's, and another sample, or another recipe, is another cache (a cache quantized by an
earlier recipe keeps its features and its recorded digest; extending it with this one is
refused rather than mixed). The quantized model is kept beside the fp32 conversion in the
user cache, named by that digest.

The recipe, chosen on EfficientNet-Lite0 with its ImageNet weights at 96 px, calibrated on 300
Fashion-MNIST train images, feature cosine to fp32 over 300 test images (median / min):
NNCF's defaults with fast bias correction 0.970 / 0.81; full bias correction 0.983 / 0.89;
+ the MIXED preset (asymmetric activations) 0.983 / 0.88; + the last 1×1 convolution kept in
fp32 0.983 / 0.89; + the first convolution kept in fp32 0.994 / 0.96 but 25% slower; + the
*overflow fix off* **0.994 / 0.955** at int8's full speed (2.3–2.9× fp32 on one thread, as
before). The overflow fix (NNCF's default, "first_layer") quantizes the first layer's weights
to 7 bits so that ``vpmaddubsw`` (AVX2/AVX-512 without VNNI) cannot saturate its int16 sums;
int8 runs here only on VNNI or AMX-INT8, whose int32 dot products cannot saturate, so the
8th bit is free, and the first layer (the raw pixels) is where it was lost.

int8 needs a CPU with VNNI (``avx512_vnni``, ``avx_vnni``) or AMX-INT8 (``amx_int8``) and is
refused elsewhere: on plain AVX2, OpenVINO emulates the int8 dot products (``vpmaddubsw``, which
saturates), which is rarely faster than fp32 there and not the arithmetic of VNNI machines.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.data import images
from bottleneck.data.sources import Item, Source
from bottleneck.errors import UserError

CALIBRATION_IMAGES = 300
# What NNCF is asked to do; part of the calibration digest, so another recipe is another cache.
RECIPE = "nncf.quantize: default preset, full bias correction, overflow fix off"
NNCF_PIN = "nncf==3.4.0"
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # /proc/cpuinfo names
CPUINFO = Path("/proc/cpuinfo")


def cpu_flags(cpuinfo: str | None = None) -> set[str] | None:
    """The CPU's feature flags (from ``/proc/cpuinfo``, or the text given), None if unknown."""
    if cpuinfo is None:
        try:
            cpuinfo = CPUINFO.read_text()
        except OSError:  # not Linux
            return None
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return None


def check_int8_cpu(cpuinfo: str | None = None) -> None:
    """Refuse int8 on a CPU without VNNI or AMX-INT8, in one line."""
    flags = cpu_flags(cpuinfo)
    if flags is not None and flags & set(INT8_FLAGS):
        return
    seen = "cannot tell which CPU this is" if flags is None else (
        f"this CPU has none of {', '.join(INT8_FLAGS)}")
    raise UserError(f"--precision int8 needs a CPU with VNNI or AMX-INT8 ({seen}); use "
                    "--precision fp32 (or bf16 where the CPU has it).")


def calibration_items(items: Sequence[Item], count: int = CALIBRATION_IMAGES) -> list[Item]:
    """The calibration sample: the ``count`` train items (all items without a train split)
    whose keys' sha256 is lowest, in that order."""
    train = [item for item in items if item.split == "train"] or list(items)
    return sorted(train, key=lambda item: hashlib.sha256(item.key.encode()).digest())[:count]


def calibration_pixels(source: Source, size: int, fast_decode: bool,
                       count: int = CALIBRATION_IMAGES) -> np.ndarray:
    """The sample's pixels as extraction feeds them (float32 N × size × size × 3, 0..255);
    images that cannot be read are left out, as extraction leaves them out."""
    chosen = calibration_items(source.items(), count)
    batch = np.empty((len(chosen), size, size, 3), np.float32)
    kept = 0
    for item in chosen:
        try:
            image = source.load_image(item, size if fast_decode else None)
        except ValueError:
            continue
        images.resize_bilinear(image, size, out=batch[kept])
        kept += 1
    if not kept:
        raise UserError("--precision int8 calibrates on the dataset's own images, and none of "
                        "them could be read; use --precision fp32.")
    return batch[:kept]


def pixels_digest(pixels: np.ndarray) -> str:
    """sha256 of :data:`RECIPE` and the calibration pixels (shape and float32 values): the
    ``calibration`` field."""
    digest = hashlib.sha256(RECIPE.encode())
    digest.update(np.asarray(pixels.shape, "<i8").tobytes())
    digest.update(np.ascontiguousarray(pixels, dtype="<f4").tobytes())
    return digest.hexdigest()


def import_quietly(name: str) -> Any:
    """Import ``name`` (openvino, nncf) with the ``openvino_telemetry`` package hidden: both
    then fall back to sending nothing (they would otherwise report usage over the network)."""
    if sys.modules.get(name) is None:
        saved = sys.modules.get("openvino_telemetry", _MISSING)
        sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]  # → ImportError
        try:
            __import__(name)
        finally:
            if saved is _MISSING:
                del sys.modules["openvino_telemetry"]
            else:
                sys.modules["openvino_telemetry"] = saved
    return sys.modules[name]


_MISSING = object()


def nncf_version() -> str:
    """The installed NNCF's version ("none" without it): part of the quantized model's name,
    as another NNCF may quantize differently."""
    try:
        return version("nncf")
    except PackageNotFoundError:
        return "none"


def quantize(model: Any, pixels: np.ndarray) -> Any:
    """The OpenVINO ``model`` quantized to int8 by NNCF on ``pixels`` (one image a step)."""
    try:
        nncf = import_quietly("nncf")
    except ImportError:
        raise UserError(f"--precision int8 needs NNCF: pip install 'bottleneck[int8]' (or "
                        f"{NNCF_PIN}); or use --precision fp32.") from None
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        OverflowFix,
    )

    nncf.set_log_level(logging.WARNING)
    dataset = nncf.Dataset([pixels[i:i + 1] for i in range(len(pixels))])
    with contextlib.redirect_stdout(io.StringIO()):  # its progress bars (rich, on stdout)
        return nncf.quantize(model, dataset, subset_size=len(pixels),
                             fast_bias_correction=False,  # see RECIPE and the module doc
                             advanced_parameters=AdvancedQuantizationParameters(
                                 overflow_fix=OverflowFix.DISABLE))
