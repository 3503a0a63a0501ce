"""Stored ratings -> the file the poems dataset's annotation hook reads.

The hook (``uaes_hf.data.annotations``) accepts CSV or JSONL with the columns ``id``,
``score``, ``rationale``, ``annotator`` and fills the poem records' ``aesthetic_score``,
``aesthetic_rationale`` and ``annotator``. :func:`ratings_rows` builds those rows from the
store (one per poem id, duplicates of a text share its rating); items that ended in a
failure record go to :func:`failure_rows` instead, so nothing disappears silently.

The ``annotator`` names backend, model and prompt version, e.g.
``openai:gpt-4o:poem-aesthetic-v2``; local scores carry a ``(weak)`` suffix.

Example:
    >>> annotator_name("openai", "gpt-4o", "poem-aesthetic-v2")
    'openai:gpt-4o:poem-aesthetic-v2'
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from uaes_hf.annotate.judge import POEM_TASK, PoemItem
from uaes_hf.annotate.store import ResultStore, StoreKey, input_hash

RATING_COLUMNS = ("id", "score", "rationale", "annotator")
FAILURE_COLUMNS = ("id", "reason", "detail", "annotator")


def annotator_name(backend: str, model: str, prompt_version: str) -> str:
    """The ``annotator`` value for results of this backend/model/prompt."""
    name = f"{backend}:{model}:{prompt_version}"
    return f"{name} (weak)" if backend == "local" else name


def ratings_rows(
    items: Sequence[PoemItem],
    store: ResultStore,
    backend: str,
    model: str,
    prompt_version: str,
) -> list[dict[str, Any]]:
    """One row (id, score, rationale, annotator) per item with an ``ok`` result, in order."""
    rows = []
    annotator = annotator_name(backend, model, prompt_version)
    for item, result in _results(items, store, backend, model, prompt_version):
        if result is not None and result.ok and result.payload:
            rows.append(
                {
                    "id": item.id,
                    "score": int(result.payload["score"]),
                    "rationale": str(result.payload.get("thinking", "")),
                    "annotator": annotator,
                }
            )
    return rows


def failure_rows(
    items: Sequence[PoemItem],
    store: ResultStore,
    backend: str,
    model: str,
    prompt_version: str,
) -> list[dict[str, Any]]:
    """One row (id, reason, detail, annotator) per item whose result is a failure record or
    that has no row at all (reason ``missing``: the run was interrupted)."""
    rows = []
    annotator = annotator_name(backend, model, prompt_version)
    for item, result in _results(items, store, backend, model, prompt_version):
        if result is None:
            rows.append({"id": item.id, "reason": "missing", "detail": "", "annotator": annotator})
        elif not result.ok:
            rows.append(
                {
                    "id": item.id,
                    "reason": result.reason,
                    "detail": result.detail or "",
                    "annotator": annotator,
                }
            )
    return rows


def _results(
    items: Iterable[PoemItem], store: ResultStore, backend: str, model: str, prompt_version: str
) -> Iterable[tuple[PoemItem, Any]]:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:  # one row per poem id (the hook is keyed by id)
            continue
        seen.add(item.id)
        key = StoreKey(POEM_TASK, backend, model, prompt_version, input_hash(item.text))
        yield item, store.get(key)


def write_rows(rows: Sequence[dict[str, Any]], path: str | Path, columns: Sequence[str]) -> Path:
    """Write rows as CSV, or JSONL when ``path`` ends in ``.jsonl``; returns the path.

    The file is written to a temporary name and renamed, so a crash never leaves half a file.
    """
    path = Path(path)
    jsonl = path.suffix.lower() == ".jsonl"
    if not jsonl and path.suffix.lower() not in (".csv", ""):
        raise ValueError(f"unsupported output format {path.suffix!r}; use .csv or .jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique temp name beside the target: two exports at once never share a half file.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            if jsonl:
                for row in rows:
                    fh.write(json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False))
                    fh.write("\n")
            else:
                writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return path
