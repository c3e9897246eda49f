"""Images held as arrays: Fashion-MNIST's idx files, or an ``.npz`` with images and labels."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.data import images
from bottleneck.data.sources import (
    Item,
    Source,
    check_percents,
    hash_split,
    sort_items,
    stratified_limit,
)
from bottleneck.errors import UserError

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
FASHION_MNIST_DIRS = (Path("/usr/share/datasets/fashion-mnist"),)
KERAS_DOWNLOAD = "keras download"  # what describe() records when Keras fetched the files


class ArraySource(Source):
    """Images held as a uint8 array (N×H×W or N×H×W×C) with integer labels."""

    def __init__(
        self, name: str, arrays: dict[str, tuple[np.ndarray, np.ndarray]], classes: list[str],
        description: dict[str, Any], val_percent: float = 10, test_percent: float = 10,
        limit: int | None = None, targets: dict[str, np.ndarray] | None = None,
    ) -> None:
        """``arrays`` maps a part name (``train``, ``t10k``, …) to (images, labels).

        A part named ``t10k`` or ``test`` is the test split; others are hash-split by index.
        """
        check_percents(val_percent, test_percent)
        self.name, self.classes, self._description = name, classes, description
        self._arrays = arrays
        self._targets = targets
        items = []
        for part, (part_images, labels) in arrays.items():
            if part_images.ndim not in (3, 4) or len(part_images) != len(labels):
                raise UserError(
                    f"{name}: '{part}' needs images N×H×W(×C) and N labels; got "
                    f"{part_images.shape} images and {len(labels)} labels."
                )
            check_arrays(name, part, part_images, labels, len(classes))
            fixed_split = "test" if part in ("t10k", "test") else None
            for index, label in enumerate(labels):
                key = f"{part}/{index}"
                split = fixed_split or hash_split(
                    key, val_percent, 0 if "t10k" in arrays or "test" in arrays else test_percent
                )
                items.append(Item(key, int(label), split))
        self._items = stratified_limit(sort_items(items), limit)
        self._description.update(val_percent=val_percent, test_percent=test_percent, limit=limit)
        if not self._items:
            raise UserError(f"{name}: the source holds no images.")

    def items(self) -> list[Item]:
        return self._items

    def describe(self) -> dict[str, Any]:
        return dict(self._description)

    def _pixels(self, item: Item) -> np.ndarray:
        part, index = item.key.rsplit("/", 1)
        return self._arrays[part][0][int(index)]

    def load_image(self, item: Item, decode_size: int | None = None,
                   data: bytes | None = None) -> np.ndarray:
        return images.to_rgb(self._pixels(item))

    def targets(self) -> dict[str, float] | None:
        if self._targets is None:
            return None
        return {
            f"{part}/{i}": float(v) for part, values in self._targets.items()
            for i, v in enumerate(values)
        }


def check_arrays(name: str, part: str, part_images: np.ndarray, labels: np.ndarray,
                 n_classes: int) -> None:
    """Refuse pixel arrays or labels the pipeline cannot take, naming what to fix."""
    if part_images.dtype != np.uint8:
        raise UserError(f"{name}: '{part}' images must be uint8 (0..255), got "
                        f"{part_images.dtype}; convert with images.astype('uint8').")
    if part_images.ndim == 4 and part_images.shape[-1] not in images.CHANNELS:
        raise UserError(f"{name}: '{part}' images have {part_images.shape[-1]} channels; give "
                        "1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA, alpha is dropped).")
    if len(labels) and (not np.issubdtype(labels.dtype, np.integer)
                        or labels.min() < 0 or labels.max() >= n_classes):
        raise UserError(f"{name}: '{part}' labels must be integers in 0..{n_classes - 1} "
                        f"(indices into its {n_classes} classes); got values from "
                        f"{labels.min()} to {labels.max()}.")


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped), the format of MNIST and Fashion-MNIST."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def load_fashion_mnist_arrays(data_dir: str | Path | None) -> tuple[dict, str]:
    """Fashion-MNIST's train and t10k arrays from ``data_dir``, Debian's copy, or Keras."""
    folders = [Path(data_dir).expanduser()] if data_dir else list(FASHION_MNIST_DIRS)
    for folder in folders:
        parts = {}
        for part in ("train", "t10k"):
            image_file = _find_idx(folder, f"{part}-images-idx3-ubyte")
            label_file = _find_idx(folder, f"{part}-labels-idx1-ubyte")
            if image_file and label_file:
                parts[part] = (read_idx(image_file), read_idx(label_file))
        if len(parts) == 2:
            return parts, str(folder.resolve())
    if data_dir:
        raise UserError(
            f"no Fashion-MNIST idx files in {data_dir}: expected train-images-idx3-ubyte.gz, "
            "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz."
        )
    try:
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    except Exception:
        raise UserError(
            "Fashion-MNIST not found and could not be downloaded: install it "
            "(apt-get install dataset-fashion-mnist) or pass --data-dir with the idx files."
        ) from None
    return {"train": (x_train, y_train), "t10k": (x_test, y_test)}, KERAS_DOWNLOAD


def fashion_mnist_source(
    data_dir: str | Path | None = None, val_percent: float = 10, limit: int | None = None
) -> ArraySource:
    """Fashion-MNIST: ``train`` (60k, ``val`` carved out by hash of the index), ``t10k`` test."""
    arrays, where = load_fashion_mnist_arrays(data_dir)
    return ArraySource(
        "fashion-mnist", arrays, list(FASHION_MNIST_CLASSES),
        {"kind": "fashion-mnist", "data_dir": where}, val_percent=val_percent, limit=limit,
    )


def npz_source(
    path: str | Path, val_percent: float = 10, test_percent: float = 10, limit: int | None = None
) -> ArraySource:
    """An ``.npz`` with ``images`` (uint8), ``labels`` and optional ``targets``/``classes``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"npz source not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path} as .npz: {exc}") from None
    missing = {"images", "labels"} - set(arrays)
    if missing:
        raise UserError(
            f"{path} lacks {', '.join(sorted(missing))}: an npz source needs 'images' (uint8 "
            "N×H×W or N×H×W×C) and 'labels' (N ints); 'targets' and 'classes' are optional."
        )
    labels = arrays["labels"]
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.number):
        raise UserError(f"{path}: 'labels' must be a 1-D array of class indices, got "
                        f"{labels.dtype} with shape {labels.shape}.")
    if np.issubdtype(labels.dtype, np.floating) and np.all(labels == np.round(labels)):
        labels = labels.astype(np.int64)
    n_classes = int(labels.max()) + 1 if len(labels) else 0
    classes = [str(c) for c in arrays["classes"]] if "classes" in arrays else [
        str(i) for i in range(n_classes)
    ]
    stem = path.stem
    targets = {stem: arrays["targets"].astype(np.float64)} if "targets" in arrays else None
    return ArraySource(
        "npz", {stem: (arrays["images"], labels)}, classes,
        {"kind": "npz", "path": str(path.resolve())}, val_percent=val_percent,
        test_percent=test_percent, limit=limit, targets=targets,
    )
