"""The bilinear resize (compiled and NumPy) and content hash equal TensorFlow's, bit for bit."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from bottleneck.data.fingerprint import content_hash, content_hashes
from bottleneck.data.jit import compiled
from bottleneck.data.resize import resize_bilinear, resize_bilinear_numpy
from tests.data.encoded import photo

ROOT = Path(__file__).resolve().parents[2]

SHAPES = [(123, 171), (360, 480), (480, 360), (1, 50), (50, 1), (1, 1), (7, 300), (160, 160),
          (33, 17), (161, 159)]
SIZES = [1, 2, 31, 160, 224]


def test_resize_equals_tf_image_resize_exactly():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (*shape, 3), dtype=np.uint8) for shape in SHAPES]
    images.append(photo())
    for image in images:
        for size in SIZES:
            expected = tf.image.resize(image, (size, size), method="bilinear").numpy()
            got = resize_bilinear(image, size)
            assert got.dtype == np.float32 and got.shape == (size, size, 3)
            assert np.abs(got - expected).max() == 0.0, (image.shape, size)


def same_bits(got: np.ndarray, expected: np.ndarray) -> bool:
    return got.dtype == expected.dtype == np.float32 and got.shape == expected.shape and (
        got.view(np.uint32) == expected.view(np.uint32)).all()


def test_the_compiled_resize_is_used_and_equals_tf_on_random_shapes_both_ways():
    tf = pytest.importorskip("tensorflow")
    assert compiled() is not None  # numba is a dependency: the fast path runs
    rng = np.random.default_rng(7)
    for _ in range(60):  # up- and down-scaling, odd sizes, thin images, every channel count
        height, width = (int(v) for v in rng.integers(1, 420, 2))
        channels = int(rng.choice([1, 3, 3, 4]))
        size = int(rng.integers(1, 300))
        image = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
        expected = tf.image.resize(image, (size, size), method="bilinear").numpy()
        got = resize_bilinear(image, size)
        assert np.abs(got - expected).max() == 0.0, (image.shape, size)
        assert same_bits(got, expected), (image.shape, size)
        assert same_bits(resize_bilinear_numpy(image, size), expected), (image.shape, size)


def test_the_compiled_resize_has_no_fused_multiply_add_and_releases_the_gil():
    kernels = compiled()
    resize_bilinear(np.zeros((5, 7, 3), np.uint8), 3)  # compiled (or loaded from the cache)
    assert kernels.resize_into.targetoptions["nogil"]
    assert not kernels.resize_into.targetoptions.get("fastmath")
    # the cached machine code cannot be inspected: compile the same function, same options
    numba = pytest.importorskip("numba")
    signature = kernels.resize_into.signatures[0]  # other tests may have compiled more
    options = {k: v for k, v in kernels.resize_into.targetoptions.items() if k != "nopython"}
    fresh = numba.njit(**options)(kernels.resize_into.py_func)
    fresh.compile(signature)
    assembly = fresh.inspect_asm(signature)
    assert re.search(r"\bv?mulss\b", assembly)  # the multiplies are there, plain
    assert not re.search(r"\bv?f(n)?m(add|sub)\w*", assembly)


def test_resize_into_a_given_array_and_of_other_dtypes():
    image = np.random.default_rng(4).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    out = np.full((20, 20, 3), -1, np.float32)
    assert resize_bilinear(image, 20, out=out) is out
    assert same_bits(out, resize_bilinear_numpy(image, 20))
    with pytest.raises(ValueError, match="out must be"):
        resize_bilinear(image, 20, out=np.empty((20, 20, 3), np.float64))
    floats = image.astype(np.float32)  # not uint8: the NumPy form, as before
    np.testing.assert_array_equal(resize_bilinear(floats, 20), resize_bilinear(image, 20))


def test_without_numba_the_resize_warns_once_and_gives_the_same_pixels():
    code = """
import sys, warnings
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == 'numba':
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import numpy as np
from bottleneck.data.resize import resize_bilinear
image = np.arange(7 * 9 * 3, dtype=np.uint8).reshape(7, 9, 3)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    first = resize_bilinear(image, 5)
    second = resize_bilinear(image, 4)
    from bottleneck.data.fingerprint import content_hash
    digest = content_hash(np.arange(40 * 30 * 3, dtype=np.uint8).reshape(40, 30, 3))
print(len(caught), 'numba is unavailable' in str(caught[0].message), digest)
sys.stdout.buffer.write(first.tobytes())
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=ROOT,
                            timeout=120)
    line, _, pixels = result.stdout.partition(b"\n")
    digest = content_hash(np.arange(40 * 30 * 3, dtype=np.uint8).reshape(40, 30, 3))
    assert line.decode() == f"1 True {digest}", result.stderr.decode()
    image = np.arange(7 * 9 * 3, dtype=np.uint8).reshape(7, 9, 3)
    assert pixels == resize_bilinear(image, 5).tobytes()


def test_numba_loads_only_when_pixels_are_resized():
    code = """
import sys
import numpy as np
from bottleneck.data import images
before = 'numba' in sys.modules
images.resize(np.zeros((4, 4, 3), np.uint8), 2)
print(before, 'numba' in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.stdout.split() == ["False", "True"], result.stderr


def test_resize_at_the_same_size_is_the_image_and_other_channel_counts_work():
    image = np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    np.testing.assert_array_equal(resize_bilinear(image, 40), image.astype(np.float32))
    grey = image[..., :1]
    np.testing.assert_array_equal(resize_bilinear(grey, 17), resize_bilinear(image, 17)[..., :1])
    with pytest.raises(ValueError):
        resize_bilinear(image[..., 0], 10)


def test_resize_in_threads_gives_each_thread_its_own_answer():
    rng = np.random.default_rng(2)
    work = [(rng.integers(0, 256, (90 + i, 120 - i, 3), dtype=np.uint8), 20 + 7 * (i % 3))
            for i in range(24)]
    expected = [resize_bilinear(image, size).copy() for image, size in work]
    results: dict[int, np.ndarray] = {}

    def run(offset: int) -> None:
        for i in range(offset, len(work), 4):
            results[i] = resize_bilinear(*work[i])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, want in enumerate(expected):
        np.testing.assert_array_equal(results[i], want)


def test_content_hash_equals_tf_fingerprint_of_shape_and_pixels():
    tf = pytest.importorskip("tensorflow")
    from tests.tf_reference import content_hash_tf

    rng = np.random.default_rng(3)
    shapes = [(1, 1, 3), (2, 3, 3), (7, 5, 3), (33, 17, 3), (120, 160, 3), (3, 1000, 3)]
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in shapes for _ in range(8)]
    images += [np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8), photo()]
    for image in images:
        assert content_hash(image) == int(content_hash_tf(tf.constant(image)).numpy())
    np.testing.assert_array_equal(
        content_hashes(images[:5]),
        np.array([content_hash_tf(tf.constant(i)).numpy() for i in images[:5]], np.uint64))


def test_the_compiled_content_hash_equals_farmhash_at_every_length_without_a_copy():
    from farmhash import Fingerprint64

    kernels = compiled()
    assert kernels.fingerprint64_long.targetoptions["nogil"]
    rng = np.random.default_rng(5)
    # 12 bytes of shape + pixels: around 128 (where the compiled form starts), 64-byte
    # boundaries of the rounds, and photo sizes
    shapes = [(1, n, 1) for n in range(100, 260)] + [(7, 11, 3), (360, 480, 3), (97, 3, 4)]
    for shape in shapes:
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        data = np.concatenate([np.asarray(shape, "<i4").view(np.uint8), image.reshape(-1)])
        assert content_hash(image) == Fingerprint64(memoryview(data)), shape
        flat = image.reshape(-1)
        if data.size >= 128:  # the kernel reads the pixels in place, after a 64-byte head
            assert kernels.fingerprint64_long(data[:64].copy(), flat, 12, data.size) \
                == Fingerprint64(memoryview(data))


def test_content_hash_is_stable_without_tensorflow_and_sees_shape_and_pixels():
    zeros = np.zeros((2, 3, 3), np.uint8)
    assert content_hash(zeros) == 4547383757547620627  # tf.fingerprint's value for it
    assert content_hash(zeros) == content_hash(zeros.copy())
    assert content_hash(zeros) != content_hash(np.zeros((3, 2, 3), np.uint8))  # same bytes
    changed = zeros.copy()
    changed[1, 2, 0] = 1
    assert content_hash(changed) != content_hash(zeros)
    view = np.zeros((4, 6, 3), np.uint8)[::2, ::2]  # not contiguous: hashed as its pixels
    assert content_hash(view) == content_hash(zeros)
    with pytest.raises(ValueError):
        content_hash(zeros.astype(np.float32))
