"""Targets attach to an existing cache: synthetic prices and CSV, reproducible, row-aligned."""

from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner

import bottleneck
from bottleneck.cache import open_cache
from bottleneck.cache.targets import r2_ceiling, read_targets_csv, set_targets
from bottleneck.cli import main
from bottleneck.errors import UserError


@pytest.fixture()
def price_cache(tmp_path, vgg16_he_weights):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "clothes.npz", images=rng.integers(0, 255, (60, 16, 16)).astype(np.uint8),
             labels=np.arange(60) % 2, classes=np.array(["Coat", "Sandal"]))
    return bottleneck.extract(str(tmp_path / "clothes.npz"), backbone="vgg16",
                              weights=str(vgg16_he_weights), image_size=32,
                              out=tmp_path / "cache", progress=False, shard_size=16)


def test_synthetic_prices_are_seeded_per_image_and_in_price_units(price_cache):
    shards = {p: p.read_bytes() for p in price_cache.shard_paths}
    info = set_targets(price_cache.root, synthetic=True, sigma=2.0, seed=7)
    assert info["class_prices"] == {"Coat": 90.0, "Sandal": 25.0}
    data = open_cache(price_cache.root).load(with_paths=True)
    for label, price in zip(data["labels"], data["targets"], strict=True):
        assert abs(price - (90.0 if label == 0 else 25.0)) < 10  # 5 sigma
    assert {p: p.read_bytes() for p in price_cache.shard_paths} == shards  # no re-extraction
    set_targets(price_cache.root, synthetic=True, sigma=2.0, seed=7)
    again = open_cache(price_cache.root).load(with_paths=True)
    np.testing.assert_array_equal(again["targets"], data["targets"])
    set_targets(price_cache.root, synthetic=True, sigma=2.0, seed=8)
    other = open_cache(price_cache.root).load()
    assert not np.allclose(other["targets"], data["targets"])
    ceiling = r2_ceiling(open_cache(price_cache.root), "train")
    assert 0.95 < ceiling < 1.0  # class explains almost all variance when sigma ≪ gap


def test_csv_targets_keyed_by_path(price_cache, tmp_path):
    keys = open_cache(price_cache.root).load(with_paths=True)["paths"]
    csv_file = tmp_path / "t.csv"
    csv_file.write_text("id,price\n" + "".join(f"{k},{i * 1.5}\n" for i, k in enumerate(keys)))
    set_targets(price_cache.root, csv_file=csv_file)
    data = open_cache(price_cache.root).load(with_paths=True)
    assert dict(zip(data["paths"], data["targets"], strict=True)) == {
        k: i * 1.5 for i, k in enumerate(keys)}
    csv_file.write_text("id,price\n" + f"{keys[0]},3\n")
    with pytest.raises(UserError, match="have no target"):
        set_targets(price_cache.root, csv_file=csv_file)


def test_targets_cli_errors(price_cache, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["targets", str(price_cache.root)])
    assert result.exit_code == 2 and "choose one of" in result.output
    prices = tmp_path / "p.json"
    prices.write_text('{"Coat": 100}')
    result = runner.invoke(main, ["targets", str(price_cache.root), "--synthetic-prices",
                                  "--class-prices", str(prices)])
    assert result.exit_code == 2 and "no price for class 'Sandal'" in result.output
    result = runner.invoke(main, ["targets", str(price_cache.root), "--synthetic-prices"])
    assert result.exit_code == 0 and "targets attached" in result.output


def spreadsheet_csv(keys, delimiter=",", decimal="."):
    """What a spreadsheet saves: BOM, CRLF, a quoted header, quoted paths, empty rows."""
    quoted = ['"' + key.replace('"', '""') + '"' for key in keys]
    rows = [f'"Path"{delimiter}"Price"'] + [
        f'{k}{delimiter}{str(i * 1.5).replace(".", decimal)}' for i, k in enumerate(quoted)]
    return ("\ufeff" + "\r\n".join(rows) + f"\r\n{delimiter}\r\n\r\n").encode("utf-8")


@pytest.mark.parametrize(("delimiter", "decimal"), [(",", "."), (";", ","), ("\t", ".")])
def test_csv_saved_by_a_spreadsheet_reads(price_cache, tmp_path, delimiter, decimal):
    keys = list(open_cache(price_cache.root).load(with_paths=True)["paths"])
    keys[0] = keys[0] + ' with "quotes", and a comma'  # a quoted field holding both
    csv_file = tmp_path / "sheet.csv"
    csv_file.write_bytes(spreadsheet_csv(keys, delimiter, decimal))
    assert read_targets_csv(csv_file) == {k: i * 1.5 for i, k in enumerate(keys)}


def test_spreadsheet_csv_attaches_from_the_cli(price_cache, tmp_path):
    keys = open_cache(price_cache.root).load(with_paths=True)["paths"]
    csv_file = tmp_path / "sheet.csv"
    csv_file.write_bytes(spreadsheet_csv(keys, ";", ","))
    result = CliRunner().invoke(main, ["targets", str(price_cache.root), "--from-csv",
                                       str(csv_file)])
    assert result.exit_code == 0, result.output
    data = open_cache(price_cache.root).load(with_paths=True)
    assert dict(zip(data["paths"], data["targets"], strict=True)) == {
        k: i * 1.5 for i, k in enumerate(keys)}


@pytest.mark.parametrize(("content", "message"), [
    (b"path,target\r\na.jpg,1\r\nb.jpg,\"1\r\n", "not readable as CSV (unexpected end of data)"),
    (b"path,target\na.jpg,1.2.3\n", "sheet.csv:2: '1.2.3' is not a number"),
    (b"name,amount\na.jpg,1\n", "needs a header with a 'path'"),
    (b"path,target\na.jpg,1\na.jpg,2\n", "sheet.csv:3: a.jpg has a second, different target"),
    (b"path,target\n,1\n", "sheet.csv:2: the 'path' cell is empty"),
    ("path,target\na.jpg,1\n".encode("utf-16"), "is not UTF-8 text; save the sheet as CSV"),
    (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xb5\xfa", "is not UTF-8 text"),
    (b"", "needs a header"),
])
def test_malformed_csv_is_refused_in_one_line(tmp_path, content, message):
    csv_file = tmp_path / "sheet.csv"
    csv_file.write_bytes(content)
    with pytest.raises(UserError, match=re.escape(message)) as error:
        read_targets_csv(csv_file)
    assert "\n" not in error.value.message
