"""The durable result store: WAL, per-result commits, kill -9, resume semantics."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from uaes_hf.annotate.store import (
    ResultStore,
    StoreKey,
    estimate_cost,
    input_hash,
)


def key(text: str, model: str = "gpt-4o") -> StoreKey:
    return StoreKey("poem-aesthetic", "openai", model, "poem-aesthetic-v1", input_hash(text))


def test_wal_mode_and_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    with ResultStore(path) as store:
        store.put_ok(
            key("a"),
            "id-a",
            {"score": 4, "thinking": "ü ✓"},
            attempts=2,
            prompt_tokens=10,
            completion_tokens=5,
            cost_usd=0.1,
            params={"temperature": 0.0, "seed": 0},
            run_id="r1",
        )
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with ResultStore(path) as store:
        row = store.get(key("a"))
    assert row is not None and row.ok and row.item_id == "id-a"
    assert row.payload == {"score": 4, "thinking": "ü ✓"}
    assert (row.attempts, row.prompt_tokens, row.completion_tokens, row.cost_usd) == (2, 10, 5, 0.1)
    assert row.params == {"temperature": 0.0, "seed": 0} and row.run_id == "r1"


def test_missing_and_failure_semantics(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        a, b, c = key("a"), key("b"), key("c")
        store.put_ok(a, "a", {"score": 1})
        store.put_failure(b, "b", "rate_limited", "429 x7", attempts=7, prompt_tokens=3)
        assert store.missing([a, b, c, c]) == [b, c]
        assert store.missing([a, b, c], retry_failed=False) == [c]
        # a failure never overwrites an ok row, and a second ok never changes the first
        store.put_failure(a, "a", "server_error")
        store.put_ok(a, "a", {"score": 5})
        assert store.get(a).payload == {"score": 1} and store.get(a).ok
        # a later ok replaces the failure; tokens and attempts add up
        store.put_ok(b, "b", {"score": 2}, attempts=1, prompt_tokens=4)
        row = store.get(b)
        assert row.ok and row.reason is None and row.attempts == 8 and row.prompt_tokens == 7
        # keys differ by model / prompt version: nothing shared
        assert store.missing([key("a", model="gpt-4o-mini")]) == [key("a", model="gpt-4o-mini")]
        assert store.count() == 2 and store.count(status="ok") == 2
        with pytest.raises(ValueError, match="reason"):
            store.put_failure(c, "c", "")
        with pytest.raises(ValueError, match="input_hash"):
            StoreKey("t", "b", "m", "v", "")


def test_runs_table(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        run = store.start_run({"model": "gpt-4o"})
        assert store.runs()[0]["summary"] is None
        store.finish_run(run, {"done": 3})
        assert store.runs()[0]["summary"] == {"done": 3}


def test_threads_write_concurrently(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:

        def write(start: int) -> None:
            for i in range(start, start + 50):
                store.put_ok(key(str(i)), str(i), {"score": i % 5 + 1})

        threads = [threading.Thread(target=write, args=(n * 50,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert store.count() == 200
        assert store.missing([key(str(i)) for i in range(210)]) == [
            key(str(i)) for i in range(200, 210)
        ]


WRITER = r"""
import sys, time
from uaes_hf.annotate.store import ResultStore, StoreKey, input_hash
store = ResultStore(sys.argv[1])
for i in range(10_000):
    store.put_ok(StoreKey("t", "b", "m", "v", input_hash(str(i))), str(i), {"score": 1 + i % 5})
    print(i, flush=True)
    time.sleep(0.002)
"""


def test_kill_9_loses_nothing_committed(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    acknowledged = -1
    deadline = time.monotonic() + 60
    while acknowledged < 50 and time.monotonic() < deadline:
        acknowledged = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert acknowledged >= 50
    with ResultStore(path) as store:
        rows = store.results()
        ids = sorted(int(r.item_id) for r in rows)
    # every write acknowledged before the kill is there, with no gap and no torn row
    assert ids == list(range(len(ids))) and len(ids) >= acknowledged + 1
    assert all(r.payload == {"score": 1 + int(r.item_id) % 5} for r in rows)


def test_bad_store_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="directory"):
        ResultStore(tmp_path)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(ValueError, match="not a usable result store"):
        ResultStore(junk)


def test_estimate_cost() -> None:
    assert estimate_cost("gpt-4o", 1_000_000, 0) == pytest.approx(2.5)
    assert estimate_cost("gpt-4o-mini-2024-07-18", 0, 1_000_000) == pytest.approx(0.6)
    assert estimate_cost("llama-3-8b", 100, 100) is None


def test_input_hash() -> None:
    import hashlib

    assert input_hash("poem") == hashlib.sha256(b"poem").hexdigest()
    assert input_hash(b"poem") == input_hash("poem")
    assert input_hash("ab", "c") != input_hash("a", "bc")
    with pytest.raises(ValueError):
        input_hash()
