"""Benchmark one draw of the headline test over texts against recomputing it with the library.

Both sides compute the same statistic on the same random split of a pool of texts: the mean
over model pairs of (best-layer mutual kNN on side A - on side B), every neighbour set
recomputed on the split.

* baseline: :func:`uaes_hf.alignment.nearest_neighbors` on every (model, layer) of both
  sides, then the library's grid scorer (``GridCounter``) for every model pair;
* ours: :class:`uaes_hf.experiments.text_resampling.PooledSpaces` (similarities of the
  pool computed once, outside the timing) and one draw of :func:`mean_difference`.

The two statistics are checked equal, then medians of interleaved repeats and their ratio
are printed. Default: the embedded run's largest comparison (4 models x 6 layers, N = 160
a side, D = 640).

Usage:
    python benchmarks/bench_text_resampling.py            # ~1 minute on 2 cores
    python benchmarks/bench_text_resampling.py --quick    # seconds
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import numpy as np


def baseline_statistic(stacks, rows_a, rows_b, pairs, k):
    from uaes_hf.alignment import nearest_neighbors
    from uaes_hf.alignment.layers import select
    from uaes_hf.alignment.mutual_knn import GridCounter

    def side(rows):
        sets = {m: [nearest_neighbors(x[rows], k).indices for x in s] for m, s in stacks.items()}
        return np.array([select(GridCounter(sets[a], sets[b]).scores())[0] for a, b in pairs])

    return float((side(rows_a) - side(rows_b)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, layers, dim, repeats = (60, 3, 64, 3) if args.quick else (160, 6, 640, 7)
    from uaes_hf.experiments.text_resampling import PooledSpaces, mean_difference

    rng = np.random.default_rng(0)
    latent = rng.normal(size=(2 * n, 8))
    stacks = {
        m: [
            (latent @ rng.normal(size=(8, dim)) + rng.normal(size=(2 * n, dim))).astype(np.float32)
            for _ in range(layers)
        ]
        for m in ("a", "b", "c", "d")
    }
    pairs = list(itertools.combinations(stacks, 2))
    started = time.perf_counter()
    pool = PooledSpaces.build(stacks, {m: range(layers) for m in stacks})
    setup = time.perf_counter() - started
    ours_t, base_t = [], []
    for r in range(repeats):
        order = np.random.default_rng(r).permutation(2 * n)
        a, b = order[:n], order[n:]
        t0 = time.perf_counter()
        ours = mean_difference(pool, a, b, pairs, 10)
        t1 = time.perf_counter()
        base = baseline_statistic(stacks, a, b, pairs, 10)
        t2 = time.perf_counter()
        assert abs(ours - base) < 1e-6, (ours, base)
        ours_t.append(t1 - t0)
        base_t.append(t2 - t1)
    ours_med, base_med = statistics.median(ours_t), statistics.median(base_t)
    print(f"pool: {2 * n} texts, 4 models x {layers} layers, D={dim}; setup {setup:.2f} s once")
    print(
        f"one draw (both sides, {len(pairs)} pairs): ours {ours_med * 1e3:.1f} ms, "
        f"library recompute {base_med * 1e3:.1f} ms (medians of {repeats})"
    )
    print(f"ratio: {base_med / ours_med:.1f}x")


if __name__ == "__main__":
    main()
