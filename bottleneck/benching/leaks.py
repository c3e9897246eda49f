"""Leak check: the same image in two splits inflates every score.

Two checks, both across splits only:

- :func:`cross_split_duplicates`: identical decoded pixels (the cache's ``content_hash``);
- :func:`near_duplicates`: near-copies (re-encoded, lightly resized). Each val and test row
  is matched to its ``MATCHES`` most similar rows in earlier splits (test: train and val;
  val: train) by the cosine of their features; a match with cosine ≥ ``CANDIDATE_COSINE``
  is a candidate, and a candidate is a near-duplicate when the two images agree at 32×32
  grey (centred cosine of the pixels ≥ ``PIXEL_MATCH``) or, where the pixels cannot be
  read, when the features alone have cosine ≥ ``FEATURE_ALONE``. Each row is reported once,
  with its most similar duplicate.

Features alone do not separate copies from look-alikes: on 800 Fashion-MNIST images
through EfficientNet-Lite0 (ImageNet weights, 224 px), train images re-encoded as JPEG
(quality 75–95) had feature cosine 0.87–0.996 with their originals while distinct images
reached 0.95. Their pixels tell them apart: 1000 train images re-encoded at quality 75 agree
with their originals to ≥ 0.977 (median 0.997; quality 90: ≥ 0.994). Fashion-MNIST holds
near-copies of its own: of 3000 test images, 129 have one of 20000 train images at ≥ 0.98 and
two at ≥ 0.999; the check reports such pairs too (benchmarks/README.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from bottleneck.cache import Cache

CANDIDATE_COSINE = 0.80
PIXEL_MATCH = 0.98
FEATURE_ALONE = 0.97
PIXEL_SIDE = 32
EXACT_FLOPS = 2e9  # below this a search compares every pair in the full feature space
CHUNK_BYTES = 32 << 20  # similarity block held at once
SHORTLIST = 16  # reference rows per query compared exactly, at most
MATCHES = 3  # the most similar rows of an earlier split that each row is compared with
EARLIER = {"val": ("train",), "test": ("train", "val")}


def cross_split_duplicates(cache: Cache) -> list[list[dict[str, str]]] | None:
    """Groups of rows with the same content hash that span more than one split.

    None when the cache has no ``content_hash`` column (made before it existed).
    """
    groups: dict[int, list[dict[str, str]]] = defaultdict(list)
    try:
        hashes = cache.column("content_hash")
    except KeyError:  # h5py: no such dataset
        return None
    _, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
    shared = np.flatnonzero(counts[inverse] > 1)  # only rows whose hash another row has
    if not len(shared):
        return []
    paths, splits = cache.column("paths"), cache.column("split")
    for i in shared:
        groups[int(hashes[i])].append({"path": str(paths[i]), "split": str(splits[i])})
    return [rows for rows in groups.values() if len({r["split"] for r in rows}) > 1]


def unit_rows(features: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 in place (float32); all-zero rows stay zero."""
    features = features.reshape(len(features), -1)
    for start in range(0, len(features), 4096):
        block = features[start:start + 4096]
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        block /= np.where(norms > 0, norms, 1)
    return features


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


def _shortlist(reduced_q: np.ndarray, reduced_ref: np.ndarray) -> list[np.ndarray]:
    """Per query, the reference rows that can reach ``CANDIDATE_COSINE``: with ``reduced``
    the rows' projection on orthonormal directions and ``r`` the length of what it leaves
    out, ``x·y ≤ Px·Py + r_x r_y``, so no row whose bound falls short is missed. Where more
    than ``SHORTLIST`` rows pass, the ``SHORTLIST`` with the highest bound are kept."""
    def left(rows: np.ndarray) -> np.ndarray:
        return np.sqrt(np.clip(1 - np.einsum("ij,ij->i", rows, rows), 0, None)).astype(
            np.float32)

    left_q, left_ref = left(reduced_q), left(reduced_ref)
    found: list[np.ndarray] = []
    step = max(1, CHUNK_BYTES // (4 * max(1, len(reduced_ref))) // 2)
    for start in range(0, len(reduced_q), step):
        bound = reduced_q[start:start + step] @ reduced_ref.T
        bound += np.multiply.outer(left_q[start:start + step], left_ref)
        reach = bound >= CANDIDATE_COSINE
        for row, count in enumerate(reach.sum(axis=1)):
            if count <= SHORTLIST:
                found.append(np.flatnonzero(reach[row]))
            else:  # a copy, so that the whole partition is not kept alive
                found.append(np.argpartition(-bound[row], SHORTLIST - 1)[:SHORTLIST].copy())
    return found


def _best_matches(queries: np.ndarray, reference: np.ndarray, reduced_q: np.ndarray | None,
                  reduced_ref: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Each query's ``MATCHES`` most similar reference rows (Q × k indices and cosines, best
    first; -inf where fewer can reach ``CANDIDATE_COSINE``): exactly, or among the shortlist
    that the reduced space allows (see :func:`_shortlist`)."""
    k = min(MATCHES, len(reference))
    if reduced_q is None or reduced_ref is None or \
            2.0 * len(queries) * len(reference) * reference.shape[1] <= EXACT_FLOPS:
        return nearest_rows(queries, reference, k)
    index = np.zeros((len(queries), k), np.int64)
    cosine = np.full((len(queries), k), -np.inf, np.float32)
    for q, chosen in enumerate(_shortlist(reduced_q, reduced_ref)):
        if not len(chosen):
            continue
        exact = reference[chosen] @ queries[q]
        order = np.argsort(-exact)[:k]
        index[q, :len(order)], cosine[q, :len(order)] = chosen[order], exact[order]
    return index, cosine


def pixel_vector(image: np.ndarray) -> np.ndarray:
    """An image at ``PIXEL_SIDE``² grey (box-averaged), centred and scaled to length 1."""
    from PIL import Image

    grey = Image.fromarray(np.asarray(image, np.uint8)).convert("L")
    values = np.asarray(grey.resize((PIXEL_SIDE, PIXEL_SIDE), Image.Resampling.BOX),
                        np.float64).ravel()
    values -= values.mean()
    norm = np.linalg.norm(values)
    return values / norm if norm > 0 else values


def pixel_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Centred cosine of two images at ``PIXEL_SIDE``² grey: near 1 for the same picture,
    however it was re-encoded (or slightly resized)."""
    x, y = pixel_vector(a), pixel_vector(b)
    if not x.any() or not y.any():
        return 1.0 if not x.any() and not y.any() else 0.0
    return float(x @ y)


Neighbours = Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]


def near_duplicates(
    unit: np.ndarray | None, splits: np.ndarray,
    pixels: Callable[[int], np.ndarray | None] | None,
    reduced: np.ndarray | None = None, hashes: np.ndarray | None = None,
    max_pixel_pairs: int | None = None, neighbours: Neighbours | None = None,
) -> dict[str, Any]:
    """Near-duplicate pairs across splits (see the module docstring).

    ``unit``: features scaled to length 1, one row each; ``splits``: each row's split;
    ``pixels(i)``: row i's image (uint8 H×W×3) or None when it cannot be read; ``reduced``:
    the rows projected to a few dimensions (the shortlist of big searches); ``hashes``:
    content hashes, so that identical images (the exact check's) are not repeated;
    ``max_pixel_pairs``: compare the pixels of at most this many candidates, most similar
    first (the rest are judged by their features alone); ``neighbours(queries, allowed, k)``:
    instead of ``unit`` and ``reduced``, a search that answers the ``k`` most similar rows
    allowed (a boolean mask over all rows) to each query row, as row indices and cosines (-1
    and -inf where none): the cache's nearest-neighbour index (``CacheRows.neighbours``).
    Returns ``{"pairs": [{"a", "b", "cosine", "pixels"}], ...counts and thresholds}``, row
    ``a`` in the later split, pairs most similar first.
    """
    candidates: list[tuple[int, int, float]] = []
    for split, earlier in EARLIER.items():
        query = np.flatnonzero(splits == split)
        allowed = np.isin(splits, earlier)
        ref = np.flatnonzero(allowed)
        if not len(query) or not len(ref):
            continue
        if neighbours is not None:
            match, cosine = neighbours(query, allowed, MATCHES)
            ref = np.arange(len(splits))  # the search answers row indices
        else:
            assert unit is not None, "give the rows' unit features or a neighbour search"
            match, cosine = _best_matches(unit[query], unit[ref],
                                          None if reduced is None else reduced[query],
                                          None if reduced is None else reduced[ref])
        for a, row, values in zip(query, match, cosine, strict=True):
            candidates += [(int(a), int(ref[b]), float(c))
                           for b, c in zip(row, values, strict=True) if c >= CANDIDATE_COSINE]
    if hashes is not None:
        candidates = [c for c in candidates if hashes[c[0]] != hashes[c[1]]]
    candidates.sort(key=lambda c: -c[2])
    vectors: dict[int, np.ndarray | None] = {}

    def vector(i: int) -> np.ndarray | None:
        if i not in vectors:
            image = pixels(i) if pixels is not None else None
            vectors[i] = None if image is None else pixel_vector(image)
        return vectors[i]

    pairs, matched, checked, unreadable = [], set(), 0, 0
    for rank, (a, b, cosine) in enumerate(candidates):
        if a in matched:
            continue
        similarity = None
        if pixels is not None and (max_pixel_pairs is None or rank < max_pixel_pairs):
            first, second = vector(a), vector(b)
            if first is not None and second is not None:
                similarity = float(first @ second)
                checked += 1
            else:
                unreadable += 1
        if (similarity is not None and similarity >= PIXEL_MATCH) or \
                (similarity is None and cosine >= FEATURE_ALONE):
            pairs.append({"a": a, "b": b, "cosine": cosine, "pixels": similarity})
            matched.add(a)
    return {"pairs": pairs, "candidates": len(candidates), "pixels_compared": checked,
            "pixels_unreadable": unreadable,
            "by_features_alone": len(candidates) - checked,
            "thresholds": {"candidate_cosine": CANDIDATE_COSINE, "pixel_match": PIXEL_MATCH,
                           "feature_alone": FEATURE_ALONE, "pixel_side": PIXEL_SIDE,
                           "matches_per_row": MATCHES}}
