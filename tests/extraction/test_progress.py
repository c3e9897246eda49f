"""The progress bar on a real terminal (a pty): it draws, and its final state stays."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

PROGRESS = Path(__file__).resolve().parents[2] / "bottleneck" / "extraction" / "progress.py"
# progress.py alone (by file path): importing the extraction package would load TensorFlow.
SCRIPT = f"""
import importlib.util, time
spec = importlib.util.spec_from_file_location("progress", {str(PROGRESS)!r})
progress = importlib.util.module_from_spec(spec)
spec.loader.exec_module(progress)
with progress.progress_bar(7, "vgg16 → cache") as bar:
    for _ in range(7):
        time.sleep(0.01)
        bar.update(1)
print("done", flush=True)
"""


def run_on_a_terminal(columns: int, args: list[str] | None = None) -> str:
    """Run SCRIPT (or python ``args``) with stdout and stderr on a pty ``columns`` wide (0: one
    that reports no size); everything the terminal received."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24 if columns else 0, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["PYTHONPATH"] = str(PROGRESS.parents[2])
    process = subprocess.Popen([sys.executable, *(args or ["-c", SCRIPT])], stdout=slave,
                               stderr=slave, env=env)
    os.close(slave)
    received = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the pty
            break
        if not chunk:
            break
        received += chunk
    os.close(master)
    assert process.wait(timeout=300) == 0, received[-2000:]
    return received.decode("utf-8", "replace")


@pytest.mark.parametrize("columns", [100, 0])
def test_the_final_bar_stays_on_the_terminal(columns: int) -> None:
    screen = run_on_a_terminal(columns)
    before_done = screen.split("done")[0]
    final = before_done.replace("\r\n", "\n").rstrip("\n").split("\r")[-1]
    assert "vgg16 → cache" in final and "7/7" in final and "img/s" in final, repr(screen)
    assert "100%" in final
