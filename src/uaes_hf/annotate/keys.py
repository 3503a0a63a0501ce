"""Keys, rows and prices of the result store (pure: no SQLite here).

- ``input_hash(*parts)``: sha256 hex of an input (a poem text, an image's bytes, ...);
- ``StoreKey(task, backend, model, prompt_version, input_hash)``: what identifies a result;
- ``StoredResult``: one row of the store;
- ``estimate_cost`` and ``PRICES_USD_PER_MTOK``: an ESTIMATE of a call's cost.

All are re-exported by :mod:`uaes_hf.annotate.store`, their historical home.

Example:
    >>> StoreKey("t", "openai", "gpt-4o", "v1", input_hash("x")).backend
    'openai'
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

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


COLUMNS = (
    "task, backend, model, prompt_version, input_hash, item_id, status, payload, reason, "
    "detail, attempts, prompt_tokens, completion_tokens, cost_usd, params, run_id, created_at"
)


def key_tuple(key: StoreKey) -> tuple[str, str, str, str, str]:
    """The key's fields in column order."""
    return (key.task, key.backend, key.model, key.prompt_version, key.input_hash)


def where_clause(*values: str | None) -> tuple[str, list[str]]:
    """`` WHERE ...`` and its arguments for (task, backend, model, prompt_version, status)."""
    names = ("task", "backend", "model", "prompt_version", "status")
    clauses = [f"{n}=?" for n, v in zip(names, values, strict=True) if v is not None]
    args = [v for v in values if v is not None]
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def row_to_result(row: Sequence[Any]) -> StoredResult:
    """A :class:`StoredResult` from a row selected with :data:`COLUMNS`."""
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
