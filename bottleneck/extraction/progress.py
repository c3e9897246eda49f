"""Progress bars: images/s and ETA on a terminal, silent in logs and pipes or with --quiet."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm

FALLBACK_SIZE = {"ncols": 80, "nrows": 24}  # tqdm draws nothing on a terminal of size 0


def _terminal_columns() -> int:
    """Width of the terminal on stderr; 0 where it reports none (a pty without a size)."""
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 0


@contextmanager
def progress_bar(total: int, description: str, enabled: bool = True,
                 unit: str = "img") -> Iterator[tqdm]:
    """A tqdm bar on stderr that only draws when stderr is a terminal, and stays there when it
    ends (count, time, rate). A terminal that reports no size (some ptys: docker exec, CI
    runners, `script`) gets an 80-column bar instead of none and a blank line."""
    show = enabled and sys.stderr.isatty()
    width = {"dynamic_ncols": True} if _terminal_columns() > 0 else FALLBACK_SIZE
    with tqdm(total=total, desc=description, unit=unit, unit_scale=False, disable=not show,
              leave=True, smoothing=0.1, file=sys.stderr, **width) as bar:
        yield bar
