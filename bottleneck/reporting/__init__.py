"""``bottleneck report``: one self-contained HTML page about caches, models and benches.

gather (caches, model directories, bench folders, following lineage) → analyse (scores from
the stored per-row predictions, mistakes and their nearest training images, likely label
errors, near-duplicates across splits, the feature map) → render (HTML, and JSON).

The folder is ``reporting/`` (a noun, like ``extraction/`` and ``benching/``) because
``bottleneck.report()`` is the API's function.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bottleneck._text import plural
from bottleneck.errors import UserError
from bottleneck.storage.location import is_url, redact_url

__all__ = ["ReportResult", "report"]


@dataclass
class ReportResult:
    """Where the report went and what it holds."""

    out: Path | str  # a file, or the URL it was uploaded to
    json_out: Path | str | None
    document: dict[str, Any]
    seconds: float
    doc_bytes: int = 0

    def summary(self) -> str:
        """One line: the file, its size, what it covers."""
        doc = self.document
        size = self.doc_bytes / (1 << 20)
        models = sum(len(c["models"]) for c in doc["caches"]) + len(doc["orphans"])
        parts = [plural(len(doc["caches"]), "cache"), plural(models, "model"),
                 plural(len(doc["benches"]), "bench", "benches")]
        also = f" and {self.json_out}" if self.json_out else ""
        return (f"report of {', '.join(parts)} → {self.out} ({size:.1f} MiB){also} in "
                f"{self.seconds:.1f} s")


def _check_out(out: Path, json_out: Path | None) -> None:
    for path in (out, json_out):
        if path is None:
            continue
        if path.is_dir():
            raise UserError(f"{path} is a folder; give a file name such as report.html.")
        if not path.parent.is_dir():
            raise UserError(f"the folder of {path} does not exist; create it first.")


def report(targets: list[str | Path] | str | Path, out: str | Path = "report.html",
           json_out: str | Path | None = None) -> ReportResult:
    """Write one HTML report of ``targets`` (caches, model directories, bench folders) to
    ``out``, and its figures and row lists as JSON to ``json_out``."""
    from bottleneck import __version__
    from bottleneck.reporting.assemble import build_document
    from bottleneck.reporting.gather import gather
    from bottleneck.reporting.render import write

    started = time.perf_counter()
    if isinstance(targets, str | Path):
        targets = [targets]
    if is_url(out) or is_url(json_out):  # written locally, then uploaded whole
        from bottleneck.storage.remote_output import publish_paths, staging_for

        urls = [str(u) for u in (out, json_out) if u]
        staged = [staging_for(u) / u.rstrip("/").rsplit("/", 1)[-1] for u in urls]
        local = [s if is_url(u) else Path(u) for u, s in zip(urls, staged, strict=True)]
        done = report(targets, local[0], local[1] if json_out else None)
        publish_paths([(u, p) for u, p in zip(urls, local, strict=True) if is_url(u)])
        done.out = redact_url(str(out))
        done.json_out = redact_url(str(json_out)) if json_out else None
        return done
    out = Path(out).expanduser()
    json_path = Path(json_out).expanduser() if json_out else None
    _check_out(out, json_path)
    gathered = gather(list(targets))
    doc = build_document(gathered)
    doc |= {"version": __version__, "targets": [redact_url(str(t)) for t in targets],
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds")}
    write(doc, out, json_path)
    result = ReportResult(out, json_path, doc, time.perf_counter() - started)
    result.doc_bytes = out.stat().st_size
    return result
