"""Cross-modal convergence: text models on captions/poems x vision models on the images.

The matrix is LLM x vision (not symmetric, no diagonal). Convergence by image aesthetic
level uses per-sample scores from :mod:`uaes_hf.experiments.per_sample` (held-out layer
choice, fixed layers, or the study's inflated per-sample max with its chance level under
the same max) and fits their slope on the level.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> text = {"t": rng.normal(size=(60, 2, 8))}
    >>> vision = {"v": rng.normal(size=(60, 2, 8))}
    >>> rows = crossmodal_rows(text, vision, subset="crossmodal/image_caption", k=5,
    ...                        n_permutations=10, n_bootstrap=10)
    >>> rows[0]["model_a"], rows[0]["model_b"]
    ('t', 'v')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from uaes_hf.experiments.convergence import (
    candidate_layers,
    convergence_rows,
    layer_list,
    model_pairs,
)
from uaes_hf.experiments.per_sample import PerSampleResult, mean_by_level, per_sample_alignment


def crossmodal_rows(
    text_stacks: Mapping[str, Any],
    vision_stacks: Mapping[str, Any],
    *,
    subset: str,
    rows: np.ndarray | None = None,
    **settings: Any,
) -> list[dict[str, Any]]:
    """Tidy rows of every (text model, vision model) pair on paired samples."""
    n = int(np.asarray(layer_list(next(iter(text_stacks.values())))[0]).shape[0])
    comparison, _, side = subset.partition("/")
    return convergence_rows(
        text_stacks,
        np.arange(n) if rows is None else rows,
        subset=subset,
        comparison=comparison,
        side=side,
        stacks_b=vision_stacks,
        **settings,
    )


def level_analysis(
    text_stacks: Mapping[str, Any],
    vision_stacks: Mapping[str, Any],
    levels: Any,
    *,
    k: int = 10,
    mode: str = "heldout",
    max_layers: int = 0,
    seed: int = 0,
    sample_ids: Any = None,
    n_permutations: int = 100,
    exclude_embedding_layer: bool = False,
) -> tuple[PerSampleResult, Any]:
    """Per-sample LLM x vision alignment vs image aesthetic level, and means per level.

    ``mode``: ``heldout`` and ``max`` search the candidate layers (``max_layers`` evenly
    spaced, ``exclude_embedding_layer``); ``fixed`` uses every model's last layer.
    """
    spaces: dict[str, list[Any]] = {}
    layer_ids: dict[str, list[int]] = {}
    for name, stack in {**text_stacks, **vision_stacks}.items():
        layers = layer_list(stack)
        chosen = (
            candidate_layers(len(layers), max_layers, exclude_embedding_layer)
            if mode in ("heldout", "max")
            else [len(layers) - 1]
        )
        spaces[name] = [layers[i] for i in chosen]
        layer_ids[name] = chosen
    result = per_sample_alignment(
        spaces,
        model_pairs(list(text_stacks), list(vision_stacks)),
        {"image_aesthetic_level": np.asarray(levels, dtype=float)},
        k=k,
        mode=mode,
        layer_ids=layer_ids,
        seed=seed,
        sample_ids=sample_ids,
        n_permutations=n_permutations,
    )
    return result, mean_by_level(result.scores, "image_aesthetic_level")
