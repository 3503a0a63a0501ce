"""The chat client against a real HTTP server on 127.0.0.1 (tests/openai_server.py)."""

from __future__ import annotations

import logging
import random
import socket
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai_server import ChatRequest, FakeOpenAIServer, FaultSchedule

from uaes_hf.annotate.client import (
    ChatCallError,
    ChatClient,
    ChatConfig,
    ChatConfigError,
    backoff_delay,
    parse_retry_after,
    run_bounded,
)
from uaes_hf.annotate.judge import OpenAIRatingBackend, PoemItem, judge_poems
from uaes_hf.annotate.store import ResultStore

HELLO = [{"role": "user", "content": "hello"}]


def only(kind: str, **kw) -> FaultSchedule:
    """Every item's first request gets ``kind``; the second is good."""
    return FaultSchedule(fault_rate=1.0, weights={kind: 1.0}, max_faults_per_item=1, **kw)


def client_for(server: FakeOpenAIServer, **kw) -> ChatClient:
    config = dict(base_url=server.base_url, timeout=2.0, backoff_base=0.01, max_retries=3)
    config.update(kw)
    return ChatClient(ChatConfig(**config), api_key="sk-test")


@pytest.mark.parametrize("kind", ["429", "500", "slow", "garbage_body"])
def test_transient_faults_are_retried(kind: str) -> None:
    # timeout 1.5 s: past any normal answer on a loaded machine, short of the "slow" one
    with FakeOpenAIServer(only(kind, slow_s=3.0)) as server:
        result = client_for(server, timeout=1.5).chat(HELLO)
        log = server.chat_requests()
    assert result.attempts == 2 and '"score"' in result.content
    assert [r["fault"] for r in log] == [kind, None]
    assert result.prompt_tokens > 0 and result.completion_tokens > 0


def test_retry_after_is_honoured() -> None:
    # Backoff alone would wait ~10 ms; the server asks for 1 s.
    with FakeOpenAIServer(only("429", retry_after="1", retry_after_ms=None)) as server:
        client_for(server).chat(HELLO)
        first, second = server.chat_requests()
    assert second["t"] - first["t"] >= 1.0
    with FakeOpenAIServer(only("429", retry_after=None, retry_after_ms=None)) as server:
        client_for(server).chat(HELLO)
        first, second = server.chat_requests()
    assert second["t"] - first["t"] < 0.5  # the control: no header, short backoff


def test_retry_after_ms_and_http_date() -> None:
    assert parse_retry_after({"Retry-After-Ms": "250"}) == 0.25
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    now = 1_700_000_000.0
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + 5))
    assert parse_retry_after({"retry-after": date}, now=now) == pytest.approx(5.0)
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


@given(
    attempt=st.integers(1, 12),
    base=st.floats(0.001, 5),
    cap=st.floats(0.01, 100),
    seed=st.integers(0, 1000),
    retry_after=st.one_of(st.none(), st.floats(0, 50)),
)
def test_backoff_bounds(attempt: int, base: float, cap: float, seed: int, retry_after) -> None:
    delay = backoff_delay(attempt, base, cap, random.Random(seed), retry_after)
    exp = min(cap, base * 2 ** (attempt - 1))
    if retry_after is None:
        assert exp / 2 <= delay <= exp
    else:
        assert delay >= retry_after and delay <= max(exp, retry_after * 1.1) + 1e-9


def test_backoff_grows_exponentially() -> None:
    rng = random.Random(0)
    means = [sum(backoff_delay(n, 1.0, 1000, rng) for _ in range(400)) / 400 for n in range(1, 8)]
    assert all(1.8 < b / a < 2.2 for a, b in zip(means, means[1:], strict=False))
    assert backoff_delay(30, 1.0, 60.0, rng) <= 60.0  # capped


def test_gives_up_after_max_retries_with_reason() -> None:
    schedule = FaultSchedule(always_fail_rate=1.0, always_fail_kind="500")
    with FakeOpenAIServer(schedule) as server:
        with pytest.raises(ChatCallError) as info:
            client_for(server, max_retries=3).chat(HELLO)
        assert len(server.chat_requests()) == 4
    assert info.value.reason == "server_error" and info.value.attempts == 4


def test_non_retryable_error_fails_at_once() -> None:
    with FakeOpenAIServer(require_key="right-key") as server:
        with pytest.raises(ChatCallError) as info:
            client_for(server).chat(HELLO)
        assert info.value.reason == "auth" and info.value.attempts == 1
        with pytest.raises(ChatConfigError, match="rejected the key in OPENAI_API_KEY"):
            client_for(server).preflight()


def test_preflight_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client = ChatClient(ChatConfig(base_url="http://127.0.0.1:9/v1"))
    with pytest.raises(ChatConfigError, match="OPENAI_API_KEY is not set"):
        client.preflight()
    monkeypatch.setenv("OPENAI_API_KEY", "   ")
    with pytest.raises(ChatConfigError, match="OPENAI_API_KEY is not set"):
        ChatClient(ChatConfig(base_url="http://127.0.0.1:9/v1")).preflight()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_preflight_unreachable_endpoint() -> None:
    client = ChatClient(ChatConfig(base_url=f"http://127.0.0.1:{free_port()}/v1"), api_key="k")
    with pytest.raises(ChatConfigError, match="cannot reach http://127.0.0.1"):
        client.preflight()


def test_preflight_ok_and_key_from_env_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret-123")
    with FakeOpenAIServer(require_key="sk-very-secret-123") as server:
        client = ChatClient(ChatConfig(base_url=server.base_url))
        client.preflight()
        assert client.chat(HELLO).content
    assert "sk-very-secret" not in repr(client) and "sk-very-secret" not in str(vars(client))


def test_image_content_parts_pass_through() -> None:
    seen: list[dict] = []

    def responder(request: ChatRequest) -> str:
        seen.append(request.body)
        return '{"score": 3}'

    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "Rate it"}, image]}]
    with FakeOpenAIServer(responder=responder) as server:
        result = client_for(server, seed=5, temperature=0.7).chat(messages, max_tokens=20)
    assert result.content == '{"score": 3}'
    body = seen[0]
    assert body["messages"] == messages
    assert (body["seed"], body["temperature"], body["max_tokens"]) == (5, 0.7, 20)


def test_run_bounded_limits_in_flight_and_is_lazy() -> None:
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def work(x: int) -> int:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.02)
        with lock:
            state["now"] -= 1
        if x == 7:
            raise RuntimeError("boom")
        return x * 2

    results = list(run_bounded(work, range(30), concurrency=4))
    assert state["max"] == 4
    assert sorted(r for _, r, e in results if e is None) == [2 * x for x in range(30) if x != 7]
    assert [(i, str(e)) for i, _, e in results if e is not None] == [(7, "boom")]

    pulled = []

    def source():
        for i in range(100):
            pulled.append(i)
            yield i

    for _ in run_bounded(lambda x: x, source(), concurrency=3):
        break
    assert len(pulled) <= 4  # 3 in flight + at most 1 handed out after the first result
    with pytest.raises(ValueError, match="concurrency"):
        list(run_bounded(lambda x: x, [1], concurrency=0))


def test_config_validation() -> None:
    for bad in (dict(timeout=0), dict(concurrency=0), dict(max_retries=-1), dict(model="")):
        with pytest.raises(ValueError):
            ChatConfig(**bad)


def test_key_never_in_logs_errors_or_store(
    tmp_path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-leak-canary-98765"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    caplog.set_level(logging.DEBUG)  # everything openai, httpx and httpcore log
    store_path = tmp_path / "r.sqlite"
    # This server rejects the key AND echoes it back in its 401 message, like some do.
    with FakeOpenAIServer(require_key="another-key") as server:
        client = ChatClient(ChatConfig(base_url=server.base_url, timeout=2.0))
        with pytest.raises(ChatCallError) as call:
            client.chat(HELLO)
        with pytest.raises(ChatConfigError) as pre:
            client.preflight()
        with ResultStore(store_path) as store:
            summary = judge_poems(
                [PoemItem("p1", "A poem")],
                store,
                OpenAIRatingBackend(client),
                progress=False,
                preflight=False,
            )
            (row,) = store.results()
    assert call.value.reason == "auth" and "<hidden>" in call.value.detail  # echoed, redacted
    assert row.reason == "auth" and "<hidden>" in row.detail and summary.failed == {"auth": 1}
    assert caplog.records  # the control: the libraries did log (requests, options, ...)
    shown = [str(call.value), str(pre.value), row.detail, summary.format(), caplog.text]
    assert not [text for text in shown if secret in text]
    for path in tmp_path.iterdir():  # the SQLite file and its WAL
        assert secret.encode() not in path.read_bytes(), path
