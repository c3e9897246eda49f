"""Import TensorFlow without the C++ start-up chatter that would bury our own output."""

from __future__ import annotations

import os
import sys


def import_tensorflow_quietly() -> None:
    """Import tensorflow with file descriptor 2 pointed at /dev/null for the duration.

    TensorFlow's C++ layer logs (oneDNN notices, absl warnings) before any Python setting
    can silence it. Python-level import errors still surface: they are raised after the
    descriptor is restored. Set BOTTLENECK_DEBUG=1 to see everything.
    """
    if "tensorflow" in sys.modules or os.environ.get("BOTTLENECK_DEBUG"):
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
