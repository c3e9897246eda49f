"""What a report covers: the caches, model directories and bench folders it was given, and
the caches their lineage names (each model's sections use the cache it was trained on)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bottleneck.cache import Cache, open_cache
from bottleneck.cache.manifest import MANIFEST, Manifest
from bottleneck.errors import UserError
from bottleneck.models.model_dir import Model, is_model_dir, load_model
from bottleneck.storage.atomic import read_json, sha256_file
from bottleneck.storage.location import is_url

LEADERBOARD = "leaderboard.json"
EXPORTS = "exports.json"


@dataclass
class ModelEntry:
    """A model directory and the cache its lineage records."""

    root: Path
    model: Model
    cache_path: Path | None
    origin: str  # "target" or the bench folder it came from
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        kind = "fine-tuned " if self.model.takes_images else ""
        return f"{self.root.name} ({kind}{self.model.head_name}, {self.model.task})"

    def lineage(self) -> list[dict[str, str]]:
        """cache → head → fine-tuned → exports, each with its path and sha256."""
        record = self.model.info.get("lineage") or {}
        steps = []
        if record.get("cache"):
            steps.append({"step": "cache", "path": record["cache"].get("path", ""),
                          "sha256": record["cache"].get("manifest_sha256", "")})
        if record.get("head"):
            steps.append({"step": "head", "path": record["head"].get("path", ""),
                          "sha256": record["head"].get("head_json_sha256", "")})
        step = "fine-tuned" if self.model.takes_images else "head"
        steps.append({"step": step, "path": str(self.root.resolve()),
                      "sha256": sha256_file(self.root / "head.json")})
        for export in _exports(self.root):
            steps.append({"step": f"export ({export.get('format', '?')})",
                          "path": str(export.get("path", "")),
                          "sha256": str(export.get("sha256", ""))})
        return steps


@dataclass
class CacheEntry:
    """A cache the report analyses, and the models that use it."""

    root: Path
    cache: Cache
    models: list[ModelEntry] = field(default_factory=list)


@dataclass
class BenchEntry:
    """A bench folder: its leaderboard and, when it saved one, its chosen model."""

    root: Path
    report: dict[str, Any]
    model: ModelEntry | None


@dataclass
class Gathered:
    """Everything the report covers, caches keyed by their resolved path."""

    caches: dict[Path, CacheEntry] = field(default_factory=dict)
    models: list[ModelEntry] = field(default_factory=list)
    benches: list[BenchEntry] = field(default_factory=list)
    missing_caches: list[str] = field(default_factory=list)

    def add_cache(self, root: Path) -> CacheEntry:
        key = root.expanduser().resolve()
        if key not in self.caches:
            self.caches[key] = CacheEntry(key, open_cache(key))
        return self.caches[key]


def _exports(root: Path) -> list[dict[str, Any]]:
    try:
        records = read_json(root / EXPORTS) if (root / EXPORTS).is_file() else []
    except (OSError, ValueError):
        return []
    return [r for r in records if isinstance(r, dict)] if isinstance(records, list) else []


def _model_cache(model: Model) -> Path:
    """The local folder of the cache a model was fit on (a URL's fetched view)."""
    record = (model.info.get("lineage") or {}).get("cache") or {}
    return _local_cache(record.get("path") or model.info.get("cache", ""))


def _local_cache(recorded: str) -> Path:
    """A recorded cache location as a local folder: a URL's cache is fetched into its view
    (a URL that holds no cache any more stays a path that does not exist)."""
    if is_url(recorded):
        try:
            return open_cache(recorded).root
        except UserError:
            return Path(recorded)
    return Path(recorded)


def add_model(gathered: Gathered, root: Path, origin: str) -> ModelEntry:
    """Load a model directory (checksums verified) and attach it to its cache (once)."""
    for known in gathered.models:
        if known.root.resolve() == root.resolve():
            return known
    model = load_model(root)
    cache_path = _model_cache(model)
    entry = ModelEntry(root, model, None, origin)
    if not (Manifest.load(cache_path) if cache_path.is_dir() else None):
        entry.notes.append(f"the cache it was trained on ({cache_path}) is gone: only the "
                           "scores fit recorded are shown")
        gathered.missing_caches.append(str(cache_path))
    else:
        entry.cache_path = cache_path.resolve()
        cache_entry = gathered.add_cache(cache_path)
        cache_entry.models.append(entry)
        recorded = ((model.info.get("lineage") or {}).get("cache") or {}).get("manifest_sha256")
        if recorded and recorded != sha256_file(cache_entry.root / MANIFEST):
            entry.notes.append("the cache's manifest changed since the model was made (targets "
                               "attached or rows added); its rows are used as they are now")
    gathered.models.append(entry)
    return entry


def gather(targets: list[str | Path]) -> Gathered:
    """Sort each TARGET into a cache, a model directory or a bench folder (a folder of
    per-layer caches counts as each of them); refuse anything else in one line."""
    if not targets:
        raise UserError("give at least one TARGET: a cache, a model directory or a bench "
                        "folder.")
    gathered = Gathered()
    for target in targets:
        path = Path(target).expanduser()
        if is_url(target):  # a cache at a URL, else a model or bench folder: a local copy
            from bottleneck.storage.remote_output import local_copy

            try:
                gathered.add_cache(open_cache(str(target)).root)
                continue
            except UserError:
                path = local_copy(str(target))
        if not path.exists():
            raise UserError(f"{target} not found; give a cache, a model directory or a bench "
                            "folder.")
        if Manifest.load(path) is not None:
            gathered.add_cache(path)
        elif is_model_dir(path):
            add_model(gathered, path, "target")
        elif (path / LEADERBOARD).is_file():
            _add_bench(gathered, path)
        elif path.is_dir() and any(Manifest.load(p) for p in sorted(path.iterdir())
                                   if p.is_dir()):
            for child in sorted(p for p in path.iterdir() if p.is_dir()):
                if Manifest.load(child) is not None:
                    gathered.add_cache(child)
        else:
            raise UserError(f"{target} is not a cache, a model directory or a bench folder "
                            "(no manifest.json, head.json or leaderboard.json of ours).")
    return gathered


def _add_bench(gathered: Gathered, root: Path) -> None:
    try:
        report = json.loads((root / LEADERBOARD).read_text(encoding="utf-8"))
        caches, rows = report["caches"], report["rows"]
        if not isinstance(caches, dict) or not isinstance(rows, list):
            raise TypeError("caches or rows of the wrong type")
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{root / LEADERBOARD} is damaged; re-run the bench.") from None
    for path in caches.values():
        if Manifest.load(_local_cache(path)) is not None:
            gathered.add_cache(_local_cache(path))
        else:
            gathered.missing_caches.append(str(path))
    chosen = (report.get("model") or {}).get("dir")
    model = add_model(gathered, root / chosen, str(root)) if chosen and \
        is_model_dir(root / chosen) else None
    gathered.benches.append(BenchEntry(root, report, model))
