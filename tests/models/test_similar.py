"""bottleneck similar: an image runs through the cache's own backbone and finds itself; a row
key answers its nearest cached rows as brute force does; answers on the terminal and as JSON;
a query that is neither is one line, exit 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import bottleneck
from bottleneck.backend import active_backend
from bottleneck.cache import Cache, open_cache
from bottleneck.cli import main

pytest_plugins = ["tests.heads_fixtures"]
pytest.importorskip("faiss")


@pytest.fixture(autouse=True)
def user_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Conversions kept by image queries go to a temp cache dir, never the user's, and no
    test finds one an earlier test kept."""
    folder = tmp_path / "user-cache"
    monkeypatch.setenv("BOTTLENECK_CACHE_DIR", str(folder))
    return folder


@pytest.fixture(scope="module")
def cache(feature_cache: Cache, tmp_path_factory: pytest.TempPathFactory) -> Cache:
    root = tmp_path_factory.mktemp("similar") / "cache"
    shutil.copytree(feature_cache.root, root)
    return open_cache(root)


def test_an_image_of_the_cache_finds_its_own_row_first(cache: Cache, split_images: Path
                                                        ) -> None:
    files = [split_images / "test" / "circle" / "001.jpg",
             split_images / "train" / "stripes" / "004.png"]
    answers = bottleneck.similar(cache.root, files, top=3)
    assert [a["kind"] for a in answers] == ["image", "image"]
    for answer, key in zip(answers, ["test/circle/001.jpg", "train/stripes/004.png"],
                           strict=True):
        first = answer["neighbours"][0]
        assert first["key"] == key and first["cosine"] > 0.9999
        assert first["split"] == key.split("/")[0] and first["label"] == key.split("/")[1]
        assert len(answer["neighbours"]) == 3


def test_a_row_key_answers_its_nearest_rows_as_brute_force(cache: Cache) -> None:
    data = cache.load(with_paths=True)
    unit = data["features"] / np.linalg.norm(data["features"], axis=1, keepdims=True)
    key = str(data["paths"][7])
    answer = bottleneck.similar(cache.root, [key], top=4)[0]
    cosines = unit @ unit[7]
    order = [i for i in np.argsort(-cosines) if i != 7][:4]
    assert [n["key"] for n in answer["neighbours"]] == [str(data["paths"][i]) for i in order]
    assert [n["cosine"] for n in answer["neighbours"]] == pytest.approx(cosines[order],
                                                                        abs=1e-5)
    assert answer["kind"] == "row key"


def test_cli_prints_and_writes_json_and_refuses_in_one_line(cache: Cache, split_images: Path,
                                                           tmp_path: Path) -> None:
    run = CliRunner().invoke
    image = split_images / "val" / "square" / "000.jpg"
    out = tmp_path / "answers.json"
    result = run(main, ["similar", str(cache.root), str(image), "train/circle/000.jpg",
                        "--top", "2", "--json", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == f"{image} (image):" and lines[3] == "train/circle/000.jpg (row key):"
    assert lines[1].split()[:3] == ["1", "1.0000", "val"] and lines[1].endswith(
        "square  val/square/000.jpg")
    written = json.loads(out.read_text())
    assert [len(a["neighbours"]) for a in written] == [2, 2]
    assert written[1]["neighbours"][0]["key"] != "train/circle/000.jpg"
    result = run(main, ["similar", str(cache.root), "no/such/key.jpg"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("error: no/such/key.jpg could not be answered: neither an "
                                "image file nor a row key")
    assert "Traceback" not in result.output


def test_a_few_image_queries_compile_neither_the_model_nor_the_resize(
        cache: Cache, split_images: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cold image query spent seconds tracing the model and loading numba's kernel for one
    resize: a few images run the model op by op and resize in NumPy, with the same answer."""
    from bottleneck.data import resize
    from bottleneck.extraction import FeatureExtractor
    from bottleneck.models.similar import Searcher

    told = []
    expect = FeatureExtractor.expect_images
    monkeypatch.setattr(FeatureExtractor, "expect_images",
                        lambda self, count, batch: told.append(count) or expect(self, count,
                                                                                 batch))
    monkeypatch.setattr(resize, "compiled", lambda: pytest.fail("the compiled kernel ran"))
    image = split_images / "train" / "stripes" / "004.png"
    answer = Searcher(cache.root).by_images([image], 2)[0]
    assert told == [1]
    assert answer["neighbours"][0]["key"] == "train/stripes/004.png"
    assert answer["neighbours"][0]["cosine"] > 0.9999


def test_a_fresh_process_answers_an_image_without_keras_once_converted(
        cache: Cache, split_images: Path, user_cache_dir: Path) -> None:
    """Building the Keras model cost a cold query seconds: the query that builds it keeps
    its OpenVINO conversion, and the next process answers from that alone, the same rows
    within float rounding, importing neither Keras nor a backend. A damaged conversion is
    made again."""
    pytest.importorskip("openvino")
    if active_backend() != "tensorflow":
        pytest.skip("the conversion is made from a TensorFlow function")
    image = split_images / "test" / "circle" / "001.jpg"
    built = bottleneck.similar(cache.root, [image], top=3)[0]["neighbours"]
    kept = list(user_cache_dir.glob("openvino/*/vgg16-32-*.xml"))
    assert len(kept) == 1 and kept[0].with_suffix(".bin").is_file()
    probe = ("import json, sys, bottleneck\n"
             f"answer = bottleneck.similar({str(cache.root)!r}, [{str(image)!r}], top=3)\n"
             "print(json.dumps([answer[0]['neighbours'], sorted({'keras', 'tensorflow', "
             "'jax', 'torch'} & set(sys.modules))]))\n")
    repo = Path(__file__).resolve().parents[2]
    for damaged in (False, True):
        if damaged:
            kept[0].write_text("<not a model")
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                              cwd=repo, timeout=300)
        assert done.returncode == 0, done.stderr
        neighbours, backends = json.loads(done.stdout.strip().splitlines()[-1])
        assert ("keras" in backends) if damaged else backends == []
        assert [n["key"] for n in neighbours] == [n["key"] for n in built]
        assert [n["cosine"] for n in neighbours] == pytest.approx(
            [n["cosine"] for n in built], abs=1e-5)
    assert kept[0].read_text().startswith("<?xml")  # made again by the query that fell back
