"""Per-image numeric targets (e.g. prices) attached to a cache without re-extraction."""
