"""What bench tells its user: fits done and time left on a terminal."""

from __future__ import annotations

from pathlib import Path

from bottleneck.cache import Cache
from tests.extraction.test_progress import run_on_a_terminal

pytest_plugins = ["tests.heads_fixtures"]


def test_bench_shows_its_fits_on_a_terminal(feature_cache: Cache, tmp_path: Path) -> None:
    args = ["-m", "bottleneck.cli", "bench", str(feature_cache.root), "--heads", "logreg,ridge",
            "--seeds", "2", "--jobs", "1", "-o", str(tmp_path / "bench")]
    screen = run_on_a_terminal(100, args)
    final = screen.split("logreg")[0].replace("\r\n", "\n").rstrip("\n").split("\r")[-1]
    assert "bench" in final and "4/4" in final and "fit/s" in final, repr(screen)
    quiet = run_on_a_terminal(100, [*args, "-q", "-o", str(tmp_path / "quiet")])
    assert "4/4" not in quiet and "rank" in quiet
