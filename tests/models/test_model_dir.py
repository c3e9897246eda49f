"""Loading a model directory runs no code from it and reads only files its checksums vouch for."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import bottleneck
from bottleneck.cache import Cache
from bottleneck.cli import main
from bottleneck.errors import UserError
from bottleneck.heads import HEADS, HeadFormat, register_head
from bottleneck.heads.sklearn_heads import SKLEARN_FORMAT, logreg
from bottleneck.models.model_dir import load_model, write_checksums

pytest_plugins = ["tests.heads_fixtures"]


class RunsCode:
    """A pickle that creates ``marker`` when it is unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.mkdir, (str(self.marker),)


@pytest.fixture(scope="module")
def logreg_dir(feature_cache: Cache, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model_dirs") / "logreg"
    bottleneck.fit(feature_cache, "logreg", out, params={"C": 0.5, "class_weight": "balanced"})
    return out


@pytest.fixture(scope="module")
def dense_dir(feature_cache: Cache, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model_dirs") / "dense"
    bottleneck.fit(feature_cache, "dense", out, params={"epochs": 2, "hidden": (16,)})
    return out


def copy_of(model_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / model_dir.name
    shutil.copytree(model_dir, copy)
    return copy


def edit_json(path: Path, **changes: object) -> None:
    record = json.loads(path.read_text())
    record.update(changes)
    path.write_text(json.dumps(record))


def test_sklearn_head_is_a_skops_file_that_loads_back(logreg_dir: Path,
                                                      feature_cache: Cache) -> None:
    assert (logreg_dir / "head.skops").is_file() and not (logreg_dir / "head.joblib").exists()
    assert json.loads((logreg_dir / "head.json").read_text())["format_version"] == 3
    with zipfile.ZipFile(logreg_dir / "head.skops") as archive:
        assert "schema.json" in archive.namelist()
        assert all(name.endswith((".json", ".npy")) for name in archive.namelist())
    model = load_model(logreg_dir)
    features = feature_cache.load("test")["features"]
    accuracy = (model.head.predict(features) == feature_cache.load("test")["labels"]).mean()
    assert accuracy == pytest.approx(model.metrics()["test"]["accuracy"])


def test_first_version_pickle_is_refused_with_the_refit_command(
    logreg_dir: Path, feature_cache: Cache, tmp_path: Path
) -> None:
    proof = tmp_path / "the-payload-works"
    pickle.loads(pickle.dumps(RunsCode(proof)))
    assert proof.is_dir()  # unpickling this kind of file does run code
    marker = tmp_path / "unpickled"
    old = copy_of(logreg_dir, tmp_path)
    (old / "head.skops").unlink()
    (old / "head.joblib").write_bytes(pickle.dumps(RunsCode(marker)))
    edit_json(old / "head.json", format_version=1)
    write_checksums(old)  # an intact first-version directory
    with pytest.raises(UserError) as error:
        load_model(old)
    message = str(error.value.message)
    assert "head.joblib pickle" in message and "\n" not in message
    assert f"bottleneck fit {feature_cache.root.resolve()} --head logreg --task classify " \
           f"-p C=0.5 -p class_weight=balanced --out {old} --overwrite" in message
    code = CliRunner().invoke(main, ["evaluate", str(old)])
    assert code.exit_code == 2 and code.stderr.count("\n") == 1 and "--overwrite" in code.stderr
    assert not marker.exists()


@pytest.mark.parametrize("where", ["head.skops", "head.joblib"])
def test_a_pickle_in_a_current_directory_is_never_read(logreg_dir: Path, tmp_path: Path,
                                                       where: str) -> None:
    marker = tmp_path / "unpickled"
    copy = copy_of(logreg_dir, tmp_path)
    if where == "head.joblib":  # a pickle beside the head, its own head file gone
        (copy / "head.skops").unlink()
    (copy / where).write_bytes(pickle.dumps(RunsCode(marker)))
    write_checksums(copy)
    message = "not a skops file" if where == "head.skops" else "head.skops is not covered"
    with pytest.raises(UserError, match=message):
        load_model(copy)
    assert not marker.exists()


@pytest.mark.parametrize(("model", "artifact"), [
    ("logreg", "head.skops"), ("dense", "model.keras"), ("dense", "dense.json"),
    ("dense", "history.json"), ("logreg", "metrics.json"),
])
def test_an_artifact_the_checksums_do_not_list_is_refused(
    logreg_dir: Path, dense_dir: Path, tmp_path: Path, model: str, artifact: str
) -> None:
    copy = copy_of(logreg_dir if model == "logreg" else dense_dir, tmp_path)
    sums = json.loads((copy / "checksums.json").read_text())
    del sums["files"][artifact]
    (copy / "checksums.json").write_text(json.dumps(sums))
    with pytest.raises(UserError, match=f"{artifact} is not covered by checksums.json"):
        load_model(copy)


def test_a_tampered_dense_artifact_is_refused(dense_dir: Path, tmp_path: Path) -> None:
    copy = copy_of(dense_dir, tmp_path)
    load_model(copy)  # intact
    edit_json(copy / "dense.json", estimator="DenseClassifier")
    with pytest.raises(UserError, match="dense.json changed since .*sha256"):
        load_model(copy)


@pytest.mark.parametrize(("name", "content", "message"), [
    ("model.keras", b"not a zip at all", "cannot be loaded in safe mode"),
    ("dense.json", b'{"estimator": "os.system", "params": {}, "fitted": {}}',
     "unknown dense estimator"),
    ("dense.json", b'{"estimator": "DenseClassifier", "params": {"cmd": 1}, "fitted": {}}',
     "parameters DenseClassifier does not take"),
    ("history.json", b"\xff\xfe not json", "history.json is not valid JSON"),
])
def test_foreign_dense_files_are_one_line_refusals(
    dense_dir: Path, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    copy = copy_of(dense_dir, tmp_path)
    (copy / name).write_bytes(content)
    write_checksums(copy)  # the sums pass: the format itself must refuse
    with pytest.raises(UserError, match=message) as error:
        load_model(copy)
    assert "\n" not in error.value.message


def test_a_skops_file_with_a_type_off_the_allow_list_is_refused(
    logreg_dir: Path, feature_cache: Cache, tmp_path: Path
) -> None:
    import skops.io
    from sklearn.neighbors import KNeighborsClassifier

    train = feature_cache.load("train")
    other = KNeighborsClassifier().fit(train["features"], train["labels"])
    assert not skops.io.get_untrusted_types(data=skops.io.dumps(other))  # skops would load it
    copy = copy_of(logreg_dir, tmp_path)
    skops.io.dump(other, copy / "head.skops")
    write_checksums(copy)
    with pytest.raises(UserError, match="outside the allow-list: ObjectNode sklearn.neighbors"):
        load_model(copy)


def test_a_bug_in_a_head_format_keeps_its_traceback(logreg_dir: Path, tmp_path: Path) -> None:
    def broken_load(directory: Path) -> None:
        return {}["a bug"]

    register_head("broken", format=HeadFormat(SKLEARN_FORMAT.save, broken_load,
                                              SKLEARN_FORMAT.files))(logreg)
    try:
        copy = copy_of(logreg_dir, tmp_path)
        edit_json(copy / "head.json", head="broken")
        write_checksums(copy)
        with pytest.raises(KeyError, match="a bug"):
            load_model(copy)
    finally:
        del HEADS["broken"]


def test_python_fit_prints_no_epochs_unless_asked(feature_cache: Cache, tmp_path: Path,
                                                  capfd: pytest.CaptureFixture[str]) -> None:
    quick = {"epochs": 2, "hidden": (8,)}
    bottleneck.fit(feature_cache, "dense", tmp_path / "quiet", params=quick)
    assert "Epoch" not in capfd.readouterr().out
    bottleneck.fit(feature_cache, "dense", tmp_path / "loud", params={**quick, "verbose": 1})
    assert "Epoch 2/2" in capfd.readouterr().out
    head = load_model(tmp_path / "quiet").head
    assert head.predict(np.zeros((1, 512), np.float32)).shape == (1,)
