"""Lineage: cache → head → fine-tuned model → export, each named by path and sha256.

A head's ``head.json`` records the cache (the sha256 of its ``manifest.json``); a fine-tuned
model's adds the head directory it started from (sha256 of that ``head.json``) and of its own
``model.keras``; an export's sidecar ``FILE.lineage.json`` repeats the chain and adds the
exported file's sha256 (a SavedModel directory: the sha256 of its files' sorted sums).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from bottleneck.cache import Cache
from bottleneck.cache.manifest import MANIFEST
from bottleneck.storage.atomic import sha256_file


def sha256_path(path: Path) -> str:
    """sha256 of a file, or of a directory's ``relative/path sha256`` lines, sorted."""
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()} {sha256_file(file)}\n".encode())
    return digest.hexdigest()


def cache_record(cache: Cache) -> dict[str, Any]:
    """Where the cache is and the sha256 of its manifest."""
    return {"path": cache.location or str(cache.root.resolve()),
            "manifest_sha256": sha256_file(cache.root / MANIFEST)}


def model_record(root: Path) -> dict[str, Any]:
    """Where a MODEL_DIR is and the sha256 of its ``head.json``."""
    from bottleneck.models.model_dir import HEAD_JSON

    return {"path": str(root.resolve()), "head_json_sha256": sha256_file(root / HEAD_JSON)}
