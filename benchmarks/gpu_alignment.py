"""The symmetric neighbour search on a GPU: one million rows, the reference, and the CPU.

Three parts, each printed as it finishes:

1. ``--n`` rows (default 1,000,000 x 1,024, k=10) of seeded random features made on the
   device: time of ``nearest_neighbors``, peak GPU memory (``torch.cuda.max_memory_allocated``)
   and peak host RSS, and a spot check of ``--spot`` rows against a float64 brute force;
2. ``--compare-n`` rows (default 100,000): the symmetric search against the row-panel
   reference (``symmetric=False``, the full Gram product) in this process, interleaved,
   medians and ratio, and how far their results differ;
3. ``--check-n`` rows (default 4,096): the result on ``--device`` against the CPU's, in
   float64 (indices must be equal) and float32 (indices may differ only at near ties).

Rounding: two GEMMs of different shapes (or devices) may round a dot product differently,
by at most ``gamma_D * sum_k |x_ik x_jk|`` each (``gamma_D ~ D * 2**-24`` in float32); where
two neighbour indices differ, the two candidates' float64 similarities must lie within that
bound of each other (a near tie), or the check fails.

Run from the repository root:

    PYTHONPATH=src python3 benchmarks/gpu_alignment.py            # CUDA; about a minute on an H200
    PYTHONPATH=src python3 benchmarks/gpu_alignment.py --device cpu --n 20000 \\
        --compare-n 8000 --check-n 1000                            # the same script on CPU

Exits 0 when CUDA is asked for but absent (nothing to run), 1 when a check fails.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

GIB = 1024**3


def host_peak_rss() -> int:
    """This process's peak resident set (VmHWM), in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return -1


def sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def features(n: int, d: int, device: Any, seed: int) -> Any:
    """Seeded standard-normal features made on ``device`` (float32)."""
    import torch

    generator = torch.Generator(device=device).manual_seed(seed)
    return torch.randn((n, d), generator=generator, device=device, dtype=torch.float32)


def near_tie_failures(x: Any, rows: Any, got: Any, want: Any) -> int:
    """Positions where ``got`` and ``want`` name different neighbours of ``rows`` whose
    float64 cosines are further apart than twice the float32 dot-product bound."""
    import torch

    differ = (got != want).nonzero()
    if differ.numel() == 0:
        return 0
    d = x.shape[1]
    gamma = d * 2.0**-24 / (1 - d * 2.0**-24)

    def unit(r: Any) -> Any:
        return torch.nn.functional.normalize(x[r].double(), dim=1)

    i = rows[differ[:, 0]]
    a, b = got[differ[:, 0], differ[:, 1]], want[differ[:, 0], differ[:, 1]]
    ui, ua, ub = unit(i), unit(a), unit(b)
    s_a, s_b = (ui * ua).sum(1), (ui * ub).sum(1)
    bound = gamma * ((ui.abs() * ua.abs()).sum(1) + (ui.abs() * ub.abs()).sum(1))
    return int(((s_a - s_b).abs() > 2 * bound + 1e-12).sum())


def part_large(args: argparse.Namespace, device: Any) -> bool:
    import torch

    from uaes_hf.alignment import nearest_neighbors

    x = features(args.n, args.d, device, args.seed)
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    index = nearest_neighbors(x, args.k)
    sync(device)
    seconds = time.perf_counter() - start
    gpu = torch.cuda.max_memory_allocated(device) / GIB if device.type == "cuda" else float("nan")
    print(
        f"[1] N={args.n:,} D={args.d} k={args.k} on {device}: {seconds:.1f} s, peak GPU memory "
        f"{gpu:.2f} GiB (features alone {args.n * args.d * 4 / GIB:.2f} GiB), peak host RSS "
        f"{host_peak_rss() / GIB:.2f} GiB",
        flush=True,
    )
    # spot check: a few rows against a float64 brute force over all N rows
    rows = torch.randperm(args.n, generator=torch.Generator().manual_seed(1))[: args.spot]
    rows = rows.to(device)
    query = torch.nn.functional.normalize(x[rows].double(), dim=1)
    step = 1 << 17
    sims = [
        query @ torch.nn.functional.normalize(x[c0 : c0 + step].double(), dim=1).T
        for c0 in range(0, args.n, step)
    ]
    table = torch.cat(sims, 1)
    table[torch.arange(rows.numel(), device=device), rows] = -torch.inf
    want = table.sort(dim=1, descending=True, stable=True).indices[:, : args.k]
    got = torch.as_tensor(index.indices, device=device)[rows]
    exact = float((got == want).float().mean())
    failures = near_tie_failures(x, rows, got, want)
    print(
        f"    spot check of {rows.numel()} rows against float64: {exact:.4%} of indices equal, "
        f"{failures} difference(s) not explained by a near tie",
        flush=True,
    )
    del x, table, sims
    return failures == 0


def part_compare(args: argparse.Namespace, device: Any) -> bool:
    import torch

    from uaes_hf.alignment.neighbors import _search

    x = features(args.compare_n, args.d, device, args.seed + 1)

    def timed(**kw: Any) -> tuple[float, Any]:
        sync(device)
        start = time.perf_counter()
        out = _search(x, args.k, **kw)
        sync(device)
        return time.perf_counter() - start, out

    timed(), timed(symmetric=False)  # warm-up
    new_times, ref_times = [], []
    for _ in range(args.repeats):
        t, new = timed()
        new_times.append(t)
        t, ref = timed(symmetric=False)
        ref_times.append(t)
    new_s, ref_s = statistics.median(new_times), statistics.median(ref_times)
    rows = torch.arange(args.compare_n, device=device)
    got = torch.as_tensor(new.indices, device=device)
    want = torch.as_tensor(ref.indices, device=device)
    failures = near_tie_failures(x, rows, got, want)
    gap = float(abs(new.similarities.astype("float64") - ref.similarities).max())
    print(
        f"[2] N={args.compare_n:,} D={args.d} on {device}, {args.repeats} interleaved repeats: "
        f"symmetric {new_s:.3f} s, reference {ref_s:.3f} s, ratio {new_s / ref_s:.2f}; indices "
        f"equal {float((got == want).float().mean()):.4%}, max |similarity gap| {gap:.2e}, "
        f"{failures} index difference(s) not explained by a near tie",
        flush=True,
    )
    return failures == 0


def part_check(args: argparse.Namespace, device: Any) -> bool:
    import numpy as np
    import torch

    from uaes_hf.alignment import nearest_neighbors

    x = features(args.check_n, args.check_d, device, args.seed + 2)
    ok = True
    for dtype in ("float64", "float32"):
        here = nearest_neighbors(x, args.k, dtype=dtype)
        cpu = nearest_neighbors(x.cpu(), args.k, dtype=dtype)
        equal = float((here.indices == cpu.indices).mean())
        gap = float(np.abs(here.similarities.astype(np.float64) - cpu.similarities).max())
        rows = torch.arange(args.check_n)
        failures = near_tie_failures(
            x.cpu(), rows, torch.from_numpy(here.indices), torch.from_numpy(cpu.indices)
        )
        if dtype == "float64":
            failures += int((here.indices != cpu.indices).sum())
        ok &= failures == 0
        print(
            f"[3] N={args.check_n:,} D={args.check_d} {dtype}: {device} vs CPU indices equal "
            f"{equal:.4%}, max |similarity gap| {gap:.2e}, {failures} unexplained difference(s)",
            flush=True,
        )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=1024)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--spot", type=int, default=64, help="rows spot-checked in part 1")
    parser.add_argument("--compare-n", type=int, default=100_000)
    parser.add_argument("--check-n", type=int, default=4096)
    parser.add_argument("--check-d", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parts", default="123", help="which parts to run, e.g. 23")
    args = parser.parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("CUDA is not available here: nothing to run (pass --device cpu to run on CPU)")
        return 0
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__}, {name}, {torch.get_num_threads()} CPU threads", flush=True)
    ok = True
    for part, run in (("1", part_large), ("2", part_compare), ("3", part_check)):
        if part in args.parts:
            ok &= run(args, device)
    print("all checks passed" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
