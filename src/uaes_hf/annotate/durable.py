"""Run paid calls over items into the result store: claimed, bounded, stored, never twice.

:func:`run_durable` is the loop the poem judge and the VLM image tasks share. For each item
(a store key the store lacks) it:

1. claims the key (:class:`~uaes_hf.annotate.claims.ClaimBook`): an item another live run is
   requesting is skipped, and waited for (``wait_for_others``) or left to that run;
2. calls ``work(key)`` on a thread (at most ``concurrency`` in flight) and commits its result
   the moment it arrives: ``ok`` with its payload, or a failure record (not final: the next
   run retries it). Every token a reply billed is recorded, failures and late duplicates
   included;
3. stops asking, after the calls in flight, when the endpoint is down or the client's cap is
   spent (``work`` raised a :class:`~uaes_hf.annotate.client.ChatConfigError`: ONE error,
   raised at the end) or the disk is full (:class:`~uaes_hf.annotate.store.StoreFullError`
   at the end; results already paid for are kept, see the store's reserve).

Example:
    >>> import tempfile, pathlib
    >>> from uaes_hf.annotate.store import ResultStore, StoreKey
    >>> store = ResultStore(pathlib.Path(tempfile.mkdtemp()) / "r.sqlite")
    >>> keys = [StoreKey("t", "b", "m", "v", f"h{i}") for i in range(3)]
    >>> stats = run_durable(store, [(k, k.input_hash) for k in keys],
    ...                     lambda key: Done({"value": key.input_hash.upper()}),
    ...                     concurrency=2, run_id="doc")
    >>> stats.done, store.get(keys[2]).payload
    (3, {'value': 'H2'})
    >>> store.close()
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from uaes_hf.annotate.backoff import run_bounded
from uaes_hf.annotate.claims import DEFAULT_LEASE_S, ClaimBook, describe_owner
from uaes_hf.annotate.client import ChatCallError, ChatConfigError
from uaes_hf.annotate.reask import CallFailure
from uaes_hf.annotate.store import ResultStore, StoreFullError, StoreKey


@dataclass(frozen=True)
class Done:
    """A successful item: what to store and what it cost."""

    payload: dict[str, Any]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 1


@dataclass
class DurableStats:
    """What :func:`run_durable` did (filled in place, so an interrupt keeps the counts).

    ``by_other_run``: items another run finished (or failed) meanwhile, not asked here;
    ``left_to_other_run``: items another live run was requesting, left to it;
    ``late_duplicates``: results that arrived after another run had stored one (their
    usage was added to the stored row); ``not_started``: items never asked because the run
    stopped early (``stopped`` says why).
    """

    done: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0
    busy_at_start: int = 0
    by_other_run: int = 0
    left_to_other_run: int = 0
    late_duplicates: int = 0
    not_started: int = 0
    stopped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def add_usage(self, prompt_tokens: int, completion_tokens: int, cost: float | None) -> None:
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        if cost is None or self.cost_usd is None:
            self.cost_usd = None
        else:
            self.cost_usd += cost


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_durable(
    store: ResultStore,
    jobs: Sequence[tuple[StoreKey, str]],
    work: Callable[[StoreKey], Done],
    *,
    concurrency: int,
    run_id: str | None = None,
    params: Mapping[str, Any] | None = None,
    cost: Callable[[int, int], float | None] = lambda p, c: None,
    wait_for_others: bool = True,
    lease_s: float = DEFAULT_LEASE_S,
    poll_s: float = 0.5,
    on_item: Callable[[str], None] | None = None,
    notify: Callable[[str], None] = _stderr,
    stats: DurableStats | None = None,
) -> DurableStats:
    """Do ``work`` for every job ``(key, item_id)`` and store the outcomes; see the module.

    ``work(key)`` returns :class:`Done` or raises :class:`~uaes_hf.annotate.reask.CallFailure`
    (or any ``ChatCallError``: stored as a failure record); a ``ChatConfigError`` stops the run; any other exception
    becomes a failure record with reason ``error``. ``on_item(state)`` is called once per
    item that leaves the queue (``ok``, ``failed``, ``other``, ``stopped``).

    Raises:
        StoreFullError: the disk filled up (after storing every result received).
        ChatConfigError: the endpoint is down or the client's request cap is spent.
    """
    stats = stats if stats is not None else DurableStats()
    item_ids = dict(jobs)
    keys = list(item_ids)
    if not keys:
        return stats
    book = ClaimBook(store, lease_s=lease_s)
    seen = store.created_at(keys)
    holders = book.held_by_others(keys)
    stats.busy_at_start = sum(holders.values())
    if holders:
        who = ", ".join(describe_owner(o) for o in holders)
        action = (
            "waiting for them (--leave-claimed leaves them)"
            if wait_for_others
            else "leaving them to it"
        )
        notify(
            f"{stats.busy_at_start} of {len(keys)} items are being rated by another run on "
            f"this store ({who}); {action}"
        )
    stop = threading.Event()
    errors: dict[str, BaseException] = {}
    failed: Counter[str] = Counter(stats.failed)

    def task(key: StoreKey) -> tuple[str, Any]:
        if stop.is_set():
            return "stopped", None
        try:
            state = book.claim(key, seen[key])
        except StoreFullError as err:
            stop.set()
            return "full", err
        if state != "claimed":
            return state, None
        try:
            return "ok", work(key)
        except ChatCallError as failure:  # CallFailure, or a bare client error
            return "failed", failure
        except ChatConfigError as err:
            stop.set()
            return "abort", err
        except Exception as err:  # a bug or an unexpected library error: record it
            return "failed", CallFailure("error", f"{type(err).__name__}: {err}")

    def store_outcome(key: StoreKey, state: str, value: Any) -> None:
        p_tok, c_tok = value.prompt_tokens, value.completion_tokens
        price = cost(p_tok, c_tok)
        stats.add_usage(p_tok, c_tok, price)  # paid, whether or not it can be stored
        common = dict(
            attempts=value.attempts,
            prompt_tokens=p_tok,
            completion_tokens=c_tok,
            cost_usd=price,
            params=params,
            run_id=run_id,
            release_owner=book.owner,
        )
        try:
            if state == "ok":
                stored = store.put_ok(key, item_ids[key], value.payload, **common)
            else:
                stored = store.put_failure(key, item_ids[key], value.reason, value.detail, **common)
        except StoreFullError as err:
            stop.set()
            errors.setdefault("full", err)
            unsaved.append((item_ids[key], state, value))
            return
        if not stored:
            stats.late_duplicates += 1
        if store.out_of_space:
            stop.set()

    unsaved: list[tuple[str, str, Any]] = []
    pending, deferred = keys, []
    with book.heartbeat():
        try:
            while pending:
                for key, out, err in run_bounded(task, pending, concurrency):
                    if err is not None:
                        raise err
                    state, value = out
                    if state == "busy":
                        deferred.append(key)
                        continue
                    if state in ("ok", "failed"):
                        store_outcome(key, state, value)
                        if state == "ok":
                            stats.done += 1
                        else:
                            failed[value.reason] += 1
                            stats.failed = dict(failed)
                    elif state in ("done", "taken"):
                        stats.by_other_run += 1
                        state = "other"
                    else:  # stopped, full, abort: this item was not asked (or not stored)
                        stats.not_started += 1
                        if state in ("full", "abort"):
                            errors.setdefault(state, value)
                        state = "stopped"
                    if on_item is not None:
                        on_item(state)
                pending, deferred = deferred, []
                if pending and (stop.is_set() or not wait_for_others):
                    stats.left_to_other_run += len(pending)
                    pending = []
                elif pending:
                    time.sleep(poll_s)
        finally:
            # a full or locked disk: the claims expire on their own
            with contextlib.suppress(Exception):
                book.release_all()
    if "full" in errors or store.out_of_space:
        stats.stopped = "disk full"
        raise _full_error(errors.get("full"), store, stats, unsaved)
    if "abort" in errors:
        stats.stopped = str(errors["abort"])
        raise errors["abort"]
    return stats


def _full_error(
    err: BaseException | None, store: ResultStore, stats: DurableStats, unsaved: list
) -> StoreFullError:
    text = (
        str(err)
        if err is not None
        else (
            f"the disk holding {store.path} is full: the results already paid for were stored "
            "in the space of the store's reserve file. Free some space and rerun to continue."
        )
    )
    text += (
        f" This run stored {stats.done + sum(stats.failed.values()) - len(unsaved)} results "
        f"and stopped asking for more; {stats.not_started} items were not asked."
    )
    if unsaved:  # nothing else can hold them: show the paid answers so they are not lost
        lines = [
            f"  {item_id}: {state} {getattr(v, 'payload', None)!r}" for item_id, state, v in unsaved
        ]
        text += f" {len(unsaved)} paid results could not be stored:\n" + "\n".join(lines)
    return StoreFullError(text)
