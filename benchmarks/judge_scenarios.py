"""The judge's failure scenarios of issue 13, measured against real local servers.

Prints one JSON line per scenario: what the server saw and how long a failure took.

- ``double_billing``: two ``uaes annotate poems`` processes started together on one store
  against a faulty server (20% 429/500/malformed): requests, items asked by both runs;
- ``trickle``: a server that sends one byte every 0.5 s; seconds until a 2 s request fails;
- ``dead_endpoint``: an endpoint whose ``/models`` answers but whose chat calls hang:
  requests and seconds until ``uaes annotate poems`` (40 poems, 1 s timeout) gives up;
- ``empty_choices``: every first reply is a billed 200 without choices: tokens the server
  billed vs tokens recorded;
- ``full_disk``: the store on a 2.6 MB tmpfs (``unshare``): answers paid for vs stored.

    HF_HUB_OFFLINE=1 python benchmarks/judge_scenarios.py [names...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))
from openai_server import FakeOpenAIServer, FaultSchedule  # noqa: E402

ENV = {
    **os.environ,
    "OPENAI_API_KEY": "sk-test",
    "HF_HUB_OFFLINE": "1",
    "PYTHONPATH": str(ROOT / "src"),
}


def poems_file(folder: Path, n: int) -> Path:
    path = folder / "poems.txt"
    path.write_text(
        "\n---\n".join(f"Poem {i}\nthe {i}th tide turns\nsalt on stone {i * 3}" for i in range(n))
        + "\n"
    )
    return path


def cli(poems: Path, base_url: str, store: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uaes_hf.cli",
        "annotate",
        "poems",
        str(poems),
        "--base-url",
        base_url,
        "--store",
        str(store),
        "--out",
        str(out),
        "--no-progress",
        "--backoff-base",
        "0.01",
        *extra,
    ]


def double_billing(n: int = 210) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        poems = poems_file(tmp, n)
        sched = FaultSchedule(seed=7, fault_rate=0.2, weights={"429": 1, "500": 1, "malformed": 1})
        with FakeOpenAIServer(sched, response_delay_s=0.02) as server:
            t0 = time.monotonic()
            procs = [
                subprocess.Popen(
                    cli(
                        poems,
                        server.base_url,
                        tmp / "r.sqlite",
                        tmp / f"o{s}.csv",
                        "--seed",
                        str(s),
                        "--concurrency",
                        "4",
                    ),
                    env=ENV,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for s in (1, 2)
            ]
            outs = [p.communicate(timeout=600) for p in procs]
            took = time.monotonic() - t0
            log = server.chat_requests()
    by_item = defaultdict(set)
    good = Counter()
    for r in log:
        by_item[r["item_key"]].add(r["seed"])
        if r["fault"] is None:
            good[r["item_key"]] += 1
    return {
        "items": n,
        "requests": len(log),
        "items_asked_by_both_runs": sum(len(s) > 1 for s in by_item.values()),
        "items_answered_twice": sum(v > 1 for v in good.values()),
        "seconds": round(took, 1),
        "exit_codes": [p.returncode for p in procs],
        "second_run_said": [
            line for o in outs for line in o[1].splitlines() if "another run" in line
        ][:2],
    }


class _Trickle(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        self._trickle()

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._trickle()

    def _trickle(self):
        self.server.hits += 1
        try:
            for ch in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" * 100:
                self.wfile.write(bytes([ch]))
                self.wfile.flush()
                time.sleep(0.5)
        except OSError:
            pass


def serve(handler) -> ThreadingHTTPServer:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    httpd.hits = 0
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def trickle(cap: float = 20.0) -> dict:
    from uaes_hf.annotate.client import ChatClient, ChatConfig

    httpd = serve(_Trickle)
    client = ChatClient(
        ChatConfig(
            base_url=f"http://127.0.0.1:{httpd.server_address[1]}/v1", timeout=2.0, max_retries=0
        ),
        api_key="k",
    )
    client._openai()  # build the HTTP client before the clock starts (first import of openai)
    box = {}

    def call():
        t0 = time.monotonic()
        try:
            client.chat([{"role": "user", "content": "hi"}])
            box["result"] = "answered"
        except Exception as err:
            box["result"] = f"{type(err).__name__}: {str(err)[:80]}"
        box["s"] = time.monotonic() - t0

    th = threading.Thread(target=call, daemon=True)
    th.start()
    th.join(cap)
    return {
        "timeout_s": 2.0,
        "failed_after_s": round(box["s"], 2) if "s" in box else f">{cap} (still waiting)",
        "result": box.get("result", "none"),
    }


class _Dead(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        body = b'{"object": "list", "data": []}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.hits += 1
        time.sleep(3600)


def dead_endpoint(n: int = 40) -> dict:
    httpd = serve(_Dead)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        poems = poems_file(tmp, n)
        t0 = time.monotonic()
        run = subprocess.run(
            cli(
                poems,
                f"http://127.0.0.1:{httpd.server_address[1]}/v1",
                tmp / "r.sqlite",
                tmp / "o.csv",
                "--timeout",
                "1",
                "--max-retries",
                "2",
                "--concurrency",
                "4",
            ),
            env=ENV,
            capture_output=True,
            text=True,
            timeout=900,
        )
        took = time.monotonic() - t0
    return {
        "items": n,
        "requests": httpd.hits,
        "seconds_to_fail": round(took, 1),
        "exit_code": run.returncode,
        "stderr_error_lines": sum(line.startswith("error") for line in run.stderr.splitlines()),
        "timeout_failures_reported": run.stdout.count("timeout"),
        "last_line": (run.stderr.strip().splitlines() or [""])[-1][:160],
    }


class _Empty(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        body = b'{"object": "list", "data": []}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        text = json.dumps(req["messages"])
        with self.server.lock:
            self.server.seen[text] += 1
            first = self.server.seen[text] == 1
        usage = {"prompt_tokens": 100, "completion_tokens": 7 if first else 20, "total_tokens": 0}
        choices = (
            []
            if first
            else [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": '{"thinking": "ok", "score": 3}'},
                    "finish_reason": "stop",
                }
            ]
        )
        body = json.dumps(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "gpt-4o",
                "choices": choices,
                "usage": usage,
            }
        ).encode()
        with self.server.lock:
            self.server.billed[0] += usage["prompt_tokens"]
            self.server.billed[1] += usage["completion_tokens"]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def empty_choices(n: int = 5) -> dict:
    from uaes_hf.annotate.client import ChatClient, ChatConfig
    from uaes_hf.annotate.judge import OpenAIRatingBackend, PoemItem, judge_poems
    from uaes_hf.annotate.store import ResultStore

    httpd = serve(_Empty)
    httpd.seen, httpd.billed, httpd.lock = Counter(), [0, 0], threading.Lock()
    with tempfile.TemporaryDirectory() as tmp:
        client = ChatClient(
            ChatConfig(
                base_url=f"http://127.0.0.1:{httpd.server_address[1]}/v1", backoff_base=0.01
            ),
            api_key="k",
        )
        with ResultStore(Path(tmp) / "r.sqlite") as store:
            s = judge_poems(
                [PoemItem(f"p{i}", f"poem {i}") for i in range(n)],
                store,
                OpenAIRatingBackend(client),
                progress=False,
            )
    return {
        "items": n,
        "server_billed_tokens": httpd.billed,
        "recorded_tokens": [s.prompt_tokens, s.completion_tokens],
        "done": s.done,
    }


def full_disk(n: int = 300, size_kb: int = 2600) -> dict:
    if not shutil.which("unshare"):
        return {"skipped": "no unshare"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        poems = poems_file(tmp, n)
        mnt, keep = tmp / "mnt", tmp / "keep"
        mnt.mkdir()
        keep.mkdir()
        with FakeOpenAIServer(response_delay_s=0.01) as server:
            inner = " ".join(
                f"'{a}'"
                for a in cli(
                    poems, server.base_url, mnt / "r.sqlite", tmp / "o.csv", "--concurrency", "4"
                )
            )
            script = (
                f"mount -t tmpfs -o size={size_kb}k tmpfs {mnt} && {{ {inner}; echo $? > {keep}/rc; }}; "
                f"cp -a {mnt}/. {keep}/"
            )
            t0 = time.monotonic()
            run = subprocess.run(
                ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
                env=ENV,
                capture_output=True,
                text=True,
                timeout=600,
            )
            took = time.monotonic() - t0
            answered = {r["item_key"] for r in server.chat_requests() if r.get("usage")}
        import sqlite3

        stored = 0
        if (keep / "r.sqlite").exists():
            conn = sqlite3.connect(keep / "r.sqlite")
            stored = conn.execute("SELECT COUNT(*) FROM results WHERE status='ok'").fetchone()[0]
            conn.close()
        rc = (keep / "rc").read_text().strip() if (keep / "rc").exists() else "?"
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    return {
        "items": n,
        "tmpfs_kb": size_kb,
        "paid_answers": len(answered),
        "stored_ok": stored,
        "paid_but_lost": len(answered) - stored,
        "exit_code": rc,
        "seconds": round(took, 1),
        "traceback": "Traceback" in run.stderr,
        "last_line": (lines[-1] if lines else "")[:200],
    }


SCENARIOS = {
    "double_billing": double_billing,
    "trickle": trickle,
    "dead_endpoint": dead_endpoint,
    "empty_choices": empty_choices,
    "full_disk": full_disk,
}

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("names", nargs="*", default=list(SCENARIOS))
    for name in p.parse_args().names:
        print(name, json.dumps(SCENARIOS[name]()), flush=True)
