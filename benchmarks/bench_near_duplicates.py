"""Near-duplicates on real images: precision and recall of the report's leak check on
Fashion-MNIST with copies planted across splits.

    python benchmarks/bench_near_duplicates.py [--train 10000] [--test 2000] [--planted 300]
        [--image-size 96] [--look-alikes 1000] [--work DIR] [--json PATH]

``--train`` Fashion-MNIST train images and ``--test`` t10k images are written as a folder
(PNG, their own pixels); ``--planted`` of those test images are copied into train, in equal
shares of each perturbation of :data:`PERTURBATIONS` (an exact copy, JPEG re-encodings, a
one-pixel shift, brighter, Gaussian noise). The folder goes through EfficientNet-Lite0
(ImageNet weights, offline) at ``--image-size`` px, then the report's two checks run on the
rows exactly as ``bottleneck report`` runs them (identical pixels by content hash; the
near-duplicate rule of :mod:`bottleneck.benching.leaks`). Printed: recall per perturbation,
recall and precision over all planted copies (targets ≥ 0.9 each), and every pair found that
was not planted, with its evidence. ``--work`` keeps the folder and the cache for a rerun
(extraction resumes); by default they go to a temporary folder removed at the end.

Then the pixel rule alone at full scale (``--look-alikes N``, 0 to skip; no features): for N
test images, the best of their 5 nearest train images among all 60,000 (by centred cosine of
the raw pixels) under :func:`~bottleneck.benching.leaks.pixel_similarity`, against the same
images' perturbed copies: at each threshold, how many test images have a look-alike that
reaches it (false pairs, if the features proposed them) and the share of copies that do.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _shift(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One pixel along one axis, the uncovered edge black (Fashion-MNIST's background)."""
    axis, step = int(rng.integers(0, 2)), int(rng.choice([-1, 1]))
    moved = np.roll(image, step, axis=axis)
    edge = [slice(None)] * 2
    edge[axis] = slice(0, 1) if step == 1 else slice(-1, None)
    moved[tuple(edge)] = 0
    return moved


PERTURBATIONS: dict[str, tuple[str, Callable[[np.ndarray, np.random.Generator], bytes]]] = {
    "exact": ("png", lambda x, rng: _png(x)),
    "jpeg-q90": ("jpg", lambda x, rng: _jpeg(x, 90)),
    "jpeg-q75": ("jpg", lambda x, rng: _jpeg(x, 75)),
    "shift-1px": ("png", lambda x, rng: _png(_shift(x, rng))),
    "brighter": ("png", lambda x, rng: _png(np.clip(x.astype(np.int16) * 1.1 + 12, 0, 255)
                                            .astype(np.uint8))),
    "noise": ("png", lambda x, rng: _png(np.clip(x + rng.normal(0, 6, x.shape), 0, 255)
                                         .astype(np.uint8))),
}


def write_folder(folder: Path, n_train: int, n_test: int, planted: int,
                 seed: int = 0) -> dict[tuple[str, str], str]:
    """The images as ``folder/{train,test}/CLASS/*.png`` with the copies; returns
    ``{(test key, train key): perturbation}`` of the planted pairs."""
    from bottleneck.data.arrays import FASHION_MNIST_CLASSES, load_fashion_mnist_arrays

    arrays, _ = load_fashion_mnist_arrays(None)
    (x_train, y_train), (x_test, y_test) = arrays["train"], arrays["t10k"]
    rng = np.random.default_rng(seed)
    names = [c.replace("/", "-") for c in FASHION_MNIST_CLASSES]
    chosen = {"train": rng.choice(len(x_train), n_train, replace=False),
              "test": rng.choice(len(x_test), n_test, replace=False)}
    for split, images, labels in (("train", x_train, y_train), ("test", x_test, y_test)):
        for i in chosen[split]:
            target = folder / split / names[int(labels[i])] / f"{i}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_png(images[i]))
    kinds = list(PERTURBATIONS)
    pairs = {}
    for n, i in enumerate(rng.choice(chosen["test"], planted, replace=False)):
        kind = kinds[n % len(kinds)]
        suffix, make = PERTURBATIONS[kind]
        name = names[int(y_test[i])]
        copy = f"train/{name}/copy-of-test-{i}-{kind}.{suffix}"
        (folder / copy).write_bytes(make(x_test[i], rng))
        pairs[(f"test/{name}/{i}.png", copy)] = kind
    return pairs


def leak_check(cache: Any) -> tuple[list[dict[str, Any]], Any]:
    """The report's two checks on ``cache``, as :mod:`bottleneck.reporting.analyse` runs
    them: every cross-split pair each finds (``kind``: identical or near) and the rows."""
    from bottleneck.benching.leaks import cross_split_duplicates, near_duplicates
    from bottleneck.reporting.analyse import MAX_PIXEL_PAIRS, PIXEL_SEARCH_FILES
    from bottleneck.reporting.rows import load_rows
    from bottleneck.reporting.thumbs import ImageReader

    rows = load_rows(cache)
    reader = ImageReader(cache.manifest.source)

    def pixels(i: int) -> np.ndarray | None:
        return reader.pixels(str(rows.paths[i]), str(rows.splits[i]), int(rows.labels[i]))

    found = []
    for group in cross_split_duplicates(cache) or []:
        later = [r for r in group if r["split"] != "train"]
        found += [{"a": a["path"], "b": b["path"], "kind": "identical"}
                  for a in later for b in group if b["split"] == "train"]
    near = near_duplicates(None, rows.splits, pixels, rows.reduced, rows.hashes,
                           MAX_PIXEL_PAIRS, PIXEL_SEARCH_FILES,  # a folder, as the report
                           neighbours=rows.neighbours(), features=rows.index.features)
    found += [{"a": str(rows.paths[p["a"]]), "b": str(rows.paths[p["b"]]), "kind": "near",
               "cosine": p["cosine"], "pixels": p["pixels"]} for p in near["pairs"]]
    return found, near


def score(found: list[dict[str, Any]], planted: dict[tuple[str, str], str]
          ) -> dict[str, Any]:
    """Recall per perturbation and overall, precision, and the pairs not planted."""
    keys = {(p["a"], p["b"]) for p in found}
    per_kind = {}
    for kind in PERTURBATIONS:
        mine = [pair for pair, k in planted.items() if k == kind]
        per_kind[kind] = sum(pair in keys for pair in mine) / max(1, len(mine))
    hits = sum(pair in keys for pair in planted)
    others = [p for p in found if (p["a"], p["b"]) not in planted]
    return {"recall": hits / max(1, len(planted)), "precision": hits / max(1, len(keys)),
            "per_kind": per_kind, "found": len(keys), "planted": len(planted),
            "others": others}


def pixel_rule(n: int, seed: int = 0) -> dict[str, Any]:
    """The full-scale calibration of the pixel rule (see the module docstring)."""
    from bottleneck.benching.leaks import PIXEL_MATCH, pixel_similarity
    from bottleneck.data.arrays import load_fashion_mnist_arrays

    arrays, _ = load_fashion_mnist_arrays(None)
    (x_train, _), (x_test, _) = arrays["train"], arrays["t10k"]
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(x_test), n, replace=False)

    def centred(x: np.ndarray) -> np.ndarray:
        v = x.reshape(len(x), -1).astype(np.float32)
        v -= v.mean(axis=1, keepdims=True)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)

    reference = centred(x_train)
    best = []
    for start in range(0, n, 256):
        block = chosen[start:start + 256]
        top = np.argsort(-(centred(x_test[block]) @ reference.T), axis=1)[:, :5]
        best += [max(pixel_similarity(_rgb(x_test[i]), _rgb(x_train[j])) for j in row)
                 for i, row in zip(block, top, strict=True)]
    copies: dict[str, list[float]] = {}
    for kind, (_, make) in PERTURBATIONS.items():
        if kind != "exact":
            copies[kind] = [pixel_similarity(_rgb(x_test[i]), _rgb(np.asarray(
                Image.open(io.BytesIO(make(x_test[i], rng))).convert("L")))) for i in chosen]
    looks, every = np.array(best), np.concatenate(list(copies.values()))
    rows = []
    for threshold in sorted({0.98, 0.99, PIXEL_MATCH, 0.995}):
        rows.append({"threshold": threshold, "look_alikes": int((looks >= threshold).sum()),
                     "copies": float(np.mean(every >= threshold)),
                     "per_kind": {k: float(np.mean(np.array(v) >= threshold))
                                  for k, v in copies.items()}})
        kinds = ", ".join(f"{k} {v:.2f}" for k, v in rows[-1]["per_kind"].items())
        mark = "  ← the rule" if threshold == PIXEL_MATCH else ""
        print(f"pixels ≥ {threshold}: {rows[-1]['look_alikes']} of {n} test images have a "
              f"look-alike among the 60,000 train images; {rows[-1]['copies']:.1%} of their "
              f"copies reach it ({kinds}){mark}")
    return {"test_images": n, "thresholds": rows}


def _rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray(grey, np.uint8)[..., None], 3, axis=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=10000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--planted", type=int, default=300)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--look-alikes", type=int, default=1000,
                        help="test images for the pixel rule at full scale; 0 skips it")
    parser.add_argument("--work", type=Path, help="keep the folder and cache here")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    import bottleneck

    work = args.work or Path(tempfile.mkdtemp(prefix="bench_near_duplicates-"))
    folder = work / "fashion"
    try:
        if (work / "planted.json").exists():
            import json

            planted = {tuple(k.split("|")): v for k, v in
                       json.loads((work / "planted.json").read_text()).items()}
        else:
            shutil.rmtree(folder, ignore_errors=True)
            planted = write_folder(folder, args.train, args.test, args.planted)
            from bottleneck.storage.atomic import write_json

            write_json(work / "planted.json", {"|".join(k): v for k, v in planted.items()})
        started = time.perf_counter()
        cache = bottleneck.extract(str(folder), backbone="efficientnet_lite0",
                                   image_size=args.image_size, out=work / "cache",
                                   progress=False)
        print(f"{args.train} train + {args.planted} planted + {args.test} test images through "
              f"Lite0 at {args.image_size} px: {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        found, near = leak_check(cache)
        seconds = time.perf_counter() - started
        result = score(found, planted)
        kinds = ", ".join(f"{k} {v:.2f}" for k, v in result["per_kind"].items())
        print(f"leak check in {seconds:.1f} s: {near['candidates']} candidates, "
              f"{near['pixels_compared']} compared by pixels, "
              f"{near['pixel_search_rows']} rows' pixels searched")
        print(f"recall {result['recall']:.3f} (target ≥ 0.9; {kinds}); precision "
              f"{result['precision']:.3f} (target ≥ 0.9): {result['found']} pairs found, "
              f"{result['planted']} planted, {len(result['others'])} not planted")
        for pair in result["others"]:
            evidence = "identical pixels" if pair["kind"] == "identical" else (
                f"features {pair['cosine']:.4f}, pixels "
                + ("unread" if pair["pixels"] is None else f"{pair['pixels']:.4f}"))
            print(f"  not planted: {pair['a']} ↔ {pair['b']} ({evidence})")
        calibration = pixel_rule(args.look_alikes) if args.look_alikes else None
        if args.json:
            from bottleneck.storage.atomic import write_json

            write_json(args.json, {"args": {k: str(v) for k, v in vars(args).items()},
                                   "seconds": seconds, **result, "pixel_rule": calibration})
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
