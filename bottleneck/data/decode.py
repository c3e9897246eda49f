"""Decoding without TensorFlow: the pixels ``tf.io.decode_image(data, channels=3)`` gives.

JPEG goes through simplejpeg (libjpeg-turbo) with TensorFlow's settings — fast integer IDCT,
fancy upsampling — which gives TensorFlow's very bits for baseline, progressive, arithmetic,
restart-marker, grey and 4:2:0/4:2:2/4:4:0/4:1:1/4:4:4 JPEGs, also at 1/2, 1/4 and 1/8 scale.
CMYK and YCCK JPEGs are decoded to CMYK and converted with TensorFlow's own integer formula.
A JPEG that TensorFlow would reject because its data ends early is rejected too (libjpeg-turbo
would pad it with grey); other libjpeg warnings are tolerated, as TensorFlow tolerates them.

Other formats (PNG, GIF, BMP, WebP, TIFF, …) go through Pillow, converted as TensorFlow does:
grey and palette to RGB, alpha dropped (not composited), 16-bit to its high byte; a GIF's first
frame on TensorFlow's canvas (the largest frame's size, transparent pixels black); an 8-bit
BMP as the grey image of its palette *indices*. Where TensorFlow would fail and fall back to
Pillow (e.g. an RGBA WebP), plain Pillow is what it gave, and what this gives.

Known differences: JPEGs with an unusual sampling (4:1:0, 3×1, mixed) that simplejpeg refuses
are decoded by Pillow (accurate IDCT: a few levels off TensorFlow's); JPEG XL needs
TensorFlow; a GIF or BMP that TensorFlow cannot read but Pillow can gets TensorFlow's
conversion here, where today's path gave Pillow's; a non-JPEG image over Pillow's
decompression-bomb limit (~179 megapixels) is refused with that reason.
"""

from __future__ import annotations

import io
import math
import struct
from pathlib import Path

import numpy as np
import simplejpeg
from PIL import Image, UnidentifiedImageError

DCT_SCALES = (8, 4, 2)  # libjpeg's scaled IDCT; 1 (full size) is the fallback
JPEG_EOF = "Premature end of JPEG file"  # libjpeg's warning when the data runs out
NOT_AN_IMAGE = "not an image Pillow or TensorFlow can read"
_SOF = {*range(0xC0, 0xC4), *range(0xC5, 0xC8), *range(0xC9, 0xCC), *range(0xCD, 0xD0)}


def dct_scale(height: int, width: int, decode_size: int | None) -> int:
    """The JPEG scale denominator (8, 4, 2 or 1) that fast decode uses for an image."""
    if decode_size:
        for scale in DCT_SCALES:
            if min(height, width) // scale >= decode_size:
                return scale
    return 1


def decode_file(path: str | Path, decode_size: int | None = None) -> np.ndarray:
    """Read and decode one file to uint8 H×W×3 (``ValueError`` with a readable reason)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the file ({exc.strerror or exc})") from None
    return decode_bytes(data, decode_size)


def decode_bytes(data: bytes, decode_size: int | None = None) -> np.ndarray:
    """Decode an encoded image to uint8 H×W×3, as TensorFlow does (see the module doc).

    ``decode_size``: fast decode — a JPEG is decoded at the DCT scale :func:`dct_scale` picks
    (as ``tf.io.decode_jpeg(ratio=...)``); other formats at full size.
    """
    if not data:
        raise ValueError("empty file (0 bytes)")
    if data[:3] == b"\xff\xd8\xff":
        return _decode_jpeg(bytes(data), decode_size)
    return _decode_pillow(data)


def to_rgb(array: np.ndarray) -> np.ndarray:
    """Grey (H×W, H×W×1), grey + alpha, RGB or RGBA uint8 → H×W×3; alpha is dropped (as
    ``images.to_rgb_tf``)."""
    if array.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {array.dtype}")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"expected grey, grey + alpha, RGB or RGBA pixels, got {array.shape}")
    if array.shape[-1] in (2, 4):
        array = array[..., :-1]
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.ascontiguousarray(array)


def jpeg_info(data: bytes) -> tuple[int, int, int, bool] | None:
    """(height, width, components, Adobe APP14 marker seen) from a JPEG's markers up to its
    first scan, or None if it has no readable frame header. The Adobe flag is libjpeg's
    ``saw_Adobe_marker``, which decides whether CMYK is stored inverted."""
    i, size = 2, len(data)
    adobe, frame = False, None
    while i + 4 <= size and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan, end of image
            break
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if marker == 0xEE and length >= 14 and data[i + 4:i + 9] == b"Adobe":
            adobe = True
        elif marker in _SOF and frame is None and i + 10 <= size:
            frame = (int.from_bytes(data[i + 5:i + 7], "big"),
                     int.from_bytes(data[i + 7:i + 9], "big"), data[i + 9])
        i += 2 + length
    return None if frame is None else (*frame, adobe)


def cmyk_to_rgb(cmyk: np.ndarray, adobe: bool) -> np.ndarray:
    """TensorFlow's CMYK → RGB (jpeg_mem.cc): Adobe files store inverted CMYK."""
    c, m, y, k = (cmyk[..., i].astype(np.uint16) for i in range(4))
    if not adobe:
        c, m, y, k = 255 - c, 255 - m, 255 - y, 255 - k
    return np.stack([k * c // 255, k * m // 255, k * y // 255], axis=-1).astype(np.uint8)


def _decode_jpeg(data: bytes, decode_size: int | None) -> np.ndarray:
    info = jpeg_info(data)
    cmyk = info is not None and info[2] == 4
    options: dict[str, int] = {}
    scale = dct_scale(info[0], info[1], decode_size) if info else 1
    if scale > 1 and info:
        expected = (-(-info[0] // scale), -(-info[1] // scale))
        if _turbo_factor(info[0], info[1], *expected) != (1, scale):
            return _decode_pillow(data, decode_size)  # simplejpeg would pick a smaller M/8
        options = {"min_height": expected[0], "min_width": expected[1]}
    colorspace = "CMYK" if cmyk else "RGB"
    try:
        pixels = _simplejpeg(data, colorspace, True, options)
    except ValueError as strict_error:
        try:
            pixels = _simplejpeg(data, colorspace, False, options)
        except ValueError:
            return _decode_pillow(data, decode_size)  # not for libjpeg-turbo: Pillow says why
        if JPEG_EOF in str(strict_error):
            raise ValueError(f"truncated or corrupt image data (image file is truncated: "
                             f"{JPEG_EOF.lower()})") from None
        _check_not_truncated(data)  # a first warning of another kind: did the data run out?
    if cmyk:
        return cmyk_to_rgb(pixels, bool(info and info[3]))
    return pixels


def _turbo_factor(height: int, width: int, min_height: int, min_width: int) -> tuple[int, int]:
    """The factor simplejpeg picks for these minimum sizes: the smallest of libjpeg-turbo's
    M/8 (M = 1..8) whose scaled sizes, rounded up, reach both minimums."""
    for m in range(1, 8):
        if -(-height * m // 8) >= min_height and -(-width * m // 8) >= min_width:
            return (m // math.gcd(m, 8), 8 // math.gcd(m, 8))
    return (1, 1)


def _simplejpeg(data: bytes, colorspace: str, strict: bool, options: dict[str, int]
                ) -> np.ndarray:
    return simplejpeg.decode_jpeg(data, colorspace=colorspace, fastdct=True, fastupsample=False,
                                  strict=strict, **options)


def _check_not_truncated(data: bytes) -> None:
    """Raise ``ValueError`` if the JPEG's data ends before its image (Pillow notices)."""
    _decode_pillow(data)


def _decode_pillow(data: bytes, decode_size: int | None = None) -> np.ndarray:
    """Pillow, with TensorFlow's conversions; ``ValueError`` with a readable reason."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format == "GIF":
                return _gif_first_frame(img, data)
            if decode_size and img.format == "JPEG":
                img.draft(img.mode, (decode_size, decode_size))  # same scale as dct_scale
            img.load()
            if img.format == "BMP" and data[28:30] == b"\x08\x00" and img.mode in ("P", "L"):
                return np.repeat(np.asarray(img, dtype=np.uint8)[..., None], 3, axis=-1)
            return pil_to_rgb_array(img)
    except UnidentifiedImageError:
        raise ValueError(NOT_AN_IMAGE) from None
    except Image.DecompressionBombError as exc:
        raise ValueError(f"image too large to decode safely ({exc})") from None
    except (OSError, SyntaxError, ValueError, IndexError, EOFError, struct.error) as exc:
        raise ValueError(f"truncated or corrupt image data ({exc})") from None  # or corrupt


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


def gif_frames(data: bytes) -> list[tuple[int, int, int, int]]:
    """(left, top, width, height) of every frame of a GIF, read from its blocks."""
    frames: list[tuple[int, int, int, int]] = []
    if len(data) < 13:
        return frames
    i = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    while i < len(data):
        block = data[i]
        if block == 0x21:  # extension: label, then sub-blocks
            i = _skip_sub_blocks(data, i + 2)
        elif block == 0x2C and i + 10 <= len(data):
            left, top, width, height = (int.from_bytes(data[i + k:i + k + 2], "little")
                                        for k in (1, 3, 5, 7))
            frames.append((left, top, width, height))
            flags = data[i + 9]
            i += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
            i = _skip_sub_blocks(data, i + 1)  # after the LZW minimum code size
        else:
            break
    return frames


def _skip_sub_blocks(data: bytes, i: int) -> int:
    while i < len(data) and data[i]:
        i += data[i] + 1
    return i + 1


def _gif_first_frame(img: Image.Image, data: bytes) -> np.ndarray:
    """TensorFlow's first frame: a canvas of the largest frame's size, black where the first
    frame does not reach or is transparent."""
    frames = gif_frames(data)
    x0, y0, x1, y1 = img.tile[0][1] if img.tile else (0, 0, *img.size)  # (Pillow < 11: tuples)
    transparency = img.info.get("transparency")
    img.load()
    if not frames or img.mode not in ("P", "L"):
        return pil_to_rgb_array(img)
    indices = np.asarray(img)[y0:y1, x0:x1]
    frame = pil_to_rgb_array(img)[y0:y1, x0:x1].copy()
    if isinstance(transparency, int):
        frame[indices == transparency] = 0
    height, width = max(f[3] for f in frames), max(f[2] for f in frames)
    canvas = np.zeros((height, width, 3), np.uint8)
    left, top = frames[0][:2]
    part = frame[: max(height - top, 0), : max(width - left, 0)]
    canvas[top:top + part.shape[0], left:left + part.shape[1]] = part
    return canvas
