"""Throughput of all-layer feature extraction on a random-weight LM built from a config.

Needs no Hub access and no weights: a Llama-style causal LM is built from its config with
random weights (mechanics and speed only, never results), a word-level tokenizer is built in
memory, and synthetic "texts" with a poem-like length mix are extracted through the real code
path (``TextFeatureExtractor``: tokenisation, length-sorted batching, masked-mean pooling of
every hidden state, out-of-memory halving). The same batches padded to the longest text
(the reference study's approach) are timed in the same process as the baseline.

Run from the repository root:

    PYTHONPATH=src python benchmarks/gpu_extract.py --preset 1b            # GPU, bfloat16
    PYTHONPATH=src python benchmarks/gpu_extract.py --preset tiny --device cpu   # CPU, fp32

``--batch-size 1024`` on a GPU makes the first (longest) batch run out of memory on purpose:
the output shows the batch halving until it fits, and the run finishing.

Only torch, transformers, tokenizers, numpy and the uaes_hf source are needed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

# name -> Llama-style config (sizes of well-known models; weights are random)
PRESETS: dict[str, dict[str, int]] = {
    "tiny": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=4096,
    ),
    # SmolLM2-135M's shape
    "smollm2-135m": dict(
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        vocab_size=49152,
    ),
    # TinyLlama-1.1B's shape (Llama-2 architecture, about 1.1B parameters)
    "1b": dict(
        hidden_size=2048,
        intermediate_size=5632,
        num_hidden_layers=22,
        num_attention_heads=32,
        num_key_value_heads=4,
        vocab_size=32000,
    ),
    # Llama-3-8B's shape (about 7.5B parameters without the LM head; needs ~16 GB in bf16)
    "8b": dict(
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
    ),
}


def build_tokenizer(vocab_size: int):
    """A word-level tokenizer over ``w0 .. w{n}`` with pad/unk/bos specials (no download)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<s>"]
    words = [f"w{i}" for i in range(vocab_size - len(specials))]
    vocab = {token: index for index, token in enumerate([*specials, *words])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", vocab["<s>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", unk_token="<unk>", bos_token="<s>"
    )


def synthetic_texts(n_texts: int, vocab_size: int, max_tokens: int, seed: int = 0) -> list[str]:
    """Texts whose token counts follow a poem-like log-normal mix (median ~80, long tail)."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(mean=np.log(80), sigma=0.7, size=n_texts), 4, max_tokens - 1)
    return [
        " ".join(f"w{w}" for w in rng.integers(0, vocab_size - 3, size=int(n))) for n in lengths
    ]


def build_model(preset: str, device: str, dtype):
    import torch
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.for_model(
        "llama", **PRESETS[preset], max_position_embeddings=4096, pad_token_id=0, bos_token_id=2
    )
    torch.manual_seed(0)
    started = time.perf_counter()
    # default dtype + device context: weights are created in place (works on any
    # transformers version, whatever its name for the dtype argument)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = AutoModel.from_config(config)
    finally:
        torch.set_default_dtype(previous)
    model.to(dtype)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"built {preset} ({n_params / 1e6:.0f}M params, {config.num_hidden_layers} layers, "
        f"d={config.hidden_size}) on {device} in {time.perf_counter() - started:.1f}s",
        flush=True,
    )
    return model


def padded_to_longest(extractor, texts: list[str], batch_size: int) -> tuple[float, float, int]:
    """The reference: every text padded to the longest one, batches in input order."""
    import torch

    from uaes_hf.extract.batching import masked_mean

    ids, _ = extractor.tokenize(texts)
    longest = max(len(row) for row in ids)
    encoded = extractor.tokenizer.pad(
        {"input_ids": ids}, padding="max_length", max_length=longest, return_tensors="pt"
    )
    _sync(extractor.device)
    started = time.perf_counter()
    for start in range(0, len(ids), batch_size):
        input_ids = encoded["input_ids"][start : start + batch_size].to(extractor.device)
        mask = encoded["attention_mask"][start : start + batch_size].to(extractor.device)
        with torch.inference_mode():
            hidden = extractor.model(
                input_ids=input_ids, attention_mask=mask, output_hidden_states=True
            ).hidden_states
            torch.stack([masked_mean(h, mask) for h in hidden], dim=1).float().cpu()
    _sync(extractor.device)
    seconds = time.perf_counter() - started
    real = sum(len(row) for row in ids)
    return real / seconds, 1 - real / (len(ids) * longest), real


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> int:
    import torch

    from uaes_hf.extract.text import TextFeatureExtractor

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="1b", choices=sorted(PRESETS))
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument(
        "--dtype", default="auto", choices=["auto", "bfloat16", "float16", "float32"]
    )
    parser.add_argument("--n-texts", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the padded-to-longest reference run"
    )
    args = parser.parse_args()

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.dtype == "auto":
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    else:
        dtype = getattr(torch, args.dtype)
    print(f"torch {torch.__version__}, device {device}", end="")
    if device.startswith("cuda"):
        print(f" ({torch.cuda.get_device_name(device)})", end="")
    print(f", dtype {str(dtype).replace('torch.', '')}", flush=True)

    model = build_model(args.preset, device, dtype)
    vocab_size = PRESETS[args.preset]["vocab_size"]
    tokenizer = build_tokenizer(vocab_size)
    extractor = TextFeatureExtractor.from_loaded(
        model,
        tokenizer,
        name=f"random-{args.preset}",
        batch_size=args.batch_size,
        max_length=args.max_length,
        progress=False,
    )
    texts = synthetic_texts(args.n_texts, vocab_size, args.max_length)
    extractor(texts[: min(len(texts), 8)])  # warm-up: kernels, allocator

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
    rates, paddings, ref_rates, ref_paddings = [], [], [], []
    layers: list[np.ndarray] = []
    for repeat in range(args.repeats):
        _sync(device)
        layers, info = extractor(texts)
        _sync(device)
        rates.append(info["n_tokens"] / info["seconds"])
        paddings.append(1 - info["n_tokens"] / info["n_positions"])
        line = (
            f"repeat {repeat}: length-sorted {rates[-1]:,.0f} tokens/s "
            f"(padding {paddings[-1]:.1%}, final batch size {info['final_batch_size']})"
        )
        if not args.no_baseline:
            # same batch size as the length-sorted run ended with, so both fit in memory
            rate, padding, _ = padded_to_longest(extractor, texts, extractor.batch_size)
            ref_rates.append(rate)
            ref_paddings.append(padding)
            line += f"; padded-to-longest {rate:,.0f} tokens/s (padding {padding:.1%})"
        print(line, flush=True)

    features = np.stack(layers, axis=1)
    assert np.isfinite(features).all(), "non-finite features"
    print(
        f"features: {features.shape} (N x layers x D), {info['n_tokens']:,} real tokens, "
        f"truncated {info['n_truncated']}"
    )
    median = statistics.median(rates)
    print(f"length-sorted:     {median:12,.0f} tokens/s  padding {statistics.median(paddings):.1%}")
    if ref_rates:
        ref = statistics.median(ref_rates)
        print(
            f"padded-to-longest: {ref:12,.0f} tokens/s  padding "
            f"{statistics.median(ref_paddings):.1%}\nratio: {median / ref:.2f}x tokens/s"
        )
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated(device) / 2**30
        print(f"peak GPU memory allocated: {peak:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
