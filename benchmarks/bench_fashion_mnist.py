"""Fashion-MNIST end to end: what the frozen-backbone features buy over raw pixels, in one run.

One source (``--limit`` images per split: train and val carved out of Fashion-MNIST's 60k
train part by hash, the test split is t10k; ``--limit 10000`` keeps all 10000 test images),
extracted twice with EfficientNet-Lite0 at ``--image-size`` px: ImageNet weights and random
weights (``weights="none"``). Then, on the same rows:

  (i)   linear probe (the ``logreg`` head: standardise + LogisticRegression) on ImageNet
        features, on random-weight features and on the 784 raw pixels / 255;
  (ii)  every classification head on the ImageNet features beside the Fashion-MNIST
        benchmark's raw-pixel baselines computed here on the same split (LogisticRegression
        and SVC with an RBF kernel on standardised pixels), and the closest published figures;
  (iii) synthetic prices (``set_targets(synthetic=True)``: class price + N(0, sigma)):
        ridge and dense regression R², MAE and MSE in price units next to the R² ceiling;
  (iv)  extraction images/s of efficientnet_lite0 beside mobilenet_v2 (random weights, same
        size, same images), interleaved and repeated, best run of each.

    python benchmarks/bench_fashion_mnist.py [--limit 10000] [--image-size 96] [--json PATH]

At the defaults (10000 train, 6000 val, 10000 test) this takes roughly 15 minutes on 2 cores,
most of it the two extractions and the RBF SVMs; ``--limit 3000`` runs in about 5 minutes.
scikit-learn fits run ``--jobs`` at a time, so their fit seconds are indicative only.
EfficientNet-Lite0's ImageNet weights are converted offline (``bottleneck.backbones.lite0_weights``;
``BOTTLENECK_CACHE_DIR`` points at converted ones).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

SPLITS = ("train", "val", "test")
DOC_DIR = Path("/usr/share/doc/dataset-fashion-mnist")
# Xiao, Rasul & Vollgraf 2017, "Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine
# Learning Algorithms", arXiv:1708.07747, Table 3: scikit-learn on the standardised pixels,
# trained on all 60000 train images, mean test accuracy over up to 5 shuffled runs. The Debian
# package ships the grid it swept (benchmark/baselines.json), not these results.
PUBLISHED = [
    ("LogisticRegression C=1 multi_class=ovr penalty=l1", 0.842),
    ("LogisticRegression C=1 multi_class=ovr penalty=l2", 0.841),
    ("SVC C=10 kernel=rbf", 0.897),
    ("SVC C=1 kernel=linear", 0.839),
    ("MLPClassifier activation=relu hidden_layer_sizes=[100, 10]", 0.870),
]


def timed_extract(source: Any, backbone: str, out: Path, weights: str, size: int,
                  batch: int) -> tuple[Any, float]:
    import bottleneck

    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    cache = bottleneck.extract(source, backbone=backbone, out=out, weights=weights,
                               image_size=size, batch_size=batch, progress=False)
    return cache, time.perf_counter() - start


def pixel_splits(cache: Any, arrays: dict[str, Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each split's raw 784 pixels / 255 and labels, in the cache's row order."""
    out = {}
    for split in SPLITS:
        data = cache.load(split, with_paths=True)
        pixels = np.stack([arrays[part][0][int(index)] for part, index in
                           (key.rsplit("/", 1) for key in data["paths"])])
        out[split] = (pixels.reshape(len(pixels), -1).astype(np.float32) / 255.0,
                      data["labels"])
    return out


def feature_splits(cache: Any, key: str = "labels") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    loaded = {split: cache.load(split) for split in SPLITS}
    return {split: (d["features"], d[key]) for split, d in loaded.items()}


def fit_score(name: str, estimator: Any, data: dict[str, tuple[np.ndarray, np.ndarray]],
              task: str = "classify", with_val: bool = False) -> dict[str, Any]:
    """Fit on train (val as validation_data for Keras heads), score on val and test."""
    from bottleneck.models.metrics import regression_metrics

    X, y = data["train"]
    start = time.perf_counter()
    if with_val:
        estimator.fit(X, y, validation_data=data["val"])
    else:
        estimator.fit(X, y)
    row: dict[str, Any] = {"name": name, "fit_seconds": time.perf_counter() - start}
    for split in ("val", "test"):
        Xs, ys = data[split]
        predictions = estimator.predict(Xs)
        if task == "regress":
            metrics = regression_metrics(ys, predictions)
            row |= {f"{split}_{k}": metrics[k] for k in ("r2", "mae", "mse")}
        else:
            row[f"{split}_accuracy"] = float(np.mean(predictions == ys))
    return row


def svc_on_pixels(C: float) -> Any:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return make_pipeline(StandardScaler(), SVC(C=C, kernel="rbf"))


def published_context() -> list[str]:
    """What the Debian package ships about the benchmark, and the paper's closest figures."""
    lines = []
    grid_file = DOC_DIR / "benchmark" / "baselines.json"
    if grid_file.is_file():
        grid = json.loads(grid_file.read_text())["classifiers"]
        for name in ("LogisticRegression", "SVC"):
            lines.append(f"  {grid_file.name} sweeps {name} over {json.dumps(grid.get(name))}"
                         " (a grid, no accuracies)")
    lines.append("  published (arXiv:1708.07747 Table 3; 60000 train images, standardised "
                 "pixels):")
    lines += [f"    {name:<60} test acc {acc:.3f}" for name, acc in PUBLISHED]
    readme = DOC_DIR / "README.md.gz"
    if readme.is_file():
        with gzip.open(readme, "rt", encoding="utf-8") as handle:
            for line in handle:
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                if (len(cells) > 2 and re.fullmatch(r"0\.\d+", cells[2])
                        and re.match(r"(MobileNet|MLP)", cells[0])):
                    text = f"README submission: {cells[0]} ({cells[1]})"
                    lines.append(f"    {text:<60} test acc {float(cells[2]):.3f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=10000,
                        help="images per split (>= 10000 train is the benchmark's setting)")
    parser.add_argument("--val-percent", type=float, default=10,
                        help="share of Fashion-MNIST train carved out as val")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=32, help="extraction batch")
    parser.add_argument("--svc-c", type=float, default=10.0, help="C of the pixel RBF SVC")
    parser.add_argument("--sigma", type=float, default=5.0, help="synthetic price noise ($)")
    parser.add_argument("--regress-heads", default="ridge,dense")
    parser.add_argument("--speed-images", type=int, default=3000,
                        help="images for the extraction-speed comparison (part iv)")
    parser.add_argument("--speed-repeats", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=-1,
                        help="scikit-learn fits run in parallel (joblib workers)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()

    import bottleneck
    from bottleneck._tf import import_tensorflow_quietly

    import_tensorflow_quietly()
    from joblib import Parallel, delayed

    from bottleneck import make_head
    from bottleneck.cache.targets import r2_ceiling, set_targets
    from bottleneck.data.arrays import load_fashion_mnist_arrays
    from bottleneck.heads import HEADS, get_head_spec

    size = args.image_size
    work = Path(tempfile.mkdtemp(prefix="bench-fmnist-"))
    figures: dict[str, Any] = {"config": vars(args) | {"json": str(args.json)}}
    try:
        # Process-wide one-time costs (imports, oneDNN kernels) out of the timings.
        timed_extract(bottleneck.fashion_mnist_source(limit=32), "efficientnet_lite0",
                      work / "warm", "none", size, args.batch_size)
        source = bottleneck.fashion_mnist_source(val_percent=args.val_percent, limit=args.limit)
        caches, extract_s = {}, {}
        for weights in ("imagenet", "none"):
            caches[weights], extract_s[weights] = timed_extract(
                source, "efficientnet_lite0", work / f"lite0-{weights}", weights, size,
                args.batch_size)
        counts = caches["imagenet"].split_counts()
        n_images = sum(counts.values())
        print(f"Fashion-MNIST: {counts['train']} train, {counts['val']} val (hash-carved from "
              f"train), {counts['test']} test (t10k); efficientnet_lite0 @ {size}px")
        for weights, seconds in extract_s.items():
            print(f"  extract weights={weights:<8}: {seconds:6.1f} s, "
                  f"{n_images / seconds:6.1f} img/s (model build included)")

        arrays, _ = load_fashion_mnist_arrays(None)
        data = {"imagenet": feature_splits(caches["imagenet"]),
                "random": feature_splits(caches["none"]),
                "pixels": pixel_splits(caches["imagenet"], arrays)}
        for split in SPLITS:  # every feature set holds the same rows in the same order
            for other in ("random", "pixels"):
                assert np.array_equal(data[other][split][1], data["imagenet"][split][1])

        # scikit-learn fits in parallel, slowest first; Keras heads after, in this process.
        classify_heads = [n for n, s in HEADS.items() if "classify" in s.tasks]
        jobs: list[tuple[str, Any, str]] = [
            ("svm", make_head("svm", "classify", random_state=args.seed), "imagenet"),
            ("SVC rbf pixels", svc_on_pixels(args.svc_c), "pixels"),
            ("logreg pixels", make_head("logreg", "classify", random_state=args.seed),
             "pixels"),
            ("logreg imagenet", make_head("logreg", "classify", random_state=args.seed),
             "imagenet"),
            ("logreg random", make_head("logreg", "classify", random_state=args.seed),
             "random"),
        ]
        jobs += [(name, make_head(name, "classify", random_state=args.seed), "imagenet")
                 for name in classify_heads
                 if name not in ("svm", "logreg") and not get_head_spec(name).streams]
        start = time.perf_counter()
        rows = Parallel(n_jobs=args.jobs)(delayed(fit_score)(name, estimator, data[features])
                                          for name, estimator, features in jobs)
        results = {row["name"]: row for row in rows}
        for name in classify_heads:
            if get_head_spec(name).streams:
                results[name] = fit_score(name, make_head(name, "classify",
                                                          random_state=args.seed),
                                          data["imagenet"], with_val=True)
        results["logreg"] = results["logreg imagenet"]
        heads_s = time.perf_counter() - start

        print(f"\n(i) linear probe: logreg head (standardise + LogisticRegression), "
              f"{counts['train']} train images")
        print(f"  {'features':<36} {'dim':>5} {'val acc':>8} {'test acc':>9} {'fit s':>7}")
        probes = [("efficientnet_lite0 imagenet weights", "logreg imagenet", 1280),
                  ("efficientnet_lite0 random weights", "logreg random", 1280),
                  ("raw pixels / 255", "logreg pixels", 784)]
        for text, key, dim in probes:
            row = results[key]
            print(f"  {text:<36} {dim:>5} {row['val_accuracy']:8.3f} "
                  f"{row['test_accuracy']:9.3f} {row['fit_seconds']:7.2f}")
        gain = results["logreg imagenet"]["test_accuracy"]
        print(f"  imagenet - random = {gain - results['logreg random']['test_accuracy']:+.3f}, "
              f"imagenet - pixels = {gain - results['logreg pixels']['test_accuracy']:+.3f}")

        print(f"\n(ii) classification heads on the imagenet features vs raw-pixel baselines "
              f"(same split; {counts['test']} test images; sklearn fits {args.jobs} at a time,"
              f" {heads_s:.0f} s in all)")
        print(f"  {'model':<44} {'val acc':>8} {'test acc':>9} {'fit s':>7}")
        table = [(f"{name} head, efficientnet_lite0 imagenet", name) for name in classify_heads]
        table += [("LogisticRegression, standardised pixels", "logreg pixels"),
                  (f"SVC rbf C={args.svc_c:g}, standardised pixels", "SVC rbf pixels")]
        for text, key in table:
            row = results[key]
            print(f"  {text:<44} {row['val_accuracy']:8.3f} {row['test_accuracy']:9.3f} "
                  f"{row['fit_seconds']:7.2f}")
        for line in published_context():
            print(line)

        set_targets(work / "lite0-imagenet", synthetic=True, sigma=args.sigma, seed=args.seed)
        priced = bottleneck.open_cache(work / "lite0-imagenet")
        regress_data = feature_splits(priced, key="targets")
        ceiling = {split: r2_ceiling(priced, split) for split in ("val", "test")}
        regress_rows = []
        for name in args.regress_heads.split(","):
            head = make_head(name, "regress", random_state=args.seed)
            regress_rows.append(fit_score(name, head, regress_data, task="regress",
                                          with_val=get_head_spec(name).streams))
        prices = regress_data["test"][1]
        print(f"\n(iii) synthetic prices (class price + N(0, {args.sigma:g}) $; test mean "
              f"{prices.mean():.2f} $, std {prices.std():.2f} $), imagenet features")
        print(f"  {'head':<8} {'val R²':>7} {'test R²':>8} {'ceiling':>8} {'test MAE $':>11} "
              f"{'test MSE $²':>12} {'fit s':>7}")
        for row in regress_rows:
            print(f"  {row['name']:<8} {row['val_r2']:7.3f} {row['test_r2']:8.3f} "
                  f"{ceiling['test']:8.3f} {row['test_mae']:11.2f} {row['test_mse']:12.2f} "
                  f"{row['fit_seconds']:7.2f}")
        print(f"  ceiling = R² of predicting each image's true class price (val "
              f"{ceiling['val']:.3f}, test {ceiling['test']:.3f}); its MAE is about "
              f"{args.sigma * math.sqrt(2 / math.pi):.2f} $ (sigma x sqrt(2/pi))")

        per_split = max(1, math.ceil(args.speed_images / 3))
        speed_source = bottleneck.fashion_mnist_source(limit=per_split)
        n_speed = len(speed_source.items())
        speed: dict[str, list[float]] = {"efficientnet_lite0": [], "mobilenet_v2": []}
        for repeat in range(args.speed_repeats):
            order = list(speed) if repeat % 2 == 0 else list(reversed(speed))
            for name in order:
                _, seconds = timed_extract(speed_source, name, work / "speed", "none", size,
                                           args.batch_size)
                speed[name].append(seconds)
        rates = {name: n_speed / min(times) for name, times in speed.items()}
        print(f"\n(iv) extraction speed, weights none, {size}px, the same {n_speed} images, "
              f"batch {args.batch_size}, {args.speed_repeats} interleaved runs each (best "
              "shown; model build included)")
        for name, times in speed.items():
            runs = ", ".join(f"{t:.1f}" for t in times)
            print(f"  {name:<19} {rates[name]:7.1f} img/s   runs [{runs}] s")
        print(f"  efficientnet_lite0 / mobilenet_v2 = "
              f"{rates['efficientnet_lite0'] / rates['mobilenet_v2']:.2f}x")

        figures |= {
            "counts": counts, "extract_seconds": extract_s,
            "extract_images_per_s": {k: n_images / v for k, v in extract_s.items()},
            "classify": results, "regress": regress_rows, "r2_ceiling": ceiling,
            "speed_seconds": speed, "speed_images": n_speed, "speed_images_per_s": rates,
            "published": dict(PUBLISHED),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
