"""WebDataset tar shards as a source: written by webdataset's own TarWriter and by plain
tarfile, labels from .cls or a .json key or none, read in place (nothing unpacked); a member
that is not an image is a recorded failure, a truncated tar keeps what precedes the damage."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bottleneck
from bottleneck.data import WebDatasetSource, open_source
from tests.conftest import CLASS_COLOURS, draw_image
from tests.remote_fixtures import s3_fixture, s3_server_fixture  # noqa: F401 - fixtures


@pytest.fixture(autouse=True)
def user_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Kept scans go to a temp cache dir, never the user's."""
    folder = tmp_path / "user-cache"
    monkeypatch.setenv("BOTTLENECK_CACHE_DIR", str(folder))
    return folder


ARGS = {"backbone": "vgg16", "image_size": 32, "progress": False, "batch_size": 8,
        "shard_size": 5}
KINDS = list(CLASS_COLOURS)


def jpeg(kind: str, rng: np.random.Generator) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(draw_image(kind, rng, (40, 44))).save(buffer, format="JPEG")
    return buffer.getvalue()


def write_with_webdataset(folder: Path, tars: int = 2, per_tar: int = 6) -> Path:
    """img2dataset's layout, by webdataset's TarWriter: NNNNN.jpg, .cls, .json, .txt."""
    import webdataset as wds

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for t in range(tars):
        with wds.TarWriter(str(folder / f"{t:05d}.tar")) as sink:
            for i in range(per_tar):
                label = (t * per_tar + i) % 3
                sink.write({"__key__": f"{t:05d}{i:04d}", "jpg": jpeg(KINDS[label], rng),
                            "cls": label, "json": {"caption": "x", "kind": KINDS[label]},
                            "txt": "a caption"})
    return folder


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_tar_shards_by_webdataset_give_the_features_of_their_images(
        vgg16_he_weights, tmp_path: Path) -> None:
    shards = write_with_webdataset(tmp_path / "wds")
    source = open_source(str(shards / "{00000..00001}.tar"))
    assert isinstance(source, WebDatasetSource) and source.classes == ["0", "1", "2"]
    assert len(source.items()) == 12
    cache = bottleneck.extract(source, weights=str(vgg16_he_weights), out=tmp_path / "c", **ARGS)
    assert cache.rows == 12 and not cache.failures
    assert cache.manifest.source["kind"] == "webdataset"
    # the same pixels as the images written out as files
    data = cache.load(with_paths=True)
    first = sorted(data["paths"])[0]
    with tarfile.open(shards / "00000.tar") as tar:
        image = tar.extractfile(f"{first.split('/', 1)[1]}.jpg").read()
    folder = tmp_path / "files" / "x"
    folder.mkdir(parents=True)
    (folder / "a.jpg").write_bytes(image)
    alone = bottleneck.extract(open_source(str(tmp_path / "files"), val_percent=0,
                                           test_percent=0),
                               weights=str(vgg16_he_weights), out=tmp_path / "c2", **ARGS)
    row = list(data["paths"]).index(first)
    np.testing.assert_allclose(data["features"][row], alone.load()["features"][0], rtol=1e-5,
                               atol=1e-5)
    # a folder of .tar files, labels from a .json key; a re-run keeps every shard
    by_key = open_source(str(shards), label_key="kind")
    assert by_key.classes == sorted(KINDS) and len(by_key.items()) == 12
    again = bottleneck.extract(source, weights=str(vgg16_he_weights), out=tmp_path / "c",
                               **ARGS)
    assert [s.sha256 for s in again.manifest.shards] == [s.sha256 for s in cache.manifest.shards]


def test_plain_tarfile_shards_bad_members_and_truncation(vgg16_he_weights,
                                                         tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path = tmp_path / "data.tar"
    with tarfile.open(path, "w") as tar:
        for i in range(5):
            add(tar, f"s{i}.png" if i == 4 else f"s{i}.jpg", jpeg(KINDS[i % 3], rng))
            add(tar, f"s{i}.json", json.dumps({"label": KINDS[i % 3]}).encode())
        add(tar, "s5.jpg", b"not an image at all")
        add(tar, "s5.json", b'{"label": "circle"}')
        add(tar, "readme.md", b"ignored")
    unlabelled = open_source(str(path))
    assert unlabelled.classes == [] and {it.label for it in unlabelled.items()} == {-1}
    source = open_source(str(path), label_key="label")
    cache = bottleneck.extract(source, weights=str(vgg16_he_weights), out=tmp_path / "c", **ARGS)
    assert cache.rows == 5 and [f["path"] for f in cache.failures] == ["data.tar/s5"]
    assert "not" in cache.failures[0]["reason"] or "image" in cache.failures[0]["reason"]
    # cut inside the third sample: the samples before it are kept, the cut noted
    whole = path.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole[: len(whole) // 2])
    truncated = open_source(str(cut), label_key="label")
    assert 0 < len(truncated.items()) < 6
    assert any("truncated" in why for _, why in truncated.skipped)


def test_tar_shards_at_a_url(s3, vgg16_he_weights, tmp_path: Path) -> None:
    import s3fs

    shards = write_with_webdataset(tmp_path / "wds", tars=2, per_tar=4)
    bucket = s3.new_bucket()
    fs = s3fs.S3FileSystem(**s3.options())
    fs.put(str(shards / "00000.tar"), f"{bucket}/wds/00000.tar")
    fs.put(str(shards / "00001.tar"), f"{bucket}/wds/00001.tar")
    remote = bottleneck.extract(f"s3://{bucket}/wds/{{00000..00001}}.tar",
                                weights=str(vgg16_he_weights), out=tmp_path / "r", **ARGS)
    local = bottleneck.extract(str(shards / "{00000..00001}.tar"),
                               weights=str(vgg16_he_weights), out=tmp_path / "l", **ARGS)
    assert remote.rows == local.rows == 8
    np.testing.assert_allclose(remote.load()["features"], local.load()["features"], atol=1e-5)


def test_a_local_tar_is_scanned_without_reading_its_images(monkeypatch, tmp_path: Path) -> None:
    """Listing a local tar's samples seeks over the image members (the decode reads them
    later, once): the scan reads a small part of the file, yet finds every sample."""
    from bottleneck.data import webdataset

    path = tmp_path / "big.tar"
    rng = np.random.default_rng(2)
    with tarfile.open(path, "w") as tar:
        for i in range(6):
            add(tar, f"s{i}.png", rng.integers(0, 255, 20000, dtype=np.uint8).tobytes())
            add(tar, f"s{i}.cls", str(i % 2).encode())
    read: list[int] = []

    class Counted(io.BufferedReader):
        def read(self, size=-1):  # noqa: ANN001, ANN202
            data = super().read(size)
            read.append(len(data))
            return data

    monkeypatch.setattr(webdataset, "_open", lambda tar: Counted(io.FileIO(tar, "rb")))
    source = WebDatasetSource(str(path))
    assert len(source.items()) == 6 and source.classes == ["0", "1"]
    assert 0 < sum(read) < path.stat().st_size / 4


def test_a_scan_is_kept_for_the_same_version_of_a_tar(monkeypatch, tmp_path: Path,
                                                     user_cache_dir: Path) -> None:
    """Every run listed every tar again (at a URL, a stream of the whole object): the
    second open of the same tar reads none of it, and gives the same samples; a tar
    rewritten in place, or a kept scan that cannot be read, is scanned again."""
    from bottleneck.data import webdataset

    path = tmp_path / "data.tar"
    rng = np.random.default_rng(3)
    with tarfile.open(path, "w") as tar:
        for i in range(4):
            add(tar, f"s{i}.jpg", jpeg(KINDS[i % 3], rng))
            add(tar, f"s{i}.json", json.dumps({"label": KINDS[i % 3]}).encode())
    opened: list[str] = []
    real_open = webdataset._open
    monkeypatch.setattr(webdataset, "_open", lambda tar: opened.append(tar) or real_open(tar))

    def listed() -> list[tuple[str, int, str]]:
        source = WebDatasetSource(str(path), label_key="label")
        return [(it.key, it.label, it.split) for it in source.items()]

    first = listed()
    assert len(first) == 4 and len(opened) == 1
    assert listed() == first and len(opened) == 1  # kept: the tar was not read
    kept = list((user_cache_dir / "webdataset").glob("*.json"))
    assert len(kept) == 1
    kept[0].write_text("{not json")
    assert listed() == first and len(opened) == 2  # unreadable: scanned again
    with tarfile.open(path, "a") as tar:  # a new version of the tar
        add(tar, "s9.jpg", jpeg(KINDS[0], rng))
        add(tar, "s9.json", json.dumps({"label": KINDS[0]}).encode())
    assert len(listed()) == 5 and len(opened) == 3
    assert len(list((user_cache_dir / "webdataset").glob("*.json"))) == 2
