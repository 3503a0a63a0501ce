"""The offline classical heuristic image scorer: NOT a human-aligned aesthetic score.

:class:`ClassicalAestheticScorer` is built from classical computational-aesthetics features
(colourfulness, contrast, sharpness, exposure, rule of thirds), each pure numpy on an RGB
array in [0, 255]. It exists so the pipeline runs end to end without a model and must never
be presented as an aesthetic judgment; its levels are quintiles of the scored set.

Example:
    >>> scorer = ClassicalAestheticScorer()
    >>> from PIL import Image
    >>> 1.0 <= scorer.score([Image.new("RGB", (64, 64), (200, 30, 30))])[0] <= 10.0
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from uaes_hf.images.levels import (
    SCORE_MAX,
    SCORE_MIN,
    UNIFORM_LEVEL_CUTS,
    level_from_cuts,
    quantile_cuts,
    validate_cuts,
)

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
