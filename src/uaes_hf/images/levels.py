"""Image aesthetic levels 1-5 from continuous scores, and the scorer interface.

The study mapped a continuous score to a 1-5 level. The model scorers (LAION head, VLM)
produce AVA-like scores on 1-10 whose mass lies between about 4 and 7 (AVA's mean rating is
about 5.4), so equal-width bins over 1-10 would put nearly every image in levels 2-3. Their
level cut points are therefore one point wide around the AVA mean (:data:`AVA_LEVEL_CUTS`):

    level 1: score < 4.0   level 2: [4.0, 5.0)   level 3: [5.0, 6.0)
    level 4: [6.0, 7.0)    level 5: score >= 7.0

The classical heuristic has no calibrated scale, so its levels are the quintiles of the set
being scored (:func:`quantile_cuts`: 20% of the images per level, a ranking within the set,
not an absolute judgment); before fitting it uses equal bins over 1-10
(:data:`UNIFORM_LEVEL_CUTS`).

Example:
    >>> level_from_cuts(5.5, AVA_LEVEL_CUTS)
    3
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
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
