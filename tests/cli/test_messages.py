"""Messages speak the caller's language: options as flags under the CLI, as Python arguments
from the API."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import bottleneck
from bottleneck.cache import Cache
from bottleneck.cli import main
from bottleneck.errors import UserError

pytest_plugins = ["tests.heads_fixtures"]


def test_errors_name_python_arguments_from_python_and_flags_from_the_cli(
        feature_cache: Cache, tmp_path: Path) -> None:
    model = tmp_path / "model"
    bottleneck.fit(feature_cache, "logreg", model)
    with pytest.raises(UserError) as python:
        bottleneck.fit(feature_cache, "logreg", model)
    assert "pass overwrite=True to replace it, or choose another out." in str(python.value)
    assert "--" not in str(python.value)
    cli = CliRunner().invoke(main, ["fit", str(feature_cache.root), "--head", "logreg", "-o",
                                    str(model)])
    assert cli.exit_code == 2
    assert "pass --overwrite to replace it, or choose another --out." in cli.stderr
    assert "overwrite=True" not in cli.stderr
    with pytest.raises(UserError, match=r"^seeds must be ≥ 1 and cv ≥ 2\.$"):
        bottleneck.bench([feature_cache.root], seeds=0, out=tmp_path / "bench")
    cli = CliRunner().invoke(main, ["bench", str(feature_cache.root), "--seeds", "0", "-o",
                                    str(tmp_path / "bench")])
    assert cli.stderr.strip() == "error: --seeds must be ≥ 1 and --cv ≥ 2."


def test_imagenet_takes_a_weights_file_with_the_top(tmp_path: Path) -> None:
    """Offline, `imagenet` runs any backbone from a weights file with its classifier top (what
    its download advice names)."""
    import numpy as np
    from PIL import Image

    from bottleneck.backbones import get_backbone
    from tests.conftest import draw_image

    model = get_backbone("mobilenet").build_with_top(None, 224)
    weights = tmp_path / "mobilenet_top.weights.h5"
    model.save_weights(weights)
    Image.fromarray(draw_image("circle", np.random.default_rng(0))).save(tmp_path / "a.jpg")
    cli = CliRunner().invoke(main, ["imagenet", str(tmp_path / "a.jpg"), "-b", "mobilenet",
                                    "--weights", str(weights), "--top", "2"])
    assert cli.exit_code == 0, cli.output
    path, ranked = cli.stdout.strip().split("\t")
    assert path.endswith("a.jpg") and len(ranked.split(", ")) == 2


def test_no_start_up_chatter_on_stderr(tmp_path: Path) -> None:
    """`layers` (TensorFlow's absl/oneDNN lines) and `heads` (pandas mistaking this package for
    its optional accelerator of the same name) print nothing on stderr."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",
                                                            "KERAS_BACKEND")}
    env["PYTHONPATH"] = str(Path(bottleneck.__file__).parents[1])
    for args in (["layers", "vgg16", "--image-size", "32"], ["heads"]):
        done = subprocess.run([sys.executable, "-c", "from bottleneck.cli import main; main()",
                               *args], env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0 and done.stdout, done.stderr
        assert done.stderr == "", (args, done.stderr)


def test_info_speaks_words_and_aligns_its_class_table(feature_cache: Cache) -> None:
    from bottleneck.cache.summary import describe_record

    out = CliRunner().invoke(main, ["info", str(feature_cache.root)]).stdout
    source = next(line for line in out.splitlines() if line.startswith("source"))
    root = feature_cache.manifest.source["root"]
    assert source == f"source     folder {root}, splits folders, val 10%, test 10%"
    assert "None" not in out and "{" not in out and "1 shards" not in out
    table = out[out.index("\nclass"):].strip().splitlines()
    assert len({len(line) for line in table}) == 1  # every row as wide as the heading
    assert table[0].split() == ["class", "train", "val", "test"]
    assert describe_record({"kind": "npz", "path": "/a.npz", "val_percent": 10.0,
                            "test_percent": 12.5, "limit": None}) == \
        "npz /a.npz, val 10%, test 12.5%"
    narrow = {"kind": "folder", "root": "/p", "classes": ["a", "b"]}
    assert describe_record(narrow) == "folder /p, classes a, b"


@pytest.mark.parametrize("args", [["--bogus"], ["fit"], ["no-such-command"],
                                  ["bench", "c", "--seeds", "x", "-o", "r"]])
def test_every_error_says_error_the_same_way(args: list[str]) -> None:
    """click's usage errors take the prefix of the tool's own errors: `error:`, exit 2."""
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "Error:" not in result.stderr
    assert result.stderr.startswith("Usage: ")


def test_predict_warns_of_an_image_far_below_the_model_input(feature_cache: Cache,
                                                             tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from tests.conftest import draw_image

    bottleneck.fit(feature_cache, "logreg", tmp_path / "model")  # VGG16 at 32 px
    rng = np.random.default_rng(0)
    Image.fromarray(draw_image("circle", rng, (5, 7))).save(tmp_path / "tiny.png")
    Image.fromarray(draw_image("circle", rng)).save(tmp_path / "fine.png")
    cli = CliRunner().invoke(main, ["predict", str(tmp_path / "model"), str(tmp_path / "tiny.png"),
                                    str(tmp_path / "fine.png")])
    assert cli.exit_code == 0, cli.output
    assert len(cli.stdout.strip().splitlines()) == 2  # both are still predicted
    assert cli.stderr.strip() == (
        f"warning: {tmp_path / 'tiny.png'} is 7×5 pixels, far below the model's 32×32 input: "
        "upscaled 5×, so this prediction is unreliable.")
    results = bottleneck.predict(tmp_path / "model", [tmp_path / "tiny.png"])
    assert "upscaled 5×" in results[0]["warning"] and "class" in results[0]
