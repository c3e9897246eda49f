"""The most similar rows of a reference set to each query row (all unit length), as the leak
check searches them (:mod:`bottleneck.benching.leaks`): every pair compared while that is
cheap (``EXACT_FLOPS``); else a shortlist per query from a low-dimensional projection, then
the shortlisted rows compared exactly. The shortlist is provable (no row that can reach
``CANDIDATE_COSINE`` is missed) up to ``SHORTLIST_PAIRS`` query × reference pairs; above,
it comes from an inverted-file index (faiss ``IndexIVFFlat``) over the same bound, so the
search grows with the rows instead of their square.
"""

from __future__ import annotations

from typing import Any

import numpy as np

CANDIDATE_COSINE = 0.60
EXACT_FLOPS = 2e9  # below this a search compares every pair in the full feature space
SHORTLIST_PAIRS = 2.5e8  # query × reference pairs the provable shortlist bounds, at most
CHUNK_BYTES = 32 << 20  # similarity block held at once
SHORTLIST = 16  # reference rows per query compared exactly, at most
PROBES = 16  # inverted lists searched per query (of ~√rows)
TRAIN_ITERATIONS = 10  # k-means rounds placing the lists' centres
QUERY_BLOCK = 4096  # queries re-ranked at once


class Subset:
    """Rows ``chosen`` of ``array`` without copying them: gathered only where indexed."""

    def __init__(self, array: np.ndarray, chosen: np.ndarray) -> None:
        self.array, self.chosen = array, chosen

    def __len__(self) -> int:
        return len(self.chosen)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.chosen), *self.array.shape[1:])

    def __getitem__(self, index: Any) -> np.ndarray:
        return self.array[self.chosen[index]]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.array[self.chosen], dtype)


def nearest_rows(queries: np.ndarray, reference: np.ndarray, k: int = 1
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, cosines)``, each Q × k: the ``k`` most similar reference rows of each
    query row (all unit length), best first, compared in blocks of ``CHUNK_BYTES``."""
    k = min(k, len(reference))
    indices = np.zeros((len(queries), k), np.int64)
    cosines = np.zeros((len(queries), k), np.float32)
    step = max(1, CHUNK_BYTES // (4 * max(1, len(reference))))
    for start in range(0, len(queries), step):
        block = queries[start:start + step] @ reference.T
        top = np.argpartition(-block, k - 1, axis=1)[:, :k] if k < block.shape[1] else \
            np.tile(np.arange(block.shape[1]), (len(block), 1))
        values = np.take_along_axis(block, top, axis=1)
        order = np.argsort(-values, axis=1)
        indices[start:start + step] = np.take_along_axis(top, order, axis=1)
        cosines[start:start + step] = np.take_along_axis(values, order, axis=1)
    return indices, cosines


def _bound_rows(reduced: np.ndarray) -> np.ndarray:
    """Rows projected on orthonormal directions, with the length they leave out appended:
    ``[Px, r_x]·[Py, r_y] = Px·Py + r_x r_y``, which bounds ``x·y`` from above."""
    left = np.sqrt(np.clip(1 - np.einsum("ij,ij->i", reduced, reduced), 0, None))
    return np.hstack([reduced, left[:, None]]).astype(np.float32)


def _exact_shortlist(reduced_q: np.ndarray, reduced_ref: np.ndarray) -> np.ndarray:
    """Q × ``SHORTLIST`` reference rows (-1: none) whose bound reaches ``CANDIDATE_COSINE``,
    the highest bounds where more pass: no row that can reach it is missed."""
    bound_q, bound_ref = _bound_rows(reduced_q), _bound_rows(reduced_ref)
    width = min(SHORTLIST, len(reduced_ref))
    found = np.full((len(reduced_q), width), -1, np.int64)
    step = max(1, CHUNK_BYTES // (4 * max(1, len(reduced_ref))) // 2)
    for start in range(0, len(reduced_q), step):
        bound = bound_q[start:start + step] @ bound_ref.T
        top = np.argpartition(-bound, width - 1, axis=1)[:, :width] \
            if width < bound.shape[1] else np.tile(np.arange(width), (len(bound), 1))
        reach = np.take_along_axis(bound, top, axis=1) >= CANDIDATE_COSINE
        found[start:start + step] = np.where(reach, top, -1)
    return found


def _approximate_shortlist(reduced_q: np.ndarray, reduced_ref: np.ndarray) -> np.ndarray:
    """:func:`_exact_shortlist` from an inverted-file index of the bound rows (``PROBES``
    lists searched of ~√rows): rows that can reach ``CANDIDATE_COSINE`` are near each
    other in that space, so their lists are the ones searched."""
    from bottleneck.cache.index import _faiss

    faiss = _faiss()
    bound_ref = _bound_rows(reduced_ref)
    lists = int(np.clip(np.sqrt(len(bound_ref)), 1, len(bound_ref) // 39 + 1))
    quantizer = faiss.IndexFlatIP(bound_ref.shape[1])
    index = faiss.IndexIVFFlat(quantizer, bound_ref.shape[1], lists,
                               faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = TRAIN_ITERATIONS
    rng = np.random.default_rng(0)
    sample = rng.choice(len(bound_ref), min(len(bound_ref), 40 * lists), replace=False)
    index.train(bound_ref[np.sort(sample)])
    index.add(bound_ref)
    index.nprobe = PROBES
    width = min(SHORTLIST, len(reduced_ref))
    found = np.full((len(reduced_q), width), -1, np.int64)
    for start in range(0, len(reduced_q), QUERY_BLOCK):
        bound, rows = index.search(_bound_rows(reduced_q[start:start + QUERY_BLOCK]), width)
        found[start:start + QUERY_BLOCK] = np.where(bound >= CANDIDATE_COSINE, rows, -1)
    return found


def best_matches(queries: np.ndarray | Subset, reference: np.ndarray | Subset,
                 reduced_q: np.ndarray | None, reduced_ref: np.ndarray | None, k: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Each query's ``k`` most similar reference rows (Q × k indices and cosines, best
    first; -inf where fewer can reach ``CANDIDATE_COSINE``): exactly, or among the
    shortlist that the reduced rows allow (see the module docstring). ``queries`` and
    ``reference`` may be float16 (compared in float32) and :class:`Subset` views."""
    k = min(k, len(reference))
    if reduced_q is None or reduced_ref is None or \
            2.0 * len(queries) * len(reference) * reference.shape[1] <= EXACT_FLOPS:
        return nearest_rows(np.asarray(queries, np.float32),
                            np.asarray(reference, np.float32), k)
    exact = float(len(queries)) * len(reference) <= SHORTLIST_PAIRS
    shortlist = (_exact_shortlist if exact else _approximate_shortlist)(reduced_q, reduced_ref)
    index = np.zeros((len(queries), k), np.int64)
    cosine = np.full((len(queries), k), -np.inf, np.float32)
    for start in range(0, len(queries), QUERY_BLOCK):
        chosen = shortlist[start:start + QUERY_BLOCK]
        mine = np.asarray(queries[start:start + QUERY_BLOCK], np.float32)
        values = np.einsum("qsd,qd->qs", np.asarray(reference[chosen.clip(0)], np.float32),
                           mine)
        values[chosen < 0] = -np.inf
        order = np.argsort(-values, axis=1, kind="stable")[:, :k]
        index[start:start + QUERY_BLOCK] = np.take_along_axis(chosen, order, axis=1)
        cosine[start:start + QUERY_BLOCK] = np.take_along_axis(values, order, axis=1)
    index[~np.isfinite(cosine)] = 0
    return index, cosine
