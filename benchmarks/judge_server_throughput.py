"""Judge throughput against the local OpenAI-compatible test server (tests/openai_server.py).

Every answer is delayed by ``--latency`` seconds (a stand-in for a real API's latency).
Baseline: ``--concurrency 1`` in the same process. Prints medians of ``--repeats`` runs of
``judge_poems`` (fresh store each time: prompt render, HTTP call, parse, SQLite commit) and
the speed-up of bounded concurrency; then the same with 20% faults for the cost of retries.

    HF_HUB_OFFLINE=1 python benchmarks/judge_server_throughput.py --poems 64 --concurrency 8
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def run_once(n_poems: int, concurrency: int, latency: float, fault_rate: float) -> float:
    """Requests per second of one judge run (all poems new)."""
    from openai_server import FakeOpenAIServer, FaultSchedule

    from uaes_hf.annotate.client import ChatClient, ChatConfig
    from uaes_hf.annotate.judge import OpenAIRatingBackend, PoemItem, judge_poems
    from uaes_hf.annotate.store import ResultStore

    items = [
        PoemItem(f"p{i}", f"Poem {i}\nthe {i}th tide turns\nsalt on the {i}th stone")
        for i in range(n_poems)
    ]
    schedule = FaultSchedule(
        seed=1, fault_rate=fault_rate, weights={"429": 1, "500": 1}, retry_after_ms=None
    )
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeOpenAIServer(schedule, response_delay_s=latency) as server,
        ResultStore(Path(tmp) / "r.sqlite") as store,
    ):
        config = ChatConfig(
            base_url=server.base_url, backoff_base=0.01, backoff_max=0.05, concurrency=concurrency
        )
        client = ChatClient(config, api_key="sk-bench")
        start = time.perf_counter()
        summary = judge_poems(items, store, OpenAIRatingBackend(client), progress=False)
        elapsed = time.perf_counter() - start
        requests = len(server.chat_requests())
    assert summary.done == n_poems, summary.format()
    return requests / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--poems", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.05, help="server delay per answer")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    def median(concurrency: int, latency: float, fault_rate: float = 0.0) -> float:
        runs = [run_once(args.poems, concurrency, latency, fault_rate) for _ in range(args.repeats)]
        return statistics.median(runs)

    base = median(1, args.latency)
    bounded = median(args.concurrency, args.latency)
    faulty = median(args.concurrency, args.latency, fault_rate=0.2)
    raw = median(args.concurrency, 0.0)
    print(
        f"{args.poems} poems, server latency {args.latency * 1000:.0f} ms, medians of "
        f"{args.repeats} runs"
    )
    print(f"concurrency 1 (baseline): {base:.1f} requests/s")
    print(f"concurrency {args.concurrency}: {bounded:.1f} requests/s ({bounded / base:.1f}x)")
    print(
        f"concurrency {args.concurrency}, 20% 429/500: {faulty:.1f} requests/s "
        f"({faulty / base:.1f}x; retries included)"
    )
    print(
        f"concurrency {args.concurrency}, no latency (client+server+store overhead): "
        f"{raw:.1f} requests/s ({raw / base:.1f}x)"
    )


if __name__ == "__main__":
    main()
