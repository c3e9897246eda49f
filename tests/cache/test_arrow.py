"""A cache's rows as Arrow, Parquet and framework datasets, read back by the tools people use,
equal to the shards."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from bottleneck.cache import Cache, open_cache
from bottleneck.cache.synthetic import gaussian_shards, write_cache
from bottleneck.cli import main


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Cache:
    """700 rows of 2×2×3 float16 maps (a --pooling none cache) in 3 classes, shards of 256."""
    root = tmp_path_factory.mktemp("arrow") / "cache"
    shards = []
    for rows in gaussian_shards(700, 12, 3, shard_rows=256):
        rows.features = rows.features.reshape(-1, 2, 2, 3)
        shards.append(rows)
    return open_cache(write_cache(root, shards, ["ant", "bee", "cat"], (2, 2, 3), "float16"))


def shard_rows(cache: Cache, split: str | None = None) -> dict[str, np.ndarray]:
    """Every row read straight from the HDF5 shards with h5py."""
    parts: dict[str, list[np.ndarray]] = {"features": [], "labels": [], "paths": []}
    for path in cache.shard_paths:
        with h5py.File(path, "r") as handle:
            keep = np.ones(len(handle["labels"]), bool) if split is None else \
                handle["split"].asstr()[:] == split
            parts["features"].append(handle["features"][:][keep])
            parts["labels"].append(handle["labels"][:][keep])
            parts["paths"].append(handle["paths"].asstr()[:][keep])
    return {k: np.concatenate(v) for k, v in parts.items()}


@pytest.fixture(scope="module")
def parquet(cache: Cache, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("parquet") / "features.parquet"
    result = CliRunner().invoke(main, ["export-features", str(cache.root), "--out", str(out),
                                       "--row-group-rows", "200"])
    assert result.exit_code == 0, result.output
    assert "700 rows in 5 row groups" in result.output  # shards of 256, 256, 188 rows
    return out


def check_rows(features: np.ndarray, paths: list[str], labels: np.ndarray,
               cache: Cache) -> None:
    truth = shard_rows(cache)
    assert list(paths) == list(truth["paths"])
    np.testing.assert_array_equal(labels, truth["labels"])
    np.testing.assert_array_equal(np.asarray(features, np.float32).reshape(-1, 2, 2, 3),
                                  truth["features"].astype(np.float32))


def test_pyarrow_reads_the_row_groups_and_metadata(parquet: Path, cache: Cache) -> None:
    import json

    import pyarrow.parquet as pq

    file = pq.ParquetFile(parquet)
    assert file.metadata.num_row_groups == 5
    assert max(file.metadata.row_group(i).num_rows for i in range(5)) == 200
    about = json.loads(file.schema_arrow.metadata[b"bottleneck"])
    assert about["feature_shape"] == [2, 2, 3] and about["classes"] == ["ant", "bee", "cat"]
    table = file.read()
    check_rows(np.stack(table["features"].to_numpy(zero_copy_only=False)),
               table["path"].to_pylist(), table["label"].to_numpy(), cache)
    assert set(table["class"].to_pylist()) == {"ant", "bee", "cat"}


def test_duckdb_queries_it(parquet: Path, cache: Cache) -> None:
    duckdb = pytest.importorskip("duckdb")
    query = f"SELECT split, count(*) FROM '{parquet}' GROUP BY split"
    counts = dict(duckdb.sql(query).fetchall())
    assert counts == cache.split_counts()
    rows = duckdb.sql(f"SELECT path, label, features FROM '{parquet}'").fetchall()
    check_rows(np.array([r[2] for r in rows]), [r[0] for r in rows],
               np.array([r[1] for r in rows]), cache)


def test_polars_and_pandas_read_it(parquet: Path, cache: Cache) -> None:
    polars = pytest.importorskip("polars")
    frame = polars.read_parquet(parquet)
    check_rows(frame["features"].to_numpy(), frame["path"].to_list(),
               frame["label"].to_numpy(), cache)
    pandas = pytest.importorskip("pandas")
    frame = pandas.read_parquet(parquet)
    check_rows(np.stack(frame["features"].to_numpy()), list(frame["path"]),
               frame["label"].to_numpy(), cache)


@pytest.mark.skipif(importlib.util.find_spec("datasets") is None,
                    reason="Hugging Face datasets is not installed")
def test_hugging_face_datasets_reads_it(parquet: Path, cache: Cache) -> None:
    from datasets import load_dataset

    data = load_dataset("parquet", data_files=str(parquet), split="train")
    check_rows(np.array(data["features"]), data["path"], np.array(data["label"]), cache)


def test_a_split_streams_as_arrow_batches_that_duckdb_takes(cache: Cache) -> None:
    stream = cache.arrow("val", batch_size=64)
    batches = list(stream)
    assert max(b.num_rows for b in batches) <= 64
    truth = shard_rows(cache, "val")
    got = np.concatenate([np.stack(b.column("features").to_numpy(zero_copy_only=False))
                          for b in batches])
    np.testing.assert_array_equal(got.reshape(-1, 2, 2, 3), truth["features"].astype(np.float32))
    duckdb = pytest.importorskip("duckdb")
    reader = cache.arrow("test")  # noqa: F841  (DuckDB finds it by its name)
    counted = duckdb.sql("SELECT count(*) FROM reader").fetchall()
    assert counted == [(cache.split_counts()["test"],)]


def test_a_file_it_did_not_write_is_never_replaced(cache: Cache, parquet: Path,
                                                  tmp_path: Path) -> None:
    theirs = tmp_path / "theirs.parquet"
    theirs.write_bytes(b"precious")
    runner = CliRunner()
    for extra in ([], ["--overwrite"]):
        result = runner.invoke(main, ["export-features", str(cache.root), "-o", str(theirs),
                                      *extra])
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1
    assert theirs.read_bytes() == b"precious"
    assert not [p for p in tmp_path.iterdir() if p.name != "theirs.parquet"]  # no temp left
    ours = tmp_path / "ours.parquet"
    cache.to_parquet(ours, split="train")
    again = runner.invoke(main, ["export-features", str(cache.root), "-o", str(ours),
                                 "--overwrite"])
    assert again.exit_code == 0 and "700 rows" in again.output


def test_torch_and_keras_datasets_give_the_rows(cache: Cache) -> None:
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    truth = shard_rows(cache, "train")
    batches = list(DataLoader(cache.torch_dataset("train", batch_size=100), batch_size=None))
    assert all(isinstance(x, torch.Tensor) and x.dtype == torch.float32 for x, _ in batches)
    np.testing.assert_array_equal(torch.cat([x for x, _ in batches]).numpy(),
                                  truth["features"].astype(np.float32))
    np.testing.assert_array_equal(torch.cat([y for _, y in batches]).numpy(), truth["labels"])
    keras_rows = cache.keras_dataset("train", batch_size=100)
    got = np.concatenate([keras_rows[i][0] for i in range(len(keras_rows))])
    np.testing.assert_array_equal(got, truth["features"].astype(np.float32))
