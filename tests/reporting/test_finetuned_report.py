"""A fine-tuned model's report: scored on the images behind its cache's rows, as evaluate
does, with the lineage cache → head → fine-tuned → export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bottleneck

pytest_plugins = ["tests.heads_fixtures", "tests.finetune_fixtures"]


def test_fine_tuned_model_report(finetuned: Any, tmp_path: Path) -> None:
    result = bottleneck.report(finetuned.model_dir, tmp_path / "ft.html")
    model = result.document["caches"][0]["models"][0]
    assert model["fine_tuned"] is True
    steps = [s["step"] for s in result.document["caches"][0]["lineage"][0]["steps"]]
    assert steps[:3] == ["cache", "head", "fine-tuned"]
    evaluation = bottleneck.evaluate(finetuned.model_dir, split="test")
    view = next(v for v in model["splits"] if v["split"] == "test")
    assert view["metrics"]["accuracy"] == evaluation.metrics["accuracy"]
    assert view["text"] == evaluation.report()
    assert model["reliability_note"] and model["mistakes"]["split"] == "test"  # few rows
