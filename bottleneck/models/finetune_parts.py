"""The pieces of fine-tuning that hold no run state: which backbone layers train, the
augmentation, the training wrapper that keeps the backbone in inference mode, and the
callback that keeps the best epoch (the starting point counted as epoch 0)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bottleneck.backend import import_keras
from bottleneck.errors import UserError

UNFREEZE_FRACTION = 0.3  # the top ~30% of the backbone's layers train by default
AUGMENTATIONS = {"flip": "RandomFlip", "rotate": "RandomRotation", "zoom": "RandomZoom",
                 "translate": "RandomTranslation", "contrast": "RandomContrast"}
AUGMENT_DEFAULTS = {"flip": "horizontal", "rotate": 0.1, "zoom": 0.1, "translate": 0.1,
                    "contrast": 0.1}


@dataclass(frozen=True)
class Unfrozen:
    """Which layers of the backbone train: ``index`` onwards of ``total``."""

    index: int
    layer: str
    total: int
    trainable_weights: int

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "layer": self.layer, "layers": self.total,
                "trainable_layers": self.total - self.index,
                "trainable_weights": self.trainable_weights}


def unfreeze(backbone: Any, unfreeze_from: str | int | None = None,
             unfreeze_top: int | None = None) -> Unfrozen:
    """Make the backbone's layers from a name or index (or the top N) trainable, as the
    tutorials' ``for layer in base.layers[fine_tune_at:]`` does; default: the top ~30%."""
    layers = backbone.layers
    total = len(layers)
    if unfreeze_from is not None and unfreeze_top is not None:
        raise UserError("give --unfreeze-from or --unfreeze-top, not both.")
    if unfreeze_top is not None:
        if not 1 <= unfreeze_top <= total - 1:
            raise UserError(f"--unfreeze-top must be between 1 and {total - 1} (the backbone "
                            f"has {total} layers, the first being its input).")
        index = total - unfreeze_top
    elif unfreeze_from is None:
        index = total - max(1, round(UNFREEZE_FRACTION * total))
    elif isinstance(unfreeze_from, int) or str(unfreeze_from).isdigit():
        index = int(unfreeze_from)
        if not 1 <= index <= total - 1:
            raise UserError(f"--unfreeze-from {index} is outside the backbone's layers 1.."
                            f"{total - 1}; list them with `bottleneck layers`.")
    else:
        names = [layer.name for layer in layers]
        if unfreeze_from not in names:
            raise UserError(f"the backbone has no layer '{unfreeze_from}'; list them with "
                            "`bottleneck layers BACKBONE --image-size N`.")
        index = names.index(unfreeze_from)
    backbone.trainable = True
    for position, layer in enumerate(layers):
        layer.trainable = position >= index
    weights = sum(int(w.numpy().size) for w in backbone.trainable_weights)
    return Unfrozen(index, layers[index].name, total, weights)


def parse_augment(spec: str | None) -> tuple[dict[str, Any], Any]:
    """``"flip,rotate=0.1,zoom=0.1"`` → (the record, a Keras Sequential or None)."""
    if not spec:
        return {}, None
    keras = import_keras()

    chosen: dict[str, Any] = {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        name, _, value = part.partition("=")
        if name not in AUGMENTATIONS:
            raise UserError(f"unknown augmentation '{name}'; choose from "
                            f"{', '.join(AUGMENTATIONS)} (e.g. flip,rotate=0.1,zoom=0.1).")
        if name == "flip":
            chosen[name] = value or AUGMENT_DEFAULTS[name]
            if chosen[name] not in ("horizontal", "vertical", "horizontal_and_vertical"):
                raise UserError("flip=horizontal, flip=vertical or flip=horizontal_and_vertical.")
            continue
        try:
            chosen[name] = float(value) if value else AUGMENT_DEFAULTS[name]
        except ValueError:
            raise UserError(f"{name}={value} must be a number, e.g. {name}=0.1.") from None
        if not 0 < chosen[name] < 1:
            raise UserError(f"{name}={value} must be a fraction between 0 and 1.")
    layers = []
    for index, (name, value) in enumerate(chosen.items()):
        layer = getattr(keras.layers, AUGMENTATIONS[name])
        layers.append(layer(value, seed=index) if name != "translate"
                      else layer(value, value, seed=index))
    return chosen, keras.Sequential(layers, name="augment")


def trainer(preprocess: Any, backbone: Any, head: Any) -> Any:
    """A Keras model over the three parts for ``fit``: the backbone is always called with
    ``training=False`` (BatchNorm keeps its moving statistics, its dropout stays off), the
    head with the training flag. (In a functional model Keras 3 lets the outer flag override
    an inner ``training=False``, so the saved model cannot be the one that trains.)"""
    keras = import_keras()

    class FineTuner(keras.Model):
        def __init__(self) -> None:
            super().__init__(name="fine_tuner")
            self.preprocess, self.backbone, self.head = preprocess, backbone, head

        def call(self, x: Any, training: bool = False) -> Any:
            features = self.backbone(self.preprocess(x, training=False), training=False)
            return self.head(features, training=training)

    return FineTuner()


def epoch_lines(epochs: int) -> Any:
    """A callback that prints ``Epoch i/n - 41s - loss 0.4123 - accuracy 0.8512 - val_loss …``
    to stderr after each epoch (the Python API prints nothing unless asked)."""
    import sys
    import time

    keras = import_keras()

    class EpochLines(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            seconds = time.perf_counter() - self.start
            values = " - ".join(f"{k} {float(v):.4f}" for k, v in (logs or {}).items()
                                if k != "learning_rate")
            print(f"Epoch {epoch + 1}/{epochs} - {seconds:.0f}s - {values}", file=sys.stderr,
                  flush=True)

    return EpochLines()


def keep_best(monitor: str, start: float, patience: int) -> Any:
    """A callback that stops after ``patience`` epochs without improving ``monitor`` and
    restores the best trainable weights, where the starting weights (``start``) count."""
    keras = import_keras()
    import numpy as np

    class KeepBest(keras.callbacks.Callback):
        def on_train_begin(self, logs: Any = None) -> None:
            self.best, self.best_epoch, self.wait = float(start), 0, 0
            self.best_weights = [v.numpy() for v in self.model.trainable_variables]

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            value = float((logs or {}).get(monitor, np.inf))
            if value < self.best:
                self.best, self.best_epoch, self.wait = value, epoch + 1, 0
                self.best_weights = [v.numpy() for v in self.model.trainable_variables]
            else:
                self.wait += 1
                if patience and self.wait >= patience:
                    self.model.stop_training = True

        def on_train_end(self, logs: Any = None) -> None:
            for variable, value in zip(self.model.trainable_variables, self.best_weights,
                                       strict=True):
                variable.assign(value)

    return KeepBest()
