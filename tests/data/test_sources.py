"""Sources: stable hash splits, stratified limits, Fashion-MNIST idx files and .npz arrays."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import bottleneck
from bottleneck.data import FolderSource, Item, fashion_mnist_source, npz_source
from bottleneck.data.sources import hash_split, stratified_limit
from bottleneck.errors import UserError
from tests.conftest import write_class_folder


def test_hash_split_is_stable_and_adding_files_moves_nothing(tmp_path):
    write_class_folder(tmp_path, per_class=10, classes=("circle", "square"))
    before = {it.key: it.split for it in FolderSource(tmp_path).items()}
    write_class_folder(tmp_path / "extra", per_class=5, classes=("circle",))
    (tmp_path / "circle" / "new.jpg").write_bytes((tmp_path / "circle" / "000.jpg").read_bytes())
    after = {it.key: it.split for it in FolderSource(tmp_path).items()}
    assert {k: after[k] for k in before} == before
    assert "circle/new.jpg" in after


def test_hash_split_proportions_follow_the_percentages():
    splits = Counter(hash_split(f"img/{i}.jpg", 20, 10) for i in range(20000))
    assert abs(splits["val"] / 20000 - 0.20) < 0.01
    assert abs(splits["test"] / 20000 - 0.10) < 0.01


def test_stratified_limit_keeps_class_proportions_per_split():
    items = [Item(f"k{i}", label=0 if i < 300 else 1, split="train") for i in range(400)]
    items += [Item(f"v{i}", label=i % 2, split="val") for i in range(50)]
    kept = stratified_limit(items, 40)
    train = Counter(it.label for it in kept if it.split == "train")
    assert train == {0: 30, 1: 10}
    assert Counter(it.split for it in kept) == {"train": 40, "val": 40}
    assert stratified_limit(items, 40) == kept  # deterministic


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_reads_idx_files_and_keeps_t10k_as_test(tmp_path):
    rng = np.random.default_rng(0)
    for part, n in (("train", 200), ("t10k", 50)):
        write_idx(tmp_path / f"{part}-images-idx3-ubyte.gz", rng.integers(0, 255, (n, 28, 28)))
        write_idx(tmp_path / f"{part}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    source = fashion_mnist_source(tmp_path, val_percent=20)
    splits = Counter(it.split for it in source.items())
    assert splits["test"] == 50 and splits["train"] + splits["val"] == 200
    assert 20 <= splits["val"] <= 60
    assert all(it.key.startswith("t10k/") for it in source.items() if it.split == "test")
    assert source.classes[9] == "Ankle boot"
    image = source.load_image(source.items()[0])
    assert image.shape == (28, 28, 3) and image.dtype == np.uint8


def test_fashion_mnist_missing_files_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="no Fashion-MNIST idx files"):
        fashion_mnist_source(tmp_path)


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_limit_is_stratified(tmp_path):
    source = fashion_mnist_source(limit=100)
    counts = Counter((it.split, it.label) for it in source.items())
    assert all(counts[("test", c)] == 10 for c in range(10))
    assert sum(v for (s, _), v in counts.items() if s == "train") == 100


def test_npz_source_with_targets_attaches_them(tmp_path, vgg16_he_weights):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (30, 20, 20, 3)).astype(np.uint8)
    labels = np.arange(30) % 3
    prices = labels * 10.0 + rng.normal(0, 1, 30)
    np.savez(tmp_path / "shop.npz", images=images, labels=labels, targets=prices,
             classes=np.array(["a", "b", "c"]))
    cache = bottleneck.extract(npz_source(tmp_path / "shop.npz"), backbone="vgg16",
                               weights=str(vgg16_he_weights), image_size=32,
                               out=tmp_path / "c", progress=False)
    assert cache.classes == ["a", "b", "c"] and cache.has_targets
    data = cache.load(with_paths=True)
    expected = {f"shop/{i}": prices[i] for i in range(30)}
    np.testing.assert_allclose(data["targets"], [expected[p] for p in data["paths"]])


def test_npz_without_labels_is_refused(tmp_path):
    np.savez(tmp_path / "x.npz", images=np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(UserError, match="lacks labels"):
        npz_source(tmp_path / "x.npz")


def test_every_source_kind_reopens_from_its_description(tmp_path):
    from bottleneck.data import SOURCE_KINDS, reopen_source

    write_class_folder(tmp_path / "photos", per_class=6, classes=("circle", "square"))
    (tmp_path / "fm").mkdir()
    for part, n in (("train", 40), ("t10k", 10)):
        write_idx(tmp_path / "fm" / f"{part}-images-idx3-ubyte.gz", np.zeros((n, 28, 28)))
        write_idx(tmp_path / "fm" / f"{part}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "a.npz", images=rng.integers(0, 255, (30, 8, 8), dtype=np.uint8),
             labels=np.arange(30) % 3)
    import tarfile

    import fsspec

    from bottleneck.data import RemoteFolderSource, WebDatasetSource

    with tarfile.open(tmp_path / "w.tar", "w") as tar:  # WebDataset shards
        for path in sorted((tmp_path / "photos").rglob("*.jpg")):
            tar.add(path, f"{path.parent.name}-{path.stem}.jpg")
    memory = fsspec.filesystem("memory")  # a folder at a URL
    memory.put(str(tmp_path / "photos"), f"/reopen-{tmp_path.name}", recursive=True)
    sources = [FolderSource(tmp_path / "photos", 20, 20, limit=5),
               fashion_mnist_source(tmp_path / "fm", val_percent=30, limit=4),
               npz_source(tmp_path / "a.npz", 10, 30),
               WebDatasetSource(str(tmp_path / "w.tar"), 20, 20),
               RemoteFolderSource(f"memory://reopen-{tmp_path.name}", 20, 20, limit=5)]
    assert {s.describe()["kind"] for s in sources} == {k.name for k in SOURCE_KINDS}
    for source in sources:
        again = reopen_source(source.describe())
        assert again.items() == source.items() and again.classes == source.classes


def test_reopening_an_unknown_kind_is_refused():
    from bottleneck.data import reopen_source

    with pytest.raises(UserError, match="cannot reopen a source of kind 'hub'"):
        reopen_source({"kind": "hub"})
