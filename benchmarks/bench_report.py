"""bottleneck report: seconds and memory on a Fashion-MNIST-sized cache, and how well its
label-error and near-duplicate sections find what was planted.

    python benchmarks/bench_report.py [--rows 60000] [--quality 2000] [--json PATH]

(i) Speed and memory. A cache of ``--rows`` rows of 1280-d float32 features (the size of
    Fashion-MNIST through EfficientNet-Lite0) is written synthetically — extracting 60,000
    images through Lite0 takes far longer on 2 cores than the report itself: ten Gaussian
    classes (non-negative, like pooled ReLU features), split like Fashion-MNIST (1/7 test,
    10% of the rest val), its source an ``.npz`` of 28×28 pictures so thumbnails are real; 5%
    of the train labels flipped and 50 train rows copied into test (features + small noise,
    pictures re-encoded as JPEG). One ``logreg`` model is fitted (not timed). The report
    runs in a fresh process: seconds for ``report()``, and the peak resident memory during it
    (Linux: VmHWM after resetting it) above the process's baseline after its imports (those
    of the report's modules and the scikit-learn that loading a head imports), against the
    cache's float32 size. Twice:
    first without the model's stored predictions (the report computes and stores them),
    then with them. Targets: ≤ 60 s and ≤ 2× the float32 size.
(ii) Quality on real features (``--quality N`` train images, 0 to skip): N Fashion-MNIST
    train images and N/4 test images through Lite0 (ImageNet weights, offline) at
    ``--image-size`` px, as a folder with 5% of the train images in a wrong class folder and
    20 train images copied into test re-encoded as JPEG (quality 75). Measured: the share of
    the flipped labels among the label-error section's top 2× as many rows (target ≥ 70%),
    the planted copies found (target: all), and the pairs found in the same rows without the
    copies (target: none).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

DIMS = 1280
CLASSES = [f"class{i}" for i in range(10)]
PLANTED = 50
FLIP = 0.05
SHARD_ROWS = 4096


def jpeg_copy(picture: np.ndarray, quality: int = 75) -> np.ndarray:
    """The picture re-encoded as JPEG."""
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("L"))


def synthetic_cache(root: Path, rows: int, seed: int = 0) -> dict[str, Any]:
    """Write the cache of part (i), one shard at a time (a million rows need ~1 GB beside
    the pictures' 0.8 GB); returns what was planted."""
    from bottleneck.cache.synthetic import ShardRows, split_sizes, write_cache

    rng = np.random.default_rng(seed)
    sizes = split_sizes(rows)
    splits = np.repeat(list(sizes), list(sizes.values()))
    truth = rng.integers(0, len(CLASSES), rows)
    templates = rng.integers(0, 256, (len(CLASSES), 7, 7)).astype(np.uint8)
    pictures = np.stack([np.asarray(Image.fromarray(t).resize((28, 28), Image.BICUBIC))
                         for t in templates])[truth].astype(np.int16)
    pictures = (pictures + rng.normal(0, 30, pictures.shape)).clip(0, 255).astype(np.uint8)
    centres = rng.normal(0, 0.1, (len(CLASSES), DIMS)).astype(np.float32)
    train = np.flatnonzero(splits == "train")
    test = np.flatnonzero(splits == "test")
    flipped = rng.choice(train, int(FLIP * len(train)), replace=False)
    labels = truth.copy()
    labels[flipped] = (truth[flipped] + rng.integers(1, len(CLASSES), len(flipped))) % 10
    originals, copies = rng.choice(train, PLANTED, replace=False), test[:PLANTED]
    truth[copies] = truth[originals]
    labels[copies] = labels[originals]
    for original, copy in zip(originals, copies, strict=True):
        pictures[copy] = jpeg_copy(pictures[original])
    np.savez(root / "pictures.npz", images=pictures, labels=labels, classes=np.array(CLASSES))
    del pictures
    copy_of = dict(zip(copies.tolist(), originals.tolist(), strict=True))
    planted = set(originals.tolist())
    kept: dict[int, np.ndarray] = {}  # the originals' features, for their copies in test

    def shards() -> Iterator[ShardRows]:
        """One shard's features at a time (a million rows would need ~5 GB at once)."""
        for start in range(0, rows, SHARD_ROWS):
            chosen = np.arange(start, min(rows, start + SHARD_ROWS))
            features = centres[truth[chosen]] + rng.standard_normal((len(chosen), DIMS),
                                                                    dtype=np.float32)
            kept.update({row: features[i].copy() for i, row in enumerate(chosen.tolist())
                         if row in planted})
            for i, row in enumerate(chosen.tolist()):
                if row in copy_of:
                    features[i] = kept[copy_of[row]] + rng.normal(0, 0.05, DIMS)
            np.maximum(features + 0.5, 0, out=features)  # non-negative, as pooled ReLU
            yield ShardRows(features, labels[chosen], [f"pictures/{i}" for i in chosen],
                            splits[chosen])

    source = {"kind": "npz", "path": str(root / "pictures.npz"), "val_percent": 10,
              "test_percent": 10, "limit": None}
    write_cache(root / "cache", shards(), CLASSES, (DIMS,), source=source, seed=seed)
    return {"flipped": [f"pictures/{i}" for i in flipped],
            "copies": sorted((f"pictures/{c}", f"pictures/{o}")
                             for o, c in zip(originals, copies, strict=True))}


def child(model: str, out: str) -> None:
    """Run one report in this (fresh) process and print its seconds and memory as JSON."""
    import psutil
    import skops.io._trusted_types  # noqa: F401  loading a head imports all of scikit-learn

    import bottleneck.reporting.assemble  # noqa: F401  every module the report uses
    import bottleneck.reporting.render  # noqa: F401
    from bottleneck.reporting import report

    baseline = psutil.Process().memory_info().rss
    reset = _reset_peak()
    started = time.perf_counter()
    result = report([model], out)
    seconds = time.perf_counter() - started
    peak = _peak() if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "above_baseline": peak - baseline,
                      "summary": result.summary()}))


def _reset_peak() -> bool:
    """Linux: reset this process's peak resident size (VmHWM), so the peak measured is the
    report's, not the imports'."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def speed(rows: int, work: Path) -> dict[str, Any]:
    """Part (i)."""
    import bottleneck

    started = time.perf_counter()
    planted = synthetic_cache(work, rows)
    print(f"synthetic cache of {rows} rows written in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    bottleneck.fit(work / "cache", "logreg", work / "model")
    print(f"logreg fitted in {time.perf_counter() - started:.0f} s (not timed below)")
    float32 = rows * DIMS * 4
    runs = {}
    for name in ("predictions computed", "predictions stored"):
        done = subprocess.run([sys.executable, __file__, "--child", str(work / "model"),
                               str(work / "report.html")], capture_output=True, text=True,
                              check=True)
        runs[name] = json.loads(done.stdout.strip().splitlines()[-1])
        run = runs[name]
        print(f"{name}: {run['seconds']:.1f} s ({run['seconds'] / 60:.2f}× the 60 s target), "
              f"{run['above_baseline'] / 2**20:.0f} MiB above baseline = "
              f"{run['above_baseline'] / float32:.2f}× the cache's float32 size "
              f"({float32 / 2**20:.0f} MiB; target ≤ 2×)")
    doc = json.loads(_report_json(work))
    cache = doc["caches"][0]
    flagged = [r["key"] for r in cache["label_errors"]["all"]]
    top = set(flagged[: 2 * len(planted["flipped"])])
    recall = len(top & set(planted["flipped"])) / len(planted["flipped"])
    found = {(p["a"], p["b"]) for p in cache["leaks"]["near"]["all_pairs"]}
    copies = {tuple(c) for c in planted["copies"]}
    print(f"synthetic: {recall:.1%} of the flipped labels in the top 2×; "
          f"{len(copies & found)}/{len(copies)} planted copies found, "
          f"{len(found - copies)} other pairs")
    return {"rows": rows, "float32_bytes": float32, "runs": runs, "label_recall": recall,
            "copies_found": len(copies & found), "copies": len(copies),
            "other_pairs": len(found - copies)}


def _report_json(work: Path) -> str:
    import bottleneck

    bottleneck.report([work / "model"], work / "again.html", json_out=work / "report.json")
    return (work / "report.json").read_text()


def quality(n: int, size: int, work: Path) -> dict[str, Any]:
    """Part (ii)."""
    import bottleneck
    from bottleneck.benching.leaks import near_duplicates
    from bottleneck.data.arrays import FASHION_MNIST_CLASSES, load_fashion_mnist_arrays
    from bottleneck.reporting.analyse import LEAK_SEARCH_EFFORT
    from bottleneck.reporting.label_errors import (
        FULL_WIDTH_VALUES,
        evidence_features,
        find_label_errors,
    )
    from bottleneck.reporting.rows import load_rows
    from bottleneck.reporting.thumbs import ImageReader

    arrays, _ = load_fashion_mnist_arrays(None)
    (x_train, y_train), (x_test, y_test) = arrays["train"], arrays["t10k"]
    rng = np.random.default_rng(0)
    chosen_train = rng.choice(len(x_train), n, replace=False)
    chosen_test = rng.choice(len(x_test), n // 4, replace=False)
    names = [c.replace("/", "-") for c in FASHION_MNIST_CLASSES]
    folder = work / "fashion"
    flipped = set(rng.choice(n, int(FLIP * n), replace=False).tolist())
    for split, images, labels, chosen in (("train", x_train, y_train, chosen_train),
                                          ("test", x_test, y_test, chosen_test)):
        for k, i in enumerate(chosen):
            label = int(labels[i])
            if split == "train" and k in flipped:
                label = (label + int(rng.integers(1, 10))) % 10
            (folder / split / names[label]).mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[i]).save(folder / split / names[label] / f"{i}.png")
    copies = []
    for i in chosen_train[[k for k in range(n) if k not in flipped][:20]]:
        name = f"copy-of-{i}.jpg"
        Image.fromarray(x_train[i]).save(folder / "test" / names[int(y_train[i])] / name,
                                         quality=75)
        copies.append((f"test/{names[int(y_train[i])]}/{name}",
                       f"train/{names[int(y_train[i])]}/{i}.png"))
    started = time.perf_counter()
    cache = bottleneck.extract(str(folder), backbone="efficientnet_lite0", image_size=size,
                               out=work / "fashion-cache", progress=False, overwrite=True)
    print(f"quality: {n} train + {n // 4 + 20} test images through Lite0 at {size} px in "
          f"{time.perf_counter() - started:.0f} s")
    rows = load_rows(cache)
    true_name = {f"train/{names[int(y_train[i])]}/{i}.png" for i in chosen_train}
    wrong = {str(key) for key in rows.paths
             if str(key).startswith("train/") and str(key) not in true_name}
    pool = np.flatnonzero(rows.splits == "train")
    features = evidence_features(rows.full_width(FULL_WIDTH_VALUES), rows.reduced)  # as the
    # report chooses them
    found = find_label_errors(features[pool], rows.labels[pool].astype(np.int64), 10)
    ranked = [str(rows.paths[pool[i]]) for i in found["issues"]]
    recall = len(set(ranked[: 2 * len(wrong)]) & wrong) / len(wrong)
    reader = ImageReader(cache.manifest.source)

    def pixels(i: int) -> np.ndarray | None:
        return reader.pixels(str(rows.paths[i]), str(rows.splits[i]), int(rows.labels[i]))

    near = near_duplicates(None, rows.splits, pixels, rows.reduced, rows.hashes,
                           neighbours=rows.neighbours(
                               effort=LEAK_SEARCH_EFFORT.get(rows.index.kind)),
                           features=rows.index.vectors)
    pairs = {(str(rows.paths[p["a"]]), str(rows.paths[p["b"]])) for p in near["pairs"]}
    clean = ~np.isin(rows.paths, [c for c, _ in copies])
    kept = np.flatnonzero(clean)
    without = near_duplicates(None, rows.splits[clean], lambda i: pixels(int(kept[i])),
                              rows.reduced[clean], rows.hashes[clean],
                              neighbours=rows.neighbours(
                                  kept, LEAK_SEARCH_EFFORT.get(rows.index.kind)),
                              features=lambda r: rows.index.vectors(kept[r]))
    result = {"train": n, "test": n // 4 + 20, "image_size": size, "flipped": len(wrong),
              "flagged": len(ranked), "label_recall": recall,
              "copies_found": len(set(copies) & pairs), "copies": len(copies),
              "other_pairs": sorted(pairs - set(copies)),
              "pairs_without_copies": len(without["pairs"]),
              "oof_accuracy": found["oof_accuracy"]}
    print(f"quality: {recall:.1%} of the {len(wrong)} flipped labels in the top 2× (target ≥ "
          f"70%; {len(ranked)} flagged, out-of-fold accuracy {found['oof_accuracy']:.3f}); "
          f"{result['copies_found']}/{len(copies)} JPEG copies found (target all), "
          f"{len(result['other_pairs'])} other pairs; {result['pairs_without_copies']} pairs "
          "without the copies (target 0)")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=60000)
    parser.add_argument("--quality", type=int, default=2000, help="train images; 0 skips (ii)")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    work = Path(tempfile.mkdtemp(prefix="bench_report-"))
    try:
        figures = {"speed": speed(args.rows, work)}
        if args.quality:
            figures["quality"] = quality(args.quality, args.image_size, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        from bottleneck.storage.atomic import write_json

        write_json(args.json, figures)


if __name__ == "__main__":
    main()
