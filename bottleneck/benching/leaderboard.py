"""A bench report as a terminal table, CSV, JSON, Markdown and a score-vs-fit-time chart."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from bottleneck._text import plural
from bottleneck.storage.atomic import atomic_path, atomic_write

FILES = ("leaderboard.csv", "leaderboard.json", "leaderboard.md", "score_vs_fit_time.png")


def _columns(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, heading) of the numbers shown for this task."""
    if report["task"] == "regress":
        scores = [("val_r2", "val R²"), ("test_r2", "test R²"), ("val_mae", "val MAE"),
                  ("test_mae", "test MAE"), ("test_mse", "test MSE")]
    else:
        scores = [("val_accuracy", "val acc"), ("test_accuracy", "test acc")]
    return scores + [("fit_seconds", "fit s"), ("predict_us_per_row", "µs/row"),
                     ("model_bytes", "size")]


def _cell(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None:
        return "–"
    if key == "model_bytes":
        return f"{value / 1024:.0f} KiB" if value < 1 << 20 else f"{value / (1 << 20):.1f} MiB"
    if key in ("fit_seconds", "predict_us_per_row"):
        return f"{value:.2f}" if value < 100 else f"{value:.0f}"
    std = row.get(f"{key}_std")
    text = f"{value:.3f}" if abs(value) < 1000 else f"{value:.4g}"
    return f"{text} ± {std:.3f}" if std and row.get("runs", 1) > 1 else text


def table_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Headings and cells, best first."""
    columns = _columns(report)
    headings = ["#", "cache", "head"] + [h for _, h in columns]
    cells = [[str(row["rank"]), row["cache"], row["variant"]] + [_cell(row, k) for k, _ in columns]
             for row in report["rows"]]
    return headings, cells


def format_table(report: dict[str, Any]) -> str:
    """The leaderboard as aligned plain text, with the leak check and R² ceiling."""
    headings, cells = table_rows(report)
    widths = [max(len(r[i]) for r in [headings, *cells]) for i in range(len(headings))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headings, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.append(f"ranked by {report['ranked_by']} (val only; test is reported, never used to "
                 f"choose); {report['seeds']} seed(s)" + (f", {report['cv']}-fold CV"
                                                          if report["cv"] else ""))
    if report.get("r2_ceiling"):
        ceiling = report["r2_ceiling"]
        lines.append("R² ceiling (true class price): " + ", ".join(
            f"{split} {value:.3f}" for split, value in ceiling.items() if value is not None))
    lines += below_the_mean(report)
    lines += leak_lines(report["leaks"])
    return "\n".join(lines)


def below_the_mean(report: dict[str, Any]) -> list[str]:
    """A note per regressor whose val R² is below 0 (worse than predicting the mean of the
    targets), naming the best variant where one does better."""
    rows = [r for r in report["rows"] if r.get("val_r2") is not None]
    if report.get("task") != "regress" or not rows:
        return []
    best = max(rows, key=lambda r: r["val_r2"])
    several = len(report.get("caches") or {}) > 1

    def name(row: dict[str, Any]) -> str:
        return f"{row['variant']} on {row['cache']}" if several else row["variant"]

    lines = []
    for row in rows:
        if row["val_r2"] < 0:
            better = (f"; {name(best)} does better (val R² {best['val_r2']:.3f})"
                      if best["val_r2"] >= 0 else "; no variant here beats the mean")
            lines.append(f"note: {name(row)} has val R² {row['val_r2']:.3f}, below 0: it is "
                         f"worse than predicting the mean of the targets{better}.")
    return lines


def leak_lines(leaks: list[list[dict[str, str]]] | None) -> list[str]:
    """The leak check's findings, a line per duplicate group (at most ten shown)."""
    if leaks is None:
        return ["leak check: skipped (this cache has no content hashes; re-extract to check)"]
    if not leaks:
        return ["leak check: no identical images across splits"]
    lines = [f"leak check: {plural(len(leaks), 'image')} found in more than one split:"]
    for group in leaks[:10]:
        lines.append("  " + ", ".join(f"{r['path']} ({r['split']})" for r in group))
    if len(leaks) > 10:
        lines.append(f"  … and {len(leaks) - 10} more in leaderboard.json")
    return lines


def write_reports(report: dict[str, Any], out: Path) -> list[Path]:
    """Write every report file into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    rows = report["rows"]
    keys = list(dict.fromkeys(k for row in rows for k in row if k != "params"))
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=[*keys, "params"], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row | {"params": json.dumps(row["params"], default=str)})
    atomic_write(out / "leaderboard.csv", table.getvalue())
    atomic_write(out / "leaderboard.json", json.dumps(report, indent=2, default=str) + "\n")
    headings, cells = table_rows(report)
    markdown = ["| " + " | ".join(headings) + " |", "|" + "---|" * len(headings)]
    markdown += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
    markdown += ["", *format_table(report).splitlines()[len(cells) + 2:]]
    atomic_write(out / "leaderboard.md", "\n".join(markdown) + "\n")
    plot_score_vs_time(report, out / "score_vs_fit_time.png")
    return [out / name for name in FILES]


def score_vs_time_figure(report: dict[str, Any]) -> Any:
    """Scatter of val score against fit seconds (log scale): one colour per head and, when
    there are several caches, one marker per cache, each with its legend."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    metric = report["ranked_by"]
    fig = Figure(figsize=(7, 4.5), dpi=110)
    ax = fig.add_subplot()
    heads = sorted({row["head"] for row in report["rows"]})
    markers = "osD^v<>p*h"
    caches = sorted({row["cache"] for row in report["rows"]})
    for colour, head in enumerate(heads):
        for row in (r for r in report["rows"] if r["head"] == head):
            ax.errorbar(max(row["fit_seconds"], 1e-3), row.get(metric, float("nan")),
                        yerr=row.get(f"{metric}_std", 0), fmt=markers[
                            caches.index(row["cache"]) % len(markers)],
                        color=f"C{colour}", label=head, alpha=0.85, capsize=2)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    by_head = ax.legend(unique.values(), unique.keys(), fontsize=8, loc="lower right",
                        title="head", title_fontsize=8)
    if len(caches) > 1:
        ax.add_artist(by_head)
        shapes = [Line2D([], [], marker=markers[n % len(markers)], linestyle="", color="grey")
                  for n in range(len(caches))]
        ax.legend(shapes, caches, fontsize=8, loc="lower left", title="cache",
                  title_fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("fit seconds (log)")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title("score vs fit time", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_score_vs_time(report: dict[str, Any], path: Path) -> None:
    """:func:`score_vs_time_figure` as a PNG file."""
    figure = score_vs_time_figure(report)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
