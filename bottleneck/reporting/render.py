"""One self-contained HTML file (Jinja2 template shipped with the package; images as data
URIs; no network reference) and the same figures and row lists as JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bottleneck.storage.atomic import atomic_write, to_jsonable

TEMPLATE = "report.html.j2"
DATA_URI = re.compile(r"^data:image/")


def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("bottleneck.reporting", "templates"),
        autoescape=True, keep_trailing_newline=True)


def _exact_text(exact: list[list[dict[str, str]]] | None) -> str:
    if exact is None:
        return ("Identical images: not checked (the cache has no content hashes; re-extract "
                "to check).")
    if not exact:
        return "Identical images (same decoded pixels) across splits: none."
    shown = "; ".join(", ".join(f"{r['path']} ({r['split']})" for r in group)
                      for group in exact[:10])
    more = f" … and {len(exact) - 10} more in the JSON" if len(exact) > 10 else ""
    return f"Identical images across splits ({len(exact)} groups): {shown}{more}."


def prepare(doc: dict[str, Any]) -> dict[str, Any]:
    """Add what only the page needs: ids, the table of contents, a few sentences."""
    toc = []
    for number, bench in enumerate(doc["benches"]):
        bench["id"] = f"bench-{number}"
        toc.append({"id": bench["id"], "title": "Leaderboard"})
    for cache in doc["caches"]:
        toc.append({"id": cache["id"], "title": f"Cache {Path(cache['root']).name}"})
        cache["leaks"]["exact_text"] = _exact_text(cache["leaks"]["exact"])
        errors = cache.get("label_errors")
        if errors and not errors.get("skipped"):
            errors["oof_rows_text"] = f"{errors['rows']} train and val rows"
        for model in cache["models"]:
            toc.append({"id": model["id"], "title": Path(model["root"]).name})
        toc += [{"id": f"{cache['id']}-labels", "title": "label errors"},
                {"id": f"{cache['id']}-leaks", "title": "near-duplicates"},
                {"id": f"{cache['id']}-map", "title": "feature map"}]
    for model in doc["orphans"]:
        toc.append({"id": model["id"], "title": Path(model["root"]).name})
    doc["toc"] = toc
    for model in (m for c in doc["caches"] for m in c["models"]):
        for key in ("confusion", "reliability", "scatter", "residuals", "mistakes"):
            model.setdefault(key, None)
    return doc


def render_html(doc: dict[str, Any]) -> str:
    """The page."""
    return _environment().get_template(TEMPLATE).render(doc=prepare(doc))


def machine_readable(value: Any) -> Any:
    """The document without its pictures (data URIs) and page-only text."""
    if isinstance(value, dict):
        return {k: machine_readable(v) for k, v in value.items()
                if not (isinstance(v, str) and DATA_URI.match(v))
                and k not in ("note", "shown", "exact_text", "oof_rows_text", "pairs")}
    if isinstance(value, list):
        return [machine_readable(v) for v in value]
    return value


def write(doc: dict[str, Any], out: Path, json_out: Path | None) -> None:
    """Write the HTML (and JSON) atomically."""
    html = render_html(doc)
    if json_out is not None:
        data = machine_readable(to_jsonable(doc))
        atomic_write(json_out, json.dumps(data, indent=1, allow_nan=True) + "\n")
    atomic_write(out, html)
