"""No reader trusts a shard: every command that reads a cache first checks each shard's
datasets against the manifest and refuses HDF5 links, in one line naming the shard and the
repair."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import bottleneck
from bottleneck.cache import open_cache
from bottleneck.cache.manifest import Manifest
from bottleneck.cache.summary import cache_summary
from bottleneck.cli import main
from bottleneck.errors import UserError
from tests.conftest import write_class_folder

ARGS = {"backbone": "vgg16", "weights": "none", "image_size": 32, "progress": False,
        "shard_size": 6}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete cache of 12 images in 2 shards."""
    root = tmp_path_factory.mktemp("shard_checks")
    images = write_class_folder(root / "images", per_class=4, classes=("circle", "square",
                                                                        "stripes"))
    return bottleneck.extract(str(images), out=root / "cache", **ARGS).root


@pytest.fixture()
def cache(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "cache"
    shutil.copytree(pristine, copy)
    return copy


def _replace(handle: h5py.File, name: str, data: np.ndarray, **options: object) -> None:
    del handle[name]
    handle.create_dataset(name, data=data, **options)


def wrong_dtype(handle: h5py.File, _: Path) -> None:
    _replace(handle, "features", handle["features"][:].astype(np.float64))


def wrong_rows(handle: h5py.File, _: Path) -> None:
    _replace(handle, "labels", handle["labels"][:-1])


def wrong_shape(handle: h5py.File, _: Path) -> None:
    _replace(handle, "features", handle["features"][:, :-1])


def missing(handle: h5py.File, _: Path) -> None:
    del handle["split"]


def unknown(handle: h5py.File, _: Path) -> None:
    handle.create_dataset("extra", data=np.zeros(3))


def soft_link(handle: h5py.File, _: Path) -> None:
    del handle["labels"]
    handle["labels"] = h5py.SoftLink("/content_hash")  # an integer column of the right size


def external_link(handle: h5py.File, elsewhere: Path) -> None:
    with h5py.File(elsewhere / "other.h5", "w") as other:
        other.create_dataset("paths", data=handle["paths"][:], dtype=h5py.string_dtype())
    del handle["paths"]
    handle["paths"] = h5py.ExternalLink(str(elsewhere / "other.h5"), "/paths")


def external_storage(handle: h5py.File, elsewhere: Path) -> None:
    labels = handle["labels"][:]
    raw = elsewhere / "labels.raw"
    raw.write_bytes(labels.tobytes())
    del handle["labels"]
    handle.create_dataset("labels", shape=labels.shape, dtype=labels.dtype,
                          external=[(str(raw), 0, labels.nbytes)])


def virtual(handle: h5py.File, elsewhere: Path) -> None:
    labels = handle["labels"][:]
    with h5py.File(elsewhere / "labels.h5", "w") as other:
        other.create_dataset("labels", data=labels)
    layout = h5py.VirtualLayout(shape=labels.shape, dtype=labels.dtype)
    layout[:] = h5py.VirtualSource(str(elsewhere / "labels.h5"), "labels", shape=labels.shape)
    del handle["labels"]
    handle.create_virtual_dataset("labels", layout)


CASES: dict[str, tuple[Callable[[h5py.File, Path], None], str]] = {
    "wrong dtype": (wrong_dtype, "features holds float64, recorded float32"),
    "wrong rows": (wrong_rows, "labels has 5 rows, recorded 6"),
    "wrong shape": (wrong_shape, r"features has shape \(6, 511\), recorded \(rows, 512\)"),
    "missing dataset": (missing, "has no 'split' dataset"),
    "unknown dataset": (unknown, "holds 'extra'"),
    "soft link": (soft_link, r"labels is a soft link \(to /content_hash\)"),
    "external link": (external_link, "paths is an external link"),
    "external storage": (external_storage, "labels keeps its rows in an external file"),
    "virtual dataset": (virtual, "labels is a virtual dataset"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_shard_unlike_its_record_is_refused_naming_it_and_the_repair(
        cache: Path, tmp_path: Path, case: str) -> None:
    tamper, reason = CASES[case]
    shard = cache / "shard-00001.h5"
    with h5py.File(shard, "r+") as handle:
        tamper(handle, tmp_path)
    opened = open_cache(cache)
    readers = {"load": lambda: opened.load("train"), "column": lambda: opened.column("paths"),
               "batches": lambda: list(opened.iter_batches(features=False))}
    for read in readers.values():
        with pytest.raises(UserError) as caught:
            read()
        message = caught.value.format_message()
        assert message.startswith(f"{shard} does not match its record: ")
        assert re.search(reason, message), message
        assert f"`bottleneck info {cache} --verify`" in message and "extract again" in message
    assert "\n" not in message


def test_fit_on_a_damaged_shard_is_one_line_and_exit_2(cache: Path, tmp_path: Path) -> None:
    with h5py.File(cache / "shard-00000.h5", "r+") as handle:
        wrong_rows(handle, tmp_path)
    result = CliRunner().invoke(main, ["fit", str(cache), "--head", "logreg",
                                       "-o", str(tmp_path / "model")])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "shard-00000.h5 does not match its record: labels has 5 rows" in result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "model").exists()


def test_info_verify_names_the_damaged_shard_first(cache: Path, tmp_path: Path) -> None:
    with h5py.File(cache / "shard-00001.h5", "r+") as handle:
        soft_link(handle, tmp_path)
    with pytest.raises(UserError, match="shard-00001.h5 changed since it was written"):
        cache_summary(cache, verify=True)


def test_only_storage_opens_hdf5_files() -> None:
    """Every HDF5 read goes through storage/hdf5.open_checked (and every write through its
    writer): no module outside storage/ calls ``h5py.File(``."""
    package = Path(bottleneck.__file__).parent
    offenders = [f"{path.relative_to(package)}:{n}" for path in sorted(package.rglob("*.py"))
                 if path.relative_to(package).parts[0] != "storage"
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if "h5py.File(" in line.split("#")[0]]
    assert offenders == []


def test_a_rerun_computes_again_a_shard_unlike_its_record(pristine: Path, cache: Path,
                                                         tmp_path: Path) -> None:
    """A shard of the same size as recorded but unlike its record is not kept by a re-run."""
    shard = cache / "shard-00001.h5"
    with h5py.File(shard, "r+") as handle:
        soft_link(handle, tmp_path)
    manifest = Manifest.load(cache)
    manifest.shards[1].bytes = shard.stat().st_size  # as if it were the recorded size
    manifest.save(cache)
    images = Path(manifest.source["root"])
    again = bottleneck.extract(str(images), out=cache, **ARGS)
    np.testing.assert_array_equal(again.load()["features"], open_cache(pristine).load()["features"])
    assert not shard.exists() and len(again.shard_paths) == 2  # its rows went to a new shard
    for path in again.shard_paths:
        with h5py.File(path, "r") as handle:
            assert isinstance(handle.get("labels", getlink=True), h5py.HardLink)
