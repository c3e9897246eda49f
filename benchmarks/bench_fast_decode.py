"""Phone-sized photos (4000×3000 JPEGs): --fast-decode against the full decode and against Keras.

Compared on the same photos, steady rates 3n / (t(4n) - t(n)), median of interleaved rounds:
  keras               image_dataset_from_directory + predict (full decode, then resize)
  tf / tf-fast        bottleneck.extract, default engine, without / with --fast-decode
  openvino[-fast]     the same with --engine openvino (fp32)
The same variants again in one process with each feature model built once (one shard of the
4n photos through run_shard): the steady state without start-up costs, whose noise the
whole-process difference t(4n) - t(n) carries.
Then how much the features move: per-image cosine between the full and the fast decode's
features, and of each with an antialiased (area) resize of the full decode, with real ImageNet
weights (EfficientNet-Lite0, offline) at the same size.

Last, the CPU side per photo on one thread (decode, resize and content hash, full and fast):
its full / fast ratio bounds what --fast-decode can gain before the model takes its share.

    python benchmarks/bench_fast_decode.py [--images 16] [--size 224] [--rounds 2]
    python benchmarks/bench_fast_decode.py --rounds 3     # issue 27's figures
    python benchmarks/bench_fast_decode.py --images 2 --size 96 --rounds 1   # a quick check

The photos are made from scikit-image's sample photographs, enlarged to 4000×3000 with
textures at full resolution and sensor-like noise (real photos have fine detail; an enlarged
small picture alone would make the full and the fast decode agree too well).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from extract_methods import engine_available, run_keras, run_ours, steady_rate, timed  # noqa: E402
from PIL import Image  # noqa: E402

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina")
TEXTURES = ("grass", "gravel", "brick")
SHAPE = (3000, 4000)  # rows, columns: 12 megapixels


def phone_photo(index: int, rng: np.random.Generator) -> Image.Image:
    """A 4000×3000 picture: a sample photograph's 4:3 crop, enlarged, with full-size texture
    and noise."""
    import skimage.data

    picture = getattr(skimage.data, PHOTOS[index % len(PHOTOS)])()
    h, w = picture.shape[:2]
    crop_h, crop_w = (h, h * 4 // 3) if w * 3 >= h * 4 else (w * 3 // 4, w)
    top, left = rng.integers(0, h - crop_h + 1), rng.integers(0, w - crop_w + 1)
    picture = Image.fromarray(picture[top:top + crop_h, left:left + crop_w])
    big = np.asarray(picture.resize(SHAPE[::-1], Image.LANCZOS), dtype=np.float32)
    texture = getattr(skimage.data, TEXTURES[index % len(TEXTURES)])().astype(np.float32)
    reps = (SHAPE[0] // texture.shape[0] + 1, SHAPE[1] // texture.shape[1] + 1)
    detail = (np.tile(texture, reps)[:SHAPE[0], :SHAPE[1]] - texture.mean()) / 255
    big *= 1 + 0.25 * detail[..., None]
    big += rng.normal(0, 3, big.shape).astype(np.float32)
    return Image.fromarray(big.clip(0, 255).astype(np.uint8))


def write_photos(root: Path, count: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(count):
        folder = root / f"class{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        phone_photo(i + seed * 1000, rng).save(folder / f"{i:04d}.jpg", quality=92)
    return root


def feature_difference(folder: Path, size: int) -> dict:
    """Per-image cosine of the fast decode's features with the full decode's, and of each with
    an antialiased (area) resize of the full decode, the alias-free picture."""
    import tensorflow as tf

    from bottleneck.data import images
    from bottleneck.extraction import ExtractConfig, FeatureExtractor

    extractor = FeatureExtractor(ExtractConfig("efficientnet_lite0", "imagenet", image_size=size))
    paths = sorted(folder.rglob("*.jpg"))
    full, fast, area = (extractor(np.stack([load(p) for p in paths])) for load in (
        lambda p: images.load_image(p, size),
        lambda p: images.load_image(p, size, fast_decode=True),
        lambda p: tf.image.resize(images.decode_file(p), (size, size), method="area").numpy()))

    def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))

    return {"images": len(paths), "fast_vs_full_min": float(cosine(fast, full).min()),
            "fast_vs_full_median": float(np.median(cosine(fast, full))),
            "full_vs_area_median": float(np.median(cosine(full, area))),
            "fast_vs_area_median": float(np.median(cosine(fast, area)))}


def cpu_split(folder: Path, size: int, rounds: int) -> dict[str, float]:
    """Milliseconds per photo on one thread of each step the decode threads run, full and fast
    decode (median of ``rounds`` interleaved passes over the photos): what bounds the fast
    decode's gain before the model takes its share. At 1/8 scale libjpeg-turbo skips most of
    the inverse DCT and the colour work, but still Huffman-decodes every coefficient."""
    import statistics
    import time

    from bottleneck.data.decode import decode_bytes
    from bottleneck.data.fingerprint import content_hash
    from bottleneck.data.resize import resize_bilinear

    datas = [p.read_bytes() for p in sorted(folder.rglob("*.jpg"))]

    def steps(decode_size: int | None) -> dict[str, float]:
        seconds = {"decode": 0.0, "resize": 0.0, "hash": 0.0}
        for data in datas:
            start = time.perf_counter()
            image = decode_bytes(data, decode_size)
            decoded = time.perf_counter()
            resize_bilinear(image, size)
            resized = time.perf_counter()
            content_hash(image)
            seconds["decode"] += decoded - start
            seconds["resize"] += resized - decoded
            seconds["hash"] += time.perf_counter() - resized
        return {k: 1000 * v / len(datas) for k, v in seconds.items()}

    steps(size)  # warm-up: compiled kernels, page cache
    runs: dict[str, list[dict[str, float]]] = {"full": [], "fast": []}
    for _ in range(rounds):
        runs["full"].append(steps(None))
        runs["fast"].append(steps(size))
    return {f"{kind}_{step}_ms": statistics.median(r[step] for r in passes)
            for kind, passes in runs.items() for step in ("decode", "resize", "hash")}


def shard_rates(folder: Path, name: str, size: int, batch: int, engines: list[str],
                rounds: int, out: Path) -> dict[str, float]:
    """Images/s of one shard of every photo through ``run_shard`` with the feature model built
    once per variant (no process start, model build or tracing in the time), median of
    ``rounds`` interleaved rounds: the steady state a long extraction runs in."""
    import statistics
    import time

    from extract_methods import ENGINES

    from bottleneck.data import open_source
    from bottleneck.extraction import ExtractConfig, FeatureExtractor
    from bottleneck.extraction.plan import plan_shards
    from bottleneck.extraction.shard import run_shard

    source = open_source(str(folder))
    plan = plan_shards(source.items(), len(source.items()))[0]
    out.mkdir(parents=True, exist_ok=True)
    variants = {}
    for engine in engines:
        kind, precision = ENGINES[engine]
        for fast in (False, True):
            variants[f"{engine}{'-fast' if fast else ''}"] = FeatureExtractor(ExtractConfig(
                name, "none", image_size=size, engine=kind, precision=precision,
                fast_decode=fast))
    rates: dict[str, list[float]] = {k: [] for k in variants}
    for extractor in variants.values():  # warm-up: tracing, page cache
        run_shard(source, extractor, plan, out, batch)
    for _ in range(rounds):
        for key, extractor in variants.items():
            start = time.perf_counter()
            rows = run_shard(source, extractor, plan, out, batch).rows
            rates[key].append(rows / (time.perf_counter() - start))
    return {k: statistics.median(v) for k, v in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16, help="n: runs on n and 4n photos.")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--backbone", default="mobilenet_v2")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2,
                        help="Interleaved rounds (issue 27's figures: 3).")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    from bottleneck._tf import import_tensorflow_quietly
    from bottleneck.backbones import get_backbone

    import_tensorflow_quietly()
    name, size, n, batch = args.backbone, args.size, args.images, args.batch_size
    work = Path(tempfile.mkdtemp(prefix="bench-fast-decode-"))
    try:
        small = write_photos(work / "x1", n, seed=0)
        large = write_photos(work / "x4", 4 * n, seed=1)
        backbone = get_backbone(name)
        methods = {"keras": lambda f: timed(run_keras, f, backbone, size, batch)}
        engines = ["tf"] + ([] if engine_available(name, size, "openvino-fp32")
                            else ["openvino-fp32"])
        for engine in engines:
            for fast in (False, True):
                key = f"{engine}{'-fast' if fast else ''}"
                methods[key] = (lambda e, fd: lambda f: timed(
                    run_ours, f, name, size, batch, work / "out", e, fast_decode=fd))(engine,
                                                                                    fast)
        for method in methods.values():
            method(small)  # warm-up: page cache, kernels, conversions
        times = {k: {"1x": [], "4x": []} for k in methods}
        for _ in range(args.rounds):
            for scale, folder in (("1x", small), ("4x", large)):
                for key, method in methods.items():
                    times[key][scale].append(method(folder))
        steady = {k: steady_rate(v, n) for k, v in times.items()}
        in_process = shard_rates(large, name, size, batch, engines, args.rounds, work / "shard")
        split = cpu_split(small, size, args.rounds)
        difference = feature_difference(small, size)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{name} @ {size}px on 4000×3000 JPEGs ({n} and {4 * n}), batch {batch}, median of "
          f"{args.rounds} interleaved rounds")
    print(f"  {'':<20} {'steady img/s':>13} {'vs keras':>9} {'vs same engine full':>20}")
    for key, rate in steady.items():
        full = steady.get(key.removesuffix("-fast")) if key.endswith("-fast") else None
        print(f"  {key:<20} {rate:13.2f} {rate / steady['keras']:9.2f} "
              f"{(f'{rate / full:20.2f}' if full else '')}")
    print(f"  in process, model built once, one shard of {4 * n} photos through run_shard "
          f"(median of {args.rounds}):")
    for key, rate in in_process.items():
        full = in_process.get(key.removesuffix("-fast")) if key.endswith("-fast") else None
        print(f"  {key:<20} {rate:13.2f} {'':>9} {(f'{rate / full:20.2f}' if full else '')}")
    totals = {kind: sum(split[f"{kind}_{step}_ms"] for step in ("decode", "resize", "hash"))
              for kind in ("full", "fast")}
    print("  per photo on one thread (ms): " + ", ".join(
        f"{kind} decode {split[f'{kind}_decode_ms']:.1f} + resize {split[f'{kind}_resize_ms']:.2f}"
        f" + hash {split[f'{kind}_hash_ms']:.2f} = {totals[kind]:.1f}" for kind in ("full", "fast"))
        + f"; full / fast = {totals['full'] / totals['fast']:.2f}x (the CPU side's bound on "
        "--fast-decode's gain, before the model's share)")
    print(f"  features (EfficientNet-Lite0 ImageNet @ {size}, {difference['images']} photos), "
          f"per-image cosine: fast vs full decode min {difference['fast_vs_full_min']:.4f}, "
          f"median {difference['fast_vs_full_median']:.4f}; against an antialiased resize: "
          f"full {difference['full_vs_area_median']:.4f}, fast "
          f"{difference['fast_vs_area_median']:.4f} (median)")
    if args.json:
        args.json.write_text(json.dumps({"steady_images_per_s": steady, "rounds_seconds": times,
                                         "in_process_images_per_s": in_process,
                                         "cpu_split_ms": split,
                                         "feature_difference": difference}, indent=2))


if __name__ == "__main__":
    main()
