"""Augmented views in NumPy: the same on every backend and every machine.

The ops mean what they mean in :mod:`bottleneck.data.augment` (Keras' preprocessing layers):
a view is flipped, then put through one projective transform (rotation about the centre,
zoom, shift; bilinear, reflecting fill), then its contrast is changed. Each view's parameters
come from a Philox stream keyed by (the image key's hash, the view index) — its raw 64-bit
words, which NumPy's versions do not change — so resume, extend and the Ray executor compute
the same views anywhere. These are *not* TensorFlow's random draws (those come from TF's own
stream); given the same parameters, :func:`apply_params` equals TensorFlow's
``ImageProjectiveTransformV3`` + contrast to float32 rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from bottleneck.data.augment_ops import FLIP_MODES, Augment

SLOTS = 7  # one draw per op parameter, always all seven: adding an op moves no other draw


@dataclass(frozen=True)
class ViewParams:
    """What one view does: flips, then a transform (if ``geometric``), then contrast."""

    flip_horizontal: bool = False
    flip_vertical: bool = False
    geometric: bool = False
    angle: float = 0.0  # radians, counter-clockwise as Keras' RandomRotation
    scale: float = 1.0  # output pixel → input: > 1 shows more of the image (zooms out)
    shift_x: float = 0.0  # fraction of the width
    shift_y: float = 0.0  # fraction of the height
    contrast: float | None = None  # factor around each channel's mean; None: unchanged


def draw_params(key_hash: int, view: int, ops: Augment) -> ViewParams:
    """The parameters of view ``view`` of the image whose key hashes to ``key_hash``."""
    words = np.random.Philox(key=np.array([key_hash % 2**64, view % 2**64], np.uint64))
    u = (words.random_raw(SLOTS) >> np.uint64(11)).astype(np.float64) * 2.0**-53  # [0, 1)

    def between(slot: int, factor: float) -> float:
        return (2 * float(u[slot]) - 1) * factor

    vertical, horizontal = FLIP_MODES[ops.flip] if ops.flip else (False, False)
    return ViewParams(
        flip_horizontal=horizontal and bool(u[0] < 0.5),
        flip_vertical=vertical and bool(u[1] < 0.5),
        geometric=bool(ops.rotate or ops.zoom or ops.translate),
        angle=between(2, ops.rotate) * 2 * math.pi,
        scale=1 + between(3, ops.zoom),
        shift_x=between(4, ops.translate),
        shift_y=between(5, ops.translate),
        contrast=1 + between(6, ops.contrast) if ops.contrast else None,
    )


def transform_matrix(params: ViewParams, height: int, width: int) -> np.ndarray:
    """The 8 float32 coefficients (output pixel → input pixel) of ``augment.py``'s transform:
    a scaled rotation about the centre, then the shift, in float32 and in its order. cos and
    sin are rounded from double precision, the same on every machine (TensorFlow's float32
    cos and sin are sometimes one unit in the last place off)."""
    f = np.float32
    angle, scale = f(params.angle), f(params.scale)
    cos, sin = f(math.cos(angle)) * scale, f(math.sin(angle)) * scale
    h, w = f(height), f(width)
    dx, dy = f(params.shift_x) * w, f(params.shift_y) * h
    cx, cy = (w - f(1)) / f(2), (h - f(1)) / f(2)
    return np.array([cos, -sin, cx - cos * cx + sin * cy - dx,
                     sin, cos, cy - sin * cx - cos * cy - dy, 0, 0], dtype=np.float32)


def apply_params(image: np.ndarray, params: ViewParams) -> np.ndarray:
    """One view of a float32 H×W×C image (0..255) with the given parameters."""
    image = np.asarray(image, dtype=np.float32)
    if params.flip_horizontal:
        image = image[:, ::-1]
    if params.flip_vertical:
        image = image[::-1]
    if params.geometric:
        image = projective_transform(image, transform_matrix(params, *image.shape[:2]))
    if params.contrast is not None:
        mean = image.mean(axis=(0, 1), keepdims=True, dtype=np.float64).astype(np.float32)
        image = np.clip((image - mean) * np.float32(params.contrast) + mean, 0, 255)
    return np.ascontiguousarray(image, dtype=np.float32)


def augment_view_np(image: np.ndarray, key_hash: int, view: int, ops: Augment) -> np.ndarray:
    """View ``view`` of ``image`` (float32 H×W×C, 0..255); view 0 is the image itself."""
    if view == 0:
        return np.asarray(image, dtype=np.float32)
    return apply_params(image, draw_params(key_hash, view, ops))


def views_np(image: np.ndarray, key_hash: int, count: int, ops: Augment
             ) -> tuple[np.ndarray, np.ndarray]:
    """(``count`` views stacked, their indices 0..count-1): view 0 is ``image``."""
    stacked = np.stack([augment_view_np(image, key_hash, v, ops) for v in range(count)])
    return stacked, np.arange(count, dtype=np.int64)


def reflect(coord: np.ndarray, size: int) -> np.ndarray:
    """TensorFlow's FILL_REFLECT (d c b a | a b c d | d c b a) of float32 coordinates,
    clamped to [0, size - 1], with its float32 arithmetic."""
    f = np.float32
    if size <= 1:
        return np.zeros_like(coord)
    size2 = 2 * size
    out = coord.copy()
    low = coord < 0
    if low.any():
        c = coord[low]
        c = f(size2) * np.trunc(-c / f(size2)) + c
        out[low] = np.where(c < -size, c + f(size2), -c - f(1))
    high = coord > size - 1
    if high.any():
        c = coord[high]
        c = c - f(size2) * np.trunc(c / f(size2))
        out[high] = np.where(c >= size, f(size2) - c - f(1), c)
    return np.clip(out, f(0), f(size - 1))


@lru_cache(maxsize=16)
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[:height, :width].astype(np.float32)
    ys.setflags(write=False)
    xs.setflags(write=False)
    return ys, xs


def projective_transform(image: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """``tf.raw_ops.ImageProjectiveTransformV3`` of one float32 H×W×C image: bilinear, REFLECT
    fill (fill value 0), output of the input's size; ``transform`` maps output → input."""
    height, width, channels = image.shape
    t = np.asarray(transform, dtype=np.float32)
    ys, xs = _grid(height, width)
    projection = t[6] * xs + t[7] * ys + np.float32(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = reflect((t[0] * xs + t[1] * ys + t[2]) / projection, width)
        y = reflect((t[3] * xs + t[4] * ys + t[5]) / projection, height)
    infinite = projection == 0
    if infinite.any():  # TensorFlow returns the fill value there
        x, y = np.where(infinite, 0, x), np.where(infinite, 0, y)
    x_floor, y_floor = np.floor(x), np.floor(y)
    x_ceil, y_ceil = x_floor + 1, y_floor + 1
    # one zero row and column past the edge: TensorFlow reads the fill value (0) there
    padded = np.zeros((height + 1, width + 1, channels), np.float32)
    padded[:height, :width] = image
    flat = padded.reshape(-1, channels)
    x0, y0 = x_floor.astype(np.intp), y_floor.astype(np.intp)
    rows0, rows1 = y0 * (width + 1), (y0 + 1) * (width + 1)

    def at(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return np.take(flat, rows + cols, axis=0)

    wx0, wx1 = (x_ceil - x)[..., None], (x - x_floor)[..., None]
    top = wx0 * at(rows0, x0) + wx1 * at(rows0, x0 + 1)
    bottom = wx0 * at(rows1, x0) + wx1 * at(rows1, x0 + 1)
    out = (y_ceil - y)[..., None] * top + (y - y_floor)[..., None] * bottom
    out[infinite] = 0
    return out
