"""MODEL_DIR: a fitted head with everything needed to use it again, guarded by sha256 sums.

Layout::

    head.json        head name, params, task, classes, the cache's config, path and feature shape
    head.joblib      a scikit-learn head (pickle), or
    model.keras      the dense head's network, with dense.json (params) and history.json
    metrics.json     per split scores
    *.png            plots
    checksums.json   sha256 of every file above

:func:`load_model` checks every sha256 before reading anything. A joblib file is a pickle,
which runs code when loaded: it is only loaded after its checksum passes, so a file changed
after ``fit`` wrote it is refused. (The sums catch changed or corrupted files; they do not make
a directory from an untrusted author safe, since such an author can rewrite the sums too.)
Keras files load with ``safe_mode=True``, which refuses layers that carry code.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.cache import sha256_file
from bottleneck.errors import UserError

FORMAT = "bottleneck-model"
FORMAT_VERSION = 1
HEAD_JSON = "head.json"
METRICS_JSON = "metrics.json"
CHECKSUMS_JSON = "checksums.json"
JOBLIB_FILE = "head.joblib"


def to_jsonable(value: Any) -> Any:
    """Tuples, numpy values and paths → plain JSON values; other objects → their repr."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def write_json(path: Path, data: Any) -> None:
    """Pretty JSON, UTF-8."""
    path.write_text(json.dumps(to_jsonable(data), indent=2) + "\n", encoding="utf-8")


def is_model_dir(path: Path) -> bool:
    """True if ``path`` holds a ``head.json`` of this format."""
    try:
        return json.loads((path / HEAD_JSON).read_text())["format"] == FORMAT
    except (OSError, ValueError, KeyError, TypeError):
        return False


def check_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse to write over anything but an earlier model (and that only with ``overwrite``)."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    if not is_model_dir(out):
        raise UserError(f"{out} exists and is not a bottleneck model directory; choose another "
                        "--out.")
    if not overwrite:
        raise UserError(f"{out} already holds a model; pass --overwrite to replace it or choose "
                        "another --out.")


@contextmanager
def staging_dir(out: Path, overwrite: bool = False) -> Iterator[Path]:
    """A temporary sibling of ``out`` to write into; renamed to ``out`` when the block succeeds.

    Readers never see half a model directory.
    """
    check_out_dir(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def save_head(head: Any, directory: Path) -> list[str]:
    """Write the fitted head: its own ``save`` if it has one (Keras), else joblib."""
    if hasattr(head, "save") and hasattr(head, "model_"):
        return head.save(directory)
    import joblib

    joblib.dump(head, directory / JOBLIB_FILE)
    return [JOBLIB_FILE]


def write_checksums(directory: Path) -> dict[str, str]:
    """sha256 of every file under ``directory`` into ``checksums.json``; returns them."""
    sums = {
        path.relative_to(directory).as_posix(): sha256_file(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != CHECKSUMS_JSON
    }
    write_json(directory / CHECKSUMS_JSON, {"algorithm": "sha256", "files": sums})
    return sums


def verify_checksums(directory: Path) -> None:
    """Raise a UserError unless every file listed in ``checksums.json`` is unchanged."""
    try:
        sums = json.loads((directory / CHECKSUMS_JSON).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{directory} has no readable {CHECKSUMS_JSON}: it is incomplete or not "
                        "written by `bottleneck fit`; re-run fit.") from None
    if HEAD_JSON not in sums:
        raise UserError(f"{directory}/{CHECKSUMS_JSON} does not cover {HEAD_JSON}; re-run fit.")
    for name, expected in sums.items():
        path = directory / name
        if not path.is_file():
            raise UserError(f"{path} is missing from the model directory; re-run fit.")
        if sha256_file(path) != expected:
            raise UserError(f"{path} changed since `bottleneck fit` wrote it (sha256 mismatch); "
                            "refusing to load it: restore the file or re-run fit.")


@dataclass
class Model:
    """A loaded MODEL_DIR: the fitted head and what ``head.json`` records about it."""

    root: Path
    info: dict[str, Any]
    head: Any

    @property
    def head_name(self) -> str:
        return self.info["head"]

    @property
    def task(self) -> str:
        return self.info["task"]

    @property
    def classes(self) -> list[str]:
        return self.info["classes"]

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(self.info["feature_shape"])

    @property
    def config(self) -> dict[str, Any]:
        """The extraction config of the cache the head was trained on."""
        return self.info["config"]

    def metrics(self) -> dict[str, Any]:
        """The scores ``fit`` recorded, per split."""
        return json.loads((self.root / METRICS_JSON).read_text())


def load_model(path: str | Path) -> Model:
    """Open MODEL_DIR after checking every file's sha256; Keras loads in safe mode."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise UserError(f"model directory not found: {path}; train one with "
                        "`bottleneck fit CACHE --head NAME --out MODEL_DIR`.")
    if not is_model_dir(root):
        raise UserError(f"{path} is not a bottleneck model directory (no valid {HEAD_JSON}); "
                        "pass a directory written by `bottleneck fit`.")
    verify_checksums(root)
    info = json.loads((root / HEAD_JSON).read_text())
    return Model(root, info, _load_head(root))


def _load_head(root: Path) -> Any:
    from bottleneck.heads.dense import MODEL_FILE, DenseHead

    if (root / MODEL_FILE).is_file():
        try:
            return DenseHead.load(root)
        except (ValueError, TypeError) as exc:
            text = str(exc).strip() or type(exc).__name__
            reason = text.splitlines()[0].split(". ")[0]
            raise UserError(f"{root / MODEL_FILE} cannot be loaded in Keras safe mode "
                            f"({reason}); refusing it: re-run fit.") from None
    import joblib

    return joblib.load(root / JOBLIB_FILE)
