"""A real OpenAI-compatible HTTP server for tests, with faults on a seeded schedule.

It serves ``POST /v1/chat/completions`` and ``GET /v1/models`` on 127.0.0.1 (stdlib
``ThreadingHTTPServer`` in a daemon thread), logs every request (which item it was for, the
how-many-th request for that item, which fault it got) and injects faults deterministically
from ``(seed, item_key, attempt)``:

- transport faults: ``429`` (with ``Retry-After``/``retry-after-ms``), ``500``, ``slow``
  (answers after ``slow_s``, past the client's timeout), ``garbage_body`` (HTTP 200, not JSON);
- opt-in (never in the default weights, so seeded schedules stay as they were):
  ``empty_choices`` (HTTP 200 with ``choices: []`` and a billed ``usage``), ``trickle``
  (status line, headers and body sent one byte every ``trickle_s`` seconds), ``hang`` (reads
  the request and never answers), ``503`` (always "service unavailable");
- content faults: ``malformed`` (not JSON), ``score_0`` / ``score_7`` (out of range),
  ``fenced`` (valid JSON inside a code fence with chatter around it; NOT a failure).

After ``max_faults_per_item`` faulty answers an item always gets a good answer, except items
picked for ``always_fail_rate``, which always get ``always_fail_kind``.

Reuse: pass ``responder(request: ChatRequest) -> str`` to answer other tasks (image scoring,
poem generation); ``item_key(body) -> str`` to change how requests map to items. The
default item key is ``sha256(poem text)`` for the poem rubric (the text between
"Poem to evaluate:" and "Scoring criteria"), else sha256 of the user message's text parts
(image URLs included), so it matches ``uaes_hf.annotate.store.input_hash`` of the text.

Run standalone (prints ``READY <base_url>`` once listening)::

    python tests/openai_server.py --port 8765 --seed 0 --fault-rate 0.2 --log requests.jsonl
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import random
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TRANSPORT_FAULTS = ("429", "500", "slow", "garbage_body")
OPT_IN_FAULTS = ("empty_choices", "trickle", "hang", "503")
CONTENT_FAULTS = ("malformed", "score_0", "score_7", "fenced")


@dataclass(frozen=True)
class ChatRequest:
    """What a responder sees: the JSON body, its item key and the attempt number (1-based)."""

    body: dict[str, Any]
    item_key: str
    attempt: int

    @property
    def user_text(self) -> str:
        return _user_text(self.body)


@dataclass(frozen=True)
class FaultSchedule:
    """Per-request fault probabilities (each of the 8 kinds) and limits.

    ``weights`` maps a fault kind to its relative probability; ``fault_rate`` is the chance a
    request (within the first ``max_faults_per_item`` of an item) gets any fault at all.
    """

    seed: int = 0
    fault_rate: float = 0.0
    weights: dict[str, float] = field(
        default_factory=lambda: {
            "429": 0.25,
            "500": 0.2,
            "slow": 0.1,
            "garbage_body": 0.05,
            "malformed": 0.15,
            "score_0": 0.1,
            "score_7": 0.1,
            "fenced": 0.05,
        }
    )
    max_faults_per_item: int = 3
    always_fail_rate: float = 0.0
    always_fail_kind: str = "score_7"
    retry_after: str | None = None  # value of the Retry-After header on 429/500
    retry_after_ms: int | None = 20  # value of retry-after-ms on 429/500
    slow_s: float = 1.0
    trickle_s: float = 1.0

    def fault_for(self, item_key: str, attempt: int) -> str | None:
        """The fault the ``attempt``-th request for ``item_key`` gets (None = good answer)."""
        if self.always_fails(item_key):
            return self.always_fail_kind
        if attempt > self.max_faults_per_item or self.fault_rate <= 0:
            return None
        rng = random.Random(f"{self.seed}:{item_key}:{attempt}")
        if rng.random() >= self.fault_rate:
            return None
        kinds = sorted(self.weights)
        return rng.choices(kinds, weights=[self.weights[k] for k in kinds])[0]

    def always_fails(self, item_key: str) -> bool:
        if self.always_fail_rate <= 0:
            return False
        return random.Random(f"{self.seed}:{item_key}:always").random() < self.always_fail_rate


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# The rubric prompts: the study's script quotes the poem in triple double quotes and indents
# the rubric (poem-aesthetic-v2); the paper's version does neither (poem-aesthetic-v1).
_POEM_RES = (
    re.compile(r'Poem to evaluate:\n {4}"""(.*?)"""\n\n {4}Scoring criteria', re.DOTALL),
    re.compile(r"Poem to evaluate:\n(.*?)\n\nScoring criteria", re.DOTALL),
)


def _user_text(body: dict[str, Any]) -> str:
    for message in body.get("messages", []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        parts = []
        for part in content or []:
            if part.get("type") == "text":
                parts.append(part.get("text", ""))
            elif part.get("type") == "image_url":
                parts.append(part.get("image_url", {}).get("url", ""))
        return "\n".join(parts)
    return ""


def default_item_key(body: dict[str, Any]) -> str:
    """sha256 of the poem for the rubric prompt, else of the first user message's text."""
    text = _user_text(body)
    for pattern in _POEM_RES:
        match = pattern.search(text)
        if match:
            return sha256_text(match.group(1))
    return sha256_text(text)


def expected_score(item_key: str) -> int:
    """The score the default responder gives an item (deterministic, 1..5)."""
    return 1 + int(item_key[:8], 16) % 5


def rating_responder(request: ChatRequest) -> str:
    """Default answer: the rubric's JSON with a deterministic score."""
    score = expected_score(request.item_key)
    return json.dumps(
        {"thinking": f"Imagery and rhythm considered for {request.item_key[:8]}.", "score": score}
    )


def apply_content_fault(kind: str, content: str) -> str:
    if kind == "malformed":
        return 'Here is my evaluation: {"thinking": "vivid imagery, score": '
    if kind in ("score_0", "score_7"):
        bad = kind[-1]
        replaced, n = re.subn(r'("score"\s*:\s*)-?\d+', rf"\g<1>{bad}", content)
        return replaced if n else content
    if kind == "fenced":
        return f"Rationale first, as asked.\n```json\n{content}\n```\nHope this helps!"
    raise ValueError(f"unknown content fault {kind!r}")


class FakeOpenAIServer:
    """The server; use as a context manager or call ``start()``/``stop()``.

    Example:
        >>> with FakeOpenAIServer(FaultSchedule(fault_rate=0.2)) as server:  # doctest: +SKIP
        ...     client = ChatClient(ChatConfig(base_url=server.base_url), api_key="k")
    """

    def __init__(
        self,
        schedule: FaultSchedule | None = None,
        responder: Callable[[ChatRequest], str] = rating_responder,
        item_key: Callable[[dict[str, Any]], str] = default_item_key,
        host: str = "127.0.0.1",
        port: int = 0,
        log_path: str | Path | None = None,
        require_key: str | None = None,
        response_delay_s: float = 0.0,
        hold: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        self.schedule = schedule or FaultSchedule()
        # Requests for which ``hold(log_entry)`` is true wait for ``release()`` before they
        # are answered: tests order two clients by events, not by sleeps.
        self.hold = hold
        self.released = threading.Event()
        self.responder = responder
        self.item_key = item_key
        self.require_key = require_key
        self.response_delay_s = response_delay_s
        self.log_path = Path(log_path) if log_path else None
        self.requests: list[dict[str, Any]] = []
        self._attempts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAIServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def release(self) -> None:
        """Answer every held request (and hold no more)."""
        self.released.set()

    def chat_requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    def _next_attempt(self, key: str) -> int:
        with self._lock:
            self._attempts[key] += 1
            return self._attempts[key]

    def _log(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(entry)
            if self.log_path:
                with self.log_path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(entry) + "\n")


def _completion(model: str, content: str, prompt_chars: int) -> dict[str, Any]:
    prompt_tokens = max(1, prompt_chars // 4)
    completion_tokens = max(1, len(content) // 4)
    return {
        "id": f"chatcmpl-{int(time.time() * 1e6)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _make_handler(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout or killed); that is the point of some tests

        def _authorized(self) -> bool:
            if server.require_key is None:
                return True
            if self.headers.get("Authorization") == f"Bearer {server.require_key}":
                return True
            # Like some real servers, echo what was presented: the client must not repeat it.
            presented = self.headers.get("Authorization", "")
            message = f"bad key: {presented.removeprefix('Bearer ')}"
            self._send(401, json.dumps({"error": {"message": message}}).encode())
            return False

        def do_GET(self) -> None:
            if not self._authorized():
                return
            if self.path.rstrip("/").endswith("/models"):
                server._log({"t": time.time(), "path": self.path, "item_key": None})
                body = {"object": "list", "data": [{"id": "gpt-4o", "object": "model"}]}
                self._send(200, json.dumps(body).encode())
            else:
                self._send(404, b'{"error": {"message": "not found"}}')

        def do_POST(self) -> None:
            if not self._authorized():
                return
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, b'{"error": {"message": "not found"}}')
                return
            try:
                body = json.loads(raw)
            except json.JSONDecodeError:
                self._send(400, b'{"error": {"message": "body is not JSON"}}')
                return
            key = server.item_key(body)
            attempt = server._next_attempt(key)
            fault = server.schedule.fault_for(key, attempt)
            entry = {
                "t": time.time(),
                "path": self.path,
                "item_key": key,
                "attempt": attempt,
                "fault": fault,
                "n_messages": len(body.get("messages", [])),
                "temperature": body.get("temperature"),
                "seed": body.get("seed"),
                "max_tokens": body.get("max_tokens"),
                "roles": [m.get("role") for m in body.get("messages", [])],
            }
            server._log(entry)
            if server.hold is not None and server.hold(entry):
                server.released.wait(timeout=300)
            if server.response_delay_s:
                time.sleep(server.response_delay_s)
            sched = server.schedule
            retry_headers = {}
            if sched.retry_after is not None:
                retry_headers["Retry-After"] = sched.retry_after
            if sched.retry_after_ms is not None:
                retry_headers["retry-after-ms"] = str(sched.retry_after_ms)
            if fault == "429":
                msg = {"error": {"message": "rate limited", "type": "rate_limit"}}
                self._send(429, json.dumps(msg).encode(), retry_headers)
                return
            if fault == "500":
                msg = {"error": {"message": "internal error", "type": "server_error"}}
                self._send(500, json.dumps(msg).encode(), retry_headers)
                return
            if fault == "garbage_body":
                self._send(200, b"<html>502 bad gateway</html>{{{")
                return
            if fault == "503":
                self._send(503, b'{"error": {"message": "service unavailable"}}')
                return
            if fault == "hang":
                time.sleep(3600)
                return
            if fault == "slow":
                time.sleep(sched.slow_s)
            content = server.responder(ChatRequest(body=body, item_key=key, attempt=attempt))
            if fault in CONTENT_FAULTS:
                content = apply_content_fault(fault, content)
            prompt_chars = len(json.dumps(body.get("messages", [])))
            payload = _completion(str(body.get("model", "")), content, prompt_chars)
            if fault == "empty_choices":  # billed, but nothing to use (e.g. a content filter)
                payload["choices"] = []
            with server._lock:  # what this answer bills (the in-memory log entry only)
                entry["usage"] = dict(payload["usage"])
            if fault == "trickle":
                self._trickle(json.dumps(payload).encode(), sched.trickle_s)
                return
            self._send(200, json.dumps(payload).encode())

        def _trickle(self, body: bytes, every_s: float) -> None:
            head = (
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            try:
                for byte in head + body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(every_s)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up: its deadline worked

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fault-injecting OpenAI-compatible test server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--max-faults-per-item", type=int, default=3)
    parser.add_argument("--always-fail-rate", type=float, default=0.0)
    parser.add_argument("--slow-s", type=float, default=1.0)
    parser.add_argument("--fault", default=None, help="give every request this fault")
    parser.add_argument("--delay-s", type=float, default=0.0, help="delay every answer")
    parser.add_argument("--log", type=Path, default=None, help="append one JSON line per request")
    args = parser.parse_args(argv)
    schedule = FaultSchedule(
        seed=args.seed,
        fault_rate=args.fault_rate,
        max_faults_per_item=args.max_faults_per_item,
        always_fail_rate=1.0 if args.fault else args.always_fail_rate,
        always_fail_kind=args.fault or "score_7",
        slow_s=args.slow_s,
    )
    server = FakeOpenAIServer(
        schedule, port=args.port, log_path=args.log, response_delay_s=args.delay_s
    )
    print(f"READY {server.base_url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server._httpd.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
