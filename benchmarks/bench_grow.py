"""Extraction that grows: the Ray executor against the local one, and extending a cache.

On the same PNG folder (Fashion-MNIST images written as files, or generated ones):
  (a) ``--executor local`` against ``--executor ray --workers W`` (whole process each), and
      Ray's fixed start-up cost (a local cluster plus W actors that build the model) measured
      as the ray run on a tiny folder;
  (b) a full extraction of N images, a no-op re-run of the finished cache (the fixed cost:
      process start, model build, planning), and an extend after 1% new images; the extend's
      net time (minus the no-op) against the full run's net time (minus the no-op);
  (c) the same as (b) inside one process (``bottleneck.extract`` called three times), so that
      process start-up noise does not swamp a one-second difference, with where the extend's
      time goes (``--profile``).
Rounds interleave the variants; medians are printed, with ratios.

    python benchmarks/bench_grow.py [--images 10000] [--grow 0.01] [--rounds 3] [--workers 2]
        [--only in-process] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
BN = [sys.executable, "-m", "bottleneck.cli"]


def write_pngs(root: Path, count: int, offset: int = 0) -> None:
    """Fashion-MNIST's train images as 28×28 PNGs (generated shapes if it is not installed)."""
    try:
        sys.path.insert(0, str(REPO))
        from bottleneck.data.arrays import load_fashion_mnist_arrays

        arrays, _ = load_fashion_mnist_arrays(None)
        pixels, labels = arrays["train"]
    except (ImportError, OSError, click.ClickException):  # no dataset: noise with labels
        rng = np.random.default_rng(0)
        pixels = rng.integers(0, 256, (count + offset, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, count + offset)
    for i in range(offset, offset + count):
        folder = root / f"class{int(labels[i])}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels[i]).save(folder / f"{i:06d}.png")


def extract(folder: Path, out: Path, args: argparse.Namespace, *extra: str) -> float:
    command = [*BN, "extract", str(folder), "-b", args.backbone, "--weights", "none",
               "--image-size", str(args.image_size), "--shard-size", str(args.shard_size),
               "--batch-size", "64", "-q", "-o", str(out), *extra]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO,
                          env=os.environ | {"RAY_USAGE_STATS_ENABLED": "0"})
    if done.returncode:
        raise SystemExit(done.stderr)
    return time.perf_counter() - start


def in_process(big: Path, work: Path, args: argparse.Namespace, new_count: int) -> dict:
    """(c): full, no-op and extend as calls of ``bottleneck.extract`` in this process."""
    import bottleneck

    def run(folder: Path, out: Path) -> float:
        start = time.perf_counter()
        bottleneck.extract(str(folder), backbone=args.backbone, weights="none",
                           image_size=args.image_size, shard_size=args.shard_size,
                           batch_size=64, out=out, progress=False)
        return time.perf_counter() - start

    full, noop, extend = [], [], []
    profile = None
    for r in range(args.rounds):
        out, grown = work / f"p{r}", work / f"pbig{r}"
        shutil.copytree(big, grown)
        full.append(run(grown, out))
        noop.append(run(grown, out))
        write_pngs(grown, new_count, offset=args.images)
        if args.profile and r == args.rounds - 1:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
            extend.append(run(grown, out))
            profiler.disable()
            profile = pstats.Stats(profiler)
        else:
            extend.append(run(grown, out))
        shutil.rmtree(grown)
        shutil.rmtree(out)
    f, n, e = (statistics.median(x) for x in (full, noop, extend))
    ratio = (e - n) / (f - n)
    print(f"(c) in one process, {args.images} PNGs + {new_count} new, median of {args.rounds}: "
          f"full {f:.2f} s, no-op {n:.2f} s, extend {e:.2f} s")
    print(f"    extend net / full net = ({e:.2f} - {n:.2f}) / ({f:.2f} - {n:.2f}) = "
          f"{ratio:.3f} (target <= 0.03); the new images inside a full run: "
          f"{(f - n) * new_count / args.images:.2f} s")
    if profile is not None:
        profile.sort_stats("cumulative").print_stats(25)
    return {"full_s": f, "noop_s": n, "extend_s": e, "extend_net_over_full_net": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--grow", type=float, default=0.01, help="share of new images")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--executor-images", type=int, default=2000,
                        help="images for the local-vs-ray comparison")
    parser.add_argument("--backbone", default="mobilenet_v2")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--shard-size", type=int, default=1024)
    parser.add_argument("--only", choices=["in-process"], help="run (c) alone")
    parser.add_argument("--profile", action="store_true", help="(c): profile the last extend")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-grow-"))
    figures: dict = {"config": {k: str(v) for k, v in vars(args).items()}}
    new_count = max(1, int(args.images * args.grow))
    try:
        if args.only == "in-process":
            write_pngs(work / "big", args.images)
            figures["in_process"] = in_process(work / "big", work, args, new_count)
        else:
            both_sections(work, args, new_count, figures)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def both_sections(work: Path, args: argparse.Namespace, new_count: int, figures: dict) -> None:
    """(a) and (b), whole processes, then (c)."""
    small, tiny = work / "small", work / "tiny"
    write_pngs(small, args.executor_images)
    write_pngs(tiny, 8)
    times: dict[str, list[float]] = {"local": [], "ray": [], "ray_tiny": []}
    for r in range(args.rounds):
        times["local"].append(extract(small, work / f"l{r}", args))
        times["ray"].append(extract(small, work / f"r{r}", args, "--executor", "ray",
                                    "--workers", str(args.workers)))
        times["ray_tiny"].append(extract(tiny, work / f"t{r}", args, "--executor", "ray",
                                         "--workers", str(args.workers)))
    med = {k: statistics.median(v) for k, v in times.items()}
    figures["executors"] = med | {"ray_over_local": med["ray"] / med["local"]}
    print(f"(a) {args.executor_images} PNGs, {args.backbone}@{args.image_size}, whole process,"
          f" median of {args.rounds}:")
    print(f"    local {med['local']:.1f} s | ray --workers {args.workers} {med['ray']:.1f} s"
          f" | ray/local {med['ray'] / med['local']:.2f}x | ray on 8 images (fixed cost) "
          f"{med['ray_tiny']:.1f} s")

    big = work / "big"
    write_pngs(big, args.images)
    full, noop, extend = [], [], []
    for r in range(args.rounds):
        out = work / f"g{r}"
        grown = work / f"big{r}"
        shutil.copytree(big, grown)
        full.append(extract(grown, out, args))
        noop.append(extract(grown, out, args))
        write_pngs(grown, new_count, offset=args.images)
        extend.append(extract(grown, out, args))
        shutil.rmtree(grown)
        shutil.rmtree(out)
    f, n, e = (statistics.median(x) for x in (full, noop, extend))
    ratio = (e - n) / (f - n)
    figures["incremental"] = {"full_s": f, "noop_s": n, "extend_s": e,
                              "new_images": new_count, "extend_net_over_full_net": ratio}
    print(f"(b) {args.images} PNGs + {new_count} new ({args.grow:.0%}), median of "
          f"{args.rounds}: full {f:.1f} s, no-op re-run {n:.1f} s, extend {e:.1f} s")
    print(f"    extend net / full net = ({e:.1f} - {n:.1f}) / ({f:.1f} - {n:.1f}) = "
          f"{ratio:.3f} (target <= 0.03)")
    figures["in_process"] = in_process(big, work, args, new_count)


if __name__ == "__main__":
    main()
