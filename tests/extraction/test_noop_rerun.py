"""A re-run that computes nothing leaves the cache as it was made: the manifest keeps the
runtime (backend, device) and library versions of the run that computed the shards."""

from __future__ import annotations

import json
from pathlib import Path

import bottleneck

ARGS = {"backbone": "vgg16", "image_size": 32, "shard_size": 20, "progress": False}


def test_a_no_op_rerun_keeps_what_made_the_cache(image_folder: Path, vgg16_he_weights: Path,
                                                 tmp_path: Path) -> None:
    out = tmp_path / "cache"
    bottleneck.extract(str(image_folder), weights=str(vgg16_he_weights), out=out, **ARGS)
    manifest = json.loads((out / "manifest.json").read_text())
    # as a run on another backend (another process, another machine) records it
    manifest["runtime"] |= {"backend": "jax", "backend_version": "0.10.2"}
    manifest["versions"] = {k: v for k, v in manifest["versions"].items()
                            if k != "tensorflow"} | {"jax": "0.10.2"}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    shards = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.h5")}
    again = bottleneck.extract(str(image_folder), weights=str(vgg16_he_weights), out=out,
                               **ARGS)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.h5")} == shards
    assert again.manifest.runtime["backend"] == "jax"
    assert again.manifest.versions.get("jax") == "0.10.2"
    assert "tensorflow" not in again.manifest.versions
    recorded = json.loads((out / "manifest.json").read_text())
    assert recorded["runtime"] == manifest["runtime"] and recorded["complete"]
