"""Compute ONE shard: decode, resize, [augmented views], run the feature model, write the
file, rename it.

Decoding runs in threads (the JPEG decoder and Pillow release the GIL) a bounded number of
images ahead of the model, so the next batch decodes while this one computes. With
``--decode gpu`` the threads read the files and a batch at a time is decoded on the GPU
(:mod:`bottleneck.data.decode_gpu`), its pixels staying there for the model.

:func:`run_shard` knows nothing of the manifest or of who scheduled it; it returns a
:class:`ShardResult` that the driver records. A feature model with several layers writes the
shard once per layer, one folder each (``out_dir`` is then a list), from one pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.cache.inputs import FileIdentity, read_identified
from bottleneck.cache.shards import ShardWriter
from bottleneck.data import images
from bottleneck.data.augment import Augment, key_seed, views
from bottleneck.data.decode_gpu import GpuDecoder
from bottleneck.data.loader import ordered_map
from bottleneck.data.sources import Source
from bottleneck.extraction.config import ExtractConfig
from bottleneck.extraction.engines import default_threads
from bottleneck.extraction.feature_model import FeatureExtractor
from bottleneck.extraction.plan import ShardPlan
from bottleneck.extraction.runtime import is_out_of_memory


@dataclass(frozen=True)
class Pipeline:
    """How decoding feeds the model: speed only, never the features
    (benchmarks/tune_extract.py measures the choices)."""

    workers: int = 0  # decode threads; 0: the cores this process may use
    # batches decoded ahead of the model (bounded: memory stays flat). 1 since the compiled
    # decode (tune_extract.py, 2026-12-03, alone: 1 ahead 1.12x 2 ahead on TensorFlow, 1.07x
    # on JAX; the decode threads keep up, and a deeper queue only holds more images)
    ahead: int = 1


PIPELINE = Pipeline()


@dataclass
class ShardResult:
    """What running one shard produced."""

    index: int
    rows: int
    sha256: str  # of the (first layer's) shard file
    failures: list[dict[str, str]] = field(default_factory=list)
    sha256s: list[str] = field(default_factory=list)  # one per layer, in order
    batch_size: int | None = None  # the batch size that ran (halved after out-of-memory)
    runtime: dict[str, str] | None = None  # what computed it (engine, backend, device)
    # each input file's identity as it was read (cache/inputs.py); None: a source of arrays
    inputs: dict[str, FileIdentity | None] | None = None


@dataclass(frozen=True)
class Rows:
    """One image's rows: its resized pixels (one per view), content hash and view indices."""

    position: int
    pixels: Any  # V × size × size × 3 float32: NumPy, or a torch tensor on the GPU
    content_hash: int
    views: np.ndarray  # V uint16


class _Views:
    """Turns one decoded image into its rows: itself, plus K augmented views if it is a train
    image of a cache with ``--augment K``."""

    def __init__(self, plan: ShardPlan, config: ExtractConfig) -> None:
        self.size, self.k = config.image_size, config.augment
        self.ops = Augment.parse(config.augment_ops) if self.k else None
        self.plan = plan

    def __call__(self, position: int, image: np.ndarray) -> Rows:
        resized = images.resize(image, self.size)
        digest = images.content_hash(image)
        item = self.plan.items[position]
        if not self.k or item.split != "train":
            return Rows(position, resized[None], digest, np.zeros(1, np.uint16))
        stacked, indices = views(resized, key_seed(item.key), self.k + 1, self.ops)
        return Rows(position, stacked, digest, indices.astype(np.uint16))


def _read(source: Source, key: str, inputs: dict[str, FileIdentity | None]
          ) -> bytes | dict[str, str] | None:
    """The bytes of ``key``'s file, its identity noted in ``inputs``; its failure record if it
    cannot be read; None for a source of arrays."""
    path = source.file_of(key)
    if path is None:
        return None
    inputs[key], data = read_identified(path)
    if isinstance(data, OSError):
        return {"path": key, "reason": f"cannot read the file ({data.strerror or data})"}
    return data


def _decoded(source: Source, plan: ShardPlan, rows_of: _Views, decode_size: int | None,
             pipeline: Pipeline, batch_size: int, inputs: dict[str, FileIdentity | None]
             ) -> Iterator[Rows | dict[str, str]]:
    """Each planned image's rows, in order, decoded in threads a bounded distance ahead;
    an image that cannot be read is its failure record instead."""

    def load(position: int) -> Rows | dict[str, str]:
        item = plan.items[position]
        data = _read(source, item.key, inputs)
        if isinstance(data, dict):
            return data
        try:
            return rows_of(position, source.load_image(item, decode_size, data))
        except ValueError as exc:
            return {"path": item.key, "reason": str(exc)}

    # a source at a URL asks for more threads: its reads wait on the network, not the cores
    workers = max(pipeline.workers or default_threads(), getattr(source, "io_threads", 0))
    yield from ordered_map(load, range(len(plan.items)), workers,
                           ahead=max(workers, pipeline.ahead * batch_size))


def _decoded_on_gpu(source: Source, plan: ShardPlan, decoder: GpuDecoder, pipeline: Pipeline,
                    batch_size: int, inputs: dict[str, FileIdentity | None]
                    ) -> Iterator[Rows | dict[str, str]]:
    """As :func:`_decoded`, decoding ``batch_size`` files at a time on the GPU, in a thread of
    its own a batch ahead; threads read the files."""

    def read(position: int) -> bytes | dict[str, str]:
        key = plan.items[position].key
        data = _read(source, key, inputs)
        return {"path": key, "reason": "not a file: --decode gpu decodes image files"} \
            if data is None else data

    def chunks() -> Iterator[list[tuple[int, bytes | dict[str, str]]]]:
        chunk: list[tuple[int, bytes | dict[str, str]]] = []
        workers = pipeline.workers or default_threads()
        for position, data in enumerate(ordered_map(read, range(len(plan.items)), workers,
                                                    ahead=max(workers, 2 * batch_size))):
            chunk.append((position, data))
            if len(chunk) == batch_size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def decode(chunk: list[tuple[int, bytes | dict[str, str]]]) -> list[Rows | dict[str, str]]:
        readable = [(p, d) for p, d in chunk if isinstance(d, bytes)]
        found = dict(zip([p for p, _ in readable], decoder.rows([d for _, d in readable]),
                         strict=True))
        out: list[Rows | dict[str, str]] = []
        for position, data in chunk:
            got = found.get(position, data)
            if isinstance(got, str):
                got = {"path": plan.items[position].key, "reason": got}
            out.append(got if isinstance(got, dict) else
                       Rows(position, got[0][None], got[1], np.zeros(1, np.uint16)))
        return out

    for rows in ordered_map(decode, chunks(), 1, ahead=2, threaded=True):
        yield from rows


def run_shard(
    source: Source, extractor: FeatureExtractor, plan: ShardPlan,
    out_dir: Path | Sequence[Path], batch_size: int,
    on_batch: Callable[[int], object] | None = None, pipeline: Pipeline = PIPELINE,
    gpu_decoder: GpuDecoder | None = None,
) -> ShardResult:
    """Compute one shard and rename it into place; bad images become failure records.

    ``out_dir``: the cache folder, or one folder per layer of ``extractor``. A batch that
    runs the device out of memory is retried in halves; the result records the size that ran.
    ``gpu_decoder``: what decodes a ``decode="gpu"`` config's files (default: nvJPEG on the
    current CUDA device).
    """
    out_dirs = [Path(out_dir)] if isinstance(out_dir, str | Path) else list(out_dir)
    if len(out_dirs) != len(extractor.feature_shapes):
        raise ValueError("run_shard needs one output folder per layer of the feature model")
    config = extractor.config
    decode_size = config.image_size if config.fast_decode else None
    rows_of = _Views(plan, config)
    inputs: dict[str, FileIdentity | None] = {}
    writers: list[ShardWriter] = []
    failures: list[dict[str, str]] = []
    batcher = _Batcher(extractor, writers, plan, batch_size)
    try:
        for folder, shape in zip(out_dirs, extractor.feature_shapes, strict=True):
            writers.append(ShardWriter(folder / plan.file, shape, config.dtype,
                                       capacity=len(plan.items), views=bool(rows_of.k)))
        decoded = (_decoded(source, plan, rows_of, decode_size, pipeline, batch_size, inputs)
                   if config.decode != "gpu" else _decoded_on_gpu(
                       source, plan, gpu_decoder or GpuDecoder(config.image_size), pipeline,
                       batch_size, inputs))
        for rows in decoded:
            if isinstance(rows, dict):
                failures.append(rows)
                if on_batch:
                    on_batch(1)
                continue
            images_done = batcher.add(rows)
            if images_done and on_batch:
                on_batch(images_done)
        images_done = batcher.flush()
        if images_done and on_batch:
            on_batch(images_done)
        shas = [w.commit({"inputs_sha256": plan.inputs_sha256}) for w in writers]
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    return ShardResult(plan.index, writers[0].rows, shas[0], failures, shas, batcher.size,
                       extractor.runtime,
                       {item.key: inputs.get(item.key) for item in plan.items}
                       if inputs else None)


class _Batcher:
    """Gathers rows into batches, runs the model on each and appends the features."""

    def __init__(self, extractor: FeatureExtractor, writers: list[ShardWriter],
                 plan: ShardPlan, batch_size: int) -> None:
        self.extractor, self.writers, self.plan, self.size = extractor, writers, plan, batch_size
        self.pending: list[Rows] = []
        self.count = 0

    def add(self, rows: Rows) -> int:
        """Queue one image's rows; returns the images written when a batch ran, else 0."""
        self.pending.append(rows)
        self.count += len(rows.views)
        return self.flush() if self.count >= self.size else 0

    def flush(self) -> int:
        if not self.pending:
            return 0
        pending, self.pending, self.count = self.pending, [], 0
        batch = _concatenate([r.pixels for r in pending])
        positions = np.concatenate([np.full(len(r.views), r.position) for r in pending])
        hashes = np.concatenate([np.full(len(r.views), r.content_hash, np.uint64)
                                 for r in pending])
        view = np.concatenate([r.views for r in pending])
        features = self._features(batch)
        _append(self.writers, self.plan, positions, features, hashes, view)
        return len(pending)

    def _features(self, batch: np.ndarray) -> list[np.ndarray]:
        """The model's outputs for ``batch``, in pieces of at most ``size`` rows; a piece that
        runs out of device memory is split in half (down to one row) and ``size`` lowered."""
        outputs: list[list[np.ndarray]] = []
        start = 0
        while start < len(batch):
            piece = batch[start:start + self.size]
            try:
                outputs.append(self.extractor.run(piece))
            except Exception as exc:
                if not is_out_of_memory(exc) or self.size == 1:
                    raise
                self.size = max(1, len(piece) // 2)
                continue
            start += len(piece)
        return [np.concatenate(parts) for parts in zip(*outputs, strict=True)]


def _concatenate(parts: list[Any]) -> Any:
    """NumPy pixels, or torch tensors already on the GPU (``--decode gpu``), in one batch."""
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    import torch

    return torch.cat(parts)


def _append(writers: list[ShardWriter], plan: ShardPlan, positions: np.ndarray,
            features: list[np.ndarray], hashes: np.ndarray, view: np.ndarray) -> None:
    chosen = [plan.items[p] for p in positions]
    labels = np.array([it.label for it in chosen], dtype=np.int32)
    keys, splits = [it.key for it in chosen], [it.split for it in chosen]
    for writer, layer_features in zip(writers, features, strict=True):
        writer.append(layer_features, labels, keys, splits, hashes, view)
