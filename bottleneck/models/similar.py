"""``bottleneck similar``: the cached rows that look most like an image or a cached row.

A query is an image file (or a folder of them), run through the cache's own backbone and
preprocessing exactly as ``predict`` runs it (:class:`~bottleneck.extraction.FeatureExtractor`
built from the manifest's config), or a row key of the cache (its stored features). The
answers come from the cache's nearest-neighbour index (:mod:`bottleneck.cache.index`), built
or refreshed on first use: each the row's key, label, split and cosine, most similar first.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.cache import Cache, open_cache
from bottleneck.cache.index import NeighbourIndex, view0
from bottleneck.cache.index_files import open_index
from bottleneck.errors import UserError

FEW_IMAGES = 8  # image queries resized in NumPy, not by the compiled kernel


class Searcher:
    """A cache and its index, opened once for many queries (the key lookup is read on the
    first row-key query, the backbone built on the first image)."""

    def __init__(self, cache: Cache | str | Path, rebuild_index: bool = False,
                 progress: bool = False) -> None:
        self.cache = cache if isinstance(cache, Cache) else open_cache(cache)
        self.index: NeighbourIndex = open_index(self.cache, rebuild_index, progress)
        self._keys: dict[str, int] | None = None
        self._table: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._extractor: Any = None

    def row_keys(self) -> dict[str, int]:
        """Row key → index row, for every view-0 row (read once, with every row's label and
        split, so that answers need no more reading)."""
        if self._keys is None:
            keys, labels, splits = [], [], []
            for number in range(len(self.cache.shard_paths)):
                handle = self.index.shard(number)
                rows = view0(handle)
                keys.append(handle["paths"].asstr()[:][rows])
                labels.append(handle["labels"][:][rows])
                splits.append(handle["split"].asstr()[:][rows])
            names = np.concatenate(keys) if keys else np.zeros(0, object)
            self._table = (names, np.concatenate(labels) if labels else np.zeros(0, int),
                           np.concatenate(splits) if splits else np.zeros(0, object))
            self._keys = dict(zip(names.tolist(), range(len(names)), strict=True))
        return self._keys

    def by_key(self, key: str, top: int) -> dict[str, Any]:
        """The ``top`` rows most like the cached row ``key`` (itself left out)."""
        row = self.row_keys()[key]
        found, cosines = self.index.search(self.index.features(np.array([row])), top + 1)
        keep = found[0] != row
        return {"query": key, "kind": "row key",
                "neighbours": self.describe(found[0][keep][:top], cosines[0][keep][:top])}

    def by_images(self, files: list[Path], top: int, batch_size: int = 32
                  ) -> list[dict[str, Any]]:
        """The ``top`` rows most like each image file (unreadable ones: an ``error``)."""
        from bottleneck.data import images

        extractor = self.extractor()
        # a few images: the model runs op by op (compiling it costs seconds) and they are
        # resized in NumPy (loading numba's compiled code costs more than their resizes)
        extractor.expect_images(len(files), batch_size)
        kernel = len(files) > FEW_IMAGES
        config = extractor.config
        answers: list[dict[str, Any]] = [{"query": str(f), "kind": "image"} for f in files]
        for start in range(0, len(files), batch_size):
            readable = []
            for n in range(start, min(start + batch_size, len(files))):
                try:
                    readable.append((n, images.load_image(files[n], config.image_size,
                                                          config.fast_decode, config.decode,
                                                          kernel)))
                except ValueError as exc:
                    answers[n]["error"] = str(exc)
            if not readable:
                continue
            features = np.asarray(extractor(np.stack([p for _, p in readable])))
            found, cosines = self.index.search(features, top)
            for (n, _), rows, values in zip(readable, found, cosines, strict=True):
                answers[n]["neighbours"] = self.describe(rows, values)
        return answers

    def extractor(self) -> Any:
        """The cache's feature model, rebuilt from its manifest (as ``predict`` does), or its
        kept OpenVINO conversion, which needs no Keras (:mod:`bottleneck.extraction.converted`;
        a query that builds the Keras model keeps one for the next)."""
        if self._extractor is None:
            from bottleneck.extraction.converted import keep_converted, open_converted
            from bottleneck.models.predict import serving_config

            config = serving_config(self.cache.config)
            self._extractor = open_converted(config)
            if self._extractor is None:
                from bottleneck.extraction import FeatureExtractor

                if config.decode == "gpu":
                    from bottleneck.data.decode_gpu import check_gpu_decode

                    check_gpu_decode()
                self._extractor = FeatureExtractor(config)
                keep_converted(self._extractor)
            if tuple(self._extractor.feature_shape) != self.cache.feature_shape:
                raise UserError("the rebuilt backbone gives features of another shape than "
                                "the cache's; extract the cache again.")
        return self._extractor

    def describe(self, rows: np.ndarray, cosines: np.ndarray) -> list[dict[str, Any]]:
        """Key, label, split and cosine of index rows (from the table :meth:`row_keys`
        read, else from their shards)."""
        keep = rows >= 0
        rows, cosines = rows[keep], cosines[keep]
        if self._table is not None:
            keys, labels, splits = (column[rows] for column in self._table)
        else:
            keys, labels, splits = [], [], []
            for shard, row in self.index.locate(rows):
                handle = self.index.shard(shard)
                keys.append(handle["paths"].asstr()[row])
                labels.append(int(handle["labels"][row]))
                splits.append(handle["split"].asstr()[row])
        classes = self.cache.classes
        return [{"key": str(key), "label": classes[int(label)]
                 if 0 <= int(label) < len(classes) else str(label),
                 "split": str(split), "cosine": round(float(cosine), 6)}
                for key, label, split, cosine in zip(keys, labels, splits, cosines,
                                                     strict=True)]


def similar(cache_dir: str | Path | Cache, queries: Sequence[str | Path], top: int = 10,
            rebuild_index: bool = False, json_out: str | Path | None = None,
            batch_size: int = 32) -> list[dict[str, Any]]:
    """The ``top`` cached rows most like each query: an image file or folder (every image
    in it), else a row key of the cache. One dict per query, in order: ``query``, ``kind``
    and ``neighbours`` (``key``, ``label``, ``split``, ``cosine``), or ``error``. With
    ``json_out``, the list is also written there as JSON."""
    from bottleneck.models.predict import list_inputs
    from bottleneck.storage.atomic import write_json

    if top < 1 or batch_size < 1:
        raise UserError("--top and --batch-size must be positive.")
    if json_out is not None and Path(json_out).is_dir():
        raise UserError(f"{json_out} is a folder; give a file name such as similar.json.")
    searcher = Searcher(cache_dir, rebuild_index)
    try:
        answers: list[dict[str, Any]] = []
        for query in queries:
            if Path(query).expanduser().exists():
                files = [path for path, _ in list_inputs([query])]
                answers += searcher.by_images(files, top, batch_size) if files else \
                    [{"query": str(query), "error": "a folder with no files"}]
            elif str(query) in searcher.row_keys():
                answers.append(searcher.by_key(str(query), top))
            else:
                answers.append({"query": str(query),
                                "error": "neither an image file nor a row key of the cache"})
    finally:
        searcher.index.close()
    if json_out is not None:
        write_json(Path(json_out).expanduser(), answers)
    return answers


def format_answer(answer: dict[str, Any]) -> str:
    """The query, then one line per neighbour: rank, cosine, split, label, key."""
    if "error" in answer:
        return f"{answer['query']}: {answer['error']}"
    lines = [f"{answer['query']} ({answer['kind']}):"]
    lines += [f"  {n:>3}  {r['cosine']:.4f}  {r['split']:<5}  {r['label']}  {r['key']}"
              for n, r in enumerate(answer["neighbours"], 1)]
    return "\n".join(lines)


def require_some(answers: list[dict[str, Any]]) -> None:
    """A UserError when no query could be answered, naming the first reason."""
    if answers and all("error" in a for a in answers):
        first = answers[0]
        if len(answers) == 1:
            raise UserError(f"{first['query']} could not be answered: {first['error']}.")
        raise UserError(f"none of the {len(answers)} queries could be answered "
                        f"(e.g. {first['query']}: {first['error']}).")
