"""The TensorFlow-free decode path's speed on ~480×360 and ~320×240 JPEGs, in img/s.

    python benchmarks/bench_decode.py [--images 384] [--size 160] [--rounds 3]
        [--photos 480x360,320x240]

Rows, per photo size: simplejpeg decode only; decode + the compiled bilinear resize
(bottleneck.data.resize with numba, the default), + the NumPy form (the fallback) and + the
naive NumPy resize (convert the whole image to float32, then gather) on 1 and 2 threads;
decode + resize + content hash (what extraction's decode threads do per image) compiled and
in NumPy + farmhash; the threaded loader (decode + resize + hash, bounded prefetch) on 1 and 2
threads; and, when TensorFlow is installed, tf.data decode + resize with AUTOTUNE (the path
it replaces). Ratios are against tf.data (or against decode only without TensorFlow); then the
issue-27 targets: decode + resize + hash ≤ 1.25× decode alone on one thread, and the loader
on 2 threads ≥ 1.8× its 1-thread rate. Last, the compiled kernels' first-call cost in a fresh
process, with an empty compile cache (cold) and with the cache filled (warm).

Each figure is the median of ``--rounds`` interleaved rounds; on a shared 2-core VM single
figures are noisy. The photos are scikit-image's sample photographs, cropped and resized and
saved at quality 90 (4:2:0), so the decoder sees real JPEG statistics.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
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

from bottleneck.data import fingerprint  # noqa: E402
from bottleneck.data.decode import decode_bytes  # noqa: E402
from bottleneck.data.fingerprint import content_hash  # noqa: E402
from bottleneck.data.loader import ordered_map  # noqa: E402
from bottleneck.data.resize import resize_bilinear, resize_bilinear_numpy  # noqa: E402
from bottleneck.storage.atomic import write_json  # noqa: E402

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "hubble_deep_field")


def make_jpegs(folder: Path, count: int, width: int = 480, height: int = 360) -> list[Path]:
    """``count`` JPEGs of about ``width``×``height`` (sizes vary a little, as real photos
    do)."""
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
        size = (int(width + rng.integers(-width // 30, width // 30 + 1)),
                int(height + rng.integers(-height // 30, height // 30 + 1)))
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


def numpy_hash(image: np.ndarray) -> int:
    """The content hash as the fallback computes it: shape and pixels copied into one buffer,
    then farmhash (holding the GIL)."""
    data = np.concatenate([np.asarray(image.shape, "<i4").view(np.uint8), image.reshape(-1)])
    return int(fingerprint.Fingerprint64(memoryview(data)))


FIRST_CALL = """
import time
import numpy as np
start = time.perf_counter()
from bottleneck.data.fingerprint import content_hash
from bottleneck.data.resize import resize_bilinear
image = np.zeros((360, 480, 3), np.uint8)
resize_bilinear(image, 160)
content_hash(image)
print(time.perf_counter() - start)
"""


def first_call_seconds() -> dict[str, float]:
    """Seconds from import to the first resize + hash done, in a fresh process: with an empty
    numba cache (it compiles) and again with the cache it left (it loads)."""
    seconds = {}
    with tempfile.TemporaryDirectory() as cache:
        env = os.environ | {"NUMBA_CACHE_DIR": cache,
                            "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        for name in ("cold (compiles)", "warm (cached)"):
            done = subprocess.run([sys.executable, "-c", FIRST_CALL], capture_output=True,
                                  text=True, env=env, check=True)
            seconds[name] = float(done.stdout.split()[-1])
    return seconds


def measure(datas: list[bytes], paths: list[Path], size: int, rounds: int
            ) -> dict[str, float]:
    """img/s of every variant on these JPEGs (medians of interleaved rounds)."""
    variants: dict[str, Callable[[list[bytes]], None]] = {}
    for threads in (1, 2):
        variants[f"simplejpeg decode only, {threads} thread(s)"] = threaded(
            decode_bytes, threads)
        variants[f"decode + compiled resize, {threads} thread(s)"] = threaded(
            lambda d: resize_bilinear(decode_bytes(d), size), threads)
        variants[f"decode + NumPy resize, {threads} thread(s)"] = threaded(
            lambda d: resize_bilinear_numpy(decode_bytes(d), size), threads)
        variants[f"decode + naive NumPy resize, {threads} thread(s)"] = threaded(
            lambda d: naive_resize(decode_bytes(d), size), threads)

    def decode_resize_hash(data: bytes) -> tuple:
        pixels = decode_bytes(data)
        return resize_bilinear(pixels, size), content_hash(pixels)

    def decode_resize_hash_numpy(data: bytes) -> tuple:
        pixels = decode_bytes(data)
        return resize_bilinear_numpy(pixels, size), numpy_hash(pixels)

    variants["decode + resize + hash compiled, 1 thread(s)"] = threaded(decode_resize_hash, 1)
    variants["decode + resize + hash NumPy, 1 thread(s)"] = threaded(
        decode_resize_hash_numpy, 1)
    for threads in (1, 2):
        variants[f"loader: decode + resize + hash, {threads} threads"] = (
            lambda t: lambda d: list(ordered_map(decode_resize_hash, d, workers=t, ahead=64,
                                                 threaded=True)))(threads)
    reference = tf_data(paths, size)
    if reference is not None:
        variants["tf.data decode + resize (AUTOTUNE)"] = reference
    for run in variants.values():  # warm-up: imports, compiled kernels, tf.data tracing
        run(datas[:32])
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            start = time.perf_counter()
            run(datas)
            times[name].append(time.perf_counter() - start)
    return {name: len(datas) / statistics.median(t) for name, t in times.items()}


def report(rates: dict[str, float]) -> dict[str, float]:
    """Print the rows and the targets; returns the target ratios."""
    base_name = ("tf.data decode + resize (AUTOTUNE)" if "tf.data decode + resize (AUTOTUNE)"
                 in rates else "simplejpeg decode only, 1 thread(s)")
    print(f"{'variant':<48} {'img/s':>8} {'ms/img':>8}  ratio to {base_name.split(' (')[0]}")
    for name, rate in rates.items():
        print(f"{name:<48} {rate:8.0f} {1000 / rate:8.2f}  {rate / rates[base_name]:.2f}")
    decode = rates["simplejpeg decode only, 1 thread(s)"]
    targets = {
        "decode+resize+hash / decode (1 thread, compiled)":
            decode / rates["decode + resize + hash compiled, 1 thread(s)"],
        "decode+resize+hash / decode (1 thread, NumPy)":
            decode / rates["decode + resize + hash NumPy, 1 thread(s)"],
        "loader 2 threads / 1 thread": rates["loader: decode + resize + hash, 2 threads"]
            / rates["loader: decode + resize + hash, 1 threads"],
    }
    print("targets: per-image time ≤ 1.25× decode alone; loader on 2 threads ≥ 1.8× 1 thread")
    for name, value in targets.items():
        print(f"  {name:<52} {value:.2f}")
    return targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=384)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--photos", default="480x360,320x240",
                        help="WIDTHxHEIGHT of the generated JPEGs, comma-separated.")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    figures: dict = {"images": args.images, "size": args.size, "cores": os.cpu_count()}
    for photo in args.photos.split(","):
        width, height = (int(v) for v in photo.lower().split("x"))
        with tempfile.TemporaryDirectory() as tmp:
            paths = make_jpegs(Path(tmp), args.images, width, height)
            datas = [p.read_bytes() for p in paths]
            print(f"\n{len(datas)} JPEGs of about {width}×{height}, resized to "
                  f"{args.size}×{args.size}, {os.cpu_count()} cores")
            rates = measure(datas, paths, args.size, args.rounds)
        figures[photo] = {"img_per_s": rates, "targets": report(rates)}
    figures["first_call_s"] = first_call_seconds()
    print("\ncompiled kernels, first resize + hash in a fresh process (import included):")
    for name, seconds in figures["first_call_s"].items():
        print(f"  {name:<18} {seconds:6.2f} s")
    if args.json:
        write_json(args.json, figures)


if __name__ == "__main__":
    main()
