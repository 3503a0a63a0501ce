"""Benchmark the retrieval index and the fine-tuning step, against baselines in-process.

(a) ``ImageIndex.search`` (chunked exact top-k, reused from ``uaes_hf.alignment``) against a
    dense numpy baseline (normalise, full Q x N product, ``argsort`` of every row), same
    inputs, interleaved; prints medians and the ratio, and checks both give the same sets.
(b) one preference fine-tuning step of the offline encoder's heads (ranked DPO + contrastive,
    256 pairs, 256 captions) against one LiT InfoNCE step on the same batch size: the cost of
    the DPO machinery (a frozen reference forward) relative to plain contrastive training.

Usage:
    python benchmarks/bench_retrieval.py            # N=20,000 images, Q=512 queries
    python benchmarks/bench_retrieval.py --quick    # small smoke run (seconds)
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np


def dense_topk(queries: np.ndarray, gallery: np.ndarray, k: int) -> np.ndarray:
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    return np.argsort(-(q @ g.T), axis=1, kind="stable")[:, :k]


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_index(n: int, q: int, d: int, k: int, repeats: int) -> None:
    from uaes_hf.retrieval.index import ImageIndex

    rng = np.random.default_rng(0)
    gallery = rng.normal(size=(n, d)).astype(np.float32)
    queries = rng.normal(size=(q, d)).astype(np.float32)
    index = ImageIndex(gallery)
    ours = index.search(queries, k).indices
    base = dense_topk(queries, gallery, k)
    same = np.mean([set(a) == set(b) for a, b in zip(ours, base, strict=True)])
    t_ours, t_base = [], []
    for _ in range(repeats):  # interleaved
        t_ours.append(median_time(lambda: index.search(queries, k), 1))
        t_base.append(median_time(lambda: dense_topk(queries, gallery, k), 1))
    mo, mb = statistics.median(t_ours), statistics.median(t_base)
    print(
        f"(a) top-{k} of {q} queries over N={n}, D={d}: ours {mo * 1e3:.1f} ms, "
        f"dense argsort {mb * 1e3:.1f} ms, ratio {mb / mo:.2f}x; same sets {same:.3f}"
    )


def bench_step(batch: int, repeats: int) -> None:
    import torch

    from uaes_hf.retrieval.dpo import finetune_objective
    from uaes_hf.retrieval.heads import LinearProjections
    from uaes_hf.retrieval.lit import info_nce

    torch.manual_seed(0)
    heads = LinearProjections(1280, 384, 256)
    reference = heads.frozen_copy()
    optimizer = torch.optim.AdamW(heads.parameters(), lr=1e-3)
    data = {
        "query": torch.randn(batch, 384),
        "better": torch.randn(batch, 1280),
        "worse": torch.randn(batch, 1280),
        "caption_text": torch.randn(batch, 384),
        "caption_image": torch.randn(batch, 1280),
    }

    def dpo_step() -> None:
        loss, _ = finetune_objective(
            heads, reference, data, beta=1.0, label_smoothing=0.1, contrastive_weight=1.0
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def lit_step() -> None:
        loss = info_nce(
            heads.image(data["caption_image"]), heads.text(data["caption_text"]), heads.scale()
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    dpo_step(), lit_step()  # warm up
    t_dpo = median_time(dpo_step, repeats)
    t_lit = median_time(lit_step, repeats)
    print(
        f"(b) one step, batch {batch}: DPO + contrastive {t_dpo * 1e3:.1f} ms, "
        f"InfoNCE only {t_lit * 1e3:.1f} ms, ratio {t_dpo / t_lit:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        bench_index(2000, 64, 256, 5, 3)
        bench_step(64, 3)
    else:
        bench_index(20000, 512, 512, 5, 7)
        bench_step(256, 15)


if __name__ == "__main__":
    main()
