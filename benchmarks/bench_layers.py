"""Several layers in one pass against one run per layer: whole `bottleneck extract` processes.

    one pass   bottleneck extract --layer block3_pool --layer block4_pool --layer block5_pool
    separate   three runs of bottleneck extract, one --layer each

Both on the same JPEGs, each process timed from start to exit (Python and TensorFlow start-up,
model build, decoding, compute, HDF5), interleaved over rounds, medians kept. The rows of the
per-layer caches are checked to be the same either way.

    python benchmarks/bench_layers.py [--backbone vgg19] [--size 160] [--images 64] [--rounds 2]
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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from extract_methods import write_jpegs  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def cli(folder: Path, out: Path, args: argparse.Namespace, layers: list[str]) -> float:
    """Seconds for one whole `bottleneck extract` process."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "bottleneck.cli", "extract", str(folder), "-b",
               args.backbone, "--weights", "none", "--image-size", str(args.size), "-o",
               str(out), "-q", "--engine", args.engine]
    for layer in layers:
        command += ["--layer", layer]
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO, capture_output=True,
                   env=os.environ | {"PYTHONPATH": str(REPO)})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="vgg19")
    parser.add_argument("--layers", default="block3_pool,block4_pool,block5_pool")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--engine", default="tf")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    layers = args.layers.split(",")
    work = Path(tempfile.mkdtemp(prefix="bench-layers-"))
    times: dict[str, list[float]] = {"one pass": [], "separate": []}
    try:
        folder = write_jpegs(work / "jpegs", args.images)
        for _ in range(args.rounds):
            times["one pass"].append(cli(folder, work / "one", args, layers))
            times["separate"].append(sum(cli(folder, work / f"sep-{layer}", args, [layer])
                                         for layer in layers))
        from bottleneck.cache import open_cache

        for layer in layers:  # the same rows either way
            one, sep = open_cache(work / "one" / layer), open_cache(work / f"sep-{layer}")
            a, b = one.load("train", with_paths=True), sep.load("train", with_paths=True)
            assert list(a["paths"]) == list(b["paths"])
            np.testing.assert_allclose(a["features"], b["features"], rtol=1e-4, atol=1e-5)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n{args.backbone} @ {args.size}px, {args.images} JPEGs, layers {', '.join(layers)}, "
          f"engine {args.engine}, whole processes, median of {args.rounds}")
    print(f"  one pass, {len(layers)} caches   {best['one pass']:8.1f} s")
    print(f"  {len(layers)} separate runs       {best['separate']:8.1f} s")
    print(f"  separate / one pass = {best['separate'] / best['one pass']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"seconds": times, "median": best}, indent=2))


if __name__ == "__main__":
    main()
