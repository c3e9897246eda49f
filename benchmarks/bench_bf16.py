"""bf16 and int8 against fp32 where it matters: head accuracy on Fashion-MNIST, real weights.

The same Fashion-MNIST images (--limit per split) through EfficientNet-Lite0 with its ImageNet
weights (offline), cached four ways: TensorFlow (the reference), OpenVINO fp32, OpenVINO bf16
and OpenVINO int8 (quantized by NNCF on 300 of the train images); then the same
logistic-regression head fitted on each. Printed: extraction seconds, the features'
per-image cosine against TensorFlow's and against OpenVINO fp32's, and val/test accuracy,
with bf16's and int8's difference from fp32 in points (the targets: within 0.5; int8 also
cosine ≥ 0.99). bf16 needs a CPU with bf16 support (AVX512-BF16 or AMX), int8 one with VNNI or
AMX-INT8; elsewhere their rows say why they were skipped. int8's extraction seconds include
its one-time quantization (run again with the user cache warm to time it without).

    python benchmarks/bench_bf16.py [--limit 2000] [--size 96] [--runs openvino-fp32,...]
    python benchmarks/bench_bf16.py --limit 40 --size 32    # a quick check that it runs
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

RUNS = {"tf fp32": ("tf", "fp32"), "openvino fp32": ("openvino", "fp32"),
        "openvino bf16": ("openvino", "bf16"), "openvino int8": ("openvino", "int8")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=2000, help="Images per split.")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--data-dir", help="Fashion-MNIST idx files (default: Debian's).")
    parser.add_argument("--runs", default="all",
                        help="Comma-separated subset of: "
                             f"{', '.join(k.replace(' ', '-') for k in RUNS)} (tf fp32 always).")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    from bottleneck._tf import import_tensorflow_quietly

    import_tensorflow_quietly()
    import bottleneck
    from bottleneck.errors import UserError

    work = Path(tempfile.mkdtemp(prefix="bench-bf16-"))
    results: dict = {}
    try:
        source = bottleneck.fashion_mnist_source(args.data_dir, limit=args.limit)
        features = {}
        chosen = RUNS if args.runs == "all" else {
            k: v for k, v in RUNS.items()
            if k == "tf fp32" or k.replace(" ", "-") in args.runs.split(",")}
        for name, (engine, precision) in chosen.items():
            start = time.perf_counter()
            try:
                cache = bottleneck.extract(source, backbone=args.backbone, weights="imagenet",
                                           image_size=args.size, out=work / name.replace(" ", "-"),
                                           engine=engine, precision=precision, progress=False)
            except UserError as exc:
                results[name] = {"skipped": str(exc)}
                continue
            seconds = time.perf_counter() - start
            fit = bottleneck.fit(cache, "logreg", work / f"model-{engine}-{precision}",
                                 progress=False)
            features[name] = cache.load("test")["features"]
            results[name] = {"extract_seconds": seconds,
                             "val_accuracy": fit.metrics["val"]["accuracy"],
                             "test_accuracy": fit.metrics["test"]["accuracy"]}
        for suffix, reference in (("", features["tf fp32"]),
                                  ("_vs_openvino_fp32", features.get("openvino fp32"))):
            if reference is None:
                continue
            for name, values in features.items():
                cosine = (values * reference).sum(1) / (np.linalg.norm(values, axis=1)
                                                        * np.linalg.norm(reference, axis=1))
                results[name][f"cosine_min{suffix}"] = float(cosine.min())
                results[name][f"cosine_median{suffix}"] = float(np.median(cosine))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{args.backbone} @ {args.size}px, ImageNet weights, Fashion-MNIST {args.limit} "
          "per split, logreg head")
    print(f"  {'':<15} {'extract s':>10} {'cosine min':>11} {'val acc':>8} {'test acc':>9}")
    for name, row in results.items():
        if "skipped" in row:
            print(f"  {name:<15} skipped: {row['skipped']}")
            continue
        print(f"  {name:<15} {row['extract_seconds']:10.1f} {row['cosine_min']:11.6f} "
              f"{row['val_accuracy']:8.4f} {row['test_accuracy']:9.4f}")
    for low in ("bf16", "int8"):
        row = results.get(f"openvino {low}", {})
        if "test_accuracy" in row and "test_accuracy" in results.get("openvino fp32", {}):
            delta = 100 * (row["test_accuracy"] - results["openvino fp32"]["test_accuracy"])
            print(f"  {low} - fp32 test accuracy: {delta:+.2f} points (target: within 0.5); "
                  f"cosine to openvino fp32 min {row['cosine_min_vs_openvino_fp32']:.5f}, "
                  f"median {row['cosine_median_vs_openvino_fp32']:.5f}"
                  + (" (target ≥ 0.99)" if low == "int8" else ""))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
