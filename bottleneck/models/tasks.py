"""Which cache column a task learns, and how many rows a scoring pass reads at a time."""

from __future__ import annotations

READ_BATCH = 4096  # rows per read when scoring or streaming


def target_key(task: str) -> str:
    """The cache column a task learns: ``labels`` or ``targets``."""
    return "targets" if task == "regress" else "labels"
