"""File names that look the same are the same: Unicode lets ``é`` be written as one code
point (NFC, what Linux and Windows tools usually write) or as ``e`` plus a combining accent
(NFD, what macOS has long written). A CSV from one system and files from another then name one
image two ways. The tool never renames the user's files: it compares :func:`name_key` keys,
and :func:`find_on_disk` finds the file a name means whichever form it was written in.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

FORM = "NFC"


def name_key(name: str) -> str:
    """``name`` in one normal form (NFC): equal for names that look the same."""
    return name if name.isascii() else unicodedata.normalize(FORM, name)


def find_on_disk(path: Path) -> Path | None:
    """The existing file or folder that ``path`` names, its components compared by
    :func:`name_key` where the exact name is not there (``path`` itself when it exists);
    None when there is none, or when several entries of a folder match one component."""
    if os.path.lexists(path):
        return path
    parts = path.parts
    found = Path(parts[0]) if path.is_absolute() else Path()
    for part in parts[1:] if path.is_absolute() else parts:
        exact = found / part
        if os.path.lexists(exact):
            found = exact
            continue
        wanted = name_key(part)
        try:
            matches = [entry for entry in os.listdir(found) if name_key(entry) == wanted]
        except OSError:  # not a folder, or one we may not list
            return None
        if len(matches) != 1:
            return None
        found = found / matches[0]
    return found
