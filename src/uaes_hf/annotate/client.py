"""A reusable, fault-tolerant chat client for any OpenAI-compatible endpoint.

Used by the poem judge and, through the same public names, by the image scorers and the
image-to-poem generators. It wraps the ``openai`` package (its own retries are switched off)
and adds what a long annotation run needs:

- retries with exponential backoff and jitter on 429, 5xx, timeouts and connection errors,
  honouring ``Retry-After`` / ``retry-after-ms``;
- limits: ``timeout`` is a hard wall-clock limit on each HTTP attempt (connect, send, status
  line, headers and the whole body: a server that trickles bytes fails when it runs out,
  see :mod:`uaes_hf.annotate.deadline`); ``deadline`` bounds a whole :meth:`ChatClient.chat`
  call, retries and waits included; ``max_tokens`` has a default; ``max_requests`` caps the
  HTTP requests one client may make (for a public demo);
- a circuit breaker: after ``breaker_threshold`` attempts in a row fail with a timeout, a
  connection error or a 5xx, the endpoint is taken as down and every call raises ONE
  :class:`ChatEndpointDown` (a :class:`ChatConfigError`) without another request;
- token usage of every billed reply, also of replies that could not be used (a 200 with no
  ``choices``): it is added to the call's result, or to the :class:`ChatCallError` when the
  call fails; :meth:`ChatClient.usage` totals a client's requests and tokens;
- :meth:`ChatClient.preflight`: ONE clear :class:`ChatConfigError` at start for a missing key,
  a rejected key or an unreachable endpoint, instead of a traceback per item.

The key is read from ``OPENAI_API_KEY`` only; it is never logged, printed or put in a repr.
``messages`` are passed through unchanged, so content parts such as
``{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}`` work.

Public API (stable; fields after ``max_tokens`` and the keyword ``deadline`` are additions):

- ``ChatConfig(model="gpt-4o", base_url=None, timeout=60.0, max_retries=6, backoff_base=1.0,
  backoff_max=60.0, concurrency=8, temperature=0.0, seed=0, max_tokens=1024, deadline=None,
  breaker_threshold=8, max_requests=None)``
- ``ChatClient(config, api_key=None)``: ``api_key=None`` reads ``OPENAI_API_KEY``.
  ``.preflight() -> None``; ``.chat(messages, *, deadline=None, **extra) -> ChatResult``
  (retries included; ``extra`` goes to ``chat.completions.create``, e.g. ``max_tokens``);
  ``.request_params() -> dict``; ``.usage() -> ChatUsage``; ``.reset_breaker()``.
- ``ChatResult``: ``content``, ``prompt_tokens``, ``completion_tokens`` (all billed replies of
  the call), ``attempts``, ``latency_s``, ``model`` (as the server reported it),
  ``finish_reason``.
- ``ChatCallError(reason, detail, attempts=0, prompt_tokens=0, completion_tokens=0)``: raised
  by ``chat`` after the last try; ``reason`` is one of ``rate_limited``, ``server_error``,
  ``timeout``, ``connection``, ``bad_request``, ``auth``, ``bad_response``, ``deadline``.
- ``ChatConfigError``: raised by ``preflight`` (and by ``ChatClient`` for a missing key);
  subclasses ``ChatEndpointDown`` (breaker open) and ``ChatBudgetExceeded`` (``max_requests``).
- ``run_bounded``, ``backoff_delay``, ``parse_retry_after``: see :mod:`.backoff`.

Example:
    >>> client = ChatClient(ChatConfig(base_url="http://127.0.0.1:9/v1", max_requests=0),
    ...                     api_key="sk-test")
    >>> client.chat([{"role": "user", "content": "Say hi"}])
    Traceback (most recent call last):
    ...
    uaes_hf.annotate.client.ChatBudgetExceeded: this client may make 0 requests (max_requests), and they are spent
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from uaes_hf.annotate.backoff import backoff_delay, parse_retry_after, run_bounded

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MODEL",
    "ChatBudgetExceeded",
    "ChatCallError",
    "ChatClient",
    "ChatConfig",
    "ChatConfigError",
    "ChatEndpointDown",
    "ChatResult",
    "ChatUsage",
    "backoff_delay",
    "parse_retry_after",
    "run_bounded",
]

API_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_MODEL = "gpt-4o"
DEFAULT_MAX_TOKENS = 1024
# Reasons that say the endpoint itself may be down (not one bad item, not a rate limit).
DOWN_REASONS = frozenset({"timeout", "connection", "server_error"})


class ChatConfigError(RuntimeError):
    """The client cannot start: missing or rejected key, unreachable endpoint, bad settings."""


class ChatEndpointDown(ChatConfigError):
    """The circuit breaker is open: too many attempts in a row found the endpoint down."""


class ChatBudgetExceeded(ChatConfigError):
    """The client's request cap (``max_requests``) is spent."""


class ChatCallError(RuntimeError):
    """One chat call failed for good (after retries, or at once for a non-retryable error).

    Attributes:
        reason: short machine-readable cause (``rate_limited``, ``server_error``, ``timeout``,
            ``connection``, ``bad_request``, ``auth``, ``bad_response``, ``deadline``).
        detail: human-readable detail (never contains the key).
        attempts: how many HTTP attempts were made.
        prompt_tokens, completion_tokens: what the replies received before failing billed.
    """

    def __init__(
        self,
        reason: str,
        detail: str,
        attempts: int = 0,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
    ) -> None:
        super().__init__(f"{reason} after {attempts} attempt(s): {detail}")
        self.reason = reason
        self.detail = detail
        self.attempts = attempts
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens


@dataclass(frozen=True)
class ChatConfig:
    """Settings of a :class:`ChatClient`; everything but the key.

    ``timeout`` is the total seconds of one HTTP attempt; ``deadline`` (None: unbounded) the
    total seconds of one ``chat`` call with its retries; ``breaker_threshold`` attempts in a
    row that find the endpoint down open the circuit (0: never); ``max_requests`` caps the
    HTTP requests of the client (None: no cap).

    Example:
        >>> ChatConfig(model="gpt-4o-mini", concurrency=4).max_tokens
        1024
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
    max_tokens: int | None = DEFAULT_MAX_TOKENS
    deadline: float | None = None
    breaker_threshold: int = 8
    max_requests: int | None = None

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("model must be a non-empty string, e.g. 'gpt-4o'")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {self.timeout}")
        if self.deadline is not None and self.deadline <= 0:
            raise ValueError(f"deadline must be > 0 seconds or None, got {self.deadline}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.backoff_base < 0 or self.backoff_max < 0:
            raise ValueError("backoff_base and backoff_max must be >= 0")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1 or None, got {self.max_tokens}")
        if self.breaker_threshold < 0:
            raise ValueError(f"breaker_threshold must be >= 0, got {self.breaker_threshold}")
        if self.max_requests is not None and self.max_requests < 0:
            raise ValueError(f"max_requests must be >= 0 or None, got {self.max_requests}")


@dataclass(frozen=True)
class ChatResult:
    """One successful chat completion and what it cost (every billed reply of the call)."""

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


@dataclass(frozen=True)
class ChatUsage:
    """What a client has done so far: HTTP requests, replies that carried usage, tokens."""

    requests: int = 0
    billed_replies: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


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
        >>> client.request_params()["model"], client.usage().requests
        ('gpt-4o', 0)
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
        self._lock = threading.Lock()  # rng, usage counters, breaker
        self._client: Any = None
        self._backend: Any = None
        self._client_lock = threading.Lock()
        self._usage = ChatUsage()
        self._down_in_a_row = 0
        self._down: str | None = None

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

    def usage(self) -> ChatUsage:
        """Requests made and tokens billed by this client so far (all threads)."""
        with self._lock:
            return self._usage

    def reset_breaker(self) -> None:
        """Close the circuit again (e.g. a long-lived demo after the endpoint came back)."""
        with self._lock:
            self._down, self._down_in_a_row = None, 0

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

                from uaes_hf.annotate.deadline import DeadlineBackend, deadline_http_client

                self._backend = DeadlineBackend()
                kwargs: dict[str, Any] = {
                    "api_key": self._key.value,
                    "max_retries": 0,  # retries are ours, with Retry-After and jitter
                    "timeout": self.config.timeout,
                    "http_client": deadline_http_client(self._backend, self.config.timeout),
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
        limit = timeout or min(self.config.timeout, 15.0)
        client = self._openai().with_options(timeout=limit)
        try:
            with self._backend.deadline(limit):
                client.models.list()
        except openai.AuthenticationError as err:
            raise ChatConfigError(
                f"the endpoint {self.endpoint} rejected the key in {API_KEY_ENV} "
                f"(HTTP {err.status_code})."
            ) from None
        except openai.APITimeoutError:
            raise ChatConfigError(
                f"the endpoint {self.endpoint} did not answer within {limit:.0f} s; "
                "check --base-url."
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

    def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        deadline: float | None = None,
        **extra: Any,
    ) -> ChatResult:
        """One chat completion, retried on transient faults.

        Args:
            messages: OpenAI chat messages, passed through unchanged (text or content parts,
                including ``image_url`` parts with data URLs).
            deadline: total seconds for this call, retries and waits included (default: the
                config's ``deadline``; None: only ``timeout`` per attempt bounds it).
            **extra: more ``chat.completions.create`` arguments (override the config's).

        Raises:
            ChatCallError: after ``max_retries`` retries, at once when not retryable, or
                (reason ``deadline``) when the call's deadline leaves no time for a retry.
            ChatConfigError: no key; :class:`ChatEndpointDown` when the breaker is open;
                :class:`ChatBudgetExceeded` when ``max_requests`` is spent.
        """
        client = self._openai()
        params = self._params(messages, extra)
        limit = self.config.deadline if deadline is None else deadline
        if limit is not None and limit <= 0:
            raise ValueError(f"deadline must be > 0 seconds, got {limit}")
        start = time.monotonic()
        end = None if limit is None else start + limit
        attempt = billed_in = billed_out = 0
        while True:
            self._before_attempt()
            attempt += 1
            budget = self.config.timeout
            if end is not None:
                budget = min(budget, end - time.monotonic())
            try:
                with self._backend.deadline(budget):
                    response = client.chat.completions.create(**params, timeout=budget)
                p_tok, c_tok = _usage(response)
                billed_in, billed_out = billed_in + p_tok, billed_out + c_tok
                self._after_attempt(None, p_tok, c_tok, billed=_has_usage(response))
                latency = time.monotonic() - start
                return _to_result(response, attempt, latency, billed_in, billed_out)
            except Exception as err:  # classified below; unknown errors are retried
                if isinstance(err, ChatCallError):  # a billed reply without a usable choice
                    reason, retryable, retry_after, detail = err.reason, True, None, err.detail
                else:
                    reason, retryable, retry_after = _classify(err)
                    detail = f"{type(err).__name__}: {self._redact(_short(err))}"
                    self._after_attempt(reason, 0, 0, billed=False)
                if not retryable or attempt > self.config.max_retries:
                    raise ChatCallError(reason, detail, attempt, billed_in, billed_out) from None
            with self._lock:
                delay = backoff_delay(
                    attempt,
                    self.config.backoff_base,
                    self.config.backoff_max,
                    self._rng,
                    retry_after,
                )
            left = None if end is None else end - time.monotonic()
            if left is not None and delay >= left:
                raise ChatCallError(
                    "deadline",
                    f"the call's {limit:g} s deadline leaves no time for retry {attempt + 1} "
                    f"({delay:.1f} s wait, {max(0.0, left):.1f} s left); last error {reason}: "
                    f"{detail}",
                    attempt,
                    billed_in,
                    billed_out,
                )
            self._sleep(delay)

    def _params(self, messages: Sequence[Mapping[str, Any]], extra: dict[str, Any]) -> dict:
        params: dict[str, Any] = {"model": self.config.model, "messages": list(messages)}
        if self.config.temperature is not None:
            params["temperature"] = self.config.temperature
        if self.config.seed is not None:
            params["seed"] = self.config.seed
        if self.config.max_tokens is not None:
            params["max_tokens"] = self.config.max_tokens
        params.update(extra)
        params.pop("timeout", None)  # the attempt's budget decides
        return params

    def _before_attempt(self) -> None:
        """Refuse at once when the breaker is open or the request cap is spent."""
        with self._lock:
            if self._down is not None:
                raise ChatEndpointDown(self._down)
            cap = self.config.max_requests
            if cap is not None and self._usage.requests >= cap:
                raise ChatBudgetExceeded(
                    f"this client may make {cap} requests (max_requests), and they are spent"
                )
            self._usage = _add(self._usage, requests=1)

    def _after_attempt(self, reason: str | None, p_tok: int, c_tok: int, *, billed: bool) -> None:
        with self._lock:
            if billed:
                self._usage = _add(
                    self._usage, billed_replies=1, prompt_tokens=p_tok, completion_tokens=c_tok
                )
            if reason not in DOWN_REASONS:
                self._down_in_a_row = 0  # the endpoint answered
                return
            self._down_in_a_row += 1
            threshold = self.config.breaker_threshold
            if threshold and self._down_in_a_row >= threshold and self._down is None:
                self._down = (
                    f"the endpoint {self.endpoint} looks down: {self._down_in_a_row} attempts in "
                    f"a row failed (last: {reason}); stopped instead of trying every item. "
                    "Check the server, then rerun: finished items are kept."
                )


def _add(usage: ChatUsage, **counts: int) -> ChatUsage:
    return ChatUsage(**{k: getattr(usage, k) + counts.get(k, 0) for k in asdict(usage)})


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


def _has_usage(response: Any) -> bool:
    return getattr(response, "usage", None) is not None


def _usage(response: Any) -> tuple[int, int]:
    usage = getattr(response, "usage", None)
    prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
    return prompt_tokens, completion_tokens


def _to_result(
    response: Any, attempts: int, latency: float, prompt_tokens: int, completion_tokens: int
) -> ChatResult:
    try:
        choice = response.choices[0]
        content = choice.message.content
    except (AttributeError, IndexError, TypeError) as err:
        raise ChatCallError("bad_response", f"no choices in response: {err}", attempts) from None
    if content is None:
        content = ""
    return ChatResult(
        content=str(content),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        attempts=attempts,
        latency_s=latency,
        model=str(getattr(response, "model", "") or ""),
        finish_reason=getattr(choice, "finish_reason", None),
    )
