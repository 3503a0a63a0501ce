"""Leases on items in the result store, so that two runs on one store never pay twice.

Before a run requests an item it claims it: a row in the store's ``claims`` table with the
run's owner id and an expiry (:data:`DEFAULT_LEASE_S` from now). While the run works a
heartbeat thread renews its leases; when a result is stored the claim goes in the same
transaction. Another process that wants the item sees a live claim and leaves the item
alone (it waits for it, or leaves it to that run). A claim stops counting when:

- its lease expires (the owner crashed, or stopped renewing), or
- its owner is a process on this machine (same host name and PID namespace) that no longer
  exists: ``kill -9`` of a run frees its items at once for the next one.

A claim also fails when the item changed since the run looked at it (another run stored
a result meanwhile): ``done`` for a finished item, ``taken`` for a new failure record
(that run's failure is not retried again by this run: it would bill the item twice).

Example:
    >>> import tempfile, pathlib
    >>> from uaes_hf.annotate.store import ResultStore, StoreKey
    >>> store = ResultStore(pathlib.Path(tempfile.mkdtemp()) / "r.sqlite")
    >>> key = StoreKey("t", "b", "m", "v", "h1")
    >>> mine, theirs = ClaimBook(store), ClaimBook(store)
    >>> mine.claim(key, seen=None), theirs.claim(key, seen=None)
    ('claimed', 'busy')
    >>> mine.release_all(); theirs.claim(key, seen=None)
    'claimed'
    >>> store.close()
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from uaes_hf.annotate.store import KEY_WHERE, ResultStore, StoreKey

DEFAULT_LEASE_S = 30.0


def _host() -> str:
    """This machine and PID namespace: process ids are comparable only within it."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return f"{socket.gethostname()}/{namespace}"


def _start_ticks(pid: int) -> str | None:
    """A process's start time (Linux), so a recycled process id is not taken for the owner."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def new_owner_id() -> str:
    """An owner id for this run: host, process id, process start time and a random part.

    Example:
        >>> new_owner_id().count("|")
        3
    """
    pid = os.getpid()
    return f"{_host()}|{pid}|{_start_ticks(pid) or '-'}|{uuid.uuid4().hex[:8]}"


def owner_alive(owner: str) -> bool | None:
    """Whether the process behind ``owner`` still runs: None when it cannot be told (another
    machine, or an id of another form), so only the lease decides.

    Example:
        >>> owner_alive(new_owner_id())
        True
        >>> owner_alive("elsewhere|12|34|ab") is None
        True
    """
    parts = owner.split("|")
    if len(parts) != 4 or parts[0] != _host() or not parts[1].isdigit():
        return None
    pid = int(parts[1])
    ticks = _start_ticks(pid)
    if ticks is not None:
        return parts[2] in ("-", ticks)
    if Path("/proc/self/stat").exists():
        return False  # /proc works here and has no such process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ClaimBook:
    """This run's claims on one store: claim, renew (heartbeat), release.

    ``lease_s`` is how long a claim lives without renewal; the heartbeat renews every third
    of it.
    """

    def __init__(
        self, store: ResultStore, owner: str | None = None, lease_s: float = DEFAULT_LEASE_S
    ) -> None:
        if lease_s <= 0:
            raise ValueError(f"lease_s must be > 0 seconds, got {lease_s}")
        self.store = store
        self.owner = owner or new_owner_id()
        self.lease_s = float(lease_s)

    def _live_other(self, owner: str, expires_at: float, now: float) -> bool:
        return owner != self.owner and expires_at > now and owner_alive(owner) is not False

    def claim(self, key: StoreKey, seen: float | None) -> str:
        """Try to claim ``key``: ``claimed``, ``busy`` (another live run holds it), ``done``
        (it has an ``ok`` row) or ``taken`` (its row changed since it was ``seen``, the
        ``created_at`` this run read at its start, None for no row)."""

        def write(conn: Any) -> str:
            now = time.time()
            args = (key.task, key.backend, key.model, key.prompt_version, key.input_hash)
            row = conn.execute(
                f"SELECT status, created_at FROM results WHERE {KEY_WHERE}", args
            ).fetchone()
            if row is not None and row[0] == "ok":
                return "done"
            if (row[1] if row is not None else None) != seen:
                return "taken"
            held = conn.execute(
                f"SELECT owner, expires_at FROM claims WHERE {KEY_WHERE}", args
            ).fetchone()
            if held is not None and self._live_other(held[0], held[1], now):
                return "busy"
            conn.execute(
                "INSERT INTO claims (task, backend, model, prompt_version, input_hash, owner, "
                "expires_at, claimed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (task, backend, model, prompt_version, input_hash) DO UPDATE SET "
                "owner=excluded.owner, expires_at=excluded.expires_at, "
                "claimed_at=excluded.claimed_at",
                (*args, self.owner, now + self.lease_s, now),
            )
            return "claimed"

        return self.store.write(write, durable=False)

    def held_by_others(self, keys: Iterable[StoreKey]) -> Counter[str]:
        """How many of ``keys`` each other live run holds (owner id -> count)."""
        wanted = {(k.task, k.backend, k.model, k.prompt_version, k.input_hash) for k in keys}
        now = time.time()
        rows = self.store.read(
            "SELECT task, backend, model, prompt_version, input_hash, owner, expires_at "
            "FROM claims WHERE expires_at > ?",
            (now,),
        )
        return Counter(
            row[5]
            for row in rows
            if tuple(row[:5]) in wanted and self._live_other(row[5], row[6], now)
        )

    def renew(self) -> int:
        """Push back the expiry of every claim this run holds; how many there are."""
        return int(
            self.store.write(
                lambda conn: (
                    conn.execute(
                        "UPDATE claims SET expires_at=? WHERE owner=?",
                        (time.time() + self.lease_s, self.owner),
                    ).rowcount
                ),
                durable=False,
            )
        )

    def release_all(self) -> None:
        """Drop every claim of this run (its items are free for others at once)."""
        self.store.write(
            lambda conn: conn.execute("DELETE FROM claims WHERE owner=?", (self.owner,)),
            durable=False,
        )

    @contextmanager
    def heartbeat(self) -> Iterator[None]:
        """Renew this run's leases in a background thread while the block runs."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.lease_s / 3):
                # a locked or full store: the next beat tries again
                with contextlib.suppress(Exception):
                    self.renew()

        thread = threading.Thread(target=beat, name="uaes-claims-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)


def describe_owner(owner: str) -> str:
    """A short human-readable name of an owner id (``pid 123 on host``).

    Example:
        >>> describe_owner("box/4026531836|123|456|ab12cd34")
        'pid 123 on box'
    """
    parts = owner.split("|")
    if len(parts) != 4:
        return owner
    return f"pid {parts[1]} on {parts[0].split('/')[0]}"
