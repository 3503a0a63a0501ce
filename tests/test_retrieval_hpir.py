"""The HPIR-style metric against hand-computed cases, and the vote log."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uaes_hf.retrieval.hpir import hpir_scores, predict_preferences, validate_hpir_rows
from uaes_hf.retrieval.votes import VoteLog, VoteTask, aggregate_votes


def test_hand_computed_case_with_a_tie_and_a_unanimous_item() -> None:
    # item 1: votes 3:1, model picks a -> soft 3/4, hard right (majority a)
    # item 2: votes 0:4 (unanimous b), model picks b -> soft 1, hard right
    # item 3: votes 2:2 (tie), model picks a -> soft 1/2, skipped by hard accuracy
    # item 4: votes 3:1, model picks b -> soft 1/4, hard wrong
    # soft = (0.75 + 1 + 0.5 + 0.25) / 4 = 0.625; hard = 2/3
    # oracle = (0.75 + 1 + 0.5 + 0.75) / 4 = 0.75; normalised = 0.125 / 0.25 = 0.5
    result = hpir_scores([0, 1, 0, 1], [[3, 1], [0, 4], [2, 2], [3, 1]])
    assert result["soft_accuracy"] == pytest.approx(0.625)
    assert result["hard_accuracy"] == pytest.approx(2 / 3)
    assert result["oracle_soft_accuracy"] == pytest.approx(0.75)
    assert result["normalized_score"] == pytest.approx(0.5)
    assert (result["n_items"], result["n_hard_items"], result["n_ties"]) == (4, 3, 1)


def test_unanimous_votes_make_soft_equal_hard() -> None:
    # Every item unanimous: soft accuracy is 1 or 0 per item, exactly the hard accuracy;
    # the oracle is 1 and the normalised score is 2 * soft - 1.
    result = hpir_scores([0, 0, 1], [[5, 0], [0, 2], [0, 1]])
    assert result["soft_accuracy"] == pytest.approx(2 / 3)
    assert result["hard_accuracy"] == pytest.approx(2 / 3)
    assert result["oracle_soft_accuracy"] == 1.0
    assert result["normalized_score"] == pytest.approx(1 / 3)


def test_all_ties_give_nan_hard_and_normalised_scores() -> None:
    result = hpir_scores([0, 1], [[1, 1], [3, 3]])
    assert result["soft_accuracy"] == 0.5 and result["oracle_soft_accuracy"] == 0.5
    assert math.isnan(result["hard_accuracy"]) and math.isnan(result["normalized_score"])
    assert result["n_hard_items"] == 0


def test_per_aspect_breakdown_by_hand() -> None:
    result = hpir_scores(
        [0, 1, 1], [[2, 1], [1, 2], [4, 0]], aspects=["aesthetics", "aesthetics", "accuracy"]
    )
    assert result["per_aspect"]["aesthetics"]["soft_accuracy"] == pytest.approx(2 / 3)
    assert result["per_aspect"]["accuracy"]["soft_accuracy"] == 0.0
    assert result["per_aspect"]["accuracy"]["hard_accuracy"] == 0.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9), st.integers(0, 1)), min_size=1))
def test_matches_a_brute_force_random_annotator(items) -> None:
    items = [(a, b, p) for a, b, p in items if a + b > 0]
    if not items:
        return
    # Brute force: list every annotator's vote and count agreements one by one.
    soft_terms, hard_terms, oracle_terms = [], [], []
    for a, b, p in items:
        ballots = ["a"] * a + ["b"] * b
        pick = "a" if p == 0 else "b"
        soft_terms.append(sum(v == pick for v in ballots) / len(ballots))
        oracle_terms.append(max(ballots.count("a"), ballots.count("b")) / len(ballots))
        if a != b:
            hard_terms.append(pick == ("a" if a > b else "b"))
    result = hpir_scores([p for _, _, p in items], [[a, b] for a, b, _ in items])
    assert result["soft_accuracy"] == pytest.approx(np.mean(soft_terms))
    assert result["oracle_soft_accuracy"] == pytest.approx(np.mean(oracle_terms))
    assert result["soft_accuracy"] <= result["oracle_soft_accuracy"] + 1e-12
    if hard_terms:
        assert result["hard_accuracy"] == pytest.approx(np.mean(hard_terms))
    # Swapping the groups and the predictions changes nothing.
    swapped = hpir_scores([1 - p for _, _, p in items], [[b, a] for a, b, _ in items])
    assert swapped["soft_accuracy"] == pytest.approx(result["soft_accuracy"])


@pytest.mark.parametrize(
    "predictions, references, message",
    [
        ([0], [[0, 0]], "no votes"),
        ([2], [[1, 0]], "0 \\(prefers group_a\\) or 1"),
        ([0, 1], [[1, 0]], "one choice per item"),
        ([0], [[1, -1]], "non-negative"),
        ([0], [[1, 2, 3]], "pairs"),
    ],
)
def test_bad_input_raises_value_errors(predictions, references, message) -> None:
    with pytest.raises(ValueError, match=message):
        hpir_scores(predictions, references)


def test_predict_preferences_by_hand() -> None:
    query = np.array([[1.0, 0.0], [0.0, 1.0]])
    near, far = np.array([[1.0, 0.0], [1.0, 0.2]]), np.array([[0.0, 1.0], [0.1, 1.0]])
    assert predict_preferences(query, [near, near], [far, far]) == [0, 1]


def test_validate_rows_names_missing_columns() -> None:
    with pytest.raises(ValueError, match="lacks columns \\['votes_b'\\]"):
        validate_hpir_rows(
            [
                {
                    "query": "q",
                    "aspect": "aesthetics",
                    "group_a": ["x"],
                    "group_b": ["y"],
                    "votes_a": 1,
                }
            ]
        )


def test_vote_log_aggregates_and_survives_a_truncated_line(tmp_path) -> None:
    log = VoteLog(tmp_path / "votes.jsonl")
    task = VoteTask("a dog", ("a.png", "b.png"), ("c.png", "d.png"), "original", "finetuned")
    for choice in ("a", "b", "b"):
        log.append(task, aspect="aesthetics", choice=choice, annotator="x")
    log.append(task, aspect="accuracy", choice="a")
    with (tmp_path / "votes.jsonl").open("a") as handle:  # a write cut short by a kill
        handle.write('{"vote_id": "cut", "query": "a dog", "choi')
    log.append(task, aspect="accuracy", choice="a")
    rows = aggregate_votes(log.read())
    assert [(r["aspect"], r["votes_a"], r["votes_b"]) for r in rows] == [
        ("aesthetics", 1, 2),
        ("accuracy", 2, 0),
    ]
    validate_hpir_rows(rows)
    with pytest.raises(ValueError, match="choice"):
        log.append(task, aspect="accuracy", choice="row 1")


def test_concurrent_writers_lose_no_vote(tmp_path) -> None:
    """Four real processes append 25 votes each to one log: all 100 lines are intact."""
    path = tmp_path / "votes.jsonl"
    script = textwrap.dedent(
        f"""
        from uaes_hf.retrieval.votes import VoteLog, VoteTask
        log = VoteLog({str(path)!r})
        task = VoteTask("q", ("x",), ("y",))
        for _ in range(25):
            log.append(task, aspect="aesthetics", choice="a")
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env) for _ in range(4)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    lines = path.read_text().splitlines()
    assert len(lines) == 100 and all(json.loads(line)["choice"] == "a" for line in lines)
