"""Decoding and resizing: the one definition of how pixels reach a backbone.

Files decode to 8-bit RGB exactly as TensorFlow's decoder does (what
``keras.utils.image_dataset_from_directory`` uses), without TensorFlow; the resize is the same
bilinear resize (half-pixel centres, no antialias), as float32; ``content_hash`` is the same
64-bit fingerprint of the decoded pixels that earlier versions computed with TensorFlow.
Extraction, ``predict``, ``imagenet`` and fine-tuning all decode through here.

Fast decode (``decode_size``): a JPEG is decoded straight from its DCT at 1/2, 1/4 or 1/8
scale, the smallest scale whose shorter side still has at least ``decode_size`` pixels, before
that same bilinear resize. Both decoders pick the scale by the same rule (Pillow's ``draft``).
Other formats, and ``decode_size=None``, decode at full size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

PREPROCESSING = {
    "decode": "8-bit RGB (grayscale, palette, RGBA, CMYK and 16-bit converted)",
    "resize": "bilinear, no crop, no antialias (as keras.utils.image_dataset_from_directory)",
    "range": "float32 0..255, then the backbone's preprocess_input",
    "augmentation": "none: each image is cached once, exactly as predict will see it",
}
FAST_DECODE = ("JPEG decoded at 1/2, 1/4 or 1/8 scale from the DCT, the smallest whose shorter "
               "side stays >= the image size (as Pillow's draft); other formats at full size")
DCT_SCALES = (8, 4, 2)  # libjpeg's scaled IDCT; 1 (full size) is the fallback


def preprocessing(fast_decode: bool = False) -> dict[str, str]:
    """What the manifest records about decoding and resizing."""
    return PREPROCESSING | ({"fast_decode": FAST_DECODE} if fast_decode else {})


def dct_scale(height: int, width: int, decode_size: int | None) -> int:
    """The JPEG scale denominator (8, 4, 2 or 1) that fast decode uses for an image."""
    if decode_size:
        for scale in DCT_SCALES:
            if min(height, width) // scale >= decode_size:
                return scale
    return 1


def decode_file_tf(path: Any, decode_size: int | None = None) -> Any:
    """Read and decode one image file to a uint8 H×W×3 tensor (raises on bad data).

    With ``decode_size``, a JPEG is decoded at the DCT scale :func:`dct_scale` picks.
    """
    import tensorflow as tf

    data = tf.io.read_file(path)
    if decode_size is None:
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
    else:
        image = tf.cond(tf.io.is_jpeg(data), lambda: _decode_jpeg_scaled(data, decode_size),
                        lambda: tf.io.decode_image(data, channels=3, expand_animations=False))
    image.set_shape([None, None, 3])
    return image


CHANNELS = (1, 2, 3, 4)  # grey, grey + alpha, RGB, RGBA: what an array source may hold


def _decode_jpeg_scaled(data: Any, decode_size: int) -> Any:
    """A JPEG at the largest of 1/8, 1/4, 1/2 whose shorter side keeps ``decode_size`` px."""
    import tensorflow as tf

    shape = tf.io.extract_jpeg_shape(data)
    shorter = tf.minimum(shape[0], shape[1])
    fits = [shorter // scale >= decode_size for scale in DCT_SCALES] + [tf.constant(True)]
    branch = tf.argmax(tf.cast(tf.stack(fits), tf.int32), output_type=tf.int32)
    return tf.switch_case(branch, [
        (lambda s=scale: tf.io.decode_jpeg(data, channels=3, ratio=s))
        for scale in (*DCT_SCALES, 1)
    ])


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Grey (H×W, H×W×1), grey + alpha, RGB or RGBA → uint8 H×W×3; alpha is dropped, as
    Pillow's ``convert("RGB")`` (and TensorFlow's ``channels=3``) does."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] in (2, 4):
        image = image[..., : image.shape[-1] - 1]
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return np.ascontiguousarray(image, dtype=np.uint8)


def resize(image: np.ndarray, image_size: int) -> np.ndarray:
    """Bilinear resize of uint8 H×W×3 to a square float32 image in 0..255, equal to
    ``tf.image.resize(image, (size, size), "bilinear")`` (half-pixel centres, no antialias)."""
    h, w = image.shape[:2]

    def coords(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = (np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * np.float32(n_in / n_out) \
            - np.float32(0.5)
        x0 = np.floor(x)
        f = (x - x0).astype(np.float32)
        return (np.clip(x0, 0, n_in - 1).astype(np.intp),
                np.clip(x0 + 1, 0, n_in - 1).astype(np.intp), f)

    y0, y1, fy = coords(h, image_size)
    x0, x1, fx = coords(w, image_size)
    r0, r1 = image[y0].astype(np.float32), image[y1].astype(np.float32)
    fx = fx[None, :, None]
    top = r0[:, x0] + (r0[:, x1] - r0[:, x0]) * fx
    bottom = r1[:, x0] + (r1[:, x1] - r1[:, x0]) * fx
    return top + (bottom - top) * fy[:, None, None]


def content_hash(image: np.ndarray) -> int:
    """A 64-bit fingerprint of the decoded pixels and their shape (finds duplicate images):
    FarmHash Fingerprint64 of the shape (int32) then the bytes, as ``tf.fingerprint``."""
    import tensorflow as tf

    shape = tf.bitcast(tf.cast(tf.shape(image), tf.int32), tf.uint8)
    data = tf.concat([tf.reshape(shape, [-1]), tf.reshape(image, [-1])], axis=0)
    return int(tf.bitcast(tf.fingerprint(data[tf.newaxis])[0], tf.uint64).numpy())


def decode_file(path: str | Path, decode_size: int | None = None) -> np.ndarray:
    """Decode one file to uint8 H×W×3: TensorFlow's decoder, else Pillow, which says why a
    file is bad (``ValueError`` with the reason). ``decode_size``: fast decode (see above)."""
    import tensorflow as tf

    try:
        return decode_file_tf(tf.constant(str(path)), decode_size).numpy()
    except tf.errors.OpError:
        return decode_file_pil(path, decode_size)


def load_image(path: str | Path, image_size: int, fast_decode: bool = False) -> np.ndarray:
    """Decode and resize one file exactly as extraction does (float32, 0..255)."""
    return resize(decode_file(path, image_size if fast_decode else None), image_size)


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


def pil_to_rgb_array(img: Image.Image) -> np.ndarray:
    """Any Pillow mode → uint8 RGB; 16-bit data keeps its high byte, as TensorFlow does."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(img, dtype=np.uint32)
        array = (array >> 8).clip(0, 255).astype(np.uint8) if img.mode != "I" else array.clip(
            0, 255
        ).astype(np.uint8)
        return np.repeat(array[..., None], 3, axis=-1)
    if img.mode != "RGB":
        img = img.convert("RGBA").convert("RGB") if img.mode == "P" else img.convert("RGB")
    return np.asarray(img, dtype=np.uint8)
