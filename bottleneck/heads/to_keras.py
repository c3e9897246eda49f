"""Fitted heads as Keras models on their features: the top of a fine-tuned or exported model.

Each converter reads the fitted estimator through its public attributes (a scikit-learn
head's fitted ``pipeline_``, whose ``named_steps`` hold ``coef_``, ``intercept_``, ``mean_``,
``scale_``; the dense head's ``model_``), never through its file format, and builds only
Keras' own layers, so the result saves to ``.keras``, loads with ``safe_mode=True`` and
converts to SavedModel, TFLite and ONNX. Outputs:

- ``logreg``: its ``predict_proba`` (softmax; for two classes a two-unit softmax with halved
  weights, which equals the logistic sigmoid);
- ``ridge`` / ``linear-svm`` classifiers: a softmax of the decision scores that
  :func:`~bottleneck.heads.class_scores` reports (two classes: of ``[-d, d]``): same ranking,
  rows sum to 1, and a cross-entropy loss can fine-tune it;
- ``dense``: its ``predict_proba`` (a single sigmoid unit becomes the equal two-unit softmax);
- regressors: the value in the target's own units (N × 1).

The features' standardisation stays a separate, fixed per-channel ``Rescaling`` in front of the
Dense layer (the same affine map folded in would train worse: the kernel would then live on the
raw feature scale); ``Normalization`` is avoided because tf2onnx cannot export its constants.
The RBF ``svm`` has no such form and is refused by :func:`~bottleneck.heads.keras_head`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bottleneck.backend import import_keras
from bottleneck.errors import UserError
from bottleneck.heads.dense_parts import DEFAULT_LEARNING_RATES, spatial_layer
from bottleneck.heads.registry import KerasHead, register_to_keras

KERAS_EPSILON = 1e-7  # keras.backend.epsilon(): Normalization's floor on the deviation


def _check_classes(classes: Any, n_classes: int) -> None:
    if not np.array_equal(np.asarray(classes), np.arange(n_classes)):
        missing = sorted(set(range(n_classes)) - {int(c) for c in np.asarray(classes)})
        raise UserError(f"the head never saw class index(es) {missing} in training, so it has "
                        "no output for them; fit it on a train split with every class.")


def _standardize(mean: np.ndarray, scale: np.ndarray) -> Any:
    """``(x - mean) / scale`` as a fixed Rescaling layer."""
    keras = import_keras()

    scale = np.asarray(scale, dtype=np.float64)
    return keras.layers.Rescaling((1 / scale).tolist(), offset=(-mean / scale).tolist(),
                                  name="standardize", trainable=False)


def _dense(units: int, kernel: np.ndarray, bias: np.ndarray, activation: str, inputs: Any,
           name: str = "output") -> Any:
    keras = import_keras()

    layer = keras.layers.Dense(units, activation=activation, name=name)
    outputs = layer(inputs)
    layer.set_weights([np.asarray(kernel, np.float32), np.asarray(bias, np.float32)])
    return outputs


def _sklearn_front(pipeline: Any, feature_shape: tuple[int, ...]) -> tuple[Any, Any]:
    """(input, standardised vector) for a ``spatial → scale → model`` pipeline."""
    keras = import_keras()

    inputs = keras.Input(feature_shape, name="features")
    x = inputs
    if len(feature_shape) > 1:
        x = spatial_layer(pipeline.named_steps["spatial"].mode, len(feature_shape))(x)
    scaler = pipeline.named_steps["scale"]
    if scaler != "passthrough":
        x = _standardize(scaler.mean_, scaler.scale_)(x)
    return inputs, x


def _linear_classifier(head: Any, n_classes: int, feature_shape: tuple[int, ...],
                       binary_factor: float) -> KerasHead:
    """Softmax over ``x @ coef.T + intercept``; two classes: over ``±factor × d``."""
    keras = import_keras()

    pipeline = head.pipeline_
    model = pipeline.named_steps["model"]
    _check_classes(model.classes_, n_classes)
    coef = np.atleast_2d(np.asarray(model.coef_, np.float64))
    intercept = np.atleast_1d(np.asarray(model.intercept_, np.float64))
    if n_classes == 2:  # one decision value d = coef · x + intercept
        coef = np.vstack([-binary_factor * coef[0], binary_factor * coef[0]])
        intercept = np.array([-binary_factor * intercept[0], binary_factor * intercept[0]])
    inputs, x = _sklearn_front(pipeline, feature_shape)
    outputs = _dense(n_classes, coef.T, intercept, "softmax", x)
    return KerasHead(keras.Model(inputs, outputs, name="head"))


@register_to_keras("logreg")
def logreg_to_keras(head: Any, task: str, n_classes: int,
                    feature_shape: tuple[int, ...]) -> KerasHead:
    """predict_proba: softmax(x W + b); two classes: softmax(±d/2) = sigmoid."""
    return _linear_classifier(head, n_classes, feature_shape, binary_factor=0.5)


@register_to_keras("linear-svm")
def linear_svm_to_keras(head: Any, task: str, n_classes: int,
                        feature_shape: tuple[int, ...]) -> KerasHead:
    """Softmax of the decision scores."""
    return _linear_classifier(head, n_classes, feature_shape, binary_factor=1.0)


@register_to_keras("ridge")
def ridge_to_keras(head: Any, task: str, n_classes: int,
                   feature_shape: tuple[int, ...]) -> KerasHead:
    """Classifier: softmax of the decision scores; regressor: the value in target units."""
    keras = import_keras()

    if task == "classify":
        return _linear_classifier(head, n_classes, feature_shape, binary_factor=1.0)
    pipeline = head.pipeline_
    wrapped = pipeline.named_steps["model"]  # TransformedTargetRegressor(RidgeCV, StandardScaler)
    regressor, target = wrapped.regressor_, wrapped.transformer_
    y_scale, y_mean = float(target.scale_[0]), float(target.mean_[0])
    coef = np.asarray(regressor.coef_, np.float64).reshape(-1, 1) * y_scale
    bias = np.atleast_1d(regressor.intercept_).astype(np.float64)[:1] * y_scale + y_mean
    inputs, x = _sklearn_front(pipeline, feature_shape)
    return KerasHead(keras.Model(inputs, _dense(1, coef, bias, "linear", x), name="head"))


def _copy_layer(layer: Any, x: Any) -> Any:
    """Apply a fresh copy of ``layer`` (same config, same weights) to ``x``."""
    twin = type(layer).from_config(layer.get_config())
    outputs = twin(x)
    twin.set_weights(layer.get_weights())
    return outputs


@register_to_keras("dense")
def dense_to_keras(head: Any, task: str, n_classes: int,
                   feature_shape: tuple[int, ...]) -> KerasHead:
    """The head's own network, copied; its Normalization becomes the equal Rescaling, a
    sigmoid output the equal two-unit softmax, a regressor's output is put in target units."""
    keras = import_keras()

    if task == "classify":
        _check_classes(head.classes_, n_classes)
    inputs = keras.Input(feature_shape, name="features")
    x = inputs
    *body, last = [layer for layer in head.model_.layers
                   if not isinstance(layer, keras.layers.InputLayer)]
    for layer in body:
        if isinstance(layer, keras.layers.Normalization):
            config = layer.get_config()
            mean = np.asarray(config["mean"], np.float64)
            deviation = np.maximum(np.sqrt(np.asarray(config["variance"], np.float64)),
                                   KERAS_EPSILON)
            x = _standardize(mean, deviation)(x)
        else:
            x = _copy_layer(layer, x)
    kernel, bias = (np.asarray(w, np.float64) for w in last.get_weights())
    if task == "regress":
        y_std, y_mean = float(head.y_std_), float(head.y_mean_)
        outputs = _dense(1, kernel * y_std, bias * y_std + y_mean, "linear", x)
    elif n_classes == 2:  # sigmoid(d) = softmax([-d/2, d/2])[1]
        outputs = _dense(2, np.hstack([-kernel / 2, kernel / 2]),
                         np.concatenate([-bias / 2, bias / 2]), "softmax", x)
    else:
        outputs = _dense(n_classes, kernel, bias, "softmax", x)
    rate = head.learning_rate or DEFAULT_LEARNING_RATES[head.optimizer]
    return KerasHead(keras.Model(inputs, outputs, name="head"), float(rate))
