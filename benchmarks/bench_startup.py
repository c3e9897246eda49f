"""Start-up of short commands: wall seconds of fresh `bottleneck` processes (issue 24, item 8).

    python benchmarks/bench_startup.py [--rounds 7] [--json PATH]

Each case is a whole command in a new process, as a user types it (the interpreter, imports,
the work, writing the result); cases run interleaved, round after round, and the medians are
printed beside the issue's targets:

- ``fit logreg``: a logistic-regression head on a small cache (600 rows × 64, 3 classes;
  written by ``bottleneck.cache.synthetic``), into a fresh folder each round (target ≤ 1.5 s);
- ``bad backbone``: ``extract`` with an unknown backbone name, refused (≤ 1 s);
- ``bad argument``: ``fit`` with an unknown head, refused (≤ 1 s);
- ``predict missing``: ``predict`` on an image that does not exist, refused (≤ 1 s);
- ``python``: the interpreter alone, and ``import sklearn``: the interpreter importing what a
  logistic-regression head is built of (``sklearn.linear_model``, ``pipeline``,
  ``preprocessing``), the floor under ``fit logreg``, for scale.

Run it alone on the machine: it measures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

EXE = str(Path(sys.executable).with_name("bottleneck"))
TARGETS = {"fit logreg": 1.5, "bad backbone": 1.0, "bad argument": 1.0,
           "predict missing": 1.0}


def cases(work: Path) -> dict[str, object]:
    """name → a function of the round number giving the command line."""
    from bottleneck.cache.synthetic import gaussian_shards, write_cache

    cache = work / "cache"
    write_cache(cache, gaussian_shards(600, 64, 3), ["a", "b", "c"], (64,))
    model = work / "model"
    subprocess.run([EXE, "fit", str(cache), "--head", "logreg", "-o", str(model), "-q"],
                   check=True)
    return {
        "python": lambda r: [sys.executable, "-c", "pass"],
        "import sklearn": lambda r: [sys.executable, "-c", "import sklearn.linear_model, "
                                     "sklearn.pipeline, sklearn.preprocessing"],
        "fit logreg": lambda r: [EXE, "fit", str(cache), "--head", "logreg", "-q",
                                 "-o", str(work / f"fit-{r}")],
        "bad backbone": lambda r: [EXE, "extract", str(cache), "-b", "no_such_net",
                                   "-o", str(work / "never")],
        "bad argument": lambda r: [EXE, "fit", str(cache), "--head", "no-such-head",
                                   "-o", str(work / "never")],
        "predict missing": lambda r: [EXE, "predict", str(model), str(work / "missing.jpg")],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        commands = cases(Path(tmp))
        names = list(commands)
        for round_ in range(args.rounds):
            order = names if round_ % 2 == 0 else names[::-1]
            for name in order:
                command = commands[name](round_)  # type: ignore[operator]
                start = time.perf_counter()
                done = subprocess.run(command, capture_output=True, text=True)
                times.setdefault(name, []).append(time.perf_counter() - start)
                expected = 2 if name in TARGETS and name != "fit logreg" else 0
                if done.returncode != expected:
                    raise SystemExit(f"{name}: exit {done.returncode}\n{done.stderr}")
    print(f"start-up, medians of {args.rounds} interleaved rounds (fresh processes)")
    summary = {}
    for name in names:
        median = statistics.median(times[name])
        target = TARGETS.get(name)
        verdict = "" if target is None else \
            f"   target ≤ {target:.1f} s: {'met' if median <= target else 'NOT met'}"
        print(f"  {name:16s} {median:6.2f} s  (min {min(times[name]):.2f}){verdict}")
        summary[name] = {"median_s": median, "runs": times[name], "target_s": target}
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
