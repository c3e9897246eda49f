"""How alike two images' pixels are: the near-duplicate check's evidence (see
:mod:`bottleneck.benching.leaks`).

Both images in grey, kept at most ``PIXEL_SIDE`` a side, are compared on a common square grid
(their smaller side, at most ``PIXEL_SIDE``: Fashion-MNIST's 28² stays whole, so a copy moved
by one pixel realigns exactly): the centred cosine of one image's centre against each window
of the other moved by up to ``PIXEL_SHIFT`` pixels, the best. Centring makes it blind to
brightness and contrast; the shift, to a copy moved a little.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache

import numpy as np

PIXEL_SIDE = 32  # the largest grid the pixels are compared on
PIXEL_SHIFT = 1  # grid pixels a copy may be moved by


def grey_image(image: np.ndarray) -> np.ndarray:
    """An image (uint8 H×W×3) in grey (uint8), box-reduced to ``PIXEL_SIDE`` a side at most:
    what :func:`grey_similarity` compares (1 KiB a row at most)."""
    from PIL import Image

    grey = Image.fromarray(np.asarray(image, np.uint8)).convert("L")
    if max(grey.size) > PIXEL_SIDE:
        grey = grey.resize((min(grey.width, PIXEL_SIDE), min(grey.height, PIXEL_SIDE)),
                           Image.Resampling.BOX)
    return np.asarray(grey)


def square_grid(grey: np.ndarray, side: int) -> np.ndarray:
    """A grey image (:func:`grey_image`) as float32, box-resized to ``side``² if it is not."""
    from PIL import Image

    values = grey.astype(np.float32)
    if grey.shape == (side, side):
        return values
    return np.asarray(Image.fromarray(values, mode="F").resize((side, side),
                                                               Image.Resampling.BOX))


_LEVELS = np.arange(256, dtype=np.uint32)
_LUMA = (_LEVELS * 19595 + 0x8000, _LEVELS * 38470, _LEVELS * 7471)  # Pillow's "L", × 2^16


@lru_cache(maxsize=64)
def _box_matrix(size: int, side: int) -> np.ndarray:
    """``side`` × ``size``: Pillow's box resize of a line of ``size`` pixels to ``side`` (it
    is linear and separable: the columns are its answers to single lit pixels)."""
    from PIL import Image

    lines = [np.asarray(Image.fromarray(row[None, :], mode="F").resize(
        (side, 1), Image.Resampling.BOX))[0] for row in np.eye(size, dtype=np.float32)]
    return np.stack(lines, axis=1).astype(np.float32)


def grey_grids(images: list[np.ndarray | None], side: int) -> np.ndarray:
    """``square_grid(grey_image(image), side)`` of each image (N × side × side float32;
    zero where the image is None), images of one shape at a time: Pillow's grey
    (ITU-R 601-2 luma, as ``convert("L")``) and box resize as integer and matrix
    arithmetic. Images over ``PIXEL_SIDE`` a side, or of other layouts, go one by one."""
    out = np.zeros((len(images), side, side), np.float32)
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for n, image in enumerate(images):
        if image is not None:
            groups[np.shape(image)].append(n)
    for shape, members in groups.items():
        if max(shape[:2]) > PIXEL_SIDE or not (len(shape) == 2 or
                                                (len(shape) == 3 and shape[2] in (3, 4))):
            for n in members:
                out[n] = square_grid(grey_image(images[n]), side)  # type: ignore[arg-type]
            continue
        stack = np.stack([np.asarray(images[n], np.uint8) for n in members])
        if stack.ndim == 4:
            red, green, blue = _LUMA
            stack = ((red[stack[..., 0]] + green[stack[..., 1]] + blue[stack[..., 2]])
                     >> 16).astype(np.uint8)
        height, width = shape[:2]
        across = stack.reshape(-1, width).astype(np.float32) @ _box_matrix(width, side).T
        down = across.reshape(-1, height, side).transpose(0, 2, 1).reshape(-1, height) @ \
            _box_matrix(height, side).T
        out[members] = down.reshape(-1, side, side).transpose(0, 2, 1)
    return out


def centred(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows minus their mean, scaled to length 1 (flat rows stay zero), and which are not
    flat."""
    rows = rows - rows.mean(axis=-1, keepdims=True)
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1), norms[..., 0] > 0


def grey_similarity(x: np.ndarray, y: np.ndarray) -> float:
    """Centred cosine of two grey images (:func:`grey_image`) on a common square grid (their
    smaller side, at most ``PIXEL_SIDE``): ``x``'s centre against each window of ``y`` moved
    by up to ``PIXEL_SHIFT`` pixels, the best. 1 for two flat images, 0 for one."""
    from numpy.lib.stride_tricks import sliding_window_view

    side = max(2 * PIXEL_SHIFT + 2, min(PIXEL_SIDE, *x.shape, *y.shape))
    a, b = square_grid(x, side), square_grid(y, side)
    n = side - 2 * PIXEL_SHIFT
    centre, live = centred(a[PIXEL_SHIFT:PIXEL_SHIFT + n, PIXEL_SHIFT:PIXEL_SHIFT + n].ravel())
    windows, alive = centred(sliding_window_view(b, (n, n)).reshape(-1, n * n))
    if not live or not alive.any():
        return 1.0 if not live and not alive.any() else 0.0
    return float(np.clip((windows @ centre).max(), -1.0, 1.0))


def pixel_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """How alike two images' pixels are (:func:`grey_similarity`): near 1 for the same
    picture however it was re-encoded, slightly resized, moved, brightened or noised."""
    return grey_similarity(grey_image(a), grey_image(b))
