"""Random argument lists thrown at the CLI never end in a traceback (hypothesis).

Tokens are drawn from what people type: every command and option, paths that exist or not,
numbers (zero, negative, huge), garbage. No token can make the tool touch the network: the
only backbone with ImageNet weights offered is the offline EfficientNet-Lite0.
"""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bottleneck.cache import Cache
from bottleneck.cli import main
from tests.conftest import write_class_folder

pytest_plugins = ["tests.heads_fixtures"]

COMMANDS = ["backbones", "layers", "imagenet", "extract", "info", "targets", "heads", "fit",
            "evaluate", "predict", "bench", "report"]
OPTIONS = ["-b", "--backbone", "-o", "--out", "--weights", "--layer", "--pooling", "--image-size",
           "--dtype", "--batch-size", "--shard-size", "--limit", "--val-percent", "--top",
           "--head", "--heads", "--task", "-p", "--params", "--grid", "--seeds", "--cv", "--jobs",
           "--split", "--sigma", "--seed", "--from-csv", "--synthetic-prices", "--json",
           "--verify", "--overwrite", "--stream", "--class-prices", "-h"]
VALUES = ["0", "-1", "3", "1e9", "nan", "abc", "", "vgg16", "efficientnet_lite0", "nope",
          "none", "avg", "flatten", "float16", "logreg", "dense,logreg", "C=0.1,x", "C=-3",
          "hidden=(8,", "regress", "classify", "test", "block1_pool", "=", "--", "🙂"]


@pytest.fixture(scope="module")
def places(feature_cache: Cache, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(feature_cache.root, root / "cache")
    write_class_folder(root / "images", per_class=1)
    (root / "file.txt").write_text("text")
    (root / "bad.json").write_text("{")
    return [str(root / name) for name in ("cache", "images", "file.txt", "bad.json",
                                          "missing", "out")]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_arguments_never_print_a_traceback(places: list[str], data: st.DataObject) -> None:
    command = data.draw(st.sampled_from(COMMANDS))
    tokens = data.draw(st.lists(st.sampled_from(OPTIONS + VALUES + places), max_size=7))
    if command in ("extract", "imagenet", "layers", "fit", "bench") and "-h" not in tokens:
        # keep every run offline and small: no download, no 224-px extraction
        tokens = [t for t in tokens if t != "--weights"] + ["--weights", "none"] \
            if command == "extract" else tokens
        if command == "imagenet":
            tokens = [t for t in tokens if t not in ("-b", "--backbone", "vgg16")]
        if command == "extract":
            tokens += ["--image-size", "32", "-q"]
    result = CliRunner().invoke(main, [command, *tokens])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{command} {tokens!r} raised {result.exception!r}")
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1, 2)
