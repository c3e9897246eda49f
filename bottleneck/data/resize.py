"""Bilinear resize in NumPy, bit-identical to ``tf.image.resize(image, (s, s), "bilinear")``.

TensorFlow's kernel (half-pixel centres, no antialias) maps output pixel ``i`` to the input
coordinate ``in = (i + 0.5) * scale - 0.5`` in float32, with ``scale = in_size / out_size`` in
float32; it reads ``lower = max(floor(in), 0)`` and ``upper = min(ceil(in), in_size - 1)``
with ``lerp = in - floor(in)``, and interpolates ``top = tl + (tr - tl) * x_lerp``,
``bottom = bl + (br - bl) * x_lerp``, ``top + (bottom - top) * y_lerp``, all in float32.
The same arithmetic in the same order gives the same bits. For speed only the needed input
pixels are gathered (as uint8) before any float work, and the index tables are cached per
shape. The output stays float32: rounding it to uint8 would break parity with Keras.

Two implementations of that one arithmetic: the compiled kernel (:mod:`.kernels`, numba,
releases the GIL; about 5× faster on one core), used whenever numba loads, and the NumPy
form below, used where it does not (one warning says so). Both give the same bits.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np

from bottleneck.data.jit import compiled

FLOATS = np.arange(256, dtype=np.float32)  # uint8 → float32 by lookup: exact, and faster
FLOATS.setflags(write=False)


@lru_cache(maxsize=256)
def _axis(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower, upper, lerp) for one axis, as TensorFlow's compute_interpolation_weights."""
    scale = np.float32(in_size) / np.float32(out_size)
    coord = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(coord)
    lower = np.maximum(floor, 0).astype(np.intp)
    upper = np.minimum(np.ceil(coord), in_size - 1).astype(np.intp)
    lerp = (coord - floor).astype(np.float32)
    for array in (lower, upper, lerp):
        array.setflags(write=False)
    return lower, upper, lerp


@lru_cache(maxsize=256)
def _tables(height: int, width: int, size: int, channels: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flat pixel indices of the four corners (size × size) and the lerps as 2-D arrays that
    broadcast over (size, size × channels), so NumPy's inner loops run over whole rows."""
    y0, y1, ylerp = _axis(height, size)
    x0, x1, xlerp = _axis(width, size)
    corners = [(ya[:, None] * width + xa[None, :]) for ya in (y0, y1) for xa in (x0, x1)]
    xlerp_row = np.repeat(xlerp, channels)[None, :]
    ylerp_col = np.ascontiguousarray(ylerp[:, None])
    for array in (*corners, xlerp_row, ylerp_col):
        array.setflags(write=False)
    return (*corners, xlerp_row, ylerp_col)


@lru_cache(maxsize=256)
def _offsets(height: int, width: int, size: int, channels: int) -> tuple[np.ndarray, ...]:
    """The compiled kernel's tables: byte offsets of the input rows (``y * W * C``) and
    pixels (``x * C``) as uint64, beside the float32 lerps."""
    y0, y1, ylerp = _axis(height, size)
    x0, x1, xlerp = _axis(width, size)
    tables = ((y0 * (width * channels)).astype(np.uint64), (y1 * (width * channels)).astype(
        np.uint64), ylerp, (x0 * channels).astype(np.uint64), (x1 * channels).astype(np.uint64),
        xlerp)
    for array in tables:
        array.setflags(write=False)
    return tables


def _check(image: np.ndarray, size: int) -> None:
    if image.ndim != 3:
        raise ValueError(f"expected an H×W×C image, got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1 or size < 1:
        raise ValueError(f"cannot resize an image of shape {image.shape} to {size}×{size}")


def resize_bilinear(image: np.ndarray, size: int, out: np.ndarray | None = None,
                    kernel: bool = True) -> np.ndarray:
    """uint8 H×W×3 (or H×W×C) → float32 size×size×C, equal to TensorFlow's bilinear resize.

    ``out``: a C-contiguous float32 size×size×C array to write into (returned); ``kernel``:
    False keeps to NumPy (the same numbers; for a few images, where loading numba and its
    compiled code costs more than the resizes)."""
    _check(image, size)
    height, width, channels = image.shape
    if out is not None and (out.shape != (size, size, channels) or out.dtype != np.float32
                            or not out.flags.c_contiguous):
        raise ValueError(f"out must be C-contiguous float32 {(size, size, channels)}")
    kernels = compiled() if kernel and image.dtype == np.uint8 else None
    if kernels is None:
        result = resize_bilinear_numpy(image, size)
        if out is None:
            return result
        out[...] = result
        return out
    if out is None:
        out = np.empty((size, size, channels), np.float32)
    kernels.resize_into(np.ascontiguousarray(image).reshape(-1),
                        *_offsets(height, width, size, channels), channels, FLOATS,
                        out.reshape(-1))
    return out


def resize_bilinear_numpy(image: np.ndarray, size: int) -> np.ndarray:
    """:func:`resize_bilinear` in NumPy alone: the fallback, and the kernel's reference."""
    _check(image, size)
    height, width, channels = image.shape
    tl_i, tr_i, bl_i, br_i, xlerp, ylerp = _tables(height, width, size, channels)
    flat = np.ascontiguousarray(image).reshape(height * width, channels)
    shape = (size, size * channels)
    top, diff = _scratch(shape)
    out = np.empty(shape, np.float32)

    def corner(index: np.ndarray, into: np.ndarray) -> np.ndarray:
        np.copyto(into, np.take(flat, index, axis=0).reshape(shape))
        return into

    # freshly allocated temporaries cost more than the arithmetic: reuse per-thread buffers
    corner(tl_i, top)
    corner(tr_i, diff)
    diff -= top
    diff *= xlerp
    top += diff  # top = tl + (tr - tl) * x_lerp
    corner(bl_i, out)
    corner(br_i, diff)
    diff -= out
    diff *= xlerp
    out += diff  # bottom = bl + (br - bl) * x_lerp
    out -= top
    out *= ylerp
    out += top  # top + (bottom - top) * y_lerp
    return out.reshape(size, size, channels)


_LOCAL = threading.local()


def _scratch(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Two float32 work buffers of ``shape``, kept per thread (the loader decodes in threads)."""
    buffers = getattr(_LOCAL, "buffers", None)
    if buffers is None or buffers[0].shape != shape:
        buffers = (np.empty(shape, np.float32), np.empty(shape, np.float32))
        _LOCAL.buffers = buffers
    return buffers
