"""The kinds of nearest-neighbour index (see :mod:`bottleneck.cache.index`): how each is made
empty, how it is searched (faiss search parameters) and how its distances become cosines.

- ``exact``: ``IndexFlatIP`` over float32 rows.
- ``pca-ivf`` (the approximate kind): an inverted file (L2, ``IndexIVFFlat``, ``lists(rows)``
  k-means lists) over a PCA projection of the rows to ``PCA_DIMS`` dims (float32), both
  trained once on a sample of rows spread over the cache's shards; the ``NPROBE`` nearest
  lists are scanned and their best ``k × K_FACTOR`` candidates re-ranked by float16 copies
  of the full-width rows (``IndexRefine`` over an fp16 ``IndexScalarQuantizer``). Distances
  on the projection make it several times cheaper to build and to search than a graph over
  full-width rows; the re-ranking gives back the full-width order. On unit rows squared L2
  is ``2 - 2·cosine``.
- ``hnsw``: indexes built before ``pca-ivf`` (HNSW over float16 full-width rows, inner
  product); still opened and searched, replaced by ``pca-ivf`` when the cache grows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

EXACT, APPROXIMATE, OLD_HNSW = "exact", "pca-ivf", "hnsw"
EF_SEARCH = 96  # graph candidates kept while searching an ``hnsw`` index
PCA_DIMS = 128  # width of the projection the lists are built on
TRAIN_PER_LIST = 25  # sample rows per list (k-means is trained on them)
PCA_ROWS = 8192  # rows of the sample the projection is computed from
TRAIN_SHARDS = 64  # shards the sample is read from, spread over the cache
KMEANS_ITERATIONS = 10
NPROBE = 32  # lists scanned per query (benchmarks/README.md: recall@10 against exact)
K_FACTOR = 8  # the shortlist re-ranked at full width: k × K_FACTOR
RETRAIN_GROWTH = 4  # a cache grown past this many times the rows trained on: rebuilt


def lists(rows: int) -> int:
    """The k-means lists of a ``pca-ivf`` index first built over ``rows`` rows (2·√rows)."""
    return int(np.clip(2 * np.sqrt(rows), 16, 4096))


def train_rows(rows: int) -> int:
    """The sample a ``pca-ivf`` index over ``rows`` rows is trained on."""
    return min(rows, TRAIN_PER_LIST * lists(rows))


def empty(faiss: Any, kind: str, dims: int, rows: int = 0,
          sample: np.ndarray | None = None) -> Any:
    """A new, empty index of ``kind`` (``exact`` or ``pca-ivf``) over ``dims``-wide unit
    rows; ``pca-ivf`` (for a cache of ``rows`` rows) trains its projection and lists on
    ``sample`` (unit rows)."""
    if kind == EXACT:
        return faiss.IndexFlatIP(dims)
    assert kind == APPROXIMATE and sample is not None  # hnsw: only opened, never built
    width = min(PCA_DIMS, dims)
    inverted = faiss.IndexIVFFlat(faiss.IndexFlatL2(width), width,
                                  min(lists(rows), len(sample)))
    inverted.cp.niter = KMEANS_ITERATIONS
    inverted.cp.min_points_per_centroid = 1  # a small sample is enough, without a warning
    base = faiss.IndexPreTransform(_projection(faiss, sample, width), inverted)
    base.train(np.ascontiguousarray(sample, np.float32))  # k-means on the projected rows
    refine = faiss.IndexScalarQuantizer(dims, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_L2)
    return faiss.IndexRefine(base, refine)  # faiss's wrappers keep the parts referenced


def reserve(faiss: Any, kind: str, index: Any, rows: int) -> None:
    """Make room at once for ``rows`` more float16 copies in a ``pca-ivf`` index, so that
    growing it never holds the old copies and their doubled vector together (the build's
    peak: 1× the copies' size instead of 1.5×)."""
    if kind != APPROXIMATE or rows <= 0:
        return
    refine = faiss.downcast_index(index.refine_index)
    used = refine.ntotal * refine.code_size
    refine.codes.resize(used + rows * refine.code_size)  # capacity: exactly this much
    refine.codes.resize(used)  # a std::vector keeps its capacity when it shrinks


def _projection(faiss: Any, sample: np.ndarray, width: int) -> Any:
    """The PCA of (``PCA_ROWS`` rows spread over) ``sample`` to ``width`` dims, as a faiss
    ``LinearTransform`` (faiss's own ``PCAMatrix`` trains 10× slower: float64 throughout)."""
    rows = np.asarray(sample[::max(1, len(sample) // PCA_ROWS)], np.float32)
    mean = rows.mean(axis=0)
    centred = rows - mean
    _, vectors = np.linalg.eigh((centred.T @ centred).astype(np.float64))  # ascending
    top = np.ascontiguousarray(vectors[:, ::-1][:, :width].T, np.float32)  # width × dims
    transform = faiss.LinearTransform(sample.shape[1], width, True)
    faiss.copy_array_to_vector(top.ravel(), transform.A)
    faiss.copy_array_to_vector(-(top @ mean), transform.b)
    transform.is_trained = True
    return transform


def params(faiss: Any, kind: str, k: int, effort: int | None, selector: Any) -> Any:
    """The search parameters of ``kind`` for ``k`` answers: ``effort`` candidates kept in
    the graph (``hnsw``; None: ``EF_SEARCH``) or lists scanned (``pca-ivf``; None:
    ``NPROBE``), ``selector`` (or None) the rows that may answer."""
    if kind == EXACT:
        found = faiss.SearchParameters()
    elif kind == OLD_HNSW:
        found = faiss.SearchParametersHNSW()
        found.efSearch = max(effort or EF_SEARCH, 2 * k)
    else:
        found = faiss.SearchParametersIVF()
        found.nprobe = max(1, effort or NPROBE)
    if selector is not None:
        found.sel = selector  # the inner index's: a refine or pre-transform ignores its own
    if kind != APPROXIMATE:
        return found
    refine = faiss.IndexRefineSearchParameters()
    refine.k_factor = K_FACTOR
    refine.base_index_params = found
    return refine


def cosines(kind: str, distances: np.ndarray) -> np.ndarray:
    """The cosines of ``kind``'s distances between unit rows."""
    return 1 - distances / 2 if kind == APPROXIMATE else distances


def record_params(kind: str, trained_rows: int) -> dict[str, int]:
    """What ``index.json`` records of how an index of ``kind`` was made."""
    if kind == EXACT:
        return {}
    return {"pca_dims": PCA_DIMS, "kmeans_iterations": KMEANS_ITERATIONS,
            "trained_rows": trained_rows}


def outgrown(kind: str, params: dict[str, Any], rows: int) -> bool:
    """Whether a ``pca-ivf`` index made with ``params`` is to be rebuilt for ``rows`` rows
    (its lists, trained on far fewer, would each hold too many)."""
    return kind == APPROXIMATE and rows > RETRAIN_GROWTH * params.get("trained_rows", rows)
