"""The report's advice is true: no label flagged on weak evidence or on a clean set, and its
sentences read right for zero, one and many."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import bottleneck
from bottleneck.cache import Cache
from bottleneck.reporting import label_errors
from bottleneck.reporting.render import label_errors_text, mistakes_text, short_names

pytest_plugins = ["tests.heads_fixtures"]


@pytest.fixture(scope="module")
def perfect(feature_cache: Cache, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A logreg head that classifies every val and test row of the clean generated set."""
    out = tmp_path_factory.mktemp("perfect") / "logreg"
    bottleneck.fit(feature_cache, "logreg", out)
    return out


def _report(model: Path, out: Path) -> dict[str, Any]:
    return bottleneck.report(model, out).document["caches"][0]


def test_a_clean_set_where_the_head_is_perfect_flags_no_label(perfect: Path,
                                                              tmp_path: Path) -> None:
    cache = _report(perfect, tmp_path / "r.html")
    assert [v["summary"]["accuracy"] for v in cache["models"][0]["splits"]] == ["1.000"] * 2
    errors = cache["label_errors"]
    assert errors["flagged"] == 0 and errors["all"] == []
    assert errors["width"] == 512  # a few rows: the full width, not a 64-d projection
    assert errors["versus_heads"]["withheld"] is False
    assert errors["verdict_text"].endswith("No row is flagged.")
    assert "None of the 18 rows is wrong." in (tmp_path / "r.html").read_text()


def test_an_out_of_fold_model_far_below_the_heads_flags_nothing(
        perfect: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(label_errors, "FULL_WIDTH_VALUES", 0)  # the 64-d projection: weak
    errors = _report(perfect, tmp_path / "r.html")["label_errors"]
    versus = errors["versus_heads"]
    assert errors["width"] == 64 and versus["split"] == "val" and versus["rows"] == 24
    assert versus["evidence_accuracy"] < versus["head_accuracy"] - label_errors.EVIDENCE_MARGIN
    assert versus["withheld"] and versus["would_flag"] > 0
    assert errors["flagged"] == 0 and errors["all"] == [] and errors["shown"] == []
    html = (tmp_path / "r.html").read_text()
    assert "no evidence against a label: nothing is flagged" in html


def test_the_evidence_rule() -> None:
    assert label_errors.weaker_than_heads(0.481, 1.0)
    assert not label_errors.weaker_than_heads(0.96, 1.0)
    assert not label_errors.weaker_than_heads(0.80, 0.76)


def test_without_val_the_evidence_is_a_fit_on_train_scored_on_test() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 4, (3, 8))
    labels = rng.integers(0, 3, 90)
    features = centres[labels] + rng.normal(0, 1, (90, 8))
    assert label_errors.held_out_accuracy(features[:60], labels[:60], features[60:],
                                          labels[60:]) == 1.0
    shuffled = rng.permutation(labels[:60])
    assert label_errors.held_out_accuracy(features[:60], shuffled, features[60:],
                                          labels[60:]) < 0.7


def test_the_reliability_diagram_needs_enough_rows(perfect: Path, tmp_path: Path) -> None:
    model = _report(perfect, tmp_path / "r.html")["models"][0]
    assert model["reliability"] is None and "calibration" not in model
    assert model["reliability_note"] == ("No reliability diagram: test has 18 rows, and one "
                                         "needs at least 50 to say anything about calibration.")
    assert model["reliability_note"] in (tmp_path / "r.html").read_text()


def test_enough_rows_make_a_reliability_diagram(perfect: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from bottleneck.reporting import model_section

    monkeypatch.setattr(model_section, "RELIABILITY_ROWS", 18)
    model = _report(perfect, tmp_path / "r.html")["models"][0]
    assert model["reliability"].startswith("data:image/png;base64,")
    assert sum(b["n"] for b in model["calibration"]["bins"]) == 18
    assert model["reliability_note"] is None


@pytest.mark.parametrize(("wrong", "of", "shown", "expected"), [
    (0, 6, 0, "None of the 6 rows is wrong."),
    (1, 6, 1, "1 of 6 rows is wrong; it is shown, ranked by p. Beside each: its 3 nearest "
              "training images by cosine of the cached features."),
    (5, 60, 5, "5 of 60 rows are wrong; all shown, ranked by p."),
    (40, 600, 12, "40 of 600 rows are wrong; the 12 most confident shown, ranked by p."),
])
def test_the_mistakes_sentence(wrong: int, of: int, shown: int, expected: str) -> None:
    mistakes = {"wrong": wrong, "of": of, "rows": [{}] * shown, "by": "p"}
    assert mistakes_text(mistakes, 3).startswith(expected)


def test_the_label_errors_sentence() -> None:
    versus = {"rows": 1, "split": "val", "evidence_accuracy": 1.0, "head": "h",
              "head_accuracy": 1.0, "withheld": False}
    assert label_errors_text({"flagged": 1, "shown": [{}], "versus_heads": versus}) == (
        "On the 1 val row the out-of-fold model reaches accuracy 1.000 and the best fitted "
        "head, h, 1.000. 1 row flagged; it is shown.")
    assert label_errors_text({"flagged": 30, "shown": [{}] * 24, "versus_heads": None}) == (
        "30 rows flagged; the 24 with the lowest probability of their given label shown.")


def test_short_names_tell_caches_apart() -> None:
    assert short_names(["/a/x/cache", "/b/x/cache", "/c/lite0"]) == [
        "a/x/cache", "b/x/cache", "lite0"]
    assert short_names(["/data/vgg16"]) == ["vgg16"]
