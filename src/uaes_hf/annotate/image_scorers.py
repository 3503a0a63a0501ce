"""Image aesthetic scorers behind one interface, and the mapping of scores to levels 1-5.

Three scorers, pluggable wherever an :class:`ImageAestheticScorer` is expected:

- :class:`VLMScorer`: a vision-language model behind any OpenAI-compatible API, asked for a
  continuous score (regression-style, as in ROC4MLLM which the study used: the answer is a
  number on a 1.0-10.0 scale with one decimal, not a class). The prompt is versioned, every
  answer is kept in the durable :class:`~uaes_hf.annotate.store.ResultStore`, and a rerun
  only calls the API for images not scored yet.
- :class:`LaionPredictorScorer`: the LAION "improved aesthetic predictor" (a CLIP ViT-L/14
  image embedding fed to an MLP head trained on AVA + SAC + LAION-logos ratings), loaded
  from the Hugging Face Hub. Not available offline.
- :class:`ClassicalAestheticScorer`: an OFFLINE HEURISTIC BASELINE built from classical
  computational-aesthetics features (colourfulness, contrast, sharpness, exposure, rule of
  thirds). It is NOT a human-aligned aesthetic score and must never be presented as one;
  it exists so the pipeline runs end to end without a model.

Levels. The study mapped a continuous score to a 1-5 level. Both model scorers produce
AVA-like scores on 1-10 whose mass lies between about 4 and 7 (AVA's mean rating is about
5.4), so equal-width bins over 1-10 would put nearly every image in levels 2-3. Their level
cut points are therefore one point wide around the AVA mean (:data:`AVA_LEVEL_CUTS`):

    level 1: score < 4.0   level 2: [4.0, 5.0)   level 3: [5.0, 6.0)
    level 4: [6.0, 7.0)    level 5: score >= 7.0

The classical heuristic has no calibrated scale, so its levels are the quintiles of the set
being scored (:meth:`ClassicalAestheticScorer.with_quantile_cuts`: 20% of the images per
level, a ranking within the set, not an absolute judgment); before fitting it uses equal
bins over its 1-10 range (:data:`UNIFORM_LEVEL_CUTS`).

Example:
    >>> level_from_cuts(5.5, AVA_LEVEL_CUTS)
    3
    >>> scorer = ClassicalAestheticScorer()
    >>> from PIL import Image
    >>> 1.0 <= scorer.score([Image.new("RGB", (64, 64), (200, 30, 30))])[0] <= 10.0
    True
"""

from __future__ import annotations

import base64
import io
import math
import re
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

AVA_LEVEL_CUTS: tuple[float, float, float, float] = (4.0, 5.0, 6.0, 7.0)
UNIFORM_LEVEL_CUTS: tuple[float, float, float, float] = (2.8, 4.6, 6.4, 8.2)
SCORE_MIN = 1.0
SCORE_MAX = 10.0


def validate_cuts(cuts: Sequence[float]) -> tuple[float, ...]:
    """Check level cut points: four finite, strictly increasing numbers.

    Example:
        >>> validate_cuts([1, 2, 3, 4])
        (1.0, 2.0, 3.0, 4.0)
    """
    values = tuple(float(c) for c in cuts)
    if len(values) != 4:
        raise ValueError(f"level cuts must be 4 numbers (5 levels), got {len(values)}")
    if not all(math.isfinite(c) for c in values):
        raise ValueError(f"level cuts must be finite, got {values}")
    if any(b <= a for a, b in zip(values, values[1:], strict=False)):
        raise ValueError(f"level cuts must be strictly increasing, got {values}")
    return values


def level_from_cuts(score: float, cuts: Sequence[float]) -> int:
    """Level 1-5 of ``score``: 1 + the number of cut points <= score.

    Example:
        >>> [level_from_cuts(s, (4, 5, 6, 7)) for s in (1.0, 4.0, 5.9, 6.0, 9.9)]
        [1, 2, 3, 4, 5]
    """
    if score is None or not math.isfinite(float(score)):
        raise ValueError(f"cannot map a missing or non-finite score to a level: {score!r}")
    return 1 + bisect_right(list(cuts), float(score))


def quantile_cuts(scores: Sequence[float]) -> tuple[float, float, float, float]:
    """Cut points at the 20/40/60/80% quantiles of ``scores`` (NaNs ignored).

    Ties can make quantiles equal; they are nudged apart by a tiny epsilon so the cuts stay
    strictly increasing (tied scores then share a level).

    Example:
        >>> quantile_cuts([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        (2.8, 4.6, 6.4, 8.2)
    """
    import numpy as np

    values = np.asarray([s for s in scores if s is not None], dtype=float)
    values = values[np.isfinite(values)]
    if values.size < 5:
        raise ValueError(f"need at least 5 finite scores to fit quantile cuts, got {values.size}")
    cuts = [round(float(q), 6) for q in np.quantile(values, [0.2, 0.4, 0.6, 0.8])]
    for i in range(1, 4):
        if cuts[i] <= cuts[i - 1]:
            cuts[i] = math.nextafter(cuts[i - 1], math.inf)
    return (cuts[0], cuts[1], cuts[2], cuts[3])


@runtime_checkable
class ImageAestheticScorer(Protocol):
    """What every image scorer offers.

    ``name`` identifies the scorer in records (e.g. ``vlm:gpt-4o@image-aesthetic-v1``);
    ``score`` returns one float per image (NaN where a model gave no usable answer);
    ``level`` maps a score to 1-5 with the scorer's documented cut points.
    """

    name: str

    def score(self, images: Sequence[Any]) -> list[float]: ...

    def level(self, score: float) -> int: ...


# --------------------------------------------------------------------------------------
# Classical computational-aesthetics features (pure numpy on an RGB array in [0, 255]).
# --------------------------------------------------------------------------------------

FEATURE_NAMES: tuple[str, ...] = ("colourfulness", "contrast", "sharpness", "exposure", "thirds")
# Weights of the heuristic (sum 1). Sharpness weighs most because blur is the most common,
# least disputed defect; the rule of thirds least because it is the most contested cue.
CLASSICAL_WEIGHTS: dict[str, float] = {
    "colourfulness": 0.20,
    "contrast": 0.20,
    "sharpness": 0.25,
    "exposure": 0.20,
    "thirds": 0.15,
}
FEATURE_SIDE = 512  # features are computed on a copy whose longer side is at most this


def _as_rgb_array(image: Any) -> Any:
    import numpy as np

    if hasattr(image, "convert"):  # PIL image
        arr = np.asarray(image.convert("RGB"), dtype=np.float64)
    else:
        arr = np.asarray(image, dtype=np.float64)
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {arr.shape}")
    if arr.shape[0] < 3 or arr.shape[1] < 3:
        raise ValueError(f"image too small for aesthetic features: {arr.shape[:2]} (min 3x3)")
    if not np.all(np.isfinite(arr)):
        raise ValueError("image contains NaN or infinite values")
    return arr


def luminance(rgb: Any) -> Any:
    """Rec. 601 luma of an RGB array in [0, 255], scaled to [0, 1]."""
    return (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]) / 255.0


def colourfulness(rgb: Any) -> float:
    """Hasler & Süsstrunk (2003) colourfulness M on 0-255 RGB (0 = grey; ~109 = extreme).

    M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 * sqrt(mean(rg)^2 + mean(yb)^2),
    with rg = R - G and yb = (R + G) / 2 - B.

    Example:
        >>> import numpy as np
        >>> colourfulness(np.full((4, 4, 3), 128.0))
        0.0
    """
    import numpy as np

    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    spread = math.sqrt(float(np.var(rg)) + float(np.var(yb)))
    centre = math.sqrt(float(np.mean(rg)) ** 2 + float(np.mean(yb)) ** 2)
    return spread + 0.3 * centre


def rms_contrast(rgb: Any) -> float:
    """RMS contrast: standard deviation of luminance in [0, 1] (max 0.5).

    Example:
        >>> import numpy as np
        >>> rms_contrast(np.zeros((4, 4, 3)))
        0.0
    """
    import numpy as np

    return float(np.std(luminance(rgb)))


def laplacian_variance(rgb: Any) -> float:
    """Sharpness: variance of the 4-neighbour Laplacian of luminance on the 0-255 scale.

    Computed on the interior pixels only (no padding), so borders add nothing.

    Example:
        >>> import numpy as np
        >>> laplacian_variance(np.full((5, 5, 3), 10.0))
        0.0
    """
    import numpy as np

    y = luminance(rgb) * 255.0
    lap = y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:] - 4.0 * y[1:-1, 1:-1]
    return float(np.var(lap))


def exposure_quality(rgb: Any) -> float:
    """Exposure in [0, 1]: 1 - 2|mean luminance - 0.5|, times the share of unclipped pixels.

    A pixel is clipped when its luminance is <= 2/255 or >= 253/255.

    Example:
        >>> import numpy as np
        >>> exposure_quality(np.full((4, 4, 3), 127.5))
        1.0
        >>> exposure_quality(np.zeros((4, 4, 3)))
        0.0
    """
    import numpy as np

    y = luminance(rgb)
    clipped = float(np.mean((y <= 2 / 255) | (y >= 253 / 255)))
    return max(0.0, 1.0 - 2.0 * abs(float(np.mean(y)) - 0.5)) * (1.0 - clipped)


def thirds_ratio(rgb: Any, width: float = 1 / 12) -> float:
    """Rule of thirds: edge energy near the third lines relative to a uniform spread.

    Edge energy is the gradient magnitude of luminance; the weight map is a sum of Gaussian
    bands (sigma = ``width`` of the side) around x = 1/3, 2/3 and y = 1/3, 2/3. The ratio is
    mean(E * W) / (mean(E) * mean(W)): 1 for energy spread evenly, > 1 when it concentrates
    near the thirds lines, < 1 when it sits elsewhere (e.g. dead centre). 1.0 for a flat image.

    Example:
        >>> import numpy as np
        >>> thirds_ratio(np.zeros((9, 9, 3)))
        1.0
    """
    import numpy as np

    y = luminance(rgb)
    gy, gx = np.gradient(y)
    energy = np.hypot(gx, gy)
    total = float(energy.mean())
    if total <= 1e-12:
        return 1.0
    h, w = y.shape
    ys = (np.arange(h) + 0.5) / h
    xs = (np.arange(w) + 0.5) / w

    def bands(t: Any) -> Any:
        return sum(np.exp(-0.5 * ((t - c) / width) ** 2) for c in (1 / 3, 2 / 3))

    weight = bands(ys)[:, None] + bands(xs)[None, :]
    return float((energy * weight).mean() / (total * weight.mean()))


def _downscale(image: Any, side: int) -> Any:
    if hasattr(image, "convert") and max(image.size) > side:  # a PIL image
        from PIL import Image

        scale = side / max(image.size)
        size = (max(3, round(image.width * scale)), max(3, round(image.height * scale)))
        return image.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    return image


def image_features(image: Any, side: int = FEATURE_SIDE) -> dict[str, float]:
    """Raw classical features of one image (PIL image or RGB array in [0, 255]).

    PIL images larger than ``side`` are downscaled first so the features do not depend on
    resolution and stay fast; arrays are used as given.

    Example:
        >>> import numpy as np
        >>> sorted(image_features(np.zeros((8, 8, 3))))
        ['colourfulness', 'contrast', 'exposure', 'sharpness', 'thirds']
    """
    rgb = _as_rgb_array(_downscale(image, side))
    return {
        "colourfulness": colourfulness(rgb),
        "contrast": rms_contrast(rgb),
        "sharpness": laplacian_variance(rgb),
        "exposure": exposure_quality(rgb),
        "thirds": thirds_ratio(rgb),
    }


def normalized_features(raw: dict[str, float]) -> dict[str, float]:
    """Map raw features to [0, 1], each monotone in its raw value.

    colourfulness: 1 - exp(-M / 40) (Hasler's "moderately colourful" M = 33 gives 0.56);
    contrast: min(RMS / 0.3, 1); sharpness: min(log10(1 + var) / 3.5, 1) (var ~ 3000 -> 1);
    exposure: as is; thirds: min(ratio / 2, 1) (an even spread gives 0.5).

    Example:
        >>> normalized_features({"colourfulness": 0, "contrast": 0.3, "sharpness": 0,
        ...                      "exposure": 1.0, "thirds": 1.0})["contrast"]
        1.0
    """
    missing = [name for name in FEATURE_NAMES if name not in raw]
    if missing:
        raise ValueError(f"missing features {missing}")
    return {
        "colourfulness": 1.0 - math.exp(-max(0.0, raw["colourfulness"]) / 40.0),
        "contrast": min(max(0.0, raw["contrast"]) / 0.3, 1.0),
        "sharpness": min(math.log10(1.0 + max(0.0, raw["sharpness"])) / 3.5, 1.0),
        "exposure": min(max(0.0, raw["exposure"]), 1.0),
        "thirds": min(max(0.0, raw["thirds"]) / 2.0, 1.0),
    }


def heuristic_score(raw: dict[str, float], weights: dict[str, float] | None = None) -> float:
    """The classical heuristic on 1-10: 1 + 9 * weighted mean of the normalised features.

    Example:
        >>> heuristic_score({"colourfulness": 0, "contrast": 0, "sharpness": 0,
        ...                  "exposure": 0, "thirds": 0})
        1.0
    """
    weights = weights or CLASSICAL_WEIGHTS
    total = sum(weights.values())
    if total <= 0 or any(w < 0 for w in weights.values()):
        raise ValueError(f"weights must be >= 0 with a positive sum, got {weights}")
    norm = normalized_features(raw)
    value = sum(weights.get(name, 0.0) * norm[name] for name in FEATURE_NAMES) / total
    return SCORE_MIN + (SCORE_MAX - SCORE_MIN) * value


@dataclass(frozen=True)
class ClassicalAestheticScorer:
    """Offline heuristic baseline from classical features; NOT a human-aligned score.

    ``level_cuts`` default to equal bins over 1-10; for a dataset, fit quintile cuts on
    the scored set with :meth:`with_quantile_cuts` (what the image-poem builder does).

    Example:
        >>> from PIL import Image
        >>> s = ClassicalAestheticScorer()
        >>> s.level(s.score([Image.new("RGB", (32, 32))])[0])
        1
    """

    weights: dict[str, float] = field(default_factory=lambda: dict(CLASSICAL_WEIGHTS))
    level_cuts: tuple[float, ...] = UNIFORM_LEVEL_CUTS
    level_mode: str = "fixed"
    name: str = "classical-heuristic-v1"

    def __post_init__(self) -> None:
        validate_cuts(self.level_cuts)

    def features(self, images: Sequence[Any]) -> list[dict[str, float]]:
        """Raw features of each image."""
        return [image_features(img) for img in images]

    def score(self, images: Sequence[Any]) -> list[float]:
        """Heuristic score on 1-10 for each image."""
        return [round(heuristic_score(raw, self.weights), 4) for raw in self.features(images)]

    def level(self, score: float) -> int:
        """Level 1-5 with this scorer's cut points."""
        return level_from_cuts(score, self.level_cuts)

    def with_quantile_cuts(self, scores: Sequence[float]) -> ClassicalAestheticScorer:
        """A copy whose levels are the quintiles of ``scores`` (a ranking within the set)."""
        return replace(self, level_cuts=quantile_cuts(scores), level_mode="quantile")


# --------------------------------------------------------------------------------------
# VLM scorer through the OpenAI-compatible client
# --------------------------------------------------------------------------------------

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
        uaes_hf.annotate.image_scorers.ScoreParseError: score 0.3 is outside 1.0-10.0
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
) -> tuple[list[Any], VLMCallStats]:
    """Run one VLM task over images, with the durable store as cache and checkpoint.

    For each image not already ``ok`` in the store: call the model (transport retries are
    the client's); if the answer does not parse, re-ask (up to ``content_retries`` more
    times) with the problem stated; commit ``ok`` or ``failed`` at once. Returns the parsed
    values in input order (``None`` where the item failed) and the call statistics.
    Shared by :class:`VLMScorer` and the VLM poem generator.
    """
    from uaes_hf.annotate.client import ChatCallError, run_bounded
    from uaes_hf.annotate.store import StoreKey, estimate_cost, input_hash

    model = client.config.model
    keys = [
        StoreKey(
            task, "openai", model, prompt_version, _vlm_input_hash(input_hash, url, extra_hash)
        )
        for url in data_urls
    ]
    stats = VLMCallStats()
    todo_keys = set(store.missing(keys))
    stats.cached = len({k for k in keys if k not in todo_keys})
    todo = [(k, url) for k, url in zip(keys, data_urls, strict=True) if k in todo_keys]
    todo = list({k: (k, url) for k, url in todo}.values())  # duplicate images: one call
    params = {**client.request_params(), "prompt_version": prompt_version}

    def call(job: tuple[Any, str]) -> tuple[Any, int, int]:
        key, url = job
        messages = build_messages(url)
        attempts = tokens_in = tokens_out = 0
        problem = ""
        for _ in range(content_retries + 1):
            try:
                result = client.chat(messages)
            except ChatCallError as err:
                attempts += err.attempts
                store.put_failure(
                    key,
                    key.input_hash[:16],
                    err.reason,
                    err.detail,
                    attempts=attempts,
                    prompt_tokens=tokens_in,
                    completion_tokens=tokens_out,
                    params=params,
                )
                return None, tokens_in, tokens_out
            attempts += result.attempts
            tokens_in += result.prompt_tokens
            tokens_out += result.completion_tokens
            try:
                value = parse(result.content)
            except ValueError as err:
                problem = getattr(err, "problem", str(err))
                messages = [
                    *build_messages(url),
                    {"role": "assistant", "content": result.content},
                    {"role": "user", "content": f"Your answer could not be used: {problem}"},
                ]
                continue
            store.put_ok(
                key,
                key.input_hash[:16],
                {payload_key: value, "raw": result.content},
                attempts=attempts,
                prompt_tokens=tokens_in,
                completion_tokens=tokens_out,
                cost_usd=estimate_cost(model, tokens_in, tokens_out),
                params=params,
            )
            return value, tokens_in, tokens_out
        store.put_failure(
            key,
            key.input_hash[:16],
            "invalid_output",
            problem,
            attempts=attempts,
            prompt_tokens=tokens_in,
            completion_tokens=tokens_out,
            params=params,
        )
        return None, tokens_in, tokens_out

    iterator: Any = run_bounded(call, todo, client.config.concurrency)
    if progress and todo:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, total=len(todo), desc=task, unit="img")
    for _job, out, err in iterator:
        if err is not None:
            raise err
        value, tokens_in, tokens_out = out
        stats.prompt_tokens += tokens_in
        stats.completion_tokens += tokens_out
        if value is None:
            stats.failed += 1
        else:
            stats.done += 1
    values: list[Any] = []
    for key in keys:
        row = store.get(key)
        if row is not None and row.ok and row.payload is not None:
            values.append(row.payload.get(payload_key))
        else:
            values.append(None)
    return values, stats


@dataclass
class VLMScorer:
    """Aesthetic score from a vision-language model through an OpenAI-compatible API.

    Example:
        >>> from uaes_hf.annotate.client import ChatClient, ChatConfig  # doctest: +SKIP
        >>> from uaes_hf.annotate.store import ResultStore  # doctest: +SKIP
        >>> scorer = VLMScorer(ChatClient(ChatConfig(model="gpt-4o")),
        ...                    ResultStore("runs/image_scores.sqlite"))  # doctest: +SKIP
        >>> scorer.score([image])  # doctest: +SKIP
        [6.4]
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


# --------------------------------------------------------------------------------------
# LAION improved aesthetic predictor (CLIP ViT-L/14 + MLP head), from the Hub
# --------------------------------------------------------------------------------------

LAION_CLIP_MODEL = "openai/clip-vit-large-patch14"
LAION_HEAD_REPO = "camenduru/improved-aesthetic-predictor"
LAION_HEAD_FILE = "sac+logos+ava1-l14-linearMSE.pth"


def laion_head(input_size: int = 768) -> Any:
    """The MLP head of the improved aesthetic predictor (same layer layout as its weights).

    Example:
        >>> laion_head()(__import__("torch").zeros(2, 768)).shape  # doctest: +SKIP
        torch.Size([2, 1])
    """
    import torch.nn as nn

    class AestheticHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # No activations: this is the published linear-MSE predictor's exact layout.
            self.layers = nn.Sequential(
                nn.Linear(input_size, 1024),
                nn.Dropout(0.2),
                nn.Linear(1024, 128),
                nn.Dropout(0.2),
                nn.Linear(128, 64),
                nn.Dropout(0.1),
                nn.Linear(64, 16),
                nn.Linear(16, 1),
            )

        def forward(self, x: Any) -> Any:
            return self.layers(x)

    return AestheticHead()


@dataclass
class LaionPredictorScorer:
    """LAION improved aesthetic predictor: L2-normalised CLIP image embedding -> MLP -> score.

    ``clip_model`` is a Hub id or a local folder; ``head`` is ``"repo_id:filename"`` on the
    Hub or a local ``.pth``/``.safetensors`` path. Weights load on first use. Offline
    (``HF_HUB_OFFLINE=1``) without local copies this raises one clear ``RuntimeError``.

    Example:
        >>> scorer = LaionPredictorScorer()  # doctest: +SKIP
        >>> scorer.score([image])  # doctest: +SKIP
        [5.83]
    """

    clip_model: str = LAION_CLIP_MODEL
    head: str = f"{LAION_HEAD_REPO}:{LAION_HEAD_FILE}"
    device: str = "cpu"
    batch_size: int = 16
    level_cuts: tuple[float, ...] = AVA_LEVEL_CUTS
    _loaded: tuple[Any, Any, Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        validate_cuts(self.level_cuts)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")

    @property
    def name(self) -> str:
        return f"laion-aesthetic:{Path(self.head.split(':')[-1]).stem}"

    def _head_file(self) -> Path:
        local = Path(self.head)
        if local.is_file():
            return local
        repo, _, filename = self.head.partition(":")
        if not filename:
            raise ValueError(f"head must be a local file or 'repo_id:filename', got {self.head!r}")
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo, filename))

    def load(self) -> tuple[Any, Any, Any]:
        """Load (processor, CLIP vision model, head) once."""
        if self._loaded is not None:
            return self._loaded
        import torch

        try:
            from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

            processor = CLIPImageProcessor.from_pretrained(self.clip_model)
            vision = CLIPVisionModelWithProjection.from_pretrained(self.clip_model)
            head_path = self._head_file()
        except Exception as err:  # offline / unknown repo: one message, no deep traceback
            raise RuntimeError(
                f"the LAION aesthetic predictor needs {self.clip_model} and the head "
                f"{self.head} from the Hugging Face Hub (or local copies), and loading failed: "
                f"{type(err).__name__}: {str(err)[:200]}. Offline, use --scorer classical "
                "(a heuristic baseline) or --scorer vlm with a reachable endpoint."
            ) from None
        if head_path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(head_path))
        else:
            state = torch.load(str(head_path), map_location="cpu", weights_only=True)
        dim = int(vision.config.projection_dim)
        head = laion_head(dim)
        try:
            head.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(
                f"{head_path} does not fit the aesthetic head for a {dim}-d CLIP embedding: "
                f"{str(err)[:200]}"
            ) from None
        vision.to(self.device).eval()
        head.to(self.device).eval()
        self._loaded = (processor, vision, head)
        return self._loaded

    def score(self, images: Sequence[Any]) -> list[float]:
        """Predicted mean AVA-style rating for each image."""
        import torch

        processor, vision, head = self.load()
        scores: list[float] = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                batch = [img.convert("RGB") for img in images[start : start + self.batch_size]]
                pixels = processor(images=batch, return_tensors="pt")["pixel_values"]
                emb = vision(pixel_values=pixels.to(self.device)).image_embeds
                emb = emb / emb.norm(dim=-1, keepdim=True).clamp_min(1e-12)
                scores += [round(float(s), 4) for s in head(emb.float()).squeeze(-1).cpu()]
        return scores

    def level(self, score: float) -> int:
        """Level 1-5 with the AVA-centred cut points (:data:`AVA_LEVEL_CUTS`)."""
        return level_from_cuts(score, self.level_cuts)
