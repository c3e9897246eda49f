"""The confusion matrix PNG of a model directory, drawn with Pillow.

Why not matplotlib here (the report's page draws its figures with it): a scikit-learn ``fit``
on a small cache is done in about a second, and importing matplotlib and laying out its first
figure would add half of that to every fit. A heat map of counts is a grid of squares and
numbers, which Pillow (already loaded to read images) draws in milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CELL = 44  # pixels per cell, each with its count, up to NUMBERED classes
NUMBERED = 40
GRID = 2000  # beyond NUMBERED classes, the grid's side in pixels at most (1000: 2 px a cell)
NAMED = 12  # the smallest cell that still gets its class names on the axes
WHITE, BLUE = np.array([247, 251, 255]), np.array([8, 48, 107])  # the ends of "Blues"


def cell_size(n: int) -> int:
    """Pixels per cell for ``n`` classes: ``CELL`` with counts written in, else smaller so
    that the grid stays within ``GRID`` pixels (1000 classes drawn at 44 px were 6 GB)."""
    return CELL if n <= NUMBERED else max(1, min(CELL, GRID // n))


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _text_width(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont) -> int:
    left, _, right, _ = draw.textbbox((0, 0), text, font=font)
    return int(right - left)


def cell_colour(count: float, largest: float) -> tuple[int, int, int]:
    """White for 0, dark blue for the largest count, linear between."""
    share = count / largest if largest else 0.0
    return tuple(int(round(c)) for c in WHITE + (BLUE - WHITE) * share)  # type: ignore[return-value]


def confusion_png(matrix: Sequence[Sequence[int]], classes: Sequence[str], path: Path,
                  title: str) -> Path:
    """Write the confusion matrix (rows: true class, columns: predicted) as a PNG heat map
    with ``title`` above; each count in its cell up to ``NUMBERED`` classes, the class names
    on both axes while a cell is ``NAMED`` pixels or more."""
    counts = np.asarray(matrix, dtype=float).reshape(len(classes), len(classes))
    n = len(classes)
    cell = cell_size(n)
    named = cell >= NAMED
    font, small = _font(14), _font(12)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_width = max([_text_width(probe, str(c), small) for c in classes if named] + [40]) + 12
    top, left = 56, label_width + 24
    width = max(left + n * cell + 16, _text_width(probe, title, font) + 24)
    image = Image.new("RGB", (width, top + n * cell + label_width + 36), "white")
    draw = ImageDraw.Draw(image)
    draw.text((12, 10), title, fill="black", font=font)
    largest = float(counts.max()) if counts.size else 0.0
    share = counts / largest if largest else np.zeros_like(counts)
    colours = np.round(WHITE + (BLUE - WHITE) * share[..., None]).astype(np.uint8)
    image.paste(Image.fromarray(np.repeat(np.repeat(colours, cell, axis=0), cell, axis=1)),
                (left, top))
    for row in range(n if cell == CELL else 0):  # counts, where a cell holds one
        for col in range(n):
            x, y = left + col * cell, top + row * cell
            ink = "white" if int(colours[row, col].sum()) < 384 else "black"
            draw.text((x + cell / 2, y + cell / 2), str(int(counts[row, col])), fill=ink,
                      font=small, anchor="mm")
    for row in range(n if named else 0):
        draw.text((left - 8, top + row * cell + cell / 2), str(classes[row]), fill="black",
                  font=small, anchor="rm")
    for col, name in enumerate(classes if named else []):  # predicted, turned to read up
        label = Image.new("RGBA", (label_width, 18), (255, 255, 255, 0))
        ImageDraw.Draw(label).text((label_width - 4, 9), str(name), fill="black", font=small,
                                   anchor="rm")
        turned = label.rotate(90, expand=True)
        image.paste(turned, (left + col * cell + (cell - 18) // 2, top + n * cell + 6), turned)
    draw.text((left + n * cell / 2, image.height - 14), "predicted", fill="black", font=small,
              anchor="mm")
    draw.text((8, top - 18), "rows: true class", fill="black", font=small)
    image.save(path, format="PNG")  # into the model's staging folder, renamed whole
    return Path(path)
