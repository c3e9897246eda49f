"""Decoding and resizing: the one definition of how pixels reach a backbone.

Files decode to 8-bit RGB exactly as TensorFlow's decoder does (what
``keras.utils.image_dataset_from_directory`` uses), with no TensorFlow: JPEGs through
libjpeg-turbo (simplejpeg, fast integer DCT, as ``tf.io.decode_jpeg``), CMYK by TensorFlow's
formula, other formats through Pillow with TensorFlow's conversions (:mod:`.decode`). The
resize is TensorFlow's bilinear resize (half-pixel centres, no antialias) as float32
(:mod:`.resize`); ``content_hash`` is the FarmHash fingerprint earlier versions computed with
``tf.fingerprint`` (:mod:`.fingerprint`). Extraction, ``predict``, ``imagenet`` and fine-tuning
all decode through here.

Fast decode (``decode_size``): a JPEG is decoded straight from its DCT at 1/2, 1/4 or 1/8
scale, the smallest scale whose shorter side still has at least ``decode_size`` pixels, before
that same bilinear resize. Other formats, and ``decode_size=None``, decode at full size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bottleneck.data.decode import (  # noqa: F401 - the names callers know
    DCT_SCALES,
    dct_scale,
    decode_bytes,
    decode_file,
    pil_to_rgb_array,
    to_rgb,
)
from bottleneck.data.decode_gpu import GPU_DECODE, load_image_gpu
from bottleneck.data.fingerprint import content_hash  # noqa: F401
from bottleneck.data.resize import resize_bilinear

PREPROCESSING = {
    "decode": "8-bit RGB (grayscale, palette, RGBA, CMYK and 16-bit converted)",
    "resize": "bilinear, no crop, no antialias (as keras.utils.image_dataset_from_directory)",
    "range": "float32 0..255, then the backbone's preprocess_input",
    "augmentation": "none: each image is cached once, exactly as predict will see it",
}
FAST_DECODE = ("JPEG decoded at 1/2, 1/4 or 1/8 scale from the DCT, the smallest whose shorter "
               "side stays >= the image size (as Pillow's draft); other formats at full size")
CHANNELS = (1, 2, 3, 4)  # grey, grey + alpha, RGB, RGBA: what an array source may hold


def preprocessing(fast_decode: bool = False, decode: str = "cpu") -> dict[str, str]:
    """What the manifest records about decoding and resizing (``decode``: ``cpu`` or ``gpu``,
    see :mod:`.decode_gpu`)."""
    return (PREPROCESSING | ({"fast_decode": FAST_DECODE} if fast_decode else {})
            | ({"decode": GPU_DECODE} if decode == "gpu" else {}))


def resize(image: np.ndarray, image_size: int, kernel: bool = True) -> np.ndarray:
    """Bilinear resize of uint8 H×W×3 to a square float32 image in 0..255, equal to
    ``tf.image.resize(image, (size, size), "bilinear")`` (``kernel``: as
    :func:`~bottleneck.data.resize.resize_bilinear`'s)."""
    return resize_bilinear(image, image_size, kernel=kernel)


def load_image(path: str | Path, image_size: int, fast_decode: bool = False,
               decode: str = "cpu", kernel: bool = True) -> np.ndarray:
    """Decode and resize one file exactly as extraction does (float32, 0..255); ``decode``
    ``gpu``: as ``--decode gpu`` does (:mod:`.decode_gpu`); ``kernel`` False: resized in
    NumPy alone (same numbers, no numba to load: for a few images)."""
    return load_image_sized(path, image_size, fast_decode, decode, kernel)[0]


def load_image_sized(path: str | Path, image_size: int, fast_decode: bool = False,
                     decode: str = "cpu", kernel: bool = True
                     ) -> tuple[np.ndarray, tuple[int, int] | None]:
    """:func:`load_image` and the decoded (height, width) before the resize (None where the
    GPU decoded it); a fast decode never goes below ``image_size``, so a small image's own."""
    if decode == "gpu":
        return load_image_gpu(path, image_size), None
    decoded = decode_file(path, image_size if fast_decode else None)
    return resize(decoded, image_size, kernel), (int(decoded.shape[0]), int(decoded.shape[1]))
