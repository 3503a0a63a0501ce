"""The judge end to end against the fault-injecting server: every item ends with exactly
one valid score (the one the server meant) or one failure record with a reason."""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from openai_server import FakeOpenAIServer, FaultSchedule, expected_score, sha256_text

from uaes_hf.annotate.client import ChatClient, ChatConfig, ChatConfigError
from uaes_hf.annotate.judge import OpenAIRatingBackend, PoemItem, judge_poems
from uaes_hf.annotate.store import ResultStore

N_POEMS = 60


def poems(n: int = N_POEMS) -> list[PoemItem]:
    items = [
        PoemItem(f"p{i}", f"Poem number {i}\nthe {i}th moon rises\n\nover water {i * 7}")
        for i in range(n)
    ]
    return [*items, PoemItem("dup", items[0].text)]  # a duplicate text is rated once


def backend(server: FakeOpenAIServer, **kw) -> OpenAIRatingBackend:
    config = dict(
        base_url=server.base_url,
        timeout=1.5,  # past any normal answer on a loaded machine, short of a "slow" one
        backoff_base=0.005,
        backoff_max=0.05,
        max_retries=6,
        concurrency=8,
        seed=11,
        temperature=0.0,
    )
    config.update(kw)
    return OpenAIRatingBackend(ChatClient(ChatConfig(**config), api_key="sk-test"), max_reasks=3)


def test_fault_schedule_every_item_one_outcome(tmp_path: Path) -> None:
    schedule = FaultSchedule(
        seed=3, fault_rate=0.5, slow_s=3.0, always_fail_rate=0.1, always_fail_kind="score_7"
    )
    items = poems()
    hashes = {sha256_text(p.text) for p in items}
    doomed = {h for h in hashes if schedule.always_fails(h)}
    assert 0 < len(doomed) < len(hashes)
    store_path = tmp_path / "r.sqlite"
    with FakeOpenAIServer(schedule) as server, ResultStore(store_path) as store:
        summary = judge_poems(items, store, backend(server), progress=False)
        log = server.chat_requests()
        rows = {r.key.input_hash: r for r in store.results()}

    # exactly one row per unique text, none missing
    assert set(rows) == hashes
    with sqlite3.connect(store_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == len(hashes)
    for h, row in rows.items():
        if h in doomed:
            assert not row.ok and row.reason == "invalid_output" and "bad_score" in row.detail
        else:
            assert row.ok and row.payload["score"] == expected_score(h), row
            assert row.payload["thinking"].startswith("Imagery and rhythm")
        assert row.params["temperature"] == 0.0 and row.params["seed"] == 11
        assert row.params["prompt_version"] == "poem-aesthetic-v2"
        assert row.params["max_tokens"] == 700

    # the schedule really exercised every fault kind
    faults = Counter(r["fault"] for r in log)
    for kind in ("429", "500", "slow", "garbage_body", "malformed", "score_0", "score_7", "fenced"):
        assert faults[kind] > 0, faults
    # the study's request: its system message first, max_tokens 700 on every call
    assert all(r["roles"][:2] == ["system", "user"] and r["max_tokens"] == 700 for r in log)
    # re-asks happened (4 messages: system, prompt, bad answer, correction) and were recorded
    assert any(r["n_messages"] == 4 for r in log)
    # for every scored item, the last request got the good answer: nothing after it
    by_item = defaultdict(list)
    for r in log:
        by_item[r["item_key"]].append(r)
    for h in hashes - doomed:
        assert by_item[h][-1]["fault"] in (None, "fenced")
    # doomed items were asked exactly 1 + max_reasks times
    assert all(len(by_item[h]) == 4 for h in doomed)

    assert summary.n_items == N_POEMS + 1 and summary.n_unique == N_POEMS
    assert summary.done == len(hashes) - len(doomed)
    assert summary.failed == {"invalid_output": len(doomed)}
    # a failed item is not a final result: it counts as unrated and is retried next run
    assert summary.unrated == len(doomed) and not summary.complete
    assert summary.prompt_tokens > 0 and summary.cost_usd is not None and summary.cost_usd > 0
    # token/cost accounting: exactly what the server billed in the answers the client got
    # (a "slow" answer arrives after the client's timeout, so the client never sees it)
    received = [r for r in log if "usage" in r and r["fault"] != "slow"]
    billed_p = sum(r["usage"]["prompt_tokens"] for r in received)
    billed_c = sum(r["usage"]["completion_tokens"] for r in received)
    assert (summary.prompt_tokens, summary.completion_tokens) == (billed_p, billed_c)
    assert summary.cost_usd == pytest.approx(2.5e-6 * billed_p + 10e-6 * billed_c)  # gpt-4o
    for h, row in rows.items():  # per item too, re-asks included
        mine = [r["usage"] for r in received if r["item_key"] == h]
        assert row.prompt_tokens == sum(u["prompt_tokens"] for u in mine)
        assert row.completion_tokens == sum(u["completion_tokens"] for u in mine)
    assert sum(r.cost_usd for r in rows.values()) == pytest.approx(summary.cost_usd)
    text = summary.format()
    assert f"failed now {len(doomed)} [invalid_output={len(doomed)}]" in text
    assert "seed=11" in text

    # rerun: finished items are not asked again; failed ones are retried (and fail again)
    with FakeOpenAIServer(schedule) as server, ResultStore(store_path) as store:
        again = judge_poems(items, store, backend(server), progress=False)
        asked = {r["item_key"] for r in server.chat_requests()}
        assert store.count() == len(hashes)
    assert asked == doomed
    assert again.cached == len(hashes) - len(doomed) and again.done == 0
    assert again.unrated == len(doomed) and again.failed == {"invalid_output": len(doomed)}
    # and with retry_failed=False nothing at all is asked
    with FakeOpenAIServer(schedule) as server, ResultStore(store_path) as store:
        third = judge_poems(items, store, backend(server), progress=False, retry_failed=False)
        assert server.chat_requests() == []
    assert third.cached_failed == len(doomed) and third.unrated == len(doomed)


def test_transport_failures_become_failure_records(tmp_path: Path) -> None:
    schedule = FaultSchedule(seed=1, always_fail_rate=0.3, always_fail_kind="429")
    items = poems(20)
    with FakeOpenAIServer(schedule) as server, ResultStore(tmp_path / "r.sqlite") as store:
        summary = judge_poems(items, store, backend(server, max_retries=2), progress=False)
        rows = store.results()
        per_item = Counter(r["item_key"] for r in server.chat_requests())
    doomed = {r.key.input_hash for r in rows if not r.ok}
    assert doomed == {h for h in per_item if schedule.always_fails(h)} and doomed
    assert all(r.reason == "rate_limited" and r.attempts == 3 for r in rows if not r.ok)
    assert all(per_item[h] == 3 for h in doomed)  # 1 try + 2 retries, then a record
    assert summary.failed == {"rate_limited": len(doomed)}
    assert len(rows) == 20


def test_unreachable_endpoint_fails_once_before_any_item(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = ChatConfig(base_url=f"http://127.0.0.1:{port}/v1", timeout=1.0)
    judge = OpenAIRatingBackend(ChatClient(config, api_key="k"))
    with ResultStore(tmp_path / "r.sqlite") as store:
        with pytest.raises(ChatConfigError, match="cannot reach"):
            judge_poems(poems(5), store, judge, progress=False)
        assert store.count() == 0 and store.runs() == []
