"""Encoded test images of every kind the decoders meet, made here (Pillow, simplejpeg, and
hand-written PNG and GIF bytes where Pillow cannot write the kind)."""

from __future__ import annotations

import io
import struct
import zlib
from functools import lru_cache

import numpy as np
import simplejpeg
from PIL import Image


@lru_cache(maxsize=1)
def photo() -> np.ndarray:
    """A real photograph (scikit-learn's sample), cropped to an odd 123×171: real JPEG
    statistics, edges and gradients, and sizes that are not multiples of 8 or 16."""
    from sklearn.datasets import load_sample_image

    return np.ascontiguousarray(load_sample_image("china.jpg")[140:263, 200:371])


def pil_bytes(img: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def jpeg(array: np.ndarray | None = None, **options: object) -> bytes:
    return pil_bytes(Image.fromarray(photo() if array is None else array), "JPEG", **options)


def jpeg_kinds() -> dict[str, bytes]:
    """The JPEG kinds whose decoding must equal TensorFlow's."""
    a = photo()
    cmyk = np.ascontiguousarray(np.asarray(Image.fromarray(a).convert("CMYK")))
    adobe_cmyk = pil_bytes(Image.fromarray(a).convert("CMYK"), "JPEG", quality=90)
    kinds = {
        "q75 4:2:0": jpeg(quality=75), "q95 4:2:0": jpeg(quality=95),
        "4:2:2": jpeg(quality=85, subsampling="4:2:2"), "4:4:4": jpeg(quality=95, subsampling=0),
        "4:4:0": simplejpeg.encode_jpeg(a, 85, colorsubsampling="440"),
        "4:1:1": simplejpeg.encode_jpeg(a, 85, colorsubsampling="411"),
        "progressive": jpeg(quality=80, progressive=True),
        "progressive 4:4:4": jpeg(quality=90, progressive=True, subsampling=0),
        "restart markers": jpeg(quality=85, restart_marker_blocks=3),
        "restart rows": jpeg(quality=75, restart_marker_rows=1, progressive=True),
        "grey": jpeg(np.ascontiguousarray(a[..., 1]), quality=85),
        "cmyk (Adobe)": adobe_cmyk,
        "cmyk (no Adobe marker)": strip_app14(adobe_cmyk),
        "ycck": simplejpeg.encode_jpeg(cmyk, 85, colorspace="CMYK"),
    }
    return kinds


def strip_app14(data: bytes) -> bytes:
    """The JPEG without its Adobe APP14 segments."""
    out, i = bytearray(data[:2]), 2
    while data[i + 1] != 0xDA:
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if data[i + 1] != 0xEE:
            out += data[i:i + 2 + length]
        i += 2 + length
    return bytes(out + data[i:])


def png16(array: np.ndarray) -> bytes:
    """A 16-bit PNG (grey, grey + alpha, RGB or RGBA) written by hand: Pillow cannot."""
    height, width = array.shape[:2]
    channels = 1 if array.ndim == 2 else array.shape[2]
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def gif(screen: tuple[int, int], palette: np.ndarray,
        frames: list[tuple[int, int, np.ndarray, int | None]]) -> bytes:
    """A GIF with frames (left, top, indices, transparent index) at any place on the screen
    (width, height) — Pillow always writes a full first frame. LZW data of literal codes only
    (a clear code every 250): valid, if uncompressed."""
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", *screen, 0xF7, 0, 0))
    full = np.zeros((256, 3), np.uint8)
    full[:len(palette)] = palette
    out += full.tobytes()
    for left, top, indices, transparent in frames:
        flags = 1 if transparent is not None else 0
        out += b"\x21\xf9\x04" + bytes([flags, 0, 0, transparent or 0, 0])
        out += b"\x2c" + struct.pack("<HHHHB", left, top, indices.shape[1], indices.shape[0], 0)
        out += _lzw_literals(indices)
    return bytes(out + b"\x3b")


def _lzw_literals(indices: np.ndarray, min_code: int = 8) -> bytes:
    clear, end = 1 << min_code, (1 << min_code) + 1
    codes: list[int] = []
    for n, value in enumerate(indices.ravel().tolist()):
        if n % 250 == 0:
            codes.append(clear)
        codes.append(value)
    codes.append(end)
    bits = nbits = 0
    data = bytearray()
    for code in codes:
        bits |= code << nbits
        nbits += min_code + 1
        while nbits >= 8:
            data.append(bits & 0xFF)
            bits >>= 8
            nbits -= 8
    if nbits:
        data.append(bits & 0xFF)
    blocks = bytearray([min_code])
    for i in range(0, len(data), 255):
        blocks += bytes([len(data[i:i + 255])]) + data[i:i + 255]
    return bytes(blocks + b"\x00")


def other_formats() -> dict[str, bytes]:
    """PNG, GIF, BMP and WebP in the modes that need a conversion."""
    rng = np.random.default_rng(7)
    rgb = rng.integers(0, 256, (29, 41, 3), dtype=np.uint8)
    rgba = rng.integers(0, 256, (29, 41, 4), dtype=np.uint8)
    grey = rng.integers(0, 256, (29, 41), dtype=np.uint8)
    palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    quantized = Image.fromarray(rgb).quantize(100)
    return {
        "png rgb": pil_bytes(Image.fromarray(rgb), "PNG"),
        "png rgba": pil_bytes(Image.fromarray(rgba), "PNG"),
        "png grey": pil_bytes(Image.fromarray(grey), "PNG"),
        "png grey+alpha": pil_bytes(Image.fromarray(rgba[..., :2].copy(), "LA"), "PNG"),
        "png 1-bit": pil_bytes(Image.fromarray(grey > 128), "PNG"),
        "png palette": pil_bytes(quantized, "PNG"),
        "png palette+tRNS": pil_bytes(quantized, "PNG", transparency=3),
        "png 4-bit palette": pil_bytes(Image.fromarray(rgb).quantize(16), "PNG", bits=4),
        "png 16-bit grey": png16(rng.integers(0, 65536, (29, 41), dtype=np.uint16)),
        "png 16-bit grey+alpha": png16(rng.integers(0, 65536, (29, 41, 2), dtype=np.uint16)),
        "png 16-bit rgb": png16(rng.integers(0, 65536, (29, 41, 3), dtype=np.uint16)),
        "png 16-bit rgba": png16(rng.integers(0, 65536, (29, 41, 4), dtype=np.uint16)),
        "png without IEND": pil_bytes(Image.fromarray(rgb), "PNG")[:-12],
        "gif": pil_bytes(quantized, "GIF"),
        "gif transparent": pil_bytes(quantized, "GIF", transparency=5),
        "gif grey": pil_bytes(Image.fromarray(grey), "GIF"),
        "gif animated": pil_bytes(quantized, "GIF", save_all=True, append_images=[
            Image.fromarray(rng.integers(0, 256, (29, 41, 3), dtype=np.uint8)).quantize(50)]),
        "gif partial first frame": gif((15, 11), palette, [
            (3, 2, rng.integers(0, 256, (7, 9), dtype=np.uint8), 4),
            (0, 0, rng.integers(0, 256, (10, 12), dtype=np.uint8), None)]),
        "gif frame off the screen": gif((12, 10), palette, [
            (8, 5, rng.integers(0, 256, (7, 9), dtype=np.uint8), None)]),
        "bmp rgb": pil_bytes(Image.fromarray(rgb), "BMP"),
        "bmp rgba": pil_bytes(Image.fromarray(rgba), "BMP"),
        "bmp grey": pil_bytes(Image.fromarray(grey), "BMP"),
        "bmp 8-bit palette": pil_bytes(Image.fromarray(rgb).quantize(50), "BMP"),
        "bmp 1-bit": pil_bytes(Image.fromarray(grey > 100), "BMP"),
        "webp lossless": pil_bytes(Image.fromarray(rgb), "WEBP", lossless=True),
        "webp lossy": pil_bytes(Image.fromarray(photo()), "WEBP", quality=80),
        "webp rgba": pil_bytes(Image.fromarray(rgba), "WEBP", lossless=True),
        "tiff": pil_bytes(Image.fromarray(rgb), "TIFF"),
    }
