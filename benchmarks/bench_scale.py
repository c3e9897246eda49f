"""How bottleneck scales with the rows of a cache: seconds and peak memory per measured part.

    python benchmarks/bench_scale.py [--rows 100000,300000,1000000] [--imagenet]
                                     [--parts fit,bench,accuracy] [--heads linear,logreg,...]
                                     [--work DIR] [--json PATH]

Caches are written synthetically (``bottleneck.cache.synthetic``, as ``bench_report``): 1280-d
float32 rows in 10 Gaussian classes, split like Fashion-MNIST, at each ``--rows``;
``--imagenet`` adds 1.28 M × 2048 float16 rows in 1000 classes. Each measured run is a fresh
process: its seconds, and its peak resident memory (Linux VmHWM, reset after the imports)
above that process's baseline. Between sizes, the growth exponent ``log(t₂/t₁) / log(n₂/n₁)``
(1.0: linear in the rows).

Parts (one function each, ``PARTS``; more can be added):
- ``fit``: ``bottleneck fit`` of each head (``--heads``; default one per family: the
  streaming ``linear`` probe, scikit-learn's ``logreg``, ``linear-svm``, ``ridge`` and — up to
  20,000 rows, it is quadratic — ``svm``, and the Keras ``dense``), with the memory check of
  the machine; a head refused for memory is reported as such. The linear probe runs twice: as
  ``fit`` chooses (it loads the split when it fits in memory) and with ``--stream``.
- ``bench``: ``bottleneck bench`` with three heads (linear, logreg, dense), no best model.
- ``accuracy``: the linear probe against scikit-learn's L-BFGS ``LogisticRegression`` (the
  ``logreg`` head) where both run, C chosen on val from the same grid, test accuracy of each.

Run it alone on the machine (it is meant to measure); check it with ``--rows 3000,6000``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
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

from bench_report import _peak, _reset_peak  # noqa: E402

DIMS = 1280
CLASSES = 10
IMAGENET = {"rows": 1_281_167, "dims": 2048, "classes": 1000, "dtype": "float16"}
FAMILIES = ("linear", "logreg", "linear-svm", "ridge", "svm", "dense")
SVM_MAX_ROWS = 20_000
BENCH_HEADS = ("linear", "logreg", "dense")
GRID = (0.01, 0.1, 1.0)
# The linear probe's L-BFGS iterations over all the rows on the 1000-class ImageNet shape:
# each is a pass of ~10 TFLOP (1.28 M × 2048 × 1000, forward and gradient), the rest of the
# 30 min after the sample's in-memory solve.
IMAGENET_PARAMS = {"linear": {"max_iter": 15}}


def write_cache(work: Path, rows: int, dims: int, classes: int, dtype: str) -> Path:
    """The synthetic cache of one size (written once, reused by every part)."""
    from bottleneck.cache.synthetic import gaussian_shards, write_cache

    root = work / f"cache-{rows}x{dims}-{classes}-{dtype}"
    if not (root / "manifest.json").is_file():
        started = time.perf_counter()
        write_cache(root, gaussian_shards(rows, dims, classes, spread=0.1 * math.sqrt(
            10 / classes)), [f"class{i}" for i in range(classes)], (dims,), dtype=dtype)
        print(f"cache of {rows} × {dims} {dtype} ({classes} classes) written in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    return root


def child(kind: str, spec: str) -> None:
    """In this fresh process: run one measured call and print its seconds, memory, result."""
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
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
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
    runs = {}
    for head in options.heads:
        if head == "svm" and rows > SVM_MAX_ROWS:
            continue
        params = IMAGENET_PARAMS.get(head) if options.imagenet_run else None
        runs[head] = measure("fit", cache=str(cache), head=head, out=str(work / f"m-{head}"),
                             params=params)
        print(_line(f"fit {head}", runs[head]), flush=True)
        if head == "linear":  # loaded when it fits in memory; streamed, whatever the size
            runs["linear --stream"] = measure("fit", cache=str(cache), head=head, stream=True,
                                              out=str(work / "m-streamed"), params=params)
            print(_line("fit linear --stream", runs["linear --stream"]), flush=True)
    return runs


def part_bench(cache: Path, rows: int, work: Path, options: argparse.Namespace
               ) -> dict[str, Any]:
    """``bench`` of three heads on one cache."""
    run = measure("bench", cache=str(cache), heads=list(BENCH_HEADS), out=str(work / "bench"))
    print(_line(f"bench {','.join(BENCH_HEADS)}", run), flush=True)
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


PARTS: dict[str, Callable[[Path, int, Path, argparse.Namespace], dict[str, Any]]] = {
    "fit": part_fit, "bench": part_bench, "accuracy": part_accuracy}


def growth(results: dict[int, dict[str, Any]]) -> None:
    """Print each measured run's growth exponent between consecutive sizes."""
    sizes = sorted(results)
    for small, large in zip(sizes, sizes[1:], strict=False):
        for part, runs in results[large].items():
            items = runs.items() if part == "fit" else [(part, runs)]
            for name, run in items:
                before = results[small].get(part, {})
                before = before.get(name, {}) if part == "fit" else before
                if "seconds" not in run or "seconds" not in before:
                    continue
                step = math.log(large / small)
                t = math.log(run["seconds"] / before["seconds"]) / step
                m = math.log(max(run["above_baseline"], 1) / max(before["above_baseline"], 1)) \
                    / step
                print(f"  {small} → {large} rows, {name}: seconds grow as n^{t:.2f}, memory "
                      f"as n^{m:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="100000,300000,1000000",
                        help="comma-separated row counts of the 1280-d caches")
    parser.add_argument("--imagenet", action="store_true",
                        help="also 1.28 M × 2048 float16 rows in 1000 classes")
    parser.add_argument("--parts", default="fit,bench,accuracy",
                        help=f"comma-separated, of: {', '.join(PARTS)}")
    parser.add_argument("--heads", default=",".join(FAMILIES))
    parser.add_argument("--work", help="folder for the caches (default: a temporary one)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(*options.child)
        return
    options.heads = options.heads.split(",")
    parts = options.parts.split(",")
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {sorted(unknown)}; choose from {', '.join(PARTS)}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(options.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        shapes = [(int(n), DIMS, CLASSES, "float32") for n in options.rows.split(",")]
        if options.imagenet:
            shapes.append(tuple(IMAGENET.values()))  # type: ignore[arg-type]
        results: dict[int, dict[str, Any]] = {}
        imagenet: dict[str, Any] = {}
        for rows, dims, classes, dtype in shapes:
            print(f"{rows} rows × {dims} {dtype}, {classes} classes:", flush=True)
            cache = write_cache(work, rows, dims, classes, dtype)
            options.imagenet_run = classes == IMAGENET["classes"]
            measured = {part: PARTS[part](cache, rows, work, options) for part in parts}
            (imagenet if options.imagenet_run else results.setdefault(rows, {})).update(measured)
        growth(results)
        if options.json:
            Path(options.json).write_text(json.dumps(
                {"rows": results, "imagenet": imagenet}, indent=1, default=str))


if __name__ == "__main__":
    main()
