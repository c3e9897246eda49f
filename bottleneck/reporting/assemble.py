"""The report's document: every section as plain data, in page order."""

from __future__ import annotations

from typing import Any

from bottleneck.benching.leaderboard import format_table, table_rows
from bottleneck.models.metrics import format_metrics
from bottleneck.reporting.analyse import NEIGHBOURS, CacheAnalysis
from bottleneck.reporting.figures import file_uri
from bottleneck.reporting.gather import BenchEntry, Gathered
from bottleneck.reporting.model_section import recorded_scores
from bottleneck.reporting.thumbs import Thumbnails

PLOT = "score_vs_fit_time.png"


def bench_section(bench: BenchEntry) -> dict[str, Any]:
    """The leaderboard exactly as ``bench`` printed it (the same cells and lines)."""
    headings, cells = table_rows(bench.report)
    lines = format_table(bench.report).splitlines()[len(cells) + 2:]
    return {"root": str(bench.root), "headings": headings, "cells": cells, "lines": lines,
            "rows": bench.report["rows"], "leaks": bench.report.get("leaks"),
            "ranked_by": bench.report.get("ranked_by"), "plot": file_uri(bench.root / PLOT),
            "model": bench.model.label if bench.model else None, "model_id": None}


def build_document(gathered: Gathered) -> dict[str, Any]:
    """Analyse every cache (with its models) and lay out the page's sections."""
    thumbs = Thumbnails()
    caches = [CacheAnalysis(entry, thumbs, f"cache-{n}").run()
              for n, entry in enumerate(gathered.caches.values())]
    ids: dict[str, str] = {}
    for cache in caches:
        for n, model in enumerate(cache["models"]):
            model["id"] = f"{cache['id']}-model-{n}"
            ids[model["root"]] = model["id"]
    orphans = []
    for n, entry in enumerate(m for m in gathered.models if m.cache_path is None):
        recorded = recorded_scores(entry)
        orphans.append({"id": f"orphan-{n}", "label": entry.label, "root": str(entry.root),
                        "notes": entry.notes, "recorded": {
                            split: format_metrics(split, metrics, entry.model.task,
                                                  entry.model.classes)
                            for split, metrics in recorded.items()}})
        ids[str(entry.root)] = f"orphan-{n}"
    benches = [bench_section(b) for b in gathered.benches]
    for bench, entry in zip(benches, gathered.benches, strict=True):
        if entry.model is not None:
            bench["model_id"] = ids.get(str(entry.model.root))
    notes = [f"a cache named in the targets' records is gone: {path}"
             for path in dict.fromkeys(gathered.missing_caches)]
    title = "bottleneck report"
    if len(caches) == 1:
        title += f": {caches[0]['facts']['backbone']} features of {caches[0]['root']}"
    return {"title": title, "benches": benches, "caches": caches, "orphans": orphans,
            "notes": notes, "neighbours": NEIGHBOURS, "thumbnails": thumbs.made}
