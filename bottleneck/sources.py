"""Image sources: a folder per class, Fashion-MNIST, or an ``.npz`` of arrays.

A source lists its :class:`Item` rows (a stable key, a label, a split) and, for any list of
them, returns a tf.data stream of ``(position, uint8 H×W×3 image)``. The key is what the cache
stores in ``paths``: a path relative to the source root, or an id such as ``train/12345``.
"""

from __future__ import annotations

import gzip
import hashlib
from abc import ABC, abstractmethod
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from bottleneck import images
from bottleneck.errors import UserError

SPLITS = ("train", "val", "test")
SPLIT_FOLDERS = {"train": ("train",), "val": ("validation", "val"), "test": ("test",)}
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
FASHION_MNIST_DIRS = (Path("/usr/share/datasets/fashion-mnist"),)


@dataclass(frozen=True)
class Item:
    """One image of a source: its stable key, class index and split."""

    key: str
    label: int
    split: str


def stable_fraction(key: str) -> float:
    """A number in [0, 1) fixed by ``key`` alone: the same on every run and machine."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:12], 16) / 16**12


def hash_split(key: str, val_percent: float, test_percent: float) -> str:
    """Assign a split by a stable hash, so adding items never moves existing ones."""
    fraction = stable_fraction(key) * 100
    if fraction < test_percent:
        return "test"
    if fraction < test_percent + val_percent:
        return "val"
    return "train"


def check_percents(val_percent: float, test_percent: float) -> None:
    """Refuse split percentages that leave nothing sensible to train on."""
    if val_percent < 0 or test_percent < 0 or val_percent + test_percent >= 100:
        raise UserError(
            "--val-percent and --test-percent must be ≥ 0 and add up to less than 100."
        )


def stratified_limit(items: list[Item], limit: int | None) -> list[Item]:
    """At most ``limit`` items per split, keeping each split's class proportions."""
    if limit is None:
        return items
    if limit <= 0:
        raise UserError("--limit must be a positive number of images per split.")
    kept: list[Item] = []
    for split in SPLITS:
        in_split = [item for item in items if item.split == split]
        if len(in_split) <= limit:
            kept.extend(in_split)
            continue
        by_class: dict[int, list[Item]] = defaultdict(list)
        for item in sorted(in_split, key=lambda it: stable_fraction(it.key)):
            by_class[item.label].append(item)
        quotas = {c: len(v) * limit // len(in_split) for c, v in by_class.items()}
        spare = limit - sum(quotas.values())
        for label in sorted(by_class, key=lambda c: -len(by_class[c]))[:spare]:
            quotas[label] += 1
        for label, members in by_class.items():
            kept.extend(members[: quotas[label]])
    order = {split: i for i, split in enumerate(SPLITS)}
    return sorted(kept, key=lambda it: (order[it.split], it.key))


class Source(ABC):
    """Where images come from. Subclasses list items and stream their pixels."""

    classes: list[str]

    @abstractmethod
    def items(self) -> list[Item]:
        """Every item, sorted by split then key."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """What the manifest records about this source."""

    @abstractmethod
    def image_dataset(self, items: list[Item]) -> tf.data.Dataset:
        """``(position, uint8 H×W×3)`` for each item; elements may fail to decode."""

    @abstractmethod
    def load_image(self, item: Item) -> np.ndarray:
        """Decode one item outside tf.data; raises ``ValueError`` with the reason."""

    def targets(self) -> dict[str, float] | None:
        """Per-item numeric targets, where the source carries them."""
        return None


class FolderSource(Source):
    """A folder per class, optionally under ``train/``, ``validation/`` (``val/``), ``test/``."""

    def __init__(
        self, root: str | Path, val_percent: float = 10, test_percent: float = 10,
        limit: int | None = None,
    ) -> None:
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise UserError(f"source folder not found: {root} (expected a folder per class).")
        self.val_percent, self.test_percent, self.limit = val_percent, test_percent, limit
        check_percents(val_percent, test_percent)
        self.split_dirs = self._find_split_dirs()
        class_dirs = {
            child.name
            for base in (self.split_dirs.values() if self.split_dirs else [self.root])
            for child in base.iterdir()
            if child.is_dir() and not child.name.startswith(".")
        }
        self.classes = sorted(class_dirs)
        self._items = stratified_limit(self._list_items(), limit)
        if not self._items:
            raise UserError(
                f"no images found in {root}: put each class's images in its own subfolder "
                "(root/CLASS/image.jpg)."
            )

    def _find_split_dirs(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for split, names in SPLIT_FOLDERS.items():
            for name in names:
                if (self.root / name).is_dir():
                    found[split] = self.root / name
                    break
        return found if "train" in found and len(found) >= 2 else {}

    def _list_items(self) -> list[Item]:
        label_of = {name: i for i, name in enumerate(self.classes)}
        items = []
        bases = self.split_dirs.items() if self.split_dirs else [(None, self.root)]
        for split, base in bases:
            for class_name in self.classes:
                class_dir = base / class_name
                if not class_dir.is_dir():
                    continue
                for path in sorted(class_dir.rglob("*")):
                    if path.is_file() and not any(p.startswith(".") for p in path.parts):
                        key = path.relative_to(self.root).as_posix()
                        item_split = split or hash_split(
                            key, self.val_percent, self.test_percent
                        )
                        items.append(Item(key, label_of[class_name], item_split))
        order = {split: i for i, split in enumerate(SPLITS)}
        return sorted(items, key=lambda it: (order[it.split], it.key))

    def items(self) -> list[Item]:
        return self._items

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "folder", "root": str(self.root),
            "splits": "folders" if self.split_dirs else "hash",
            "val_percent": self.val_percent, "test_percent": self.test_percent,
            "limit": self.limit,
        }

    def image_dataset(self, items: list[Item]) -> tf.data.Dataset:
        paths = [str(self.root / item.key) for item in items]
        positions = tf.data.Dataset.range(len(paths))
        files = tf.data.Dataset.from_tensor_slices(tf.constant(paths, dtype=tf.string))
        return tf.data.Dataset.zip((positions, files)).map(
            lambda pos, path: (pos, images.decode_file_tf(path)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    def load_image(self, item: Item) -> np.ndarray:
        return images.decode_file_pil(self.root / item.key)


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
            fixed_split = "test" if part in ("t10k", "test") else None
            for index, label in enumerate(labels):
                key = f"{part}/{index}"
                split = fixed_split or hash_split(
                    key, val_percent, 0 if "t10k" in arrays or "test" in arrays else test_percent
                )
                items.append(Item(key, int(label), split))
        order = {split: i for i, split in enumerate(SPLITS)}
        self._items = stratified_limit(sorted(items, key=lambda it: (order[it.split], it.key)),
                                       limit)
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

    def image_dataset(self, items: list[Item]) -> tf.data.Dataset:
        batch = np.stack([self._pixels(item) for item in items])
        if batch.dtype != np.uint8:
            raise UserError(f"{self.name}: images must be uint8 (0..255), got {batch.dtype}.")
        return tf.data.Dataset.zip(
            (tf.data.Dataset.range(len(items)), tf.data.Dataset.from_tensor_slices(batch))
        ).map(lambda pos, img: (pos, images.to_rgb_tf(img)),
              num_parallel_calls=tf.data.AUTOTUNE)

    def load_image(self, item: Item) -> np.ndarray:
        return np.asarray(images.to_rgb_tf(tf.constant(self._pixels(item))))

    def targets(self) -> dict[str, float] | None:
        if self._targets is None:
            return None
        return {
            f"{part}/{i}": float(v) for part, values in self._targets.items()
            for i, v in enumerate(values)
        }


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
    return {"train": (x_train, y_train), "t10k": (x_test, y_test)}, "keras download"


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
    labels = arrays["labels"].astype(np.int64)
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


def open_source(
    spec: str, data_dir: str | None = None, val_percent: float = 10, test_percent: float = 10,
    limit: int | None = None,
) -> Source:
    """``fashion-mnist``, a path to an ``.npz``, or a folder of class folders."""
    if spec == "fashion-mnist":
        return fashion_mnist_source(data_dir, val_percent=val_percent, limit=limit)
    if spec.endswith(".npz"):
        return npz_source(spec, val_percent, test_percent, limit)
    return FolderSource(spec, val_percent, test_percent, limit)
