"""Client limits against real servers on 127.0.0.1: a total deadline per request (a trickling
server fails in time), a deadline per call, the circuit breaker on a dead endpoint, a request
cap, a default max_tokens, and every billed reply counted (also a 200 without choices)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from openai_server import FakeOpenAIServer, FaultSchedule

from uaes_hf.annotate.client import (
    ChatBudgetExceeded,
    ChatCallError,
    ChatClient,
    ChatConfig,
    ChatEndpointDown,
)
from uaes_hf.annotate.judge import OpenAIRatingBackend, PoemItem, judge_poems
from uaes_hf.annotate.store import ResultStore

HELLO = [{"role": "user", "content": "hello"}]


def always(kind: str, **kw) -> FaultSchedule:
    return FaultSchedule(always_fail_rate=1.0, always_fail_kind=kind, **kw)


def first(kind: str) -> FaultSchedule:
    """Each item's first request gets ``kind``, the second a good answer."""
    return FaultSchedule(fault_rate=1.0, weights={kind: 1.0}, max_faults_per_item=1)


def client_for(server: FakeOpenAIServer, **kw) -> ChatClient:
    config = dict(base_url=server.base_url, timeout=2.0, backoff_base=0.01, max_retries=3)
    config.update(kw)
    return ChatClient(ChatConfig(**config), api_key="sk-test")


def timed(fn, cap: float = 30.0):
    """(result or exception, seconds), in a thread so a hang fails the test, not the suite."""
    box: dict = {}

    def run() -> None:
        start = time.monotonic()
        try:
            box["out"] = fn()
        except Exception as err:
            box["out"] = err
        box["s"] = time.monotonic() - start

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(cap)
    assert "s" in box, f"still running after {cap} s"
    return box["out"], box["s"]


def test_trickling_server_fails_within_the_deadline() -> None:
    # One byte every 0.25 s: each read is quick, so a per-read timeout never fires; the
    # whole answer (~350 bytes) would take ~90 s.
    with FakeOpenAIServer(always("trickle", trickle_s=0.25)) as server:
        client = client_for(server, timeout=1.0, max_retries=0)
        client.usage()  # the client is built lazily: build it outside the timing
        client._openai()
        err, seconds = timed(lambda: client.chat(HELLO))
        assert len(server.chat_requests()) == 1
    assert isinstance(err, ChatCallError) and err.reason == "timeout", err
    assert 0.9 <= seconds < 2.5, seconds


def test_call_deadline_bounds_retries() -> None:
    with FakeOpenAIServer(always("500", retry_after_ms=None)) as server:
        client = client_for(
            server, max_retries=20, backoff_base=0.3, backoff_max=0.3, breaker_threshold=100
        )
        client._openai()
        err, seconds = timed(lambda: client.chat(HELLO, deadline=2.0))
        n = len(server.chat_requests())
    assert isinstance(err, ChatCallError) and err.reason == "deadline", err
    assert "2 s deadline" in err.detail and "server_error" in err.detail
    # Waits are 0.15-0.3 s ("equal jitter"), so 2 s hold at most 1 + 2 / 0.15 requests;
    # without the deadline the call makes 21 and waits at least 20 x 0.15 = 3 s.
    assert seconds < 3.0 and 2 <= n <= 14


def test_breaker_stops_a_hanging_endpoint_with_one_error(tmp_path: Path) -> None:
    items = [PoemItem(f"p{i}", f"Poem {i}\nhangs on line {i}") for i in range(40)]
    with FakeOpenAIServer(always("hang")) as server, ResultStore(tmp_path / "r.db") as store:
        client = client_for(server, timeout=0.5, max_retries=3, concurrency=4)
        err, seconds = timed(
            lambda: judge_poems(items, store, OpenAIRatingBackend(client), progress=False)
        )
        n = len(server.chat_requests())
        rows = store.results()
        (run,) = store.runs()
    assert isinstance(err, ChatEndpointDown), err
    assert "looks down: 8 attempts in a row failed (last: timeout)" in str(err)
    # without the breaker: 40 items x 4 attempts x 0.5 s / 4 in flight = 20 s, 160 requests
    assert n <= 12 and seconds < 5
    assert rows == []  # no failure record for items the run never really tried
    assert run["summary"]["not_started"] >= 40 - 12 and run["summary"]["interrupted"]


def test_breaker_opens_on_5xx_and_resets() -> None:
    with FakeOpenAIServer(always("503")) as server:
        client = client_for(server, max_retries=100, breaker_threshold=5)
        with pytest.raises(ChatEndpointDown):
            client.chat(HELLO)
        assert len(server.chat_requests()) == 5
        with pytest.raises(ChatEndpointDown):  # open: no request at all
            client.chat(HELLO)
        assert len(server.chat_requests()) == 5
        client.reset_breaker()
        with pytest.raises(ChatEndpointDown):
            client.chat(HELLO)
        assert len(server.chat_requests()) == 10


def test_dead_endpoint_cli_one_error(tmp_path: Path) -> None:
    poems = tmp_path / "poems.txt"
    poems.write_text("\n---\n".join(f"Poem {i}\nno answer {i}" for i in range(30)) + "\n")
    with FakeOpenAIServer(always("hang")) as server:
        env = {**os.environ, "OPENAI_API_KEY": "sk-test", "HF_HUB_OFFLINE": "1"}
        cmd = [sys.executable, "-m", "uaes_hf.cli", "annotate", "poems", str(poems),
               "--base-url", server.base_url, "--store", str(tmp_path / "r.db"),
               "--timeout", "0.5", "--max-retries", "2", "--concurrency", "4",
               "--backoff-base", "0.01", "--no-progress"]  # fmt: skip
        run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        n = len(server.chat_requests())
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("error:") == 1 and "looks down" in run.stderr
    assert "Traceback" not in run.stderr and n <= 12


def test_empty_choices_are_billed_and_counted(tmp_path: Path) -> None:
    items = [PoemItem(f"p{i}", f"Poem {i}\nfiltered at first {i}") for i in range(6)]
    with FakeOpenAIServer(first("empty_choices")) as server, ResultStore(tmp_path / "r") as s:
        summary = judge_poems(
            items, s, OpenAIRatingBackend(client_for(server)), progress=False, preflight=False
        )
        log = server.chat_requests()
        rows = {r.key.input_hash: r for r in s.results()}
    assert summary.done == 6 and len(log) == 12
    assert Counter(r["fault"] for r in log) == {"empty_choices": 6, None: 6}
    billed_p = sum(r["usage"]["prompt_tokens"] for r in log)
    billed_c = sum(r["usage"]["completion_tokens"] for r in log)
    assert (summary.prompt_tokens, summary.completion_tokens) == (billed_p, billed_c)
    for key, row in rows.items():
        mine = [r["usage"] for r in log if r["item_key"] == key]
        assert len(mine) == 2 and row.attempts == 2
        assert row.prompt_tokens == sum(u["prompt_tokens"] for u in mine)
        assert row.completion_tokens == sum(u["completion_tokens"] for u in mine)


def test_failed_call_carries_its_billed_usage() -> None:
    with FakeOpenAIServer(always("empty_choices")) as server:
        client = client_for(server, max_retries=2)
        with pytest.raises(ChatCallError) as info:
            client.chat(HELLO)
        log = server.chat_requests()
    assert info.value.reason == "bad_response" and info.value.attempts == 3 == len(log)
    assert info.value.prompt_tokens == sum(r["usage"]["prompt_tokens"] for r in log) > 0
    assert info.value.completion_tokens == sum(r["usage"]["completion_tokens"] for r in log)
    usage = client.usage()
    assert (usage.requests, usage.billed_replies) == (3, 3)
    assert usage.prompt_tokens == info.value.prompt_tokens


def test_default_max_tokens_and_request_cap() -> None:
    with FakeOpenAIServer() as server:
        client = client_for(server, max_requests=3)
        client.chat(HELLO)
        client.chat(HELLO, max_tokens=20)
        OpenAIRatingBackend(client).rate("A poem\nof two lines")
        with pytest.raises(ChatBudgetExceeded, match="3 requests"):
            client.chat(HELLO)
        log = server.chat_requests()
    assert [r["max_tokens"] for r in log] == [1024, 20, 700]  # default, override, the study's
    assert client.usage().requests == 3


def test_config_rejects_bad_limits() -> None:
    for bad in (dict(deadline=0), dict(max_tokens=0), dict(breaker_threshold=-1),
                dict(max_requests=-1)):  # fmt: skip
        with pytest.raises(ValueError):
            ChatConfig(**bad)
