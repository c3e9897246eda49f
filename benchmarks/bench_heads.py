"""Heads on a frozen-backbone cache, and the cache against the tutorial's backbone-inside-Keras.

(a) Every registered classification head (``bottleneck.bench``, one seed) fitted on the same
    Fashion-MNIST cache (EfficientNet-Lite0 ImageNet weights at 96 px by default): fit
    seconds, predict µs per row, val and test accuracy.
(b) Trying five dense-head variants (hidden size, dropout, learning rate), 10 epochs each:
      ours      bottleneck.extract once (train + val + test), then fit the five dense heads on
                the cached features (validation every epoch, test accuracy at the end);
      tutorial  Input → preprocess_input → frozen backbone → GlobalAveragePooling → the same
                Dense/Dropout/Dense head, model.fit per variant over a tf.data pipeline of the
                same image arrays (resized every epoch), validation every epoch, then
                model.evaluate on test: the backbone runs over the images every epoch.
    Both sides include building their models, on the same images, in one process, one after
    the other. The tutorial side is timed on ``--tutorial-variants`` variants ×
    ``--tutorial-epochs`` epochs and extrapolated (the printout says how); pass
    ``--tutorial-variants 5 --tutorial-epochs 10`` to run it in full.

    python benchmarks/bench_heads.py [--limit 2000] [--image-size 96] [--json PATH]

``--limit`` is per split (Fashion-MNIST: train and val carved out of its train part, t10k as
test), so ``--limit 2000`` gives 2000 train, 2000 val and 2000 test images. The defaults take
about 4 minutes on 2 cores. EfficientNet-Lite0's ImageNet weights are converted offline (see
``bottleneck.backbones.lite0_weights``; ``BOTTLENECK_CACHE_DIR`` points at converted ones).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

# Five dense-head variants; every one trains exactly ``--epochs`` epochs on both sides.
VARIANTS: list[dict[str, Any]] = [
    {"hidden": (256,), "dropout": 0.5, "learning_rate": 1e-3},
    {"hidden": (512,), "dropout": 0.5, "learning_rate": 1e-3},
    {"hidden": (256,), "dropout": 0.2, "learning_rate": 3e-4},
    {"hidden": (128,), "dropout": 0.3, "learning_rate": 1e-3},
    {"hidden": (512,), "dropout": 0.3, "learning_rate": 3e-4},
]


def label(params: dict[str, Any]) -> str:
    return (f"hidden={','.join(map(str, params['hidden']))} dropout={params['dropout']} "
            f"lr={params['learning_rate']:g}")


def source_pixels(cache: Any, arrays: dict[str, Any], split: str
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The 28×28 uint8 images and labels of one cache split, in the cache's row order."""
    data = cache.load(split, with_paths=True)
    pixels = np.stack([arrays[part][0][int(index)] for part, index in
                       (key.rsplit("/", 1) for key in data["paths"])])
    return pixels, data["labels"]


# -- ours ------------------------------------------------------------------------------------
def fit_dense_variants(cache: Any, params_list: list[dict[str, Any]], epochs: int, batch: int,
                       seed: int) -> tuple[float, list[dict[str, Any]]]:
    """Load the cached splits, fit each dense variant; (seconds in all, per-variant rows)."""
    from bottleneck import make_head

    start = time.perf_counter()
    data = {s: cache.load(s) for s in ("train", "val", "test")}
    load_s = time.perf_counter() - start
    rows = []
    for params in params_list:
        start = time.perf_counter()
        head = make_head("dense", "classify", {**params, "epochs": epochs, "batch_size": batch,
                                               "patience": None, "reduce_lr": False},
                         random_state=seed)
        head.fit(data["train"]["features"], data["train"]["labels"],
                 validation_data=(data["val"]["features"], data["val"]["labels"]))
        accuracy = float(np.mean(head.predict(data["test"]["features"])
                                 == data["test"]["labels"]))
        rows.append({"variant": label(params), "seconds": time.perf_counter() - start,
                     "epochs_run": len(head.history_["loss"]), "test_accuracy": accuracy})
    return load_s + sum(r["seconds"] for r in rows), rows


# -- tutorial --------------------------------------------------------------------------------
class EpochTimer:
    """A Keras callback factory recording each epoch's wall time (validation included)."""

    @staticmethod
    def make() -> Any:
        import keras

        class Timer(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.times: list[float] = []

            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                self._start = time.perf_counter()

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                self.times.append(time.perf_counter() - self._start)

        return Timer()


def image_pipeline(images: np.ndarray, labels: np.ndarray, size: int, batch: int,
                   shuffle: bool, seed: int) -> Any:
    """tf.data over the uint8 arrays: gray → RGB and bilinear resize on every pass."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((images[..., None], labels.astype(np.int64)))
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)

    def prepare(image: Any, target: Any) -> tuple[Any, Any]:
        rgb = tf.image.grayscale_to_rgb(image)
        return tf.image.resize(rgb, (size, size), method="bilinear"), target

    return dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).batch(batch).prefetch(
        tf.data.AUTOTUNE)


def tutorial_variant(backbone: Any, weights: str | None, size: int, params: dict[str, Any],
                     pixels: dict[str, tuple[np.ndarray, np.ndarray]], n_classes: int,
                     epochs: int, batch: int, seed: int) -> dict[str, Any]:
    """Build the end-to-end model, model.fit ``epochs`` epochs, evaluate on test; timings."""
    import keras

    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    base = backbone.build(weights, size)
    base.trainable = False
    inputs = keras.Input(shape=(size, size, 3))
    x = backbone.preprocess_input(inputs)
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    for units in params["hidden"]:
        x = keras.layers.Dense(units, activation="relu")(x)
        x = keras.layers.Dropout(params["dropout"])(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(params["learning_rate"]),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    train = image_pipeline(*pixels["train"], size, batch, shuffle=True, seed=seed)
    val = image_pipeline(*pixels["val"], size, batch, shuffle=False, seed=seed)
    test = image_pipeline(*pixels["test"], size, batch, shuffle=False, seed=seed)
    build_s = time.perf_counter() - start
    timer = EpochTimer.make()
    model.fit(train, validation_data=val, epochs=epochs, callbacks=[timer], shuffle=False,
              verbose=0)  # the pipeline shuffles
    start = time.perf_counter()
    _, accuracy = model.evaluate(test, verbose=0)
    evaluate_s = time.perf_counter() - start
    return {"variant": label(params), "build_s": build_s, "epoch_s": timer.times,
            "evaluate_s": evaluate_s, "test_accuracy": float(accuracy),
            "seconds": build_s + sum(timer.times) + evaluate_s}


def extrapolate(runs: list[dict[str, Any]], variants: int, epochs: int) -> tuple[float, str]:
    """Estimated seconds for ``variants`` × ``epochs`` from the measured runs, and how."""
    per_variant = []
    for run in runs:
        times = run["epoch_s"]
        steady = float(np.median(times[1:])) if len(times) > 1 else times[0]
        per_variant.append(run["build_s"] + times[0] + (epochs - 1) * steady + run["evaluate_s"])
    measured_epochs = len(runs[0]["epoch_s"])
    total = sum(per_variant) + (variants - len(runs)) * float(np.mean(per_variant))
    if len(runs) == variants and measured_epochs == epochs:
        return sum(r["seconds"] for r in runs), "measured in full (no extrapolation)"
    how = (f"measured {len(runs)} variant(s) x {measured_epochs} epoch(s); per variant = "
           f"model build + epoch 1 (tracing included) + {epochs - 1} x the median of epochs "
           f"2..{measured_epochs} (steady state) + test evaluate; the other "
           f"{variants - len(runs)} variant(s) at the mean of the measured ones")
    if measured_epochs == 1:
        how = how.replace(f"the median of epochs 2..{measured_epochs} (steady state)",
                          "epoch 1 (no steady-state epoch measured: an overestimate)")
    return total, how


# -- (a) every head --------------------------------------------------------------------------
def bench_heads(cache_dir: Path, out: Path, jobs: int) -> list[dict[str, Any]]:
    from bottleneck.benching import bench
    from bottleneck.heads import HEADS

    heads = [name for name, spec in HEADS.items() if "classify" in spec.tasks]
    report = bench([cache_dir], heads, out, task="classify", jobs=jobs, progress=False)
    return sorted(report["rows"], key=lambda r: heads.index(r["head"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=2000, help="images per split")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--weights", default="imagenet", help="imagenet or none")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=32,
                        help="extraction batch and training batch on both sides")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per dense variant")
    parser.add_argument("--variants", type=int, default=5, choices=range(1, len(VARIANTS) + 1))
    parser.add_argument("--tutorial-variants", type=int, default=1,
                        help="variants the tutorial side really runs (rest extrapolated)")
    parser.add_argument("--tutorial-epochs", type=int, default=2,
                        help="epochs the tutorial side really runs (rest extrapolated)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="joblib workers for the scikit-learn heads in (a); 1 keeps each "
                             "head's fit time uncontended")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-heads", action="store_true", help="only run part (b)")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    if not 1 <= args.tutorial_variants <= args.variants:
        parser.error("--tutorial-variants must be between 1 and --variants")
    if not 1 <= args.tutorial_epochs <= args.epochs:
        parser.error("--tutorial-epochs must be between 1 and --epochs")

    import bottleneck
    from bottleneck._tf import import_tensorflow_quietly
    from bottleneck.backbones import get_backbone

    import_tensorflow_quietly()
    from bottleneck.data.arrays import load_fashion_mnist_arrays

    backbone = get_backbone(args.backbone)
    weights = backbone.resolve_weights(args.weights).arg
    variants = VARIANTS[: args.variants]
    work = Path(tempfile.mkdtemp(prefix="bench-heads-"))
    figures: dict[str, Any] = {"config": vars(args) | {"json": str(args.json)}}
    try:
        # Process-wide one-time costs (imports, oneDNN kernels) out of every timing below.
        bottleneck.extract(bottleneck.fashion_mnist_source(limit=32), backbone=backbone.name,
                           out=work / "warm", weights=args.weights, image_size=args.image_size,
                           batch_size=args.batch_size, progress=False)
        source = bottleneck.fashion_mnist_source(limit=args.limit)
        start = time.perf_counter()
        cache = bottleneck.extract(source, backbone=backbone.name, out=work / "cache",
                                   weights=args.weights, image_size=args.image_size,
                                   batch_size=args.batch_size, progress=False)
        extract_s = time.perf_counter() - start
        counts = cache.split_counts()
        n_images = sum(counts.values())
        print(f"Fashion-MNIST --limit {args.limit}: {counts['train']} train, {counts['val']} "
              f"val, {counts['test']} test images; {backbone.name} weights={args.weights} @ "
              f"{args.image_size}px, {cache.feature_shape[-1]}-d features")
        print(f"extract: {extract_s:.1f} s for {n_images} images ({n_images / extract_s:.0f} "
              "img/s, model build included)")

        # (b) ours, then the tutorial, back to back.
        fits_s, ours_rows = fit_dense_variants(cache, variants, args.epochs, args.batch_size,
                                               args.seed)
        ours_total = extract_s + fits_s
        arrays, _ = load_fashion_mnist_arrays(None)
        pixels = {s: source_pixels(cache, arrays, s) for s in ("train", "val", "test")}
        tutorial_runs = [tutorial_variant(backbone, weights, args.image_size, params, pixels,
                                          len(cache.classes), args.tutorial_epochs,
                                          args.batch_size, args.seed)
                         for params in variants[: args.tutorial_variants]]
        tutorial_total, how = extrapolate(tutorial_runs, len(variants), args.epochs)

        print(f"\n(b) {len(variants)} dense-head variants x {args.epochs} epochs (batch "
              f"{args.batch_size}, Adam, validation every epoch, test accuracy at the end), "
              f"{counts['train']} train / {counts['val']} val / {counts['test']} test images")
        print("  ours: extract once, then fit on the cached features")
        print(f"    {'extract (all splits, once)':<44} {extract_s:8.1f} s")
        for row in ours_rows:
            print(f"    fit {row['variant']:<40} {row['seconds']:8.1f} s   "
                  f"test acc {row['test_accuracy']:.3f}")
        print(f"    {'load cache + fits':<44} {fits_s:8.1f} s")
        print(f"    {'total':<44} {ours_total:8.1f} s")
        print("  tutorial: frozen backbone inside the Keras model, images resized every epoch")
        for run in tutorial_runs:
            epochs = ", ".join(f"{t:.1f}" for t in run["epoch_s"])
            print(f"    {run['variant']}: build {run['build_s']:.1f} s, epochs [{epochs}] s, "
                  f"test evaluate {run['evaluate_s']:.1f} s; test acc after "
                  f"{len(run['epoch_s'])} epoch(s) {run['test_accuracy']:.3f}")
        print(f"    measured {sum(r['seconds'] for r in tutorial_runs):.1f} s; "
              f"{len(variants)} variants x {args.epochs} epochs = {tutorial_total:.1f} s")
        print(f"    extrapolation: {how}")
        ratio = tutorial_total / ours_total
        print(f"  tutorial / ours = {tutorial_total:.1f} s / {ours_total:.1f} s = {ratio:.1f}x "
              "(target >= 20x)")
        marginal_ours = float(np.mean([r["seconds"] for r in ours_rows]))
        marginal_tutorial = tutorial_total / len(variants)
        print(f"  one more variant: tutorial {marginal_tutorial:.1f} s vs ours "
              f"{marginal_ours:.1f} s ({marginal_tutorial / marginal_ours:.0f}x)")
        figures["extract"] = {"seconds": extract_s, "images": n_images, "counts": counts}
        figures["variants"] = {
            "ours": {"total_s": ours_total, "extract_s": extract_s, "fits_s": fits_s,
                     "rows": ours_rows},
            "tutorial": {"total_s": tutorial_total, "extrapolation": how,
                         "measured": tutorial_runs},
            "ratio": ratio,
        }

        if not args.skip_heads:
            rows = bench_heads(work / "cache", work / "bench", args.jobs)
            print(f"\n(a) every classification head on the cache (bottleneck.bench, seed 0, "
                  f"jobs {args.jobs}; each head with its default parameters)")
            print(f"  {'head':<11} {'fit s':>8} {'µs/row':>8} {'val acc':>8} {'test acc':>9}")
            for row in rows:
                print(f"  {row['head']:<11} {row['fit_seconds']:8.2f} "
                      f"{row['predict_us_per_row']:8.1f} {row['val_accuracy']:8.3f} "
                      f"{row['test_accuracy']:9.3f}")
            figures["heads"] = [{k: row[k] for k in ("head", "fit_seconds", "predict_us_per_row",
                                                     "val_accuracy", "test_accuracy")}
                                for row in rows]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
