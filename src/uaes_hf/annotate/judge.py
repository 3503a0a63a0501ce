"""The poem judge: items -> what the store lacks -> claimed, concurrent calls -> the store.

A backend rates one poem text (:class:`OpenAIRatingBackend` through the chat client, or
``uaes_hf.annotate.local_backend.LocalRatingBackend`` offline). :func:`judge_poems` skips
every text the store already rated, runs the rest through
:func:`uaes_hf.annotate.durable.run_durable` (each item claimed in the store first, so a
second process on the same store leaves it alone and nothing is billed twice; bounded
concurrency; each result committed the moment it arrives) behind a progress bar, and returns
a :class:`JudgeSummary` (done, cached, failed by reason, tokens, estimated cost, and
``unrated``: the items still without a rating).

A failed item is never a final result: its failure record is kept for the report, and the
next run asks again (``retry_failed=False`` skips them for one run). Identical poem texts
are rated once (the store key is the text's hash).

Example:
    >>> import tempfile, pathlib
    >>> class Fixed:  # any backend: name, model, prompt, concurrency, preflight, params, rate
    ...     name, model, concurrency = "fixed", "constant-3", 1
    ...     prompt = get_prompt()
    ...     def preflight(self): pass
    ...     def params(self): return {}
    ...     def rate(self, text): return RatingOutcome(score=3, rationale="always 3")
    >>> with ResultStore(pathlib.Path(tempfile.mkdtemp()) / "r.sqlite") as store:
    ...     summary = judge_poems([PoemItem("p1", "Roses are red")], store, Fixed(),
    ...                           progress=False)
    >>> summary.done, summary.unrated
    (1, 0)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from uaes_hf.annotate.claims import DEFAULT_LEASE_S
from uaes_hf.annotate.client import ChatClient
from uaes_hf.annotate.durable import Done, DurableStats, run_durable
from uaes_hf.annotate.parsing import parse_rating
from uaes_hf.annotate.prompts import DEFAULT_POEM_PROMPT, PromptTemplate, get_prompt
from uaes_hf.annotate.reask import CallFailure, ask_parsed
from uaes_hf.annotate.store import ResultStore, StoreKey, estimate_cost, input_hash

POEM_TASK = "poem-aesthetic"
# A backend's failure on one text (same class as every task's: reason, detail, usage).
RatingFailure = CallFailure


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

    Messages, ``max_tokens`` (700 for the study's prompt) and the rest of the request come
    from the prompt template. ``max_reasks`` re-asks (conversation: prompt, bad answer,
    "reply with only the JSON") follow an answer that is not valid JSON or whose score is
    outside 1..5; after that the item fails with reason ``invalid_output``. Transport faults
    are retried by the client. ``deadline`` bounds one :meth:`rate` in seconds, re-asks
    included (e.g. for an interactive demo).

    Example:
        >>> from uaes_hf.annotate.client import ChatConfig
        >>> backend = OpenAIRatingBackend(ChatClient(ChatConfig(), api_key="sk-test"))
        >>> backend.params()["max_tokens"], backend.prompt.version
        (700, 'poem-aesthetic-v2')
    """

    name = "openai"

    def __init__(
        self,
        client: ChatClient,
        prompt: PromptTemplate | None = None,
        max_reasks: int = 2,
        *,
        max_tokens: int | None = None,
        deadline: float | None = None,
    ) -> None:
        if max_reasks < 0:
            raise ValueError(f"max_reasks must be >= 0, got {max_reasks}")
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        if deadline is not None and deadline <= 0:
            raise ValueError(f"deadline must be > 0 seconds, got {deadline}")
        self.client = client
        self.prompt = prompt or get_prompt(DEFAULT_POEM_PROMPT)
        self.max_reasks = max_reasks
        self.max_tokens = max_tokens or self.prompt.max_tokens or client.config.max_tokens
        self.deadline = deadline
        self.model = client.config.model
        self.concurrency = client.config.concurrency

    def preflight(self) -> None:
        self.client.preflight()

    def params(self) -> dict[str, Any]:
        return {
            **self.client.request_params(),
            "max_tokens": self.max_tokens,
            "max_reasks": self.max_reasks,
        }

    def rate(self, text: str) -> RatingOutcome:
        got = ask_parsed(
            self.client,
            self.prompt.messages(text),
            parse_rating,
            lambda problem: self.prompt.reask.format(problem=problem),
            max_reasks=self.max_reasks,
            deadline=self.deadline,
            max_tokens=self.max_tokens,
        )
        return RatingOutcome(
            score=got.value.score,
            rationale=got.value.rationale,
            prompt_tokens=got.prompt_tokens,
            completion_tokens=got.completion_tokens,
            attempts=got.attempts,
            extra={"raw_answer": got.content, "asks": got.asks, "model_reported": got.model},
        )


@dataclass
class JudgeSummary:
    """What a run did. ``cost_usd`` is an estimate (None when the model's price is unknown).

    ``failed``: items that failed in this run, by reason; ``unrated``: unique texts with no
    rating in the store after the run (failed now or earlier, left to another run, or not
    asked because the run stopped): a run is complete when it is 0.
    """

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
    by_other_run: int = 0
    left_to_other_run: int = 0
    late_duplicates: int = 0
    not_started: int = 0
    unrated: int = 0

    @property
    def n_failed(self) -> int:
        """Items whose calls failed in this run."""
        return sum(self.failed.values())

    @property
    def complete(self) -> bool:
        """Every unique text has a rating in the store."""
        return self.unrated == 0

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
            + (f", earlier failures kept {self.cached_failed}" if self.cached_failed else "")
            + f"; without a rating {self.unrated}",
        ]
        other = [
            f"rated by another run {self.by_other_run}" if self.by_other_run else "",
            f"left to another run {self.left_to_other_run}" if self.left_to_other_run else "",
            f"late duplicates {self.late_duplicates}" if self.late_duplicates else "",
            f"not asked (run stopped) {self.not_started}" if self.not_started else "",
        ]
        if any(other):
            lines.append("  " + ", ".join(x for x in other if x))
        lines.append(
            f"  tokens: prompt {self.prompt_tokens}, completion {self.completion_tokens}; "
            f"cost {cost}; {self.elapsed_s:.1f} s"
        )
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
    wait_for_others: bool = True,
    lease_s: float = DEFAULT_LEASE_S,
) -> JudgeSummary:
    """Rate every poem the store lacks; commit each result as it arrives.

    Args:
        items: poems (id, text); texts must be non-empty.
        store: where results live; what it holds is not redone.
        backend: e.g. :class:`OpenAIRatingBackend` or the local backend.
        retry_failed: retry items whose earlier run ended in a failure record.
        progress: show a tqdm progress bar.
        preflight: check key/endpoint once before any call (one clear error).
        wait_for_others: wait for items another live run on this store is rating (False:
            leave them to it; they count in ``unrated``).
        lease_s: how long this run's claims live without renewal (a crashed run's claims
            are free after that, or at once when it ran on this machine).

    Returns:
        A :class:`JudgeSummary`; also stored in the store's ``runs`` table.

    Raises:
        ChatConfigError: no key, a dead endpoint (circuit breaker) or a spent request cap.
        StoreFullError: the disk filled up; every result received before is stored.
    """
    if lease_s <= 0:
        raise ValueError(f"lease_s must be > 0 seconds, got {lease_s}")
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
    stats = DurableStats()
    bar = _progress(len(pending), progress, f"{backend.name}:{backend.model}")

    def work(key: StoreKey) -> Done:
        outcome = backend.rate(texts[key.input_hash].text)
        payload = {"score": outcome.score, "thinking": outcome.rationale, **outcome.extra}
        return Done(payload, outcome.prompt_tokens, outcome.completion_tokens, outcome.attempts)

    def tick(state: str) -> None:
        if bar is not None:
            bar.update(1)
            bar.set_postfix(failed=sum(stats.failed.values()), refresh=False)

    try:
        run_durable(
            store,
            [(key, texts[key.input_hash].id) for key in pending],
            work,
            concurrency=backend.concurrency,
            run_id=summary.run_id,
            params=params,
            cost=lambda p, c: _cost(summary.backend, summary.model, p, c),
            wait_for_others=wait_for_others,
            lease_s=lease_s,
            on_item=tick,
            stats=stats,
        )
    except BaseException:
        summary.interrupted = True
        raise
    finally:
        if bar is not None:
            bar.close()
        _copy_stats(stats, summary)
        summary.elapsed_s = time.monotonic() - start
        try:
            summary.unrated = len(store.missing(keys))
            store.finish_run(summary.run_id, summary.to_dict())
        except Exception:  # a full disk: the run's error says so; the results are safe
            if not summary.interrupted:
                raise
    return summary


def _copy_stats(stats: DurableStats, summary: JudgeSummary) -> None:
    summary.done = stats.done
    summary.failed = dict(stats.failed)
    summary.prompt_tokens = stats.prompt_tokens
    summary.completion_tokens = stats.completion_tokens
    summary.cost_usd = stats.cost_usd
    summary.by_other_run = stats.by_other_run
    summary.left_to_other_run = stats.left_to_other_run
    summary.late_duplicates = stats.late_duplicates
    summary.not_started = stats.not_started


def _cost(backend: str, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    if backend == "local":
        return 0.0
    return estimate_cost(model, prompt_tokens, completion_tokens)


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


def rate_one(item: PoemItem, store: ResultStore, backend: RatingBackend) -> Any:
    """The stored rating of one poem, asking the backend only when the store lacks it (a
    cache for interactive use, e.g. a demo). Returns the store row (``.ok``, ``.payload``,
    ``.reason``).

    Example:
        >>> import tempfile, pathlib
        >>> class Fixed:
        ...     name, model, concurrency, prompt = "fixed", "constant-4", 1, get_prompt()
        ...     def preflight(self): pass
        ...     def params(self): return {}
        ...     def rate(self, text): return RatingOutcome(score=4, rationale="always 4")
        >>> with ResultStore(pathlib.Path(tempfile.mkdtemp()) / "r.sqlite") as store:
        ...     rate_one(PoemItem("p", "A poem"), store, Fixed()).payload["score"]
        4
    """
    judge_poems([item], store, backend, progress=False, preflight=False)
    return store.get(item_key(backend, item.text))
