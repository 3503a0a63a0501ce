"""Human votes for the HPIR-style benchmark: vote tasks, a durable vote log, aggregation.

A :class:`VoteTask` is one query with two rows of results (``group_a``, ``group_b``: image
paths or ids). The voting tab shows the rows in a random order and records the choice in
terms of ``a``/``b``. Votes are appended to a JSON-lines file under an exclusive lock and
fsynced before the tab confirms, so a crash loses no confirmed vote; a line cut short by a
kill is skipped on reading. :func:`aggregate_votes` turns votes into HPIR rows
(``query, aspect, group_a, group_b, votes_a, votes_b``).

Example:
    >>> import tempfile, pathlib
    >>> log = VoteLog(pathlib.Path(tempfile.mkdtemp()) / "votes.jsonl")
    >>> task = VoteTask("a dog", ("x.png",), ("y.png",), "original", "rephrased")
    >>> _ = log.append(task, aspect="aesthetics", choice="b", annotator="ann1")
    >>> aggregate_votes(log.read())[0]["votes_b"]
    1
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from uaes_hf.retrieval.hpir import HPIR_ASPECTS


@dataclass(frozen=True)
class VoteTask:
    """A query and two result rows to compare (system names are never shown to voters)."""

    query: str
    group_a: tuple[str, ...]
    group_b: tuple[str, ...]
    system_a: str = ""
    system_b: str = ""

    def __post_init__(self) -> None:
        if not self.query.strip():
            raise ValueError("a vote task needs a query")
        if not self.group_a or not self.group_b:
            raise ValueError("a vote task needs two non-empty groups of images")

    @property
    def task_id(self) -> str:
        from uaes_hf.annotate.store import input_hash

        return input_hash(self.query, *self.group_a, "|", *self.group_b)[:16]


class VoteLog:
    """Append-only JSON-lines file of votes (safe across threads and processes)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"vote log path {self.path} is a directory; give a file path")

    def append(
        self,
        task: VoteTask,
        *,
        aspect: str,
        choice: str,
        annotator: str = "anonymous",
        shown_first: str = "a",
    ) -> dict[str, Any]:
        """Record one vote (``choice`` is ``"a"`` or ``"b"``) durably; returns the record."""
        if choice not in ("a", "b"):
            raise ValueError(f"choice must be 'a' or 'b', got {choice!r}")
        if aspect not in HPIR_ASPECTS:
            raise ValueError(f"aspect must be one of {HPIR_ASPECTS}, got {aspect!r}")
        if shown_first not in ("a", "b"):
            raise ValueError(f"shown_first must be 'a' or 'b', got {shown_first!r}")
        record = {
            "vote_id": uuid.uuid4().hex,
            "time": time.time(),
            "annotator": annotator.strip() or "anonymous",
            "task_id": task.task_id,
            **asdict(task),
            "aspect": aspect,
            "choice": choice,
            "shown_first": shown_first,
        }
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and _last_byte(self.path) != b"\n":  # a line cut short by a kill
                os.write(fd, b"\n")
            os.write(fd, line)
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return record

    def read(self) -> list[dict[str, Any]]:
        """Every complete vote, oldest first (incomplete or corrupt lines are skipped)."""
        if not self.path.exists():
            return []
        votes = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and record.get("choice") in ("a", "b"):
                votes.append(record)
        return votes


def _last_byte(path: Path) -> bytes:
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1)


def aggregate_votes(votes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """HPIR rows: votes counted per (query, aspect, group_a, group_b), first-seen order."""
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for vote in votes:
        key = (vote["query"], vote["aspect"], tuple(vote["group_a"]), tuple(vote["group_b"]))
        row = rows.setdefault(
            key,
            {
                "query": vote["query"],
                "aspect": vote["aspect"],
                "group_a": list(vote["group_a"]),
                "group_b": list(vote["group_b"]),
                "votes_a": 0,
                "votes_b": 0,
                "system_a": vote.get("system_a", ""),
                "system_b": vote.get("system_b", ""),
            },
        )
        row["votes_" + vote["choice"]] += 1
    return list(rows.values())
