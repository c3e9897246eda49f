"""End-to-end extraction speed from JPEG files, side by side in one run, printed as ratios.

Compared, for each backbone, on the same images (see extract_methods.py):
  tutorial        PIL into one array + model.predict
  keras           image_dataset_from_directory + model.predict (the idiomatic way)
  tf              bottleneck.extract, default engine (Keras on TensorFlow)
  jax             the same with Keras on JAX (in a worker process started once: Keras's
                  backend is fixed per process), beside ceiling-jax, so the ratio to keras
                  reads against how fast JAX runs the model itself (ceiling-jax / ceiling-tf)
  previous-tf     the same, as the previous version did it: tf.data decoding (--previous REF)
  openvino-fp32   bottleneck.extract --engine openvino (exact)
  openvino-bf16   bottleneck.extract --engine openvino --precision bf16 (CPUs with bf16 only)
  openvino-int8   bottleneck.extract --engine openvino --precision int8 (VNNI/AMX-INT8 CPUs;
                  quantized once per image set, on its own images, during the warm-up)
  ceiling-ENGINE  that engine's feature model on random tensors (compute only, no I/O)
Each with its steady rate, its ratio to keras and to its own engine's ceiling, and the GFLOP/s
it reaches beside a float32 matmul's. Then peak RSS of `bottleneck extract` at 1x and 4x.

    python benchmarks/bench_extract.py [--backbones mobilenet_v2:160:256,...] [--rounds 3]
        [--engines tf,jax,openvino-fp32,openvino-bf16,openvino-int8] [--photo 480x360]
        [--previous 0565e81]
    python benchmarks/bench_extract.py --backbones mobilenet_v2:160:256 --photo 480x360 \
        --previous '' --engines tf,jax,openvino-fp32,openvino-bf16,openvino-int8
        # issue 27's targets: tf, jax and OpenVINO against Keras' pipeline
    python benchmarks/bench_extract.py --backbones mobilenet_v2:96:16 --rounds 1 \
        --previous '' --engines tf,jax,openvino-fp32     # a quick check that it runs

Every method's time includes building its model, as a user pays it; each method runs on n
and on 4n images, so the steady rate 3n / (t(4n) - t(n)) leaves those fixed costs out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from backend_worker import BackendWorker, backend_missing  # noqa: E402
from extract_methods import (  # noqa: E402
    PREVIOUS,
    engine_available,
    matmul_gflops,
    model_gflops,
    previous_version,
    run_ceiling,
    run_keras,
    run_ours,
    run_previous,
    run_tutorial,
    steady_rate,
    timed,
    write_jpegs,
)

REPO = Path(__file__).resolve().parents[1]


def peak_rss_mb(folder: Path, name: str, size: int, batch: int, out: Path) -> float:
    """Peak RSS of a fresh process running `bottleneck extract`."""
    code = (
        "import resource, shutil, bottleneck\n"
        f"shutil.rmtree({str(out)!r}, ignore_errors=True)\n"
        f"bottleneck.extract({str(folder)!r}, backbone={name!r}, weights='none', "
        f"image_size={size}, out={str(out)!r}, batch_size={batch}, shard_size=256, "
        "progress=False)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)
    return float(run.stdout.strip().splitlines()[-1])


def measure(name: str, size: int, n: int, batch: int, engines: list[str], rounds: int,
            work: Path, photo: tuple[int, int], previous: Path | None) -> dict:
    """Every method on n and 4n JPEGs, interleaved over ``rounds``; steady rates and ratios."""
    from bottleneck.backbones import get_backbone

    backbone = get_backbone(name)
    small = write_jpegs(work / f"{name}-x1", n, shape=photo)
    large = write_jpegs(work / f"{name}-x4", 4 * n, seed=1, shape=photo)
    methods = {"tutorial": lambda f, c: timed(run_tutorial, f, backbone, size, batch),
               "keras": lambda f, c: timed(run_keras, f, backbone, size, batch)}
    if previous is not None:
        methods["previous-tf"] = lambda f, c: timed(run_previous, f, name, size, batch,
                                                    work / "previous", previous)
    worker = BackendWorker("jax") if "jax" in engines else None
    if worker is not None:
        methods["jax"] = lambda f, c: worker.ours(f, name, size, batch, work / "ours-jax")
        methods["ceiling-jax"] = lambda f, c: worker.ceiling(name, size, batch, c)
    for engine in [x for x in engines if x != "jax"]:
        methods[engine] = (lambda e: lambda f, c: timed(run_ours, f, name, size, batch,
                                                        work / "ours", e))(engine)
        methods[f"ceiling-{engine}"] = (lambda e: lambda f, c: run_ceiling(
            name, size, batch, c, e, small))(engine)
    try:
        for key, method in methods.items():  # warm the page cache, kernels, conversions
            method(small, n)
            if key.endswith("int8"):  # and int8's quantization, once per image set
                method(large, 4 * n)
        # This machine's speed swings by up to 2x from minute to minute: the methods are
        # interleaved over several rounds and each keeps its median time per scale.
        times: dict[str, dict[str, list[float]]] = {k: {"1x": [], "4x": []} for k in methods}
        for _ in range(rounds):
            for scale, folder, count in (("1x", small, n), ("4x", large, 4 * n)):
                for key, method in methods.items():
                    times[key][scale].append(method(folder, count))
    finally:
        if worker is not None:
            worker.close()
    steady = {k: steady_rate(v, n) for k, v in times.items()}
    return {"steady_images_per_s": steady, "rounds_seconds": times,
            "gflop_per_image": model_gflops(name, size),
            "peak_rss_mb": {"1x": peak_rss_mb(small, name, size, batch, work / "rss1"),
                            "4x": peak_rss_mb(large, name, size, batch, work / "rss4")}}


def report(name: str, size: int, n: int, batch: int, rounds: int, figures: dict,
           matmul: float) -> None:
    steady, flop = figures["steady_images_per_s"], figures["gflop_per_image"]
    print(f"\n{name} @ {size}px, {n} and {4 * n} JPEGs of ~{figures['photo']}, batch {batch}, "
          f"median of {rounds} "
          f"interleaved rounds; {flop:.2f} GFLOP per image; matmul {matmul:.0f} GFLOP/s")
    print(f"  {'':<22} {'steady img/s':>13} {'vs keras':>9} {'of own ceiling':>15} "
          f"{'GFLOP/s':>8} {'of matmul':>10}")
    for key, rate in steady.items():
        ceiling = steady.get(f"ceiling-{key}")
        own = f"{rate / ceiling:15.2f}" if ceiling else f"{'':>15}"
        print(f"  {key:<22} {rate:13.1f} {rate / steady['keras']:9.2f} {own} "
              f"{rate * flop:8.1f} {rate * flop / matmul:10.2f}")
    if "previous-tf" in steady and "tf" in steady:
        print(f"  tf / previous-tf (the new decode path against tf.data) = "
              f"{steady['tf'] / steady['previous-tf']:.2f}x")
    for low in ("openvino-int8", "openvino-bf16"):
        if low in steady and "openvino-fp32" in steady:
            print(f"  {low} / openvino-fp32 = {steady[low] / steady['openvino-fp32']:.2f}x")
    if "openvino-int8" in steady and "openvino-bf16" in steady:
        print(f"  openvino-int8 / openvino-bf16 = "
              f"{steady['openvino-int8'] / steady['openvino-bf16']:.2f}x (target 1.5)")
    if "ceiling-tf" in steady:
        print(f"  tf / keras = {steady['tf'] / steady['keras']:.2f}x (target 1.2), tf of the "
              f"TensorFlow ceiling = {steady['tf'] / steady['ceiling-tf']:.2f}")
    if "jax" in steady:
        pace = (f", ceiling-jax / ceiling-tf = {steady['ceiling-jax'] / steady['ceiling-tf']:.2f}"
                " (JAX's model speed against TensorFlow's)" if "ceiling-tf" in steady else "")
        print(f"  jax / keras = {steady['jax'] / steady['keras']:.2f}x (target 1.0 where JAX "
              f"runs the model at TensorFlow's speed){pace}")
    if "openvino-fp32" in steady:
        print(f"  openvino-fp32 / keras = {steady['openvino-fp32'] / steady['keras']:.2f}x "
              f"(target 1.8)")
    rss = figures["peak_rss_mb"]
    print(f"  peak RSS (tf): {rss['1x']:.0f} MB at {n} images, {rss['4x']:.0f} MB at {4 * n} "
          f"(ratio {rss['4x'] / rss['1x']:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="Interleaved rounds; medians kept.")
    parser.add_argument("--backbones", default="mobilenet_v2:160:256,inception_v3:299:48",
                        help="name:size:images, comma-separated.")
    parser.add_argument("--engines",
                        default="tf,openvino-fp32,openvino-bf16,openvino-int8",
                        help="Which of ours to run: tf, jax (Keras on JAX; not by default: "
                             "slow on CPU at large models), openvino-fp32, openvino-bf16, "
                             "openvino-int8.")
    parser.add_argument("--photo", default="320x240",
                        help="WIDTHxHEIGHT of the generated JPEGs (ImageNet-size: 480x360).")
    parser.add_argument("--previous", default=PREVIOUS,
                        help="git ref of the version to compare the decode path with; '' skips.")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()

    from bottleneck.backend import import_keras

    import_keras("tensorflow")
    width, height = (int(v) for v in args.photo.lower().split("x"))
    matmul = matmul_gflops()
    work = Path(tempfile.mkdtemp(prefix="bench-extract-"))
    previous = previous_version(args.previous, work / "previous-code") if args.previous \
        else None
    results: dict = {"matmul_gflops": matmul, "photo": [width, height]}
    try:
        for spec in args.backbones.split(","):
            name, size, n = spec.split(":")[0], int(spec.split(":")[1]), int(spec.split(":")[2])
            engines = []
            for engine in args.engines.split(","):
                why = backend_missing(engine) if engine == "jax" else engine_available(
                    name, size, engine)
                if why:
                    print(f"{engine}: skipped: {why}")
                else:
                    engines.append(engine)
            figures = measure(name, size, n, args.batch_size, engines, args.rounds, work,
                              (height, width), previous)
            figures["photo"] = args.photo
            results[spec] = figures
            report(name, size, n, args.batch_size, args.rounds, figures, matmul)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
