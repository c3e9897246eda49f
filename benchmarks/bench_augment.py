"""Augmentation that survives the cache: K cached views against augmenting on the fly.

Fashion-MNIST with EfficientNet-Lite0's ImageNet weights. For K in ``--views`` (default
0, 2, 4, 8): ``bottleneck extract --augment K`` (flip, rotate 0.1, zoom 0.1; seconds), then
logreg and the dense head fitted on the train views (seconds, test accuracy on view 0 of the
test split). Beside it, the tutorial way: RandomFlip/RandomRotation/RandomZoom layers and the
frozen backbone inside one Keras model with the same dense head, the backbone running over
freshly augmented images every epoch; timed for ``--tutorial-epochs`` epochs and extrapolated
to five head variants × ``--epochs`` epochs (the printout says so), against our extraction
once plus five dense fits.

    python benchmarks/bench_augment.py [--per-class 2000] [--views 0,2,4,8] [--image-size 96]

``--per-class`` is training images per class (val and test keep ``--eval-limit`` each).
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

import numpy as np

OPS = "flip,rotate=0.1,zoom=0.1"
DENSE = {"hidden": (256,), "dropout": 0.5, "patience": None, "reduce_lr": False}


def subset(per_class: int, eval_limit: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``per_class`` Fashion-MNIST train images per class, ``eval_limit`` t10k test images."""
    from bottleneck.data.arrays import load_fashion_mnist_arrays

    arrays, _ = load_fashion_mnist_arrays(None)
    x, y = arrays["train"]
    rng = np.random.default_rng(0)
    train = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False)
                            for c in range(10)])
    tx, ty = arrays["t10k"]
    test = rng.choice(len(ty), eval_limit, replace=False)
    return {"train": (x[train], y[train]), "t10k": (tx[test], ty[test])}


def ours(parts: dict, k: int, args: argparse.Namespace, work: Path) -> dict:
    import bottleneck
    from bottleneck import make_head
    from bottleneck.data.arrays import FASHION_MNIST_CLASSES, ArraySource

    source = ArraySource("fashion-mnist subset", parts, list(FASHION_MNIST_CLASSES),
                         {"kind": "bench-subset"}, val_percent=10)
    start = time.perf_counter()
    cache = bottleneck.extract(source, backbone="efficientnet_lite0", image_size=args.image_size,
                               out=work / f"k{k}", augment=k, augment_ops=OPS if k else None,
                               progress=False)
    extract_s = time.perf_counter() - start
    train, test = cache.load("train"), cache.load("test")
    row = {"views": k, "extract_s": extract_s, "train_rows": len(train["labels"])}
    for name, params in (("logreg", {}), ("dense", DENSE | {"epochs": args.epochs})):
        head = make_head(name, "classify", params, random_state=0)
        start = time.perf_counter()
        head.fit(train["features"], train["labels"])
        row[f"{name}_fit_s"] = time.perf_counter() - start
        row[f"{name}_test_acc"] = float(np.mean(head.predict(test["features"])
                                                == test["labels"]))
    return row


def tutorial(parts: dict, args: argparse.Namespace) -> dict:
    """Augmentation layers + frozen Lite0 + the dense head in one model, timed per epoch."""
    import keras
    import tensorflow as tf

    from bottleneck.backbones import get_backbone

    x = np.repeat(parts["train"][0][..., None], 3, -1).astype("float32")
    y = parts["train"][1]
    spec = get_backbone("efficientnet_lite0")
    base = spec.load(spec.resolve_weights("imagenet"), args.image_size)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 3))
    h = keras.layers.Resizing(args.image_size, args.image_size)(inputs)
    h = keras.layers.RandomFlip("horizontal")(h)
    h = keras.layers.RandomRotation(0.1)(h)
    h = keras.layers.RandomZoom(0.1)(h)
    h = spec.preprocess_input(h)
    h = base(h, training=False)
    h = keras.layers.GlobalAveragePooling2D()(h)
    h = keras.layers.Dense(256, activation="relu")(h)
    h = keras.layers.Dropout(0.5)(h)
    outputs = keras.layers.Dense(10, activation="softmax")(h)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    stream = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(y)).batch(32)
    start = time.perf_counter()
    model.fit(stream, epochs=args.tutorial_epochs, verbose=0)
    per_epoch = (time.perf_counter() - start) / args.tutorial_epochs
    tx = np.repeat(parts["t10k"][0][..., None], 3, -1).astype("float32")
    acc = float(model.evaluate(tx, parts["t10k"][1], verbose=0)[1])
    return {"epoch_s": per_epoch, "test_acc_after_epochs": acc,
            "five_variants_s": per_epoch * args.epochs * 5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=2000)
    parser.add_argument("--eval-limit", type=int, default=2000)
    parser.add_argument("--views", default="0,2,4,8")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--tutorial-epochs", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-augment-"))
    try:
        parts = subset(args.per_class, args.eval_limit)
        rows = [ours(parts, int(k), args, work) for k in args.views.split(",")]
        tut = tutorial(parts, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"Fashion-MNIST, {args.per_class}/class train, Lite0 ImageNet @ {args.image_size}, "
          f"ops {OPS}, dense {args.epochs} epochs")
    print(f"{'K':>3} {'train rows':>10} {'extract s':>10} {'logreg fit s':>12} "
          f"{'logreg acc':>10} {'dense fit s':>11} {'dense acc':>9}")
    for r in rows:
        print(f"{r['views']:>3} {r['train_rows']:>10} {r['extract_s']:>10.1f} "
              f"{r['logreg_fit_s']:>12.1f} {r['logreg_test_acc']:>10.3f} "
              f"{r['dense_fit_s']:>11.1f} {r['dense_test_acc']:>9.3f}")
    print(f"tutorial (augment + backbone every epoch): {tut['epoch_s']:.1f} s/epoch, test acc "
          f"{tut['test_acc_after_epochs']:.3f} after {args.tutorial_epochs} epoch(s); five "
          f"variants × {args.epochs} epochs ≈ {tut['five_variants_s']:.0f} s (extrapolated)")
    for r in rows:
        ours_s = r["extract_s"] + 5 * r["dense_fit_s"]
        print(f"K={r['views']}: extract once + five dense fits = {ours_s:.0f} s → "
              f"{tut['five_variants_s'] / ours_s:.1f}x faster than on-the-fly")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "tutorial": tut,
                                         "config": vars(args)}, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
