"""The nearest-neighbour index beside a cache: what it answers (exact: what brute force
answers; pca-ivf: nearly), that it grows with the cache shard by shard, that an index of the
kind before (hnsw) still answers, and that it is refused when its shards changed, never
overwriting a folder that is not ours."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from bottleneck.cache import Cache, index_kinds, open_cache
from bottleneck.cache import index_files as index_module
from bottleneck.cache.index_files import open_index
from bottleneck.cache.manifest import Manifest, ShardRecord, shard_name
from bottleneck.cache.shards import ShardWriter
from bottleneck.errors import UserError
from bottleneck.storage.ours import what_of_ours

pytest.importorskip("faiss")

DIMS = 24


def write_cache(root: Path, shards: int, listed: int | None = None, rows: int = 50,
                seed: int = 0) -> Path:
    """A cache of ``shards`` shards of clustered random features, its manifest listing the
    first ``listed`` of them (a cache that grows later)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    centres = rng.normal(0, 1, (5, DIMS))
    records = []
    for number in range(shards):
        path = root / shard_name(number)
        if not path.exists():
            labels = rng.integers(0, 5, rows)
            features = (centres[labels] + rng.normal(0, 0.4, (rows, DIMS))).astype(np.float32)
            splits = rng.choice(["train", "val", "test"], rows, p=[0.7, 0.15, 0.15])
            writer = ShardWriter(path, (DIMS,), "float32", rows)
            writer.append(features, labels, [f"s{number}/{i}" for i in range(rows)],
                          list(splits), rng.integers(0, 2**63, rows, dtype=np.uint64))
            writer.commit({})
        from bottleneck.storage.atomic import sha256_file

        records.append(ShardRecord(shard_name(number), rows, f"{number:064x}", "done", rows,
                                   sha256_file(path), bytes=path.stat().st_size))
    records = records[:listed or shards]
    config = {"backbone": "synthetic", "feature_shape": [DIMS], "dtype": "float32",
              "image_size": 8, "preprocessing": {}}
    Manifest(config, {"kind": "npz", "path": "none"}, [f"c{i}" for i in range(5)], {}, records,
             complete=True, rows=rows * len(records),
             split_counts={"train": 0}, failures=0).save(root)
    return root


def all_features(cache: Cache) -> np.ndarray:
    rows = np.concatenate([b["features"] for b in cache.iter_batches()]).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_the_exact_index_answers_what_brute_force_answers(tmp_path: Path) -> None:
    cache = open_cache(write_cache(tmp_path / "cache", 3))
    found = open_index(cache)
    assert found.kind == "exact" and found.rows == 150
    unit = all_features(cache)
    rows, cosines = found.search(unit[:20], 5)
    truth = np.argsort(-(unit[:20] @ unit.T), axis=1)[:, :5]
    assert rows.tolist() == truth.tolist()
    np.testing.assert_allclose(cosines, np.take_along_axis(unit[:20] @ unit.T, truth, 1),
                               atol=1e-5)
    allowed = np.zeros(150, bool)
    allowed[100:] = True  # only the last shard may answer
    rows, _ = found.search_rows(np.arange(10), 3, allowed)
    assert (rows >= 100).all()
    record = json.loads((cache.root / "index" / "index.json").read_text())
    assert record["format"] == "bottleneck-index" and len(record["shards"]) == 3
    assert (cache.root / "index" / record["file"]).is_file()
    assert what_of_ours(cache.root / "index") == "a bottleneck nearest-neighbour index"


def approximate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every cache above the exact size, projected to 8 of its 24 dims (so re-ranking at
    full width is what finds the true neighbours)."""
    monkeypatch.setattr(index_module, "EXACT_VALUES", 0)
    monkeypatch.setattr(index_kinds, "PCA_DIMS", 8)


def recall_at(rows: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(rows, truth, strict=True)]))


def test_above_the_exact_size_pca_ivf_finds_nearly_every_neighbour(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    approximate(monkeypatch)
    cache = open_cache(write_cache(tmp_path / "cache", 4, rows=100))
    found = open_index(cache)
    assert found.kind == "pca-ivf" and found.rows == 400
    record = json.loads((cache.root / "index" / "index.json").read_text())
    assert record["kind"] == "pca-ivf" and record["params"]["pca_dims"] == 8
    unit = all_features(cache)
    rows, cosines = found.search(unit[:100], 10)
    truth = np.argsort(-(unit[:100] @ unit.T), axis=1)[:, :10]
    assert recall_at(rows, truth) >= 0.95
    assert rows[:, 0].tolist() == list(range(100))  # each row finds itself first
    np.testing.assert_allclose(cosines, np.take_along_axis(unit[:100] @ unit.T, rows, 1),
                               atol=2e-3)  # re-ranked at full width (float16 copies)
    # the projection alone loses the order: one list scanned, no re-ranking, finds less
    monkeypatch.setattr(index_kinds, "K_FACTOR", 1)
    coarse, _ = found.search(unit[:100], 10, effort=1)
    assert recall_at(coarse, truth) < recall_at(rows, truth)
    reopened = open_index(open_cache(cache.root))  # memory-mapped from the file
    assert reopened.kind == "pca-ivf"
    np.testing.assert_array_equal(reopened.search(unit[:100], 10, effort=1)[0], coarse)


def test_pca_ivf_answers_only_allowed_rows_and_gives_back_its_vectors(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    approximate(monkeypatch)
    cache = open_cache(write_cache(tmp_path / "cache", 3, rows=100))
    found = open_index(cache)
    unit = all_features(cache)
    allowed = np.zeros(300, bool)
    allowed[200:] = True  # only the last shard may answer
    rows, cosines = found.search_rows(np.arange(20), 5, allowed)
    assert (rows >= 200).all() and np.isfinite(cosines).all()
    in_shard = unit[200:]
    truth = 200 + np.argsort(-(unit[:20] @ in_shard.T), axis=1)[:, :5]
    assert recall_at(rows, truth) >= 0.9
    few = np.zeros(300, bool)
    few[[7, 250]] = True
    rows, cosines = found.search(unit[:3], 4, few, effort=1000)
    assert set(rows[0][rows[0] >= 0]) <= {7, 250} and (cosines[rows < 0] == -np.inf).all()
    # the full-width float16 copies, not the 8-d projection
    picked = np.array([0, 150, 299])
    vectors = found.vectors(picked)
    assert vectors.shape == (3, DIMS) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, unit[picked], atol=2e-3)
    np.testing.assert_allclose(vectors, found.features(picked), atol=2e-3)


def test_a_growing_pca_ivf_index_keeps_its_lists_and_adds_the_new_shard(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    approximate(monkeypatch)
    root = write_cache(tmp_path / "cache", 3, listed=2, rows=100)
    first = open_index(open_cache(root))
    assert first.kind == "pca-ivf" and first.rows == 200
    before = first.vectors(np.arange(200))
    write_cache(root, 3, rows=100)  # the cache grows by one shard
    read = []
    original = index_module.view0
    monkeypatch.setattr(index_module, "view0", lambda h: read.append(h.filename) or original(h))
    grown = open_index(open_cache(root))
    assert grown.kind == "pca-ivf" and grown.rows == 300
    assert [Path(p).name for p in read] == [shard_name(2)]  # no new sample, one shard read
    np.testing.assert_array_equal(grown.vectors(np.arange(200)), before)
    unit = all_features(open_cache(root))
    rows, _ = grown.search(unit[200:], 1)
    assert rows[:, 0].tolist() == list(range(200, 300))  # the new rows are found


def test_a_pca_ivf_index_outgrown_by_its_cache_is_trained_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    approximate(monkeypatch)
    root = write_cache(tmp_path / "cache", 9, listed=2, rows=100)
    open_index(open_cache(root))
    trained = json.loads((root / "index" / "index.json").read_text())["params"]
    assert trained["trained_rows"] == 200
    write_cache(root, 8, rows=100)  # 800 rows: 4× what it was trained on, kept
    grown = open_index(open_cache(root))
    assert grown.rows == 800 and grown.trained_rows == 200
    write_cache(root, 9, rows=100)  # 900 rows: past 4×, trained again on the whole cache
    retrained = open_index(open_cache(root))
    assert retrained.rows == 900 and retrained.trained_rows == 900
    record = json.loads((root / "index" / "index.json").read_text())
    assert record["params"]["trained_rows"] == 900 and len(record["shards"]) == 9
    unit = all_features(open_cache(root))
    rows, _ = retrained.search(unit, 1)
    assert (rows[:, 0] == np.arange(900)).mean() >= 0.99


def test_an_index_of_the_kind_before_still_answers(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """An ``hnsw`` index (HNSW over float16 rows, written before ``pca-ivf``) is opened and
    searched as it is; when its cache grows it is rebuilt as ``pca-ivf``."""
    import faiss

    approximate(monkeypatch)
    root = write_cache(tmp_path / "cache", 3, listed=2, rows=100)
    cache = open_cache(root)
    unit = all_features(cache)
    old = faiss.IndexHNSWSQ(DIMS, faiss.ScalarQuantizer.QT_fp16, 16, faiss.METRIC_INNER_PRODUCT)
    old.add(unit)
    folder = root / "index"
    folder.mkdir()
    faiss.write_index(old, str(folder / "index-0123456789abcdef.faiss"))
    (folder / "index.json").write_text(json.dumps({
        "format": "bottleneck-index", "format_version": 1, "kind": "hnsw", "dims": DIMS,
        "rows": 200, "file": "index-0123456789abcdef.faiss",
        "bytes": (folder / "index-0123456789abcdef.faiss").stat().st_size,
        "shards": [{"file": s.file, "sha256": s.sha256, "indexed": 100}
                   for s in cache.manifest.shards],
        "params": {"hnsw_m": 16, "ef_construction": 40}}))
    found = open_index(cache)
    assert found.kind == "hnsw" and found.rows == 200
    rows, cosines = found.search(unit[:50], 5)
    truth = np.argsort(-(unit[:50] @ unit.T), axis=1)[:, :5]
    assert recall_at(rows, truth) >= 0.95
    np.testing.assert_allclose(cosines[:, 0], 1, atol=2e-3)
    allowed = np.zeros(200, bool)
    allowed[100:] = True
    assert (found.search_rows(np.arange(5), 3, allowed, effort=64)[0] >= 100).all()
    np.testing.assert_allclose(found.vectors(np.arange(3)), unit[:3], atol=2e-3)
    write_cache(root, 3, rows=100)  # the cache grows: rebuilt as the kind of now
    grown = open_index(open_cache(root))
    assert grown.kind == "pca-ivf" and grown.rows == 300
    record = json.loads((folder / "index.json").read_text())
    assert record["kind"] == "pca-ivf" and record["file"] != "index-0123456789abcdef.faiss"
    assert [p.name for p in folder.glob("*.faiss")] == [record["file"]]  # the old file is gone


def test_a_growing_cache_is_added_to_shard_by_shard(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_cache(tmp_path / "cache", 3, listed=2)
    first = open_index(open_cache(root))
    assert first.rows == 100
    before = first.index.reconstruct_n(0, 100)
    write_cache(root, 3)  # the cache grows by one shard
    read = []
    original = index_module.view0
    monkeypatch.setattr(index_module, "view0", lambda h: read.append(h.filename) or original(h))
    grown = open_index(open_cache(root))
    assert grown.rows == 150 and [Path(p).name for p in read] == [shard_name(2)]
    np.testing.assert_array_equal(grown.index.reconstruct_n(0, 100), before)
    assert len(list((root / "index").glob("index-*.faiss"))) == 1  # the old file is gone
    read.clear()
    open_index(open_cache(root))  # up to date: nothing is read again
    assert read == []


def test_an_index_whose_shards_changed_is_refused_until_rebuilt(tmp_path: Path) -> None:
    root = write_cache(tmp_path / "cache", 2)
    open_index(open_cache(root))
    record = json.loads((root / "index" / "index.json").read_text())
    manifest = Manifest.load(root)
    manifest.shards[1].sha256 = "0" * 64  # shard 1 was extracted again
    manifest.save(root)
    with pytest.raises(UserError, match=r"no longer matches the cache \(shard-00001.h5 "
                                        r"changed.*--rebuild-index"):
        open_index(open_cache(root))
    assert json.loads((root / "index" / "index.json").read_text()) == record  # untouched
    rebuilt = open_index(open_cache(root), rebuild=True)
    assert rebuilt.rows == 100
    assert json.loads((root / "index" / "index.json").read_text())["shards"][1]["sha256"] \
        == "0" * 64


def test_a_folder_of_someone_else_named_index_is_never_overwritten(tmp_path: Path) -> None:
    root = write_cache(tmp_path / "cache", 1)
    (root / "index").mkdir()
    (root / "index" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="is not an index of ours; move it away"):
        open_index(open_cache(root))
    assert sorted(p.name for p in (root / "index").iterdir()) == ["notes.txt"]


def test_augmented_views_are_left_out(tmp_path: Path) -> None:
    root = write_cache(tmp_path / "cache", 1)
    with h5py.File(root / shard_name(0), "a") as handle:  # every other row: view 1
        handle.create_dataset("view", data=(np.arange(50) % 2).astype(np.uint16))
    shutil.rmtree(root / "index", ignore_errors=True)
    manifest = Manifest.load(root)
    manifest.config["augment"] = 1  # as an --augment cache records it, so its shards hold views
    from bottleneck.storage.atomic import sha256_file

    manifest.shards[0].sha256 = sha256_file(root / shard_name(0))
    manifest.save(root)
    found = open_index(open_cache(root))
    assert found.rows == 25 and found.locate(np.array([0, 1, 24])) == [(0, 0), (0, 2), (0, 48)]


def test_a_replaced_cache_takes_its_index_along_and_nothing_else(tmp_path: Path) -> None:
    from bottleneck.extraction.outdir import remove_cache_files

    root = write_cache(tmp_path / "cache", 2)
    open_index(open_cache(root))
    (root / "index" / "notes.txt").write_text("mine")
    remove_cache_files(root, Manifest.load(root))
    assert sorted(p.name for p in (root / "index").iterdir()) == ["notes.txt"]


def test_a_read_only_cache_folder_is_one_line(tmp_path: Path) -> None:
    import os

    root = write_cache(tmp_path / "cache", 1)
    os.chmod(root, 0o555)
    try:
        if os.access(root, os.W_OK):
            pytest.skip("running as root: the folder stays writable")
        with pytest.raises(UserError, match="permission denied"):
            open_index(open_cache(root))
    finally:
        os.chmod(root, 0o755)
    assert not (root / "index").exists()


def test_an_index_folder_among_images_is_never_read_as_data(tmp_path: Path) -> None:
    from bottleneck.data import FolderSource
    from tests.conftest import write_class_folder

    root = write_cache(tmp_path / "cache", 1)
    open_index(open_cache(root))
    photos = write_class_folder(tmp_path / "photos", per_class=2, classes=("circle", "square"))
    shutil.copytree(root / "index", photos / "circle" / "index")
    source = FolderSource(photos)
    assert source.classes == ["circle", "square"]
    assert not any("index" in item.key for item in source.items())
    assert [(p.name, why) for p, why in source.skipped] == [
        ("index", "a bottleneck nearest-neighbour index")]
