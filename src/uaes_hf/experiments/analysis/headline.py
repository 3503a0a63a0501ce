"""The headline's statistics over texts, and how much of its agreement is lexical.

For the main pair of sides of every comparison (poems vs plain texts, high vs low, ...):

* ``text_tests``: the test of :mod:`uaes_hf.experiments.text_resampling` (p-value from
  random splits of the pooled texts, interval from half-samples of each side, every
  neighbour set recomputed) for the mean-over-model-pairs difference;
* ``lexical``: every model scored against TF-IDF of the same texts
  (:mod:`uaes_hf.experiments.lexical`), beside the mean model-model score on each side;
* ``headline_variants``: the mean difference with the layer search as in the test, with
  the embedding layer (layer 0) left out of (or, if the run excludes it, put into) the
  search, and the lexical difference.

Features are read once per comparison and pooled (side A's rows, then side B's), clamped
jointly when ``align.outlier_quantile`` is set (a clamp that ignores the side labels, so
the random splits stay exchangeable).

Example:
    >>> from uaes_hf.experiments.analysis.headline import main_sides
    >>> main_sides("clusters"), main_sides("poems_vs_plain")
    (('cluster_1', 'cluster_2'), ('poems', 'plain_texts'))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from uaes_hf.experiments.analysis.inputs import AnalysisInputs


def main_sides(comparison: str) -> tuple[str, str]:
    """The two sides a comparison's headline compares (a - b)."""
    from uaes_hf.experiments.comparisons import COMPARISON_SIDES

    sides = COMPARISON_SIDES[comparison]
    return (sides[0], sides[1]) if len(sides) == 2 else (sides[1], sides[2])


def _side(inputs: AnalysisInputs, comparison: str, side: str) -> dict[str, Any] | None:
    return next(
        (s for s in inputs.plan["subsets"] if s["comparison"] == comparison and s["side"] == side),
        None,
    )


def _pool(
    inputs: AnalysisInputs, model: str, side_a: dict[str, Any], side_b: dict[str, Any]
) -> list[np.ndarray]:
    """``model``'s layers over side A's rows then side B's, clamped jointly if asked."""
    from uaes_hf.experiments.convergence import clamped_rows

    al = inputs.cfg.align
    parts = []
    for side in (side_a, side_b):
        layers = inputs.layers(side["dataset"], model)
        parts.append([layer[np.asarray(side["rows"], dtype=int)] for layer in layers])
    pooled = [np.concatenate(pair, axis=0) for pair in zip(*parts, strict=True)]
    rows = np.arange(pooled[0].shape[0])
    return clamped_rows(pooled, rows, al.outlier_quantile, al.outlier_exact)


def _layer_choices(cfg: Any, model: str, n_layers: int) -> tuple[list[int], list[int]]:
    """(the test's layers, the embedding check's layers): the headline's candidates with
    ``align.layers: best`` (and the same search with layer 0 out, or in); the last or the
    fixed layer otherwise (then both are that layer).

    Example:
        >>> from uaes_hf.experiments.config import load_config
        >>> _layer_choices(load_config(), "m", 7)
        ([0, 1, 2, 4, 5, 6], [1, 2, 3, 4, 5, 6])
    """
    from uaes_hf.experiments.convergence import candidate_layers

    al = cfg.align
    if al.layers == "last":
        return [n_layers - 1], [n_layers - 1]
    if al.layers == "fixed":
        layer = int(al.fixed_layers[model]) % n_layers
        return [layer], [layer]
    exclude = al.exclude_embedding_layer
    return (
        candidate_layers(n_layers, text_test_layers(cfg), exclude),
        candidate_layers(n_layers, text_test_layers(cfg), not exclude),
    )


def text_test_layers(cfg: Any) -> int:
    """Candidate layers per model in the test over texts (0 = all).

    Example:
        >>> from uaes_hf.experiments.config import load_config
        >>> text_test_layers(load_config()), text_test_layers(load_config(
        ...     overrides={"analyse": {"text_test_max_layers": 3}}))
        (6, 3)
    """
    chosen = cfg.analyse.text_test_max_layers
    return cfg.align.max_layers_per_model if chosen is None else chosen


def headline_section(inputs: AnalysisInputs, present: list[str]) -> dict[str, Any]:
    """``text_tests``, ``lexical`` and ``headline_variants`` tables (None when not run)."""
    import pandas as pd

    from uaes_hf.experiments.convergence import model_pairs
    from uaes_hf.experiments.lexical import LEXICAL_MODEL, tfidf_gram
    from uaes_hf.experiments.text_resampling import (
        PooledSpaces,
        pair_scores,
        text_resampling_test,
    )

    cfg = inputs.cfg
    an, al = cfg.analyse, cfg.align
    models = inputs.text_models
    testing = an.text_permutations > 0 or an.text_subsamples > 0
    if len(models) < 2 or not (testing or an.lexical_baseline or an.embedding_layer_check):
        return {"text_tests": None, "lexical": None, "headline_variants": None}
    pairs = model_pairs(models)
    tests, lexical, variants = [], [], []
    for index, comparison in enumerate(present):
        side_a_name, side_b_name = main_sides(comparison)
        side_a, side_b = (
            _side(inputs, comparison, side_a_name),
            _side(inputs, comparison, side_b_name),
        )
        if side_a is None or side_b is None:
            continue
        n_a, n_b = len(side_a["rows"]), len(side_b["rows"])
        stacks, use, other = {}, {}, {}
        for model in models:
            stacks[model] = _pool(inputs, model, side_a, side_b)
            use[model], other[model] = _layer_choices(cfg, model, len(stacks[model]))
        held = {
            m: sorted({*use[m], *(other[m] if an.embedding_layer_check else [])}) for m in models
        }
        pool = PooledSpaces.build(stacks, held)
        del stacks
        rows_a, rows_b = np.arange(n_a), np.arange(n_a, n_a + n_b)
        keys = {"comparison": comparison, "side_a": side_a_name, "side_b": side_b_name}
        score_a = pair_scores(pool, rows_a, pairs, al.k, use)
        score_b = pair_scores(pool, rows_b, pairs, al.k, use)
        variants.append(_variant(keys, "headline (layers as in the text test)", score_a, score_b))
        if an.embedding_layer_check and al.layers == "best":
            label = (
                "with the embedding layer (layer 0) searched"
                if al.exclude_embedding_layer
                else "without the embedding layer (layer 0)"
            )
            variants.append(
                _variant(
                    keys,
                    label,
                    pair_scores(pool, rows_a, pairs, al.k, other),
                    pair_scores(pool, rows_b, pairs, al.k, other),
                )
            )
        if an.lexical_baseline:
            texts = [*inputs.texts(side_a), *inputs.texts(side_b)]
            lex = pool.with_gram(LEXICAL_MODEL, tfidf_gram(texts))
            lex_use = {**use, LEXICAL_MODEL: [0]}
            lex_pairs = [(m, LEXICAL_MODEL) for m in models]
            lex_a = pair_scores(lex, rows_a, lex_pairs, al.k, lex_use)
            lex_b = pair_scores(lex, rows_b, lex_pairs, al.k, lex_use)
            variants.append(_variant(keys, "lexical: each model vs TF-IDF", lex_a, lex_b))
            for side, scores, model_scores in (
                (side_a_name, lex_a, score_a),
                (side_b_name, lex_b, score_b),
            ):
                for model, value in zip(models, scores, strict=True):
                    with_others = [
                        s for (a, b), s in zip(pairs, model_scores, strict=True) if model in (a, b)
                    ]
                    lexical.append(
                        {
                            **keys,
                            "side": side,
                            "model": model,
                            "score_vs_tfidf": float(value),
                            "mean_score_vs_models": float(np.mean(with_others)),
                            "n": n_a if side == side_a_name else n_b,
                            "chance": al.k / ((n_a if side == side_a_name else n_b) - 1),
                        }
                    )
        if testing:
            test = text_resampling_test(
                pool,
                n_a,
                n_b,
                k=al.k,
                pairs=pairs,
                use=use,
                n_permutations=an.text_permutations,
                n_subsamples=an.text_subsamples,
                ci_level=al.ci_level,
                seed=cfg.seed + index,
            )
            tests.append(
                {
                    **keys,
                    **test.to_dict(),
                    "n_a_greater": int(np.count_nonzero(score_a > score_b)),
                    "max_layers": text_test_layers(cfg),
                    "embedding_layer": "excluded" if al.exclude_embedding_layer else "searched",
                }
            )
    return {
        "text_tests": pd.DataFrame(tests) if tests else None,
        "lexical": pd.DataFrame(lexical) if lexical else None,
        "headline_variants": pd.DataFrame(variants) if variants else None,
    }


def _variant(
    keys: dict[str, str], variant: str, score_a: np.ndarray, score_b: np.ndarray
) -> dict[str, Any]:
    diff = score_a - score_b
    return {
        **keys,
        "variant": variant,
        "mean_a": float(score_a.mean()),
        "mean_b": float(score_b.mean()),
        "mean_difference": float(diff.mean()),
        "n_higher_on_a": int(np.count_nonzero(diff > 0)),
        "n_pairs": int(diff.size),
    }
