"""Frozen-tower features and aesthetic scores of a corpus, computed once and cached.

One pass over the images feeds each batch to the image tower and to the aesthetic scorer;
both results are stored content-addressed (corpus fingerprint + tower or scorer description
+ code), so a rerun, another system or a changed option that does not touch them reads them
back. Text features (captions, queries) are cached by the texts themselves.

Example:
    >>> import numpy as np
    >>> class Towers:
    ...     name = "toy"
    ...     def describe(self): return {"towers": "toy"}
    ...     def text_features(self, texts): return np.ones((len(texts), 2), np.float32)
    >>> import tempfile
    >>> from uaes_hf.retrieval.cache import ArtifactCache
    >>> cached_text_features(Towers(), ["a", "b"], ArtifactCache(tempfile.mkdtemp())).shape
    (2, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from uaes_hf.retrieval.cache import ArtifactCache, code_fingerprint, stable_hash
from uaes_hf.retrieval.corpus import Corpus, load_image

_CODE = ("uaes_hf.retrieval.features", "uaes_hf.retrieval.corpus", "uaes_hf.retrieval.encoders")
LOAD_SIDE = 512  # images are opened at most this large (the classical scorer's own side)


@dataclass(frozen=True)
class CorpusFeatures:
    """Image base features (N x D) and aesthetic scores (N) of a corpus, with their keys."""

    image: np.ndarray
    aesthetic: np.ndarray
    image_key: str
    aesthetic_key: str


def scorer_description(scorer: Any) -> dict[str, Any]:
    """What identifies a scorer's numbers (its name, weights and cut points when present)."""
    description: dict[str, Any] = {"name": getattr(scorer, "name", type(scorer).__name__)}
    for field in ("weights", "clip_model", "head", "prompt_version"):
        if hasattr(scorer, field):
            description[field] = str(getattr(scorer, field))
    return description


def corpus_features(
    corpus: Corpus,
    towers: Any,
    scorer: Any,
    cache: ArtifactCache,
    *,
    batch_size: int = 32,
    progress: bool = True,
) -> CorpusFeatures:
    """Image tower features and aesthetic scores of every corpus image (cached)."""
    fingerprint = corpus.fingerprint()
    code = code_fingerprint(_CODE)
    image_key = stable_hash(
        {"corpus": fingerprint, "towers": towers.describe(), "code": code, "side": LOAD_SIDE}
    )
    aesthetic_key = stable_hash(
        {"corpus": fingerprint, "scorer": scorer_description(scorer), "side": LOAD_SIDE}
    )
    image = cache.load_arrays("image_features", image_key)
    aesthetic = cache.load_arrays("aesthetic_scores", aesthetic_key)
    if image is None or aesthetic is None:
        need_image, need_aesthetic = image is None, aesthetic is None
        feats: list[np.ndarray] = []
        scores: list[float] = []
        bar = _bar(len(corpus), "image features + aesthetic scores", progress)
        for start in range(0, len(corpus), batch_size):
            batch = [load_image(p, LOAD_SIDE) for p in corpus.paths[start : start + batch_size]]
            if need_image:
                feats.append(towers.image_features(batch))
            if need_aesthetic:
                scores += [float(s) for s in scorer.score(batch)]
            bar.update(len(batch))
        bar.close()
        if need_image:
            image = {"features": np.concatenate(feats).astype(np.float32)}
            cache.save_arrays("image_features", image_key, image, {"towers": towers.describe()})
        if need_aesthetic:
            aesthetic = {"scores": np.asarray(scores, dtype=np.float64)}
            cache.save_arrays(
                "aesthetic_scores", aesthetic_key, aesthetic, scorer_description(scorer)
            )
    assert image is not None and aesthetic is not None
    return CorpusFeatures(image["features"], aesthetic["scores"], image_key, aesthetic_key)


def cached_text_features(
    towers: Any, texts: Sequence[str], cache: ArtifactCache, *, batch: int = 256
) -> np.ndarray:
    """Text tower features of ``texts`` (cached by the texts and the towers)."""
    texts = list(texts)
    key = stable_hash(
        {"texts": texts, "towers": towers.describe(), "code": code_fingerprint(_CODE)}
    )
    stored = cache.load_arrays("text_features", key)
    if stored is None:
        parts = [towers.text_features(texts[i : i + batch]) for i in range(0, len(texts), batch)]
        stored = {"features": np.concatenate(parts).astype(np.float32)}
        cache.save_arrays("text_features", key, stored, {"n": len(texts)})
    return stored["features"]


def _bar(total: int, label: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=label, unit="img", disable=not enabled)
