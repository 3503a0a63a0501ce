"""Length-sorted batching vs padding every text to the longest one (the reference's approach).

Same model, same texts (the embedded public-domain poems), same batch size and max length,
same masked-mean pooling; only the batching differs. Prints real tokens per second and the
fraction of padded positions for both, and their ratio, from one process. The two runs are
interleaved (A, B, A, B ...) so a busy machine slows both alike; medians over repeats.

    uaes prepare embedded      # builds the poems repo under $UAES_HOME/data/embedded/poems
    python benchmarks/bench_extract.py --model smollm2-135m --n-texts 128 --max-length 512

Targets (issue 5): >= 2x tokens/s and < 10% padding for length-sorted batching.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def default_dataset() -> Path:
    """Where ``uaes prepare embedded`` writes the embedded poems dataset repo."""
    from uaes_hf.paths import cache_dir

    return cache_dir("data", "embedded") / "poems"


def poem_texts(n_texts: int, dataset: str | None, config: str, seed: int = 0) -> list[str]:
    """A random sample of the embedded poems: the built dataset repo (``uaes prepare
    embedded``) when present, else the poems straight from the data package."""
    path = Path(dataset) if dataset else default_dataset()
    if (path / "README.md").exists():
        from uaes_hf.extract.source import read_dataset

        texts = list(read_dataset(str(path), config)["text"])
        print(f"poems: {path} (config {config}, {len(texts)} rows)")
    else:
        from uaes_hf.data.embedded import embedded_poems

        texts = [poem.text for poem in embedded_poems()]
        print(f"poems: uaes_hf.data.embedded.embedded_poems() ({len(texts)}; {path} not built)")
    rng = np.random.default_rng(seed)  # a random sample keeps the natural length mix
    chosen = rng.choice(len(texts), size=min(n_texts, len(texts)), replace=False)
    return [texts[i] for i in chosen]


def run_padded_to_longest(extractor, ids: list[list[int]], batch_size: int):
    """The reference: pad the whole dataset to its longest text, batch in input order."""
    import torch

    from uaes_hf.extract.batching import masked_mean

    longest = max(len(row) for row in ids)
    encoded = extractor.tokenizer.pad(
        {"input_ids": ids}, padding="max_length", max_length=longest, return_tensors="pt"
    )
    out = []
    started = time.perf_counter()
    for start in range(0, len(ids), batch_size):
        input_ids = encoded["input_ids"][start : start + batch_size]
        mask = encoded["attention_mask"][start : start + batch_size]
        with torch.inference_mode():
            hidden = extractor.model(
                input_ids=input_ids, attention_mask=mask, output_hidden_states=True
            ).hidden_states
        out.append(torch.stack([masked_mean(h, mask) for h in hidden], dim=1).numpy())
    seconds = time.perf_counter() - started
    real = sum(len(row) for row in ids)
    return np.concatenate(out), seconds, 1 - real / (len(ids) * longest)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument(
        "--dataset",
        default=None,
        help="poems dataset repo folder (default: the `uaes prepare embedded` output)",
    )
    parser.add_argument("--config", default="aligned_5")
    parser.add_argument("--n-texts", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (on a shared, oversubscribed machine 1 is often fastest)",
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from uaes_hf.extract.text import TextFeatureExtractor

    texts = poem_texts(args.n_texts, args.dataset, args.config)
    extractor = TextFeatureExtractor(
        args.model, batch_size=args.batch_size, max_length=args.max_length, progress=False
    )
    ids, n_truncated = extractor.tokenize(texts)
    lengths = [len(row) for row in ids]
    print(
        f"model={args.model} texts={len(texts)} tokens: min={min(lengths)} "
        f"median={int(np.median(lengths))} max={max(lengths)} truncated={n_truncated} "
        f"batch={args.batch_size} max_length={args.max_length} threads={_threads()}"
    )
    extractor(texts[:2])  # warm-up (allocator, kernels)

    ref_rates, new_rates = [], []
    ref_pad = new_pad = 0.0
    for repeat in range(args.repeats):
        ref_feats, ref_seconds, ref_pad = run_padded_to_longest(extractor, ids, args.batch_size)
        layers, info = extractor(texts)
        new_feats = np.stack(layers, axis=1)
        new_pad = 1 - info["n_tokens"] / info["n_positions"]
        ref_rates.append(sum(lengths) / ref_seconds)
        new_rates.append(info["n_tokens"] / info["seconds"])
        diff = float(np.abs(ref_feats - new_feats).max() / np.abs(ref_feats).max())
        print(
            f"repeat {repeat}: padded-to-longest {ref_rates[-1]:.0f} tok/s, "
            f"length-sorted {new_rates[-1]:.0f} tok/s, max relative feature difference {diff:.1e}"
        )
    # Padding depends only on token lengths and the batch size: count it on every poem too.
    from uaes_hf.extract.batching import length_sorted_order, padding_fraction

    all_lengths = [
        len(row) for row in extractor.tokenize(poem_texts(10**9, args.dataset, args.config))[0]
    ]
    order = length_sorted_order(all_lengths)
    sorted_batches = [order[i : i + args.batch_size] for i in range(0, len(order), args.batch_size)]
    longest_all = 1 - sum(all_lengths) / (len(all_lengths) * max(all_lengths))
    print(
        f"all {len(all_lengths)} poems, batch {args.batch_size}: padding length-sorted "
        f"{padding_fraction(all_lengths, sorted_batches):.1%}, padded-to-longest {longest_all:.1%}"
    )
    ref_rate, new_rate = statistics.median(ref_rates), statistics.median(new_rates)
    print(f"padded-to-longest (reference): {ref_rate:8.1f} tokens/s   padding {ref_pad:6.1%}")
    print(f"length-sorted batches (ours):  {new_rate:8.1f} tokens/s   padding {new_pad:6.1%}")
    print(
        f"ratio: {new_rate / ref_rate:.2f}x tokens/s (target >= 2x); "
        f"padding {new_pad:.1%} (target < 10%)"
    )
    return 0


def _threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    sys.exit(main())
