"""How alike two images' pixels are: the near-duplicate check's evidence (see
:mod:`bottleneck.benching.leaks`).

Both images in grey, kept at most ``PIXEL_SIDE`` a side, are compared on a common square grid
(their smaller side, at most ``PIXEL_SIDE``: Fashion-MNIST's 28² stays whole, so a copy moved
by one pixel realigns exactly): the centred cosine of one image's centre against each window
of the other moved by up to ``PIXEL_SHIFT`` pixels, the best. Centring makes it blind to
brightness and contrast; the shift, to a copy moved a little.
"""

from __future__ import annotations

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
