"""Our extraction on another Keras backend (JAX, PyTorch), timed in a long-lived worker process.

Keras settles its backend when first imported, so a benchmark that runs on TensorFlow cannot
also run Keras on JAX in its own process. :class:`BackendWorker` starts one process with
``KERAS_BACKEND`` set, imports Keras there once, and runs ``run_ours`` (``bottleneck.extract``,
the default Keras engine) and ``run_ceiling`` (the feature model on random tensors) on request,
returning the seconds each took as measured there: the worker's start-up is paid once, outside
every timing, so its methods interleave with the parent's like any other.

    python benchmarks/backend_worker.py --worker jax    # started by BackendWorker, not by hand
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
REPLY = "@@bench-reply "  # marks the worker's answers among anything else printed on stdout


def backend_missing(backend: str) -> str | None:
    """None if Keras can run on ``backend`` here, else why not."""
    module = {"jax": "jax", "torch": "torch"}.get(backend)
    if module is None:
        return f"unknown backend {backend!r}"
    return None if importlib.util.find_spec(module) else f"{module} is not installed"


class BackendWorker:
    """One process with Keras on ``backend``; :meth:`ours` and :meth:`ceiling` return seconds."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        env = os.environ | {"KERAS_BACKEND": backend,
                            "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE)])}
        self.process = subprocess.Popen(
            [sys.executable, "-u", str(Path(__file__).resolve()), "--worker", backend],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO, env=env)

    def _call(self, function: str, *args: Any) -> float:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps([function, [str(a) if isinstance(a, Path) else a
                                                        for a in args]]) + "\n")
        self.process.stdin.flush()
        for line in self.process.stdout:
            if line.startswith(REPLY):
                reply = json.loads(line[len(REPLY):])
                if "error" in reply:
                    raise RuntimeError(f"{self.backend} worker: {reply['error']}")
                return float(reply["seconds"])
        raise RuntimeError(f"the {self.backend} worker ended (exit {self.process.wait()})")

    def ours(self, folder: Path, name: str, size: int, batch: int, out: Path) -> float:
        """Seconds of ``bottleneck.extract`` (default engine) on ``folder`` there."""
        return self._call("ours", folder, name, size, batch, out)

    def ceiling(self, name: str, size: int, batch: int, count: int) -> float:
        """Seconds to build the feature model there and run it on ``count`` random images."""
        return self._call("ceiling", name, size, batch, count)

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(timeout=60)


def _serve(backend: str) -> None:
    """The worker's loop: one JSON request per stdin line, one marked reply per request."""
    from extract_methods import run_ceiling, run_ours, timed

    from bottleneck.backend import import_keras

    import_keras(backend)
    for line in sys.stdin:
        function, args = json.loads(line)
        try:
            if function == "ours":
                folder, name, size, batch, out = args
                seconds = timed(run_ours, Path(folder), name, size, batch, Path(out), "tf")
            else:
                seconds = run_ceiling(*args, "tf")
            reply: dict[str, Any] = {"seconds": seconds}
        except Exception as exc:  # the parent raises it with this text
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        print(REPLY + json.dumps(reply), flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        _serve(sys.argv[2])
    else:
        sys.exit(__doc__)
