"""Durable result store for annotation calls: one SQLite file in WAL mode.

A row is keyed by ``(task, backend, model, prompt_version, input_hash)``. Each result is
committed the moment it arrives (``synchronous=FULL``), so a ``kill -9`` loses at most the
calls in flight, and a rerun asks :meth:`ResultStore.missing` for what is left. Every item
ends with exactly one row: ``status='ok'`` with a JSON ``payload``, or ``status='failed'``
with a ``reason`` (a later successful retry replaces a failure; an ``ok`` row is final).
Rows also carry token counts, an estimated cost, the generation parameters (temperature,
seed, ...) and the run that wrote them; the ``runs`` table keeps one summary per run.

The store is task-agnostic (poem ratings, image scores, generated poems all fit: the task's
output goes in ``payload``) and thread-safe (one connection behind a lock).

Public API (stable):

- ``input_hash(*parts: str | bytes) -> str``: sha256 hex of the parts (str as UTF-8); for a
  single text it equals ``hashlib.sha256(text.encode()).hexdigest()``.
- ``StoreKey(task, backend, model, prompt_version, input_hash)``
- ``StoredResult``: ``key``, ``item_id``, ``status``, ``payload``, ``reason``, ``detail``,
  ``attempts``, ``prompt_tokens``, ``completion_tokens``, ``cost_usd``, ``params``,
  ``run_id``, ``created_at``.
- ``ResultStore(path)`` (context manager): ``get(key)``, ``missing(keys, retry_failed=True)``,
  ``put_ok(key, item_id, payload, ...)``, ``put_failure(key, item_id, reason, detail, ...)``,
  ``results(task=None, backend=None, model=None, prompt_version=None, status=None)``,
  ``count(...)``, ``start_run(params) -> run_id``, ``finish_run(run_id, summary)``,
  ``runs()``, ``close()``.
- ``estimate_cost(model, prompt_tokens, completion_tokens) -> float | None`` and
  ``PRICES_USD_PER_MTOK``: an ESTIMATE from a small list-price table (USD per million
  tokens, input/output); unknown models and local backends give ``None`` / 0.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "results.sqlite"
    >>> with ResultStore(path) as store:
    ...     key = StoreKey("poem-aesthetic", "openai", "gpt-4o", "poem-aesthetic-v1",
    ...                    input_hash("A poem"))
    ...     store.put_ok(key, "p1", {"score": 4, "thinking": "vivid"}, prompt_tokens=500,
    ...                  completion_tokens=80)
    ...     store.get(key).payload["score"], store.missing([key])
    (4, [])
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

# List prices in USD per 1M tokens (input, output), as published by OpenAI in 2024-2025.
# Used only to ESTIMATE a run's cost; check your provider's bill for the truth.
PRICES_USD_PER_MTOK: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-2024-08-06": (2.50, 10.00),
    "gpt-4o-2024-11-20": (2.50, 10.00),
    "gpt-4o-2024-05-13": (5.00, 15.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-3.5-turbo": (0.50, 1.50),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    task TEXT NOT NULL,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    input_hash TEXT NOT NULL,
    item_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    payload TEXT,
    reason TEXT,
    detail TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL,
    params TEXT NOT NULL DEFAULT '{}',
    run_id TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (task, backend, model, prompt_version, input_hash)
);
CREATE INDEX IF NOT EXISTS results_status ON results (task, backend, model, prompt_version, status);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started_at REAL NOT NULL,
    finished_at REAL,
    params TEXT NOT NULL DEFAULT '{}',
    summary TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def input_hash(*parts: str | bytes) -> str:
    """sha256 hex digest identifying an input (a poem text, an image's bytes, ...).

    Several parts are length-prefixed so ``("ab", "c")`` and ``("a", "bc")`` differ.

    Example:
        >>> input_hash("A poem") == __import__("hashlib").sha256(b"A poem").hexdigest()
        True
    """
    if not parts:
        raise ValueError("input_hash needs at least one part")
    encoded = [p.encode("utf-8") if isinstance(p, str) else bytes(p) for p in parts]
    if len(encoded) == 1:
        return hashlib.sha256(encoded[0]).hexdigest()
    digest = hashlib.sha256()
    for chunk in encoded:
        digest.update(len(chunk).to_bytes(8, "big"))
        digest.update(chunk)
    return digest.hexdigest()


def estimate_cost(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """Estimated USD cost from :data:`PRICES_USD_PER_MTOK`; ``None`` for an unknown model.

    Dated model names fall back to their family (``gpt-4o-mini-2024-07-18`` -> ``gpt-4o-mini``).

    Example:
        >>> round(estimate_cost("gpt-4o", 1_000_000, 100_000), 2)
        3.5
        >>> estimate_cost("my-local-llama", 10, 10) is None
        True
    """
    price = PRICES_USD_PER_MTOK.get(model)
    if price is None:
        for name in sorted(PRICES_USD_PER_MTOK, key=len, reverse=True):
            if model.startswith(name + "-"):
                price = PRICES_USD_PER_MTOK[name]
                break
    if price is None:
        return None
    return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000


@dataclass(frozen=True)
class StoreKey:
    """What identifies one result: the same key is never computed (or billed) twice."""

    task: str
    backend: str
    model: str
    prompt_version: str
    input_hash: str

    def __post_init__(self) -> None:
        for name in ("task", "backend", "model", "prompt_version", "input_hash"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"StoreKey.{name} must be a non-empty string")


@dataclass(frozen=True)
class StoredResult:
    """One row of the store."""

    key: StoreKey
    item_id: str
    status: str
    payload: dict[str, Any] | None
    reason: str | None
    detail: str | None
    attempts: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    params: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    created_at: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class ResultStore:
    """SQLite (WAL) store of annotation results; safe to share between threads.

    Example:
        >>> import tempfile, pathlib
        >>> store = ResultStore(pathlib.Path(tempfile.mkdtemp()) / "r.sqlite")
        >>> store.count()
        0
        >>> store.close()
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"store path {self.path} is a directory; give a file path")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(
                str(self.path), timeout=30.0, check_same_thread=False, isolation_level=None
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)
            self._conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        except sqlite3.DatabaseError as err:
            raise ValueError(f"{self.path} is not a usable result store: {err}") from None

    # -- context manager -------------------------------------------------------------
    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- reads -----------------------------------------------------------------------
    def get(self, key: StoreKey) -> StoredResult | None:
        """The row for ``key``, or ``None``."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM results WHERE task=? AND backend=? AND model=? "
                "AND prompt_version=? AND input_hash=?",
                _key_tuple(key),
            ).fetchone()
        return _row_to_result(row) if row else None

    def missing(self, keys: Iterable[StoreKey], retry_failed: bool = True) -> list[StoreKey]:
        """The keys (in order, deduplicated) that still need a call.

        An ``ok`` row is final. A ``failed`` row counts as missing when ``retry_failed``
        (the default: a rerun retries failures; its new result replaces the failure row).
        """
        keys = list(dict.fromkeys(keys))
        final = {"ok"} if retry_failed else {"ok", "failed"}
        have: set[StoreKey] = set()
        groups: dict[tuple[str, str, str, str], list[str]] = {}
        for key in keys:
            groups.setdefault((key.task, key.backend, key.model, key.prompt_version), []).append(
                key.input_hash
            )
        with self._lock:
            for group, hashes in groups.items():
                for start in range(0, len(hashes), 500):
                    chunk = hashes[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows = self._conn.execute(
                        "SELECT input_hash, status FROM results WHERE task=? AND backend=? "
                        f"AND model=? AND prompt_version=? AND input_hash IN ({marks})",
                        (*group, *chunk),
                    ).fetchall()
                    have.update(StoreKey(*group, h) for h, status in rows if status in final)
        return [key for key in keys if key not in have]

    def results(
        self,
        task: str | None = None,
        backend: str | None = None,
        model: str | None = None,
        prompt_version: str | None = None,
        status: str | None = None,
    ) -> list[StoredResult]:
        """All rows matching the given fields (``None`` = any), oldest first."""
        where, args = _filters(task, backend, model, prompt_version, status)
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM results{where} ORDER BY created_at, rowid", args
            ).fetchall()
        return [_row_to_result(row) for row in rows]

    def count(
        self,
        task: str | None = None,
        backend: str | None = None,
        model: str | None = None,
        prompt_version: str | None = None,
        status: str | None = None,
    ) -> int:
        """Number of rows matching the given fields."""
        where, args = _filters(task, backend, model, prompt_version, status)
        with self._lock:
            return int(
                self._conn.execute(f"SELECT COUNT(*) FROM results{where}", args).fetchone()[0]
            )

    # -- writes (each one its own committed transaction) ------------------------------
    def put_ok(
        self,
        key: StoreKey,
        item_id: str,
        payload: Mapping[str, Any],
        *,
        attempts: int = 1,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cost_usd: float | None = None,
        params: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> None:
        """Commit a successful result. An existing ``ok`` row for ``key`` is kept (first
        result wins, so a duplicate call can never change a stored answer)."""
        self._put(
            key,
            item_id,
            "ok",
            dict(payload),
            None,
            None,
            attempts,
            prompt_tokens,
            completion_tokens,
            cost_usd,
            params,
            run_id,
        )

    def put_failure(
        self,
        key: StoreKey,
        item_id: str,
        reason: str,
        detail: str = "",
        *,
        attempts: int = 0,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cost_usd: float | None = None,
        params: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> None:
        """Commit a failure record (after the last try). Never overwrites an ``ok`` row."""
        if not reason:
            raise ValueError("a failure record needs a reason")
        self._put(
            key,
            item_id,
            "failed",
            dict(payload) if payload else None,
            reason,
            detail,
            attempts,
            prompt_tokens,
            completion_tokens,
            cost_usd,
            params,
            run_id,
        )

    def _put(
        self,
        key: StoreKey,
        item_id: str,
        status: str,
        payload: dict[str, Any] | None,
        reason: str | None,
        detail: str | None,
        attempts: int,
        prompt_tokens: int,
        completion_tokens: int,
        cost_usd: float | None,
        params: Mapping[str, Any] | None,
        run_id: str | None,
    ) -> None:
        values = (
            *_key_tuple(key),
            str(item_id),
            status,
            json.dumps(payload, ensure_ascii=False) if payload is not None else None,
            reason,
            detail,
            int(attempts),
            int(prompt_tokens),
            int(completion_tokens),
            cost_usd,
            json.dumps(dict(params or {}), ensure_ascii=False, default=str),
            run_id,
            time.time(),
        )
        with self._lock:
            # Upsert, but an 'ok' row is final: only a 'failed' row may be replaced.
            self._conn.execute(
                f"INSERT INTO results ({_COLUMNS}) VALUES ({','.join('?' * 17)}) "
                "ON CONFLICT (task, backend, model, prompt_version, input_hash) DO UPDATE SET "
                "item_id=excluded.item_id, status=excluded.status, payload=excluded.payload, "
                "reason=excluded.reason, detail=excluded.detail, "
                "attempts=results.attempts + excluded.attempts, "
                "prompt_tokens=results.prompt_tokens + excluded.prompt_tokens, "
                "completion_tokens=results.completion_tokens + excluded.completion_tokens, "
                "cost_usd=CASE WHEN excluded.cost_usd IS NULL THEN results.cost_usd "
                "ELSE COALESCE(results.cost_usd, 0) + excluded.cost_usd END, "
                "params=excluded.params, run_id=excluded.run_id, "
                "created_at=excluded.created_at WHERE results.status = 'failed'",
                values,
            )

    # -- runs ------------------------------------------------------------------------
    def start_run(self, params: Mapping[str, Any] | None = None) -> str:
        """Record the start of a run; returns its id."""
        run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        with self._lock:
            self._conn.execute(
                "INSERT INTO runs (run_id, started_at, params) VALUES (?, ?, ?)",
                (run_id, time.time(), json.dumps(dict(params or {}), default=str)),
            )
        return run_id

    def finish_run(self, run_id: str, summary: Mapping[str, Any]) -> None:
        """Record the end of a run and its summary (done, cached, failed, tokens, cost)."""
        with self._lock:
            self._conn.execute(
                "UPDATE runs SET finished_at=?, summary=? WHERE run_id=?",
                (time.time(), json.dumps(dict(summary), default=str), run_id),
            )

    def runs(self) -> list[dict[str, Any]]:
        """All runs, oldest first, with their params and summary (``None`` if unfinished)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT run_id, started_at, finished_at, params, summary FROM runs "
                "ORDER BY started_at, rowid"
            ).fetchall()
        return [
            {
                "run_id": r[0],
                "started_at": r[1],
                "finished_at": r[2],
                "params": json.loads(r[3]),
                "summary": json.loads(r[4]) if r[4] else None,
            }
            for r in rows
        ]


_COLUMNS = (
    "task, backend, model, prompt_version, input_hash, item_id, status, payload, reason, "
    "detail, attempts, prompt_tokens, completion_tokens, cost_usd, params, run_id, created_at"
)


def _key_tuple(key: StoreKey) -> tuple[str, str, str, str, str]:
    return (key.task, key.backend, key.model, key.prompt_version, key.input_hash)


def _filters(*values: str | None) -> tuple[str, list[str]]:
    names = ("task", "backend", "model", "prompt_version", "status")
    clauses = [f"{n}=?" for n, v in zip(names, values, strict=True) if v is not None]
    args = [v for v in values if v is not None]
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def _row_to_result(row: Sequence[Any]) -> StoredResult:
    return StoredResult(
        key=StoreKey(*row[:5]),
        item_id=row[5],
        status=row[6],
        payload=json.loads(row[7]) if row[7] is not None else None,
        reason=row[8],
        detail=row[9],
        attempts=row[10],
        prompt_tokens=row[11],
        completion_tokens=row[12],
        cost_usd=row[13],
        params=json.loads(row[14]) if row[14] else {},
        run_id=row[15],
        created_at=row[16],
    )
