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
    rate = "fit/s" in final or "s/fit" in final  # tqdm turns the unit round when fits are slow
    assert "bench" in final and "4/4" in final and rate, repr(screen)
    quiet = run_on_a_terminal(100, [*args, "-q", "-o", str(tmp_path / "quiet")])
    assert "4/4" not in quiet and "rank" in quiet


def test_bench_takes_the_task_its_heads_can_do(price_cache: Cache, tmp_path: Path) -> None:
    """A cache with prices benched with logreg (which only classifies) classifies."""
    import bottleneck

    report = bottleneck.bench([price_cache.root], heads=["logreg"], out=tmp_path / "b",
                              progress=False, model=False)
    assert report["task"] == "classify" and "val_accuracy" in report["rows"][0]


def test_a_regressor_below_the_mean_says_so_and_names_the_better_one() -> None:
    from bottleneck.benching.leaderboard import below_the_mean

    rows = [{"rank": 1, "cache": "vgg16", "variant": "ridge", "val_r2": 0.8123},
            {"rank": 2, "cache": "vgg16", "variant": "dense epochs=1", "val_r2": -0.3456}]
    report = {"task": "regress", "rows": rows, "caches": {"vgg16": "c"}}
    assert below_the_mean(report) == [
        "note: dense epochs=1 has val R² -0.346, below 0: it is worse than predicting the mean "
        "of the targets; ridge does better (val R² 0.812)."]
    rows[0]["val_r2"] = -0.01
    assert below_the_mean(report)[0].endswith("-0.010, below 0: it is worse than predicting "
                                              "the mean of the targets; no variant here beats "
                                              "the mean.")
    assert below_the_mean(report | {"task": "classify"}) == []
