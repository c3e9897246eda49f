"""Small helpers for the words of user-facing messages."""

from __future__ import annotations


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``count`` and ``noun``, made plural unless count is one: ``plural(1, "shard")`` is
    "1 shard", ``plural(3, "shard")`` "3 shards", ``plural(2, "class", "classes")``."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"
