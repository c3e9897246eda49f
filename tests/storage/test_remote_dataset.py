"""A folder-layout dataset at a URL: listed once, read on many threads, the same rows and
features as the local folder; freshness by size, ETag, then sha256 as for local files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bottleneck
from bottleneck.data import RemoteFolderSource, open_source
from bottleneck.errors import UserError
from tests.conftest import write_class_folder

ARGS = {"backbone": "vgg16", "image_size": 32, "progress": False, "batch_size": 8,
        "shard_size": 4}


def by_path(cache) -> tuple[np.ndarray, np.ndarray]:
    data = cache.load(with_paths=True)
    order = np.argsort(data["paths"])
    return data["paths"][order], data["features"][order]


def test_a_dataset_at_a_url_gives_the_local_rows(s3, vgg16_he_weights, tmp_path: Path,
                                                 capsys) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(**s3.options())
    images = write_class_folder(tmp_path / "images", per_class=4)
    url = f"s3://{s3.new_bucket()}/photos"
    fs.put(str(images), url, recursive=True)
    fs.pipe_file(f"{url}/.hidden/x.jpg", b"no")
    fs.pipe_file(f"{url}/old-cache/manifest.json", b'{"format": "bottleneck-cache"}')
    fs.pipe_file(f"{url}/old-cache/shard-00000.h5", b"x")
    source = open_source(url)
    assert isinstance(source, RemoteFolderSource)
    assert source.classes == ["circle", "square", "stripes"] and len(source.items()) == 12
    local = bottleneck.extract(str(images), weights=str(vgg16_he_weights),
                               out=tmp_path / "local", **ARGS)
    remote = bottleneck.extract(url, weights=str(vgg16_he_weights), out=tmp_path / "remote",
                                **ARGS)
    paths_l, feats_l = by_path(local)
    paths_r, feats_r = by_path(remote)
    np.testing.assert_array_equal(paths_l, paths_r)
    np.testing.assert_allclose(feats_r, feats_l, atol=1e-5)
    assert remote.manifest.source["kind"] == "folder-url"

    # one object replaced by other bytes: its shard alone is computed again
    changed = str(paths_r[0])
    fs.pipe_file(f"{url}/{changed}", (images / "square" / "001.jpg").read_bytes())
    capsys.readouterr()
    again = bottleneck.extract(url, weights=str(vgg16_he_weights), out=tmp_path / "remote",
                               **ARGS | {"progress": True})
    note = capsys.readouterr().err
    assert "computing 1 shard" in note and changed in note
    before = {s.file: s.sha256 for s in remote.manifest.shards}
    after = {s.file: s.sha256 for s in again.manifest.shards}
    assert sum(before.get(f) != sha for f, sha in after.items()) == 1, (before, after)
    summary = bottleneck.open_cache(tmp_path / "remote").verify()
    assert summary["sources"]["checked"] == 12 and not summary["sources"]["changed"]

    with pytest.raises(UserError, match="no images found"):
        open_source(f"s3://{s3.new_bucket()}/empty")
