"""One self-contained HTML file (Jinja2 template shipped with the package; images as data
URIs; no network reference) and the same figures and row lists as JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bottleneck._text import plural
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


def short_names(roots: list[str]) -> list[str]:
    """The fewest trailing path parts that tell each root from the others (``a/cache`` and
    ``b/cache``, not ``cache`` twice)."""
    parts = [Path(root).parts for root in roots]
    names = []
    for mine in parts:
        for depth in range(1, len(mine) + 1):
            name = "/".join(mine[-depth:])
            if sum(other[-depth:] == mine[-depth:] for other in parts) == 1:
                break
        names.append(name)
    return names


def mistakes_text(mistakes: dict[str, Any], neighbours: int) -> str:
    """The sentence above a model's mistakes, one sentence when there are none."""
    shown, total = len(mistakes["rows"]), mistakes["of"]
    if mistakes["wrong"] is None:
        head = f"The {plural(shown, 'largest error')} of {plural(total, 'row')} shown."
    elif mistakes["wrong"] == 0:
        return f"None of the {plural(total, 'row')} is wrong." if total != 1 else \
            "The one row is right."
    else:
        verb = "is" if mistakes["wrong"] == 1 else "are"
        which = "it is" if shown == 1 else ("all" if shown == mistakes["wrong"]
                                            else f"the {shown} most confident")
        head = (f"{mistakes['wrong']} of {plural(total, 'row')} {verb} wrong; {which} shown, "
                f"ranked by {mistakes['by']}.")
    return (f"{head} Beside each: its {neighbours} nearest training images by cosine of the "
            "cached features.")


def label_errors_text(errors: dict[str, Any]) -> str:
    """What the label-error section concluded, in a sentence or two."""
    versus = errors.get("versus_heads")
    compared = ""
    if versus:
        compared = (f" On the {plural(versus['rows'], versus['split'] + ' row')} the "
                    f"out-of-fold model reaches accuracy {versus['evidence_accuracy']:.3f} and "
                    f"the best fitted head, {versus['head']}, {versus['head_accuracy']:.3f}.")
        if versus["withheld"]:
            return (f"{compared} It is far below the head, so it is no evidence against a "
                    f"label: nothing is flagged ({plural(versus['would_flag'], 'row')} "
                    "would have been).").lstrip()
    if not errors["flagged"]:
        return f"{compared} No row is flagged.".lstrip()
    shown = len(errors["shown"])
    which = "it is" if errors["flagged"] == 1 else (
        "all" if shown == errors["flagged"] else f"the {shown} with the lowest probability "
        "of their given label")
    return (f"{compared} {plural(errors['flagged'], 'row')} flagged; {which} shown.").lstrip()


def prepare(doc: dict[str, Any]) -> dict[str, Any]:
    """Add what only the page needs: ids, the table of contents, a few sentences."""
    toc = []
    for number, bench in enumerate(doc["benches"]):
        bench["id"] = f"bench-{number}"
        toc.append({"id": bench["id"], "title": "Leaderboard"})
    names = short_names([cache["root"] for cache in doc["caches"]])
    for cache, name in zip(doc["caches"], names, strict=True):
        cache["name"] = name
        toc.append({"id": cache["id"], "title": f"Cache {name}"})
        cache["leaks"]["exact_text"] = _exact_text(cache["leaks"]["exact"])
        errors = cache.get("label_errors")
        if errors and not errors.get("skipped"):
            errors["oof_rows_text"] = f"{errors['rows']} train and val rows"
            errors["verdict_text"] = label_errors_text(errors)
        for model in cache["models"]:
            toc.append({"id": model["id"], "title": Path(model["root"]).name})
            if model.get("mistakes"):
                model["mistakes"]["sentence"] = mistakes_text(model["mistakes"], doc["neighbours"])
        toc += [{"id": f"{cache['id']}-labels", "title": f"{name}: label errors"},
                {"id": f"{cache['id']}-leaks", "title": f"{name}: near-duplicates"},
                {"id": f"{cache['id']}-map", "title": f"{name}: feature map"}]
    for model in doc["orphans"]:
        toc.append({"id": model["id"], "title": Path(model["root"]).name})
    doc["toc"] = toc
    for model in (m for c in doc["caches"] for m in c["models"]):
        for key in ("confusion", "reliability", "reliability_note", "scatter", "residuals",
                    "mistakes"):
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
                and k not in ("note", "shown", "exact_text", "oof_rows_text", "verdict_text",
                              "sentence", "pairs")}
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
