"""A reusable, fault-tolerant chat client for any OpenAI-compatible endpoint.

Used by the poem judge and, through the same public names, by the image scorers and the
image-to-poem generators. It wraps the ``openai`` package (its own retries are switched off)
and adds what a long annotation run needs:

- retries with exponential backoff and jitter on 429, 5xx, timeouts and connection errors,
  honouring ``Retry-After`` / ``retry-after-ms``;
- bounded concurrency (:func:`run_bounded`: at most ``concurrency`` calls in flight, so a
  Ctrl-C or a crash loses at most those);
- token usage on every result;
- :meth:`ChatClient.preflight`: ONE clear :class:`ChatConfigError` at start for a missing key,
  a rejected key or an unreachable endpoint, instead of a traceback per item.

The key is read from ``OPENAI_API_KEY`` only; it is never logged, printed or put in a repr.
``messages`` are passed through unchanged, so content parts such as
``{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}`` work.

Public API (stable):

- ``ChatConfig(model="gpt-4o", base_url=None, timeout=60.0, max_retries=6, backoff_base=1.0,
  backoff_max=60.0, concurrency=8, temperature=0.0, seed=0, max_tokens=None)``
- ``ChatClient(config, api_key=None)``: ``api_key=None`` reads ``OPENAI_API_KEY``.
  ``.preflight() -> None``; ``.chat(messages, **extra) -> ChatResult`` (retries included;
  ``extra`` goes to ``chat.completions.create``, e.g. ``response_format``);
  ``.request_params() -> dict`` (model, temperature, seed, ... to record with results).
- ``ChatResult``: ``content``, ``prompt_tokens``, ``completion_tokens``, ``attempts``,
  ``latency_s``, ``model`` (as the server reported it), ``finish_reason``.
- ``ChatCallError(reason, detail, attempts)``: raised by ``chat`` after the last try;
  ``reason`` is one of ``rate_limited``, ``server_error``, ``timeout``, ``connection``,
  ``bad_request``, ``auth``, ``bad_response``.
- ``ChatConfigError``: raised by ``preflight`` (and by ``ChatClient`` for a missing key).
- ``run_bounded(fn, items, concurrency) -> Iterator[(item, result | None, exception | None)]``
  yields as calls complete, with at most ``concurrency`` in flight.
- ``backoff_delay(attempt, base, cap, rng, retry_after=None) -> float``.

Example:
    >>> from uaes_hf.annotate.client import ChatClient, ChatConfig  # doctest: +SKIP
    >>> client = ChatClient(ChatConfig(base_url="http://127.0.0.1:8000/v1"))  # doctest: +SKIP
    >>> client.preflight()  # doctest: +SKIP
    >>> client.chat([{"role": "user", "content": "Say hi"}]).content  # doctest: +SKIP
    'Hi!'
"""

from __future__ import annotations

import email.utils
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

API_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_MODEL = "gpt-4o"

T = TypeVar("T")
R = TypeVar("R")


class ChatConfigError(RuntimeError):
    """The client cannot start: missing or rejected key, unreachable endpoint, bad settings."""


class ChatCallError(RuntimeError):
    """One chat call failed for good (after retries, or at once for a non-retryable error).

    Attributes:
        reason: short machine-readable cause (``rate_limited``, ``server_error``, ``timeout``,
            ``connection``, ``bad_request``, ``auth``, ``bad_response``).
        detail: human-readable detail (never contains the key).
        attempts: how many HTTP attempts were made.
    """

    def __init__(self, reason: str, detail: str, attempts: int) -> None:
        super().__init__(f"{reason} after {attempts} attempt(s): {detail}")
        self.reason = reason
        self.detail = detail
        self.attempts = attempts


@dataclass(frozen=True)
class ChatConfig:
    """Settings of a :class:`ChatClient`; everything but the key.

    Example:
        >>> ChatConfig(model="gpt-4o-mini", concurrency=4).model
        'gpt-4o-mini'
    """

    model: str = DEFAULT_MODEL
    base_url: str | None = None
    timeout: float = 60.0
    max_retries: int = 6
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    concurrency: int = 8
    temperature: float | None = 0.0
    seed: int | None = 0
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("model must be a non-empty string, e.g. 'gpt-4o'")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {self.timeout}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.backoff_base < 0 or self.backoff_max < 0:
            raise ValueError("backoff_base and backoff_max must be >= 0")


@dataclass(frozen=True)
class ChatResult:
    """One successful chat completion and what it cost."""

    content: str
    prompt_tokens: int
    completion_tokens: int
    attempts: int
    latency_s: float
    model: str
    finish_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, e.g. to store in a payload."""
        return asdict(self)


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


def _classify(err: BaseException) -> tuple[str, bool, float | None]:
    """Map an ``openai`` exception to (reason, retryable, retry_after_seconds)."""
    import openai

    if isinstance(err, openai.APITimeoutError):
        return "timeout", True, None
    if isinstance(err, openai.APIConnectionError):
        return "connection", True, None
    if isinstance(err, openai.APIStatusError):
        status = err.status_code
        retry_after = parse_retry_after(dict(err.response.headers))
        if status == 429:
            return "rate_limited", True, retry_after
        if status in (408, 409) or status >= 500:
            return "server_error", True, retry_after
        if status in (401, 403):
            return "auth", False, None
        return "bad_request", False, None
    # A 200 whose body is not a chat completion (garbage JSON, missing fields): retry.
    return "bad_response", True, None


class ChatClient:
    """Thread-safe chat client with retries; one instance is shared by all worker threads.

    Example:
        >>> client = ChatClient(ChatConfig(base_url="http://127.0.0.1:9/v1"), api_key="sk-test")
        >>> client.request_params()["model"]
        'gpt-4o'
    """

    def __init__(
        self,
        config: ChatConfig | None = None,
        *,
        api_key: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng_seed: int | None = None,
    ) -> None:
        self.config = config or ChatConfig()
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")
        self._key_missing = not key.strip()
        self._key = _Secret(key.strip())
        self._sleep = sleep
        self._rng = random.Random(rng_seed)
        self._rng_lock = threading.Lock()
        self._client: Any = None
        self._client_lock = threading.Lock()

    def __repr__(self) -> str:  # never show the key
        return f"ChatClient(model={self.config.model!r}, base_url={self.endpoint!r})"

    @property
    def endpoint(self) -> str:
        """The base URL calls go to (OpenAI's when ``base_url`` is None)."""
        return self.config.base_url or "https://api.openai.com/v1"

    def request_params(self) -> dict[str, Any]:
        """Generation settings to record next to every stored result.

        Example:
            >>> ChatClient(ChatConfig(seed=7), api_key="x").request_params()["seed"]
            7
        """
        return {
            "model": self.config.model,
            "base_url": self.endpoint,
            "temperature": self.config.temperature,
            "seed": self.config.seed,
            "max_tokens": self.config.max_tokens,
        }

    def _redact(self, text: str) -> str:
        """``text`` with the key replaced: some servers echo the presented key in errors."""
        return text.replace(self._key.value, "<hidden>") if self._key.value else text

    def _require_key(self) -> None:
        if self._key_missing:
            raise ChatConfigError(
                f"{API_KEY_ENV} is not set. Export it (any non-empty value for a local server "
                "that ignores keys, e.g. vLLM or ollama), or use the offline backend "
                "(`--backend local`)."
            )

    def _openai(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._require_key()
                import openai

                kwargs: dict[str, Any] = {
                    "api_key": self._key.value,
                    "max_retries": 0,  # retries are ours, with Retry-After and jitter
                    "timeout": self.config.timeout,
                }
                if self.config.base_url:
                    kwargs["base_url"] = self.config.base_url
                self._client = openai.OpenAI(**kwargs)
            return self._client

    def preflight(self, timeout: float | None = None) -> None:
        """Fail fast, with one clear message, if the run cannot work at all.

        Checks that a key is set, and that the endpoint answers ``GET /models`` (a free
        call). A 404 there still proves the server is reachable (some servers lack the route).

        Raises:
            ChatConfigError: missing key, rejected key, or unreachable endpoint.
        """
        import openai

        self._require_key()
        client = self._openai().with_options(timeout=timeout or min(self.config.timeout, 15.0))
        try:
            client.models.list()
        except openai.AuthenticationError as err:
            raise ChatConfigError(
                f"the endpoint {self.endpoint} rejected the key in {API_KEY_ENV} "
                f"(HTTP {err.status_code})."
            ) from None
        except openai.APITimeoutError:
            raise ChatConfigError(
                f"the endpoint {self.endpoint} did not answer within "
                f"{timeout or min(self.config.timeout, 15.0):.0f} s; check --base-url."
            ) from None
        except openai.APIConnectionError as err:
            cause = self._redact(f"{type(err.__cause__ or err).__name__}: {err.__cause__ or err}")
            raise ChatConfigError(
                f"cannot reach {self.endpoint}: {cause}. Check --base-url and your network."
            ) from None
        except openai.APIStatusError as err:
            if err.status_code == 404 or err.status_code == 405 or err.status_code >= 500:
                return  # reachable; the route is just missing or flaky, calls will tell
            if err.status_code == 403:
                raise ChatConfigError(
                    f"the endpoint {self.endpoint} refused access (HTTP 403)."
                ) from None

    def chat(self, messages: Sequence[Mapping[str, Any]], **extra: Any) -> ChatResult:
        """One chat completion, retried on transient faults.

        Args:
            messages: OpenAI chat messages, passed through unchanged (text or content parts,
                including ``image_url`` parts with data URLs).
            **extra: more ``chat.completions.create`` arguments (override the config's).

        Raises:
            ChatCallError: after ``max_retries`` retries, or at once when not retryable.
            ChatConfigError: no key.
        """
        client = self._openai()
        params: dict[str, Any] = {"model": self.config.model, "messages": list(messages)}
        if self.config.temperature is not None:
            params["temperature"] = self.config.temperature
        if self.config.seed is not None:
            params["seed"] = self.config.seed
        if self.config.max_tokens is not None:
            params["max_tokens"] = self.config.max_tokens
        params.update(extra)
        attempt = 0
        start = time.monotonic()
        while True:
            attempt += 1
            try:
                response = client.chat.completions.create(**params)
                return _to_result(response, attempt, time.monotonic() - start)
            except Exception as err:  # classified below; unknown errors are retried
                if isinstance(err, ChatCallError):
                    reason, retryable, retry_after = err.reason, True, None
                    detail = err.detail
                else:
                    reason, retryable, retry_after = _classify(err)
                    detail = f"{type(err).__name__}: {self._redact(_short(err))}"
                if not retryable or attempt > self.config.max_retries:
                    raise ChatCallError(reason, detail, attempt) from None
                with self._rng_lock:
                    delay = backoff_delay(
                        attempt,
                        self.config.backoff_base,
                        self.config.backoff_max,
                        self._rng,
                        retry_after,
                    )
                self._sleep(delay)


class _Secret:
    """Holds the key so that no repr, log or traceback of the client shows it."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<hidden>"

    __str__ = __repr__


def _short(err: BaseException, limit: int = 300) -> str:
    text = str(err).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _to_result(response: Any, attempts: int, latency: float) -> ChatResult:
    try:
        choice = response.choices[0]
        content = choice.message.content
    except (AttributeError, IndexError, TypeError) as err:
        raise ChatCallError("bad_response", f"no choices in response: {err}", attempts) from None
    if content is None:
        content = ""
    usage = getattr(response, "usage", None)
    prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
    return ChatResult(
        content=str(content),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        attempts=attempts,
        latency_s=latency,
        model=str(getattr(response, "model", "") or ""),
        finish_reason=getattr(choice, "finish_reason", None),
    )


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
