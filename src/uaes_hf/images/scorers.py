"""Image aesthetic scorers behind one interface, and the mapping of scores to levels 1-5.

Three scorers, pluggable wherever an :class:`ImageAestheticScorer` is expected (``name``,
``score(images) -> list[float]``, ``level(score) -> int``):

- :class:`VLMScorer` (:mod:`uaes_hf.images.vlm`): a vision-language model behind any
  OpenAI-compatible API, asked for a continuous 1.0-10.0 score (regression-style, as in
  ROC4MLLM which the study used); versioned prompt; answers in the durable store, so a rerun
  only calls the API for images not scored yet.
- :class:`LaionPredictorScorer` (:mod:`uaes_hf.images.laion`): the LAION "improved aesthetic
  predictor" (CLIP ViT-L/14 embedding + MLP head) from the Hugging Face Hub; not offline.
- :class:`ClassicalAestheticScorer` (:mod:`uaes_hf.images.classical`): an OFFLINE HEURISTIC
  BASELINE from classical computational-aesthetics features. It is NOT a human-aligned
  aesthetic score and must never be presented as one.

Levels: :mod:`uaes_hf.images.levels` (AVA-centred cut points for the model scorers,
quintiles of the scored set for the heuristic).

This module gathers the public names of those modules (import from here).

Example:
    >>> level_from_cuts(5.5, AVA_LEVEL_CUTS)
    3
    >>> from PIL import Image
    >>> 1.0 <= ClassicalAestheticScorer().score([Image.new("RGB", (64, 64), (200, 30, 30))])[0]
    True
"""

from __future__ import annotations

from uaes_hf.images.classical import (
    CLASSICAL_WEIGHTS,
    FEATURE_NAMES,
    FEATURE_SIDE,
    ClassicalAestheticScorer,
    colourfulness,
    exposure_quality,
    heuristic_score,
    image_features,
    laplacian_variance,
    luminance,
    normalized_features,
    rms_contrast,
    thirds_ratio,
)
from uaes_hf.images.laion import (
    LAION_CLIP_MODEL,
    LAION_HEAD_FILE,
    LAION_HEAD_REPO,
    LaionPredictorScorer,
    laion_head,
)
from uaes_hf.images.levels import (
    AVA_LEVEL_CUTS,
    SCORE_MAX,
    SCORE_MIN,
    UNIFORM_LEVEL_CUTS,
    ImageAestheticScorer,
    level_from_cuts,
    quantile_cuts,
    validate_cuts,
)
from uaes_hf.images.vlm import (
    IMAGE_AESTHETIC_INSTRUCTION,
    IMAGE_AESTHETIC_PROMPT_VERSION,
    IMAGE_AESTHETIC_SYSTEM,
    IMAGE_AESTHETIC_TASK,
    ScoreParseError,
    VLMCallStats,
    VLMScorer,
    encode_image_data_url,
    image_messages,
    parse_continuous_score,
    run_vlm_task,
)

__all__ = [
    "AVA_LEVEL_CUTS",
    "CLASSICAL_WEIGHTS",
    "FEATURE_NAMES",
    "FEATURE_SIDE",
    "IMAGE_AESTHETIC_INSTRUCTION",
    "IMAGE_AESTHETIC_PROMPT_VERSION",
    "IMAGE_AESTHETIC_SYSTEM",
    "IMAGE_AESTHETIC_TASK",
    "LAION_CLIP_MODEL",
    "LAION_HEAD_FILE",
    "LAION_HEAD_REPO",
    "SCORE_MAX",
    "SCORE_MIN",
    "UNIFORM_LEVEL_CUTS",
    "ClassicalAestheticScorer",
    "ImageAestheticScorer",
    "LaionPredictorScorer",
    "ScoreParseError",
    "VLMCallStats",
    "VLMScorer",
    "colourfulness",
    "encode_image_data_url",
    "exposure_quality",
    "heuristic_score",
    "image_features",
    "image_messages",
    "laion_head",
    "laplacian_variance",
    "level_from_cuts",
    "luminance",
    "normalized_features",
    "parse_continuous_score",
    "quantile_cuts",
    "rms_contrast",
    "run_vlm_task",
    "thirds_ratio",
    "validate_cuts",
]
