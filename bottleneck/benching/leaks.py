"""Leak check: the same image in two splits inflates every score.

Two checks, both across splits only:

- :func:`cross_split_duplicates`: identical decoded pixels (the cache's ``content_hash``);
- :func:`near_duplicates`: near-copies (re-encoded, lightly shifted, brightened, noisy,
  resized). Each val and test row is matched to its ``MATCHES`` most similar rows in earlier
  splits (test: train and val; val: train) by the cosine of their features (a candidate from
  ``CANDIDATE_COSINE``) and, where the rows' pixels are searched, by their grey
  ``SIGNATURE_SIDE``² pixels (from ``SIGNATURE_COSINE``). Each candidate's pixels are
  compared (:mod:`bottleneck.benching.pixels`); a row's most alike candidate is a
  near-duplicate when they reach ``PIXEL_MATCH``, or ``PIXEL_FLOOR`` while standing out from
  the row's next most alike candidate (its 1 − cosine at most 1/``STANDOUT`` of theirs: a
  JPEG q75 copy of a noisy picture reaches 0.99 where its own class reaches 0.83); where no
  pixels are compared, when the features alone have cosine ≥ ``FEATURE_ALONE``. Each row is
  reported once, with its most alike duplicate and its runner-up's similarity.

Features alone do not separate copies from look-alikes: through EfficientNet-Lite0 at 96 px,
Fashion-MNIST copies with light noise (σ 6) had feature cosine 0.60–1 with their originals
and ranked up to 237th among 6300 train rows, while distinct look-alikes reach 0.95. Hence
several matches per row from a low cosine, the pixel search and the pixel check, calibrated
on Fashion-MNIST (benchmarks/bench_near_duplicates.py): of 1000 test images, 5 have a
look-alike among all 60,000 train images that reaches 0.993 (0.98: 102), while 97.3% of
their perturbed copies (JPEG q75/q90, a 1-pixel shift, 10% brighter, noise σ 6) do; with
12,000 train and 2,000 test images through Lite0 at 96 px and 300 planted copies, the check
finds 97% of them and 99% of what it lists is planted (the 3 others: the same trousers and
dress twice in the dataset).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from bottleneck.benching.matching import (
    CANDIDATE_COSINE,
    Subset,
    best_matches,
    nearest_rows,
)
from bottleneck.benching.pixels import (
    PIXEL_SHIFT,
    PIXEL_SIDE,
    centred,
    grey_grids,
    grey_image,
    grey_similarity,
    pixel_similarity,
)
from bottleneck.cache import Cache

__all__ = ["cross_split_duplicates", "near_duplicates", "nearest_rows", "pixel_similarity",
           "unit_rows"]

PIXEL_MATCH = 0.993
PIXEL_FLOOR = 0.98  # below PIXEL_MATCH, a match must stand out from the row's others:
STANDOUT = 8  # its pixel difference (1 − cosine) this many times smaller than the next's
FEATURE_ALONE = 0.97
SIGNATURE_SIDE = 16  # the grey grid of the pixel search
SIGNATURE_COSINE = 0.95  # a pixel-search match below this is no candidate...
NEAREST_ALWAYS = 2  # ...but the nearest two are: a copy stands out from the runner-up
SIGNATURE_DIMS = 32  # the pixel search's shortlist space (see matching.best_matches)
GRID_BLOCK = 4096  # images read and reduced to signatures at once
PAIR_BLOCK = 2048  # pairs whose feature cosines are computed at once
MATCHES = 5  # the most similar rows of an earlier split that each row is compared with
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


Neighbours = Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]


def _feature_candidates(unit: np.ndarray | None, splits: np.ndarray,
                        reduced: np.ndarray | None, neighbours: Neighbours | None = None
                        ) -> list[tuple[int, int, float, int]]:
    """``(row, earlier row, cosine, rank)`` of each val and test row's ``MATCHES`` most
    similar rows of earlier splits by their features, from ``CANDIDATE_COSINE``; by the
    ``neighbours`` search where given, else by comparing ``unit`` rows."""
    candidates: list[tuple[int, int, float, int]] = []
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
            match, cosine = best_matches(unit[query], unit[ref],
                                         None if reduced is None else reduced[query],
                                         None if reduced is None else reduced[ref], MATCHES)
        for a, row, values in zip(query, match, cosine, strict=True):
            candidates += [(int(a), int(ref[b]), float(c), rank)
                           for rank, (b, c) in enumerate(zip(row, values, strict=True))
                           if b >= 0 and c >= CANDIDATE_COSINE]
    return candidates


def _pixel_candidates(splits: np.ndarray, pixels: Callable[[int], np.ndarray | None]
                      ) -> tuple[list[tuple[int, int, int]], int]:
    """``(row, earlier row, rank)`` of each val and test row's ``MATCHES`` most similar
    rows of earlier splits by their grey ``SIGNATURE_SIDE``² pixels (centred cosine ≥
    ``SIGNATURE_COSINE``, and the nearest ``NEAREST_ALWAYS`` whatever their cosine, so that
    a copy has a runner-up to stand out from), and the rows read: features drift under
    noise or JPEG on small images where these do not. Signatures are made ``GRID_BLOCK``
    images at a time and kept in float16 (512 bytes a row)."""
    rows = np.flatnonzero(np.isin(splits, ("train", *EARLIER)))
    if not len(rows):
        return [], 0
    signatures = np.zeros((len(splits), SIGNATURE_SIDE ** 2), np.float16)
    for start in range(0, len(rows), GRID_BLOCK):
        block = rows[start:start + GRID_BLOCK]
        grids = grey_grids([pixels(int(i)) for i in block], SIGNATURE_SIDE)
        signatures[block] = centred(grids.reshape(len(block), -1))[0]  # unreadable: zero
    sample = signatures[rows[:: max(1, len(rows) // 5000)]].astype(np.float32)
    directions = np.linalg.eigh(sample.T @ sample)[1][:, ::-1][:, :SIGNATURE_DIMS].T.copy()

    def projected(chosen: np.ndarray) -> np.ndarray:
        out = np.empty((len(chosen), len(directions)), np.float32)
        for start in range(0, len(chosen), GRID_BLOCK):
            part = chosen[start:start + GRID_BLOCK]
            out[start:start + len(part)] = signatures[part].astype(np.float32) @ directions.T
        return out

    found = []
    for split, earlier in EARLIER.items():
        query = np.flatnonzero(splits == split)
        ref = np.flatnonzero(np.isin(splits, earlier))
        if not len(query) or not len(ref):
            continue
        match, cosine = best_matches(Subset(signatures, query), Subset(signatures, ref),
                                     projected(query), projected(ref), MATCHES)
        for a, row, values in zip(query, match, cosine, strict=True):
            found += [(int(a), int(ref[b]), rank)
                      for rank, (b, c) in enumerate(zip(row, values, strict=True))
                      if c >= SIGNATURE_COSINE or (rank < NEAREST_ALWAYS and c > -np.inf)]
    return found, len(rows)


def _pair_cosines(pairs: list[tuple[int, int, int]], unit: np.ndarray | None,
                  features: Callable[[np.ndarray], np.ndarray] | None) -> list[float]:
    """The feature cosine of each ``(row, earlier row, rank)`` pair, ``PAIR_BLOCK`` pairs
    at a time."""
    if not pairs:
        return []
    a, b = (np.array([p[i] for p in pairs], np.int64) for i in (0, 1))
    if unit is not None:
        return np.einsum("ij,ij->i", unit[a], unit[b]).astype(float).tolist()
    assert features is not None, "give the rows' unit features or a features(rows) reader"
    cosines: list[float] = []
    for start in range(0, len(a), PAIR_BLOCK):
        part = slice(start, start + PAIR_BLOCK)
        rows, inverse = np.unique(np.concatenate([a[part], b[part]]), return_inverse=True)
        vectors = features(rows)[inverse]
        half = len(vectors) // 2
        cosines += np.einsum("ij,ij->i", vectors[:half], vectors[half:]).astype(float).tolist()
    return cosines


def near_duplicates(
    unit: np.ndarray | None, splits: np.ndarray,
    pixels: Callable[[int], np.ndarray | None] | None,
    reduced: np.ndarray | None = None, hashes: np.ndarray | None = None,
    max_pixel_pairs: int | None = None, max_pixel_rows: int | None = None,
    neighbours: Neighbours | None = None,
    features: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, Any]:
    """Near-duplicate pairs across splits (see the module docstring).

    ``unit``: features scaled to length 1, one row each; ``splits``: each row's split;
    ``pixels(i)``: row i's image (uint8 H×W×3) or None when it cannot be read; ``reduced``:
    the rows projected to a few dimensions (the shortlist of big searches); ``hashes``:
    content hashes, so that identical images (the exact check's) are not repeated;
    ``max_pixel_pairs``: compare the pixels of at most this many candidates, most similar
    first (the rest are judged by their features alone); ``max_pixel_rows``: search the
    pixels of every row too (:func:`_pixel_candidates`) only when there are at most this
    many rows (None: always); ``neighbours(queries, allowed, k)``: instead of ``unit``, a
    search that answers the ``k`` most similar rows allowed (a boolean mask over all rows) to
    each query row, as row indices and cosines (-1 and -inf where none): the cache's
    nearest-neighbour index (``CacheRows.neighbours``), with ``features(rows)`` giving rows'
    unit-length features for the pairs the pixel search finds.
    Returns ``{"pairs": [{"a", "b", "cosine", "pixels"}], ...counts and thresholds}``, row
    ``a`` in the later split, pairs with the most similar pixels first (then those judged
    by their features alone). Pixels are compared for each row's ``NEAREST_ALWAYS`` best
    matches first (a match below ``PIXEL_MATCH`` needs its runner-up compared too), rows
    with the most similar best match first, so that ``max_pixel_pairs`` reaches the rows
    most likely to be copies and can judge each.
    """
    greys: dict[int, np.ndarray | None] = {}

    def grey(i: int) -> np.ndarray | None:
        if i not in greys:
            image = pixels(i) if pixels is not None else None
            greys[i] = None if image is None else grey_image(image)
        return greys[i]

    found: list[tuple[int, int, int]] = []
    searched = 0  # the pixel search first: its memory is freed before the index is read
    if pixels is not None and (max_pixel_rows is None or len(splits) <= max_pixel_rows):
        found, searched = _pixel_candidates(splits, pixels)
    candidates = _feature_candidates(unit, splits, reduced, neighbours)
    if found:
        known = {(a, b) for a, b, _, _ in candidates}
        found = [(a, b, rank) for a, b, rank in found if (a, b) not in known]
        candidates += [(a, b, c, rank) for (a, b, rank), c
                       in zip(found, _pair_cosines(found, unit, features), strict=True)]
    if hashes is not None:
        candidates = [c for c in candidates if hashes[c[0]] != hashes[c[1]]]
    best: dict[int, float] = {}
    for a, _, cosine, _ in candidates:
        best[a] = max(best.get(a, -1.0), cosine)
    candidates.sort(key=lambda c: (c[3] >= NEAREST_ALWAYS, -best[c[0]], c[0], c[3], -c[2]))

    compared: dict[int, list[tuple[float, int, float]]] = defaultdict(list)
    unjudged: dict[int, tuple[int, float]] = {}  # row → its best match not compared
    checked = unreadable = 0
    for order, (a, b, cosine, _) in enumerate(candidates):
        first = second = None
        if pixels is not None and (max_pixel_pairs is None or order < max_pixel_pairs):
            first, second = grey(a), grey(b)
            unreadable += first is None or second is None
        if first is not None and second is not None:
            compared[a].append((grey_similarity(first, second), b, cosine))
            checked += 1
        elif cosine > unjudged.get(a, (0, -1.0))[1]:
            unjudged[a] = (b, cosine)
    pairs = []
    for a, found in compared.items():
        found.sort(reverse=True)
        (best, b, cosine), runner_up = found[0], found[1][0] if len(found) > 1 else None
        if best >= PIXEL_MATCH or (best >= PIXEL_FLOOR and runner_up is not None
                                   and (1 - best) * STANDOUT <= 1 - runner_up):
            pairs.append({"a": a, "b": b, "cosine": cosine, "pixels": best,
                          "runner_up": runner_up})
    matched = {p["a"] for p in pairs}
    pairs += [{"a": a, "b": b, "cosine": cosine, "pixels": None, "runner_up": None}
              for a, (b, cosine) in unjudged.items()
              if a not in matched and cosine >= FEATURE_ALONE]
    pairs.sort(key=lambda p: (p["pixels"] is not None, p["pixels"] or 0.0, p["cosine"]),
               reverse=True)
    return {"pairs": pairs, "candidates": len(candidates), "pixels_compared": checked,
            "pixels_unreadable": unreadable, "pixel_search_rows": searched,
            "by_features_alone": len(candidates) - checked,
            "thresholds": {"candidate_cosine": CANDIDATE_COSINE, "pixel_match": PIXEL_MATCH,
                           "feature_alone": FEATURE_ALONE, "pixel_side": PIXEL_SIDE,
                           "pixel_shift": PIXEL_SHIFT, "matches_per_row": MATCHES,
                           "pixel_floor": PIXEL_FLOOR, "standout": STANDOUT,
                           "signature_side": SIGNATURE_SIDE,
                           "signature_cosine": SIGNATURE_COSINE}}
