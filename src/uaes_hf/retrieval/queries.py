"""Search queries of the study and their split into training and held-out queries.

The packaged list (``queries.txt``, written for this project) holds short, user-like
queries about what the offline corpus shows. Training queries feed the preference grid of
the fine-tuning; held-out queries are only used to evaluate systems, so a fine-tuned model
is never judged on a query it was trained on. The split is by a hash of the query text, so
it does not move when queries are added.

Example:
    >>> queries = load_queries()
    >>> len(queries) >= 80
    True
    >>> train, held_out = split_queries(queries, held_out_fraction=0.4)
    >>> set(train).isdisjoint(held_out) and len(train) + len(held_out) == len(queries)
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

QUERIES_RESOURCE = "queries.txt"


def parse_queries(text: str, source: str = "queries") -> list[str]:
    """Queries from text: one per line; blank lines and ``#`` comments skipped; no duplicates.

    Example:
        >>> parse_queries("# c\\na dog\\n\\n a cat \\n")
        ['a dog', 'a cat']
    """
    queries = [" ".join(line.split()) for line in text.splitlines()]
    queries = [q for q in queries if q and not q.startswith("#")]
    duplicates = sorted({q for q in queries if queries.count(q) > 1})
    if duplicates:
        raise ValueError(f"{source} repeats queries: {duplicates[:5]}")
    if not queries:
        raise ValueError(f"{source} holds no queries")
    return queries


def load_queries(path: str | Path | None = None) -> list[str]:
    """The packaged queries, or those of a text file (one query per line)."""
    if path is None:
        text = resources.files("uaes_hf.retrieval").joinpath(QUERIES_RESOURCE).read_text("utf-8")
        return parse_queries(text, QUERIES_RESOURCE)
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"query file not found: {path}")
    return parse_queries(path.read_text(encoding="utf-8"), str(path))


def split_queries(
    queries: Sequence[str], held_out_fraction: float = 0.4, salt: str = "uaes-retrieval-v1"
) -> tuple[list[str], list[str]]:
    """(training, held-out) queries, each in input order; held out when hash(query) is low.

    Example:
        >>> split_queries(["a", "b", "c", "d"], held_out_fraction=0.0)
        (['a', 'b', 'c', 'd'], [])
    """
    if not 0.0 <= held_out_fraction <= 1.0:
        raise ValueError(f"held_out_fraction must be in [0, 1], got {held_out_fraction}")
    train: list[str] = []
    held_out: list[str] = []
    for query in queries:
        digest = hashlib.sha256(f"{salt}\x00{query}".encode()).digest()
        position = int.from_bytes(digest[:8], "big") / 2**64
        (held_out if position < held_out_fraction else train).append(query)
    return train, held_out
