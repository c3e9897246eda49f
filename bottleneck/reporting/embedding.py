"""The feature map: a fixed sample of rows, PCA then t-SNE (scikit-learn), in 2-D."""

from __future__ import annotations

from typing import Any

import numpy as np

MAP_ROWS = 1500  # rows in the map
PCA_DIMS = 50
ITERATIONS = 400  # scikit-learn's default is 1000; the map settles well before
ANGLE = 0.6  # Barnes-Hut's trade-off (scikit-learn's default 0.5): a little faster
SEED = 0


def map_sample(n: int, marked: np.ndarray, limit: int = MAP_ROWS) -> np.ndarray:
    """Sorted row indices: every ``marked`` row (up to half the map) plus a fixed random
    sample of the others."""
    marked = np.unique(np.asarray(marked, np.int64))
    marked = marked[marked >= 0][: limit // 2]
    if n <= limit:
        return np.arange(n)
    rng = np.random.default_rng(SEED)
    others = np.setdiff1d(np.arange(n), marked)
    return np.sort(np.concatenate([marked, rng.choice(others, limit - len(marked),
                                                      replace=False)]))


def embed(reduced: np.ndarray) -> np.ndarray:
    """N × 2 t-SNE coordinates of rows already projected (see ``rows.project``): PCA to
    ``PCA_DIMS`` then t-SNE (perplexity 30, or less for few rows; one thread)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    n = len(reduced)
    if n < 4:
        return np.zeros((n, 2))
    dims = min(PCA_DIMS, reduced.shape[1], n - 1)
    start = PCA(dims, random_state=SEED).fit_transform(reduced)
    perplexity = float(min(30.0, (n - 1) / 3))
    tsne = TSNE(2, perplexity=perplexity, init="pca", random_state=SEED, n_jobs=1,
                max_iter=ITERATIONS, angle=ANGLE)
    with threadpool_limits(1):  # one thread: its OpenMP gradient ran 3x slower on 2 busy cores
        return tsne.fit_transform(start)


def feature_map(reduced: np.ndarray, labels: np.ndarray, splits: np.ndarray,
                marked: np.ndarray) -> dict[str, Any]:
    """The map's sample, its coordinates and which rows are marked (mistakes)."""
    rows = map_sample(len(reduced), marked)
    coordinates = embed(reduced[rows])
    return {"rows": rows, "xy": coordinates, "labels": labels[rows], "splits": splits[rows],
            "marked": np.isin(rows, marked)}
