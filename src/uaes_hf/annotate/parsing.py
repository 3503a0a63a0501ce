"""Robust parsing of a judge's answer into a validated rating.

Models wrap JSON in code fences, write a rationale before it, use single quotes or leave a
trailing comma. :func:`extract_json_objects` finds every balanced ``{...}`` in the text and
decodes it (strict JSON first, then a Python-literal reading for single quotes and trailing
commas); :func:`parse_rating` takes the LAST object that has a ``score`` (the rubric asks
for rationale, score, then the JSON), validates the score as an integer 1-5 and keeps
``thinking`` as the rationale. Problems raise :class:`RatingParseError` with a short
``problem`` text that the judge sends back in its re-ask.

Example:
    >>> parse_rating('Strong imagery.\\n```json\\n{"thinking": "vivid", "score": 4}\\n```')
    ParsedRating(score=4, rationale='vivid')
    >>> parse_rating("{'thinking': 'flat', 'score': 2,}")
    ParsedRating(score=2, rationale='flat')
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any

MIN_SCORE = 1
MAX_SCORE = 5


class RatingParseError(ValueError):
    """The answer holds no usable rating. ``reason`` is ``no_json`` or ``bad_score``."""

    def __init__(self, reason: str, problem: str) -> None:
        super().__init__(problem)
        self.reason = reason
        self.problem = problem


@dataclass(frozen=True)
class ParsedRating:
    """A validated rating: ``score`` in 1..5 and the model's rationale (``thinking``)."""

    score: int
    rationale: str


_FENCE_RE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.DOTALL)
_TRAILING_COMMA_RE = re.compile(r",\s*([}\]])")


def _balanced_objects(text: str) -> list[str]:
    """Every top-level balanced ``{...}`` substring, honouring quoted strings."""
    found: list[str] = []
    depth = 0
    start = -1
    quote: str | None = None
    escaped = False
    for i, ch in enumerate(text):
        if quote is not None:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
            continue
        if ch in ('"', "'") and depth > 0:
            # An apostrophe inside prose between braces is rare; inside an object it quotes.
            quote = ch
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                found.append(text[start : i + 1])
    return found


def _decode(candidate: str) -> dict[str, Any] | None:
    for attempt in (candidate, _TRAILING_COMMA_RE.sub(r"\1", candidate)):
        try:
            value = json.loads(attempt)
        except json.JSONDecodeError:
            pass
        else:
            return value if isinstance(value, dict) else None
    python_like = _TRAILING_COMMA_RE.sub(r"\1", candidate)
    python_like = re.sub(r"\btrue\b", "True", python_like)
    python_like = re.sub(r"\bfalse\b", "False", python_like)
    python_like = re.sub(r"\bnull\b", "None", python_like)
    try:
        value = ast.literal_eval(python_like)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def extract_json_objects(text: str) -> list[dict[str, Any]]:
    """All JSON-ish objects in ``text``, in order (fenced blocks first, then the rest).

    Example:
        >>> extract_json_objects('a {"x": 1} b {"y": 2}')
        [{'x': 1}, {'y': 2}]
    """
    if not isinstance(text, str):
        raise TypeError(f"expected the answer as str, got {type(text).__name__}")
    sources = [m.group(1) for m in _FENCE_RE.finditer(text)] + [text]
    objects: list[dict[str, Any]] = []
    seen: set[str] = set()
    for source in sources:
        for candidate in _balanced_objects(source):
            if candidate in seen:
                continue
            seen.add(candidate)
            value = _decode(candidate)
            if value is not None:
                objects.append(value)
    return objects


def validate_score(value: Any) -> int:
    """The score as an int in 1..5, accepting ``4``, ``4.0`` and ``"4"``; else ValueError.

    Example:
        >>> validate_score("5"), validate_score(3.0)
        (5, 3)
    """
    if isinstance(value, bool):
        raise ValueError(f"score must be an integer 1-5, got {value!r}")
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise ValueError(f"score must be an integer 1-5, got {value!r}")
    if not MIN_SCORE <= value <= MAX_SCORE:
        raise ValueError(f"score must be between {MIN_SCORE} and {MAX_SCORE}, got {value}")
    return value


def parse_rating(text: str) -> ParsedRating:
    """Parse a judge's answer into a :class:`ParsedRating`.

    Raises:
        RatingParseError: ``no_json`` (no object with a ``score`` key) or ``bad_score``
            (score missing, not an integer, or outside 1..5).
    """
    objects = [o for o in extract_json_objects(text) if "score" in o]
    if not objects:
        raise RatingParseError(
            "no_json", 'the answer contains no valid JSON object with a "score" key'
        )
    chosen = objects[-1]
    try:
        score = validate_score(chosen["score"])
    except ValueError as err:
        raise RatingParseError("bad_score", str(err)) from None
    thinking = chosen.get("thinking", chosen.get("rationale", ""))
    rationale = thinking if isinstance(thinking, str) else json.dumps(thinking)
    return ParsedRating(score=score, rationale=rationale.strip())
