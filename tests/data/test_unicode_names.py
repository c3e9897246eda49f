"""Paths that look the same are the same: file names match whatever Unicode normal form they
were written in (NFC against NFD) in ``targets --from-csv``, ``predict`` and freshness, and
the user's files are never renamed by the tool."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bottleneck
from bottleneck.cache import open_cache
from bottleneck.cache.manifest import Manifest
from bottleneck.cache.targets import set_targets
from bottleneck.data import FolderSource
from bottleneck.errors import UserError
from bottleneck.models.predict import list_inputs
from tests.conftest import draw_image

ARGS = {"backbone": "vgg16", "weights": "none", "image_size": 32, "progress": False,
        "shard_size": 4}
CLASSES = {"crème": "circle", "carré": "square", "rayé": "stripes"}  # accented class names


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def write_accented(root: Path, form: str, per_class: int = 3) -> Path:
    """root/<accented class>/été-N.jpg with every name written in ``form``."""
    rng = np.random.default_rng(0)
    for name, kind in CLASSES.items():
        folder = root / unicodedata.normalize(form, name)
        folder.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(draw_image(kind, rng, (40, 44))).save(
                folder / unicodedata.normalize(form, f"été-{i}.jpg"))
    return root


def renormalise(root: Path, form: str) -> None:
    """Rename everything under ``root`` to ``form`` (what a copy through another system
    does to the user's files; the test does it, never the tool)."""
    for top, dirs, files in os.walk(root, topdown=False):
        for name in dirs + files:
            new = unicodedata.normalize(form, name)
            if new != name:
                os.rename(Path(top) / name, Path(top) / new)


def test_names_rewritten_in_another_form_keep_every_shard(tmp_path: Path) -> None:
    images = write_accented(tmp_path / "images", "NFC")
    first = bottleneck.extract(str(images), out=tmp_path / "cache", **ARGS)
    shards = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in first.shard_paths}
    renormalise(images, "NFD")
    assert nfd("crème") in os.listdir(images) and nfc("crème") not in os.listdir(images)
    again = bottleneck.extract(str(images), out=tmp_path / "cache", **ARGS)
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in again.shard_paths} == \
        shards  # nothing recomputed
    assert again.classes == first.classes == sorted(map(nfc, CLASSES))
    assert list(again.column("paths")) == list(first.column("paths"))
    assert list(again.column("split")) == list(first.column("split"))
    sources = again.verify()["sources"]
    assert sources["checked"] == 9 and sources["changed"] == sources["missing"] == []


@pytest.mark.parametrize(("files", "sheet"), [("NFD", "NFC"), ("NFC", "NFD")])
def test_targets_from_a_csv_written_in_another_form(tmp_path: Path, files: str,
                                                    sheet: str) -> None:
    images = write_accented(tmp_path / "images", files, per_class=2)
    cache = bottleneck.extract(str(images), out=tmp_path / "cache", **ARGS)
    keys = list(cache.column("paths"))
    csv = tmp_path / "prices.csv"
    csv.write_text("path,price\n" + "".join(
        f"{unicodedata.normalize(sheet, key)},{i}\n" for i, key in enumerate(keys)),
        encoding="utf-8")
    assert all(unicodedata.normalize(sheet, key) != unicodedata.normalize(files, key)
               for key in keys)  # the sheet and the files name each image differently
    set_targets(cache.root, csv_file=csv)
    loaded = open_cache(cache.root).load(with_paths=True)
    expected = {key: float(i) for i, key in enumerate(keys)}
    assert [expected[p] for p in loaded["paths"]] == list(loaded["targets"])
    assert sorted(os.listdir(images)) == sorted(unicodedata.normalize(files, c)
                                                for c in CLASSES)  # never renamed


def test_one_image_in_two_forms_with_two_values_is_refused(tmp_path: Path) -> None:
    images = write_accented(tmp_path / "images", "NFC", per_class=1)
    cache = bottleneck.extract(str(images), out=tmp_path / "cache", **ARGS)
    key = cache.column("paths")[0]
    csv = tmp_path / "prices.csv"
    csv.write_text(f"path,price\n{nfc(key)},1\n{nfd(key)},2\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"prices.csv:3: .* has a second, different target"):
        set_targets(cache.root, csv_file=csv)


def test_predict_finds_a_file_named_in_another_form(tmp_path: Path) -> None:
    images = write_accented(tmp_path / "images", "NFD", per_class=1)
    named = images / nfc("crème") / nfc("été-0.jpg")  # typed on a keyboard: NFC
    assert not named.exists()
    [(path, error)] = list_inputs([named])
    assert error is None and path.is_file()
    assert path == images / nfd("crème") / nfd("été-0.jpg")
    [(_, error)] = list_inputs([images / "crème" / "gone.jpg"])
    assert error == "no such file or folder"


def test_two_files_whose_names_differ_only_in_form_are_read_once(tmp_path: Path) -> None:
    images = write_accented(tmp_path / "images", "NFC", per_class=1)
    folder = images / nfc("crème")
    (folder / nfd("été-0.jpg")).write_bytes((folder / nfc("été-0.jpg")).read_bytes())
    source = FolderSource(images)
    assert sorted(item.key for item in source.items()) == sorted(
        nfc(f"{c}/été-0.jpg") for c in CLASSES)
    assert [(path.name, reason) for path, reason in source.skipped] == [  # the NFC one read
        (nfd("été-0.jpg"),
         f"the same name as {nfc('été-0.jpg')} in another Unicode form: rename one of them")]


def test_a_cache_whose_classes_an_older_version_recorded_in_nfd(tmp_path: Path) -> None:
    """Caches made before names were compared in NFC recorded NFD folder names as they were:
    a re-run says why it refuses, and --overwrite recomputes."""
    images = write_accented(tmp_path / "images", "NFD", per_class=1)
    out = tmp_path / "cache"
    bottleneck.extract(str(images), out=out, **ARGS)
    manifest = Manifest.load(out)
    manifest.classes = sorted(map(nfd, CLASSES))  # as the older version wrote them
    manifest.save(out)
    with pytest.raises(UserError, match="class names recorded in another Unicode form.*"
                                        "overwrite=True"):  # the API names its argument
        bottleneck.extract(str(images), out=out, **ARGS)
    cache = bottleneck.extract(str(images), out=out, overwrite=True, **ARGS)
    assert cache.classes == sorted(map(nfc, CLASSES))
