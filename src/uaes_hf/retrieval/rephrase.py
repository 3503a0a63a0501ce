"""LLM query rephrasing: add aesthetic expectations and visual detail to a search query.

The prompt is ours (the study's prompts are not public) and versioned
(:data:`REPHRASE_PROMPT_VERSION`). Two backends share it:

- :class:`ChatRephraseBackend`: any OpenAI-compatible endpoint through
  :class:`uaes_hf.annotate.client.ChatClient` (retries, backoff, bounded concurrency);
- :class:`LocalRephraseBackend`: the packaged SmolLM2-135M-Instruct, greedy, batched (left
  padding), stopping each answer at its first full stop. A 135M model writes plausible but
  weak rephrasings; the report says so.

Every answer is kept in the durable :class:`~uaes_hf.annotate.store.ResultStore` under
(task, backend, model, prompt version, sha256 of the query), so no query is paid for twice;
:func:`rephrase_queries` returns the original and the rephrased query side by side.

Example:
    >>> clean_rephrasing('Rephrased query: "A red car at dusk, soft light."\\nMore', "a red car")
    ('A red car at dusk, soft light.', False)
    >>> clean_rephrasing("  ", "a red car")
    ('a red car', True)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from uaes_hf.annotate.store import ResultStore, StoreKey, input_hash

REPHRASE_TASK = "retrieval_rephrase"
REPHRASE_PROMPT_VERSION = "retrieval-rephrase-v1"
REPHRASE_SYSTEM = (
    "You rewrite short image-search queries so that a search engine finds beautiful "
    "pictures. Keep the subject of the query. Add visual details that make a picture "
    "beautiful: colours, light, composition and style. Answer with one sentence of at "
    "most 25 words and nothing else."
)
# Few-shot examples, written for this project.
REPHRASE_EXAMPLES: tuple[tuple[str, str], ...] = (
    (
        "a cat",
        "A fluffy ginger cat curled up in warm window light, soft focus, clean "
        "composition, gentle pastel colours.",
    ),
    (
        "a bridge",
        "An elegant stone bridge over a calm river at sunset, golden light, balanced "
        "composition, rich colours.",
    ),
)
MAX_WORDS = 40
_PREFIX_RE = re.compile(r"^(rephrased( query)?|rewritten( query)?|query|answer)\s*:\s*", re.I)


def rephrase_messages(query: str) -> list[dict[str, str]]:
    """The chat messages for one query (system, few-shot turns, the query).

    Example:
        >>> rephrase_messages("a dog")[-1]
        {'role': 'user', 'content': 'Query: a dog'}
    """
    if not isinstance(query, str) or not query.strip():
        raise ValueError("a query must be a non-empty string")
    messages = [{"role": "system", "content": REPHRASE_SYSTEM}]
    for example, answer in REPHRASE_EXAMPLES:
        messages += [
            {"role": "user", "content": f"Query: {example}"},
            {"role": "assistant", "content": answer},
        ]
    messages.append({"role": "user", "content": f"Query: {' '.join(query.split())}"})
    return messages


def clean_rephrasing(raw: str, query: str, max_words: int = MAX_WORDS) -> tuple[str, bool]:
    """First non-empty line, without a label or quotes, at most ``max_words`` words.

    Returns ``(text, fallback)``; ``fallback`` is True when nothing usable was left and the
    original query is returned instead.
    """
    for line in (raw or "").splitlines():
        text = _PREFIX_RE.sub("", line.strip()).strip().strip("\"'`").strip()
        if text:
            words = text.split()
            if len(words) > max_words:
                text = " ".join(words[:max_words]).rstrip(",;:") + "."
            return text, False
    return query, True


@dataclass(frozen=True)
class Rephrasing:
    """An original query and its rephrasing, with where the rephrasing came from."""

    query: str
    rephrased: str
    backend: str
    model: str
    prompt_version: str
    fallback: bool
    cached: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ChatRephraseBackend:
    """Rephrase through an OpenAI-compatible endpoint (``ChatClient``)."""

    name = "openai"

    def __init__(self, client: Any, max_tokens: int = 80) -> None:
        self.client = client
        self.model = client.config.model
        self.max_tokens = max_tokens

    def generate(self, queries: Sequence[str]) -> list[dict[str, Any]]:
        from uaes_hf.annotate.client import run_bounded

        out: dict[str, dict[str, Any]] = {}

        def call(query: str) -> Any:
            return self.client.chat(rephrase_messages(query), max_tokens=self.max_tokens)

        for query, result, error in run_bounded(
            call, list(queries), self.client.config.concurrency
        ):
            if error is not None:
                out[query] = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
            else:
                out[query] = {
                    "raw": result.content,
                    "prompt_tokens": result.prompt_tokens,
                    "completion_tokens": result.completion_tokens,
                    "attempts": result.attempts,
                }
        return [out[q] for q in queries]


class LocalRephraseBackend:
    """Rephrase with a packaged causal LM, greedy and batched (offline)."""

    name = "local"

    def __init__(
        self,
        model_name: str = "smollm2-135m",
        *,
        max_new_tokens: int = 32,
        batch_size: int = 16,
        device: str = "cpu",
    ) -> None:
        if max_new_tokens < 4 or batch_size < 1:
            raise ValueError("max_new_tokens must be >= 4 and batch_size >= 1")
        self.model_name = model_name
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.device = device
        # Generation settings change the answers, so they are part of the stored model name.
        self.model = f"{model_name}-instruct/greedy-{max_new_tokens}tok-norepeat3"
        self._loaded: tuple[Any, Any, list[int]] | None = None

    def _load(self) -> tuple[Any, Any, list[int]]:
        if self._loaded is None:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            from uaes_hf.assets.models import packaged_model_dir

            folder = packaged_model_dir(self.model_name)
            tokenizer = AutoTokenizer.from_pretrained(folder)
            tokenizer.padding_side = "left"
            if tokenizer.pad_token_id is None:
                tokenizer.pad_token = tokenizer.eos_token
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
            stops = {tokenizer.eos_token_id}
            for text in (".", ".\n", "\n"):
                ids = tokenizer.encode(text, add_special_tokens=False)
                if len(ids) == 1:
                    stops.add(ids[0])
            self._loaded = (model.to(self.device).eval(), tokenizer, sorted(stops))
        return self._loaded

    def generate(self, queries: Sequence[str]) -> list[dict[str, Any]]:
        import torch

        model, tokenizer, stops = self._load()
        results: list[dict[str, Any]] = []
        for start in range(0, len(queries), self.batch_size):
            batch = list(queries[start : start + self.batch_size])
            prompts = [
                tokenizer.apply_chat_template(
                    rephrase_messages(q), tokenize=False, add_generation_prompt=True
                )
                for q in batch
            ]
            encoded = tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
            with torch.inference_mode():
                output = model.generate(
                    **encoded,
                    max_new_tokens=self.max_new_tokens,
                    do_sample=False,
                    no_repeat_ngram_size=3,
                    eos_token_id=stops,
                    pad_token_id=tokenizer.pad_token_id,
                )
            new = output[:, encoded["input_ids"].shape[1] :]
            for row in new:
                kept = row[row != tokenizer.pad_token_id]
                results.append(
                    {
                        "raw": tokenizer.decode(kept, skip_special_tokens=True),
                        "prompt_tokens": int(encoded["attention_mask"][0].sum()),
                        "completion_tokens": int(kept.numel()),
                        "attempts": 1,
                    }
                )
        return results


def rephrase_queries(
    queries: Sequence[str],
    backend: Any,
    store: ResultStore,
    *,
    batch_size: int = 16,
    progress: bool = True,
) -> list[Rephrasing]:
    """Rephrase ``queries`` (stored answers are reused; only missing ones are generated).

    Raises:
        RuntimeError: when some queries still have no rephrasing after the calls (their
            failures are stored; a rerun retries them).
    """
    queries = [" ".join(q.split()) for q in queries]
    if not queries or any(not q for q in queries):
        raise ValueError("queries must be a non-empty list of non-empty strings")
    keys = {
        q: StoreKey(
            REPHRASE_TASK, backend.name, backend.model, REPHRASE_PROMPT_VERSION, input_hash(q)
        )
        for q in queries
    }
    missing = [q for q in dict.fromkeys(queries) if keys[q] in set(store.missing(keys.values()))]
    fresh = set(missing)
    from tqdm.auto import tqdm

    with tqdm(total=len(missing), desc=f"rephrase ({backend.name})", disable=not progress) as bar:
        for start in range(0, len(missing), batch_size):
            batch = missing[start : start + batch_size]
            for query, answer in zip(batch, backend.generate(batch), strict=True):
                if "error" in answer:
                    store.put_failure(keys[query], query, "call_failed", answer["error"])
                    continue
                text, fallback = clean_rephrasing(answer["raw"], query)
                store.put_ok(
                    keys[query],
                    query,
                    {"query": query, "raw": answer["raw"], "rephrased": text, "fallback": fallback},
                    attempts=answer["attempts"],
                    prompt_tokens=answer["prompt_tokens"],
                    completion_tokens=answer["completion_tokens"],
                    params={"backend": backend.name, "model": backend.model},
                )
            bar.update(len(batch))
    out = []
    for query in queries:
        row = store.get(keys[query])
        if row is None or not row.ok or row.payload is None:
            raise RuntimeError(
                f"no rephrasing for {query!r} ({row.reason if row else 'not stored'}); rerun to retry"
            )
        out.append(
            Rephrasing(
                query=query,
                rephrased=row.payload["rephrased"],
                backend=backend.name,
                model=backend.model,
                prompt_version=REPHRASE_PROMPT_VERSION,
                fallback=bool(row.payload["fallback"]),
                cached=query not in fresh,
            )
        )
    return out
