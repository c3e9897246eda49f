"""What it costs that no reader trusts a shard (issue 24): every read of a shard first checks
its datasets (names, dtypes, shapes, rows) against the manifest and walks its links.

On shards written by the real writer (``--rows`` rows of ``--dims`` float32 features, the
default shard size of 1024 rows × 1280, EfficientNet-Lite0's width): (a) opening a shard
with the check against a plain read-only ``h5py.File`` open, nothing read: the check's own
cost per shard; (b) a whole shard read (every column, as ``fit`` reads it) through the
checked open against the plain one. Rounds interleave the two; medians are printed, with
ratios. No Keras, no model.

    python benchmarks/bench_shard_check.py [--rows 1024] [--dims 1280] [--shards 8]
        [--rounds 15] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import h5py  # noqa: E402

from bottleneck.cache.manifest import Manifest, ShardRecord, shard_name  # noqa: E402
from bottleneck.cache.shards import ShardWriter, open_shard  # noqa: E402


def write_cache(root: Path, shards: int, rows: int, dims: int) -> Manifest:
    """``shards`` shards of ``rows`` random rows and the manifest that records them."""
    rng = np.random.default_rng(0)
    records = []
    for index in range(shards):
        writer = ShardWriter(root / shard_name(index), (dims,), "float32", rows)
        writer.append(rng.normal(size=(rows, dims)).astype(np.float32),
                      rng.integers(0, 10, rows), [f"class/{index}-{i}.jpg" for i in range(rows)],
                      ["train"] * rows, rng.integers(0, 2**63, rows, dtype=np.uint64))
        digest = writer.commit({})
        records.append(ShardRecord(shard_name(index), rows, "-", "done", rows, digest))
    config = {"dtype": "float32", "feature_shape": [dims]}
    return Manifest(config, {}, [str(i) for i in range(10)], {}, records, complete=True)


def read_all(handle: h5py.File) -> int:
    """Every column of a shard, as a fit reads it; returns the bytes read."""
    return sum(handle[name][:].nbytes for name in ("features", "labels", "content_hash")) + \
        sum(len(handle[name].asstr()[:]) for name in ("paths", "split"))


def plain_open(root: Path, manifest: Manifest, read: bool) -> None:
    for record in manifest.shards:
        with h5py.File(root / record.file, "r") as handle:
            if read:
                read_all(handle)


def checked_open(root: Path, manifest: Manifest, read: bool) -> None:
    for record in manifest.shards:
        with open_shard(root / record.file, manifest, record) as handle:
            if read:
                read_all(handle)


def median_seconds(fn: object, *args: object, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn(*args)  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1024)
    parser.add_argument("--dims", type=int, default=1280)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifest = write_cache(root, args.shards, args.rows, args.dims)
        results = {}
        for read in (False, True):
            plain, checked = [], []
            for _ in range(args.rounds):  # interleaved, so drift hits both alike
                plain += median_seconds(plain_open, root, manifest, read, rounds=1)
                checked += median_seconds(checked_open, root, manifest, read, rounds=1)
            per_plain = statistics.median(plain) / args.shards
            per_checked = statistics.median(checked) / args.shards
            what = "open + whole read" if read else "open only"
            results[what] = {"plain_ms_per_shard": per_plain * 1e3,
                             "checked_ms_per_shard": per_checked * 1e3,
                             "check_ms_per_shard": (per_checked - per_plain) * 1e3,
                             "ratio": per_checked / per_plain}
            print(f"{what:>18}: plain {per_plain * 1e3:8.3f} ms/shard, checked "
                  f"{per_checked * 1e3:8.3f} ms/shard, check {(per_checked - per_plain) * 1e3:+.3f}"
                  f" ms/shard, ratio {per_checked / per_plain:.2f}x")
        print(f"({args.shards} shards of {args.rows} rows x {args.dims} float32, median of "
              f"{args.rounds} interleaved rounds)")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "results": results}, indent=2))


if __name__ == "__main__":
    main()
