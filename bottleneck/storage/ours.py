"""What bottleneck writes, recognised by its markers, so a source scan never reads it as data.

Users keep outputs beside or inside their images (``extract photos/ -o photos/features``); a
folder source skips every path :func:`what_of_ours` names. The markers are the ones the
writers use (tests/data/test_ours.py checks they agree with those modules):

- a cache: ``manifest.json`` with ``"format": "bottleneck-cache"``;
- a cache being written or killed early: its lock file ``.bottleneck.lock``, or nothing but
  hidden temp files of ours (``.NAME.tmp-PID``);
- a model directory: ``head.json`` with ``"format": "bottleneck-model"``;
- bench output: a ``leaderboard.json`` with ``ranked_by`` and ``rows``;
- report output: ``report.html`` with nothing beside it but JSON files;
- an export: ``FILE.lineage.json`` beside the exported file or SavedModel folder;
- a feature table (``export-features``): a Parquet file whose schema metadata has
  ``bottleneck`` with ``"format": "bottleneck-features"``;
- a cache's nearest-neighbour index: a folder (``CACHE/index/``) whose ``index.json`` has
  ``"format": "bottleneck-index"``, beside the faiss files it names;
- a folder holding only outputs of ours (a multi-layer extract: one cache per layer).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bottleneck.storage.atomic import TEMP_MARK

CACHE_MANIFEST, CACHE_FORMAT = "manifest.json", "bottleneck-cache"
LOCK_FILE = ".bottleneck.lock"
MODEL_HEAD, MODEL_FORMAT = "head.json", "bottleneck-model"
LEADERBOARD = "leaderboard.json"
REPORT_HTML = "report.html"
LINEAGE_SUFFIX = ".lineage.json"
FEATURES_TABLE_KEY, FEATURES_TABLE_FORMAT = "bottleneck", "bottleneck-features"
INDEX_DIR, INDEX_RECORD, INDEX_FORMAT = "index", "index.json", "bottleneck-index"


def what_of_ours(path: Path) -> str | None:
    """What output of bottleneck ``path`` is, as a short phrase for a note; None if none."""
    try:
        if path.is_dir():
            return _folder(path)
        if path.is_file():
            return _file(path)
    except OSError:  # unreadable: not ours to claim
        return None
    return None


def is_ours(path: Path) -> bool:
    """True when ``path`` is something bottleneck wrote (see the module docstring)."""
    return what_of_ours(path) is not None


def _file(path: Path) -> str | None:
    if path.name.endswith(LINEAGE_SUFFIX):
        return "an export's lineage"
    if path.with_name(path.name + LINEAGE_SUFFIX).is_file():
        return "a bottleneck export"
    if path.suffix == ".parquet" and _parquet_format(path) == FEATURES_TABLE_FORMAT:
        return "a bottleneck feature table"
    return None


def _parquet_format(path: Path) -> str | None:
    """The ``format`` in a Parquet file's ``bottleneck`` metadata, or None."""
    try:
        import pyarrow.parquet as pq

        metadata = pq.read_schema(path).metadata or {}
        about = json.loads(metadata.get(FEATURES_TABLE_KEY.encode(), b"{}"))
    except (ImportError, OSError, ValueError):  # no pyarrow, or not a Parquet file of ours
        return None
    return about.get("format") if isinstance(about, dict) else None


def _folder(path: Path) -> str | None:
    if _format(path / CACHE_MANIFEST, CACHE_FORMAT):
        return "a bottleneck cache"
    if _format(path / MODEL_HEAD, MODEL_FORMAT):
        return "a bottleneck model directory"
    if _format(path / INDEX_RECORD, INDEX_FORMAT):
        return "a bottleneck nearest-neighbour index"
    board = _json(path / LEADERBOARD)
    if isinstance(board, dict) and {"ranked_by", "rows"} <= set(board):
        return "bench output"
    if path.with_name(path.name + LINEAGE_SUFFIX).is_file():
        return "a bottleneck export"
    names = [child.name for child in path.iterdir()]
    visible = [name for name in names if not name.startswith(".")]
    if REPORT_HTML in visible and all(n == REPORT_HTML or n.endswith(".json") for n in visible):
        return "a bottleneck report"
    if LOCK_FILE in names or (not visible and any(TEMP_MARK in name for name in names)):
        return "an unfinished bottleneck cache"
    if visible and all(is_ours(path / name) for name in visible):
        return "a folder of bottleneck outputs"
    return None


def _json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _format(path: Path, marker: str) -> bool:
    """``path`` holds JSON whose ``format`` is ``marker`` (or is damaged but names it)."""
    data = _json(path)
    if isinstance(data, dict):
        return data.get("format") == marker
    try:
        return path.is_file() and f'"{marker}"'.encode() in path.read_bytes()[:4096]
    except OSError:
        return False
