"""The Space's Judge tab against a real OpenAI-compatible server (tests/openai_server.py):
off unless the owner's flag is set (zero requests), and when on, rate-limited per visitor,
capped in text length and total requests, answered from the cache for repeated poems, and
never showing the endpoint. Request counts come from the server's own log."""

from __future__ import annotations

import pytest
import space_helpers as helpers
from gradio_client import Client
from gradio_client.exceptions import AppError
from openai_server import FakeOpenAIServer, expected_score, sha256_text

from uaes_hf.space.budget import SpaceBudget

KEY = "space-test-key"
POEMS = [f"Poem number {i}\nwith a second line about the {word}" for i, word in enumerate(
    ["moon", "river", "stone", "light", "night", "rose"]
)]  # fmt: skip


@pytest.fixture()
def server():
    with FakeOpenAIServer(require_key=KEY) as fake:
        yield fake


@pytest.fixture()
def keyed(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("UAES_SPACE_JUDGE", raising=False)


def start(tmp_path, base_url, **options):
    """A Space with only a poems table (the judge needs nothing else), and two visitors."""
    import pandas as pd

    poems = pd.DataFrame({"id": [f"p{i}" for i in range(len(POEMS))], "text": POEMS})
    demo = helpers.load_app_module().build_demo(
        tmp_path / "no-report", poems=poems, judge_base_url=base_url,
        judge_store=tmp_path / "judge.sqlite", cwd=tmp_path, home=tmp_path, **options,
    )  # fmt: skip
    url = helpers.launch(demo)
    return demo, Client(url, verbose=False), Client(url, verbose=False)


def requests_for(server: FakeOpenAIServer, text: str) -> int:
    return sum(1 for r in server.chat_requests() if r["item_key"] == sha256_text(text))


def test_judge_is_off_without_the_flag_and_makes_no_request(tmp_path, server, keyed):
    demo, visitor, _ = start(tmp_path, server.base_url)  # the key is set, the flag is not
    try:
        status = visitor.predict(api_name="/judge_status")
        assert "off" in status and "UAES_SPACE_JUDGE=1" in status
        for text in POEMS[:3]:
            answer = visitor.predict(None, text, api_name="/judge")
            assert "judge is off" in answer
        answer = visitor.predict("p4", "", api_name="/judge")  # a dataset poem, by id
        assert "judge is off" in answer
        assert server.requests == []  # not one request, not even a preflight
        assert server.base_url not in status
    finally:
        demo.close()


def test_judge_on_is_cached_and_rate_limited_per_visitor(tmp_path, server, keyed):
    budget = SpaceBudget(judge_per_session=2, judge_window_s=600)
    demo, first, second = start(tmp_path, server.base_url, judge_enabled=True, budget=budget)
    try:
        status = first.predict(api_name="/judge_status")
        assert "poem-aesthetic-v2" in status and "verbatim" in status
        assert "2 new ratings per 10 minutes" in status
        score = expected_score(sha256_text(POEMS[0]))
        assert f"Score: {score} / 5" in first.predict(None, POEMS[0], api_name="/judge")
        again = first.predict(None, POEMS[0], api_name="/judge")
        assert f"Score: {score} / 5" in again and "from the cache" in again
        assert requests_for(server, POEMS[0]) == 1
        assert "Score:" in first.predict(None, POEMS[1], api_name="/judge")
        with pytest.raises(AppError, match="limit of 2 new ratings per 10 minutes"):
            first.predict(None, POEMS[2], api_name="/judge")
        assert requests_for(server, POEMS[2]) == 0
        # a cached poem is still answered for the limited visitor, at no cost
        assert "from the cache" in first.predict(None, POEMS[1], api_name="/judge")
        # another visitor (session) has its own allowance, and shares the cache
        assert "from the cache" in second.predict(None, POEMS[0], api_name="/judge")
        assert "Score:" in second.predict(None, POEMS[2], api_name="/judge")
        assert len(server.chat_requests()) == 3
        for entry in server.chat_requests():
            assert entry["roles"] == ["system", "user"]  # the study's prompt (v2)
    finally:
        demo.close()


def test_judge_caps_text_and_total_requests_and_hides_the_endpoint(tmp_path, server, keyed):
    budget = SpaceBudget(judge_per_session=50, judge_max_chars=200, judge_max_requests=2)
    demo, visitor, _ = start(tmp_path, server.base_url, judge_enabled=True, budget=budget)
    try:
        with pytest.raises(AppError, match="201 characters.*at most 200"):
            visitor.predict(None, "x" * 201, api_name="/judge")
        assert server.requests == []
        answers = [visitor.predict(None, text, api_name="/judge") for text in POEMS[:3]]
        assert "Score:" in answers[0] and "Score:" in answers[1]
        assert "unavailable" in answers[2] and "max_requests" in answers[2]
        assert len(server.chat_requests()) == 2  # the Space's cap, across every visitor
        for text in [*answers, visitor.predict(api_name="/judge_status")]:
            assert server.base_url not in text and f"127.0.0.1:{server.port}" not in text
    finally:
        demo.close()


def test_judge_failure_does_not_show_the_endpoint(tmp_path, keyed):
    with FakeOpenAIServer(require_key=KEY) as dead:
        base_url, port = dead.base_url, dead.port
    # nothing listens there any more
    demo, visitor, _ = start(
        tmp_path, base_url, judge_enabled=True, budget=SpaceBudget(judge_deadline_s=5)
    )
    try:
        answer = visitor.predict(None, POEMS[0], api_name="/judge")
        assert "failed" in answer or "unavailable" in answer
        assert base_url not in answer and f"127.0.0.1:{port}" not in answer
    finally:
        demo.close()
