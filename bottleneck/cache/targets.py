"""Per-image numeric targets (e.g. prices) attached to a cache without re-extraction.

Targets live in ``targets-<sha12>.h5`` beside the shards (the name the manifest records; a new
attach writes a new file, so a crash never leaves the manifest pointing at half a change):
``paths`` and ``targets``, one row per cache
row in shard order, always in the target's own units (prices, not z-scores). Heads that like
standardised targets standardise internally and report metrics in the original units.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.cache.opening import open_cache
from bottleneck.cache.reader import TARGETS_FILE, Cache
from bottleneck.cache.shards import STRING
from bottleneck.cache.targets_csv import read_targets_csv
from bottleneck.errors import UserError
from bottleneck.storage.atomic import install, sha256_file, temp_name
from bottleneck.storage.hdf5 import Hdf5Output
from bottleneck.storage.location import is_url
from bottleneck.storage.lock import cache_lock
from bottleneck.storage.machine import machine_errors
from bottleneck.storage.names import name_key

# The price tutorial's table: one price per Fashion-MNIST class, in dollars.
FASHION_MNIST_PRICES = {
    "T-shirt/top": 15.0, "Trouser": 30.0, "Pullover": 35.0, "Dress": 45.0, "Coat": 90.0,
    "Sandal": 25.0, "Shirt": 28.0, "Sneaker": 60.0, "Bag": 50.0, "Ankle boot": 75.0,
}
DEFAULT_SIGMA = 5.0


def attach_targets(cache: Cache, values: dict[str, float], info: dict[str, Any]) -> None:
    """Write the targets file aligned with the cache's rows and record it in the manifest.
    ``values`` match the rows' keys whichever Unicode form either is written in."""
    keys = cache.column("paths")
    values = {name_key(key): value for key, value in values.items()}
    missing = [key for key in keys if name_key(key) not in values]
    if missing:
        raise UserError(
            f"{len(missing)} cached images have no target (e.g. {missing[0]}); every row of the "
            "cache needs one."
        )
    targets = np.array([values[name_key(key)] for key in keys], dtype=np.float64)
    if not np.all(np.isfinite(targets)):
        raise UserError("targets must be finite numbers (found NaN or infinity).")
    tmp = temp_name(cache.root / TARGETS_FILE)
    try:
        with Hdf5Output(tmp, cache.root) as handle:
            handle.create_dataset("paths", data=keys.astype(object), dtype=STRING)
            handle.create_dataset("targets", data=targets)
        digest = sha256_file(tmp)
        final = cache.root / f"targets-{digest[:12]}.h5"  # a new name: the old file stays
        install(tmp, final)                               # valid until the manifest moves on
    finally:
        tmp.unlink(missing_ok=True)
    previous = cache.targets_path
    cache.record_targets(info | {
        "file": final.name, "sha256": digest, "rows": len(targets),
        "mean": float(targets.mean()), "std": float(targets.std()),
    })
    for stale in {previous, *cache.root.glob("targets-*.h5")} - {final, None}:
        stale.unlink(missing_ok=True)  # earlier targets of this cache, no longer recorded


def _row_seed(seed: int, key: str) -> list[int]:
    return [seed, int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:15], 16)]


def synthetic_prices(
    cache: Cache, sigma: float = DEFAULT_SIGMA, seed: int = 0,
    class_prices: dict[str, float] | None = None,
) -> dict[str, float]:
    """Each image's price ~ Normal(its class price, sigma), fixed by (seed, image key).

    Keyed by image rather than row order, so an image keeps its price however the cache is
    sharded. ``class_prices`` defaults to :data:`FASHION_MNIST_PRICES`.
    """
    if sigma < 0:
        raise UserError("--sigma must be ≥ 0.")
    prices = class_prices or FASHION_MNIST_PRICES
    unknown = [c for c in cache.classes if c not in prices]
    if unknown:
        raise UserError(
            f"no price for class '{unknown[0]}'; the default table covers Fashion-MNIST — pass "
            "--class-prices FILE (JSON: {\"class\": price, ...}) for other classes."
        )
    values = {}
    for key, label in zip(cache.column("paths"), cache.column("labels"), strict=True):
        noise = np.random.default_rng(_row_seed(seed, key)).normal(0.0, sigma) if sigma else 0.0
        values[key] = prices[cache.classes[int(label)]] + float(noise)
    return values


def r2_ceiling(cache: Cache, split: str) -> float | None:
    """R² of predicting each image's true class price: the best a head can do on average."""
    info = cache.manifest.targets or {}
    prices = info.get("class_prices")
    if not prices:
        return None
    batches = list(cache.iter_batches(split, batch_size=1 << 16, features=False))
    if not batches:
        return None
    labels = np.concatenate([b["labels"] for b in batches])
    targets = np.concatenate([b["targets"] for b in batches])
    if len(targets) < 2:
        return None
    ideal = np.array([prices[cache.classes[int(label)]] for label in labels])
    residual = np.sum((targets - ideal) ** 2)
    total = np.sum((targets - targets.mean()) ** 2)
    return float(1 - residual / total) if total > 0 else None


@machine_errors("root")
def set_targets(
    root: str | Path, synthetic: bool = False, sigma: float = DEFAULT_SIGMA, seed: int = 0,
    class_prices_file: str | Path | None = None, csv_file: str | Path | None = None,
) -> dict[str, Any]:
    """Attach synthetic prices or CSV targets to the cache at ``root``; returns the record."""
    if synthetic == (csv_file is not None):
        raise UserError("choose one of --synthetic-prices or --from-csv FILE.")
    if is_url(root):  # attached in local staging under the URL's lock, then uploaded
        from bottleneck.cache.remote import RemoteOutput

        out = RemoteOutput(str(root), action="targets")
        with out.session([out.staging]):
            record = set_targets(out.staging, synthetic, sigma, seed, class_prices_file,
                                 csv_file)
            out.publish(out.staging)
        return record
    cache = open_cache(root)
    with cache_lock(cache.root, "targets"):
        if csv_file is not None:
            values = read_targets_csv(csv_file)
            attach_targets(cache, values, {"kind": "csv", "csv": str(Path(csv_file).resolve())})
            return cache.manifest.targets
        prices = None if class_prices_file is None else read_class_prices(class_prices_file)
        values = synthetic_prices(cache, sigma=sigma, seed=seed, class_prices=prices)
        used = {c: (prices or FASHION_MNIST_PRICES)[c] for c in cache.classes}
        attach_targets(cache, values, {"kind": "synthetic-prices", "sigma": sigma, "seed": seed,
                                       "class_prices": used})
        return cache.manifest.targets


def read_class_prices(path: str | Path) -> dict[str, float]:
    """``{class: price}`` from a JSON file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return {str(k): float(v) for k, v in data.items()}
    except (OSError, ValueError, AttributeError, TypeError):
        raise UserError(f"{path} must be a JSON object {{class: price}}.") from None


def reattach_targets(cache: Cache, record: dict[str, Any]) -> str | None:
    """Attach again the targets an earlier run of this cache had (same values per image).

    Synthetic prices are drawn again from their recorded sigma, seed and class prices (each
    image keeps its price); CSV targets are read again from their file. Returns None when
    done, else why they could not be attached.
    """
    try:
        if record.get("kind") == "synthetic-prices":
            values = synthetic_prices(cache, sigma=record["sigma"], seed=record["seed"],
                                      class_prices=record["class_prices"])
        elif record.get("kind") == "csv":
            values = read_targets_csv(record["csv"])
        else:
            return f"targets of kind {record.get('kind')!r} cannot be drawn again"
        keep = {k: v for k, v in record.items() if k in ("kind", "sigma", "seed", "csv",
                                                          "class_prices")}
        attach_targets(cache, values, keep)
    except UserError as exc:
        return exc.format_message()
    return None
