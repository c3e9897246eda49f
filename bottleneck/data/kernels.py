"""The per-image CPU work compiled with numba: machine code that releases the GIL.

Why numba: it ships wheels for every platform and Python the project supports (no compiler on
the user's machine, unlike a C extension built at install), and it compiles the very loop
:mod:`.resize` documents, so the arithmetic is TensorFlow's, operation for operation, in
float32. Bit-identity holds because nothing reorders or fuses it: ``fastmath`` stays off, so
LLVM may not reassociate, and numba emits plain ``fmul``/``fadd`` (never the ``fmuladd``
intrinsic), which LLVM's default ``-fp-contract`` leaves unfused; the tests check both the
numbers (against ``tf.image.resize`` and the NumPy form) and the machine code (no FMA).

Compiled code is cached on disk (``cache=True``: ``__pycache__`` beside this file, or numba's
user cache dir where that is read-only; no cache where neither is writable), and this module
is imported only on the first resize, so commands that decode nothing never load numba.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np

_ONE = np.uint64(1)


def _jit(function: Callable[..., Any]) -> Any:
    options = {"nogil": True, "fastmath": False, "boundscheck": False, "error_model": "numpy"}
    try:
        return numba.njit(cache=True, **options)(function)
    except RuntimeError:  # no writable place for the cache: compile in each process
        return numba.njit(**options)(function)


@_jit
def resize_into(pixels: np.ndarray, rows0: np.ndarray, rows1: np.ndarray, ylerp: np.ndarray,
                cols0: np.ndarray, cols1: np.ndarray, xlerp: np.ndarray, channels: int,
                floats: np.ndarray, out: np.ndarray) -> None:
    """TensorFlow's bilinear interpolation of flat uint8 ``pixels`` (an H×W×C image) into
    flat float32 ``out`` (rows × cols × C), in place.

    ``rows0``/``rows1``: the offsets of each output row's upper and lower input rows
    (``y * W * C``); ``cols0``/``cols1``: of each output column's left and right input pixels
    (``x * C``), all uint64 (unsigned: numba adds no negative-index wraparound to them);
    ``ylerp``/``xlerp``: the float32 weights; ``floats``: ``float32(v)`` for v in 0..255 (a
    lookup is exact, and cheaper than converting). Per value, in float32 and in this order:
    ``top = tl + (tr - tl) * x``, ``bottom = bl + (br - bl) * x``, ``top + (bottom - top) * y``.
    """
    k = np.uint64(0)
    for i in range(rows0.shape[0]):
        r0, r1, y = rows0[i], rows1[i], ylerp[i]
        for j in range(cols0.shape[0]):
            tl, tr = r0 + cols0[j], r0 + cols1[j]
            bl, br = r1 + cols0[j], r1 + cols1[j]
            x = xlerp[j]
            for _ in range(channels):
                a, b = floats[pixels[tl]], floats[pixels[tr]]
                c, d = floats[pixels[bl]], floats[pixels[br]]
                top = a + (b - a) * x
                bottom = c + (d - c) * x
                out[k] = top + (bottom - top) * y
                k += _ONE
                tl += _ONE
                tr += _ONE
                bl += _ONE
                br += _ONE
