"""Retry timing and bounded concurrency for the chat client (pure helpers, no network).

- :func:`backoff_delay`: exponential backoff with jitter, never sooner than ``Retry-After``;
- :func:`parse_retry_after`: ``retry-after-ms`` / ``Retry-After`` (seconds or HTTP date);
- :func:`run_bounded`: at most ``concurrency`` calls in flight on threads, results as they
  complete.

All three are re-exported by :mod:`uaes_hf.annotate.client`, their historical home.

Example:
    >>> parse_retry_after({"retry-after": "2"})
    2.0
"""

from __future__ import annotations

import email.utils
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def backoff_delay(
    attempt: int,
    base: float,
    cap: float,
    rng: random.Random,
    retry_after: float | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based).

    Exponential backoff with "equal jitter": half of ``min(cap, base * 2**(attempt-1))`` plus a
    uniform random share of the other half, so waits grow but concurrent clients spread out.
    A server's ``Retry-After`` is a floor: we never retry sooner than it asked (plus up to 10%
    jitter), even above ``cap``.

    Example:
        >>> import random
        >>> 0.5 <= backoff_delay(1, 1.0, 60.0, random.Random(0)) <= 1.0
        True
        >>> backoff_delay(1, 1.0, 60.0, random.Random(0), retry_after=3.0) >= 3.0
        True
    """
    exp = min(cap, base * (2 ** max(0, attempt - 1)))
    delay = exp / 2 + rng.uniform(0, exp / 2)
    if retry_after is not None and retry_after >= 0:
        delay = max(delay, retry_after + rng.uniform(0, 0.1 * retry_after))
    return delay


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds a server asked us to wait, from ``retry-after-ms`` or ``Retry-After``.

    ``Retry-After`` may be a number of seconds or an HTTP date. Returns ``None`` when absent
    or unparseable.

    Example:
        >>> parse_retry_after({"retry-after": "2"})
        2.0
        >>> parse_retry_after({"retry-after-ms": "150"})
        0.15
    """
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    ms = lowered.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def run_bounded(
    fn: Callable[[T], R], items: Iterable[T], concurrency: int
) -> Iterator[tuple[T, R | None, BaseException | None]]:
    """Apply ``fn`` to ``items`` on threads, at most ``concurrency`` in flight, yielding
    ``(item, result, None)`` or ``(item, None, exception)`` as each call completes.

    Items are handed out lazily, so stopping the iteration (Ctrl-C, ``break``) leaves at most
    ``concurrency`` calls running. Workers are daemon threads: on Ctrl-C the process exits
    at once instead of waiting for calls in flight (their results are simply lost).

    Example:
        >>> sorted(r for _, r, _ in run_bounded(lambda x: x * x, range(5), concurrency=2))
        [0, 1, 4, 9, 16]
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    iterator = iter(items)
    todo: queue.Queue[Any] = queue.Queue()
    done: queue.Queue[tuple[Any, Any, BaseException | None]] = queue.Queue()
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            item = todo.get()
            if item is _SENTINEL:
                return
            try:
                done.put((item, fn(item), None))
            except BaseException as err:  # handed to the consumer
                done.put((item, None, err))

    threads = [
        threading.Thread(target=worker, name=f"uaes-call-{i}", daemon=True)
        for i in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    in_flight = 0
    try:
        for item in iterator:
            todo.put(item)
            in_flight += 1
            if in_flight >= concurrency:
                break
        while in_flight:
            item, result, err = done.get()
            in_flight -= 1
            yield item, result, err
            nxt = next(iterator, _SENTINEL)
            if nxt is not _SENTINEL:
                todo.put(nxt)
                in_flight += 1
    finally:
        stop.set()
        for _ in threads:
            todo.put(_SENTINEL)


_SENTINEL = object()
