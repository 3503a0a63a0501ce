"""The poem judge: items -> what the store lacks -> concurrent calls -> the store.

A backend rates one poem text (:class:`OpenAIRatingBackend` through the chat client, or
``uaes_hf.annotate.local_backend.LocalRatingBackend`` offline). :func:`judge_poems` skips
every text the store already holds (so a rerun after Ctrl-C or ``kill -9`` only does what
is missing and bills nothing twice), runs the rest with bounded concurrency behind a
progress bar, commits each result the moment it arrives, and returns a
:class:`JudgeSummary` (done, cached, failed by reason, tokens, estimated cost).

Identical poem texts are rated once (the store key is the text's hash).

Example:
    >>> from uaes_hf.annotate.client import ChatClient, ChatConfig  # doctest: +SKIP
    >>> backend = OpenAIRatingBackend(ChatClient(ChatConfig(model="gpt-4o")))  # doctest: +SKIP
    >>> with ResultStore("ratings.sqlite") as store:  # doctest: +SKIP
    ...     summary = judge_poems([PoemItem("p1", "Roses are red")], store, backend)
    >>> print(summary.format())  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from uaes_hf.annotate.client import ChatCallError, ChatClient, run_bounded
from uaes_hf.annotate.parsing import RatingParseError, parse_rating
from uaes_hf.annotate.prompts import DEFAULT_POEM_PROMPT, PromptTemplate, get_prompt
from uaes_hf.annotate.store import ResultStore, StoreKey, estimate_cost, input_hash

POEM_TASK = "poem-aesthetic"


@dataclass(frozen=True)
class PoemItem:
    """One poem to rate: a stable id and its text."""

    id: str
    text: str


@dataclass(frozen=True)
class RatingOutcome:
    """A backend's successful rating of one text, with what it cost."""

    score: int
    rationale: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


class RatingFailure(RuntimeError):
    """A backend gave up on one text; becomes a failure record in the store."""

    def __init__(
        self,
        reason: str,
        detail: str,
        attempts: int = 0,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
    ) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.attempts = attempts
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens


class RatingBackend(Protocol):
    """What :func:`judge_poems` needs from a backend."""

    name: str
    model: str
    prompt: PromptTemplate
    concurrency: int

    def preflight(self) -> None: ...

    def params(self) -> dict[str, Any]: ...

    def rate(self, text: str) -> RatingOutcome: ...


class OpenAIRatingBackend:
    """The rubric through any OpenAI-compatible endpoint, re-asking after unusable answers.

    ``max_reasks`` re-asks (conversation: prompt, bad answer, "reply with only the JSON")
    follow an answer that is not valid JSON or whose score is outside 1..5; after that the
    item fails with reason ``invalid_output``. Transport faults are retried by the client.
    """

    name = "openai"

    def __init__(
        self,
        client: ChatClient,
        prompt: PromptTemplate | None = None,
        max_reasks: int = 2,
    ) -> None:
        if max_reasks < 0:
            raise ValueError(f"max_reasks must be >= 0, got {max_reasks}")
        self.client = client
        self.prompt = prompt or get_prompt(DEFAULT_POEM_PROMPT)
        self.max_reasks = max_reasks
        self.model = client.config.model
        self.concurrency = client.config.concurrency

    def preflight(self) -> None:
        self.client.preflight()

    def params(self) -> dict[str, Any]:
        return {**self.client.request_params(), "max_reasks": self.max_reasks}

    def rate(self, text: str) -> RatingOutcome:
        messages = self.prompt.messages(text)
        prompt_tokens = completion_tokens = attempts = 0
        for ask in range(self.max_reasks + 1):
            try:
                result = self.client.chat(messages)
            except ChatCallError as err:
                raise RatingFailure(
                    err.reason,
                    err.detail,
                    attempts + err.attempts,
                    prompt_tokens,
                    completion_tokens,
                ) from None
            prompt_tokens += result.prompt_tokens
            completion_tokens += result.completion_tokens
            attempts += result.attempts
            try:
                parsed = parse_rating(result.content)
            except RatingParseError as err:
                problem, last_answer = err, result.content
                messages = self.prompt.reask_messages(text, result.content, err.problem)
                continue
            return RatingOutcome(
                score=parsed.score,
                rationale=parsed.rationale,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                attempts=attempts,
                extra={
                    "raw_answer": result.content,
                    "asks": ask + 1,
                    "model_reported": result.model,
                },
            )
        raise RatingFailure(
            "invalid_output",
            f"{problem.reason}: {problem.problem}; last answer: {last_answer[:200]!r}",
            attempts,
            prompt_tokens,
            completion_tokens,
        )


@dataclass
class JudgeSummary:
    """What a run did. ``cost_usd`` is an estimate (None when the model's price is unknown)."""

    backend: str
    model: str
    prompt_version: str
    params: dict[str, Any]
    n_items: int = 0
    n_unique: int = 0
    cached: int = 0
    cached_failed: int = 0
    done: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0
    elapsed_s: float = 0.0
    run_id: str | None = None
    interrupted: bool = False

    @property
    def n_failed(self) -> int:
        return sum(self.failed.values())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self) -> str:
        """Human-readable summary, e.g. for the end of ``uaes annotate poems``."""
        failed = ", ".join(f"{k}={v}" for k, v in sorted(self.failed.items())) or "none"
        cost = (
            "unknown (no price for this model)"
            if self.cost_usd is None
            else (f"${self.cost_usd:.4f} (estimate from list prices)")
        )
        lines = [
            f"{'interrupted' if self.interrupted else 'finished'} run {self.run_id}: "
            f"{self.backend}:{self.model} prompt {self.prompt_version} "
            f"(temperature={self.params.get('temperature')}, seed={self.params.get('seed')})",
            f"  items {self.n_items} ({self.n_unique} unique texts): done now {self.done}, "
            f"cached {self.cached}, failed now {self.n_failed} [{failed}]"
            + (f", earlier failures kept {self.cached_failed}" if self.cached_failed else ""),
            f"  tokens: prompt {self.prompt_tokens}, completion {self.completion_tokens}; "
            f"cost {cost}; {self.elapsed_s:.1f} s",
        ]
        if self.backend == "local":
            lines.append(
                "  note: local scores come from a 135M-parameter model; they are real but "
                "weak (see model_cards/judge.md)."
            )
        return "\n".join(lines)


def item_key(backend: RatingBackend, text: str) -> StoreKey:
    """The store key of one poem text for this backend, model and prompt version."""
    return StoreKey(
        POEM_TASK, backend.name, backend.model, backend.prompt.version, input_hash(text)
    )


def judge_poems(
    items: Iterable[PoemItem],
    store: ResultStore,
    backend: RatingBackend,
    *,
    retry_failed: bool = True,
    progress: bool = True,
    preflight: bool = True,
    run_params: dict[str, Any] | None = None,
) -> JudgeSummary:
    """Rate every poem the store lacks; commit each result as it arrives.

    Args:
        items: poems (id, text); texts must be non-empty.
        store: where results live; what it holds is not redone.
        backend: e.g. :class:`OpenAIRatingBackend` or the local backend.
        retry_failed: retry items whose earlier run ended in a failure record.
        progress: show a tqdm progress bar.
        preflight: check key/endpoint once before any call (one clear error).

    Returns:
        A :class:`JudgeSummary`; also stored in the store's ``runs`` table.
    """
    items = list(items)
    by_hash: dict[str, list[PoemItem]] = {}
    for item in items:
        if not isinstance(item.text, str) or not item.text.strip():
            raise ValueError(f"poem {item.id!r} has an empty text")
        by_hash.setdefault(input_hash(item.text), []).append(item)
    texts = {h: group[0] for h, group in by_hash.items()}
    keys = [item_key(backend, group.text) for group in texts.values()]
    params = {**backend.params(), "prompt_version": backend.prompt.version}
    summary = JudgeSummary(
        backend=backend.name,
        model=backend.model,
        prompt_version=backend.prompt.version,
        params=params,
        n_items=len(items),
        n_unique=len(keys),
    )
    pending = store.missing(keys, retry_failed=retry_failed)
    pending_set = set(pending)
    for key in keys:
        if key not in pending_set:
            row = store.get(key)
            if row is not None and row.ok:
                summary.cached += 1
            else:
                summary.cached_failed += 1
    if pending and preflight:
        backend.preflight()  # raises one clear error before any item is tried

    start = time.monotonic()
    summary.run_id = store.start_run({**params, **(run_params or {})})
    failed: Counter[str] = Counter()
    bar = _progress(len(pending), progress, f"{backend.name}:{backend.model}")
    try:
        calls = run_bounded(
            lambda key: backend.rate(texts[key.input_hash].text), pending, backend.concurrency
        )
        for key, outcome, err in calls:
            item = texts[key.input_hash]
            if err is None and outcome is not None:
                _store_ok(store, key, item, outcome, params, summary)
                summary.done += 1
            else:
                reason = _store_failure(store, key, item, err, params, summary)
                failed[reason] += 1
                summary.failed = dict(failed)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(failed=sum(failed.values()), refresh=False)
    except BaseException:
        summary.interrupted = True
        raise
    finally:
        if bar is not None:
            bar.close()
        summary.failed = dict(failed)
        summary.elapsed_s = time.monotonic() - start
        store.finish_run(summary.run_id, summary.to_dict())
    return summary


def _store_ok(
    store: ResultStore,
    key: StoreKey,
    item: PoemItem,
    outcome: RatingOutcome,
    params: dict[str, Any],
    summary: JudgeSummary,
) -> None:
    cost = _cost(summary.backend, summary.model, outcome.prompt_tokens, outcome.completion_tokens)
    payload = {"score": outcome.score, "thinking": outcome.rationale, **outcome.extra}
    store.put_ok(
        key,
        item.id,
        payload,
        attempts=outcome.attempts,
        prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens,
        cost_usd=cost,
        params=params,
        run_id=summary.run_id,
    )
    _add_usage(summary, outcome.prompt_tokens, outcome.completion_tokens, cost)


def _store_failure(
    store: ResultStore,
    key: StoreKey,
    item: PoemItem,
    err: BaseException | None,
    params: dict[str, Any],
    summary: JudgeSummary,
) -> str:
    if isinstance(err, RatingFailure):
        reason, detail = err.reason, err.detail
        attempts, p_tok, c_tok = err.attempts, err.prompt_tokens, err.completion_tokens
    else:  # a bug or an unexpected library error: record it, never leave a silent gap
        reason = "error"
        detail = f"{type(err).__name__}: {err}"
        attempts = p_tok = c_tok = 0
    cost = _cost(summary.backend, summary.model, p_tok, c_tok)
    store.put_failure(
        key,
        item.id,
        reason,
        detail,
        attempts=attempts,
        prompt_tokens=p_tok,
        completion_tokens=c_tok,
        cost_usd=cost,
        params=params,
        run_id=summary.run_id,
    )
    _add_usage(summary, p_tok, c_tok, cost)
    return reason


def _cost(backend: str, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    if backend == "local":
        return 0.0
    return estimate_cost(model, prompt_tokens, completion_tokens)


def _add_usage(summary: JudgeSummary, p_tok: int, c_tok: int, cost: float | None) -> None:
    summary.prompt_tokens += p_tok
    summary.completion_tokens += c_tok
    if cost is None or summary.cost_usd is None:
        summary.cost_usd = None
    else:
        summary.cost_usd += cost


def _progress(total: int, enabled: bool, desc: str) -> Any:
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"rating poems ({desc})", unit="poem")


def stored_ratings(
    items: Sequence[PoemItem], store: ResultStore, backend: RatingBackend
) -> dict[str, Any]:
    """Map item id -> its stored row (ok or failed) for this backend/model/prompt, if any."""
    out: dict[str, Any] = {}
    for item in items:
        row = store.get(item_key(backend, item.text))
        if row is not None:
            out[item.id] = row
    return out
