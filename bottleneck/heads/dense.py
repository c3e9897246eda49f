"""The Keras dense head: ``[standardise] → spatial pool → (Dense → Dropout)* → output``.

It trains from in-memory arrays or from a batched ``tf.data`` stream of ``(features, target)``
(e.g. ``cache.tf_dataset``), so a cache larger than memory trains shard by shard. The best
epoch on the validation data (early stopping, ReduceLROnPlateau) is restored at the end. The
model uses only built-in layers, so it saves to ``model.keras`` and loads with
``safe_mode=True``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from bottleneck.heads.dense_io import load_dense, save_dense
from bottleneck.heads.dense_parts import is_dataset, is_index_labels, spatial_layer, stream_stats
from bottleneck.heads.registry import (
    SPATIAL_MODES,
    HeadFormat,
    InvalidParameterError,
    register_head,
)

OPTIMIZERS = ("adam", "rmsprop", "sgd")
# The tutorials' learning rates: Adam 1e-3; RMSprop 2e-5 (Chollet's feature-extraction recipe).
DEFAULT_LEARNING_RATES = {"adam": 1e-3, "rmsprop": 2e-5, "sgd": 1e-2}
PREDICT_BATCH = 1024
STEPS_PER_EXECUTION = 16  # training steps per compiled call
VARIANCE_FLOOR = 0.01  # × the median channel variance: near-constant channels cannot explode


class DenseHead(BaseEstimator):
    """A small Keras net on cached features, with the scikit-learn estimator API.

    Parameters: ``hidden`` layer sizes (``()`` for none), ``dropout`` after each,
    ``activation``, ``optimizer`` (adam, rmsprop, sgd), ``learning_rate`` (None: 1e-3 for
    adam, 2e-5 for rmsprop), ``lr_decay`` (multiply the rate by this each epoch), ``epochs``,
    ``batch_size`` (arrays only; a stream comes batched), ``patience`` (early stopping on the
    validation loss; None or 0: off), ``reduce_lr`` (halve the rate on a plateau),
    ``standardize`` (per-channel standardisation as the first layer), ``spatial`` (avg, max or
    flatten for ``N×H×W×C`` features), ``normalize_target`` (regression: fit standardised
    targets, predict in their units), ``log_dir`` (TensorBoard), ``random_state`` (seeds
    Python, NumPy and TensorFlow through ``keras.utils.set_random_seed`` when set), ``verbose``
    (one line per epoch).

    Standardisation floors each channel's variance at ``VARIANCE_FLOOR`` × the median one, so a
    channel that barely varies in training (a dead ReLU) cannot explode on new images.
    """

    def __init__(
        self, hidden: int | Sequence[int] | None = (256,), dropout: float = 0.5,
        activation: str = "relu", optimizer: str = "adam", learning_rate: float | None = None,
        lr_decay: float | None = None, epochs: int = 50, batch_size: int = 32,
        patience: int | None = 5, reduce_lr: bool = True, standardize: bool = True,
        spatial: str = "avg", normalize_target: bool = True, log_dir: str | None = None,
        random_state: int | None = None, verbose: int = 0,
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
        """Set the target-dependent fitted attributes (classes_, y_mean_, y_std_)."""
        raise NotImplementedError

    def _encode(self, y: Any) -> Any:
        """Targets as the network trains on them (works on numpy arrays and tensors)."""
        raise NotImplementedError

    # -- parameters ---------------------------------------------------------------------------
    def _hidden_sizes(self) -> tuple[int, ...]:
        hidden = self.hidden
        if hidden is None:
            return ()
        sizes = (hidden,) if isinstance(hidden, int | np.integer) else tuple(hidden)
        if not all(isinstance(s, int | np.integer) and s > 0 for s in sizes):
            raise InvalidParameterError(
                f"hidden must be layer sizes such as 256 or (512, 128), got {hidden!r}")
        return tuple(int(s) for s in sizes)

    def _check_params(self) -> None:
        import keras

        def bad(name: str, expected: str) -> InvalidParameterError:
            return InvalidParameterError(
                f"{name} must be {expected}, got {getattr(self, name)!r}")

        self._hidden_sizes()
        if not isinstance(self.dropout, int | float) or not 0 <= self.dropout < 1:
            raise bad("dropout", "a number in [0, 1)")
        if self.optimizer not in OPTIMIZERS:
            raise bad("optimizer", f"one of {', '.join(OPTIMIZERS)}")
        try:
            keras.activations.get(self.activation)
        except (ValueError, TypeError):
            raise bad("activation", "a Keras activation such as relu, gelu or tanh") from None
        for name in ("learning_rate", "lr_decay"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int | float) or value <= 0):
                raise bad(name, "a positive number or None")
        if self.lr_decay is not None and self.lr_decay > 1:
            raise bad("lr_decay", "a factor in (0, 1]")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
                raise bad(name, "a positive integer")
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 0):
            raise bad("patience", "a non-negative integer or None")
        if self.spatial not in SPATIAL_MODES:
            raise bad("spatial", f"one of {', '.join(SPATIAL_MODES)}")
        if self.log_dir and importlib.util.find_spec("tensorboard") is None:
            raise InvalidParameterError("log_dir needs the tensorboard package: "
                                        "pip install tensorboard")

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, *, validation_data: Any = None,
            classes: Any = None) -> DenseHead:
        """Train on arrays ``(X, y)`` or a batched stream ``X`` of ``(features, target)``.

        ``validation_data``: ``(X_val, y_val)`` arrays or a batched stream; it drives early
        stopping, the learning-rate plateau and the restored best epoch (without it the
        training loss does). ``classes``: every label the head should know (needed for a
        stream, whose labels must be indices into it; from ``y`` otherwise).
        """
        import keras

        self._check_params()
        if self.random_state is not None:
            keras.utils.set_random_seed(int(self.random_state))
        streaming = is_dataset(X)
        if streaming:
            mean, variance, y_seen = stream_stats(X)
            self._prepare_targets(None, classes, y_seen)
        else:
            X = np.asarray(X, dtype=np.float32)
            y = np.asarray(y)
            axes = tuple(range(X.ndim - 1))
            mean, variance = X.mean(axis=axes, dtype=np.float64), X.var(axis=axes, dtype=np.float64)
            self._prepare_targets(y, classes, y)
        self.feature_shape_ = tuple(int(d) for d in (
            X.element_spec[0].shape[1:] if streaming else X.shape[1:]))
        self.model_ = self._build_model(mean, variance)
        train, val = self._training_data(X, y, validation_data)
        monitor = "val_loss" if validation_data is not None else "loss"
        inputs, targets = (train, None) if streaming else train
        history = self.model_.fit(
            inputs, targets, batch_size=None if streaming else self.batch_size,
            epochs=self.epochs, validation_data=val, shuffle=not streaming,
            callbacks=self._callbacks(monitor), verbose=2 if self.verbose else 0,
        )
        self.history_ = {k: [float(v) for v in values] for k, values in history.history.items()}
        self.best_epoch_ = int(np.argmin(self.history_[monitor])) + 1
        return self

    def _training_data(self, X: Any, y: Any, validation_data: Any) -> tuple[Any, Any]:
        """(train, val) in the form ``keras.Model.fit`` takes, targets encoded."""
        import tensorflow as tf

        def encode_stream(stream: Any) -> Any:
            return stream.map(lambda x, t: (x, self._encode(t)),
                              num_parallel_calls=tf.data.AUTOTUNE)

        train = encode_stream(X) if is_dataset(X) else (X, self._encode(y))
        val = validation_data
        if val is not None:
            if is_dataset(val):
                val = encode_stream(val)
            else:
                val = (np.asarray(val[0], dtype=np.float32), self._encode(np.asarray(val[1])))
        return train, val

    def _build_model(self, mean: np.ndarray, variance: np.ndarray) -> Any:
        import keras

        units, out_activation, loss, metric = self._output()
        inputs = keras.Input(shape=self.feature_shape_, name="features")
        x = inputs
        if self.standardize:
            variance = np.maximum(variance, VARIANCE_FLOOR * float(np.median(variance)) + 1e-12)
            x = keras.layers.Normalization(axis=-1, mean=mean.tolist(),
                                           variance=variance.tolist(), name="standardize")(x)
        if len(self.feature_shape_) > 1:
            x = spatial_layer(self.spatial, len(self.feature_shape_))(x)
        for i, size in enumerate(self._hidden_sizes()):
            x = keras.layers.Dense(size, activation=self.activation, name=f"hidden_{i}")(x)
            if self.dropout:
                x = keras.layers.Dropout(self.dropout, name=f"dropout_{i}")(x)
        outputs = keras.layers.Dense(units, activation=out_activation, name="output")(x)
        model = keras.Model(inputs, outputs, name="dense_head")
        rate = self.learning_rate or DEFAULT_LEARNING_RATES[self.optimizer]
        optimizer = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop,
                     "sgd": keras.optimizers.SGD}[self.optimizer](learning_rate=rate)
        # Several steps per compiled call: a small head is dominated by per-step overhead.
        model.compile(optimizer=optimizer, loss=loss, metrics=[metric],
                      steps_per_execution=STEPS_PER_EXECUTION)
        return model

    def _callbacks(self, monitor: str) -> list[Any]:
        import keras

        # Keeps the best epoch's weights in memory and restores them at the end, whether or
        # not training stopped early (patience None/0: never stop early).
        callbacks = [keras.callbacks.EarlyStopping(
            monitor=monitor, patience=self.patience or self.epochs, restore_best_weights=True)]
        if self.reduce_lr:
            callbacks.append(keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, factor=0.5, patience=max(1, (self.patience or 6) // 2),
                min_lr=1e-7))
        if self.lr_decay is not None:
            decay = float(self.lr_decay)
            callbacks.append(keras.callbacks.LearningRateScheduler(
                lambda epoch, rate: rate * decay if epoch else rate))
        if self.log_dir:
            callbacks.append(keras.callbacks.TensorBoard(log_dir=str(self.log_dir)))
        return callbacks

    # -- inference ----------------------------------------------------------------------------
    def _outputs(self, X: Any) -> np.ndarray:
        """The network's raw outputs for arrays or a stream (whose targets are ignored)."""
        if is_dataset(X):
            if isinstance(X.element_spec, tuple):
                X = X.map(lambda x, *_: x)
            return self.model_.predict(X, verbose=0)
        X = np.asarray(X, dtype=np.float32)
        return self.model_.predict(X, batch_size=PREDICT_BATCH, verbose=0)

class DenseClassifier(ClassifierMixin, DenseHead):
    """Dense head for classes: softmax output, or one sigmoid unit for two classes."""

    def _output(self) -> tuple[int, str, str, str]:
        if len(self.classes_) == 2:
            return 1, "sigmoid", "binary_crossentropy", "accuracy"
        return len(self.classes_), "softmax", "sparse_categorical_crossentropy", "accuracy"

    def _prepare_targets(self, y: np.ndarray | None, classes: Any, labels_seen: Any) -> None:
        if classes is not None:
            self.classes_ = np.unique(np.asarray(classes))
        elif y is not None:
            self.classes_ = np.unique(y)
        else:  # a stream without ``classes``: its labels index 0..max
            self.classes_ = np.arange(int(np.max(labels_seen)) + 1)
        if y is not None and not np.isin(y, self.classes_).all():
            raise ValueError("y holds labels that are not in classes")
        if y is None and not is_index_labels(np.unique(labels_seen), len(self.classes_)):
            raise ValueError("streamed labels must be indices into classes")
        if len(self.classes_) < 2:
            raise ValueError("the training data holds a single class; a classifier needs two")

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
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class DenseRegressor(RegressorMixin, DenseHead):
    """Dense head for a number: linear output trained with MSE (on standardised targets)."""

    def _output(self) -> tuple[int, str, str, str]:
        return 1, "linear", "mse", "mae"

    def _prepare_targets(self, y: np.ndarray | None, classes: Any, labels_seen: Any) -> None:
        values = np.asarray(labels_seen, dtype=np.float64)
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


DENSE_FORMAT = HeadFormat(
    save_dense,
    lambda directory: load_dense(directory, {c.__name__: c for c in (DenseClassifier,
                                                                      DenseRegressor)}))


@register_head("dense", format=DENSE_FORMAT,
               streams=True, takes_validation=True, parallel_safe=False)
def dense(task: str) -> DenseHead:
    """Keras Dense(256) + Dropout(0.5) net (softmax / sigmoid / linear); streams from shards."""
    return DenseClassifier() if task == "classify" else DenseRegressor()
