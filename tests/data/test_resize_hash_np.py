"""The NumPy bilinear resize and content hash equal TensorFlow's, bit for bit."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from bottleneck.data.fingerprint import content_hash, content_hashes
from bottleneck.data.resize import resize_bilinear
from tests.data.encoded import photo

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
