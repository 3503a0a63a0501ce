"""`uaes annotate poems` in real subprocesses: kill -9 midway, Ctrl-C, rerun; setup errors."""

from __future__ import annotations

import csv
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from openai_server import FakeOpenAIServer, FaultSchedule, expected_score, sha256_text

N_POEMS = 48
SECRET = "sk-do-not-print-4711"


def write_poems(path: Path, n: int = N_POEMS) -> list[str]:
    texts = [f"Crash poem {i}\nlight on the {i}th stair\n\nand wind {i * 13}" for i in range(n)]
    path.write_text("\n---\n".join(texts) + "\n")
    return texts


def command(
    poems: Path, server: FakeOpenAIServer, store: Path, out: Path, *extra: str
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uaes_hf.cli",
        "annotate",
        "poems",
        str(poems),
        "--base-url",
        server.base_url,
        "--store",
        str(store),
        "--out",
        str(out),
        "--concurrency",
        "4",
        "--backoff-base",
        "0.01",
        "--timeout",
        "5",
        "--max-reasks",
        "3",
        "--no-progress",
        *extra,
    ]


def env(key: str | None = SECRET) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    environment["HF_HUB_OFFLINE"] = "1"
    if key is not None:
        environment["OPENAI_API_KEY"] = key
    return environment


def ok_hashes(store: Path) -> set[str]:
    if not store.exists():
        return set()
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10)
    try:
        return {h for (h,) in conn.execute("SELECT input_hash FROM results WHERE status='ok'")}
    except sqlite3.OperationalError:  # tables not created yet
        return set()
    finally:
        conn.close()


def wait_for_results(proc: subprocess.Popen, store: Path, at_least: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(ok_hashes(store)) < at_least:
        assert proc.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_interrupt_then_rerun_completes_each_item_once(tmp_path: Path, sig: signal.Signals) -> None:
    poems, store, out = tmp_path / "poems.txt", tmp_path / "r.sqlite", tmp_path / "ratings.csv"
    texts = write_poems(poems)
    hashes = {sha256_text(t) for t in texts}
    schedule = FaultSchedule(
        seed=5,
        fault_rate=0.25,
        weights={"429": 1, "500": 1, "malformed": 1, "score_7": 1, "fenced": 1},
    )
    with FakeOpenAIServer(schedule, response_delay_s=0.1) as server:
        proc = subprocess.Popen(
            command(poems, server, store, out),
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for_results(proc, store, at_least=10, timeout=120)
        proc.send_signal(sig)
        t_signal = time.monotonic()
        _, err_first = proc.communicate(timeout=60)
        exit_s = time.monotonic() - t_signal
        finished = ok_hashes(store)
        n_before = len(server.chat_requests())
        assert 10 <= len(finished) < N_POEMS
        if sig == signal.SIGINT:  # Ctrl-C: a clean message, no traceback, prompt exit
            assert proc.returncode == 130 and "rerun resumes" in err_first
            assert "Traceback" not in err_first and exit_s < 5

        rerun = subprocess.run(
            command(poems, server, store, out),
            env=env(),
            capture_output=True,
            text=True,
            timeout=180,
        )
        after = server.chat_requests()[n_before:]

    assert rerun.returncode == 0, rerun.stderr
    # the server saw no request for an item finished before the interruption
    assert not finished & {r["item_key"] for r in after}
    assert {r["item_key"] for r in after} == hashes - finished  # and all the others were
    # every item completed exactly once, with the score the server meant
    conn = sqlite3.connect(store)
    rows = conn.execute("SELECT input_hash, status, payload FROM results").fetchall()
    runs = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    conn.close()
    assert Counter(h for h, _, _ in rows) == Counter(hashes)
    assert all(status == "ok" for _, status, _ in rows)
    with out.open(newline="") as fh:
        ratings = list(csv.DictReader(fh))
    assert len(ratings) == N_POEMS and len({r["id"] for r in ratings}) == N_POEMS
    by_text = {sha256_text(t)[:16]: sha256_text(t) for t in texts}  # ids are text-hash prefixes
    assert all(int(r["score"]) == expected_score(by_text[r["id"]]) for r in ratings)
    assert runs == 2
    assert f"cached {len(finished)}" in rerun.stdout
    assert SECRET not in rerun.stdout + rerun.stderr + err_first
    assert SECRET.encode() not in store.read_bytes()


def test_missing_key_is_one_clear_error(tmp_path: Path) -> None:
    poems, store = tmp_path / "poems.txt", tmp_path / "r.sqlite"
    write_poems(poems, 3)
    with FakeOpenAIServer() as server:
        run = subprocess.run(
            command(poems, server, store, tmp_path / "o.csv"),
            env=env(None),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert server.chat_requests() == []
    assert run.returncode == 2
    assert run.stderr.count("error:") == 1 and "OPENAI_API_KEY is not set" in run.stderr
    assert "Traceback" not in run.stderr


def test_unreachable_endpoint_is_one_clear_error(tmp_path: Path) -> None:
    poems, store = tmp_path / "poems.txt", tmp_path / "r.sqlite"
    write_poems(poems, 3)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "uaes_hf.cli",
        "annotate",
        "poems",
        str(poems),
        "--base-url",
        f"http://127.0.0.1:{port}/v1",
        "--store",
        str(store),
        "--no-progress",
    ]
    run = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert (
        run.stderr.count("error:") == 1 and f"cannot reach http://127.0.0.1:{port}/v1" in run.stderr
    )
    assert "Traceback" not in run.stderr


def test_standalone_server_subprocess(tmp_path: Path) -> None:
    """`python tests/openai_server.py --port P` serves and logs to a file."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path / "requests.jsonl"
    server = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("openai_server.py")),
            "--port",
            str(port),
            "--log",
            str(log),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout.readline().strip() == f"READY http://127.0.0.1:{port}/v1"
        from uaes_hf.annotate.client import ChatClient, ChatConfig

        client = ChatClient(ChatConfig(base_url=f"http://127.0.0.1:{port}/v1"), api_key="k")
        client.preflight()
        assert '"score"' in client.chat([{"role": "user", "content": "hi"}]).content
    finally:
        server.kill()
        server.wait()
    assert len(log.read_text().splitlines()) == 2  # /models and /chat/completions
