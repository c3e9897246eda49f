"""Kept for callers of the first versions: Keras is imported through :mod:`bottleneck.backend`."""

from __future__ import annotations

from bottleneck.backend import import_keras


def import_tensorflow_quietly() -> None:
    """Import Keras on the configured backend (TensorFlow only when that is the backend)."""
    import_keras()
