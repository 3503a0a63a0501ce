"""Image-poem-text rows, built in one place.

:func:`image_text_rows` reads an image-caption set (the packaged ``"embedded"`` photos, an
imagefolder, a Hub dataset id, or an :class:`~uaes_hf.data.image_ingest.IngestResult`),
draws a seeded sample of it, and gives every image a poem and an aesthetic score and level.
It returns a pandas DataFrame with the columns :data:`IMAGE_TEXT_COLUMNS`::

    id, caption, image (encoded bytes), poem, poem_source,
    image_aesthetic_score, image_aesthetic_level, scorer

Semantics (those of the experiment's prepare stage):

- ``n_images=0`` gives no rows; ``None``, or a number at least the set's size, every image
  in order; otherwise a sorted seeded sample (:func:`sample_rows`);
- a set that already has ``poem`` and ``image_aesthetic_level`` for every image (a published
  image-poem-text dataset) is used as it is (``use_existing``);
- otherwise ``poem_backend.generate(images, captions)`` writes the poems (default: the offline
  retrieval baseline) and ``scorer.score(images)`` the scores (default: the classical
  heuristic). A scorer with ``with_quantile_cuts`` gets its level cut points from the scores
  of this set (quintiles) when at least 5 are finite; an image without a poem gets ``""``,
  one without a usable score NaN and no level. Images are decoded ``batch_size`` at a time.

The dataset builder (:mod:`uaes_hf.images.dataset`) and the experiment use this function
(the builder passes ``details`` to learn the fitted cut points and timings for its report).

Example:
    >>> [int(i) for i in sample_rows(10, 3, seed=0)]
    [5, 6, 9]
    >>> IMAGE_TEXT_COLUMNS[:3]
    ('id', 'caption', 'image')
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IMAGE_TEXT_COLUMNS: tuple[str, ...] = (
    "id",
    "caption",
    "image",
    "poem",
    "poem_source",
    "image_aesthetic_score",
    "image_aesthetic_level",
    "scorer",
)


def sample_rows(n_total: int, n_wanted: int | None, seed: int) -> Any:
    """Sorted seeded sample of row numbers (all rows when ``n_wanted`` is None, 0 or too big).

    Example:
        >>> [int(i) for i in sample_rows(4, None, seed=1)]
        [0, 1, 2, 3]
    """
    import numpy as np

    if n_wanted is None or n_wanted <= 0 or n_wanted >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).choice(n_total, size=n_wanted, replace=False))


@dataclass
class ImageTextBuild:
    """How :func:`image_text_rows` made its rows (pass one as ``details`` to get it filled):
    the sampled items in row order, the ingest result, the scorer (with its fitted cut
    points), the poem backend's name, the level mode and cuts, and timings."""

    items: list[Any] = field(default_factory=list)
    source: str = ""
    ingest: Any = None
    scorer: Any = None
    poem_backend: str = ""
    level_mode: str = "existing"
    level_cuts: tuple[float, ...] = ()
    timings_s: dict[str, float] = field(default_factory=dict)


def _ingest(source: Any, revision: str | None, caption_column: str | None) -> Any:
    from uaes_hf.data.image_ingest import IngestResult, read_image_captions

    if isinstance(source, IngestResult):
        return source
    if str(source) == "embedded":
        from uaes_hf.data.embedded_images import build_embedded_imagefolder

        source = build_embedded_imagefolder(progress=False).folder
    hub = {"revision": revision} if revision else {}
    return read_image_captions(
        Path(source) if Path(source).is_dir() else source, caption_column, **hub
    )


def _has_annotations(items: Sequence[Any]) -> bool:
    extras = [getattr(item, "extra", {}) or {} for item in items]
    return bool(extras) and all("poem" in e and "image_aesthetic_level" in e for e in extras)


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


def image_text_rows(
    source: Any,
    *,
    n_images: int | None = None,
    seed: int = 0,
    revision: str | None = None,
    scorer: Any = None,
    poem_backend: Any = None,
    caption_column: str | None = None,
    batch_size: int = 32,
    use_existing: bool = True,
    progress: bool = False,
    details: ImageTextBuild | None = None,
) -> Any:
    """Image-poem-text rows of ``source`` as a DataFrame (:data:`IMAGE_TEXT_COLUMNS`).

    Args:
        source: ``"embedded"``, an imagefolder, a Hub dataset id, or an ``IngestResult``.
        n_images: how many images to draw (0: none; None or >= the set: all, in order).
        seed: seed of the draw.
        revision: Hub revision of a Hub dataset.
        scorer: image aesthetic scorer (default: the classical heuristic baseline).
        poem_backend: poem generator (default: the offline retrieval baseline).
        caption_column: caption column of the set (default: found by name).
        batch_size: images decoded at a time.
        use_existing: keep a set's own ``poem`` / ``image_aesthetic_level`` columns.
        progress: progress bar over batches.
        details: an :class:`ImageTextBuild` to fill with how the rows were made.

    Example:
        >>> image_text_rows("embedded", n_images=0).columns.tolist() == list(IMAGE_TEXT_COLUMNS)
        True
    """
    import pandas as pd

    build = details if details is not None else ImageTextBuild()
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if n_images is not None and n_images < 0:
        raise ValueError(f"n_images must be >= 0 or None, got {n_images}")
    if n_images == 0:
        build.source = str(source)
        return pd.DataFrame(columns=list(IMAGE_TEXT_COLUMNS))
    started = time.perf_counter()
    ingest = _ingest(source, revision, caption_column)
    items = list(ingest.items)
    items = [items[i] for i in sample_rows(len(items), n_images, seed)]
    build.items, build.source, build.ingest = items, ingest.source, ingest
    build.timings_s["ingest"] = round(time.perf_counter() - started, 3)
    columns: dict[str, list[Any]] = {
        "id": [item.id for item in items],
        "caption": [item.caption for item in items],
        "image": [item.image_bytes() for item in items],
    }
    if use_existing and _has_annotations(items):
        extras = [item.extra for item in items]
        columns["poem"] = [e["poem"] for e in extras]
        columns["poem_source"] = [e.get("poem_source") for e in extras]
        columns["image_aesthetic_score"] = [_number(e.get("image_aesthetic_score")) for e in extras]
        columns["image_aesthetic_level"] = [int(e["image_aesthetic_level"]) for e in extras]
        columns["scorer"] = [e.get("scorer") for e in extras]
        return pd.DataFrame(columns, columns=list(IMAGE_TEXT_COLUMNS))
    scores, poems = _score_and_write(items, scorer, poem_backend, batch_size, progress, build)
    build.level_mode, build.level_cuts = "fixed", tuple(getattr(build.scorer, "level_cuts", ()))
    fit = getattr(build.scorer, "with_quantile_cuts", None)
    finite = [s for s in scores if math.isfinite(s)]
    if callable(fit) and len(finite) >= 5:
        build.scorer = fit(finite)
        build.level_mode, build.level_cuts = "quantile", tuple(build.scorer.level_cuts)
    levels = [build.scorer.level(s) if math.isfinite(s) else None for s in scores]
    columns["poem"] = [p.text if p is not None else "" for p in poems]
    columns["poem_source"] = [p.source if p is not None else "" for p in poems]
    columns["image_aesthetic_score"] = scores
    columns["image_aesthetic_level"] = (
        levels if None not in levels else pd.array(levels, dtype="Int64")
    )
    columns["scorer"] = [build.scorer.name] * len(items)
    return pd.DataFrame(columns, columns=list(IMAGE_TEXT_COLUMNS))


def _score_and_write(
    items: Sequence[Any],
    scorer: Any,
    poem_backend: Any,
    batch_size: int,
    progress: bool,
    build: ImageTextBuild,
) -> tuple[list[float], list[Any]]:
    """Scores and poems for ``items``, decoding ``batch_size`` images at a time."""
    if scorer is None:
        from uaes_hf.images.classical import ClassicalAestheticScorer

        scorer = ClassicalAestheticScorer()
    if poem_backend is None:
        from uaes_hf.images.poems import RetrievalPoemBaseline

        poem_backend = RetrievalPoemBaseline()
    build.scorer = scorer
    build.poem_backend = getattr(poem_backend, "name", type(poem_backend).__name__)
    scores: list[float] = []
    poems: list[Any] = []
    t_score = t_poem = 0.0
    batches: Any = range(0, len(items), batch_size)
    if progress and len(items) > batch_size:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="image-poem-text batches", unit="batch")
    for start in batches:
        batch = items[start : start + batch_size]
        images = [item.open_image() for item in batch]
        t0 = time.perf_counter()
        batch_scores = [float(s) for s in scorer.score(images)]
        t1 = time.perf_counter()
        batch_poems = list(poem_backend.generate(images, [item.caption for item in batch]))
        t2 = time.perf_counter()
        if len(batch_scores) != len(batch) or len(batch_poems) != len(batch):
            raise RuntimeError("a scorer or poem generator returned the wrong number of results")
        scores += batch_scores
        poems += batch_poems
        t_score, t_poem = t_score + t1 - t0, t_poem + t2 - t1
    build.timings_s["score"] = round(t_score, 3)
    build.timings_s["poems"] = round(t_poem, 3)
    return scores, poems
