"""MODEL_DIR: a fitted head with everything needed to use it again, guarded by sha256 sums.

Layout::

    head.json        head name, params, task, classes, the cache's config, path and feature
                     shape, and the lineage (sha256 of the cache manifest it came from, …)
    ...              the head's own files, written by its registry entry's format
                     (a fine-tuned model: model.keras, the whole pixels → answer model,
                     metrics_before.json, history.json; else the head's format:
                     head.joblib for scikit-learn heads; model.keras, dense.json and
                     history.json for the dense head)
    metrics.json     per split scores
    exports.json     (optional) what `bottleneck export` wrote from it, not under checksums
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bottleneck import _io
from bottleneck._io import sha256_file, write_json
from bottleneck.errors import UserError
from bottleneck.heads import get_head_spec

FORMAT = "bottleneck-model"
FORMAT_VERSION = 1
HEAD_JSON = "head.json"
METRICS_JSON = "metrics.json"
CHECKSUMS_JSON = "checksums.json"


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
        raise UserError(f"{out} already holds a model; pass --overwrite (overwrite=True) to "
                        "replace it, or choose another --out.")


@contextmanager
def staging_dir(out: Path, overwrite: bool = False) -> Iterator[Path]:
    """A temporary sibling of ``out`` to write into; renamed to ``out`` when the block succeeds.

    Readers never see half a model directory, and an earlier model is replaced only once the
    new one is complete.
    """
    check_out_dir(out, overwrite)
    with _io.staging_dir(out) as tmp:
        yield tmp


def save_head(head: Any, head_name: str, directory: Path) -> list[str]:
    """Write the fitted head in its registry entry's format; returns the file names."""
    return get_head_spec(head_name).format.save(head, directory)


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
    def takes_images(self) -> bool:
        """True for a fine-tuned model: ``head`` takes pixels (an ImageModel), not features."""
        return self.info.get("input") == "images"

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
        return _io.read_json(self.root / METRICS_JSON)


def load_model(path: str | Path) -> Model:
    """Open MODEL_DIR after checking every file's sha256; Keras loads in safe mode."""
    root = Path(path).expanduser()
    if not root.is_dir():
        _io.recover_staging(root)  # a fit that died while replacing this model
    if not root.is_dir():
        raise UserError(f"model directory not found: {path}; train one with "
                        "`bottleneck fit CACHE --head NAME --out MODEL_DIR`.")
    if not is_model_dir(root):
        raise UserError(f"{path} is not a bottleneck model directory (no valid {HEAD_JSON}); "
                        "pass a directory written by `bottleneck fit`.")
    verify_checksums(root)
    info = json.loads((root / HEAD_JSON).read_text())
    return Model(root, info, _load_head(root, info))


def _load_head(root: Path, info: dict[str, Any]) -> Any:
    head_name = info["head"]
    try:
        if info.get("input") == "images":
            from bottleneck.models.assemble import load_image_model

            return load_image_model(root, info)
        return get_head_spec(head_name).format.load(root)
    except (ValueError, TypeError) as exc:
        text = str(exc).strip() or type(exc).__name__
        reason = text.splitlines()[0].split(". ")[0]
        raise UserError(f"{root}: the '{head_name}' head cannot be loaded in safe mode "
                        f"({reason}); refusing it: re-run fit.") from None
