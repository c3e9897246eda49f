"""Tune the extraction loop's speed settings: each choice against the default, paired, in one run.

What it varies, on the same JPEGs (MobileNetV2 at 160 by default, one shard of all of them
through ``run_shard``, HDF5 included):
  pipeline  decode settings (bottleneck.extraction.shard.Pipeline): decode threads (1, half
            the cores, one less and one more than the cores, against the default: the cores),
            how many batches are decoded ahead of the model; on the Keras backend --backend
            (tensorflow, jax, torch), each of which sizes its own thread pools
  batch     --batch-size
  threads   TensorFlow's intra-/inter-op thread pools (each setting in a fresh process, as
            they can only be set before TensorFlow starts)
  engine    the openvino engine's inference threads (if OpenVINO is installed)
  budget    the openvino engine's threads and the decode threads together (they share the
            cores: issue 18), each pair against the defaults (2 + the cores)

This machine's speed drifts from minute to minute, so every variant runs right after the default
in each round, and what is printed is the median of those paired ratios (variant / default).
Since issue 27 the per-image CPU work after the decoder is compiled (numba) and a third as
costly, so the split between decode threads and the engine is worth re-measuring: run the
pipeline part on each backend and the budget part (OpenVINO), on both photo sizes.

    python benchmarks/tune_extract.py [--images 256] [--rounds 5] [--parts pipeline,batch,threads]
    python benchmarks/tune_extract.py --parts budget --photo 480x360 --images 384 --rounds 3
    python benchmarks/tune_extract.py --parts pipeline --backend jax --photo 480x360
    python benchmarks/tune_extract.py --parts pipeline --images 16 --rounds 1   # quick check
    python benchmarks/tune_extract.py --parts budget --images 16 --rounds 1     # quick check

Each part ends with the setting it chooses: its fastest variant where that is at least 1.05×
the default in the paired median, else the default (the split now shipped: every core to the
engine and as many decode threads).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

def pipelines(cores: int) -> dict[str, dict[str, int]]:
    """The decode settings tried: thread counts around the default (the cores) and prefetch."""
    counts = sorted({1, max(1, cores // 2), max(1, cores - 1), cores + 1} - {cores})
    return {"default": {}, **{f"decode {n} thread(s)": {"workers": n} for n in counts},
            "1 batch ahead": {"ahead": 1}, "4 batches ahead": {"ahead": 4}}


BATCHES = (16, 32, 64)
MARGIN = 1.05  # a variant replaces the default only this much faster: below is this VM's noise


def chosen(table: dict[str, dict[str, float]]) -> tuple[str, float]:
    """The part's choice: its fastest variant if its paired ratio is ≥ MARGIN, else default."""
    best = max(table, key=lambda k: table[k]["ratio"])
    ratio = table[best]["ratio"]
    return (best, ratio) if best != "default" and ratio >= MARGIN else ("default", 1.0)

THREADS = {"default": (0, 0), "intra 2 inter 1": (2, 1), "intra 1 inter 2": (1, 2),
           "intra 2 inter 2": (2, 2), "intra 1 inter 1": (1, 1)}


def one_pass(source, extractor, plan, out: Path, batch: int, pipeline=None) -> float:
    """Images/s of one shard of every image through run_shard."""
    from bottleneck.extraction.shard import PIPELINE, run_shard

    start = time.perf_counter()
    rows = run_shard(source, extractor, plan, out, batch, pipeline=pipeline or PIPELINE).rows
    return rows / (time.perf_counter() - start)


def paired(variants: dict, run, rounds: int) -> dict[str, dict[str, float]]:
    """Each variant right after the default, ``rounds`` times; median rates and ratios."""
    rates: dict[str, list[float]] = {k: [] for k in variants}
    ratios: dict[str, list[float]] = {k: [] for k in variants}
    run(variants["default"])  # warm-up: tracing, page cache
    for _ in range(rounds):
        for name, variant in variants.items():
            if name == "default":
                continue
            base = run(variants["default"])
            rate = run(variant)
            rates["default"].append(base)
            rates[name].append(rate)
            ratios[name].append(rate / base)
    return {k: {"rate": statistics.median(rates[k]),
                "ratio": statistics.median(ratios[k]) if ratios[k] else 1.0} for k in variants}


def setup(folder: Path, name: str, size: int, engine: str = "tf", threads: int | None = None):
    from bottleneck.data import open_source
    from bottleneck.extraction import ExtractConfig, FeatureExtractor
    from bottleneck.extraction.plan import plan_shards

    source = open_source(str(folder))
    extractor = FeatureExtractor(ExtractConfig(name, "none", image_size=size, engine=engine),
                                 threads=threads)
    return source, extractor, plan_shards(source.items(), len(source.items()))[0]


def tune_pipeline(folder: Path, args, out: Path) -> dict:
    from bottleneck.extraction.engines import default_threads
    from bottleneck.extraction.shard import Pipeline

    source, extractor, plan = setup(folder, args.backbone, args.image_size)
    variants = {k: Pipeline(**v) for k, v in pipelines(default_threads()).items()}
    return paired(variants, lambda p: one_pass(source, extractor, plan, out, args.batch_size, p),
                  args.rounds)


def tune_batch(folder: Path, args, out: Path) -> dict:
    source, extractor, plan = setup(folder, args.backbone, args.image_size)
    variants = {"default": args.batch_size} | {f"batch {b}": b for b in BATCHES
                                               if b != args.batch_size}
    return paired(variants, lambda b: one_pass(source, extractor, plan, out, b), args.rounds)


def tune_engine_threads(folder: Path, args, out: Path) -> dict:
    extractors = {}
    for n in (1, 2):
        source, extractors[n], plan = setup(folder, args.backbone, args.image_size, "openvino", n)
    variants = {"default": 2, "openvino 1 thread": 1}
    return paired(variants,
                  lambda n: one_pass(source, extractors[n], plan, out, args.batch_size),
                  args.rounds)


def tune_budget(folder: Path, args, out: Path) -> dict:
    from bottleneck.extraction.engines import default_threads
    from bottleneck.extraction.shard import Pipeline

    cores = default_threads()
    extractors = {}
    for n in sorted({1, cores}):
        source, extractors[n], plan = setup(folder, args.backbone, args.image_size, "openvino", n)
    variants = {"default": (cores, cores)}
    for engine in sorted({1, cores}):
        for decode in sorted({1, cores, cores + 1}):
            if (engine, decode) != (cores, cores):
                variants[f"engine {engine} + decode {decode}"] = (engine, decode)
    return paired(variants, lambda v: one_pass(source, extractors[v[0]], plan, out,
                                               args.batch_size, Pipeline(workers=v[1])),
                  args.rounds)


def child(args) -> None:
    """In a fresh process: set the thread pools, then print the best of a few passes."""
    import tensorflow as tf

    intra, inter = args.child
    tf.config.threading.set_intra_op_parallelism_threads(intra)
    tf.config.threading.set_inter_op_parallelism_threads(inter)
    source, extractor, plan = setup(args.folder, args.backbone, args.image_size)
    with tempfile.TemporaryDirectory() as out:
        one_pass(source, extractor, plan, Path(out), args.batch_size)
        print(max(one_pass(source, extractor, plan, Path(out), args.batch_size)
                  for _ in range(2)))


def tune_threads(folder: Path, args) -> dict:
    def run(split: tuple[int, int]) -> float:
        command = [sys.executable, __file__, "--child", *map(str, split), "--folder", str(folder),
                   "--backbone", args.backbone, "--image-size", str(args.image_size),
                   "--batch-size", str(args.batch_size)]
        done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO)
        return float(done.stdout.strip().splitlines()[-1])

    return paired(THREADS, run, max(1, args.rounds // 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="mobilenet_v2")
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--parts", default="pipeline,batch,threads,engine")
    parser.add_argument("--photo", default="320x240",
                        help="WIDTHxHEIGHT of the generated JPEGs (ImageNet-size: 480x360).")
    parser.add_argument("--backend", choices=("tensorflow", "jax", "torch"),
                        default="tensorflow", help="The Keras backend (openvino parts: "
                        "tensorflow only).")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    parser.add_argument("--child", type=int, nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from bottleneck.backend import set_backend

    set_backend(args.backend)  # before Keras is first imported
    if args.backend == "tensorflow":
        from bottleneck._tf import import_tensorflow_quietly

        import_tensorflow_quietly()
    if args.child:
        child(args)
        return
    from extract_methods import write_jpegs

    results = {}
    with tempfile.TemporaryDirectory(prefix="tune-extract-") as work:
        width, height = (int(v) for v in args.photo.lower().split("x"))
        folder = write_jpegs(Path(work) / "jpegs", args.images, shape=(height, width))
        out = Path(work) / "out"
        out.mkdir()
        parts = args.parts.split(",")
        if args.backend != "tensorflow":  # TF's thread pools and OpenVINO's conversion
            parts = [p for p in parts if p in ("pipeline", "batch")]
        if "pipeline" in parts:
            results["pipeline"] = tune_pipeline(folder, args, out)
        if "batch" in parts:
            results["batch"] = tune_batch(folder, args, out)
        if "threads" in parts:
            results["threads"] = tune_threads(folder, args)
        if "engine" in parts:
            try:
                results["engine"] = tune_engine_threads(folder, args, out)
            except Exception as exc:  # noqa: BLE001 - OpenVINO missing: report and go on
                print(f"engine: skipped ({exc})")
        if "budget" in parts:
            try:
                results["budget"] = tune_budget(folder, args, out)
            except Exception as exc:  # noqa: BLE001 - OpenVINO missing: report and go on
                print(f"budget: skipped ({exc})")
    print(f"\n{args.backbone} @ {args.image_size}px on {args.backend}, {args.images} JPEGs of "
          f"~{args.photo}, batch {args.batch_size}: median of {args.rounds} paired rounds "
          "(variant / default)")
    for part, table in results.items():
        print(f"\n  {part}")
        for name, figures in table.items():
            print(f"    {name:<22} {figures['rate']:8.1f} img/s  {figures['ratio']:6.2f}x")
        name, ratio = chosen(table)
        print(f"    chosen: {name}" + (f" ({ratio:.2f}x the default)" if name != "default" else
                                       f" (no variant beats it by {MARGIN:.2f}x or more)"))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
