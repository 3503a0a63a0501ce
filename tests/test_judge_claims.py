"""Two runs on one store never pay twice: claims in SQLite, real subprocesses, a real faulty
server; leases that expire, late duplicates whose usage is kept, the schema version check."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from openai_server import FakeOpenAIServer, FaultSchedule, sha256_text

from uaes_hf.annotate.claims import ClaimBook, owner_alive
from uaes_hf.annotate.client import ChatClient, ChatConfig
from uaes_hf.annotate.judge import OpenAIRatingBackend, PoemItem, item_key, judge_poems
from uaes_hf.annotate.store import ResultStore, StoreKey, input_hash

SCHEDULE = FaultSchedule(
    seed=21, fault_rate=0.3, weights={"429": 1, "500": 1, "malformed": 1, "score_7": 1, "fenced": 1}
)


def write_poems(path: Path, n: int) -> list[str]:
    texts = [f"Shared poem {i}\nthe {i}th gull turns\n\nsalt wind {i * 11}" for i in range(n)]
    path.write_text("\n---\n".join(texts) + "\n")
    return texts


def cli(poems: Path, server: FakeOpenAIServer, store: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "uaes_hf.cli", "annotate", "poems", str(poems), "--base-url",
            server.base_url, "--store", str(store), "--out", str(out), "--no-progress",
            "--backoff-base", "0.01", "--concurrency", "4", "--max-reasks", "3", *extra]  # fmt: skip


def env() -> dict[str, str]:
    return {**os.environ, "OPENAI_API_KEY": "sk-test", "HF_HUB_OFFLINE": "1"}


def ok_count(store: Path) -> int:
    if not store.exists():
        return 0
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute("SELECT COUNT(*) FROM results WHERE status='ok'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def wait_until(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def single_run_requests(schedule: FaultSchedule, key: str) -> int:
    """Requests one run makes for an item: faulty answers until a usable one."""
    attempt = 1
    while schedule.fault_for(key, attempt) not in (None, "fenced"):
        attempt += 1
    return attempt


@pytest.mark.slow
def test_two_processes_bill_each_item_once(tmp_path: Path) -> None:
    poems, store = tmp_path / "poems.txt", tmp_path / "r.sqlite"
    hashes = {sha256_text(t) for t in write_poems(poems, 120)}
    # The first run's requests after its first 30 are held until the second run has started
    # asking: the two runs overlap however slowly either process starts.
    first_seen: list[int] = []

    def hold(entry: dict) -> bool:
        if entry["seed"] == 1:
            first_seen.append(1)
        return entry["seed"] == 1 and len(first_seen) > 30

    with FakeOpenAIServer(SCHEDULE, response_delay_s=0.05, hold=hold) as server:
        first = subprocess.Popen(
            cli(poems, server, store, tmp_path / "a.csv", "--seed", "1"),
            env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        wait_until(lambda: ok_count(store) >= 5)  # the second starts while the first works
        second = subprocess.Popen(
            cli(poems, server, store, tmp_path / "b.csv", "--seed", "2"),
            env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        wait_until(lambda: any(r["seed"] == 2 for r in server.chat_requests()), timeout=120)
        server.release()
        out_a, err_a = first.communicate(timeout=300)
        out_b, err_b = second.communicate(timeout=300)
        log = server.chat_requests()
    assert first.returncode == 0 and second.returncode == 0, err_a + err_b
    assert "items are being rated by another run on this store" in err_b
    assert "waiting for them" in err_b
    runs_by_item: dict[str, set] = defaultdict(set)
    requests_by_item: dict[str, int] = defaultdict(int)
    for request in log:
        runs_by_item[request["item_key"]].add(request["seed"])
        requests_by_item[request["item_key"]] += 1
    assert set(runs_by_item) == hashes
    assert all(len(seeds) == 1 for seeds in runs_by_item.values())  # one run per item
    assert {s for seeds in runs_by_item.values() for s in seeds} == {1, 2}  # both worked
    # exactly the requests a single run needs: nothing billed twice
    assert requests_by_item == {h: single_run_requests(SCHEDULE, h) for h in hashes}
    assert ok_count(store) == 120
    for out in (out_a, out_b):  # both runs export every rating
        assert "without a rating 0" in out and "wrote 120 ratings" in out
    # the two runs' token totals are exactly what the server billed in its answers
    billed = sum(r["usage"]["prompt_tokens"] for r in log if "usage" in r)
    told = [int(o.split("tokens: prompt ")[1].split(",")[0]) for o in (out_a, out_b)]
    assert sum(told) == billed


def test_leave_claimed_leaves_them(tmp_path: Path) -> None:
    poems, store = tmp_path / "poems.txt", tmp_path / "r.sqlite"
    write_poems(poems, 12)
    # The slow run's requests are held until the quick run has left: its 12 claims stay live.
    with FakeOpenAIServer(hold=lambda entry: entry["seed"] == 1) as server:
        slow = subprocess.Popen(
            cli(poems, server, store, tmp_path / "a.csv", "--seed", "1", "--concurrency", "12"),
            env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        wait_until(lambda: len(server.chat_requests()) >= 12)
        quick = subprocess.run(
            cli(poems, server, store, tmp_path / "b.csv", "--seed", "2", "--leave-claimed"),
            env=env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        server.release()
        slow.communicate(timeout=120)
        seeds = {r["seed"] for r in server.chat_requests()}
    assert quick.returncode == 3  # items without a rating: the other run has them
    assert "12 of 12 items are being rated by another run" in quick.stderr
    assert "leaving them to it" in quick.stderr
    assert "left to another run 12" in quick.stdout
    assert seeds == {1} and slow.returncode == 0 and ok_count(store) == 12


def backend(server: FakeOpenAIServer) -> OpenAIRatingBackend:
    config = ChatConfig(base_url=server.base_url, backoff_base=0.01, concurrency=2)
    return OpenAIRatingBackend(ChatClient(config, api_key="sk-test"))


def test_a_lease_of_another_machine_expires(tmp_path: Path) -> None:
    items = [PoemItem("a", "Poem A\nheld elsewhere"), PoemItem("b", "Poem B\nfree")]
    with FakeOpenAIServer() as server, ResultStore(tmp_path / "r.sqlite") as store:
        judge = backend(server)
        # A lease long enough that the first call ends before it, even on a loaded machine;
        # the second call cannot have finished before the lease ran out, however long the
        # first one took.
        lease_s = 5.0
        other = ClaimBook(store, owner="far-away/1|77|1|cafe0001", lease_s=lease_s)
        claimed_at = time.monotonic()
        assert other.claim(item_key(judge, items[0].text), seen=None) == "claimed"
        left = judge_poems(items, store, judge, progress=False, wait_for_others=False)
        assert [r["item_key"] for r in server.chat_requests()] == [sha256_text(items[1].text)]
        assert (left.left_to_other_run, left.unrated, left.complete) == (1, 1, False)
        waited = judge_poems(items, store, judge, progress=False)  # waits for the lease
        assert time.monotonic() - claimed_at >= lease_s - 0.25
        assert (waited.done, waited.cached, waited.unrated) == (1, 1, 0)
        assert len(server.chat_requests()) == 2


def test_claims_of_a_dead_local_process_are_free(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    pid = int(gone.stdout)
    with ResultStore(tmp_path / "r.sqlite") as store:
        mine = ClaimBook(store)
        host = mine.owner.split("|")[0]
        dead = ClaimBook(store, owner=f"{host}|{pid}|-|dead0001", lease_s=3600)
        key = StoreKey("t", "b", "m", "v", input_hash("x"))
        assert owner_alive(dead.owner) is False and owner_alive(mine.owner) is True
        assert dead.claim(key, seen=None) == "claimed"
        assert mine.claim(key, seen=None) == "claimed"  # at once, despite the hour-long lease
        assert dead.claim(key, seen=None) == "busy"


@pytest.mark.slow
def test_late_duplicate_keeps_first_answer_and_its_usage(tmp_path: Path) -> None:
    """A run paused past its lease (SIGSTOP, a suspended laptop) loses its items to another
    run; its replies still arrive later: the stored answer stays, their usage is added."""
    poems, store = tmp_path / "poems.txt", tmp_path / "r.sqlite"
    hashes = {sha256_text(t) for t in write_poems(poems, 4)}
    with FakeOpenAIServer(response_delay_s=1.0) as server:
        paused = subprocess.Popen(
            cli(poems, server, store, tmp_path / "a.csv", "--seed", "1", "--lease-seconds", "1",
                "--timeout", "60"),
            env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        wait_until(lambda: len(server.chat_requests()) >= 4)
        paused.send_signal(signal.SIGSTOP)
        try:
            time.sleep(1.5)  # its leases expire; it is alive, so only the expiry frees them
            other = subprocess.run(
                cli(poems, server, store, tmp_path / "b.csv", "--seed", "2"),
                env=env(), capture_output=True, text=True, timeout=120,
            )  # fmt: skip
        finally:
            paused.send_signal(signal.SIGCONT)
        out, err = paused.communicate(timeout=120)
        log = server.chat_requests()
    assert other.returncode == 0 and paused.returncode == 0, err
    assert "late duplicates 4" in out
    with ResultStore(store) as s:
        rows = {r.key.input_hash: r for r in s.results()}
    assert set(rows) == hashes and all(r.ok for r in rows.values())
    for key, row in rows.items():
        replies = [r for r in log if r["item_key"] == key]
        assert {r["seed"] for r in replies} == {1, 2}  # both paid for it
        assert row.params["seed"] == 2  # the answer stored first is kept
        assert row.prompt_tokens == sum(r["usage"]["prompt_tokens"] for r in replies)
        assert row.attempts == 2


def test_schema_version_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    with ResultStore(path) as store:
        store.put_ok(StoreKey("t", "b", "m", "v", "h"), "i", {"score": 3})
    for value, message in (("99", "newer uaes-hf .*schema 99"), ("abc", "unknown .*'abc'")):
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (value,))
        with pytest.raises(ValueError, match=message):
            ResultStore(path)
    # a version-1 store (no claims table) is upgraded in place and keeps its rows
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
        conn.execute("DROP TABLE claims")
    with ResultStore(path) as store:
        assert store.get(StoreKey("t", "b", "m", "v", "h")).payload == {"score": 3}
        assert store.read("SELECT value FROM meta WHERE key='schema_version'") == [("2",)]
        assert ClaimBook(store).claim(StoreKey("t", "b", "m", "v", "new"), None) == "claimed"


def test_duplicate_results_add_their_usage(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        key = StoreKey("t", "b", "m", "v", "h")
        assert store.put_ok(key, "i", {"score": 2}, prompt_tokens=10, cost_usd=0.5) is True
        assert store.put_ok(key, "i", {"score": 5}, prompt_tokens=7, cost_usd=0.25) is False
        assert store.put_failure(key, "i", "timeout", attempts=3, prompt_tokens=1) is False
        row = store.get(key)
    assert row.payload == {"score": 2} and row.ok
    assert (row.prompt_tokens, row.attempts, row.cost_usd) == (18, 5, 0.75)
