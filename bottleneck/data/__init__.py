"""Where pixels come from: sources (a registry of kinds) and the one decode + resize."""

from typing import Any

from bottleneck.data.arrays import KERAS_DOWNLOAD, fashion_mnist_source, npz_source
from bottleneck.data.folder import FolderSource
from bottleneck.data.remote_folder import RemoteFolderSource
from bottleneck.data.remote_folder import reopen as reopen_remote_folder
from bottleneck.data.sources import (
    SOURCE_KINDS,
    SPLITS,
    Item,
    Source,
    SourceKind,
    SourceOptions,
    register_source_kind,
)
from bottleneck.data.webdataset import WebDatasetSource, is_webdataset
from bottleneck.data.webdataset import reopen as reopen_webdataset
from bottleneck.errors import UserError
from bottleneck.storage.location import is_url

register_source_kind(SourceKind(
    "fashion-mnist", lambda spec: spec == "fashion-mnist",
    lambda spec, o: fashion_mnist_source(o.data_dir, o.val_percent, o.limit),
    lambda d: fashion_mnist_source(None if d["data_dir"] == KERAS_DOWNLOAD else d["data_dir"],
                                   d["val_percent"], d["limit"])))
register_source_kind(SourceKind(
    "npz", lambda spec: spec.endswith(".npz"),
    lambda spec, o: npz_source(spec, o.val_percent, o.test_percent, o.limit),
    lambda d: npz_source(d["path"], d["val_percent"], d["test_percent"], d["limit"])))
register_source_kind(SourceKind(
    "webdataset", is_webdataset,
    lambda spec, o: WebDatasetSource(spec, o.val_percent, o.test_percent, o.limit, o.label_key),
    reopen_webdataset))
register_source_kind(SourceKind(
    "folder-url", is_url,
    lambda spec, o: RemoteFolderSource(spec, o.val_percent, o.test_percent, o.limit),
    reopen_remote_folder, location=("root",)))
register_source_kind(SourceKind(
    "folder", lambda spec: True,
    lambda spec, o: FolderSource(spec, o.val_percent, o.test_percent, o.limit, o.exclude),
    lambda d: FolderSource(d["root"], d["val_percent"], d["test_percent"], d["limit"]),
    location=("root",)))


def open_source(
    spec: str, data_dir: str | None = None, val_percent: float = 10, test_percent: float = 10,
    limit: int | None = None, exclude: tuple[str, ...] = (), label_key: str | None = None,
) -> Source:
    """Open SOURCE with the first registered kind that recognises it; ``exclude``: paths
    never read as data (the run's --out, where it lies inside a folder source)."""
    options = SourceOptions(data_dir, val_percent, test_percent, limit, tuple(map(str, exclude)),
                            label_key)
    for kind in SOURCE_KINDS:
        if kind.matches(spec):
            return kind.open(spec, options)
    raise UserError(f"cannot read source {spec!r}; give a folder of class folders, "
                    "WebDataset .tar shards, fashion-mnist or an .npz file.")


def location_fields(description: dict[str, Any]) -> tuple[str, ...]:
    """The recorded fields (``source.root``) that only say where a source of this kind is."""
    kind = next((k for k in SOURCE_KINDS if k.name == description.get("kind")), None)
    return tuple(f"source.{name}" for name in (kind.location if kind else ()))


def reopen_source(description: dict[str, Any]) -> Source:
    """Open the source a cache was made from, from what its manifest recorded."""
    kind = next((k for k in SOURCE_KINDS if k.name == description.get("kind")), None)
    if kind is None or kind.reopen is None:
        raise UserError(f"cannot reopen a source of kind {description.get('kind')!r}; kinds "
                        "that can: " + ", ".join(k.name for k in SOURCE_KINDS if k.reopen) + ".")
    try:
        return kind.reopen(description)
    except KeyError as exc:
        raise UserError(f"the recorded {kind.name} source lacks {exc}; re-extract the cache "
                        "with this version of bottleneck.") from None


__all__ = ["SOURCE_KINDS", "SPLITS", "FolderSource", "Item", "Source", "SourceKind",
           "fashion_mnist_source", "location_fields", "npz_source", "open_source",
           "register_source_kind", "reopen_source", "RemoteFolderSource", "WebDatasetSource"]
