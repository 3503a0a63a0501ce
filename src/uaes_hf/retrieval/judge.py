"""Pairwise judges of two result rows, and the order-swapped protocol that runs them.

- :class:`VLMJudge`: a vision-language model through the OpenAI-compatible client. One
  message shows the query and the two rows (images as base64 JPEG ``image_url`` parts) and
  asks, per aspect, which row is better; the prompt is ours and versioned
  (:data:`JUDGE_PROMPT_VERSION`). Answers are stored in the durable result store keyed by
  the query and the image bytes in their order, so no call is paid twice.
- :class:`ProxyJudge`: an OFFLINE PROXY, not a model judge. Per aspect it compares row means
  of the aesthetic scorer (aesthetics), of relevance to the original query (accuracy), of
  pairwise image distance (diversity) and of both standardised (overall). When the gap is
  within a margin it answers "row 1", like a judge with a position bias in near-ties, so
  the order swap turns near-ties into "similar".

:func:`judge_pairwise` asks every query twice (A first, then B first) and returns per-query
outcomes for :mod:`uaes_hf.retrieval.winrate`.

Example:
    >>> parse_judgement('{"overall": 2, "accuracy": 1, "aesthetics": "2", "diversity": 1}')
    {'overall': 2, 'accuracy': 1, 'aesthetics': 2, 'diversity': 1}
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from uaes_hf.annotate.parsing import extract_json_objects
from uaes_hf.annotate.store import ResultStore, StoreKey, input_hash
from uaes_hf.retrieval.winrate import query_outcome

ASPECTS: tuple[str, ...] = ("overall", "accuracy", "aesthetics", "diversity")
JUDGE_TASK = "retrieval_row_judge"
JUDGE_PROMPT_VERSION = "retrieval-row-judge-v1"
JUDGE_SYSTEM = (
    "You compare two rows of image-search results for the same query. Judge each aspect "
    "separately: accuracy (how well the images match the query), aesthetics (how beautiful "
    "and well made the images are), diversity (how varied the images are while still "
    "matching), and overall (which row a person searching for this query would prefer). "
    "Ignore the order in which the rows are shown."
)
JUDGE_INSTRUCTION = (
    'Answer with JSON only, for example {"overall": 1, "accuracy": 2, "aesthetics": 1, '
    '"diversity": 1}, where each value is 1 or 2: the better row for that aspect.'
)


def parse_judgement(text: str, aspects: Sequence[str] = ASPECTS) -> dict[str, int]:
    """Row choice (1 or 2) per aspect from a judge's answer (the last JSON object with them).

    Raises:
        ValueError: no JSON object with every aspect, or a value other than 1 or 2.
    """
    for candidate in reversed(extract_json_objects(text or "")):
        if all(a in candidate for a in aspects):
            out = {}
            for aspect in aspects:
                value = candidate[aspect]
                try:
                    row = int(str(value).strip().lower().removeprefix("row").strip())
                except ValueError:
                    row = 0
                if row not in (1, 2):
                    raise ValueError(f"aspect {aspect!r} must be 1 or 2, got {value!r}")
                out[aspect] = row
            return out
    raise ValueError(f"no JSON object with the aspects {list(aspects)} in the answer")


def judge_messages(query: str, first_urls: Sequence[str], second_urls: Sequence[str]) -> list:
    """Chat messages: system text, then the query, row 1's images, row 2's images, format.

    Example:
        >>> m = judge_messages("a dog", ["data:a"], ["data:b"])
        >>> [p["type"] for p in m[1]["content"]]
        ['text', 'text', 'image_url', 'text', 'image_url', 'text']
    """
    if not first_urls or not second_urls:
        raise ValueError("both rows need at least one image")
    parts: list[dict[str, Any]] = [{"type": "text", "text": f"Query: {query}"}]
    for label, urls in (("Row 1", first_urls), ("Row 2", second_urls)):
        parts.append({"type": "text", "text": f"{label} ({len(urls)} images, left to right):"})
        parts += [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    parts.append({"type": "text", "text": JUDGE_INSTRUCTION})
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": parts}]


class VLMJudge:
    """A VLM behind an OpenAI-compatible endpoint; rows are lists of corpus indices."""

    name = "vlm"
    cacheable = True

    def __init__(self, client: Any, image_paths: Sequence[str], max_side: int = 384) -> None:
        self.client = client
        self.model = client.config.model
        self.paths = list(image_paths)
        self.max_side = max_side
        self._urls: dict[int, str] = {}

    @property
    def label(self) -> str:
        return f"vlm:{self.model}"

    def _url(self, index: int) -> str:
        if index not in self._urls:
            from uaes_hf.images.vlm import encode_image_data_url
            from uaes_hf.retrieval.corpus import load_image

            self._urls[index] = encode_image_data_url(
                load_image(self.paths[index], self.max_side), max_side=self.max_side
            )
        return self._urls[index]

    def call_hash(self, query: str, first: Sequence[int], second: Sequence[int]) -> str:
        """Content hash of one call: the query and both rows' image bytes, in order."""
        digests = [hashlib.sha256(Path(self.paths[i]).read_bytes()).hexdigest() for i in first]
        digests.append("|")
        digests += [hashlib.sha256(Path(self.paths[i]).read_bytes()).hexdigest() for i in second]
        return input_hash(query, *digests)

    def compare(self, query: str, first: Sequence[int], second: Sequence[int]) -> dict[str, Any]:
        messages = judge_messages(
            query, [self._url(i) for i in first], [self._url(i) for i in second]
        )
        result = self.client.chat(messages)
        return {
            "answer": parse_judgement(result.content),
            "raw": result.content,
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "attempts": result.attempts,
        }


@dataclass
class ProxyJudge:
    """Offline proxy judge from scores (see the module doc); labelled "proxy" everywhere.

    Args:
        aesthetic: aesthetic score of every corpus image (N).
        relevance: ``relevance(query) -> N`` similarities to the ORIGINAL query.
        image_embeddings: ``N x D`` embeddings for diversity (1 - mean pairwise cosine).
        margins: per-aspect gap below which the judge answers row 1.
        scales: divisors of the relevance and aesthetic gaps in the overall aspect.
    """

    aesthetic: np.ndarray
    relevance: Callable[[str], np.ndarray]
    image_embeddings: np.ndarray
    margins: Mapping[str, float]
    scales: Mapping[str, float]
    name: str = "proxy"
    model: str = "proxy:aesthetic+relevance+diversity"
    cacheable: bool = False

    @property
    def label(self) -> str:
        return "proxy (aesthetic scorer + relevance; not a model judge)"

    def row_scores(self, query: str, row: Sequence[int]) -> dict[str, float]:
        row = list(row)
        rel = float(np.mean(self.relevance(query)[row]))
        aes = float(np.mean(self.aesthetic[row]))
        emb = self.image_embeddings[row]
        emb = emb / np.linalg.norm(emb, axis=1, keepdims=True).clip(1e-12)
        sims = emb @ emb.T
        n = len(row)
        div = 1.0 - float((sims.sum() - np.trace(sims)) / max(1, n * (n - 1)))
        overall = rel / self.scales["accuracy"] + aes / self.scales["aesthetics"]
        return {"overall": overall, "accuracy": rel, "aesthetics": aes, "diversity": div}

    def compare(self, query: str, first: Sequence[int], second: Sequence[int]) -> dict[str, Any]:
        a, b = self.row_scores(query, first), self.row_scores(query, second)
        answer = {
            aspect: 2 if b[aspect] - a[aspect] > self.margins[aspect] else 1 for aspect in ASPECTS
        }
        return {"answer": answer, "row_scores": [a, b]}


def judge_pairwise(
    judge: Any,
    queries: Sequence[str],
    rows_a: Sequence[Sequence[int]],
    rows_b: Sequence[Sequence[int]],
    *,
    store: ResultStore | None = None,
    concurrency: int = 1,
    progress: bool = True,
    desc: str = "judge",
) -> list[dict[str, Any]]:
    """Ask ``judge`` about every query twice (A as row 1, then B as row 1).

    Returns one record per query: ``query``, ``first_call`` (A first) and ``second_call``
    (B first) answers, and ``outcome`` per aspect (+1 A wins, -1 B wins, 0 similar). Queries
    whose calls failed for good are left out (their failures are stored for a rerun).
    """
    from tqdm.auto import tqdm

    from uaes_hf.annotate.client import run_bounded

    if not (len(queries) == len(rows_a) == len(rows_b)) or not queries:
        raise ValueError("need one row of system A and one of system B per query")
    if len(set(queries)) != len(queries):
        raise ValueError("queries must be unique (each is judged once per order)")
    calls = [(q, tuple(a), tuple(b), 0) for q, a, b in zip(queries, rows_a, rows_b, strict=True)]
    calls += [(q, tuple(b), tuple(a), 1) for q, a, b in zip(queries, rows_a, rows_b, strict=True)]
    answers: dict[tuple[str, int], dict[str, int]] = {}

    def key(call: tuple) -> StoreKey:
        query, first, second, _ = call
        digest = judge.call_hash(query, first, second)
        return StoreKey(JUDGE_TASK, judge.name, judge.model, JUDGE_PROMPT_VERSION, digest)

    todo = []
    for call in calls:
        stored = store.get(key(call)) if store is not None and judge.cacheable else None
        if stored is not None and stored.ok and stored.payload:
            answers[(call[0], call[3])] = stored.payload["answer"]
        else:
            todo.append(call)

    def run(call: tuple) -> dict[str, Any]:
        return judge.compare(call[0], call[1], call[2])

    with tqdm(total=len(todo), desc=desc, disable=not progress) as bar:
        for call, result, error in run_bounded(run, todo, max(1, concurrency)):
            bar.update(1)
            if store is not None and judge.cacheable:
                if error is not None:
                    store.put_failure(key(call), call[0], type(error).__name__, str(error)[:300])
                    continue
                store.put_ok(
                    key(call),
                    call[0],
                    {"answer": result["answer"], "raw": result.get("raw"), "order": call[3]},
                    attempts=result.get("attempts", 1),
                    prompt_tokens=result.get("prompt_tokens", 0),
                    completion_tokens=result.get("completion_tokens", 0),
                )
            elif error is not None:
                raise error
            answers[(call[0], call[3])] = result["answer"]
    records = []
    for query in dict.fromkeys(queries):
        if (query, 0) in answers and (query, 1) in answers:
            first, second = answers[(query, 0)], answers[(query, 1)]
            records.append(
                {
                    "query": query,
                    "first_call": first,
                    "second_call": second,
                    "outcome": query_outcome(first, second),
                }
            )
    return records
