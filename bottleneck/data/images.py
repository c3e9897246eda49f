"""Decoding and resizing: the one definition of how pixels reach a backbone.

The fast path is TensorFlow's decoder inside tf.data (parallel, no GIL). Files that it cannot
decode are retried with Pillow, which also says *why* a file is bad; both paths give 8-bit RGB
and the same bilinear resize that ``keras.utils.image_dataset_from_directory`` uses.

Fast decode (``decode_size``): a JPEG is decoded straight from its DCT at 1/2, 1/4 or 1/8
scale, the smallest scale whose shorter side still has at least ``decode_size`` pixels, before
that same bilinear resize. Both decoders pick the scale by the same rule (Pillow's ``draft``).
Other formats, and ``decode_size=None``, decode at full size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from bottleneck.data.decode import (  # noqa: F401 - dct_scale: its old home
    DCT_SCALES,
    dct_scale,
    pil_to_rgb_array,
)

PREPROCESSING = {
    "decode": "8-bit RGB (grayscale, palette, RGBA, CMYK and 16-bit converted)",
    "resize": "bilinear, no crop, no antialias (as keras.utils.image_dataset_from_directory)",
    "range": "float32 0..255, then the backbone's preprocess_input",
    "augmentation": "none: each image is cached once, exactly as predict will see it",
}
FAST_DECODE = ("JPEG decoded at 1/2, 1/4 or 1/8 scale from the DCT, the smallest whose shorter "
               "side stays >= the image size (as Pillow's draft); other formats at full size")


def preprocessing(fast_decode: bool = False) -> dict[str, str]:
    """What the manifest records about decoding and resizing."""
    return PREPROCESSING | ({"fast_decode": FAST_DECODE} if fast_decode else {})


def decode_file_tf(path: tf.Tensor, decode_size: int | None = None) -> tf.Tensor:
    """Read and decode one image file to a uint8 H×W×3 tensor (raises on bad data).

    With ``decode_size``, a JPEG is decoded at the DCT scale :func:`dct_scale` picks.
    """
    data = tf.io.read_file(path)
    if decode_size is None:
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
    else:
        image = tf.cond(tf.io.is_jpeg(data), lambda: _decode_jpeg_scaled(data, decode_size),
                        lambda: tf.io.decode_image(data, channels=3, expand_animations=False))
    image.set_shape([None, None, 3])
    return image


CHANNELS = (1, 2, 3, 4)  # grey, grey + alpha, RGB, RGBA: what an array source may hold


def _decode_jpeg_scaled(data: tf.Tensor, decode_size: int) -> tf.Tensor:
    """A JPEG at the largest of 1/8, 1/4, 1/2 whose shorter side keeps ``decode_size`` px."""
    shape = tf.io.extract_jpeg_shape(data)
    shorter = tf.minimum(shape[0], shape[1])
    fits = [shorter // scale >= decode_size for scale in DCT_SCALES] + [tf.constant(True)]
    branch = tf.argmax(tf.cast(tf.stack(fits), tf.int32), output_type=tf.int32)
    return tf.switch_case(branch, [
        (lambda s=scale: tf.io.decode_jpeg(data, channels=3, ratio=s))
        for scale in (*DCT_SCALES, 1)
    ])


def to_rgb_tf(image: tf.Tensor) -> tf.Tensor:
    """Grey (H×W, H×W×1), grey + alpha, RGB or RGBA → H×W×3; alpha is dropped, as Pillow's
    ``convert("RGB")`` does."""
    if image.shape.rank == 2:
        image = image[..., tf.newaxis]
    if image.shape[-1] in (2, 4):
        image = image[..., : image.shape[-1] - 1]
    if image.shape[-1] == 1:
        image = tf.image.grayscale_to_rgb(image)
    return image


def resize_tf(image: tf.Tensor, image_size: int) -> tf.Tensor:
    """Bilinear resize to a square float32 image in 0..255, as Keras' directory loader does."""
    resized = tf.image.resize(image, (image_size, image_size), method="bilinear")
    resized.set_shape([image_size, image_size, 3])
    return resized


def content_hash_tf(image: tf.Tensor) -> tf.Tensor:
    """A 64-bit fingerprint of the decoded pixels and their shape (finds duplicate images)."""
    shape = tf.bitcast(tf.cast(tf.shape(image), tf.int32), tf.uint8)
    data = tf.concat([tf.reshape(shape, [-1]), tf.reshape(image, [-1])], axis=0)
    return tf.bitcast(tf.fingerprint(data[tf.newaxis])[0], tf.uint64)


def decode_file(path: str | Path, decode_size: int | None = None) -> np.ndarray:
    """Decode one file to uint8 H×W×3: TensorFlow's decoder, else Pillow, which says why a
    file is bad (``ValueError`` with the reason). ``decode_size``: fast decode (see above)."""
    try:
        return decode_file_tf(tf.constant(str(path)), decode_size).numpy()
    except tf.errors.OpError:
        return decode_file_pil(path, decode_size)


def load_image(path: str | Path, image_size: int, fast_decode: bool = False) -> tf.Tensor:
    """Decode and resize one file exactly as extraction does (float32, 0..255)."""
    pixels = decode_file(path, image_size if fast_decode else None)
    return resize_tf(tf.constant(pixels), image_size)


def decode_file_pil(path: str | Path, decode_size: int | None = None) -> np.ndarray:
    """Decode a file with Pillow to uint8 H×W×3, raising ``ValueError`` with a readable reason."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ValueError("empty file (0 bytes)")
        with Image.open(path) as img:
            if decode_size and img.format == "JPEG":
                img.draft(img.mode, (decode_size, decode_size))  # same scale as dct_scale
            img.load()
            return pil_to_rgb_array(img)
    except UnidentifiedImageError:
        raise ValueError("not an image Pillow or TensorFlow can read") from None
    except OSError as exc:  # truncated or corrupt data, unreadable file
        raise ValueError(f"truncated or corrupt image data ({exc})") from None
