"""What make_kit.py and check.py share: the kit's layout, the reference models, NumPy-seeded
He-normal weights (the same on every backend, so they are regenerated on the device instead of
carried) and the parity figures.

Imports nothing heavy at module level: check.py's orchestrator imports this without Keras.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

KIT_FORMAT = 1
KIT_JSON = "kit.json"
IMAGES = "images"  # images/<class>/<name>.jpg: the parity photos
WHEELS = "wheels"
WEIGHTS = "weights"  # the converted Lite0 file, laid out as <cache dir>/weights/
FASHION_MNIST = "fashion-mnist"
REFERENCE = "reference.npz"  # keys + one features array per reference model
FASHION_MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                       "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
HE_SEED = 1


@dataclass(frozen=True)
class Reference:
    """One model whose CPU/TensorFlow fp32 features the kit carries."""

    name: str  # the array's name in reference.npz
    backbone: str
    image_size: int
    weights: str  # "imagenet" (the carried Lite0 file) or "he-normal" (regenerated)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


FULL_REFERENCES = (Reference("lite0_imagenet_224", "efficientnet_lite0", 224, "imagenet"),
                   Reference("mobilenet_v2_he_224", "mobilenet_v2", 224, "he-normal"),
                   Reference("vgg16_he_224", "vgg16", 224, "he-normal"))
QUICK_REFERENCES = (Reference("lite0_imagenet_32", "efficientnet_lite0", 32, "imagenet"),
                    Reference("mobilenet_v2_he_32", "mobilenet_v2", 32, "he-normal"))


def he_normal_numpy(model: Any, seed: int = HE_SEED) -> None:
    """He-normal kernels (depthwise: fan-in is the window) and zero biases, drawn with NumPy
    per layer index, so every backend builds the very same weights; other weights (BatchNorm
    statistics) keep their initial constants. Keras' default init makes MobileNetV2's
    features vanish (~1e-12); this keeps their variance."""
    for index, layer in enumerate(model.layers):
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        shape = tuple(int(d) for d in kernel.shape)
        if type(layer).__name__ == "DepthwiseConv2D":
            fan_in = int(np.prod(shape[:2]))
        else:
            fan_in = int(np.prod(shape[:-1]))
        rng = np.random.default_rng([seed, index])
        std = np.float32(np.sqrt(2.0 / fan_in))
        kernel.assign(rng.standard_normal(shape, dtype=np.float32) * std)
        bias = getattr(layer, "bias", None)
        if bias is not None:
            bias.assign(np.zeros(tuple(int(d) for d in bias.shape), np.float32))


def he_weights_file(backbone: str, image_size: int, path: Path, seed: int = HE_SEED) -> Path:
    """Save a backbone's no-top model with :func:`he_normal_numpy` weights (Keras imported)."""
    from bottleneck.backbones import get_backbone

    model = get_backbone(backbone).build(None, image_size)
    he_normal_numpy(model, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(path)
    return path


def weights_arg(reference: Reference, kit: Path, work: Path) -> str:
    """The ``weights=`` to extract a reference with: ``imagenet`` (the carried Lite0 file,
    found through BOTTLENECK_CACHE_DIR) or a He-normal file made in ``work``."""
    if reference.weights == "imagenet":
        return "imagenet"
    path = work / f"{reference.backbone}-{reference.image_size}-he{HE_SEED}.weights.h5"
    if not path.is_file():
        he_weights_file(reference.backbone, reference.image_size, path)
    return str(path)


def parity(features: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Per-row cosine (min, median) and relative error ‖a − b‖ / ‖b‖ (max, median)."""
    a = np.asarray(features, np.float64).reshape(len(features), -1)
    b = np.asarray(reference, np.float64).reshape(len(reference), -1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cosine = np.sum(a * b, axis=1) / np.maximum(norms, 1e-30)
    relative = np.linalg.norm(a - b, axis=1) / np.maximum(np.linalg.norm(b, axis=1), 1e-30)
    return {"rows": len(a), "cosine_min": float(cosine.min()),
            "cosine_median": float(np.median(cosine)), "relative_error_max": float(relative.max()),
            "relative_error_median": float(np.median(relative)),
            "reference_norm_min": float(np.linalg.norm(b, axis=1).min())}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_mib(folder: Path) -> float:
    """Total size of the files under ``folder`` (links not followed), in MiB."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()
               ) / 2**20
