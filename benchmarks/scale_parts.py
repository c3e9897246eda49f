"""The search side of ``bench_scale.py`` (the nearest-neighbour index, ``similar``, the
report): one function per part, each given the size's synthetic cache (``WORK/cache``, from
bench_report.py's writer, with ``WORK/planted.json``), each timed call in a fresh process
(``bench_scale.py --child KIND ...`` runs the ``child_*`` functions here).

- index:   build the cache's index from scratch (``similar --rebuild-index``'s path): seconds
           and peak memory above the process's baseline. Target at 1 M rows: ≤ 3 min.
- similar: 1,000 row-key queries (``--top 10``) through one opened index: median and p95 ms
           per query, and the seconds to open it. Target: median ≤ 20 ms.
- recall:  recall@10 of the index against exact search (every row compared, shard by shard)
           for 1,000 random rows, the row itself left out, on rows of real features' low
           intrinsic dimension (a second cache, written for it) and, the worst case, on the
           synthetic rows (isotropic noise: their nearest ten are barely nearer than the
           rest). Target ≥ 0.95 on the first.
- report:  ``bottleneck report`` of a logreg model fitted on the cache (not timed), its index
           already built: seconds, peak memory above baseline against the cache's float32
           size, the share of flipped labels in the label-error section's top 2× and the
           planted copies found. Targets at 1 M rows: ≤ 5 min, ≤ 1× the float32 size.
- image:   ``bottleneck.similar(CACHE, [IMAGE])`` in a cold process, the cache's rows under a
           real EfficientNet-Lite0 cache's config (offline ImageNet weights), with a user
           cache dir of its own: the first query on the machine (builds the Keras backbone,
           keeps its OpenVINO conversion), then the next in a fresh process (runs that
           conversion): seconds after importing the backend (the import is printed apart,
           not counted; target ≤ 1 s), and once more without importing any backend.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_report import DIMS, _peak, _reset_peak

BENCH = Path(__file__).resolve().parent / "bench_scale.py"

QUERIES = 1000
TOP = 10


def _child(part: str, *args: str) -> dict[str, Any]:
    """Run ``part`` in a fresh process; its last stdout line is JSON."""
    done = subprocess.run([sys.executable, str(BENCH), "--child", part, *args],
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{part} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measured(run: Any) -> dict[str, Any]:
    """Seconds and peak resident memory above the baseline of ``run()``."""
    import psutil

    baseline = psutil.Process().memory_info().rss
    reset = _reset_peak()
    started = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - started
    peak = _peak() if reset else 0
    return {"seconds": seconds, "above_baseline": peak - baseline, "result": result}


def child_index(cache: str) -> dict[str, Any]:
    from bottleneck.cache import open_cache
    from bottleneck.cache.index_files import open_index

    opened = open_cache(cache)
    measured = _measured(lambda: open_index(opened, rebuild=True).kind)
    return {"seconds": measured["seconds"], "above_baseline": measured["above_baseline"],
            "kind": measured["result"]}


def child_similar(cache: str) -> dict[str, Any]:
    from bottleneck.models.similar import Searcher

    started = time.perf_counter()
    searcher = Searcher(cache)
    keys = list(searcher.row_keys())
    opened = time.perf_counter() - started
    rng = np.random.default_rng(0)
    times = []
    for key in rng.choice(keys, QUERIES, replace=False):
        started = time.perf_counter()
        searcher.by_key(str(key), TOP)
        times.append((time.perf_counter() - started) * 1000)
    return {"median_ms": float(np.median(times)), "p95_ms": float(np.percentile(times, 95)),
            "open_seconds": opened, "kind": searcher.index.kind}


def child_image(cache: str, image: str, backend: str = "import") -> dict[str, Any]:
    started = time.perf_counter()
    if backend == "import":
        import keras  # noqa: F401  the backend's import, left out of the figure
    imported = time.perf_counter() - started
    import bottleneck

    started = time.perf_counter()
    answer = bottleneck.similar(cache, [image], top=TOP)[0]
    return {"seconds": time.perf_counter() - started, "backend_import": imported,
            "found": len(answer.get("neighbours", [])), "keras_loaded": "keras" in sys.modules}


def child_report(model: str, out: str) -> dict[str, Any]:
    import skops.io._trusted_types  # noqa: F401  loading a head imports all of scikit-learn

    import bottleneck.reporting.assemble  # noqa: F401  every module the report uses
    import bottleneck.reporting.render  # noqa: F401
    from bottleneck.reporting import report

    measured = _measured(lambda: report([model], out, json_out=out + ".json").summary())
    return {"seconds": measured["seconds"], "above_baseline": measured["above_baseline"],
            "summary": measured["result"]}


def exact_top(cache: Any, queries: np.ndarray, k: int) -> np.ndarray:
    """Each query's ``k`` most similar rows by comparing every row, shard by shard."""
    from bottleneck.cache.index import unit

    best = np.full((len(queries), k), -np.inf, np.float32)
    rows = np.full((len(queries), k), -1, np.int64)
    offset = 0
    for batch in cache.iter_batches(None, 1 << 15):
        block = queries @ unit(batch["features"]).T
        both = np.concatenate([best, block], axis=1)
        ids = np.concatenate([rows, np.broadcast_to(np.arange(offset, offset + block.shape[1]),
                                                    block.shape)], axis=1)
        top = np.argsort(-both, axis=1)[:, :k]
        best, rows = np.take_along_axis(both, top, 1), np.take_along_axis(ids, top, 1)
        offset += block.shape[1]
    return rows


def part_index(cache: Path) -> dict[str, Any]:
    result = _child("index", str(cache))
    float32 = _float32(cache)
    print(f"  index: {result['kind']} built in {result['seconds']:.1f} s, "
          f"{result['above_baseline'] / 2**20:.0f} MiB above baseline "
          f"({result['above_baseline'] / float32:.2f}× the float32 size)")
    return result


def part_similar(cache: Path) -> dict[str, Any]:
    result = _child("similar", str(cache))
    print(f"  similar: {QUERIES} row-key queries, median {result['median_ms']:.2f} ms, p95 "
          f"{result['p95_ms']:.2f} ms ({result['kind']}; opened in "
          f"{result['open_seconds']:.1f} s)")
    return result


def structured_cache(root: Path, rows: int, seed: int = 0) -> Path:
    """A cache whose rows have the low intrinsic dimension of real features: 500 clusters in
    a 64-d latent space, mapped to 1280-d by a random matrix, plus noise, ReLU'd."""
    from bench_report import CLASSES, SHARD_ROWS

    from bottleneck.cache.manifest import Manifest, ShardRecord, shard_name
    from bottleneck.cache.shards import ShardWriter

    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (500, 64)).astype(np.float32)
    mixing = rng.normal(0, 1, (64, DIMS)).astype(np.float32)
    root.mkdir(parents=True)
    shards = []
    for number, start in enumerate(range(0, rows, SHARD_ROWS)):
        n = min(SHARD_ROWS, rows - start)
        cluster = rng.integers(0, 500, n)
        latent = centres[cluster] + 0.6 * rng.standard_normal((n, 64), dtype=np.float32)
        features = latent @ mixing + 2 * rng.standard_normal((n, DIMS), dtype=np.float32)
        np.maximum(features, 0, out=features)
        path = root / shard_name(number)
        writer = ShardWriter(path, (DIMS,), "float32", n)
        writer.append(features, cluster % len(CLASSES), [f"s/{start + i}" for i in range(n)],
                      ["train"] * n, rng.integers(0, 2**63, n, dtype=np.uint64))
        shards.append(ShardRecord(shard_name(number), n, f"{number:064x}", "done", n,
                                  writer.commit({}), failures=[], bytes=path.stat().st_size))
    config = {"backbone": "synthetic", "feature_shape": [DIMS], "dtype": "float32",
              "image_size": 28, "preprocessing": {}}
    Manifest(config, {"kind": "npz", "path": "none"}, CLASSES, {}, shards, complete=True,
             rows=rows, split_counts={"train": rows}, failures=0).save(root)
    return root


def _recall(cache: Path) -> tuple[float, str, int]:
    from bottleneck.cache import open_cache
    from bottleneck.cache.index_files import open_index

    opened = open_cache(cache)
    index = open_index(opened)
    rng = np.random.default_rng(1)
    rows = np.sort(rng.choice(index.rows, min(QUERIES, index.rows), replace=False))
    queries = index.features(rows)
    found, _ = index.search(queries, TOP + 1)
    truth = exact_top(opened, queries, TOP + 1)
    recall = np.mean([len(set(a[a != r][:TOP]) & set(b[b != r][:TOP])) / TOP
                      for a, b, r in zip(found, truth, rows, strict=True)])
    index.close()
    return float(recall), index.kind, len(rows)


def part_recall(cache: Path) -> dict[str, Any]:
    """Recall@10 on the report's synthetic rows (isotropic noise around ten centres: every
    row's ten nearest are barely nearer than the rest, the worst case of any approximate
    search) and on rows of real features' low intrinsic dimension (:func:`structured_cache`,
    the figure the target is about)."""
    noise, kind, n = _recall(cache)
    started = time.perf_counter()
    shutil.rmtree(cache.parent / "structured", ignore_errors=True)
    structured = structured_cache(cache.parent / "structured", _rows(cache))
    print(f"  (structured cache written in {time.perf_counter() - started:.0f} s)")
    real, _, _ = _recall(structured)
    shutil.rmtree(structured, ignore_errors=True)
    print(f"  recall@{TOP} ({kind} vs exact, {n} rows): {real:.4f} on structured rows "
          f"(target ≥ 0.95); {noise:.4f} on the report's isotropic synthetic rows")
    return {"recall_at_10": real, "recall_at_10_isotropic": noise, "kind": kind, "queries": n}


def _rows(cache: Path) -> int:
    from bottleneck.cache.manifest import Manifest

    manifest = Manifest.load(cache)
    assert manifest is not None
    return int(manifest.rows or 0)


def part_report(cache: Path) -> dict[str, Any]:
    import bottleneck
    from bottleneck.cache import open_cache
    from bottleneck.cache.index_files import open_index

    work = cache.parent
    model = work / "m-linear"  # the fit part's linear probe (it streams at any size)
    if not (model / "head.json").exists():
        bottleneck.fit(cache, "linear", model, overwrite=True)
    open_index(open_cache(cache))  # built (or kept) before the timed run
    result = _child("report", str(model), str(work / "report.html"))
    doc = json.loads((work / "report.html.json").read_text())["caches"][0]
    planted = json.loads((work / "planted.json").read_text())
    flagged = [r["key"] for r in (doc["label_errors"] or {}).get("all", [])]
    top = set(flagged[: 2 * len(planted["flipped"])])
    result["label_recall"] = len(top & set(planted["flipped"])) / len(planted["flipped"])
    found = {(p["a"], p["b"]) for p in doc["leaks"]["near"]["all_pairs"]}
    result["copies_found"] = len(found & {tuple(c) for c in planted["copies"]})
    float32 = _float32(cache)
    result["float32_ratio"] = result["above_baseline"] / float32
    print(f"  report: {result['seconds']:.1f} s, {result['above_baseline'] / 2**20:.0f} MiB "
          f"above baseline = {result['float32_ratio']:.2f}× the float32 size "
          f"({float32 / 2**20:.0f} MiB); {result['label_recall']:.0%} of flipped labels in "
          f"the top 2×, {result['copies_found']}/{len(planted['copies'])} planted copies")
    return result


def part_image(cache: Path) -> dict[str, Any]:
    """One image query from a cold process: the cache's rows under the config of a real
    EfficientNet-Lite0 cache (ImageNet weights, offline; 224 px, 1280-d like the rows), so
    the query builds the real backbone, runs it and searches the index."""
    import os

    from PIL import Image

    import bottleneck
    from bottleneck.backbones.lite0_weights import weights_dir
    from bottleneck.cache import open_cache
    from bottleneck.cache.index_files import open_index
    from bottleneck.cache.manifest import Manifest

    work = cache.parent
    folder = work / "images" / "train" / "thing"
    for old in (work / "images", work / "real", work / "as-lite0"):
        shutil.rmtree(old, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)).save(
            folder / f"{i}.png")
    real = bottleneck.extract(str(work / "images"), backbone="efficientnet_lite0",
                              out=work / "real", progress=False)
    borrowed = work / "as-lite0"
    borrowed.mkdir()
    for shard in cache.glob("shard-*.h5"):
        os.link(shard, borrowed / shard.name)
    manifest = Manifest.load(cache)
    assert manifest is not None and real.feature_shape == (DIMS,)
    manifest.config = real.config
    manifest.save(borrowed)
    if (cache / "index").is_dir():
        shutil.copytree(cache / "index", borrowed / "index")
    open_index(open_cache(borrowed))  # built (or kept) before the timed query
    # a user cache dir of its own (the weights linked in), so the first query is the first
    user_cache = work / "user-cache"
    shutil.rmtree(user_cache, ignore_errors=True)
    user_cache.mkdir()
    (user_cache / "weights").symlink_to(weights_dir())
    before = os.environ.get("BOTTLENECK_CACHE_DIR")
    os.environ["BOTTLENECK_CACHE_DIR"] = str(user_cache)
    try:
        query = (str(borrowed), str(folder / "0.png"))
        first = _child("image", *query)
        result = _child("image", *query)
        started = time.perf_counter()
        bare = _child("image", *query, "none")
        bare["process_seconds"] = time.perf_counter() - started
    finally:
        os.environ.pop("BOTTLENECK_CACHE_DIR")
        if before is not None:
            os.environ["BOTTLENECK_CACHE_DIR"] = before
    print(f"  image query, first on this machine (builds the Keras model, keeps its "
          f"conversion): {first['seconds']:.2f} s besides importing the backend")
    print(f"  image query, cold process: {result['seconds']:.2f} s besides importing the "
          f"backend ({result['backend_import']:.1f} s); {result['found']} rows answered")
    print(f"  image query, cold process importing no backend: {bare['seconds']:.2f} s, the "
          f"whole process {bare['process_seconds']:.2f} s (Keras loaded: "
          f"{bare['keras_loaded']})")
    return {**result, "first_seconds": first["seconds"], "no_backend": bare}


def _float32(cache: Path) -> int:
    return _rows(cache) * DIMS * 4
