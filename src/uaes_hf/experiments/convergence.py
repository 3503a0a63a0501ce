"""Model x model mutual-kNN matrices with chance level, calibration, p-value and CI.

For one subset of samples, the neighbour sets of every (model, candidate layer) are built
once (:class:`~uaes_hf.alignment.NeighborIndex`) and reused by every pair, the permutation
null and the bootstrap. Layer choice:

* ``best`` (the study's choice): the layer pair with the highest score; its p-value and
  calibrated score come from a permutation null of the *max over the same layer pairs*
  (the same permutation applied to every layer), which corrects the search. The rule
  (``rule``) is numpy's first maximum (``"best"``) or the study's loop (``"reference"``:
  strict ``>`` from 0 with the second model's layers outer, as the study's
  ``compute_alignment(x, y)`` calls ``compute_score(y, x)``);
* ``last``: each model's last layer;
* ``fixed``: a given layer per model.

Before any neighbour search, every model's whole stack (all its layers, the subset's rows)
can be clamped with the study's :func:`~uaes_hf.alignment.remove_outliers`
(``outlier_quantile``), and layer 0 (the mean-pooled input embeddings) can be left out of
the candidates (``exclude_embedding_layer``).

The output is the tidy alignment table of ``docs/architecture.md``: one row per (subset,
model A, layer A, model B, layer B, metric, k, N) with score, chance, calibrated, p_value,
ci_low, ci_high.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> stacks = {"a": rng.normal(size=(60, 3, 8)), "b": rng.normal(size=(60, 2, 8))}
    >>> spaces = build_spaces(stacks, np.arange(60), k=5)
    >>> row = score_pair(spaces["a"], spaces["b"], k=5, n_permutations=20, n_bootstrap=20)
    >>> round(row["chance"], 4)
    0.0847
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

TIDY_COLUMNS: tuple[str, ...] = (
    "subset",
    "comparison",
    "side",
    "model_a",
    "layer_a",
    "model_b",
    "layer_b",
    "metric",
    "k",
    "n",
    "score",
    "chance",
    "calibrated",
    "p_value",
    "ci_low",
    "ci_high",
    "layer_selection",
    "n_layer_pairs",
)


def candidate_layers(
    n_layers: int, max_layers: int = 0, exclude_embedding_layer: bool = False
) -> list[int]:
    """Evenly spaced layer numbers that always include the last; ``max_layers=0`` = all.

    With ``exclude_embedding_layer`` the candidates are spaced over layers 1..L-1 (a
    one-layer stack keeps its only layer).

    Example:
        >>> candidate_layers(31, 6)
        [0, 6, 12, 18, 24, 30]
        >>> candidate_layers(4, 0)
        [0, 1, 2, 3]
        >>> candidate_layers(31, 6, exclude_embedding_layer=True)
        [1, 7, 13, 18, 24, 30]
    """
    if n_layers < 1:
        raise ValueError(f"n_layers must be >= 1, got {n_layers}")
    if exclude_embedding_layer and n_layers > 1:
        return [1 + layer for layer in candidate_layers(n_layers - 1, max_layers)]
    if max_layers <= 0 or max_layers >= n_layers:
        return list(range(n_layers))
    picks = np.linspace(0, n_layers - 1, max_layers).round().astype(int)
    return sorted({int(p) for p in picks})


@dataclass(frozen=True)
class LayerSpace:
    """One model's candidate layers on one subset, with their neighbour indices."""

    model: str
    layers: tuple[int, ...]
    indices: tuple[Any, ...]  # NeighborIndex per candidate layer

    @property
    def n(self) -> int:
        """Number of samples."""
        return self.indices[0].n_samples


def layer_list(stack: Any) -> list[Any]:
    """An ``N x L x D`` array or a list of ``N x D_l`` matrices, as a list of matrices."""
    if isinstance(stack, (list, tuple)):
        return list(stack)
    array = np.asarray(stack)
    if array.ndim == 2:
        return [array]
    if array.ndim != 3:
        raise ValueError(f"a feature stack must be N x L x D, got shape {array.shape}")
    return [array[:, layer] for layer in range(array.shape[1])]


def clamped_rows(
    stack: Any, rows: np.ndarray, outlier_quantile: float | None = None, exact: bool = False
) -> list[np.ndarray]:
    """The ``rows`` of every layer of ``stack``, clamped as one stack when asked.

    The study clamps a model's whole ``N x L x D`` stack of the scored samples at once
    (one threshold for all its layers) before its layer search; so does this.

    Example:
        >>> x = np.ones((20, 2, 10)); x[0, 1, 2] = 100.0  # one massive activation
        >>> float(clamped_rows(x, np.arange(20), 0.95, exact=True)[1].max())
        1.0
    """
    from uaes_hf.alignment import remove_outliers

    picked = [np.asarray(layer)[np.asarray(rows)] for layer in layer_list(stack)]
    if outlier_quantile is None:
        return picked
    return list(remove_outliers(picked, outlier_quantile, exact))


def build_spaces(
    stacks: Mapping[str, Any],
    rows: np.ndarray,
    *,
    k: int,
    max_layers: int = 0,
    layers: Mapping[str, Sequence[int]] | None = None,
    outlier_quantile: float | None = None,
    outlier_exact: bool = False,
    exclude_embedding_layer: bool = False,
) -> dict[str, LayerSpace]:
    """Neighbour indices of every (model, candidate layer) on ``rows`` (built once each).

    Args:
        stacks: model -> ``N x L x D`` features (or a list of ``N x D_l``) over the dataset.
        rows: the subset's row numbers.
        k: neighbours.
        max_layers: candidate layers per model when ``layers`` does not fix them.
        layers: model -> explicit candidate layer numbers (overrides ``max_layers``).
        outlier_quantile, outlier_exact: the study's clamp of each whole stack (on ``rows``).
        exclude_embedding_layer: candidates from layers 1..L-1 (when ``layers`` is not given).
    """
    from uaes_hf.alignment.neighbors import nearest_neighbors

    rows = np.asarray(rows)
    out = {}
    for model, stack in stacks.items():
        all_layers = layer_list(stack)
        chosen = list(
            (layers or {}).get(model)
            or candidate_layers(len(all_layers), max_layers, exclude_embedding_layer)
        )
        for layer in chosen:
            if not -len(all_layers) <= layer < len(all_layers):
                raise ValueError(
                    f"layer {layer} does not exist for {model!r} ({len(all_layers)} layers)"
                )
        chosen = [layer % len(all_layers) for layer in chosen]
        subset = clamped_rows(all_layers, rows, outlier_quantile, outlier_exact)
        indices = tuple(
            nearest_neighbors(subset[layer], k, name=f"{model}[layer {layer}]") for layer in chosen
        )
        out[model] = LayerSpace(model, tuple(chosen), indices)
    return out


def score_pair(
    space_a: LayerSpace,
    space_b: LayerSpace,
    *,
    k: int = 10,
    layer_selection: str = "best",
    n_permutations: int = 200,
    n_bootstrap: int = 200,
    ci_level: float = 0.95,
    seed: int = 0,
    rule: str = "best",
    calibration: str = "quantile",
) -> dict[str, Any]:
    """Score one model pair on one subset with its statistics (one tidy row, no subset keys).

    ``layer_selection="best"`` searches every candidate layer pair and corrects the search
    in the permutation null; otherwise each space must hold exactly one candidate layer.
    ``rule`` picks the pair (``"best"`` or the study's ``"reference"`` loop, see the module
    docstring); ``calibration`` is the calibration definition. With ``n_permutations=0``
    the calibrated score and p-value are NaN.
    """
    from uaes_hf.alignment.calibration import bootstrap_mean_ci
    from uaes_hf.alignment.layers import best_layer_pair
    from uaes_hf.alignment.mutual_knn import overlap_counts

    if space_a.n != space_b.n:
        raise ValueError(f"{space_a.model} has N={space_a.n} but {space_b.model} N={space_b.n}")
    if layer_selection != "best" and (len(space_a.layers) != 1 or len(space_b.layers) != 1):
        raise ValueError(
            f"layer_selection={layer_selection!r} needs one layer per model, got "
            f"{space_a.layers} and {space_b.layers}"
        )
    # The permutation null relabels B in every layer at once and takes the max over the
    # grid, so the calibrated score and p-value are corrected for the layer search.
    # The study's loop runs over the second model's layers outer: search B x A, transpose.
    outer_b = rule == "reference"
    first, second = (space_b, space_a) if outer_b else (space_a, space_b)
    search = best_layer_pair(
        list(first.indices),
        list(second.indices),
        k,
        permutations=n_permutations,
        seed=seed,
        layer_selection=rule,
        calibration=calibration,
    )
    grid = search.grid.T if outer_b else search.grid
    pa, pb = (search.layer_b, search.layer_a) if outer_b else (search.layer_a, search.layer_b)
    calibrated = p_value = ci_low = ci_high = float("nan")
    if search.calibration is not None:
        calibrated, p_value = search.calibration.calibrated, search.calibration.p_value
    found = pa is not None and pb is not None  # the study's loop: none above 0 -> score 0
    if n_bootstrap > 0 and found:
        per_sample = (
            overlap_counts(space_a.indices[pa].indices[:, :k], space_b.indices[pb].indices[:, :k])
            / k
        )
        ci = bootstrap_mean_ci(per_sample, n_bootstrap=n_bootstrap, confidence=ci_level, seed=seed)
        ci_low, ci_high = ci.low, ci.high
    return {
        "model_a": space_a.model,
        "layer_a": int(space_a.layers[pa]) if found else -1,
        "model_b": space_b.model,
        "layer_b": int(space_b.layers[pb]) if found else -1,
        "metric": "mutual_knn",
        "k": int(k),
        "n": int(space_a.n),
        "score": float(grid[pa, pb]) if found else 0.0,
        "chance": float(k / (space_a.n - 1)),
        "calibrated": float(calibrated),
        "p_value": float(p_value),
        "ci_low": float(ci_low),
        "ci_high": float(ci_high),
        "layer_selection": layer_selection,
        "n_layer_pairs": int(grid.size),
    }


def model_pairs(
    models: Sequence[str], others: Sequence[str] | None = None
) -> list[tuple[str, str]]:
    """Unordered pairs within ``models``, or every (model, other) when ``others`` is given.

    Example:
        >>> model_pairs(["a", "b", "c"])
        [('a', 'b'), ('a', 'c'), ('b', 'c')]
        >>> model_pairs(["a"], ["x", "y"])
        [('a', 'x'), ('a', 'y')]
    """
    if others is None:
        return list(itertools.combinations(models, 2))
    return [(a, b) for a in models for b in others]


def convergence_rows(
    stacks_a: Mapping[str, Any],
    rows: np.ndarray,
    *,
    subset: str,
    comparison: str = "",
    side: str = "",
    stacks_b: Mapping[str, Any] | None = None,
    k: int = 10,
    layer_selection: str = "best",
    max_layers: int = 0,
    fixed_layers: Mapping[str, int] | None = None,
    n_permutations: int = 200,
    n_bootstrap: int = 200,
    ci_level: float = 0.95,
    seed: int = 0,
    progress: Any = None,
    rule: str = "best",
    calibration: str = "quantile",
    outlier_quantile: float | None = None,
    outlier_exact: bool = False,
    exclude_embedding_layer: bool = False,
) -> list[dict[str, Any]]:
    """Tidy rows for every pair within ``stacks_a`` (or every A x B pair) on ``rows``.

    Args:
        stacks_a: model -> feature stack over the dataset.
        rows: the subset's row numbers (already matched in N to its comparison).
        subset, comparison, side: keys of the rows.
        stacks_b: a second model family (cross-modal: LLMs x vision models on paired data).
        layer_selection: ``best`` | ``last`` | ``fixed`` (see the module docstring).
        max_layers: candidate layers per model searched by ``best``.
        fixed_layers: model -> layer, for ``fixed``.
        progress: a tqdm bar to advance once per pair.
        rule, calibration: see :func:`score_pair`.
        outlier_quantile, outlier_exact, exclude_embedding_layer: see :func:`build_spaces`.
    """
    if layer_selection not in ("best", "last", "fixed"):
        raise ValueError(f"layer_selection must be best, last or fixed, got {layer_selection!r}")
    every = dict(stacks_a) | dict(stacks_b or {})
    pinned: dict[str, list[int]] | None = None
    if layer_selection == "last":
        pinned = {m: [-1] for m in every}
    elif layer_selection == "fixed":
        missing = [m for m in every if m not in (fixed_layers or {})]
        if missing:
            raise ValueError(f"fixed layer selection needs a layer for {missing}")
        pinned = {m: [int(fixed_layers[m])] for m in every}
    spaces = build_spaces(
        every,
        rows,
        k=k,
        max_layers=max_layers,
        layers=pinned,
        outlier_quantile=outlier_quantile,
        outlier_exact=outlier_exact,
        exclude_embedding_layer=exclude_embedding_layer,
    )
    pairs = model_pairs(list(stacks_a), list(stacks_b) if stacks_b is not None else None)
    out = []
    for i, (a, b) in enumerate(pairs):
        row = score_pair(
            spaces[a],
            spaces[b],
            k=k,
            layer_selection=layer_selection,
            n_permutations=n_permutations,
            n_bootstrap=n_bootstrap,
            ci_level=ci_level,
            seed=seed + i,
            rule=rule,
            calibration=calibration,
        )
        out.append({"subset": subset, "comparison": comparison, "side": side, **row})
        if progress is not None:
            progress.update(1)
    return out


def matrix(
    table: Any,
    subset: str,
    models: Sequence[str],
    value: str = "score",
    models_b: Sequence[str] | None = None,
) -> np.ndarray:
    """A model x model matrix of ``value`` from the tidy table (NaN where absent).

    Within one family the matrix is symmetric with NaN on the diagonal (a model vs itself
    is trivially 1 and not shown); across families rows are ``models`` and columns
    ``models_b``.
    """
    rows = table[table["subset"] == subset]
    cols = list(models_b) if models_b is not None else list(models)
    out = np.full((len(models), len(cols)), np.nan)
    lookup = {(r.model_a, r.model_b): getattr(r, value) for r in rows.itertuples()}
    for i, a in enumerate(models):
        for j, b in enumerate(cols):
            if (a, b) in lookup:
                out[i, j] = lookup[(a, b)]
            elif models_b is None and (b, a) in lookup:
                out[i, j] = lookup[(b, a)]
    return out
