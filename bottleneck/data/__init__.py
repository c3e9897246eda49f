"""Where pixels come from: sources (a registry of kinds) and the one decode + resize."""

from bottleneck.data.arrays import fashion_mnist_source, npz_source
from bottleneck.data.folder import FolderSource
from bottleneck.data.sources import (
    SOURCE_KINDS,
    SPLITS,
    Item,
    Source,
    SourceKind,
    SourceOptions,
    register_source_kind,
)
from bottleneck.errors import UserError

register_source_kind(SourceKind("fashion-mnist", lambda spec: spec == "fashion-mnist",
                                lambda spec, o: fashion_mnist_source(o.data_dir, o.val_percent,
                                                                     o.limit)))
register_source_kind(SourceKind("npz", lambda spec: spec.endswith(".npz"),
                                lambda spec, o: npz_source(spec, o.val_percent, o.test_percent,
                                                           o.limit)))
register_source_kind(SourceKind("folder", lambda spec: True,
                                lambda spec, o: FolderSource(spec, o.val_percent,
                                                             o.test_percent, o.limit)))



def open_source(
    spec: str, data_dir: str | None = None, val_percent: float = 10, test_percent: float = 10,
    limit: int | None = None,
) -> Source:
    """Open SOURCE with the first registered kind that recognises it."""
    options = SourceOptions(data_dir, val_percent, test_percent, limit)
    for kind in SOURCE_KINDS:
        if kind.matches(spec):
            return kind.open(spec, options)
    raise UserError(f"cannot read source {spec!r}; give a folder of class folders, "
                    "fashion-mnist or an .npz file.")


__all__ = ["SOURCE_KINDS", "SPLITS", "FolderSource", "Item", "Source", "SourceKind",
           "fashion_mnist_source", "npz_source", "open_source", "register_source_kind"]
