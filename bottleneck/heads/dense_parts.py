"""Building blocks of the dense head that need no estimator state: parameter checks, the
spatial reduction layer, the training callbacks, one-pass statistics of a stream and
batch-independent prediction."""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
from sklearn.base import is_regressor
from sklearn.utils.validation import validate_data

from bottleneck.backend import import_keras
from bottleneck.heads import streams
from bottleneck.heads.registry import SPATIAL_MODES, InvalidParameterError
from bottleneck.heads.sklearn_base import check_feature_shape

OPTIMIZERS = ("adam", "rmsprop", "sgd")
# The tutorials' learning rates: Adam 1e-3; RMSprop 2e-5 (Chollet's feature-extraction recipe).
DEFAULT_LEARNING_RATES = {"adam": 1e-3, "rmsprop": 2e-5, "sgd": 1e-2}
PREDICT_BATCH = 1024  # rows per forward pass at most
PREDICT_BYTES = 32 << 20  # and at most this many bytes of input per pass
TARGET_MAE = "mae (target units)"


def check_rows(head: Any, X: Any, y: Any = None, reset: bool = False) -> Any:
    """Arrays as float32, checked the scikit-learn way (``validate_data``: finite, dense, at
    least one row and feature; ``reset`` records ``n_features_in_``, else the fitted feature
    shape is required). With ``y``: ``(X, y)``, y 1-D (a column is raveled with a warning)."""
    checks = {"allow_nd": True, "dtype": np.float32}
    if reset:
        X, y = validate_data(head, X, y, y_numeric=is_regressor(head), **checks)
    elif y is None:
        X = validate_data(head, X, reset=False, **checks)
    else:
        X, y = validate_data(head, X, y, reset=False, **checks)
    check_feature_shape(X)
    if not reset and X.shape[1:] != head.feature_shape_:
        raise ValueError(f"X has rows of shape {X.shape[1:]}, but {type(head).__name__} is "
                         f"expecting rows of shape {head.feature_shape_} as input.")
    return X if y is None else (X, y)


def check_stream_rows(head: Any, stream: Any) -> None:
    """Refuse a stream whose rows are not the fitted feature shape."""
    shape = streams.feature_shape(stream)
    if shape != head.feature_shape_:
        raise ValueError(f"the stream has rows of shape {shape}, but "
                         f"{type(head).__name__} is expecting {head.feature_shape_}.")


def make_optimizer(name: str, learning_rate: float | None) -> Any:
    """A Keras optimizer by name, at ``learning_rate`` or the name's default rate."""
    keras = import_keras()

    rate = learning_rate or DEFAULT_LEARNING_RATES[name]
    return {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop,
            "sgd": keras.optimizers.SGD}[name](learning_rate=rate)


def hidden_sizes(hidden: Any) -> tuple[int, ...]:
    """``hidden`` (an int, a sequence of ints or None) as a tuple of layer sizes."""
    if hidden is None:
        return ()
    sizes = (hidden,) if isinstance(hidden, int | np.integer) else tuple(hidden)
    if not all(isinstance(s, int | np.integer) and not isinstance(s, bool) and s > 0
               for s in sizes):
        raise InvalidParameterError(
            f"hidden must be layer sizes such as 256 or (512, 128), got {hidden!r}")
    return tuple(int(s) for s in sizes)


def check_params(head: Any) -> None:
    """Raise InvalidParameterError for the first bad hyperparameter of a dense head."""
    keras = import_keras()

    def bad(name: str, expected: str) -> InvalidParameterError:
        return InvalidParameterError(f"{name} must be {expected}, got {getattr(head, name)!r}")

    def number(value: Any) -> bool:
        return isinstance(value, int | float | np.number) and not isinstance(value, bool)

    hidden_sizes(head.hidden)
    if not number(head.dropout) or not 0 <= head.dropout < 1:
        raise bad("dropout", "a number in [0, 1)")
    if head.optimizer not in OPTIMIZERS:
        raise bad("optimizer", f"one of {', '.join(OPTIMIZERS)}")
    try:
        keras.activations.get(head.activation)
    except (ValueError, TypeError):
        raise bad("activation", "a Keras activation such as relu, gelu or tanh") from None
    for name in ("learning_rate", "lr_decay"):
        value = getattr(head, name)
        if value is not None and (not number(value) or value <= 0):
            raise bad(name, "a positive number or None")
    if head.lr_decay is not None and head.lr_decay > 1:
        raise bad("lr_decay", "a factor in (0, 1]")
    if not number(head.min_delta) or not 0 <= head.min_delta < np.inf:
        raise bad("min_delta", "a non-negative number")
    for name in ("epochs", "batch_size"):
        value = getattr(head, name)
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
            raise bad(name, "a positive integer")
    if head.patience is not None and (not isinstance(head.patience, int) or head.patience < 0):
        raise bad("patience", "a non-negative integer or None")
    if head.spatial not in SPATIAL_MODES:
        raise bad("spatial", f"one of {', '.join(SPATIAL_MODES)}")
    if head.log_dir and importlib.util.find_spec("tensorboard") is None:
        raise InvalidParameterError("log_dir needs the tensorboard package: "
                                    "pip install tensorboard")


def make_callbacks(head: Any, monitor: str) -> list[Any]:
    """EarlyStopping (best epoch restored), ReduceLROnPlateau, lr decay, a regressor's MAE in
    target units, TensorBoard.

    ``head.min_delta`` is absolute, in loss units (the regressor's loss is on standardised
    targets, so one scale fits both tasks): an epoch whose loss beats the best by less does
    not count as an improvement, for stopping, restoring and lowering the rate alike.
    """
    keras = import_keras()

    # Keeps the best epoch's weights in memory and restores them at the end, whether or not
    # training stopped early (patience None/0: never stop early).
    callbacks = [keras.callbacks.EarlyStopping(
        monitor=monitor, patience=head.patience or head.epochs, min_delta=head.min_delta,
        restore_best_weights=True)]
    if head.reduce_lr:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, factor=0.5, patience=max(1, (head.patience or 6) // 2),
            min_delta=head.min_delta, min_lr=1e-7))
    if head.lr_decay is not None:
        decay = float(head.lr_decay)
        callbacks.append(keras.callbacks.LearningRateScheduler(
            lambda epoch, rate: rate * decay if epoch else rate))
    if is_regressor(head):
        callbacks.append(in_target_units(head.y_std_))
    if head.log_dir:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(head.log_dir)))
    return callbacks


def in_target_units(scale: float) -> Any:
    """A callback that turns each epoch's ``mae`` / ``val_mae`` (on targets divided by
    ``scale``) into ``mae (target units)`` / ``val_mae (target units)``, the summary's unit.

    Keras hands every callback the same epoch logs and calls History and the epoch lines
    last, as it does for ReduceLROnPlateau's ``learning_rate``.
    """
    import keras

    class InTargetUnits(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            if logs is None:
                return
            renamed = {(f"{key[:-3]}{TARGET_MAE}" if key in ("mae", "val_mae") else key):
                       (value * scale if key in ("mae", "val_mae") else value)
                       for key, value in logs.items()}
            logs.clear()
            logs.update(renamed)

    return InTargetUnits()


def spatial_layer(mode: str, rank: int) -> Any:
    """The Keras layer that reduces a ``rank``-dimensional feature map to a vector."""
    keras = import_keras()

    if mode == "flatten" or rank > 3:
        return keras.layers.Flatten(name="spatial_flatten")
    pools = {
        (3, "avg"): keras.layers.GlobalAveragePooling2D,
        (3, "max"): keras.layers.GlobalMaxPooling2D,
        (2, "avg"): keras.layers.GlobalAveragePooling1D,
        (2, "max"): keras.layers.GlobalMaxPooling1D,
    }
    return pools[(rank, mode)](name=f"spatial_{mode}")


def is_index_labels(labels: np.ndarray, n_classes: int) -> bool:
    """True when every label is an integer index in ``[0, n_classes)``."""
    return bool(np.all((labels >= 0) & (labels < n_classes) & (labels == np.round(labels))))


def stream_stats(stream: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One pass over a ``(features, target)`` stream: per-channel mean and variance, targets.

    Raises ValueError for an empty stream or one holding NaN or infinity.
    """
    total = squares = None
    count = 0
    targets = []
    for features, target, *_ in streams.iterate(stream):
        features = features.astype(np.float64)
        axes = tuple(range(features.ndim - 1))
        batch_sum, batch_squares = features.sum(axis=axes), np.square(features).sum(axis=axes)
        total = batch_sum if total is None else total + batch_sum
        squares = batch_squares if squares is None else squares + batch_squares
        count += features.size // max(1, features.shape[-1])
        targets.append(target)
    if not count or not total.size:
        raise ValueError("the training stream is empty: Found array with 0 sample(s)")
    if not (np.isfinite(total).all() and np.isfinite(squares).all()):
        raise ValueError("the training stream's features contain NaN or infinity")
    mean = total / count
    variance = np.maximum(squares / count - mean**2, 0.0)
    return mean.astype(np.float32), variance.astype(np.float32), np.concatenate(targets)


def predict_rows(model: Any, X: np.ndarray) -> np.ndarray:
    """``model``'s outputs for the rows of ``X``, each independent of the rows beside it.

    Every forward pass has the same shape (the last one is padded), so a row's output does
    not depend on how many rows come with it or where it sits: float32 matrix products round
    differently for different batch shapes.
    """
    keras = import_keras()

    row_bytes = 4 * max(1, int(np.prod(X.shape[1:])))
    rows = int(min(PREDICT_BATCH, 2 ** max(0, int(np.log2(max(1, PREDICT_BYTES // row_bytes))))))
    outputs = []
    for start in range(0, len(X), rows):
        chunk = X[start:start + rows]
        if len(chunk) < rows:
            chunk = np.concatenate([chunk, np.zeros((rows - len(chunk), *X.shape[1:]),
                                                    X.dtype)])
        outputs.append(np.asarray(keras.ops.convert_to_numpy(model(chunk, training=False)))
                       [:min(rows, len(X) - start)])
    return np.concatenate(outputs)
