"""Time the largest request the Space's budget allows, per metric (what a visitor can cost).

For each metric, the request at the edge of :class:`uaes_hf.space.budget.SpaceBudget`
(N = max_rows, and N = 2,000 for the kernel metrics; the widest files the value cap allows;
the largest k the budget allows, then the most permutations it allows with that k) runs
through the Space's own path: the upload's shape from its header, the budget check, the
read, and :func:`uaes_hf.alignment.compare`. The baseline, run in the same process on the
same files, is the same request with no permutations (reading, the neighbour search or
kernel, and the score); the script prints medians and the ratio.

Usage:
    python benchmarks/space_budget.py            # every metric, 3 repeats (a few minutes)
    python benchmarks/space_budget.py --quick    # mutual_knn and cka, 1 repeat
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from uaes_hf.space.budget import BudgetError, SpaceBudget
from uaes_hf.space.comparison import CompareSettings, compare_request
from uaes_hf.space.uploads import read_upload, upload_shape


def largest_request(metric: str, budget: SpaceBudget, n: int, d: int) -> CompareSettings:
    """The largest k the budget allows at N = n (with no permutations), then the most
    permutations it allows with that k."""

    def allowed(k: int, permutations: int) -> bool:
        try:
            budget.check_compare(metric, n=n, dims=(d, d), k=k, permutations=permutations)
        except BudgetError:
            return False
        return True

    k = max(k for k in range(1, min(budget.max_k, n - 1) + 1) if allowed(k, 0))
    low, high = 0, budget.max_permutations  # the most permutations: bisection
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if allowed(k, middle) else (low, middle - 1)
    return CompareSettings(metric=metric, k=k, permutations=low)


def run_once(paths: tuple[Path, Path], settings: CompareSettings, budget: SpaceBudget) -> float:
    started = time.perf_counter()
    shapes = [upload_shape(path, name, budget) for path, name in zip(paths, "AB", strict=True)]
    budget.check_compare(
        settings.metric, n=shapes[0][0], dims=(shapes[0][1], shapes[1][1]), k=settings.k,
        permutations=settings.permutations,
    )  # fmt: skip
    a, b = (read_upload(path, name, budget) for path, name in zip(paths, "AB", strict=True))
    compare_request(a, b, settings, budget)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    budget = SpaceBudget()
    n_max = budget.max_rows
    cases = [("mutual_knn", n_max), ("cka", n_max), ("cka", 2000)] if args.quick else [
        ("mutual_knn", n_max), ("cknna", n_max), ("cycle_knn", n_max), ("lcs_knn", n_max),
        ("edit_distance_knn", n_max), ("cka", n_max), ("cka", 2000), ("unbiased_cka", n_max),
        ("unbiased_cka", 2000), ("svcca", n_max),
    ]  # fmt: skip
    repeats = 1 if args.quick else 3
    rng = np.random.default_rng(0)
    folder = Path(tempfile.mkdtemp())
    print(f"budget: {budget}")
    print(f"{'metric':18} {'N':>5} {'D':>4} {'k':>4} {'perms':>5} {'median s':>9} "
          f"{'no-perm s':>9} {'ratio':>6}")  # fmt: skip
    for metric, n in cases:
        d = budget.max_cells // n
        if metric == "svcca":
            d = min(d, int((budget.max_svd_work / n) ** 0.5))
        shared = rng.normal(size=(n, d)).astype(np.float32)
        paths = (folder / f"{metric}_{n}_a.npy", folder / f"{metric}_{n}_b.npy")
        np.save(paths[0], shared)
        np.save(paths[1], shared + rng.normal(size=shared.shape).astype(np.float32))
        settings = largest_request(metric, budget, n, d)
        baseline = CompareSettings(metric=metric, k=settings.k, permutations=0)
        run_once(paths, baseline, budget)  # warm-up (imports, allocator)
        times, base = [], []
        for _ in range(repeats):  # interleaved, so load changes hit both alike
            base.append(run_once(paths, baseline, budget))
            times.append(run_once(paths, settings, budget))
        median, base_median = statistics.median(times), statistics.median(base)
        print(
            f"{metric:18} {n:5d} {d:4d} {settings.k:4d} {settings.permutations:5d} "
            f"{median:9.2f} {base_median:9.2f} {median / base_median:6.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
