"""Progress bars: images/s and ETA on a terminal, silent in logs and pipes or with --quiet."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm


@contextmanager
def progress_bar(total: int, description: str, enabled: bool = True,
                 unit: str = "img") -> Iterator[tqdm]:
    """A tqdm bar on stderr that only draws when stderr is a terminal."""
    show = enabled and sys.stderr.isatty()
    with tqdm(total=total, desc=description, unit=unit, unit_scale=False, disable=not show,
              dynamic_ncols=True, smoothing=0.1, file=sys.stderr) as bar:
        yield bar
