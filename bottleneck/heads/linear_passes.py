"""The streamed passes of the linear probe: each reads every training row once, a chunk at a
time, in float32, and keeps only per-feature (``d``) or per-weight (``d × classes``, ``d × d``)
sums in float64, so memory is bounded by a chunk, never by the number of rows.

- :func:`moments`: rows, per-feature mean and variance (chunks merged the way of Chan et al.,
  stable without float64 copies of the rows), class counts or target mean and variance.
- :func:`logistic_pass`: the value and gradient of the L2-regularised logistic loss (binomial
  for two classes, multinomial otherwise), scaled as scikit-learn's ``LogisticRegression``
  (``C Σ sᵢ ℓᵢ + ½‖W‖²``, divided by ``C n``), so its optimum is theirs.
- :func:`gram_pass` and :func:`loo_errors`: ridge's normal equations, and every alpha's exact
  leave-one-out error from one eigendecomposition (what ``RidgeCV`` computes in memory).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

# A pass: a fresh iterator over (float32 rows, labels or targets) chunks.
Chunks = Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]


@dataclass
class Moments:
    """What one pass over the training rows learns: count, feature moments, targets."""

    n: int
    mean: np.ndarray
    var: np.ndarray
    labels: np.ndarray  # distinct labels or target values seen (regression: mean, var)
    counts: np.ndarray  # rows per distinct label (regression: empty)

    @property
    def scale(self) -> np.ndarray:
        """Per-feature deviation, 1 where a feature is constant (as ``StandardScaler``)."""
        std = np.sqrt(self.var)
        return np.where(std < 10 * np.finfo(np.float64).eps, 1.0, std)


class Sample:
    """A uniform sample of at most ``size`` rows without replacement, kept while streaming:
    each row draws a random key and the rows with the smallest keys stay, in place in one
    buffer (deterministic for a seed), so memory is the sample plus one chunk."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size, self.rng, self.held = size, np.random.default_rng(seed), 0
        self.keys = np.zeros(size)
        self.x: np.ndarray | None = None
        self.y: np.ndarray | None = None

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        if not self.size or not len(x):
            return
        y = np.asarray(y)
        if self.x is None:
            self.x = np.empty((self.size, *x.shape[1:]), x.dtype)
            self.y = np.empty(self.size, y.dtype)
        keys = self.rng.random(len(x))
        free = min(self.size - self.held, len(x))
        if free:
            slots = slice(self.held, self.held + free)
            self.x[slots], self.y[slots], self.keys[slots] = x[:free], y[:free], keys[:free]
            self.held += free
            x, y, keys = x[free:], y[free:], keys[free:]
        if not len(x):
            return
        together = np.concatenate([self.keys, keys])
        kept = np.argpartition(together, self.size - 1)[:self.size]
        incoming = kept[kept >= self.size] - self.size
        slots = np.setdiff1d(np.arange(self.size), kept[kept < self.size])
        self.x[slots], self.y[slots], self.keys[slots] = x[incoming], y[incoming], keys[incoming]

    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The sampled ``(x, y)``."""
        if self.x is None:
            return np.zeros((0, 0), np.float32), np.zeros(0)
        return self.x[:self.held], self.y[:self.held]


def moments(chunks: Chunks, regress: bool, sample: Sample | None = None) -> Moments:
    """One pass: row count, feature mean and variance; class counts or target moments; fills
    ``sample`` on the way.

    Raises ValueError for no rows or a value that is NaN or infinite.
    """
    n, mean, m2 = 0, None, None
    labels: dict[float, int] = {}
    y_n, y_mean, y_m2 = 0, 0.0, 0.0
    for x, y in chunks():
        if not np.isfinite(x).all():
            raise ValueError("Input X contains NaN or infinity.")
        rows = len(x)
        if not rows:
            continue
        part_mean = x.mean(axis=0, dtype=np.float64)
        part_m2 = np.square(x - part_mean.astype(x.dtype)).sum(axis=0, dtype=np.float64)
        if mean is None:
            n, mean, m2 = rows, part_mean, part_m2
        else:
            delta, total = part_mean - mean, n + rows
            mean = mean + delta * (rows / total)
            m2 = m2 + part_m2 + np.square(delta) * (n * rows / total)
            n = total
        if sample is not None:
            sample.add(x, y)
        if regress:
            values = np.asarray(y, dtype=np.float64)
            if not np.isfinite(values).all():
                raise ValueError("Input y contains NaN or infinity.")
            part, total = values.mean(), y_n + rows
            y_m2 += np.square(values - part).sum() + (part - y_mean) ** 2 * y_n * rows / total
            y_mean, y_n = y_mean + (part - y_mean) * rows / total, total
        else:
            for value, count in zip(*np.unique(y, return_counts=True), strict=True):
                labels[value] = labels.get(value, 0) + int(count)
    if mean is None:
        raise ValueError("Found array with 0 sample(s) (the training rows are empty) while a "
                         "minimum of 1 is required.")
    if regress:
        return Moments(n, mean, m2 / n, np.array([y_mean, y_m2 / n]), np.zeros(0))
    keys = np.array(sorted(labels))
    return Moments(n, mean, m2 / n, keys, np.array([labels[k] for k in keys]))


def standardized(chunks: Chunks, mean: np.ndarray, scale: np.ndarray) -> Chunks:
    """The chunks with each feature standardised, in float32."""
    shift, factor = mean.astype(np.float32), (1.0 / scale).astype(np.float32)

    def passes() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for x, y in chunks():
            rows = x - shift  # a new float32 array: the caller's rows are never changed
            rows *= factor
            yield rows, y

    return passes


def logistic_pass(chunks: Chunks, theta: np.ndarray, d: int, m: int, row_weights: np.ndarray,
                  C: float, n: int, n_penalty: int | None = None) -> tuple[float, np.ndarray]:
    """Loss and gradient at ``theta`` (``W`` (d × m) then ``b`` (m), float64) in one pass.

    Labels are indices into ``row_weights`` (a weight per class). ``m == 1``: binomial on
    label 1 against 0; else multinomial over ``m`` classes. ``n``: the rows the chunks hold;
    ``n_penalty``: the rows the penalty is scaled for (a sample of a bigger set: the set's).
    """
    n_penalty = n_penalty or n
    W64 = theta[:d * m].reshape(d, m)
    W, b = W64.astype(np.float32), theta[d * m:].astype(np.float32)
    loss, grad_W, grad_b = 0.0, np.zeros((d, m)), np.zeros(m)
    weights32 = row_weights.astype(np.float32)
    for x, y in chunks():
        scores = x @ W
        scores += b
        s = weights32[y]
        if m == 1:
            z, hit = scores[:, 0], (y == 1).astype(np.float32)
            loss += float(np.dot(s, np.logaddexp(0, z) - hit * z))
            residual = ((1 / (1 + np.exp(-z)) - hit) * s)[:, None]
        else:
            rows = np.arange(len(y))
            scores -= scores.max(axis=1, keepdims=True)
            picked = scores[rows, y].copy()
            np.exp(scores, out=scores)
            total = scores.sum(axis=1, keepdims=True)
            loss += float(np.dot(s, np.log(total[:, 0]) - picked))
            scores /= total
            scores[rows, y] -= 1
            scores *= s[:, None]
            residual = scores
        grad_W += x.T @ residual
        grad_b += residual.sum(axis=0, dtype=np.float64)
    value = loss / n + float(np.square(W64).sum()) / (2 * C * n_penalty)
    gradient = np.concatenate([(grad_W / n + W64 / (C * n_penalty)).ravel(), grad_b / n])
    return value, gradient


def gram_pass(chunks: Chunks, d: int) -> tuple[np.ndarray, np.ndarray]:
    """``(XᵀX, Xᵀy)`` of standardised rows and targets, accumulated in float64."""
    gram, moment = np.zeros((d, d)), np.zeros(d)
    for x, y in chunks():
        gram += x.T @ x
        moment += x.T @ np.asarray(y, dtype=np.float32)
    return gram, moment


def loo_errors(chunks: Chunks, values: np.ndarray, vectors: np.ndarray, projected: np.ndarray,
               alphas: np.ndarray, n: int) -> np.ndarray:
    """Each alpha's sum of squared leave-one-out errors, in one pass.

    ``values``, ``vectors``: the eigendecomposition of ``XᵀX``; ``projected``: ``Vᵀ Xᵀy``.
    With an unpenalised intercept on centred rows, row i's leverage is
    ``1/n + Σₖ (xᵢ·vₖ)² / (λₖ + α)`` and its leave-one-out error ``(yᵢ - ŷᵢ) / (1 - hᵢᵢ)``.
    """
    inverse = 1.0 / (values[:, None] + alphas[None, :])  # d × alphas
    betas = (projected[:, None] * inverse).astype(np.float32)
    errors = np.zeros(len(alphas))
    V = vectors.astype(np.float32)
    for x, y in chunks():
        z = x @ V
        fitted = z @ betas  # rows × alphas
        leverage = np.square(z) @ inverse.astype(np.float32) + 1.0 / n
        residual = (np.asarray(y, dtype=np.float32)[:, None] - fitted) / (1 - leverage)
        errors += np.square(residual).sum(axis=0, dtype=np.float64)
    return errors
