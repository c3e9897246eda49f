"""What a new user tripped over following the README with a small dataset of their own:
info --verify says what it checked, each damaged file gets advice that fits it, a folder that
holds caches names them, predict answers each file once, counts read as English, and the
README's examples after `targets` say which task they mean."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import bottleneck
from bottleneck._text import plural
from bottleneck.benching.leaderboard import leak_lines
from bottleneck.cache import Cache, open_cache
from bottleneck.cli import main
from bottleneck.heads import HEADS
from tests.conftest import write_class_folder

ROOT = Path(__file__).resolve().parents[2]
ARGS = {"backbone": "vgg16", "weights": "none", "image_size": 32, "progress": False}
PRICES = {"circle": 10, "square": 20, "stripes": 30}


def invoke(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert not result.exception or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_class_folder(tmp_path_factory.mktemp("user_images"), per_class=6)


@pytest.fixture(scope="module")
def priced(images: Path, tmp_path_factory: pytest.TempPathFactory) -> Cache:
    """A cache of 18 images in 3 shards, with synthetic prices attached."""
    from bottleneck.cache.targets import set_targets

    root = tmp_path_factory.mktemp("user_cache")
    (root / "prices.json").write_text(json.dumps(PRICES))
    cache = bottleneck.extract(str(images), out=root / "cache", shard_size=6, **ARGS)
    set_targets(cache.root, synthetic=True, seed=1, class_prices_file=root / "prices.json")
    return open_cache(cache.root)


def test_info_verify_says_what_it_checked(priced: Cache) -> None:
    code, plain, _ = invoke("info", priced.root)
    assert code == 0 and "verified" not in plain
    code, verified, _ = invoke("info", priced.root, "--verify")
    assert code == 0
    files = [*priced.shard_paths, priced.targets_path]
    size = sum(p.stat().st_size for p in files)
    line = (f"verified   4 files (3 shards + targets), {size:,} bytes: all sha256 equal to "
            "the manifest's")
    sources = "sources    every source file the rows were computed from is unchanged"
    assert verified.splitlines() == [*plain.splitlines()[:7], line, sources,
                                     *plain.splitlines()[7:]]
    code, out, _ = invoke("info", priced.root, "--json", "--verify")
    assert code == 0
    verification = json.loads(out)["verification"]
    sources = verification.pop("sources")
    assert verification == {
        "files": 4, "shards": 3, "targets_file": True, "bytes": size, "all_sha256_equal": True}
    assert sources["changed"] == [] and sources["missing"] == [] and sources["checked"] > 0
    assert json.loads(invoke("info", priced.root, "--json")[1])["verification"] is None


@pytest.mark.parametrize("damaged", ["shard", "targets", "manifest"])
def test_each_damaged_file_gets_its_own_advice(damaged: str, priced: Cache,
                                               tmp_path: Path) -> None:
    root = Path(shutil.copytree(priced.root, tmp_path / "cache"))
    path = {"shard": root / priced.shard_paths[1].name, "targets": root / priced.targets_path.name,
            "manifest": root / "manifest.json"}[damaged]
    path.write_bytes(path.read_bytes()[:-40] + b"x" * 40)
    code, out, err = invoke("info", root, "--verify")
    assert code == 2 and not out and len(err.strip().splitlines()) == 1
    assert err.startswith(f"error: {path} "), err
    if damaged == "shard":
        assert "changed since it was written" in err and "extract again into a new --out" in err
        assert "targets" not in err
    elif damaged == "targets":
        assert "changed since it was attached" in err and "features are intact" in err
        assert f"bottleneck targets {root} " in err and "extract" not in err
    else:
        assert "is damaged" in err and f"delete {root} yourself" in err


@pytest.fixture(scope="module")
def layered(images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output of a two-layer extract: OUT/block4_pool/ and OUT/block5_pool/."""
    out = tmp_path_factory.mktemp("user_layers") / "vgg16"
    bottleneck.extract(str(images), out=out, layer=["block4_pool", "block5_pool"], **ARGS)
    return out


@pytest.mark.parametrize("command", ["info", "fit", "bench"])
def test_a_folder_that_holds_caches_names_them(command: str, layered: Path,
                                               tmp_path: Path) -> None:
    out = tmp_path / "out"
    extra = {"info": [], "fit": ["--head", "logreg", "-o", out], "bench": ["-o", out]}[command]
    code, _, err = invoke(command, layered, *extra)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{layered} is not a cache but holds 2 caches (block4_pool, block5_pool)" in err
    assert f"e.g. {layered / 'block4_pool'}" in err and f"`bottleneck bench {layered}/*`" in err
    assert "run extract first" not in err and not out.exists()


def test_a_folder_of_single_caches_and_an_empty_folder(layered: Path, tmp_path: Path) -> None:
    shutil.copytree(layered / "block5_pool", tmp_path / "only")
    err = invoke("info", tmp_path)[2]
    assert f"{tmp_path} is not a cache but holds 1 cache (only)" in err
    (tmp_path / "empty").mkdir()
    assert "not a bottleneck cache (no manifest.json of ours); run extract first" in invoke(
        "info", tmp_path / "empty")[2]


def test_predict_answers_each_file_once(priced: Cache, images: Path, tmp_path: Path) -> None:
    bottleneck.fit(priced, "logreg", tmp_path / "model", task="classify", progress=False)
    one = images / "square" / "002.jpg"
    code, out, _ = invoke("predict", tmp_path / "model", one, images / "square",
                          images / "square" / ".." / "square" / "002.jpg", "--json")
    assert code == 0
    paths = [Path(r["path"]) for r in json.loads(out)]
    assert paths[0] == one
    assert sorted(p.resolve() for p in paths) == sorted(
        p.resolve() for p in (images / "square").iterdir())


def test_counts_read_as_english(images: Path, tmp_path: Path) -> None:
    assert [plural(n, "shard") for n in (0, 1, 2)] == ["0 shards", "1 shard", "2 shards"]
    assert [plural(n, "class", "classes") for n in (1, 3)] == ["1 class", "3 classes"]
    source = shutil.copytree(images, tmp_path / "images")
    (source / "circle" / "broken.jpg").write_text("not a picture")
    code, out, err = invoke("extract", source, "-b", "vgg16", "--weights", "none",
                            "--image-size", "32", "--shard-size", "100", "-o", tmp_path / "c", "-q")
    assert code == 0 and "cached 18 images" in out
    assert "skipped 1 unreadable file (listed in" in err
    info = invoke("info", tmp_path / "c")[1]
    assert re.search(r"18 rows in 1 shard$", info, re.M) and "skipped 1 file:" in info
    group = [{"path": "a.jpg", "split": "train"}, {"path": "b.jpg", "split": "test"}]
    assert leak_lines([group])[0] == "leak check: 1 image found in more than one split:"


def test_readme_examples_after_targets_name_their_task() -> None:
    """After `bottleneck targets` a head that can regress regresses by default: every `fit`
    example of such a head from there on says which task it means."""
    readme = (ROOT / "README.md").read_text()
    blocks = [b for b in readme.split("```")[1::2] if "\nbottleneck targets " in b]
    fits = [line for block in blocks for line in block[block.index("\nbottleneck targets "):]
            .splitlines() if line.startswith("bottleneck fit ")]
    assert fits
    for line in fits:
        head = re.search(r"--head (\S+)", line).group(1)
        if "regress" in HEADS[head].tasks:
            assert "--task " in line, line
