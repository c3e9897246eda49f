"""The content hash of decoded pixels, without TensorFlow, equal to ``content_hash_tf``.

``content_hash_tf`` is ``tf.fingerprint`` (FarmHash Fingerprint64) of the image's shape as
three little-endian int32 followed by its uint8 pixels; ``farmhash.Fingerprint64`` (from the
``cityhash`` package, MIT) computes the same function, so caches keep their values. Where
numba loads, the compiled form (:mod:`.kernels`) hashes the pixels in place, without copying
them behind the shape and without holding the GIL; farmhash is the fallback.
"""

from __future__ import annotations

import numpy as np

from bottleneck.data.jit import compiled

try:
    from farmhash import Fingerprint64
except ImportError:  # pyfarmhash installs a module of the same name, with lower-case names
    from farmhash import fingerprint64 as Fingerprint64  # noqa: N812

HASH_NAME = "farmhash-fingerprint64(int32 shape + uint8 pixels)"


def content_hash(image: np.ndarray) -> int:
    """A 64-bit fingerprint (0 ≤ value < 2**64) of uint8 pixels and their shape."""
    if image.dtype != np.uint8:
        raise ValueError(f"content_hash needs uint8 pixels, got {image.dtype}")
    shape = np.asarray(image.shape, dtype="<i4").view(np.uint8)
    pixels = np.ascontiguousarray(image).reshape(-1)
    kernels = compiled()
    length = shape.size + pixels.size
    if kernels is None or length < 128:
        data = np.concatenate([shape, pixels])
        return int(Fingerprint64(memoryview(data)))
    head = np.concatenate([shape, pixels[:64 - shape.size]])  # the rest is read in place
    return int(kernels.fingerprint64_long(head, pixels, shape.size, length))


def content_hashes(images: list[np.ndarray]) -> np.ndarray:
    """:func:`content_hash` of each image, as the uint64 column a shard stores."""
    return np.array([content_hash(image) for image in images], dtype=np.uint64)
