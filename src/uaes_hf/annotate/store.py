"""Durable result store for annotation calls: one SQLite file in WAL mode.

A row is keyed by ``(task, backend, model, prompt_version, input_hash)``. Each result is
committed the moment it arrives (``synchronous=FULL``), so a ``kill -9`` loses at most the
calls in flight, and a rerun asks :meth:`ResultStore.missing` for what is left. Every item
ends with at most one row: ``status='ok'`` with a JSON ``payload``, or ``status='failed'``
with a ``reason``. An ``ok`` row is final; a ``failed`` row is not (the next run retries it,
and its new result replaces the failure). Rows also carry token counts, an estimated cost,
the generation parameters (temperature, seed, ...) and the run that wrote them; the ``runs``
table keeps one summary per run, and the ``claims`` table the items that live processes are
requesting right now (:mod:`uaes_hf.annotate.claims`).

Every reply that was paid for is counted: a result that arrives after another process
already stored one (a "late duplicate") keeps the stored answer but adds its tokens, cost
and attempts to the row.

Safety:

- the stored ``schema_version`` is checked on open: a newer or unknown one is a clear
  ``ValueError`` (this code would misread it); version 1 stores are upgraded in place;
- a full disk ends in one :class:`StoreFullError`. Next to the store lies a small reserve
  file (``<store>.reserve``, :data:`RESERVE_BYTES`); when a write of a PAID result finds the
  disk full, the reserve is deleted and the write retried, so results already received are
  kept, and :attr:`ResultStore.out_of_space` tells the caller to stop asking for more.

The store is task-agnostic (poem ratings, image scores, generated poems all fit: the task's
output goes in ``payload``) and thread-safe (one connection behind a lock).

Public API (stable; ``write``, ``read``, ``created_at``, ``out_of_space`` and the return
value of ``put_ok``/``put_failure`` are additions):

- ``input_hash``, ``StoreKey``, ``StoredResult``, ``estimate_cost``, ``PRICES_USD_PER_MTOK``:
  see :mod:`uaes_hf.annotate.keys`.
- ``ResultStore(path)`` (context manager): ``get(key)``, ``missing(keys, retry_failed=True)``,
  ``put_ok(key, item_id, payload, ...) -> bool``, ``put_failure(key, item_id, reason,
  detail, ...) -> bool``, ``results(task=None, backend=None, model=None,
  prompt_version=None, status=None)``, ``count(...)``, ``start_run(params) -> run_id``,
  ``finish_run(run_id, summary)``, ``runs()``, ``close()``.
- ``StoreFullError``: the disk is full and a write could not be saved.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "results.sqlite"
    >>> with ResultStore(path) as store:
    ...     key = StoreKey("poem-aesthetic", "openai", "gpt-4o", "poem-aesthetic-v2",
    ...                    input_hash("A poem"))
    ...     store.put_ok(key, "p1", {"score": 4, "thinking": "vivid"}, prompt_tokens=500,
    ...                  completion_tokens=80)
    ...     store.get(key).payload["score"], store.missing([key])
    True
    (4, [])
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from uaes_hf.annotate.keys import (
    COLUMNS,
    PRICES_USD_PER_MTOK,
    StoredResult,
    StoreKey,
    estimate_cost,
    input_hash,
    key_tuple,
    row_to_result,
    where_clause,
)

__all__ = [
    "PRICES_USD_PER_MTOK",
    "RESERVE_BYTES",
    "SCHEMA_VERSION",
    "ResultStore",
    "StoreFullError",
    "StoreKey",
    "StoredResult",
    "estimate_cost",
    "input_hash",
]

T = TypeVar("T")
SCHEMA_VERSION = 2  # 2: the claims table
RESERVE_BYTES = 2 * 1024 * 1024
KEY_WHERE = "task=? AND backend=? AND model=? AND prompt_version=? AND input_hash=?"

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
CREATE TABLE IF NOT EXISTS claims (
    task TEXT NOT NULL,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    input_hash TEXT NOT NULL,
    owner TEXT NOT NULL,
    expires_at REAL NOT NULL,
    claimed_at REAL NOT NULL,
    PRIMARY KEY (task, backend, model, prompt_version, input_hash)
);
CREATE INDEX IF NOT EXISTS claims_owner ON claims (owner);
"""


class StoreFullError(RuntimeError):
    """The disk holding the store is full; what was committed before is intact."""


def _is_full(err: sqlite3.Error) -> bool:
    code = getattr(err, "sqlite_errorcode", None)
    return code == sqlite3.SQLITE_FULL or "database or disk is full" in str(err)


class ResultStore:
    """SQLite (WAL) store of annotation results; safe to share between threads.

    Example:
        >>> import tempfile, pathlib
        >>> store = ResultStore(pathlib.Path(tempfile.mkdtemp()) / "r.sqlite")
        >>> store.count(), store.out_of_space
        (0, False)
        >>> store.close()
    """

    def __init__(self, path: str | Path, *, reserve_bytes: int = RESERVE_BYTES) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"store path {self.path} is a directory; give a file path")
        if reserve_bytes < 0:
            raise ValueError(f"reserve_bytes must be >= 0, got {reserve_bytes}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.reserve_path = self.path.with_name(self.path.name + ".reserve")
        self.out_of_space = False
        self._lock = threading.RLock()
        self._conn: Any = None
        try:
            self._conn = sqlite3.connect(
                str(self.path), timeout=30.0, check_same_thread=False, isolation_level=None
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._open_schema()
        except sqlite3.DatabaseError as err:
            if self._conn is not None:
                self._conn.close()
            if _is_full(err):
                raise StoreFullError(f"the disk holding {self.path} is full: {err}") from None
            raise ValueError(f"{self.path} is not a usable result store: {err}") from None
        except ValueError:
            if self._conn is not None:
                self._conn.close()
            raise
        self._make_reserve(reserve_bytes)

    def _open_schema(self) -> None:
        """Check the stored schema version, then create or upgrade the tables."""
        conn = self._conn
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is not None:
            try:
                stored = int(row[0])
            except (TypeError, ValueError):
                stored = -1
            if stored < 1:
                raise ValueError(
                    f"{self.path} has an unknown result-store schema_version {row[0]!r}; "
                    f"this uaes-hf reads versions 1 to {SCHEMA_VERSION}"
                )
            if stored > SCHEMA_VERSION:
                raise ValueError(
                    f"{self.path} was written by a newer uaes-hf (result-store schema "
                    f"{stored}; this version reads 1 to {SCHEMA_VERSION}). Upgrade uaes-hf, "
                    "or use another --store."
                )
        conn.executescript(_SCHEMA)  # CREATE ... IF NOT EXISTS: upgrades a version-1 store
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT (key) DO UPDATE SET value=excluded.value",
            (str(SCHEMA_VERSION),),
        )

    def _make_reserve(self, size: int) -> None:
        """Write the reserve file once (atomically), if there is room for it."""
        if size == 0 or self.reserve_path.exists():
            return
        tmp = self.reserve_path.with_name(f"{self.reserve_path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with tmp.open("wb") as fh:
                for start in range(0, size, 1 << 16):
                    fh.write(b"\0" * min(1 << 16, size - start))
            os.replace(tmp, self.reserve_path)
        except OSError:  # no room even for the reserve: run without one
            tmp.unlink(missing_ok=True)

    def _free_space(self, step: int) -> bool:
        """Make room after a full disk: drop the reserve, then shrink the WAL."""
        if step == 0 and self.reserve_path.exists():
            self.reserve_path.unlink(missing_ok=True)
            return True
        if step <= 1:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                return False
            return True
        return False

    # -- context manager -------------------------------------------------------------
    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- low-level access for this package's modules (claims) ------------------------
    def read(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one read-only statement (for :mod:`uaes_hf.annotate.claims`)."""
        with self._lock:
            return list(self._conn.execute(sql, tuple(args)).fetchall())

    def write(
        self,
        statements: Callable[[sqlite3.Connection], T],
        *,
        paid: bool = False,
        durable: bool = True,
    ) -> T:
        """Run ``statements(conn)`` in one ``BEGIN IMMEDIATE`` transaction and commit.

        A full disk sets :attr:`out_of_space`; for a ``paid`` write (a result already paid
        for) the reserve is given up and the write retried before :class:`StoreFullError`.
        ``durable=False`` skips the fsync of this commit (claims: a claim lost in a power
        cut is harmless, its process is gone too); the next durable commit syncs it.
        """
        with self._lock:
            for step in range(3):
                try:
                    if durable:
                        return self._transaction(statements)
                    self._conn.execute("PRAGMA synchronous=NORMAL")
                    try:
                        return self._transaction(statements)
                    finally:
                        self._conn.execute("PRAGMA synchronous=FULL")
                except sqlite3.OperationalError as err:
                    if not _is_full(err):
                        raise
                    self.out_of_space = True
                    if not (paid and self._free_space(step)):
                        raise StoreFullError(
                            f"the disk holding {self.path} is full ({err}). Every result "
                            "stored before is intact; free some space and rerun to continue."
                        ) from None
            raise AssertionError("unreachable")  # pragma: no cover

    def _transaction(self, statements: Callable[[sqlite3.Connection], T]) -> T:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            out = statements(self._conn)
            self._conn.execute("COMMIT")
            return out
        except BaseException:
            if self._conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
            raise

    # -- reads -----------------------------------------------------------------------
    def get(self, key: StoreKey) -> StoredResult | None:
        """The row for ``key``, or ``None``."""
        rows = self.read(f"SELECT {COLUMNS} FROM results WHERE {KEY_WHERE}", key_tuple(key))
        return row_to_result(rows[0]) if rows else None

    def _statuses(self, keys: Iterable[StoreKey]) -> dict[StoreKey, tuple[str, float]]:
        """(status, created_at) of every key that has a row."""
        groups: dict[tuple[str, str, str, str], list[str]] = {}
        for key in keys:
            group = (key.task, key.backend, key.model, key.prompt_version)
            groups.setdefault(group, []).append(key.input_hash)
        found: dict[StoreKey, tuple[str, float]] = {}
        for group, hashes in groups.items():
            for start in range(0, len(hashes), 500):
                chunk = hashes[start : start + 500]
                rows = self.read(
                    "SELECT input_hash, status, created_at FROM results WHERE task=? AND "
                    "backend=? AND model=? AND prompt_version=? AND input_hash IN "
                    f"({','.join('?' * len(chunk))})",
                    (*group, *chunk),
                )
                found.update({StoreKey(*group, h): (s, t) for h, s, t in rows})
        return found

    def missing(self, keys: Iterable[StoreKey], retry_failed: bool = True) -> list[StoreKey]:
        """The keys (in order, deduplicated) that still need a call.

        An ``ok`` row is final. A ``failed`` row counts as missing when ``retry_failed``
        (the default: a rerun retries failures; its new result replaces the failure row).
        """
        keys = list(dict.fromkeys(keys))
        final = {"ok"} if retry_failed else {"ok", "failed"}
        have = {k for k, (status, _) in self._statuses(keys).items() if status in final}
        return [key for key in keys if key not in have]

    def created_at(self, keys: Iterable[StoreKey]) -> dict[StoreKey, float | None]:
        """When each key's row was last written (None: no row). A run compares it later to
        tell results written by other runs meanwhile."""
        keys = list(dict.fromkeys(keys))
        found = self._statuses(keys)
        return {key: found[key][1] if key in found else None for key in keys}

    def results(
        self,
        task: str | None = None,
        backend: str | None = None,
        model: str | None = None,
        prompt_version: str | None = None,
        status: str | None = None,
    ) -> list[StoredResult]:
        """All rows matching the given fields (``None`` = any), oldest first."""
        where, args = where_clause(task, backend, model, prompt_version, status)
        rows = self.read(f"SELECT {COLUMNS} FROM results{where} ORDER BY created_at, rowid", args)
        return [row_to_result(row) for row in rows]

    def count(
        self,
        task: str | None = None,
        backend: str | None = None,
        model: str | None = None,
        prompt_version: str | None = None,
        status: str | None = None,
    ) -> int:
        """Number of rows matching the given fields."""
        where, args = where_clause(task, backend, model, prompt_version, status)
        return int(self.read(f"SELECT COUNT(*) FROM results{where}", args)[0][0])

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
        release_owner: str | None = None,
    ) -> bool:
        """Commit a successful result; True when it is the stored answer now.

        An existing ``ok`` row is kept (first result wins, so a duplicate call can never
        change a stored answer) but the duplicate's tokens, cost and attempts are added to
        it (they were paid for), and False is returned. ``release_owner`` drops that
        owner's claim on the key in the same transaction.
        """
        return self._put(
            key,
            item_id,
            "ok",
            dict(payload),
            None,
            None,
            (attempts, prompt_tokens, completion_tokens, cost_usd),
            params,
            run_id,
            release_owner,
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
        release_owner: str | None = None,
    ) -> bool:
        """Commit a failure record (after the last try); never overwrites an ``ok`` row (its
        usage is added to it and False returned). A failure is not final: the next run with
        ``retry_failed`` asks again."""
        if not reason:
            raise ValueError("a failure record needs a reason")
        return self._put(
            key,
            item_id,
            "failed",
            dict(payload) if payload else None,
            reason,
            detail,
            (attempts, prompt_tokens, completion_tokens, cost_usd),
            params,
            run_id,
            release_owner,
        )

    def _put(
        self,
        key: StoreKey,
        item_id: str,
        status: str,
        payload: dict[str, Any] | None,
        reason: str | None,
        detail: str | None,
        usage: tuple[int, int, int, float | None],
        params: Mapping[str, Any] | None,
        run_id: str | None,
        release_owner: str | None,
    ) -> bool:
        attempts, p_tok, c_tok, cost = int(usage[0]), int(usage[1]), int(usage[2]), usage[3]
        row_values = (
            *key_tuple(key),
            str(item_id),
            status,
            json.dumps(payload, ensure_ascii=False) if payload is not None else None,
            reason,
            detail,
            attempts,
            p_tok,
            c_tok,
            cost,
            json.dumps(dict(params or {}), ensure_ascii=False, default=str),
            run_id,
            time.time(),
        )
        add_usage = (
            "attempts=attempts+?, prompt_tokens=prompt_tokens+?, "
            "completion_tokens=completion_tokens+?, cost_usd=CASE WHEN ? IS NULL THEN cost_usd "
            "ELSE COALESCE(cost_usd, 0) + ? END"
        )

        def write(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                f"SELECT status FROM results WHERE {KEY_WHERE}", key_tuple(key)
            ).fetchone()
            usage_args = (attempts, p_tok, c_tok, cost, cost)
            if row is None:
                conn.execute(
                    f"INSERT INTO results ({COLUMNS}) VALUES ({','.join('?' * 17)})", row_values
                )
            elif row[0] == "failed":  # the new result replaces the failure; usage adds up
                conn.execute(
                    "UPDATE results SET item_id=?, status=?, payload=?, reason=?, detail=?, "
                    f"params=?, run_id=?, created_at=?, {add_usage} WHERE {KEY_WHERE}",
                    (*row_values[5:10], *row_values[14:], *usage_args, *key_tuple(key)),
                )
            else:  # 'ok' is final: keep the answer, count what this reply cost
                conn.execute(
                    f"UPDATE results SET {add_usage} WHERE {KEY_WHERE}",
                    (*usage_args, *key_tuple(key)),
                )
            if release_owner is not None:
                conn.execute(
                    f"DELETE FROM claims WHERE {KEY_WHERE} AND owner=?",
                    (*key_tuple(key), release_owner),
                )
            return row is None or row[0] == "failed"

        return self.write(write, paid=True)

    # -- runs ------------------------------------------------------------------------
    def start_run(self, params: Mapping[str, Any] | None = None) -> str:
        """Record the start of a run; returns its id."""
        run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        text = json.dumps(dict(params or {}), default=str)
        self.write(
            lambda conn: conn.execute(
                "INSERT INTO runs (run_id, started_at, params) VALUES (?, ?, ?)",
                (run_id, time.time(), text),
            )
        )
        return run_id

    def finish_run(self, run_id: str, summary: Mapping[str, Any]) -> None:
        """Record the end of a run and its summary (done, cached, failed, tokens, cost)."""
        text = json.dumps(dict(summary), default=str)
        self.write(
            lambda conn: conn.execute(
                "UPDATE runs SET finished_at=?, summary=? WHERE run_id=?",
                (time.time(), text, run_id),
            )
        )

    def runs(self) -> list[dict[str, Any]]:
        """All runs, oldest first, with their params and summary (``None`` if unfinished)."""
        rows = self.read(
            "SELECT run_id, started_at, finished_at, params, summary FROM runs "
            "ORDER BY started_at, rowid"
        )
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
