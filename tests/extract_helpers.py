"""Shared fixtures for the extract tests: tiny random-weight models built from configs.

Random weights are only for mechanics (pooling, padding, sharding, resume); results on real
models use the packaged ones. The tokenizer is a real word-level ``tokenizers`` tokenizer, so
nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

WORDS = [
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "was",
    "that",
    "for",
    "on",
    "with",
    "as",
    "by",
    "at",
    "from",
    "his",
    "her",
    "it",
    "this",
    "which",
    "but",
    "or",
    "be",
    "are",
    "not",
    "have",
    "had",
    "they",
    "you",
    "we",
    "he",
    "she",
    "them",
    "their",
    "what",
    "all",
    "when",
    "there",
    "one",
    "thou",
    "thee",
    "thy",
    "shall",
    "love",
    "summer",
    "day",
    "night",
    "sea",
    "sky",
    "star",
    "heart",
    "light",
    "dark",
    "rose",
    "wind",
    "rain",
    "moon",
    "sun",
    "death",
    "life",
    "time",
    "dream",
    "song",
    "soul",
    "fire",
    "cloud",
    "flower",
    "tree",
    "bird",
    "gold",
    "silver",
    "eyes",
    "hand",
    "word",
    "poem",
    "verse",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
]

TEXTS = [
    "shall i compare thee to a summer day",
    "the sea",
    "the quick brown fox jumps over the lazy dog and the bird",
    "love is a rose",
    "night",
    "the moon and the stars and the sun over the sea in the dark night of the soul",
    "a song of fire",
]


def build_tokenizer(add_bos: bool):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]
    vocab = {token: index for index, token in enumerate([*specials, *WORDS, "i", ".", ","])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    if add_bos:
        tokenizer.post_processor = processors.TemplateProcessing(
            single="[BOS] $A", special_tokens=[("[BOS]", vocab["[BOS]"])]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="[PAD]",
        unk_token="[UNK]",
        bos_token="[BOS]",
        eos_token="[EOS]",
    )


def save_tiny_model(folder: Path, arch: str) -> Path:
    """A random-weight GPT-2 (absolute positions, no BOS) or Llama (RoPE, BOS) causal LM."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = build_tokenizer(add_bos=arch == "llama")
    vocab = len(tokenizer)
    if arch == "gpt2":
        config = GPT2Config(
            vocab_size=vocab, n_positions=64, n_embd=32, n_layer=2, n_head=4, bos_token_id=2
        )
        model = GPT2LMHeadModel(config)
    else:
        config = LlamaConfig(
            vocab_size=vocab,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=64,
            bos_token_id=2,
            eos_token_id=3,
            pad_token_id=0,
        )
        model = LlamaForCausalLM(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_parquet_repo(folder: Path, texts: list[str], config: str = "aligned_5") -> Path:
    """A dataset repo folder as the data package exports it: README configs + parquet."""
    data_dir = folder / "data" / config
    data_dir.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text(
        "---\nconfigs:\n"
        f"- config_name: {config}\n  data_files:\n  - split: train\n"
        f"    path: data/{config}/train-*.parquet\n---\n# test repo\n"
    )
    frame = pd.DataFrame({"id": [f"p{i}" for i in range(len(texts))], "text": texts})
    frame.to_parquet(data_dir / "train-00000-of-00001.parquet")
    return folder


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "gpt2", "gpt2")


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "llama", "llama")
