"""Win-rate arithmetic and the order-swapped judge protocol against a local fake VLM."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from retrieval_helpers import RowJudgeServer, write_images

from uaes_hf.annotate.client import ChatClient, ChatConfig
from uaes_hf.annotate.store import ResultStore
from uaes_hf.retrieval.judge import ASPECTS, ProxyJudge, VLMJudge, judge_pairwise, parse_judgement
from uaes_hf.retrieval.winrate import aspect_win_rates, query_outcome, win_rate_stats

os.environ.setdefault("OPENAI_API_KEY", "test-key")
QUERIES = [f"query {i}" for i in range(6)]


def test_outcomes_by_hand() -> None:
    # call 1 shows A first, call 2 shows B first
    assert query_outcome({"x": 1}, {"x": 2}) == {"x": 1}  # both prefer A
    assert query_outcome({"x": 2}, {"x": 1}) == {"x": -1}  # both prefer B
    assert query_outcome({"x": 1}, {"x": 1}) == {"x": 0}  # always row 1: similar
    assert query_outcome({"x": 2}, {"x": 2}) == {"x": 0}  # always row 2: similar
    with pytest.raises(ValueError, match="1 or 2"):
        query_outcome({"x": 3}, {"x": 1})
    with pytest.raises(ValueError, match="same aspects"):
        query_outcome({"x": 1}, {"y": 1})


def test_win_rate_arithmetic_by_hand() -> None:
    # 10 queries: 4 wins, 3 similar, 3 losses.
    stats = win_rate_stats([1, 1, 1, 1, 0, 0, 0, -1, -1, -1], n_bootstrap=500)
    assert (stats.wins, stats.similar, stats.losses, stats.n) == (4, 3, 3, 10)
    assert stats.win_rate == 0.4 and stats.similar_rate == 0.3 and stats.loss_rate == 0.3
    assert stats.win_or_similar_rate == 0.7
    assert stats.position_consistency == 0.7  # 7 of 10 queries: both calls agreed
    assert stats.ci_low < 0.4 < stats.ci_high and stats.ci_low >= 0.0
    assert stats.wos_ci_low < 0.7 < stats.wos_ci_high
    with pytest.raises(ValueError, match="\\+1, 0 or -1"):
        win_rate_stats([2])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from([-1, 0, 1]), min_size=1, max_size=40))
def test_swapping_the_systems_swaps_wins_and_losses(outcomes) -> None:
    a = win_rate_stats(outcomes, n_bootstrap=50)
    b = win_rate_stats([-o for o in outcomes], n_bootstrap=50)
    assert a.win_rate == pytest.approx(b.loss_rate) and a.similar_rate == b.similar_rate
    assert a.win_rate + a.similar_rate + a.loss_rate == pytest.approx(1.0)
    assert a.position_consistency == pytest.approx(1.0 - a.similar_rate)


def test_parse_judgement() -> None:
    text = 'Row 2 is nicer.\n```json\n{"overall": "row 2", "accuracy": 1, "aesthetics": 2, "diversity": 1}\n```'
    assert parse_judgement(text) == {"overall": 2, "accuracy": 1, "aesthetics": 2, "diversity": 1}
    with pytest.raises(ValueError, match="no JSON object"):
        parse_judgement("row 1 wins")
    with pytest.raises(ValueError, match="must be 1 or 2"):
        parse_judgement('{"overall": 3, "accuracy": 1, "aesthetics": 1, "diversity": 1}')


@pytest.fixture()
def rows(tmp_path):
    """System A: bright images, system B: dark images, 5 per row, 6 queries."""
    bright = write_images(tmp_path / "img", [200 + i for i in range(30)], prefix="bright")
    dark = write_images(tmp_path / "img", [30 + i for i in range(30)], prefix="dark")
    paths = bright + dark
    rows_a = [list(range(5 * q, 5 * q + 5)) for q in range(6)]
    rows_b = [[30 + i for i in row] for row in rows_a]
    return paths, rows_a, rows_b


def _judge(server: RowJudgeServer, paths) -> VLMJudge:
    client = ChatClient(ChatConfig(model="fake-vlm", base_url=server.base_url, max_retries=1))
    return VLMJudge(client, paths, max_side=32)


def test_every_query_is_asked_in_both_orders(rows, tmp_path) -> None:
    paths, rows_a, rows_b = rows
    with RowJudgeServer("brighter") as server, ResultStore(tmp_path / "s.sqlite") as store:
        records = judge_pairwise(
            _judge(server, paths),
            QUERIES,
            rows_a,
            rows_b,
            store=store,
            concurrency=3,
            progress=False,
        )
    assert len(server.calls) == 2 * len(QUERIES)
    for query in QUERIES:
        asked = [c for c in server.calls if c["query"] == query]
        assert len(asked) == 2
        assert asked[0]["row1"] == asked[1]["row2"] and asked[0]["row2"] == asked[1]["row1"]
    rates = aspect_win_rates([r["outcome"] for r in records], n_bootstrap=200)
    assert set(rates) == set(ASPECTS)
    assert rates["overall"].win_rate == 1.0 and rates["overall"].position_consistency == 1.0


def test_a_judge_that_always_picks_row_one_gives_no_wins(rows, tmp_path) -> None:
    paths, rows_a, rows_b = rows
    with RowJudgeServer("first") as server, ResultStore(tmp_path / "s.sqlite") as store:
        records = judge_pairwise(
            _judge(server, paths), QUERIES, rows_a, rows_b, store=store, progress=False
        )
    stats = aspect_win_rates([r["outcome"] for r in records], n_bootstrap=200)["overall"]
    assert stats.wins == 0 and stats.losses == 0 and stats.similar_rate == 1.0
    assert stats.win_or_similar_rate == 1.0 and stats.position_consistency == 0.0


def test_stored_answers_are_never_asked_again(rows, tmp_path) -> None:
    paths, rows_a, rows_b = rows
    store_path = tmp_path / "s.sqlite"
    with RowJudgeServer("brighter") as server:
        with ResultStore(store_path) as store:
            judge_pairwise(
                _judge(server, paths),
                QUERIES[:3],
                rows_a[:3],
                rows_b[:3],
                store=store,
                progress=False,
            )
        assert len(server.calls) == 6
        with ResultStore(store_path) as store:  # a rerun with one more query
            again = judge_pairwise(
                _judge(server, paths),
                QUERIES[:4],
                rows_a[:4],
                rows_b[:4],
                store=store,
                progress=False,
            )
        assert len(server.calls) == 8 and len(again) == 4


def test_proxy_judge_runs_the_same_protocol() -> None:
    aesthetic = np.array([9.0, 9.0, 1.0, 1.0, 5.0, 5.2])
    relevance = np.ones(6)
    judge = ProxyJudge(
        aesthetic=aesthetic,
        relevance=lambda q: relevance,
        image_embeddings=np.eye(6),
        margins={"overall": 0.1, "accuracy": 0.01, "aesthetics": 0.5, "diversity": 0.01},
        scales={"accuracy": 1.0, "aesthetics": 1.0},
    )
    records = judge_pairwise(
        judge, ["clear", "near tie"], [[0, 1], [4, 4]], [[2, 3], [5, 5]], progress=False
    )
    assert records[0]["outcome"]["aesthetics"] == 1  # 9 vs 1: both orders prefer A
    assert records[1]["outcome"]["aesthetics"] == 0  # 5.0 vs 5.2 within the margin: similar
    assert records[0]["outcome"]["accuracy"] == 0  # equal relevance: similar
