"""MODEL_DIR: a fitted head with everything needed to use it again, guarded by sha256 sums.

Layout (``format_version`` 3)::

    head.json        head name, params, task, classes, the cache's config, path and feature
                     shape, and the lineage (sha256 of the cache manifest it came from, …)
    ...              the head's own files, written by its registry entry's format
                     (a fine-tuned model: model.keras, the whole pixels → answer model,
                     metrics_before.json, history.json; else the head's format:
                     head.skops for scikit-learn heads; model.keras, dense.json and
                     history.json for the dense head)
    metrics.json     per split scores
    exports.json     (optional) what `bottleneck export` wrote from it, not under checksums
    predictions/     (optional) per-row predictions `evaluate` stored, not under checksums
                     (see :mod:`bottleneck.models.predictions`)
    *.png            plots
    checksums.json   sha256 of every file above

Loading never runs code from the directory. :func:`load_model` reads ``head.json``, then
checks every listed sha256, and refuses to go on unless ``checksums.json`` lists every file it
will read (``head.json``, ``metrics.json`` and the files the head's format declares) with the
digest the file has now. The head formats hold no pickle: scikit-learn heads are skops files
loaded against an allow-list of classes, Keras files load with ``safe_mode=True`` (no layers
that carry code). Format 2 differs only in what ``head.skops`` holds (the bare fitted
pipeline, not the head estimator around it) and loads as the head it was. A directory of
format 1 (scikit-learn heads as a ``head.joblib`` pickle) is refused, never unpickled, with the
command that re-fits it. The sums catch changed or
corrupted files; they are not a signature (whoever can change a file can rewrite the sums),
which is why the formats themselves must be safe to read.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bottleneck.errors import UserError, arg
from bottleneck.storage import atomic as _io
from bottleneck.storage.atomic import sha256_file, write_json
from bottleneck.storage.location import is_url

FORMAT = "bottleneck-model"
# 3: head.skops holds the head estimator; 2: its bare pipeline; 1: a head.joblib pickle
FORMAT_VERSION = 3
READ_VERSIONS = (2, 3)
HEAD_JSON = "head.json"
METRICS_JSON = "metrics.json"
CHECKSUMS_JSON = "checksums.json"
KERAS_FILE = "model.keras"  # a fine-tuned model, pixels in
INPUT_IMAGES = "images"  # head.json "input" of a model that takes pixels
PREDICTIONS_DIR = "predictions"
# records written after the model, never read to load it, so never under checksums.json
OUTSIDE_CHECKSUMS = ("exports.json", PREDICTIONS_DIR)


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
        raise UserError(f"{out} already holds a model; pass "
                        f"{arg('--overwrite', 'overwrite=True')} to replace it, or choose "
                        f"another {arg('--out', 'out')}.")


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
    from bottleneck.heads import get_head_spec

    head_format = get_head_spec(head_name).format
    written = head_format.save(head, directory)
    missing = set(head_format.files) - set(written)
    if missing:  # the format would load files it did not write: a bug in the format
        raise RuntimeError(f"the '{head_name}' format did not write {sorted(missing)}")
    return written


def write_checksums(directory: Path) -> dict[str, str]:
    """sha256 of every file under ``directory`` (but the records of ``OUTSIDE_CHECKSUMS``)
    into ``checksums.json``; returns them."""
    sums = {
        path.relative_to(directory).as_posix(): sha256_file(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != CHECKSUMS_JSON
        and path.relative_to(directory).parts[0] not in OUTSIDE_CHECKSUMS
    }
    write_json(directory / CHECKSUMS_JSON, {"algorithm": "sha256", "files": sums})
    return sums


def verify_checksums(directory: Path, required: Iterable[str] = (HEAD_JSON,)) -> None:
    """Raise a UserError unless every file listed in ``checksums.json`` is unchanged and every
    ``required`` file (those the caller will read) is listed."""
    try:
        sums = json.loads((directory / CHECKSUMS_JSON).read_text())["files"]
        if not isinstance(sums, dict):
            raise TypeError("files is not a mapping")
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{directory} has no readable {CHECKSUMS_JSON}: it is incomplete or not "
                        "written by `bottleneck fit`; re-run fit.") from None
    for name in required:
        if name not in sums:
            raise UserError(f"{directory / name} is not covered by {CHECKSUMS_JSON}; refusing "
                            "to load it: re-run fit.")
    for name, expected in sums.items():
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise UserError(f"{directory}/{CHECKSUMS_JSON} lists {name!r}, outside the model "
                            "directory; re-run fit.")
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
    location: str | None = None  # the URL it was read from (``root``: its local copy)

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
    """Open MODEL_DIR (a folder, or a URL: downloaded whole first) after checking the sha256
    of every file it reads; see the module doc."""
    if is_url(path):
        from bottleneck.storage.location import redact_url
        from bottleneck.storage.remote_output import local_copy

        model = load_model(local_copy(str(path)))
        model.location = redact_url(str(path)).rstrip("/")
        return model
    root = Path(path).expanduser()
    if not root.is_dir():
        _io.recover_staging(root)  # a fit that died while replacing this model
    if not root.is_dir():
        raise UserError(f"model directory not found: {path}; train one with "
                        "`bottleneck fit CACHE --head NAME --out MODEL_DIR`.")
    if not is_model_dir(root):
        raise UserError(f"{path} is not a bottleneck model directory (no valid {HEAD_JSON}); "
                        "pass a directory written by `bottleneck fit`.")
    info = json.loads((root / HEAD_JSON).read_text())
    if info.get("format_version") not in READ_VERSIONS:
        raise UserError(_refit_message(root, info))
    from bottleneck.heads import get_head_spec  # here: checking a path needs no head

    spec = get_head_spec(str(info.get("head")))
    if info.get("input") == INPUT_IMAGES:  # a fine-tuned model: pixels in, answers out
        verify_checksums(root, (HEAD_JSON, METRICS_JSON, KERAS_FILE))
        return Model(root, info, _load_image_model(root, info))
    verify_checksums(root, (HEAD_JSON, METRICS_JSON, *spec.format.files))
    return Model(root, info, _load_head(root, spec.name))


def share_records(model: Model, paths: Iterable[Path]) -> None:
    """Records written into a model's folder outside ``checksums.json`` (``exports.json``,
    ``predictions/``): for a model read from a URL (``root`` is its local copy), each is
    uploaded whole to the same place there."""
    if model.location is None:
        return
    from bottleneck.storage.remote_output import publish_paths

    publish_paths([(f"{model.location}/{p.relative_to(model.root).as_posix()}", p)
                   for p in paths])


def _load_image_model(root: Path, info: dict[str, Any]) -> Any:
    from bottleneck.models.assemble import load_image_model

    try:
        return load_image_model(root / KERAS_FILE, info)
    except (ValueError, TypeError) as exc:  # Keras safe mode refuses a layer that runs code
        reason = (str(exc).strip() or type(exc).__name__).splitlines()[0].split(". ")[0]
        raise UserError(f"{root}: the fine-tuned model cannot be loaded in safe mode "
                        f"({reason}); refusing it: re-run finetune.") from None


def _refit_message(root: Path, info: dict[str, Any]) -> str:
    """One line: this directory is of another format version; the command that re-fits it."""
    version = info.get("format_version")
    why = (" (its scikit-learn head is a head.joblib pickle, which could run code when loaded)"
           if (root / "head.joblib").exists() else "")
    params = info.get("params") if isinstance(info.get("params"), dict) else {}
    words = ["bottleneck", "fit", str(info.get("cache", "CACHE")), "--head",
             str(info.get("head", "NAME")), "--task", str(info.get("task", "classify"))]
    for key, value in params.items():
        text = ",".join(map(str, value)) + ("," if len(value) == 1 else "") \
            if isinstance(value, list) else str(value)
        words += ["-p", f"{key}={text}"]
    command = " ".join(shlex.quote(word) for word in [*words, "--out", str(root)])
    readable = " and ".join(map(str, READ_VERSIONS))
    return (f"{root} was written in model format {version}{why}; this bottleneck reads formats "
            f"{readable} only and will not load it: re-fit with `{command} --overwrite`."
            ).replace("\n", " ")


def _load_head(root: Path, head_name: str) -> Any:
    """The head from its format's files; a file its format refuses is one line, not a trace."""
    from bottleneck.heads import HeadFileError, get_head_spec

    spec = get_head_spec(head_name)
    try:
        return spec.format.load(root)
    except HeadFileError as exc:
        text = str(exc).strip() or type(exc).__name__
        reason = text.splitlines()[0].split(". ")[0]
        raise UserError(f"{root}: the '{head_name}' head cannot be loaded in safe mode "
                        f"({reason}); refusing it: re-run fit.") from None
