"""Image tasks through a vision-language model behind any OpenAI-compatible API.

- :func:`run_vlm_task`: one task (a prompt version, a parser) over images, through the shared
  ask/re-ask loop (:func:`uaes_hf.annotate.reask.ask_parsed`) and the durable runner
  (:func:`uaes_hf.annotate.durable.run_durable`: store as cache and checkpoint, claims so
  that two processes never pay for one image twice). Used by :class:`VLMScorer` and the
  VLM poem generator (:mod:`uaes_hf.images.poems`).
- :class:`VLMScorer`: a continuous aesthetic score (regression-style, as in ROC4MLLM which
  the study used: a number on a 1.0-10.0 scale with one decimal, not a class), versioned
  prompt, levels with :data:`~uaes_hf.images.levels.AVA_LEVEL_CUTS`.

Example:
    >>> parse_continuous_score('Nice light.\\n```json\\n{"score": 6.4}\\n```')
    6.4
"""

from __future__ import annotations

import base64
import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from uaes_hf.images.levels import (
    AVA_LEVEL_CUTS,
    SCORE_MAX,
    SCORE_MIN,
    level_from_cuts,
    validate_cuts,
)

IMAGE_AESTHETIC_TASK = "image_aesthetic"
IMAGE_AESTHETIC_PROMPT_VERSION = "image-aesthetic-regression-v1"
IMAGE_AESTHETIC_SYSTEM = (
    "You are an expert in photographic and visual aesthetics who rates images the way the "
    "AVA aesthetic benchmark's human raters do."
)
IMAGE_AESTHETIC_INSTRUCTION = (
    "Rate the aesthetic quality of this image as a continuous score from 1.0 (very poor) "
    "to 10.0 (outstanding), with one decimal. Consider composition, lighting and exposure, "
    "colour, sharpness and focus, subject and visual interest, as an average human rater "
    "would. Most ordinary photos score between 4.0 and 7.0; use the full range when "
    'deserved. Answer with JSON only, exactly: {"score": <number>}'
)


class ScoreParseError(ValueError):
    """An answer holds no usable score; ``problem`` is sent back in the re-ask."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


_NUMBER = r"-?\d+(?:\.\d+)?"
_SCORE_TEXT_RE = re.compile(rf"score\W{{0,3}}\s*({_NUMBER})(?:\s*/\s*10)?", re.IGNORECASE)
_LONE_NUMBER_RE = re.compile(rf"^\s*({_NUMBER})\s*(?:/\s*10)?\s*$")


def parse_continuous_score(text: str, low: float = SCORE_MIN, high: float = SCORE_MAX) -> float:
    """The score in a model's answer: JSON ``{"score": x}`` (fenced or amid chatter, the
    last such object wins), else ``score: x`` / ``Score = x/10`` in prose, else a lone
    number. Must lie in [low, high]; rounded to 2 decimals.

    Example:
        >>> parse_continuous_score('Nice light.\\n```json\\n{"score": 6.4}\\n```')
        6.4
        >>> parse_continuous_score("Score: 7/10")
        7.0
        >>> parse_continuous_score('{"score": 0.3}')
        Traceback (most recent call last):
        ...
        uaes_hf.images.vlm.ScoreParseError: score 0.3 is outside 1.0-10.0
    """
    from uaes_hf.annotate.parsing import extract_json_objects

    value: Any = None
    for obj in reversed(extract_json_objects(text or "")):
        if "score" in obj:
            value = obj["score"]
            break
    if value is None:
        match = _SCORE_TEXT_RE.search(text or "") or _LONE_NUMBER_RE.match(text or "")
        if match:
            value = match.group(1)
    if value is None:
        raise ScoreParseError(f'no score found; answer with JSON only: {{"score": <{low}-{high}>}}')
    if isinstance(value, bool):
        raise ScoreParseError(f"score must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ScoreParseError(f"score must be a number, got {value!r}") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise ScoreParseError(f"score {value} is outside {low}-{high}")
    return round(number, 2)


def encode_image_data_url(image: Any, max_side: int = 768, quality: int = 90) -> str:
    """A ``data:image/jpeg;base64,...`` URL of an RGB copy (longer side <= ``max_side``).

    Deterministic for the same image, so it doubles as the cache key's input.

    Example:
        >>> from PIL import Image
        >>> encode_image_data_url(Image.new("RGB", (4, 4)))[:23]
        'data:image/jpeg;base64,'
    """
    from PIL import Image

    rgb = image.convert("RGB")
    if max(rgb.size) > max_side:
        scale = max_side / max(rgb.size)
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        rgb = rgb.resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def image_messages(system: str, instruction: str, data_url: str) -> list[dict[str, Any]]:
    """Chat messages: a system text, then the instruction and the image as content parts."""
    return [
        {"role": "system", "content": system},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": instruction},
                {"type": "image_url", "image_url": {"url": data_url}},
            ],
        },
    ]


def _vlm_input_hash(hasher: Callable[..., str], url: str, extra: str) -> str:
    # The image alone keys a score; a poem prompt that also shows the caption adds it.
    return hasher(url, extra) if extra else hasher(url)


def reask_text(problem: str) -> str:
    """The correction sent after an unusable answer of an image task.

    Example:
        >>> reask_text("no score found")
        'Your answer could not be used: no score found'
    """
    return f"Your answer could not be used: {problem}"


@dataclass
class VLMCallStats:
    """What a batch of VLM calls did (for the run summary)."""

    cached: int = 0
    done: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


def run_vlm_task(
    client: Any,
    store: Any,
    *,
    task: str,
    prompt_version: str,
    data_urls: Sequence[str],
    build_messages: Callable[[str], list[dict[str, Any]]],
    parse: Callable[[str], Any],
    payload_key: str,
    content_retries: int = 3,
    progress: bool = True,
    extra_hash: str = "",
    wait_for_others: bool = True,
) -> tuple[list[Any], VLMCallStats]:
    """Run one VLM task over images, with the durable store as cache and checkpoint.

    For each image not already ``ok`` in the store: claim it, call the model (transport
    retries are the client's); if the answer does not parse, re-ask (up to
    ``content_retries`` more times) with the problem stated; commit ``ok`` or ``failed`` at
    once. Returns the parsed values in input order (``None`` where the item failed) and the
    call statistics. A dead endpoint or a full disk stops the task with one error
    (:class:`~uaes_hf.annotate.client.ChatConfigError`,
    :class:`~uaes_hf.annotate.store.StoreFullError`).
    """
    from uaes_hf.annotate.durable import Done, run_durable
    from uaes_hf.annotate.reask import ask_parsed
    from uaes_hf.annotate.store import StoreKey, estimate_cost, input_hash

    model = client.config.model
    keys = [
        StoreKey(
            task, "openai", model, prompt_version, _vlm_input_hash(input_hash, url, extra_hash)
        )
        for url in data_urls
    ]
    urls = dict(zip(keys, data_urls, strict=True))
    todo = store.missing(keys)  # in order, duplicate images once
    stats = VLMCallStats(cached=len(set(keys) - set(todo)))
    params = {**client.request_params(), "prompt_version": prompt_version}

    def work(key: Any) -> Done:
        got = ask_parsed(
            client, build_messages(urls[key]), parse, reask_text, max_reasks=content_retries
        )
        payload = {payload_key: got.value, "raw": got.content}
        return Done(payload, got.prompt_tokens, got.completion_tokens, got.attempts)

    bar: Any = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=task, unit="img")
    try:
        done = run_durable(
            store,
            [(key, key.input_hash[:16]) for key in todo],
            work,
            concurrency=client.config.concurrency,
            params=params,
            cost=lambda p, c: estimate_cost(model, p, c),
            wait_for_others=wait_for_others,
            on_item=(lambda state: bar.update(1)) if bar is not None else None,
        )
    finally:
        if bar is not None:
            bar.close()
    stats.done, stats.failed = done.done, sum(done.failed.values())
    stats.prompt_tokens, stats.completion_tokens = done.prompt_tokens, done.completion_tokens
    values: list[Any] = []
    for key in keys:
        row = store.get(key)
        ok = row is not None and row.ok and row.payload is not None
        values.append(row.payload.get(payload_key) if ok else None)
    return values, stats


@dataclass
class VLMScorer:
    """Aesthetic score from a vision-language model through an OpenAI-compatible API.

    Answers are kept in the durable store (a rerun only asks for images not scored yet;
    another process scoring the same images on the same store is not billed twice).

    Example:
        >>> import tempfile, pathlib
        >>> from uaes_hf.annotate.client import ChatClient, ChatConfig
        >>> from uaes_hf.annotate.store import ResultStore
        >>> store = ResultStore(pathlib.Path(tempfile.mkdtemp()) / "scores.sqlite")
        >>> scorer = VLMScorer(ChatClient(ChatConfig(model="gpt-4o"), api_key="sk-x"), store)
        >>> scorer.name, scorer.level(6.4)
        ('vlm:gpt-4o@image-aesthetic-regression-v1', 4)
        >>> store.close()
    """

    client: Any
    store: Any
    prompt_version: str = IMAGE_AESTHETIC_PROMPT_VERSION
    level_cuts: tuple[float, ...] = AVA_LEVEL_CUTS
    max_side: int = 768
    content_retries: int = 3
    progress: bool = True
    last_stats: VLMCallStats | None = None

    def __post_init__(self) -> None:
        validate_cuts(self.level_cuts)
        if self.prompt_version != IMAGE_AESTHETIC_PROMPT_VERSION:
            raise ValueError(
                f"unknown prompt version {self.prompt_version!r}; known: "
                f"{[IMAGE_AESTHETIC_PROMPT_VERSION]}"
            )

    @property
    def name(self) -> str:
        return f"vlm:{self.client.config.model}@{self.prompt_version}"

    def score(self, images: Sequence[Any]) -> list[float]:
        """Scores on 1-10 (NaN where the model never gave a usable answer)."""
        urls = [encode_image_data_url(img, self.max_side) for img in images]
        values, self.last_stats = run_vlm_task(
            self.client,
            self.store,
            task=IMAGE_AESTHETIC_TASK,
            prompt_version=self.prompt_version,
            data_urls=urls,
            build_messages=lambda url: image_messages(
                IMAGE_AESTHETIC_SYSTEM, IMAGE_AESTHETIC_INSTRUCTION, url
            ),
            parse=parse_continuous_score,
            payload_key="score",
            content_retries=self.content_retries,
            progress=self.progress,
        )
        return [float("nan") if v is None else float(v) for v in values]

    def level(self, score: float) -> int:
        """Level 1-5 with the AVA-centred cut points (:data:`AVA_LEVEL_CUTS`)."""
        return level_from_cuts(score, self.level_cuts)
