"""Perplexity and bits-per-byte: chunked batched loss vs a brute-force per-token loop."""

from __future__ import annotations

import math

import extract_helpers
import numpy as np
import pytest
import torch
from extract_helpers import TEXTS

from uaes_hf.extract.perplexity import PerplexityScorer, perplexity_table
from uaes_hf.extract.run import ExtractOptions, extract_to_store
from uaes_hf.extract.store import FeatureStore

tiny_gpt2_dir = extract_helpers.tiny_gpt2_dir  # shared fixture
tiny_llama_dir = extract_helpers.tiny_llama_dir  # shared fixture


def brute_force_nll(model_dir, text, max_length):
    """Sum of -log p(token_t | tokens_<t) by one forward pass per prefix."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    ids = tokenizer(text)["input_ids"]
    if not ids or ids[0] != tokenizer.bos_token_id:
        ids = [tokenizer.bos_token_id, *ids]
    ids = ids[:max_length]
    total = 0.0
    for t in range(1, len(ids)):
        with torch.no_grad():
            logits = model(torch.tensor([ids[:t]])).logits[0, -1].double()
        total -= torch.log_softmax(logits, dim=-1)[ids[t]].item()
    return total, len(ids) - 1


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_perplexity_matches_per_token_loop(arch, tiny_gpt2_dir, tiny_llama_dir):
    model_dir = str(tiny_gpt2_dir if arch == "gpt2" else tiny_llama_dir)
    texts = TEXTS[:5]
    max_length = 9  # truncates the longest texts
    scorer = PerplexityScorer(
        model_dir, batch_size=3, max_length=max_length, chunk_size=4, progress=False
    )
    columns, info = scorer(texts)
    table = perplexity_table(columns)
    for i, text in enumerate(texts):
        nll, n_pred = brute_force_nll(model_dir, text, max_length)
        assert table.loc[i, "nll_nats"] == pytest.approx(nll, rel=1e-4)
        assert table.loc[i, "n_predicted_tokens"] == n_pred
        assert table.loc[i, "perplexity"] == pytest.approx(math.exp(nll / n_pred), rel=1e-4)
        n_bytes = table.loc[i, "n_bytes"]
        assert table.loc[i, "bits_per_byte"] == pytest.approx(nll / math.log(2) / n_bytes, rel=1e-4)
        if not table.loc[i, "truncated"]:
            assert n_bytes == len(text.encode("utf-8"))
    assert info["n_truncated"] == int(table["truncated"].sum()) >= 1


def test_perplexity_is_independent_of_padding_side_and_batch(tiny_gpt2_dir):
    right = PerplexityScorer(str(tiny_gpt2_dir), batch_size=4, progress=False)
    one = PerplexityScorer(str(tiny_gpt2_dir), batch_size=1, progress=False)
    left = PerplexityScorer(str(tiny_gpt2_dir), batch_size=4, progress=False)
    left.tokenizer.padding_side = "left"
    results = [perplexity_table(s(TEXTS)[0])["nll_nats"].to_numpy() for s in (right, one, left)]
    np.testing.assert_allclose(results[0], results[1], rtol=1e-4)
    np.testing.assert_allclose(results[0], results[2], rtol=1e-4)


def test_perplexity_resumes_through_the_store(tmp_path, tiny_gpt2_dir):
    options = ExtractOptions(perplexity=True, shard_size=3, progress=False)
    entry = extract_to_store(TEXTS, str(tiny_gpt2_dir), tmp_path, dataset="poems", options=options)
    stored = FeatureStore(tmp_path).load("poems", str(tiny_gpt2_dir), "perplexity")
    assert stored.meta["layer_names"] == [
        "nll_nats",
        "n_predicted_tokens",
        "n_bytes",
        "truncated",
    ]
    table = perplexity_table(stored.features)
    fresh = perplexity_table(PerplexityScorer(str(tiny_gpt2_dir), progress=False)(TEXTS)[0])
    np.testing.assert_allclose(table["perplexity"], fresh["perplexity"], rtol=1e-5)
    assert entry.is_complete()


def test_perplexity_rejects_bad_settings(tiny_gpt2_dir):
    with pytest.raises(ValueError, match="max_length"):
        PerplexityScorer(str(tiny_gpt2_dir), max_length=1)
