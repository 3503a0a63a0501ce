"""Tests of the hpir evaluate module, loaded the way users load it (offline)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def metric():
    import evaluate

    return evaluate.load(str(HERE))


def test_compute_matches_hand_computed_values(metric) -> None:
    # soft = (3/4 + 1 + 1/2 + 1/4) / 4; hard = 2/3 (the 2:2 tie skipped); oracle = 3/4
    result = metric.compute(predictions=[0, 1, 0, 1], references=[[3, 1], [0, 4], [2, 2], [3, 1]])
    assert result["soft_accuracy"] == pytest.approx(0.625)
    assert result["hard_accuracy"] == pytest.approx(2 / 3)
    assert result["oracle_soft_accuracy"] == pytest.approx(0.75)
    assert result["normalized_score"] == pytest.approx(0.5)
    assert result["n_ties"] == 1


def test_batches_and_aspects(metric) -> None:
    metric.add_batch(predictions=[1], references=[[0, 3]])
    metric.add_batch(predictions=[0], references=[[1, 1]])
    result = metric.compute(aspects=["aesthetics", "diversity"])
    assert result["soft_accuracy"] == pytest.approx(0.75)
    assert result["per_aspect"]["aesthetics"]["soft_accuracy"] == 1.0
    assert math.isnan(result["per_aspect"]["diversity"]["hard_accuracy"])


def test_bad_votes_are_a_value_error(metric) -> None:
    with pytest.raises(ValueError, match="no votes"):
        metric.compute(predictions=[0], references=[[0, 0]])


def test_app_scores_json_input() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("hpir_app", HERE / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    summary, raw = app.compute_from_json(app.EXAMPLE)
    assert "0.6250" in summary and '"n_ties": 1' in raw
    assert app.compute_from_json("[1, 2]")[0].startswith("**Error:**")
