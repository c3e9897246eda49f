"""TensorFlow's own decode, resize and fingerprint: what earlier versions ran and what Keras'
``image_dataset_from_directory`` does. Kept in the tests as the reference that the
TensorFlow-free path in bottleneck/data/ must equal."""

from __future__ import annotations

from typing import Any

import numpy as np

DCT_SCALES = (8, 4, 2)


def decode_file_tf(path: Any, decode_size: int | None = None) -> Any:
    """``tf.io.decode_image`` (channels 3) of a file; a JPEG at the fast-decode DCT scale."""
    import tensorflow as tf

    data = tf.io.read_file(path)
    if decode_size is None:
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
    else:
        image = tf.cond(tf.io.is_jpeg(data), lambda: _decode_jpeg_scaled(data, decode_size),
                        lambda: tf.io.decode_image(data, channels=3, expand_animations=False))
    image.set_shape([None, None, 3])
    return image


def _decode_jpeg_scaled(data: Any, decode_size: int) -> Any:
    import tensorflow as tf

    shape = tf.io.extract_jpeg_shape(data)
    shorter = tf.minimum(shape[0], shape[1])
    fits = [shorter // scale >= decode_size for scale in DCT_SCALES] + [tf.constant(True)]
    branch = tf.argmax(tf.cast(tf.stack(fits), tf.int32), output_type=tf.int32)
    return tf.switch_case(branch, [
        (lambda s=scale: tf.io.decode_jpeg(data, channels=3, ratio=s))
        for scale in (*DCT_SCALES, 1)])


def resize_tf(image: Any, image_size: int) -> np.ndarray:
    import tensorflow as tf

    return tf.image.resize(image, (image_size, image_size), method="bilinear").numpy()


def content_hash_tf(image: Any) -> Any:
    """FarmHash Fingerprint64 of (shape as int32 bytes, pixels), as ``tf.fingerprint``."""
    import tensorflow as tf

    image = tf.convert_to_tensor(image)
    shape = tf.bitcast(tf.cast(tf.shape(image), tf.int32), tf.uint8)
    data = tf.concat([tf.reshape(shape, [-1]), tf.reshape(image, [-1])], axis=0)
    return tf.bitcast(tf.fingerprint(data[tf.newaxis])[0], tf.uint64)
