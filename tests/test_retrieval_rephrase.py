"""Query rephrasing: answer cleaning, the durable store, the client and the local LM."""

from __future__ import annotations

import os

import pytest
from openai_server import FakeOpenAIServer

from uaes_hf.annotate.client import ChatClient, ChatConfig
from uaes_hf.annotate.store import ResultStore
from uaes_hf.retrieval.queries import load_queries, parse_queries, split_queries
from uaes_hf.retrieval.rephrase import (
    REPHRASE_PROMPT_VERSION,
    ChatRephraseBackend,
    LocalRephraseBackend,
    clean_rephrasing,
    rephrase_messages,
    rephrase_queries,
)

os.environ.setdefault("OPENAI_API_KEY", "test-key")


@pytest.mark.parametrize(
    "raw, expected",
    [
        ('"A red car at dusk."', ("A red car at dusk.", False)),
        ("\n\nRewritten query: a bright boat\nsecond line", ("a bright boat", False)),
        ("", ("a car", True)),
        ("word " * 60, (" ".join(["word"] * 40) + ".", False)),
    ],
)
def test_clean_rephrasing(raw, expected) -> None:
    assert clean_rephrasing(raw, "a car") == expected


def test_prompt_is_versioned_and_keeps_the_query() -> None:
    messages = rephrase_messages("  a   dog ")
    assert messages[0]["role"] == "system" and messages[-1]["content"] == "Query: a dog"
    assert REPHRASE_PROMPT_VERSION.endswith("-v1")
    with pytest.raises(ValueError, match="non-empty"):
        rephrase_messages(" ")


def test_queries_file_and_split(tmp_path) -> None:
    with pytest.raises(ValueError, match="repeats"):
        parse_queries("a\na\n")
    queries = load_queries()
    train, held = split_queries(queries)
    assert 0.25 < len(held) / len(queries) < 0.55
    # Adding a query never moves the others between the splits.
    train2, held2 = split_queries([*queries, "a brand new query"])
    assert set(held) <= set(held2) and set(train) <= set(train2)


def test_each_query_is_paid_for_once(tmp_path) -> None:
    def respond(request):
        return f"Rephrased: {request.body['messages'][-1]['content'][7:]} in golden light"

    with FakeOpenAIServer(responder=respond) as server:
        client = ChatClient(ChatConfig(model="fake", base_url=server.base_url, max_retries=0))
        backend = ChatRephraseBackend(client)
        with ResultStore(tmp_path / "s.sqlite") as store:
            first = rephrase_queries(["a dog", "a cat"], backend, store, progress=False)
            again = rephrase_queries(["a cat", "a dog", "a bird"], backend, store, progress=False)
        assert len(server.chat_requests()) == 3
    assert [(r.query, r.rephrased, r.cached) for r in first] == [
        ("a dog", "a dog in golden light", False),
        ("a cat", "a cat in golden light", False),
    ]
    assert [r.cached for r in again] == [True, True, False]


@pytest.mark.slow
def test_local_lm_rephrases_in_a_batch(tmp_path) -> None:
    backend = LocalRephraseBackend(max_new_tokens=12, batch_size=2)
    with ResultStore(tmp_path / "s.sqlite") as store:
        out = rephrase_queries(["a sailing boat", "a red apple"], backend, store, progress=False)
        rows = store.results(task="retrieval_rephrase")
    assert len(out) == 2 and all(r.rephrased and not r.cached for r in out)
    assert all(row.completion_tokens <= 12 and row.payload["raw"] for row in rows)
