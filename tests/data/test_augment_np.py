"""NumPy augmentation: deterministic draws, and TensorFlow's transform given the same parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bottleneck.data.augment_np import (
    ViewParams,
    apply_params,
    augment_view_np,
    draw_params,
    projective_transform,
    reflect,
    transform_matrix,
    views_np,
)
from bottleneck.data.augment_ops import Augment, key_seed

ALL = Augment.parse("flip=both,rotate=0.2,zoom=0.3,translate=0.2,contrast=0.5")


def pattern(height: int = 36, width: int = 44) -> np.ndarray:
    """Smooth gradients plus sharp noise: a float32 0..255 image whose every pixel differs."""
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[:height, :width]
    base = np.stack([yy * 255 / height, xx * 255 / width, (yy + xx) * 2 % 255], -1)
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.float32)


def tf_view(tf, image: np.ndarray, params: ViewParams, transform: np.ndarray | None):
    """augment.py's TensorFlow ops, applied with the given parameters."""
    out = tf.constant(image)
    if params.flip_horizontal:
        out = tf.reverse(out, [1])
    if params.flip_vertical:
        out = tf.reverse(out, [0])
    if transform is not None:
        out = tf.raw_ops.ImageProjectiveTransformV3(
            images=out[tf.newaxis], transforms=tf.constant(transform)[tf.newaxis],
            output_shape=tf.shape(out)[:2], fill_value=0.0, interpolation="BILINEAR",
            fill_mode="REFLECT")[0]
    if params.contrast is not None:
        mean = tf.reduce_mean(out, axis=[0, 1], keepdims=True)
        out = tf.clip_by_value((out - mean) * params.contrast + mean, 0.0, 255.0)
    return out.numpy()


def test_draws_are_fixed_by_key_and_view_and_stable_across_versions():
    params = draw_params(12345, 1, ALL)
    assert params.flip_horizontal and not params.flip_vertical and params.geometric
    assert params.angle == pytest.approx(-0.41948333913110625, rel=1e-12)
    assert params.scale == pytest.approx(0.7320564822650015, rel=1e-12)
    assert params.shift_x == pytest.approx(0.04392039551787211, rel=1e-12)
    assert params.shift_y == pytest.approx(-0.1824605823392357, rel=1e-12)
    assert params.contrast == pytest.approx(0.6702378220335141, rel=1e-12)
    assert draw_params(12345, 1, ALL) == params
    assert draw_params(12345, 2, ALL) != params and draw_params(12346, 1, ALL) != params
    # one slot per parameter: dropping an op leaves the other draws where they were
    fewer = draw_params(12345, 1, Augment.parse("rotate=0.2"))
    assert fewer.angle == params.angle and fewer.contrast is None and not fewer.flip_horizontal


def test_draws_stay_in_the_keras_ranges():
    draws = [draw_params(key_seed(f"img/{i}.jpg"), v, ALL) for i in range(60) for v in (1, 2, 3)]
    assert all(abs(p.angle) <= 0.2 * 2 * math.pi for p in draws)
    assert all(0.7 <= p.scale <= 1.3 and abs(p.shift_x) <= 0.2 for p in draws)
    assert all(0.5 <= p.contrast <= 1.5 for p in draws)
    flips = sum(p.flip_horizontal for p in draws)
    assert 0.3 * len(draws) < flips < 0.7 * len(draws)
    assert not any(draw_params(7, v, Augment.parse("flip")).flip_vertical for v in range(20))
    assert not draw_params(7, 1, Augment.parse("flip,contrast=0.1")).geometric


def test_reflect_is_tensorflows_half_sample_reflection():
    coords = np.array([-0.5, -1, -1.5, -4, -4.5, -9, 3, 3.5, 4, 4.5, 7.9, 8, 11.25, 1.5],
                      np.float32)
    expected = np.array([0, 0, 0.5, 3, 3, 0, 3, 3, 3, 2.5, 0, 0, 3, 1.5], np.float32)
    np.testing.assert_array_equal(reflect(coords, 4), expected)
    np.testing.assert_array_equal(reflect(coords, 1), np.zeros_like(coords))
    # whole pixels: ... a b c d | d c b a | a b c d | d c b a ..., period 2 × size
    for size in (2, 4, 5):
        whole = np.arange(-25, 26)
        period = np.where(whole % (2 * size) < size, whole % (2 * size),
                          2 * size - 1 - whole % (2 * size))
        np.testing.assert_array_equal(reflect(whole.astype(np.float32), size), period)


def test_projective_transform_equals_image_projective_transform_v3():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    images = [pattern(), pattern(1, 9), pattern(17, 5)]
    for image in images:
        transforms = [np.array([1, 0, 0, 0, 1, 0, 0, 0], np.float32),
                      np.array([1, 0.01, 3.5, -0.02, 1, -60, 0.001, 0.0005], np.float32)]
        for _ in range(12):
            params = ViewParams(geometric=True, angle=rng.uniform(-3, 3),
                                scale=rng.uniform(0.5, 1.6), shift_x=rng.uniform(-0.9, 0.9),
                                shift_y=rng.uniform(-0.9, 0.9))
            transforms.append(transform_matrix(params, *image.shape[:2]))
        for transform in transforms:
            expected = tf_view(tf, image, ViewParams(), transform)
            got = projective_transform(image, transform)
            assert np.abs(got - expected).max() <= 1e-4, transform


def test_views_equal_tensorflows_ops_given_the_same_parameters():
    tf = pytest.importorskip("tensorflow")
    image = pattern()
    for view in range(1, 25):
        params = draw_params(99, view, ALL)
        transform = transform_matrix(params, *image.shape[:2])
        expected = tf_view(tf, image, params, transform)
        # float32 means differ by rounding (NumPy accumulates in float64): ≤ 1e-3 of 255
        assert np.abs(apply_params(image, params) - expected).max() <= 1e-3


def test_the_transform_coefficients_are_augment_pys_to_a_unit_in_the_last_place():
    tf = pytest.importorskip("tensorflow")
    for view in range(1, 20):
        p = draw_params(5, view, ALL)
        height, width = 36.0, 44.0
        angle, scale = tf.constant(p.angle, tf.float32), tf.constant(p.scale, tf.float32)
        dx, dy = tf.constant(p.shift_x, tf.float32) * width, tf.constant(p.shift_y) * height
        cos, sin = tf.cos(angle) * scale, tf.sin(angle) * scale
        cx, cy = (width - 1) / 2, (height - 1) / 2
        expected = tf.stack([cos, -sin, cx - cos * cx + sin * cy - dx, sin, cos,
                             cy - sin * cx - cos * cy - dy, 0.0, 0.0]).numpy()
        np.testing.assert_allclose(transform_matrix(p, 36, 44), expected, rtol=0, atol=2e-5)


def test_views_np_stacks_the_image_and_its_views():
    image = pattern()
    stacked, indices = views_np(image, 1234, 4, ALL)
    assert stacked.shape == (4, *image.shape) and stacked.dtype == np.float32
    np.testing.assert_array_equal(indices, np.arange(4))
    np.testing.assert_array_equal(stacked[0], image)
    for view in (1, 2, 3):
        np.testing.assert_array_equal(stacked[view], augment_view_np(image, 1234, view, ALL))
        assert not np.array_equal(stacked[view], image)
        assert stacked[view].min() >= 0 and stacked[view].max() <= 255
    assert float(stacked[1].sum()) == pytest.approx(float(stacked[1].astype(np.float64).sum()))


def test_a_flip_only_view_is_an_exact_mirror():
    image = pattern()
    for view in range(1, 10):
        params = draw_params(3, view, Augment.parse("flip"))
        got = apply_params(image, params)
        np.testing.assert_array_equal(got, image[:, ::-1] if params.flip_horizontal else image)


def test_augment_keeps_its_old_import_path():
    augment = pytest.importorskip("bottleneck.data.augment")
    assert augment.Augment is Augment and augment.key_seed is key_seed
