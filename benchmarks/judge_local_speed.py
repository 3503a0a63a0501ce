"""Local judge speed: next-token scoring (one forward pass) vs generating a rationale.

Baselines, measured in the same process, interleaved with the backend's calls:

- one full forward pass over the whole prompt (what ``rate`` did before it reused the
  rubric prefix's key/value cache);
- ``generate`` of a 64-token answer (what a judge writing the rubric's rationale would
  need; skip with ``--new-tokens 0``).

Prints medians and ratios.

    HF_HUB_OFFLINE=1 python benchmarks/judge_local_speed.py --poems 3
"""

from __future__ import annotations

import argparse
import statistics
import time

POEMS = [
    "Shall I compare thee to a summer's day?\nThou art more lovely and more temperate:\n"
    "Rough winds do shake the darling buds of May,\nAnd summer's lease hath all too short a date;",
    "Succeed success\nBe successful,\nBe happy earning peace\nLife is beautiful.",
    "Carefree paper kites soar with childhood dreams\nStill in my mind a distant merriment,\n"
    "Echoes of our laughter and glee it seems\nReturn with their lost mirth and enchantment.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--poems", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from uaes_hf.annotate.local_backend import LocalRatingBackend

    start = time.perf_counter()
    backend = LocalRatingBackend()
    backend.preflight()
    print(
        f"model load: {time.perf_counter() - start:.1f} s (torch threads {torch.get_num_threads()})"
    )
    poems = (POEMS * args.poems)[: args.poems]
    backend.rate(poems[0])  # warm-up

    score_s, full_s, gen_s = [], [], []
    for poem in poems:
        t = time.perf_counter()
        backend.rate(poem)
        score_s.append(time.perf_counter() - t)
        ids, _ = backend.prompt_ids(poem)
        t = time.perf_counter()
        with torch.inference_mode():
            backend._lm(input_ids=torch.tensor([ids]), logits_to_keep=1)
        full_s.append(time.perf_counter() - t)
        if not args.new_tokens:
            continue
        t = time.perf_counter()
        with torch.inference_mode():
            backend._lm.generate(
                torch.tensor([ids]),
                max_new_tokens=args.new_tokens,
                min_new_tokens=args.new_tokens,
                do_sample=False,
            )
        gen_s.append(time.perf_counter() - t)
    s, f = statistics.median(score_s), statistics.median(full_s)
    print(
        f"next-token score (cached rubric prefix, {len(backend._prefix_ids)} tokens): "
        f"median {s:.2f} s/poem over {len(poems)} poems"
    )
    print(f"full forward pass (baseline): median {f:.2f} s/poem; speed-up {f / s:.2f}x")
    if gen_s:
        g = statistics.median(gen_s)
        print(f"generate {args.new_tokens} tokens (baseline): median {g:.2f} s/poem")
        print(f"speed-up of next-token scoring over generation: {g / s:.1f}x")


if __name__ == "__main__":
    main()
