"""Analyse each cache once: its models' mistakes with their nearest training images, likely
label errors, near-duplicates across splits and the feature map."""

from __future__ import annotations

from typing import Any

import numpy as np

from bottleneck._text import plural
from bottleneck.benching.leaks import cross_split_duplicates, near_duplicates
from bottleneck.cache.summary import cache_summary, describe_record
from bottleneck.reporting import embedding, figures
from bottleneck.reporting.gather import CacheEntry
from bottleneck.reporting.label_errors import (
    FULL_WIDTH_VALUES,
    evidence_features,
    find_label_errors,
    held_out_accuracy,
    weaker_than_heads,
)
from bottleneck.reporting.model_section import (
    MISTAKES,
    ModelScores,
    metrics_view,
    model_plots,
    score_model,
    wrong_order,
)
from bottleneck.reporting.rows import CacheRows, load_rows
from bottleneck.reporting.thumbs import ImageReader, Thumbnails

NEIGHBOURS = 3
LABEL_ERRORS_SHOWN = 24
PAIRS_SHOWN = 16
PAIRS_KEPT = 10_000  # in the JSON
MAX_PIXEL_PAIRS = 10_000
PIXEL_SEARCH_FILES = 20_000  # image files read for the pixel search (arrays: every row)
FAILURES_SHOWN = 50
# the index's search effort for every val and test row's matches, by index kind (lists
# scanned: 8 of pca-ivf's 32 for one query found all 50 planted copies at 100k rows in a
# third of the time); other kinds search with their default
LEAK_SEARCH_EFFORT = {"pca-ivf": 8}


class CacheAnalysis:
    """One cache's sections and its models' sections, as plain data for the template."""

    def __init__(self, entry: CacheEntry, thumbs: Thumbnails, cache_id: str) -> None:
        self.entry, self.cache, self.thumbs, self.id = entry, entry.cache, thumbs, cache_id
        self.reader = ImageReader(self.cache.manifest.source)
        self.scores = [score_model(m, self.cache) for m in entry.models]
        self.rows: CacheRows | None = None

    def _picture(self, index: int) -> dict[str, Any]:
        rows = self.rows
        assert rows is not None
        return self.thumbs.get(self.reader, self.id, str(rows.paths[index]),
                               str(rows.splits[index]), int(rows.labels[index]))

    def _row(self, index: int, **extra: Any) -> dict[str, Any]:
        rows = self.rows
        assert rows is not None
        label = int(rows.labels[index])
        return {"key": str(rows.paths[index]), "split": str(rows.splits[index]),
                "label": self.cache.classes[label], **self._picture(index), **extra}

    def run(self) -> dict[str, Any]:
        """Every section of this cache (``models``: a list of model sections)."""
        shown: list[tuple[ModelScores, np.ndarray, np.ndarray, str]] = []
        for scores in self.scores:
            split = scores.mistake_split
            if split is not None:
                positions, values, what = wrong_order(scores.predictions[split])
                shown.append((scores, positions, values, what))
        self.rows = load_rows(self.cache)
        section = self._cache_section()
        section["leaks"] = self._leaks()
        section["models"] = [self._model_section(*item) for item in shown]
        section["models"] += [self._model_section(s, None, None, "") for s in self.scores
                              if s.mistake_split is None]
        full = self.rows.full_width(FULL_WIDTH_VALUES)  # small caches: label errors at full width
        self.rows.index = None  # every neighbour is found: its memory goes to the label errors
        section["label_errors"] = self._label_errors(full)
        section["map"] = self._feature_map(shown)
        return section

    def _cache_section(self) -> dict[str, Any]:
        summary = cache_summary(self.cache.root)
        config = summary["config"]
        rows = self.rows
        assert rows is not None
        facts = {
            "backbone": f"{config['backbone']} @ {config['image_size']} px",
            "layer": config.get("layer") or "(last block)", "pooling": config.get("pooling"),
            "features": f"{' × '.join(map(str, summary['feature_shape']))} "
                        f"{config.get('dtype')}, {plural(summary['rows'], 'row')} in "
                        f"{plural(summary['shards'], 'shard')}",
            "weights": config.get("weights_name"),
            "runtime": " ".join(str(v) for v in (
                config.get("engine", "tf"), config.get("backend"),
                config.get("precision", "fp32")) if v)
            + (", fast decode" if config.get("fast_decode") else "")
            + (", GPU decode (nvJPEG)" if config.get("decode") == "gpu" else ""),
            "source": describe_record(summary["source"]),
        }
        if config.get("augment"):
            facts["augmented views"] = (f"{config['augment']} per train image "
                                        f"({config.get('augment_ops')}); view 0 is analysed")
        splits = list(summary["splits"])
        counts = [[name] + [summary["splits"][s].get(name, 0) for s in splits]
                  for name in summary["classes"]]
        counts.append(["total"] + [sum(summary["splits"][s].values()) for s in splits])
        return {"id": self.id, "root": str(self.cache.root), "facts": facts,
                "splits": splits, "counts": counts, "failures": summary["failures"],
                "failures_shown": summary["failures"][:FAILURES_SHOWN],
                "classes": self.cache.classes, "source_problem": self.reader.problem,
                "rows": {"loaded": len(rows), "view0_rows": rows.total},
                "lineage": [{"model": s.entry.label, "steps": s.entry.lineage()}
                            for s in self.scores]}

    def _leaks(self) -> dict[str, Any]:
        rows = self.rows
        assert rows is not None

        def pixels(i: int) -> np.ndarray | None:
            return self.reader.pixels(str(rows.paths[i]), str(rows.splits[i]),
                                      int(rows.labels[i]))

        near = near_duplicates(None, rows.splits, pixels, rows.reduced, rows.hashes,
                               MAX_PIXEL_PAIRS, None if self.reader.kind != "folder"
                               else PIXEL_SEARCH_FILES,
                               neighbours=rows.neighbours(
                                   effort=LEAK_SEARCH_EFFORT.get(rows.index.kind)),
                               features=rows.index.vectors)
        pairs = near.pop("pairs")
        near["total"] = len(pairs)
        near["pairs"] = [{"a": self._row(p["a"]), "b": self._row(p["b"]),
                          "cosine": p["cosine"], "pixels": p["pixels"],
                          "runner_up": p["runner_up"]} for p in pairs[:PAIRS_SHOWN]]
        near["all_pairs"] = [{"a": str(rows.paths[p["a"]]), "a_split": str(rows.splits[p["a"]]),
                              "b": str(rows.paths[p["b"]]), "b_split": str(rows.splits[p["b"]]),
                              "cosine": p["cosine"], "pixels": p["pixels"],
                              "runner_up": p["runner_up"]} for p in pairs[:PAIRS_KEPT]]
        return {"exact": cross_split_duplicates(self.cache), "near": near}

    def _label_errors(self, full: np.ndarray | None) -> dict[str, Any] | None:
        rows = self.rows
        assert rows is not None
        pool = np.flatnonzero(np.isin(rows.splits, ("train", "val")))
        if len(self.cache.classes) < 2 or not len(pool):
            return None
        features = evidence_features(full, rows.reduced)
        labels = rows.labels.astype(np.int64)
        found = find_label_errors(features[pool], labels[pool], len(self.cache.classes))
        if found is None:
            return {"skipped": "a class has fewer than 2 train+val rows"}
        versus = self._versus_heads(pool, found["predicted"], features, labels)
        issues = pool[found["issues"]]
        if versus is not None and versus["withheld"]:
            versus["would_flag"] = len(issues)
            issues = issues[:0]
        classes = self.cache.classes
        listed = [{"key": str(rows.paths[i]), "split": str(rows.splits[i]),
                   "given": classes[int(rows.labels[i])], "suggested": classes[int(s)],
                   "self_confidence": float(c)}
                  for i, s, c in zip(issues, found["suggested"], found["self_confidence"],
                                     strict=False)]
        shown = [self._row(int(i), suggested=r["suggested"],
                           self_confidence=r["self_confidence"])
                 for i, r in zip(issues[:LABEL_ERRORS_SHOWN], listed, strict=False)]
        return {"rows": len(pool), "folds": found["folds"], "flagged": len(listed),
                "oof_accuracy": found["oof_accuracy"], "shown": shown, "all": listed,
                "width": features.shape[1], "versus_heads": versus,
                "thresholds": {classes[j]: float(t) for j, t in enumerate(found["thresholds"])
                               if np.isfinite(t)}}

    def _versus_heads(self, pool: np.ndarray, predicted: np.ndarray, features: np.ndarray,
                      labels: np.ndarray) -> dict[str, Any] | None:
        """The best fitted classifier against the out-of-fold model on the same held-out
        rows (val, out of fold; else test, from one fit on train and val); None without a
        classifier scored on them. ``withheld``: the evidence is too weak to flag anything."""
        rows = self.rows
        assert rows is not None
        heads = [s for s in self.scores if s.entry.model.task == "classify"]
        split = next((s for s in ("val", "test") if any(s in h.predictions for h in heads)
                      and (s != "val" or np.isin(rows.splits[pool], "val").any())), None)
        if split is None:
            return None
        best: tuple[float, str] | None = None
        for scores in (h for h in heads if split in h.predictions):
            made = scores.predictions[split]
            keep = rows.where(split, np.arange(len(made))) >= 0
            accuracy = float(np.mean(made.predicted[keep] == made.truth[keep]))
            best = max(best or (accuracy, scores.entry.label), (accuracy, scores.entry.label))
        assert best is not None
        held = np.flatnonzero(rows.splits == split)
        if split == "val":
            evidence = float(np.mean(predicted[np.searchsorted(pool, held)] == labels[held]))
        else:
            evidence = held_out_accuracy(features[pool], labels[pool], features[held],
                                         labels[held])
        return {"split": split, "rows": len(held), "head": best[1], "head_accuracy": best[0],
                "evidence_accuracy": evidence, "withheld": weaker_than_heads(evidence, best[0])}

    def _model_section(self, scores: ModelScores, positions: np.ndarray | None,
                       values: np.ndarray | None, what: str) -> dict[str, Any]:
        entry = scores.entry
        section: dict[str, Any] = {
            "label": entry.label, "root": str(entry.root), "cache_id": self.id,
            "notes": list(entry.notes) + ([scores.problem] if scores.problem else []),
            "task": entry.model.task, "head": entry.model.head_name,
            "fine_tuned": entry.model.takes_images, "origin": entry.origin,
            "predictions": {s: ("computed now and stored" if s in scores.computed
                                else "read from the stored predictions")
                            for s in scores.predictions},
            "splits": [metrics_view(p, self.cache.classes)
                       for p in scores.predictions.values()],
        }
        section.update(model_plots(scores, self.cache))
        if positions is not None and values is not None:
            section["mistakes"] = self._mistakes(scores, positions, values, what)
        return section

    def _mistakes(self, scores: ModelScores, positions: np.ndarray, values: np.ndarray,
                  what: str) -> dict[str, Any]:
        rows = self.rows
        assert rows is not None and scores.mistake_split is not None
        split = scores.mistake_split
        predictions = scores.predictions[split]
        chosen = positions[:MISTAKES]
        loaded = rows.where(split, chosen)
        train = np.flatnonzero(rows.splits == "train")
        listed = []
        if len(train) and len(loaded):
            near, cosine = rows.neighbours()(loaded, rows.splits == "train", NEIGHBOURS)
        for n, (position, row) in enumerate(zip(chosen, loaded, strict=True)):
            item = self._row(int(row), score=float(values[n]))
            if predictions.task == "regress":
                item["truth"] = f"{predictions.truth[position]:.4g}"
                item["predicted"] = f"{predictions.predicted[position]:.4g}"
            else:
                item["truth"] = self.cache.classes[int(predictions.truth[position])]
                item["predicted"] = self.cache.classes[int(predictions.predicted[position])]
            item["neighbours"] = [self._row(int(j), cosine=float(c))
                                  for j, c in zip(near[n], cosine[n], strict=True) if j >= 0] \
                if len(train) else []
            listed.append(item)
        wrong = len(positions) if predictions.task == "classify" else None
        short = {"absolute error": "error"}.get(what, "p" if what.startswith("prob") else
                                                 "margin")
        return {"split": split, "by": what, "short": short, "rows": listed, "wrong": wrong,
                "of": len(predictions)}

    def _feature_map(self, shown: list[tuple[ModelScores, np.ndarray, np.ndarray, str]]
                     ) -> dict[str, Any] | None:
        rows = self.rows
        assert rows is not None
        if len(rows) < 4:
            return None
        marked = np.zeros(0, np.int64)
        model = next(((s, p) for s, p, _, _ in shown if s.entry.model.task == "classify"),
                     None)
        if model is not None:
            scores, positions = model
            loaded = rows.where(scores.mistake_split or "test", positions)
            marked = loaded[loaded >= 0]
        data = embedding.feature_map(rows.reduced, rows.labels, rows.splits, marked)
        title = (f"{len(data['rows'])} rows, PCA → t-SNE"
                 + (f"; × = {model[0].entry.root.name}'s mistakes" if model else ""))
        return {"uri": figures.feature_map(data["xy"], data["labels"], data["marked"],
                                           self.cache.classes, title),
                "n": len(data["rows"]), "marked": int(data["marked"].sum()),
                "points": [{"key": str(rows.paths[r]), "split": str(rows.splits[r]),
                            "label": int(rows.labels[r]), "x": float(x), "y": float(y),
                            "mistake": bool(m)}
                           for r, (x, y), m in zip(data["rows"], data["xy"], data["marked"],
                                                   strict=True)]}
