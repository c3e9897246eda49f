"""The Keras dense head: ``[standardise] → spatial pool → (Dense → Dropout)* → output``.

It trains from in-memory arrays or from a batched ``tf.data`` stream of ``(features, target)``
(e.g. ``cache.tf_dataset``), so a cache larger than memory trains shard by shard. The best
epoch on the validation data (early stopping, ReduceLROnPlateau) is restored at the end. The
model uses only built-in layers, so it saves to ``model.keras`` and loads with
``safe_mode=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from bottleneck.backend import import_keras
from bottleneck.heads.dense_io import dense_format
from bottleneck.heads.dense_parts import (
    check_params,
    check_rows,
    check_stream_rows,
    hidden_sizes,
    is_index_labels,
    make_callbacks,
    make_optimizer,
    predict_rows,
    spatial_layer,
    stream_stats,
)
from bottleneck.heads.registry import register_head
from bottleneck.heads.streams import array_batches, feature_shape, is_dataset, length, mapped

STEPS_PER_EXECUTION = 16  # training steps per compiled call
VARIANCE_FLOOR = 0.01  # × the median channel variance: near-constant channels cannot explode


class DenseHead(BaseEstimator):
    """A small Keras net on cached features, with the scikit-learn estimator API.

    Parameters: ``hidden`` layer sizes (``()`` for none), ``dropout`` after each,
    ``activation``, ``optimizer`` (adam, rmsprop, sgd), ``learning_rate`` (None: 1e-3 for
    adam, 2e-5 for rmsprop), ``lr_decay`` (multiply the rate by this each epoch), ``epochs``,
    ``batch_size`` (arrays only; a stream comes batched), ``patience`` (early stopping on the
    validation loss; None or 0: off), ``min_delta`` (an absolute change of the loss smaller
    than this is no improvement), ``reduce_lr`` (halve the rate on a plateau),
    ``standardize`` (per-channel standardisation as the first layer), ``spatial`` (avg, max or
    flatten for ``N×H×W×C`` features), ``normalize_target`` (regression: fit standardised
    targets, predict in their units), ``log_dir`` (TensorBoard), ``random_state`` (seeds
    Python, NumPy and TensorFlow through ``keras.utils.set_random_seed`` when set), ``verbose``
    (one line per epoch).

    Inputs are checked as scikit-learn does (``validate_data``: finite, dense, at least one
    row and feature, the fitted feature count at predict time) before TensorFlow sees them.
    Standardisation floors each channel's variance at ``VARIANCE_FLOOR`` × the median one, so a
    channel that barely varies in training (a dead ReLU) cannot explode on new images.
    """

    def __init__(
        self, hidden: int | Sequence[int] | None = (256,), dropout: float = 0.5,
        activation: str = "relu", optimizer: str = "adam", learning_rate: float | None = None,
        lr_decay: float | None = None, epochs: int = 50, batch_size: int = 32,
        patience: int | None = 5, min_delta: float = 1e-4, reduce_lr: bool = True,
        standardize: bool = True, spatial: str = "avg", normalize_target: bool = True,
        log_dir: str | None = None, random_state: int | None = None, verbose: int = 0,
    ) -> None:
        self.hidden = hidden
        self.dropout = dropout
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.lr_decay = lr_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.patience = patience
        self.min_delta = min_delta
        self.reduce_lr = reduce_lr
        self.standardize = standardize
        self.spatial = spatial
        self.normalize_target = normalize_target
        self.log_dir = log_dir
        self.random_state = random_state
        self.verbose = verbose

    # -- task-specific pieces (overridden by DenseClassifier / DenseRegressor) ---------------
    def _output(self) -> tuple[int, str, str, str]:
        """(units, activation, loss, metric) of the output layer."""
        raise NotImplementedError

    def _prepare_targets(self, y: np.ndarray | None, classes: Any, labels_seen: Any) -> None:
        """Check the targets; set the target-dependent fitted attributes (classes_, y_mean_)."""
        raise NotImplementedError

    def _encode(self, y: Any) -> Any:
        """Targets as the network trains on them (works on numpy arrays and tensors)."""
        raise NotImplementedError

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, *, validation_data: Any = None,
            classes: Any = None) -> DenseHead:
        """Train on arrays ``(X, y)`` or a batched stream ``X`` of ``(features, target)``.

        ``validation_data``: ``(X_val, y_val)`` arrays or a batched stream; it drives early
        stopping, the learning-rate plateau and the restored best epoch (without it the
        training loss does). ``classes``: every label the head should know (needed for a
        stream, whose labels must be indices into it; from ``y`` otherwise).
        """
        from bottleneck.backend import import_keras

        keras = import_keras()
        check_params(self)
        streaming = is_dataset(X)
        if streaming:
            if y is not None:
                raise ValueError("a stream carries its own targets; pass y=None with it")
            mean, variance, y_seen = stream_stats(X)
            self._prepare_targets(None, classes, y_seen)
            self.feature_shape_ = feature_shape(X)
            self.n_features_in_ = self.feature_shape_[0]
        else:
            X, y = check_rows(self, X, y, reset=True)
            axes = tuple(range(X.ndim - 1))
            mean, variance = X.mean(axis=axes, dtype=np.float64), X.var(axis=axes, dtype=np.float64)
            self._prepare_targets(y, classes, y)
            self.feature_shape_ = tuple(int(d) for d in X.shape[1:])
        if self.random_state is not None:  # before the shuffled stream takes its seed
            keras.utils.set_random_seed(int(self.random_state))
        train, val = self._training_data(X, y, validation_data)
        steps = length(X) if streaming else -(-len(X) // self.batch_size)
        self.model_ = self._build_model(mean, variance, steps)
        # Metric and optimizer state made now, from the batches' spec: made inside the first
        # compiled step, it makes TensorFlow trace that step twice (half a small fit's time).
        # Keras does the same itself under a distribution strategy; without the method (a
        # later Keras) the state is made in the step as before.
        symbolic_build = getattr(self.model_, "_symbolic_build", None)
        if symbolic_build is not None and hasattr(train, "element_spec"):
            symbolic_build(data_batch=train.element_spec)
        monitor = "val_loss" if validation_data is not None else "loss"
        callbacks = make_callbacks(self, monitor)
        history = self.model_.fit(train, epochs=self.epochs, validation_data=val,
                                  shuffle=False,  # the stream is shuffled already
                                  callbacks=callbacks, verbose=2 if self.verbose else 0)
        self.history_ = {k: [float(v) for v in values] for k, values in history.history.items()}
        self.best_epoch_ = int(callbacks[0].best_epoch) + 1  # the epoch whose weights it holds
        return self

    def _training_data(self, X: Any, y: Any, validation_data: Any) -> tuple[Any, Any]:
        """(train, val) in the form ``keras.Model.fit`` takes, targets encoded."""
        seed = None if self.random_state is None else int(self.random_state)
        train = mapped(X, self._encode) if is_dataset(X) else \
            array_batches(X, self._encode(y), self.batch_size, shuffle=True, seed=seed)
        val = validation_data
        if val is not None and is_dataset(val):
            check_stream_rows(self, val)
            val = mapped(val, self._encode)
        elif val is not None:
            X_val, y_val = check_rows(self, *val)
            self._check_targets(y_val)
            val = array_batches(X_val, self._encode(y_val), self.batch_size, shuffle=False)
        return train, val

    def _check_targets(self, y: np.ndarray) -> None:
        """Validation targets the head can score (labels it knows)."""

    def _build_model(self, mean: np.ndarray, variance: np.ndarray, steps: int) -> Any:
        keras = import_keras()

        units, out_activation, loss, metric = self._output()
        inputs = keras.Input(shape=self.feature_shape_, name="features")
        x = inputs
        if self.standardize:
            variance = np.maximum(variance, VARIANCE_FLOOR * float(np.median(variance)) + 1e-12)
            x = keras.layers.Normalization(axis=-1, mean=mean.tolist(),
                                           variance=variance.tolist(), name="standardize")(x)
        if len(self.feature_shape_) > 1:
            x = spatial_layer(self.spatial, len(self.feature_shape_))(x)
        for i, size in enumerate(hidden_sizes(self.hidden)):
            x = keras.layers.Dense(size, activation=self.activation, name=f"hidden_{i}")(x)
            if self.dropout:
                x = keras.layers.Dropout(self.dropout, name=f"dropout_{i}")(x)
        outputs = keras.layers.Dense(units, activation=out_activation, name="output")(x)
        model = keras.Model(inputs, outputs, name="dense_head")
        optimizer = make_optimizer(self.optimizer, self.learning_rate)
        # Several steps per compiled call when an epoch has many: a small head is dominated by
        # per-step overhead. A short epoch takes one step per call, whose trace is quicker.
        per_call = STEPS_PER_EXECUTION if steps < 0 or steps >= STEPS_PER_EXECUTION else 1
        model.compile(optimizer=optimizer, loss=loss, metrics=[metric],
                      steps_per_execution=per_call)
        return model

    # -- inference ----------------------------------------------------------------------------
    def _outputs(self, X: Any) -> np.ndarray:
        """The network's raw outputs for arrays or a stream (whose targets are ignored)."""
        check_is_fitted(self)
        if is_dataset(X):
            check_stream_rows(self, X)
            return self.model_.predict(mapped(X, None), verbose=0)
        return predict_rows(self.model_, check_rows(self, X))


class DenseClassifier(ClassifierMixin, DenseHead):
    """Dense head for classes: softmax output, or one sigmoid unit for two classes."""

    def _output(self) -> tuple[int, str, str, str]:
        if len(self.classes_) == 2:
            return 1, "sigmoid", "binary_crossentropy", "accuracy"
        return len(self.classes_), "softmax", "sparse_categorical_crossentropy", "accuracy"

    def _prepare_targets(self, y: np.ndarray | None, classes: Any, labels_seen: Any) -> None:
        if y is not None:
            check_classification_targets(y)
        if classes is not None:
            self.classes_ = np.unique(np.asarray(classes))
        elif y is not None:
            self.classes_ = np.unique(y)
        else:  # a stream without ``classes``: its labels index 0..max
            self.classes_ = np.arange(int(np.max(labels_seen)) + 1)
        if y is not None:
            self._check_targets(y)
        elif not is_index_labels(np.unique(labels_seen), len(self.classes_)):
            raise ValueError("streamed labels must be indices into classes")
        if len(self.classes_) < 2:
            raise ValueError("the training data holds one class; a classifier needs two")

    def _check_targets(self, y: np.ndarray) -> None:
        if not np.isin(y, self.classes_).all():
            raise ValueError("y holds labels that are not in classes")

    def _encode(self, y: Any) -> Any:
        """Class indices; for two classes a float column matching the single sigmoid unit."""
        if isinstance(y, np.ndarray):
            y = np.searchsorted(self.classes_, y)
            return y.astype(np.float32).reshape(-1, 1) if len(self.classes_) == 2 else y
        import tensorflow as tf

        return tf.reshape(tf.cast(y, tf.float32), (-1, 1)) if len(self.classes_) == 2 else y

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        outputs = self._outputs(X)
        if len(self.classes_) == 2:
            positive = outputs[:, 0]
            return np.column_stack([1.0 - positive, positive])
        return outputs

    def predict(self, X: Any) -> np.ndarray:
        proba = self.predict_proba(X)  # first: it checks the head is fitted
        return self.classes_[np.argmax(proba, axis=1)]


class DenseRegressor(RegressorMixin, DenseHead):
    """Dense head for a number: linear output trained with MSE (on standardised targets).

    The epoch lines and ``history_`` give the MAE in the target's own units (``mae (target
    units)``), as the fit's summary does; the loss stays on standardised targets.
    """

    def _output(self) -> tuple[int, str, str, str]:
        return 1, "linear", "mse", "mae"  # logged in target units (in_target_units)

    def _prepare_targets(self, y: np.ndarray | None, classes: Any, labels_seen: Any) -> None:
        values = np.asarray(labels_seen, dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError("the targets contain NaN or infinity")
        self.y_mean_, self.y_std_ = 0.0, 1.0
        if self.normalize_target and len(values):
            self.y_mean_ = float(values.mean())
            self.y_std_ = float(values.std()) or 1.0

    def _encode(self, y: Any) -> Any:
        """A standardised float column, matching the single linear unit."""
        if isinstance(y, np.ndarray):
            scaled = (y.astype(np.float64) - self.y_mean_) / self.y_std_
            return scaled.astype(np.float32).reshape(-1, 1)
        import tensorflow as tf

        return tf.reshape((tf.cast(y, tf.float32) - self.y_mean_) / self.y_std_, (-1, 1))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values in the target's own units."""
        return self._outputs(X)[:, 0].astype(np.float64) * self.y_std_ + self.y_mean_


@register_head("dense", format=dense_format(DenseClassifier, DenseRegressor),
               streams=True, takes_validation=True, parallel_safe=False,
               fit_bytes=8)  # the variance's float64 deviations
def dense(task: str) -> DenseHead:
    """Keras Dense(256) + Dropout(0.5) net (softmax / sigmoid / linear); streams from shards."""
    return DenseClassifier() if task == "classify" else DenseRegressor()
