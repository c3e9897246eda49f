"""check.py's plumbing: what a section is given, how its state is saved, GPU memory figures.

A section's state is one JSON file, ``<work>/state/<name>.json``, rewritten atomically when
it starts, whenever it saves partial results and when it ends; the orchestrator merges these
files into the output after each change, so whatever stops the run leaves what was done.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATUSES = ("running", "ok", "skipped", "error", "timeout", "not run")


class Skip(Exception):
    """A section that cannot run here, with the reason (recorded, not an error)."""


def write_json(path: Path, data: Any) -> None:
    """Atomic JSON (bottleneck's own helper where installed; check.py's orchestrator may run
    before it is)."""
    try:
        from bottleneck.storage.atomic import write_json as atomic
    except ImportError:  # pragma: no cover - the kit's wheels not installed
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
        os.replace(tmp, path)
        return
    atomic(path, data, fsync=False)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@dataclass
class Context:
    """What a section runs with: the options, the kit, a scratch folder, its deadline."""

    args: argparse.Namespace
    kit: Path
    kit_info: dict[str, Any]
    work: Path
    backend: str | None
    name: str = ""
    deadline: float = field(default_factory=lambda: time.time() + 60)

    @property
    def devices(self) -> str:
        return self.args.devices

    @property
    def batch_size(self) -> int:
        return self.args.batch_size

    @property
    def min_seconds(self) -> float:
        return self.args.min_seconds

    @property
    def lite0_size(self) -> int:
        return int(self.kit_info["references"][0]["image_size"])

    def left(self) -> float:
        """Seconds before this section's cap."""
        return self.deadline - time.time()

    def state_path(self, name: str | None = None) -> Path:
        return self.work / "state" / f"{name or self.name}.json"

    def partial(self, results: dict[str, Any]) -> None:
        """Save what is done so far (kept if the section is stopped at its cap)."""
        state = read_json(self.state_path()) or {}
        write_json(self.state_path(), state | {"results": results})


def run_section(ctx: Context, name: str, function: Callable[[Context], dict[str, Any]],
                cap: float) -> dict[str, Any]:
    """Run one section, recording running → ok / skipped / error with its seconds."""
    ctx.name = name
    ctx.deadline = min(time.time() + cap, ctx.args.deadline)
    started = time.time()
    ctx.state_path().parent.mkdir(parents=True, exist_ok=True)
    write_json(ctx.state_path(), {"status": "running", "started": started, "cap_s": cap,
                                  "backend": ctx.backend})
    state: dict[str, Any] = {"backend": ctx.backend, "cap_s": cap}
    try:
        state |= {"status": "ok", "results": function(ctx)}
    except Skip as reason:
        state |= {"status": "skipped", "reason": str(reason)}
    except Exception as exc:  # a benchmark harness: record it and go on to the next section
        previous = read_json(ctx.state_path()) or {}
        state |= {"status": "error", "error": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc()[-3000:],
                  "results": previous.get("results")}
    state["seconds"] = round(time.time() - started, 2)
    write_json(ctx.state_path(), state)
    return state


def reset_gpu_peak(backend: str | None) -> None:
    """Start a new peak of GPU memory (PyTorch; JAX's peak cannot be reset)."""
    if backend in ("torch", "reference"):
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()


def gpu_memory(backend: str | None) -> dict[str, Any]:
    """Peak GPU memory of this process: PyTorch's max_memory_allocated since the last reset;
    JAX's peak_bytes_in_use since the process started. Empty without a GPU."""
    try:
        if backend in ("torch", "reference"):
            import torch

            if torch.cuda.is_available():
                return {"peak_gpu_bytes": int(torch.cuda.max_memory_allocated()),
                        "peak_gpu_kind": "torch max_memory_allocated since the step began"}
        elif backend == "jax":
            import jax

            device = jax.devices()[0]
            stats = device.memory_stats() if device.platform == "gpu" else None
            if stats:
                return {"peak_gpu_bytes": int(stats.get("peak_bytes_in_use", 0)),
                        "peak_gpu_kind": "jax peak_bytes_in_use since the worker started"}
    except Exception as exc:  # memory figures must never fail a section
        return {"peak_gpu_error": f"{type(exc).__name__}: {exc}"}
    return {}
