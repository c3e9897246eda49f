"""Fine-tuning from the cache vs the tutorial way, on Fashion-MNIST with EfficientNet-Lite0.

Ours: extract once (ImageNet weights, ``--image-size`` px) → fit the cached heads (logreg,
ridge, dense; best on val) → ``bottleneck.finetune`` the best one (RMSprop at a tenth of the
head's rate, top ~30% of the backbone, ``--epochs``). The tutorial way (TensorFlow's transfer
learning tutorial): the frozen backbone inside the model from the start, a new
``GAP → Dropout(0.2) → Dense`` head trained ``--head-epochs`` epochs on pixels (Adam 1e-3, the
dense head's rate), then the same fine-tuning phase as ours (same layers, optimizer, rate and
``--epochs``). Both read the same images through the same decode/resize. Printed: test
accuracy of the best head and after fine-tuning (target: +2 points), wall time of each way,
and when the tutorial's val accuracy first reaches ours (target: ours takes less time).

    python benchmarks/bench_finetune.py [--train 10000] [--test 10000] [--val-percent 2]
        [--image-size 96] [--epochs 5] [--head-epochs 10] [--json PATH] [--quick]

At the defaults expect well over an hour on 2 cores (every tutorial epoch runs the backbone
on 10000 images); ``--quick`` (300 per split, 1 epoch each, 64 px) is a smoke run of a few
minutes whose accuracies mean nothing.
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

HEADS = ("logreg", "ridge", "dense")
BACKBONE = "efficientnet_lite0"


def ours(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Extract, fit every head, fine-tune the best on val; wall time of each step."""
    import bottleneck
    from bottleneck.data import fashion_mnist_source

    limit = max(args.train, args.test)
    source = fashion_mnist_source(args.data_dir, val_percent=args.val_percent, limit=limit)
    start = time.perf_counter()
    cache = bottleneck.extract(source, backbone=BACKBONE, out=work / "cache", weights="imagenet",
                               image_size=args.image_size, progress=False)
    times = {"extract": time.perf_counter() - start}
    heads = {}
    for head in HEADS:
        params = {"epochs": args.head_epochs} if head == "dense" else None
        began = time.perf_counter()
        result = bottleneck.fit(cache, head, work / head, params=params, progress=False)
        times[f"fit {head}"] = time.perf_counter() - began
        heads[head] = result.metrics
        print(f"  {result.summary()}", flush=True)
    best = max(HEADS, key=lambda h: heads[h]["val"]["accuracy"])
    began = time.perf_counter()
    tuned = bottleneck.finetune(work / best, work / "finetuned", epochs=args.epochs,
                                batch_size=args.batch_size, progress=args.verbose)
    times["finetune"] = time.perf_counter() - began
    print(f"  {tuned.summary()}", flush=True)
    fit = tuned.settings.get("head_train") or {}
    if fit:
        print(f"  {best} head on its own train rows: accuracy {fit['accuracy']:.3f}"
              + (f", log loss {fit['log_loss']:.3g}" if "log_loss" in fit else ""), flush=True)
    return {"rows": cache.split_counts(), "heads": {h: {s: m["accuracy"] for s, m in v.items()}
                                                     for h, v in heads.items()},
            "best_head": best, "finetune": tuned.settings,
            "before": {s: m["accuracy"] for s, m in tuned.before.items()},
            "after": {s: m["accuracy"] for s, m in tuned.metrics.items()},
            "seconds": times, "total_seconds": sum(times.values()),
            "unfreeze_index": tuned.settings["unfrozen"]["index"]}


class EpochClock:
    """Keras callback: wall time since the tutorial began and val accuracy, per epoch."""

    def __new__(cls, start: float, log: list[dict[str, float]]) -> Any:
        import keras

        class Clock(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                log.append({"seconds": time.perf_counter() - start,
                            "val_accuracy": float((logs or {}).get("val_accuracy", 0.0))})

        return Clock()


def tutorial(args: argparse.Namespace, work: Path, unfreeze_index: int, rate: float
             ) -> dict[str, Any]:
    """Backbone inside the model from the start: train a new head, then fine-tune."""
    import keras

    from bottleneck.backbones import get_backbone
    from bottleneck.cache import open_cache
    from bottleneck.extraction import ExtractConfig, FeatureExtractor
    from bottleneck.models.finetune_parts import trainer, unfreeze
    from bottleneck.models.image_data import cache_images, split_dataset

    cache = open_cache(work / "cache")
    size = args.image_size
    source, data = cache_images(cache, "classify", ("train", "val", "test"), size,
                                verify_pixels=False)
    start = time.perf_counter()
    keras.utils.set_random_seed(0)
    backbone = FeatureExtractor(ExtractConfig(BACKBONE, image_size=size)).model
    pixels = keras.Input((size, size, 3))
    x = pixels
    for layer in get_backbone(BACKBONE).preprocess_layers():
        x = layer(x)
    preprocess = keras.Model(pixels, x)
    features = keras.Input(backbone.output.shape[1:])
    head = keras.Model(features, keras.layers.Dense(len(cache.classes), activation="softmax")(
        keras.layers.Dropout(0.2)(features)))
    model = trainer(preprocess, backbone, head)
    train = split_dataset(source, data["train"], size, args.batch_size, seed=0)[0]
    val = split_dataset(source, data["val"], size, args.batch_size)[0]
    log: list[dict[str, float]] = []
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(train, validation_data=val, epochs=args.head_epochs, verbose=2 * args.verbose,
              shuffle=False,
              callbacks=[EpochClock(start, log)])
    test = split_dataset(source, data["test"], size, args.batch_size)[0]
    phase1 = {"test": float(model.evaluate(test, verbose=0)[1]),
              "seconds": time.perf_counter() - start}
    unfreeze(backbone, unfreeze_from=unfreeze_index)
    model.compile(keras.optimizers.RMSprop(rate), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(train, validation_data=val, epochs=args.epochs, verbose=2 * args.verbose,
              shuffle=False,
              callbacks=[EpochClock(start, log)])
    return {"phase1": phase1, "test": float(model.evaluate(test, verbose=0)[1]),
            "total_seconds": time.perf_counter() - start, "epochs": log}


def first_reaching(log: list[dict[str, float]], accuracy: float) -> float | None:
    """Seconds until the tutorial's val accuracy first reached ``accuracy`` (None: never)."""
    return next((e["seconds"] for e in log if e["val_accuracy"] >= accuracy), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=10000, help="train images")
    parser.add_argument("--test", type=int, default=10000, help="test images (t10k)")
    parser.add_argument("--val-percent", type=float, default=2,
                        help="share of Fashion-MNIST's train part hashed into val")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs (both ways)")
    parser.add_argument("--head-epochs", type=int, default=10,
                        help="dense head / tutorial phase-1 epochs")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--data-dir", help="Fashion-MNIST idx files (default: Debian's)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--verbose", action="store_true", help="one line per epoch")
    args = parser.parse_args()
    if args.quick:
        args.train, args.test, args.image_size, args.epochs, args.head_epochs = 300, 300, 64, 1, 1
    if args.train != args.test:
        print(f"note: one --limit serves every split; using {max(args.train, args.test)}")
    import bottleneck  # noqa: F401  (TensorFlow quietly, before the clock starts)

    work = Path(tempfile.mkdtemp(prefix="bench-finetune-"))
    try:
        print(f"ours: extract once, fit {', '.join(HEADS)}, fine-tune the best", flush=True)
        mine = ours(args, work)
        print("the tutorial way: backbone inside the model from the start", flush=True)
        theirs = tutorial(args, work, mine["unfreeze_index"],
                          mine["finetune"]["learning_rate"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best, tuned = mine["heads"][mine["best_head"]]["test"], mine["after"]["test"]
    reach = first_reaching(theirs["epochs"], mine["after"]["val"])
    figures = {"settings": vars(args) | {"json": str(args.json), "data_dir": args.data_dir},
               "ours": mine, "tutorial": theirs,
               "gain_points": round(100 * (tuned - best), 2),
               "time_ratio_ours_vs_tutorial": mine["total_seconds"] / theirs["total_seconds"],
               "tutorial_seconds_to_our_val_accuracy": reach}
    print(f"\nrows {mine['rows']}, {BACKBONE} @ {args.image_size}px")
    print(f"{'':34}{'test acc':>9}{'wall s':>9}")
    print(f"{'best cached head (' + mine['best_head'] + ')':34}{best:>9.4f}"
          f"{mine['total_seconds'] - mine['seconds']['finetune']:>9.0f}")
    print(f"{'ours: head + fine-tune':34}{tuned:>9.4f}{mine['total_seconds']:>9.0f}")
    print(f"{'tutorial: phase 1 (frozen)':34}{theirs['phase1']['test']:>9.4f}"
          f"{theirs['phase1']['seconds']:>9.0f}")
    print(f"{'tutorial: phase 1 + fine-tune':34}{theirs['test']:>9.4f}"
          f"{theirs['total_seconds']:>9.0f}")
    print(f"fine-tuning gain over the best head: {figures['gain_points']:+.2f} points "
          f"(target ≥ +2)")
    print(f"time, ours / tutorial: {figures['time_ratio_ours_vs_tutorial']:.2f}; the tutorial "
          f"reached our val accuracy {mine['after']['val']:.4f} "
          + (f"after {reach:.0f} s" if reach is not None else "never in its epochs")
          + f" (ours: {mine['total_seconds']:.0f} s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
