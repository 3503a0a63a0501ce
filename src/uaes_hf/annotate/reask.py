"""Ask, parse, and re-ask after an unusable answer: the one loop every model task shares.

The poem judge, the VLM image scorer and the VLM poem generator all send a prompt, parse the
answer, and when the answer is unusable (no JSON, a score out of range, no poem) ask again
in the same conversation: the prompt, the bad answer, then a short correction that names the
problem. :func:`ask_parsed` is that loop. Transport faults are the client's business (it
retries them); a call that still fails, or answers that stay unusable after
``max_reasks`` re-asks, end in one :class:`CallFailure` carrying the reason and every token
billed on the way (re-asks and unusable replies included).

Example:
    >>> class Canned:  # any object with ``chat(messages, **kw)`` returning a result
    ...     def __init__(self, answers):
    ...         self.answers = list(answers)
    ...     def chat(self, messages, **kw):
    ...         from uaes_hf.annotate.client import ChatResult
    ...         return ChatResult(self.answers.pop(0), 10, 2, 1, 0.0, "m")
    >>> def parse(text):
    ...     if not text.isdigit():
    ...         raise ValueError("answer with a number")
    ...     return int(text)
    >>> got = ask_parsed(Canned(["four", "4"]), [{"role": "user", "content": "2+2?"}], parse,
    ...                  lambda problem: f"Unusable: {problem}")
    >>> got.value, got.asks, got.prompt_tokens
    (4, 2, 20)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from uaes_hf.annotate.client import ChatCallError

T = TypeVar("T")


class CallFailure(ChatCallError):
    """A task gave up on one item; it becomes a failure record in the store.

    Same fields as :class:`~uaes_hf.annotate.client.ChatCallError` (``reason``, ``detail``,
    ``attempts``, ``prompt_tokens``, ``completion_tokens``): the client's reason
    (``rate_limited``, ``timeout``, ...), or ``invalid_output`` after the last re-ask, and
    every token billed for the item.
    """


@dataclass(frozen=True)
class Parsed(Generic[T]):
    """A usable answer: the parsed ``value``, the raw ``content`` and what it all cost."""

    value: T
    content: str
    prompt_tokens: int
    completion_tokens: int
    attempts: int
    asks: int
    model: str


def problem_text(err: BaseException) -> str:
    """What to tell the model about an unusable answer (a parser's ``problem``, else its text).

    Example:
        >>> problem_text(ValueError("score 7 is outside 1-5"))
        'score 7 is outside 1-5'
    """
    return str(getattr(err, "problem", None) or err)


def ask_parsed(
    client: Any,
    messages: Sequence[Mapping[str, Any]],
    parse: Callable[[str], T],
    reask_text: Callable[[str], str],
    *,
    max_reasks: int = 2,
    deadline: float | None = None,
    **chat_kwargs: Any,
) -> Parsed[T]:
    """Ask until ``parse`` accepts an answer, re-asking at most ``max_reasks`` times.

    Args:
        client: a :class:`~uaes_hf.annotate.client.ChatClient` (anything with ``chat``).
        messages: the first request's messages.
        parse: answer text -> value; raises ``ValueError`` (with an optional ``problem`` and
            ``reason``) for an unusable answer.
        reask_text: problem -> the correction appended after the bad answer.
        max_reasks: re-asks after the first answer.
        deadline: total seconds for all asks (None: each call bounded by the client alone).
        **chat_kwargs: passed to every ``client.chat`` (e.g. ``max_tokens``).

    Raises:
        CallFailure: the client gave up (its reason), or ``invalid_output`` after the last
            re-ask, or ``deadline`` when no time is left for the next ask.
    """
    if max_reasks < 0:
        raise ValueError(f"max_reasks must be >= 0, got {max_reasks}")
    end = None if deadline is None else time.monotonic() + deadline
    conversation = list(messages)
    prompt_tokens = completion_tokens = attempts = 0
    detail = ""
    for ask in range(max_reasks + 1):
        kwargs = dict(chat_kwargs)
        if end is not None:
            left = end - time.monotonic()
            if left <= 0:
                raise CallFailure(
                    "deadline",
                    f"no time left for ask {ask + 1} ({deadline:g} s deadline); {detail}",
                    attempts,
                    prompt_tokens,
                    completion_tokens,
                )
            kwargs["deadline"] = left
        try:
            result = client.chat(conversation, **kwargs)
        except ChatCallError as err:
            raise CallFailure(
                err.reason,
                err.detail,
                attempts + err.attempts,
                prompt_tokens + err.prompt_tokens,
                completion_tokens + err.completion_tokens,
            ) from None
        prompt_tokens += result.prompt_tokens
        completion_tokens += result.completion_tokens
        attempts += result.attempts
        try:
            value = parse(result.content)
        except ValueError as err:
            problem = problem_text(err)
            reason = getattr(err, "reason", None)
            detail = (
                f"{reason + ': ' if reason else ''}{problem}; last answer: {result.content[:200]!r}"
            )
            conversation = [
                *messages,
                {"role": "assistant", "content": result.content},
                {"role": "user", "content": reask_text(problem)},
            ]
            continue
        return Parsed(
            value=value,
            content=result.content,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            attempts=attempts,
            asks=ask + 1,
            model=result.model,
        )
    raise CallFailure("invalid_output", detail, attempts, prompt_tokens, completion_tokens)
