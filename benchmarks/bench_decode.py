"""The TensorFlow-free decode path's speed on ~480×360 JPEGs (ImageNet-sized), in img/s.

    python benchmarks/bench_decode.py [--images 384] [--size 160] [--rounds 3]

Rows: simplejpeg decode only; decode + the NumPy bilinear resize (bottleneck.data.resize) and
decode + the naive NumPy resize (convert the whole image to float32, then gather) on 1 and 2
threads; the threaded loader (decode + resize + content hash, bounded prefetch); and, when
TensorFlow is installed, tf.data decode + resize with AUTOTUNE (the path it replaces).
Ratios are against tf.data (or against decode only without TensorFlow). Each figure is the
median of ``--rounds`` interleaved rounds; on a shared 2-core VM single figures are noisy.
The photos are scikit-image's sample photographs, cropped and resized to ~480×360 and saved
at quality 90 (4:2:0), so the decoder sees real JPEG statistics.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from bottleneck.data.decode import decode_bytes  # noqa: E402
from bottleneck.data.fingerprint import content_hash  # noqa: E402
from bottleneck.data.loader import ordered_map  # noqa: E402
from bottleneck.data.resize import resize_bilinear  # noqa: E402
from bottleneck.storage.atomic import write_json  # noqa: E402

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "hubble_deep_field")


def make_jpegs(folder: Path, count: int) -> list[Path]:
    """``count`` JPEGs of about 480×360 (sizes vary a little, as real photos do)."""
    import skimage.data

    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        picture = getattr(skimage.data, PHOTOS[i % len(PHOTOS)])()
        if picture.ndim == 2:
            picture = np.repeat(picture[..., None], 3, axis=-1)
        h, w = picture.shape[:2]
        top, left = rng.integers(0, h // 5), rng.integers(0, w // 5)
        crop = Image.fromarray(picture[top:top + h * 4 // 5, left:left + w * 4 // 5])
        size = (int(480 + rng.integers(-16, 17)), int(360 + rng.integers(-12, 13)))
        paths.append(folder / f"{i:04d}.jpg")
        crop.resize(size, Image.BILINEAR).save(paths[-1], quality=90)
    return paths


def naive_resize(image: np.ndarray, size: int) -> np.ndarray:
    """The first NumPy resize the issue measured: whole image to float32, then gather."""
    image = image.astype(np.float32)
    h, w = image.shape[:2]

    def axis(n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = (np.arange(size, dtype=np.float32) + 0.5) * np.float32(n_in / size) - 0.5
        x0 = np.floor(x)
        return (np.clip(x0, 0, n_in - 1).astype(int), np.clip(x0 + 1, 0, n_in - 1).astype(int),
                (x - x0).astype(np.float32))

    y0, y1, fy = axis(h)
    x0, x1, fx = axis(w)
    r0, r1 = image[y0], image[y1]
    top = r0[:, x0] + (r0[:, x1] - r0[:, x0]) * fx[None, :, None]
    bottom = r1[:, x0] + (r1[:, x1] - r1[:, x0]) * fx[None, :, None]
    return top + (bottom - top) * fy[:, None, None]


def threaded(fn: Callable[[bytes], object], threads: int) -> Callable[[list[bytes]], None]:
    def run(datas: list[bytes]) -> None:
        with ThreadPoolExecutor(threads) as pool:
            for _ in pool.map(fn, datas):
                pass
    return run


def tf_data(paths: list[Path], size: int) -> Callable[[list[bytes]], None] | None:
    try:
        import tensorflow as tf
    except ImportError:
        return None

    def run(_: list[bytes]) -> None:
        dataset = tf.data.Dataset.from_tensor_slices([str(p) for p in paths]).map(
            lambda p: tf.image.resize(tf.io.decode_image(
                tf.io.read_file(p), channels=3, expand_animations=False), (size, size)),
            num_parallel_calls=tf.data.AUTOTUNE).batch(32).prefetch(2)
        for _ in dataset:
            pass
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=384)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    size = args.size
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_jpegs(Path(tmp), args.images)
        datas = [p.read_bytes() for p in paths]
        shape = decode_bytes(datas[0]).shape
        print(f"{len(datas)} JPEGs of about {shape[1]}×{shape[0]}, resized to {size}×{size}, "
              f"{os.cpu_count()} cores")
        variants: dict[str, Callable[[list[bytes]], None]] = {}
        for threads in (1, 2):
            variants[f"simplejpeg decode only, {threads} thread(s)"] = threaded(
                decode_bytes, threads)
            variants[f"decode + NumPy resize, {threads} thread(s)"] = threaded(
                lambda d: resize_bilinear(decode_bytes(d), size), threads)
            variants[f"decode + naive NumPy resize, {threads} thread(s)"] = threaded(
                lambda d: naive_resize(decode_bytes(d), size), threads)
        def decode_resize_hash(data: bytes) -> tuple:
            pixels = decode_bytes(data)
            return resize_bilinear(pixels, size), content_hash(pixels)

        variants["loader: decode + resize + hash, 2 threads"] = lambda d: list(
            ordered_map(decode_resize_hash, d, workers=2, ahead=64))
        reference = tf_data(paths, size)
        if reference is not None:
            variants["tf.data decode + resize (AUTOTUNE)"] = reference
        for run in variants.values():  # warm-up: imports, thread pools, tf.data tracing
            run(datas[:32])
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, run in variants.items():
                start = time.perf_counter()
                run(datas)
                times[name].append(time.perf_counter() - start)
        rates = {name: len(datas) / statistics.median(t) for name, t in times.items()}
        base_name = ("tf.data decode + resize (AUTOTUNE)" if reference
                     else "simplejpeg decode only, 1 thread(s)")
        print(f"{'variant':<48} {'img/s':>8} {'ms/img':>8}  ratio to {base_name.split(' (')[0]}")
        for name, rate in rates.items():
            print(f"{name:<48} {rate:8.0f} {1000 / rate:8.2f}  {rate / rates[base_name]:.2f}")
        one = {k: v for k, v in rates.items() if k.endswith(", 1 thread(s)")}
        fast = 1000 / one["decode + NumPy resize, 1 thread(s)"]
        naive = 1000 / one["decode + naive NumPy resize, 1 thread(s)"]
        print(f"resize saves {naive - fast:.2f} ms per image against the naive one (1 thread)")
        if args.json:
            write_json(args.json, {"images": len(datas), "size": size, "img_per_s": rates,
                                   "seconds": times, "resize_saves_ms": naive - fast})


if __name__ == "__main__":
    main()
