"""How bottleneck scales with the rows of a cache: seconds and peak memory per measured part,
the growth exponent between sizes, and each target of issue 26 beside its figure.

    python benchmarks/bench_scale.py [--rows 100000,300000,1000000] [--imagenet]
        [--parts fit,bench,accuracy,index,similar,recall,report,image] [--heads linear,...]
        [--work DIR] [--json PATH]

One synthetic cache per size, shared by every part (bench_report.py's writer: 1280-d float32
rows in 10 classes, split like Fashion-MNIST, 5% of train labels flipped, 50 train rows
copied into test); ``--imagenet`` adds 1.28 M × 2048 float16 rows in 1000 classes
(``bottleneck.cache.synthetic``), on which only ``fit --stream`` of the linear probe runs
(its target: to completion within 30 min; ``--rows "" --parts fit --imagenet`` runs it
alone). Each measured call is a fresh process: its seconds, and its peak resident memory
(Linux VmHWM, reset after the imports) above that process's baseline.
Between sizes, the growth exponent ``log(t₂/t₁) / log(n₂/n₁)`` (1.0: linear in the rows).

Parts (one function each, ``PARTS``):
- ``fit``: ``bottleneck fit`` of each head family (``--heads``; default the streaming
  ``linear`` probe, scikit-learn's ``logreg``, ``linear-svm``, ``ridge`` and — up to 20,000
  rows, it is quadratic — ``svm``, and the Keras ``dense``), with the machine's memory check;
  a head refused for memory is reported as such. The linear probe runs twice: as ``fit``
  chooses (it loads the split when it fits in memory) and with ``--stream`` (the run its
  memory target is judged on).
- ``bench``: ``bottleneck bench`` with three heads (linear, logreg, dense), no best model.
- ``accuracy``: the linear probe against scikit-learn's L-BFGS ``LogisticRegression`` (the
  ``logreg`` head) where both run, C chosen on val from the same grid, test accuracy of each.
- ``index``, ``similar``, ``recall``, ``report``, ``image``: the search side
  (:mod:`scale_parts`): index build, 1,000 row-key queries, recall@10 vs exact, the report,
  one image query from a cold process (the backend's import not counted).

Caches live under ``--work`` (kept, and reused by a later run) or a temporary folder (each
size's removed when its parts are done). Run it alone on the machine (it is meant to
measure); check it with ``--rows 3000,6000``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale_parts  # noqa: E402
from bench_report import _peak, _reset_peak  # noqa: E402

DIMS = 1280
CLASSES = 10
IMAGENET = {"rows": 1_281_167, "dims": 2048, "classes": 1000, "dtype": "float16"}
# class centres' deviation: nearest-centre on 3,000 of these rows (before the ReLU) is right
# 87% of the time, so accuracy means something (0.1·√(10/1000), used before, was chance: 0.1%)
IMAGENET_SPREAD = 0.1
FAMILIES = ("linear", "logreg", "linear-svm", "ridge", "svm", "dense")
SVM_MAX_ROWS = 20_000
BENCH_HEADS = ("linear", "logreg", "dense")
GRID = (0.01, 0.1, 1.0)
# The linear probe's L-BFGS iterations over all the rows on the 1000-class ImageNet shape:
# each is a pass of ~10 TFLOP (1.28 M × 2048 × 1000, forward and gradient; ~65 s here), and
# the sample's warm start may cost half as much again (heads/linear.sample_iterations).
IMAGENET_PARAMS = {"linear": {"max_iter": 10}}


def size_cache(work: Path, rows: int) -> Path:
    """The size's synthetic cache, ``work/cache`` (written once, reused by every part)."""
    from bench_report import synthetic_cache

    if not (work / "cache" / "manifest.json").is_file() or not (work / "planted.json").is_file():
        shutil.rmtree(work / "cache", ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        planted = synthetic_cache(work, rows)
        (work / "planted.json").write_text(json.dumps(planted))
        print(f"cache of {rows} × {DIMS} float32 written in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    return work / "cache"


def imagenet_cache(work: Path) -> Path:
    """The ImageNet-1k-shaped cache (written once)."""
    from bottleneck.cache.synthetic import gaussian_shards, write_cache

    rows, dims, classes, dtype = IMAGENET.values()
    root = work / f"cache-spread{IMAGENET_SPREAD}"
    if not (root / "manifest.json").is_file():
        shutil.rmtree(root, ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        write_cache(root, gaussian_shards(rows, dims, classes, spread=IMAGENET_SPREAD),
                    [f"class{i}" for i in range(classes)], (dims,), dtype=dtype)
        print(f"cache of {rows} × {dims} {dtype} ({classes} classes) written in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    return root


def child(kind: str, *rest: str) -> None:
    """In this fresh process: run one measured call and print its seconds, memory, result."""
    if kind in CHILDREN:
        print(json.dumps(CHILDREN[kind](*rest)))
        return
    spec = rest[0]
    import psutil
    import skops.io._trusted_types  # noqa: F401  saving a head imports all of scikit-learn

    import bottleneck
    import bottleneck.benching  # noqa: F401  every module the call uses, before the baseline
    import bottleneck.models.fit  # noqa: F401
    import bottleneck.models.plots  # noqa: F401
    from bottleneck.backend import import_keras

    import_keras()
    args = json.loads(spec)
    baseline = psutil.Process().memory_info().rss
    reset = _reset_peak()
    started = time.perf_counter()
    try:
        if kind == "fit":
            result = bottleneck.fit(args["cache"], args["head"], args["out"],
                                    params=args.get("params"), overwrite=True,
                                    stream=args.get("stream"))
            summary = {"metrics": {s: {k: v for k, v in m.items() if k == "accuracy"}
                                   for s, m in result.metrics.items()},
                       "streamed": result.streamed}
        else:
            report = bottleneck.bench([args["cache"]], heads=args["heads"], out=args["out"],
                                      grid=args.get("grid"), model=False, progress=False)
            summary = {"rows": [{k: r.get(k) for k in ("head", "params", "val_accuracy",
                                                       "test_accuracy", "fit_seconds")}
                                for r in report["rows"]]}
    except bottleneck.errors.UserError as exc:
        print(json.dumps({"refused": str(exc)}))
        return
    seconds = time.perf_counter() - started
    peak = _peak() if reset else 0
    print(json.dumps({"seconds": seconds, "above_baseline": peak - baseline, **summary}))


def measure(kind: str, **args: Any) -> dict[str, Any]:
    """Run one call in a fresh process; its JSON line."""
    done = subprocess.run([sys.executable, __file__, "--child", kind, json.dumps(args)],
                          capture_output=True, text=True)
    if done.returncode < 0:
        return {"error": f"killed by signal {-done.returncode}"}
    if done.returncode:
        lines = [line for line in done.stderr.splitlines() if "Error" in line or "error" in line]
        return {"error": (lines or done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _line(name: str, run: dict[str, Any]) -> str:
    if "refused" in run or "error" in run:
        return f"  {name}: {'refused' if 'refused' in run else 'error'}: " \
               f"{run.get('refused') or run.get('error')}"
    accuracy = run.get("metrics", {}).get("test", {}).get("accuracy")
    return (f"  {name}: {run['seconds']:.1f} s, {run['above_baseline'] / 2**20:.0f} MiB above "
            f"baseline" + (f", test accuracy {accuracy:.4f}" if accuracy is not None else "")
            + (" (streamed)" if run.get("streamed") else ""))


def part_fit(cache: Path, rows: int, work: Path, options: argparse.Namespace
             ) -> dict[str, Any]:
    """``fit`` of each head family on one cache."""
    runs: dict[str, Any] = {}
    if options.imagenet_run:  # streamed: what the target is about (loaded, it needs 5 GB)
        runs["linear --stream"] = measure("fit", cache=str(cache), head="linear", stream=True,
                                          out=str(work / "m-streamed"),
                                          params=IMAGENET_PARAMS["linear"])
        print(_line("fit linear --stream", runs["linear --stream"]), flush=True)
        return runs
    for head in options.heads:
        if head == "svm" and rows > SVM_MAX_ROWS:
            continue
        runs[head] = measure("fit", cache=str(cache), head=head, out=str(work / f"m-{head}"))
        print(_line(f"fit {head}", runs[head]), flush=True)
        if head == "linear":  # loaded when it fits in memory; streamed, whatever the size
            runs["linear --stream"] = measure("fit", cache=str(cache), head=head, stream=True,
                                              out=str(work / "m-streamed"))
            print(_line("fit linear --stream", runs["linear --stream"]), flush=True)
    return runs


def part_bench(cache: Path, rows: int, work: Path, options: argparse.Namespace
               ) -> dict[str, Any]:
    """``bench`` of three heads on one cache."""
    heads = list(BENCH_HEADS)
    run = measure("bench", cache=str(cache), heads=heads, out=str(work / "bench"))
    if "refused" in run:  # a head that loads every split does not fit: the ones that stream
        print(_line(f"bench {','.join(heads)}", run), flush=True)
        from bottleneck.heads import HEADS

        heads = [h for h in heads if HEADS[h].streams]
        run = measure("bench", cache=str(cache), heads=heads, out=str(work / "bench"))
    print(_line(f"bench {','.join(heads)}", run), flush=True)
    return run


def part_accuracy(cache: Path, rows: int, work: Path, options: argparse.Namespace
                  ) -> dict[str, Any]:
    """The linear probe against scikit-learn's L-BFGS logreg, C chosen on val (same grid)."""
    run = measure("bench", cache=str(cache), heads=["linear", "logreg"], out=str(work / "acc"),
                  grid={"C": list(GRID)})
    if "rows" not in run:
        print(_line("accuracy", run), flush=True)
        return run
    best = {}
    for row in run["rows"]:  # ranked by val accuracy: the first row of a head is its best
        best.setdefault(row["head"], row)
    if len(best) == 2:
        gap = 100 * (best["linear"]["test_accuracy"] - best["logreg"]["test_accuracy"])
        print(f"  accuracy: linear {best['linear']['test_accuracy']:.4f} "
              f"(C={best['linear']['params'].get('C')}) vs logreg "
              f"{best['logreg']['test_accuracy']:.4f} (C={best['logreg']['params'].get('C')}):"
              f" {gap:+.2f} points (target within 0.3)", flush=True)
    return {"best": best, **run}


def _search(part: Callable[[Path], dict[str, Any]]
            ) -> Callable[[Path, int, Path, argparse.Namespace], dict[str, Any]]:
    return lambda cache, rows, work, options: part(cache)


PARTS: dict[str, Callable[[Path, int, Path, argparse.Namespace], dict[str, Any]]] = {
    "fit": part_fit, "bench": part_bench, "accuracy": part_accuracy,
    "index": _search(scale_parts.part_index), "similar": _search(scale_parts.part_similar),
    "recall": _search(scale_parts.part_recall), "report": _search(scale_parts.part_report),
    "image": _search(scale_parts.part_image)}
CHILDREN = {"index": scale_parts.child_index, "similar": scale_parts.child_similar,
            "report": scale_parts.child_report, "image": scale_parts.child_image}
# The timed figures whose growth is printed: (part, name in part's result or None) → key.
TIMED = {("index", None): "seconds", ("similar", None): "median_ms",
         ("report", None): "seconds", ("bench", None): "seconds"}


def _runs(part: str, measured: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    """``(name, run, timed key)`` of one part's measured runs."""
    if part == "fit":
        return [(f"fit {name}", run, "seconds") for name, run in measured.items()]
    if (part, None) in TIMED:
        return [(part, measured, TIMED[(part, None)])]
    return []


def growth(results: dict[int, dict[str, Any]]) -> dict[str, list[float]]:
    """Print (and return) each timed run's growth exponent between consecutive sizes."""
    sizes = sorted(results)
    found: dict[str, list[float]] = {}
    for small, large in zip(sizes, sizes[1:], strict=False):
        step = math.log(large / small)
        for part, measured in results[large].items():
            before = dict((n, (r, k)) for n, r, k in _runs(part, results[small].get(part, {})))
            for name, run, key in _runs(part, measured):
                old = before.get(name, ({}, key))[0]
                if not run.get(key) or not old.get(key):
                    continue
                t = math.log(run[key] / old[key]) / step
                found.setdefault(name, []).append(t)
                memory = ""
                if run.get("above_baseline", 0) > 0 and old.get("above_baseline", 0) > 0:
                    m = math.log(run["above_baseline"] / old["above_baseline"]) / step
                    memory = f", memory as n^{m:.2f}"
                print(f"  {small} → {large} rows, {name}: {key} grow as n^{t:.2f}{memory}")
    return found


def summary(results: dict[int, dict[str, Any]], imagenet: dict[str, Any]) -> list[str]:
    """Each target of issue 26 beside its figure at the largest size measured (a figure below
    1 M rows is scaled to 1 M linearly, marked 'scaled')."""
    lines: list[str] = []
    n = max(results) if results else 1_000_000  # --rows "": the ImageNet shape alone
    got = results.get(n, {})
    scale = 1_000_000 / n
    at = f"at {n} rows" + ("" if n == 1_000_000 else f", ×{scale:.1f} scaled to 1 M")

    def verdict(name: str, figure: float | None, target: float, text: str,
                scaled: bool = True, at_least: bool = False) -> None:
        if figure is None:
            lines.append(f"  {name}: not measured (target {text})")
            return
        value = figure * (scale if scaled else 1)
        met = value >= target if at_least else value <= target
        lines.append(f"  {name}: {value:.3g} ({text}; {'met' if met else 'NOT MET'}"
                     f"{', ' + at if scaled and n != 1_000_000 else ''})")

    fits = got.get("fit", {})
    probe = fits.get("linear --stream") or fits.get("linear") or {}
    verdict("linear probe, seconds", probe.get("seconds"), 300, "≤ 300 s at 1 M")
    verdict("linear probe, GiB above baseline (streamed)",
            probe.get("above_baseline", 0) / 2**30 if probe else None, 2,
            "≤ 2 GiB at 1 M", scaled=False)
    fitted = imagenet.get("fit", {})
    run = fitted.get("linear --stream") or fitted.get("linear") or {}
    verdict("linear probe on ImageNet-1k shape, seconds", run.get("seconds"), 1800,
            "completes ≤ 1800 s", scaled=False)
    for rows in sorted(results):
        best = results[rows].get("accuracy", {}).get("best", {})
        if len(best) == 2:
            gap = 100 * abs(best["linear"]["test_accuracy"] - best["logreg"]["test_accuracy"])
            verdict(f"accuracy gap to L-BFGS logreg at {rows} rows, points", gap, 0.3,
                    "≤ 0.3", scaled=False)
    report = got.get("report", {})
    verdict("report, seconds", report.get("seconds"), 300, "≤ 300 s at 1 M")
    verdict("report, × the float32 size above baseline", report.get("float32_ratio"), 1.0,
            "≤ 1×", scaled=False)
    sizes = sorted(r for r in results if results[r].get("report", {}).get("seconds"))
    if len(sizes) > 1:
        a, b = results[sizes[0]]["report"]["seconds"], results[sizes[-1]]["report"]["seconds"]
        verdict(f"report, time exponent {sizes[0]} → {sizes[-1]}",
                math.log(b / a) / math.log(sizes[-1] / sizes[0]), 1.15, "≤ 1.15",
                scaled=False)
    verdict("index build, seconds", got.get("index", {}).get("seconds"), 180, "≤ 180 s at 1 M")
    verdict("recall@10 vs exact (structured rows)",
            got.get("recall", {}).get("recall_at_10"), 0.95, "≥ 0.95", scaled=False,
            at_least=True)
    verdict("row-key query, median ms", got.get("similar", {}).get("median_ms"), 20,
            "≤ 20 ms", scaled=False)
    verdict("image query, cold process, seconds besides the backend's import",
            got.get("image", {}).get("seconds"), 1.0, "≤ 1 s", scaled=False)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="100000,300000,1000000",
                        help="comma-separated row counts of the 1280-d caches (\"\": none, "
                             "e.g. with --imagenet alone)")
    parser.add_argument("--imagenet", action="store_true",
                        help="also fit the linear probe on 1.28 M × 2048 float16 rows in "
                             "1000 classes")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated, of: {', '.join(PARTS)}")
    parser.add_argument("--heads", default=",".join(FAMILIES))
    parser.add_argument("--work", help="folder for the caches, kept (default: a temporary "
                                       "one, each size's removed when done)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(*options.child)
        return
    options.heads = options.heads.split(",")
    parts = [p.strip() for p in options.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {sorted(unknown)}; choose from {', '.join(PARTS)}")
    with tempfile.TemporaryDirectory(prefix="bench_scale-") as tmp:
        base = Path(options.work or tmp)
        results: dict[int, dict[str, Any]] = {}
        imagenet: dict[str, Any] = {}
        options.imagenet_run = False
        for rows in sorted(int(n) for n in options.rows.split(",") if n.strip()):
            print(f"{rows} rows × {DIMS} float32, {CLASSES} classes:", flush=True)
            work = base / f"rows-{rows}"
            cache = size_cache(work, rows)
            results[rows] = {part: PARTS[part](cache, rows, work, options) for part in parts}
            if not options.work:
                shutil.rmtree(work, ignore_errors=True)
        if options.imagenet and "fit" in parts:
            print(f"ImageNet-1k shape, {' × '.join(map(str, list(IMAGENET.values())[:2]))} "
                  f"{IMAGENET['dtype']}, {IMAGENET['classes']} classes:", flush=True)
            options.imagenet_run, heads = True, options.heads
            options.heads = ["linear"]
            work = base / "imagenet"
            imagenet["fit"] = part_fit(imagenet_cache(work), IMAGENET["rows"], work, options)
            options.heads = heads
        print("growth:")
        exponents = growth(results)
        lines = summary(results, imagenet)
        print("targets (issue 26):")
        print("\n".join(lines))
        if options.json:
            Path(options.json).write_text(json.dumps(
                {"rows": results, "imagenet": imagenet, "growth": exponents,
                 "targets": lines}, indent=1, default=str))


if __name__ == "__main__":
    main()
