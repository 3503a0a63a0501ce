"""Benchmark uaes_hf.alignment against a dense baseline that mirrors the reference code.

The baseline is the Platonic Representation Hypothesis ``metrics.py`` (minyoungg/platonic-rep)
re-typed here: rows L2-normalised, the full N x N similarity matrix, ``fill_diagonal_``,
``argsort`` of every row, two N x N float masks and their product. Both sides run in this
process on the same inputs, interleaved, and the script prints medians and ratios:

(a) one pair (two neighbour searches and their overlap) at N=1024, D=4096 and N=4096,
    D=1024: the dense baseline, the row-panel search (``symmetric=False``: the full Gram
    product in row panels, the search before the symmetric one), the symmetric search,
    and two bare full Gram products (the cost the row-panel search sat at). Target: the
    symmetric pair >= 2x faster than the dense baseline at N=1024, D=4096;
(b) best layer pair over 24 x 24 layers, N=1024, D=1024, against the loop that recomputes
    both neighbour sets for every pair (target >= 20x). The baseline loop is timed on a
    subset of pairs and extrapolated to all 576 (printed as such);
(c) N=50,000 and N=100,000, D=1024: time and peak RSS of ours, each measured in a fresh
    subprocess (target at 100,000: < 3 minutes and < 3 GB), and the memory the dense
    baseline would need, computed from its allocations (it is not run), checked against the
    dense baseline's peak RSS measured at small N in subprocesses;
(d) one neighbour search at N=16,384, D=1024: symmetric against row-panel, interleaved
    (target: symmetric <= 0.6x the row-panel time).

The machine is shared: the load average is printed with each case.

Usage:
    python benchmarks/bench_alignment.py            # full run (several minutes on 2 cores)
    python benchmarks/bench_alignment.py --quick    # small smoke run (seconds)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

GIB = 1024**3


# ------------------------------------------------------------------ the dense baseline


def reference_knn(feats: Any, topk: int) -> Any:
    """``compute_nearest_neighbors`` of the reference: full matrix, argsort every row."""
    knn = (feats @ feats.T).fill_diagonal_(-1e8).argsort(dim=1, descending=True)[:, :topk]
    return knn


def reference_mutual_knn(feats_a: Any, feats_b: Any, topk: int) -> float:
    """``mutual_knn`` of the reference (on L2-normalised features), N x N masks."""
    import torch

    n = feats_a.shape[0]
    knn_a = reference_knn(feats_a, topk)
    knn_b = reference_knn(feats_b, topk)
    range_tensor = torch.arange(n).unsqueeze(1)
    lvm_mask = torch.zeros(n, n)
    llm_mask = torch.zeros(n, n)
    lvm_mask[range_tensor, knn_a] = 1.0
    llm_mask[range_tensor, knn_b] = 1.0
    acc = (lvm_mask * llm_mask).sum(dim=1) / topk
    return acc.mean().item()


def dense_pair(a: np.ndarray, b: np.ndarray, k: int) -> float:
    import torch
    import torch.nn.functional as F  # noqa: N812

    with torch.no_grad():
        fa = F.normalize(torch.from_numpy(a), p=2, dim=-1)
        fb = F.normalize(torch.from_numpy(b), p=2, dim=-1)
        return reference_mutual_knn(fa, fb, k)


def dense_layer_loop(stack_a: np.ndarray, stack_b: np.ndarray, k: int, pairs: list) -> np.ndarray:
    """The reference's layer search: every pair recomputes both neighbour sets."""
    return np.array([dense_pair(stack_a[:, i], stack_b[:, j], k) for i, j in pairs])


def dense_peak_bytes(n: int, d: int) -> dict[str, float]:
    """Bytes alive at the dense baseline's peak, from its allocations (float32, int64).

    ``argsort`` returns a full N x N int64 array (and sorts a float copy); ``[:, :topk]``
    is a view, so each space keeps its whole N x N index array alive. Peak: while the masks
    are multiplied, both argsort outputs, two float masks and their product are alive.
    """
    nn = n * n
    inputs = 2 * 2 * n * d * 4  # raw + normalised, two spaces
    knn_b_step = 8 * nn + (4 * nn + 4 * nn + 8 * nn)  # kept knn_A; sim + sorted copy + idx
    mask_step = 2 * 8 * nn + 3 * 4 * nn  # kept knn_A, knn_B; two masks and their product
    return {
        "similarity_matrix_only": 4 * nn,
        "n_by_n_part": max(knn_b_step, mask_step),
        "peak": inputs + max(knn_b_step, mask_step),
    }


# ------------------------------------------------------------------ timing helpers


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def interleaved(ours: Callable[[], Any], base: Callable[[], Any], repeats: int) -> dict:
    """Run ours and the baseline alternately; return medians (noise hits both alike)."""
    ours(), base()  # warm-up (allocator, BLAS threads, lazy imports)
    t_ours, t_base, out_ours, out_base = [], [], None, None
    for _ in range(repeats):
        t, out_ours = _timed(ours)
        t_ours.append(t)
        t, out_base = _timed(base)
        t_base.append(t)
    return {
        "ours_s": statistics.median(t_ours),
        "base_s": statistics.median(t_base),
        "ours_all": t_ours,
        "base_all": t_base,
        "ours_out": out_ours,
        "base_out": out_base,
    }


def layer_stack(rng: np.random.Generator, n: int, layers: int, d: int) -> np.ndarray:
    """A drifting residual-stream-like stack: each layer = previous + noise."""
    stack = np.empty((n, layers, d), dtype=np.float32)
    current = rng.standard_normal((n, d), dtype=np.float32)
    for layer in range(layers):
        current = current + 0.5 * rng.standard_normal((n, d), dtype=np.float32)
        stack[:, layer] = current
    return stack


# ------------------------------------------------------------------ the three cases


def load() -> str:
    """The 1-minute load average and the core count (the machine is shared)."""
    import os

    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def medians(runs: dict[str, Callable[[], Any]], repeats: int) -> dict[str, tuple[float, Any]]:
    """Median seconds and last output of each callable, run round-robin after a warm-up."""
    outputs = {name: fn() for name, fn in runs.items()}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            t, outputs[name] = _timed(fn)
            times[name].append(t)
    return {name: (statistics.median(times[name]), outputs[name]) for name in runs}


def two_grams(a: np.ndarray, b: np.ndarray) -> None:
    import torch
    import torch.nn.functional as F  # noqa: N812

    with torch.no_grad():
        for x in (a, b):
            x = F.normalize(torch.from_numpy(x), p=2, dim=-1)
            x @ x.T


def case_one_pair(sizes: list[tuple[int, int]], k: int, repeats: int) -> None:
    from uaes_hf.alignment import mutual_knn
    from uaes_hf.alignment.neighbors import _search

    def row_panel_pair(a: np.ndarray, b: np.ndarray) -> float:
        ia, ib = _search(a, k, symmetric=False), _search(b, k, symmetric=False)
        return mutual_knn(ia, ib, k)

    print(f"(a) one pair, k={k}, {repeats} interleaved repeats; {load()}")
    print("    N, D        | dense (platonic-rep) | row-panel | symmetric | two full Grams")
    for n, d in sizes:
        rng = np.random.default_rng(0)
        a = rng.standard_normal((n, d), dtype=np.float32)
        b = (a @ rng.standard_normal((d, d), dtype=np.float32) / np.sqrt(d)).astype(np.float32)
        b += rng.standard_normal((n, d), dtype=np.float32)
        r = medians(
            {
                "dense": lambda a=a, b=b: dense_pair(a, b, k),
                "panel": lambda a=a, b=b: row_panel_pair(a, b),
                "symmetric": lambda a=a, b=b: mutual_knn(a, b, k),
                "grams": lambda a=a, b=b: two_grams(a, b),
            },
            repeats,
        )
        ms = {name: f"{1e3 * value[0]:.0f} ms" for name, value in r.items()}
        print(
            f"    {n:,}, {d:,} | {ms['dense']:>20} | {ms['panel']:>9} | {ms['symmetric']:>9} | "
            f"{ms['grams']:>14}"
        )
        scores = {name: r[name][1] for name in ("dense", "panel", "symmetric")}
        print(
            f"      scores {', '.join(f'{k_}={v:.6f}' for k_, v in scores.items())}; dense/"
            f"symmetric = {r['dense'][0] / r['symmetric'][0]:.2f}x, symmetric/row-panel = "
            f"{r['symmetric'][0] / r['panel'][0]:.2f}"
            + ("  (target: dense/symmetric >= 2x)" if (n, d) == (1024, 4096) else "")
        )


def case_search(n: int, d: int, k: int, repeats: int) -> None:
    from uaes_hf.alignment.neighbors import _search

    x = np.random.default_rng(4).standard_normal((n, d), dtype=np.float32)
    print(f"(d) one search N={n:,} D={d} k={k}, {repeats} interleaved repeats; {load()}")
    r = medians(
        {
            "symmetric": lambda: _search(x, k),
            "row-panel": lambda: _search(x, k, symmetric=False),
        },
        repeats,
    )
    same = np.array_equal(r["symmetric"][1].indices, r["row-panel"][1].indices)
    gap = np.abs(r["symmetric"][1].similarities - r["row-panel"][1].similarities).max()
    print(
        f"    symmetric median {r['symmetric'][0]:.2f} s, row-panel median "
        f"{r['row-panel'][0]:.2f} s, ratio {r['symmetric'][0] / r['row-panel'][0]:.2f} "
        f"(target <= 0.6); indices identical: {same}, max |similarity gap| {gap:.1e}; "
        f"{load()}"
    )


def case_layers(n: int, layers: int, d: int, k: int, repeats: int, sampled_pairs: int) -> None:
    from uaes_hf.alignment import best_layer_pair

    rng = np.random.default_rng(1)
    stack_a = layer_stack(rng, n, layers, d)
    stack_b = layer_stack(rng, n, layers, d)
    stack_b[:, layers // 2] = stack_a[:, layers // 3] + 0.5 * rng.standard_normal(
        (n, d), dtype=np.float32
    )
    all_pairs = [(i, j) for i in range(layers) for j in range(layers)]
    pick = np.random.default_rng(2).choice(len(all_pairs), size=sampled_pairs, replace=False)
    subset = [all_pairs[p] for p in sorted(pick)]
    r = interleaved(
        lambda: best_layer_pair(stack_a, stack_b, k),
        lambda: dense_layer_loop(stack_a, stack_b, k, subset),
        repeats,
    )
    per_pair = r["base_s"] / len(subset)
    base_total = per_pair * len(all_pairs)
    result = r["ours_out"]
    dense_grid = r["base_out"]
    agree = max(abs(result.grid[i, j] - s) for (i, j), s in zip(subset, dense_grid, strict=True))
    print(f"(b) best layer pair, {layers}x{layers} layers, N={n} D={d} k={k}, {repeats} repeats")
    print(f"    ours (all {len(all_pairs)} pairs)  median {r['ours_s']:.3f} s")
    print(
        f"    dense loop on {len(subset)} sampled pairs median {r['base_s']:.3f} s "
        f"= {per_pair:.3f} s/pair -> extrapolated to {len(all_pairs)} pairs: {base_total:.1f} s"
    )
    print(
        f"    best pair ours=({result.layer_a},{result.layer_b}) score {result.score:.4f}; "
        f"max |ours - dense| on sampled pairs {agree:.2e}"
    )
    print(f"    ratio dense/ours = {base_total / r['ours_s']:.1f}x  (target >= 20x)")


_CHILD = r"""
import json, resource, sys, time
import numpy as np
n, d, k = (int(v) for v in sys.argv[1:4])
mode = sys.argv[4]
import torch  # imported before the clock starts: we time the computation, not imports

def vm_hwm():
    # Peak RSS of this process image. ru_maxrss is inherited across fork+exec on Linux
    # (the parent's peak leaks in), /proc/self/status VmHWM is not; both are printed.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return -1

rng = np.random.default_rng(3)
a = rng.standard_normal((n, d), dtype=np.float32)
b = 0.5 * a + rng.standard_normal((n, d), dtype=np.float32)
after_inputs = vm_hwm()
start = time.perf_counter()
if mode == "ours":
    from uaes_hf.alignment import mutual_knn
    score = mutual_knn(a, b, k)
else:
    sys.path.insert(0, sys.argv[5])
    from bench_alignment import dense_pair
    score = dense_pair(a, b, k)
seconds = time.perf_counter() - start
peak = vm_hwm()
rusage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "peak_rss": peak, "inputs_rss": after_inputs,
                  "ru_maxrss": rusage, "score": score}))
"""


def _child(n: int, d: int, k: int, mode: str) -> dict:
    from pathlib import Path

    here = str(Path(__file__).resolve().parent)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(n), str(d), str(k), mode, here],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def case_large(ns: list[int], d: int, k: int, check_ns: list[int]) -> None:
    print(
        f"(c) D={d} k={k}: one pair in a fresh subprocess per N "
        f"(time excludes imports and input generation)"
    )
    for n in ns:
        ours = _child(n, d, k, "ours")
        print(
            f"    N={n:,}: {ours['seconds']:.1f} s, peak RSS {ours['peak_rss'] / GIB:.2f} GiB "
            f"(inputs + torch alone {ours['inputs_rss'] / GIB:.2f} GiB; getrusage ru_maxrss "
            f"{ours['ru_maxrss'] / GIB:.2f} GiB), score {ours['score']:.4f}; {load()}  "
            f"(target at 100,000: < 180 s, < 3 GB = {3e9 / GIB:.2f} GiB)"
        )
    n = ns[-1]
    for small in check_ns:
        dense = _child(small, d, k, "dense")
        ours_small = _child(small, d, k, "ours")
        predicted = dense_peak_bytes(small, d)["n_by_n_part"]
        grown = dense["peak_rss"] - dense["inputs_rss"]
        print(
            f"    check at N={small}: dense peak RSS {dense['peak_rss'] / GIB:.2f} GiB, of which "
            f"{grown / GIB:.2f} GiB above inputs+torch (allocation model: "
            f"{predicted / GIB:.2f} GiB); ours {ours_small['peak_rss'] / GIB:.2f} GiB; "
            f"time dense {dense['seconds']:.2f} s, ours {ours_small['seconds']:.2f} s"
        )
    need = dense_peak_bytes(n, d)
    print(
        f"    dense baseline at N={n} (computed, not run): the N x N float32 similarity "
        f"alone is {need['similarity_matrix_only'] / GIB:.1f} GiB; its peak with the argsort "
        f"indices and masks is {need['peak'] / GIB:.1f} GiB "
        f"= {need['peak'] / ours['peak_rss']:.0f}x our measured peak"
    )


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", choices=("a", "b", "c", "d"), help="run one case")
    parser.add_argument("--repeats", type=int, help="timed repeats per case (default 5; 2 quick)")
    args = parser.parse_args(argv)
    import torch

    mode = "quick run (small sizes: the targets apply to full runs)" if args.quick else "full run"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; {mode}")
    repeats = args.repeats or (2 if args.quick else 5)
    if args.quick:
        plan = {
            "a": lambda: case_one_pair([(256, 512), (512, 128)], 10, repeats),
            "b": lambda: case_layers(256, 6, 128, 10, repeats, sampled_pairs=6),
            "c": lambda: case_large([4000, 8000], 128, 10, check_ns=[1000]),
            "d": lambda: case_search(3000, 128, 10, repeats),
        }
    else:
        plan = {
            "a": lambda: case_one_pair([(1024, 4096), (4096, 1024)], 10, repeats),
            "b": lambda: case_layers(1024, 24, 1024, 10, max(3, repeats - 2), sampled_pairs=24),
            "c": lambda: case_large([50_000, 100_000], 1024, 10, check_ns=[2048, 4096]),
            "d": lambda: case_search(16_384, 1024, 10, repeats),
        }
    for name, run in plan.items():
        if args.only in (None, name):
            run()
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
