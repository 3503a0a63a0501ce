"""Text features: masked mean / last pooling, padding side, length sorting, truncation, OOM."""

from __future__ import annotations

import extract_helpers
import numpy as np
import pytest
import torch
from extract_helpers import TEXTS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from uaes_hf.extract.batching import (
    length_sorted_order,
    padding_fraction,
    run_with_oom_backoff,
)
from uaes_hf.extract.text import TextFeatureExtractor

tiny_gpt2_dir = extract_helpers.tiny_gpt2_dir  # shared fixture
tiny_llama_dir = extract_helpers.tiny_llama_dir  # shared fixture


def brute_force(model_dir, texts, pooling, max_length=None):
    """Each text alone (no padding at all), every hidden state pooled by hand."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    rows = []
    for text in texts:
        ids = tokenizer(text)["input_ids"]
        if max_length is not None:
            ids = tokenizer(text, truncation=True, max_length=max_length)["input_ids"]
        with torch.no_grad():
            hidden = model(torch.tensor([ids]), output_hidden_states=True).hidden_states
        per_layer = []
        for layer in hidden:
            tokens = layer[0].numpy()
            per_layer.append(tokens.mean(axis=0) if pooling == "mean" else tokens[-1])
        rows.append(np.stack(per_layer))
    return np.stack(rows)


def stacked(layers):
    return np.stack(layers, axis=1)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_pooling_matches_unpadded_brute_force_under_both_padding_sides(
    arch, pooling, tiny_gpt2_dir, tiny_llama_dir
):
    model_dir = str(tiny_gpt2_dir if arch == "gpt2" else tiny_llama_dir)
    expected = brute_force(model_dir, TEXTS, pooling)
    for side in ("right", "left"):
        extractor = TextFeatureExtractor(
            model_dir, pooling=pooling, batch_size=3, padding_side=side, progress=False
        )
        layers, info = extractor(TEXTS)
        got = stacked(layers)
        assert got.shape == expected.shape  # (N, embeddings + blocks, D)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5, err_msg=side)
        assert info["n_positions"] > info["n_tokens"]  # batches really were padded


def test_length_sorted_order_and_padding_fraction():
    lengths = [3, 9, 1, 9, 4]
    order = length_sorted_order(lengths)
    assert order == [1, 3, 4, 0, 2]  # longest first, stable on ties
    batches = [order[i : i + 2] for i in range(0, 5, 2)]
    # brute force: pad each batch to its max
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    assert padding_fraction(lengths, batches) == pytest.approx(1 - sum(lengths) / padded)
    unsorted = [[0, 1], [2, 3], [4]]
    assert padding_fraction(lengths, batches) < padding_fraction(lengths, unsorted)


@pytest.fixture(scope="module")
def llama_extractor(tiny_llama_dir):
    extractor = TextFeatureExtractor(str(tiny_llama_dir), batch_size=2, progress=False)
    return extractor, stacked(extractor(TEXTS)[0])


@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.permutations(list(range(len(TEXTS)))))
def test_features_follow_the_input_order(llama_extractor, permutation):
    extractor, base = llama_extractor
    permuted = stacked(extractor([TEXTS[i] for i in permutation])[0])
    np.testing.assert_allclose(permuted, base[permutation], rtol=1e-5, atol=1e-6)


def test_truncation_is_counted_and_applied(tiny_gpt2_dir):
    from transformers import AutoTokenizer

    max_length = 5
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_gpt2_dir))
    too_long = sum(len(tokenizer(t)["input_ids"]) > max_length for t in TEXTS)
    assert too_long >= 2
    extractor = TextFeatureExtractor(
        str(tiny_gpt2_dir), max_length=max_length, batch_size=4, progress=False
    )
    layers, info = extractor(TEXTS)
    assert info["n_truncated"] == too_long
    assert info["n_tokens"] <= max_length * len(TEXTS)
    expected = brute_force(str(tiny_gpt2_dir), TEXTS, "mean", max_length=max_length)
    np.testing.assert_allclose(stacked(layers), expected, rtol=1e-4, atol=1e-5)


def test_invalid_inputs_raise_clear_errors(tiny_gpt2_dir):
    with pytest.raises(ValueError, match="pooling"):
        TextFeatureExtractor(str(tiny_gpt2_dir), pooling="max")
    extractor = TextFeatureExtractor(str(tiny_gpt2_dir), progress=False)
    with pytest.raises(ValueError, match="not one string"):
        extractor("a single string")
    with pytest.raises(ValueError, match="empty"):
        extractor([])
    with pytest.raises(ValueError, match="strings"):
        extractor(["ok", 3])


def test_oom_halves_the_batch_and_finishes_every_item():
    seen: list[list[int]] = []

    def step(batch):
        if len(batch) > 2:  # what a too-large batch does on a GPU
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        seen.append(batch)

    sizes = []
    final = run_with_oom_backoff(list(range(11)), 8, step, on_backoff=sizes.append)
    assert final == 2 and sizes == [4, 2]
    assert sorted(i for batch in seen for i in batch) == list(range(11))  # each item once


def test_oom_on_one_item_and_other_errors_propagate():
    def always_oom(batch):
        raise RuntimeError("CUDA error: out of memory")

    with pytest.raises(MemoryError, match="batch of one"):
        run_with_oom_backoff([0, 1], 2, always_oom)

    def broken(batch):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_with_oom_backoff([0, 1], 2, broken)


def test_real_model_out_of_memory_halves_the_batch_and_matches(tiny_llama_dir, capsys):
    """A real model whose forward raises the CUDA OOM error for batches above 2 rows."""
    model_dir = str(tiny_llama_dir)
    extractor = TextFeatureExtractor(model_dir, batch_size=8, progress=False)
    batch_rows: list[int] = []

    def fail_when_too_big(_module, args, kwargs):
        rows = kwargs["input_ids"].shape[0]
        batch_rows.append(rows)
        if rows > 2:  # what the accelerator does when a batch does not fit
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")

    handle = extractor.model.register_forward_pre_hook(fail_when_too_big, with_kwargs=True)
    try:
        layers, info = extractor(TEXTS)
    finally:
        handle.remove()
    assert batch_rows[:3] == [7, 4, 2]  # 8 (all 7 items) -> 4 -> 2, then the run goes on
    assert info["final_batch_size"] == 2 and extractor.batch_size == 2
    assert info["n_batches"] == 4  # 7 items in batches of 2
    assert "out of memory; batch size now 2" in capsys.readouterr().err
    expected = brute_force(model_dir, TEXTS, "mean")
    np.testing.assert_allclose(stacked(layers), expected, rtol=1e-4, atol=1e-5)
