"""Caches made by earlier versions keep resuming: what defines the features is compared by
stable names (backbone, preprocessing mode, decode rule), never by module paths, and the
engine and backend are recorded, not compared."""

from __future__ import annotations

import json
from pathlib import Path

import bottleneck
from bottleneck.extraction.config import identity_config

FIXTURE = Path(__file__).parents[1] / "fixtures" / "manifest-first-version-lite0.json"


def test_a_first_version_lite0_manifest_resumes_without_recomputing(image_folder, tmp_path):
    out = tmp_path / "old"
    fresh = bottleneck.extract(str(image_folder), backbone="efficientnet_lite0",
                               weights="none", image_size=32, out=out, shard_size=16,
                               progress=False)
    old = json.loads(FIXTURE.read_text())  # the first version's layout and module path
    old["config"]["weights_digest"] = fresh.config["weights_digest"]
    old["source"]["root"] = fresh.manifest.source["root"]
    old["shards"] = [s.to_dict() for s in fresh.manifest.shards]
    old |= {"rows": fresh.rows, "split_counts": fresh.split_counts(), "failures": 0}
    (out / "manifest.json").write_text(json.dumps(old))
    resumed = bottleneck.extract(str(image_folder), backbone="efficientnet_lite0",
                                 weights="none", image_size=32, out=out, shard_size=16,
                                 progress=False)
    assert [s.sha256 for s in resumed.manifest.shards] == [s["sha256"] for s in old["shards"]]
    assert resumed.config["preprocessing"]["preprocess"] == "lite0"  # recorded anew, stable


def test_every_recorded_name_of_a_preprocessing_reads_as_its_mode():
    base = {"backbone": "efficientnet_lite0", "weights": "none", "image_size": 32}
    names = ["bottleneck.efficientnet_lite.preprocess_input",
             "bottleneck.backbones.efficientnet_lite.preprocess_input", "lite0"]
    found = {identity_config(base | {"preprocessing": {"preprocess_input": n}})["preprocess"]
             for n in names[:2]}
    found.add(identity_config(base | {"preprocessing": {"preprocess": names[2]}})["preprocess"])
    assert found == {"lite0"}
    vgg = identity_config({"backbone": "vgg16", "preprocessing": {
        "preprocess_input": "keras.applications.vgg16.preprocess_input"}})
    assert vgg["preprocess"] == "caffe"


def test_engine_backend_and_descriptions_are_recorded_not_compared():
    a = {"backbone": "vgg16", "engine": "tf", "weights_name": "x",
         "preprocessing": {"decode": "old words", "preprocess_input":
                           "keras.applications.vgg16.preprocess_input"}}
    b = {"backbone": "vgg16", "engine": "openvino", "weights_name": "y",
         "preprocessing": {"decode": "new words", "preprocess": "caffe"}}
    assert identity_config(a) == identity_config(b)
    assert identity_config(a) != identity_config(b | {"precision": "bf16"})
