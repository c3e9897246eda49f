"""Extracting into a URL: a finished shard goes up on a background thread while the next
shard computes, and the manifest at the URL only ever names shards already uploaded."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest

import bottleneck
from bottleneck.cache import remote
from bottleneck.extraction import executor_local
from tests.conftest import write_class_folder

ARGS = {"backbone": "vgg16", "image_size": 32, "progress": False, "batch_size": 8,
        "shard_size": 4}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_class_folder(tmp_path_factory.mktemp("images"), per_class=4)


def test_a_shards_upload_overlaps_the_next_shards_compute(
        images, vgg16_he_weights, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BOTTLENECK_LOCAL_CACHE", str(tmp_path / "lc"))
    url = f"memory://bottleneck-tests/overlap-{uuid.uuid4().hex[:8]}"
    second_started, events = threading.Event(), []
    real_attempt, real_upload, real_put = (executor_local.attempt_shard, remote.upload,
                                           remote.put_bytes)

    def attempt(job, extractor, plan, **kwargs):
        events.append(("compute", plan.index, threading.current_thread().name))
        if plan.index == 1:
            second_started.set()
        return real_attempt(job, extractor, plan, **kwargs)

    def upload(where, files):  # shard 0's upload finishes only once shard 1 computes: on
        shards = sorted(n for n in files if n.endswith(".h5"))  # the extraction thread, it
        if "shard-00000.h5" in shards:  # would wait for a compute that never starts
            events.append(("waited", second_started.wait(20)))
        real_upload(where, files)
        events.append(("uploaded", shards, threading.current_thread().name))

    def put(where, name, data):
        events.append(("manifest", [s["file"] for s in json.loads(data)["shards"]
                                    if s["status"] == "done"]))
        real_put(where, name, data)

    monkeypatch.setattr(executor_local, "attempt_shard", attempt)
    monkeypatch.setattr(remote, "upload", upload)
    monkeypatch.setattr(remote, "put_bytes", put)
    cache = bottleneck.extract(str(images), weights=str(vgg16_he_weights), out=url,
                               lock=False, **ARGS)
    assert ("waited", True) in events
    main = threading.current_thread().name
    assert {e[2] for e in events if e[0] == "compute"} == {main}
    assert {e[2] for e in events if e[0] == "uploaded" and e[1]} == {"bottleneck-upload"}
    uploaded: set[str] = set()
    for event in events:  # every manifest put names only shards the store already holds
        if event[0] == "uploaded":
            uploaded.update(event[1])
        elif event[0] == "manifest":
            assert set(event[1]) <= uploaded, events
    assert uploaded == {f"shard-0000{i}.h5" for i in range(3)}
    assert events[-1] == ("manifest", sorted(uploaded))
    assert bottleneck.open_cache(url).rows == cache.rows == 12
    assert not [t for t in threading.enumerate() if t.name == "bottleneck-upload"]
