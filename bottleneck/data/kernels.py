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

    Tried for issue 27 and not faster on one core (bit-identical, timed against this form): a
    separable form (each needed input row's horizontal pass once into a row buffer, reused
    by the next output row where it shares the row, then a vectorizable vertical pass);
    per-value index tables instead of the channel loop; converting with ``float32(v)`` instead
    of the lookup; whole input rows converted to float32 first, then gathered. The four byte
    gathers per value are the cost, and numba emits no SIMD gathers for them.
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


# FarmHash Fingerprint64 (farmhashna::Hash64, Google's FarmHash, MIT), the function
# tf.fingerprint and farmhash.Fingerprint64 compute, here over a 12-byte head (the shape as
# three little-endian int32) followed by the pixels, without copying them into one buffer.
_K0 = np.uint64(0xC3A5C85C97CB3127)
_K1 = np.uint64(0xB492B66FBE98F273)
_K2 = np.uint64(0x9AE16A3B2F90404F)
_U0, _U8, _U16, _U32, _U40, _U48 = (np.uint64(v) for v in (0, 8, 16, 32, 40, 48))


@numba.njit
def _rotate(value, shift):  # noqa: ANN001, ANN202 - numba infers the uint64 types
    return (value >> np.uint64(shift)) | (value << np.uint64(64 - shift))


@numba.njit
def _shift_mix(value):  # noqa: ANN001, ANN202
    return value ^ (value >> np.uint64(47))


@numba.njit
def _len16(u, v, mul):  # noqa: ANN001, ANN202
    a = (u ^ v) * mul
    a ^= a >> np.uint64(47)
    b = (v ^ a) * mul
    b ^= b >> np.uint64(47)
    return b * mul


@numba.njit
def _fetch64(data, i):  # noqa: ANN001, ANN202 - little-endian, unaligned
    value = np.uint64(0)
    for k in range(8):
        value |= np.uint64(data[i + np.uint64(k)]) << np.uint64(8 * k)
    return value


@numba.njit
def _weak32(data, i, a, b):  # noqa: ANN001, ANN202
    w, x = _fetch64(data, i), _fetch64(data, i + _U8)
    y, z = _fetch64(data, i + _U16), _fetch64(data, i + np.uint64(24))
    a += w
    b = _rotate(b + a + z, 21)
    c = a
    a += x
    a += y
    b += _rotate(a, 44)
    return a + z, b + c


@numba.njit
def _chunk(data, i, x, y, z, v0, v1, w0, w1):  # noqa: ANN001, ANN202 - one 64-byte round
    x = _rotate(x + y + v0 + _fetch64(data, i + _U8), 37) * _K1
    y = _rotate(y + v1 + _fetch64(data, i + _U48), 42) * _K1
    x ^= w1
    y += v0 + _fetch64(data, i + _U40)
    z = _rotate(z + w0, 33) * _K1
    v0, v1 = _weak32(data, i, v1 * _K1, x + w0)
    w0, w1 = _weak32(data, i + _U32, z + w1, y + _fetch64(data, i + _U16))
    return z, y, x, v0, v1, w0, w1  # x and z swap


@_jit
def fingerprint64_long(head: np.ndarray, rest: np.ndarray, delta: int, length: int
                       ) -> np.uint64:
    """Fingerprint64 of a stream of ``length`` > 64 bytes whose first 64 are ``head`` and whose
    byte at position p >= 64 is ``rest[p - delta]`` (so the head can be assembled apart and
    the rest read in place). Needs ``length - 64 >= 64`` unless ``rest`` is the whole stream
    (``delta`` 0)."""
    x = np.uint64(81)
    y = x * _K1 + np.uint64(113)
    z = _shift_mix(y * _K2 + np.uint64(113)) * _K2
    v0 = v1 = w0 = w1 = np.uint64(0)
    x = x * _K2 + _fetch64(head, _U0)
    end = np.uint64(((length - 1) // 64) * 64)
    x, y, z, v0, v1, w0, w1 = _chunk(head, _U0, x, y, z, v0, v1, w0, w1)
    offset = np.uint64(delta)
    s = np.uint64(64)
    while s < end:
        x, y, z, v0, v1, w0, w1 = _chunk(rest, s - offset, x, y, z, v0, v1, w0, w1)
        s += np.uint64(64)
    mul = _K1 + ((z & np.uint64(0xFF)) << np.uint64(1))
    i = np.uint64(length - 64 - delta)
    w0 += np.uint64((length - 1) & 63)
    v0 += w0
    w0 += v0
    x = _rotate(x + y + v0 + _fetch64(rest, i + _U8), 37) * mul
    y = _rotate(y + v1 + _fetch64(rest, i + _U48), 42) * mul
    x ^= w1 * np.uint64(9)
    y += v0 * np.uint64(9) + _fetch64(rest, i + _U40)
    z = _rotate(z + w0, 33) * mul
    v0, v1 = _weak32(rest, i, v1 * mul, x + w0)
    w0, w1 = _weak32(rest, i + _U32, z + w1, y + _fetch64(rest, i + _U16))
    x, z = z, x
    return _len16(_len16(v0, w0, mul) + _shift_mix(y) * _K0 + z, _len16(v1, w1, mul) + x, mul)
