"""The headline comparisons and ``results/summary.json`` of a run.

Example:
    >>> import pandas as pd
    >>> tests = pd.DataFrame([{"comparison": "poems_vs_plain", "side_a": "poems",
    ...     "side_b": "plain_texts", "quantity": "difference", "n": 40, "mean_difference": 0.1,
    ...     "n_a_greater": 5, "n_pairs": 6, "p_two_sided": 0.2, "p_a_greater": 0.1,
    ...     "exact": True}])
    >>> headline_rows(tests, ["poems_vs_plain"])[0]["n_a_greater"]
    5
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from uaes_hf.experiments.analysis.inputs import AnalysisInputs


def headline_rows(
    tests: Any, present: Sequence[str], text_tests: Any = None
) -> list[dict[str, Any]]:
    """One row per comparison: its main sides' mean difference, the count of model pairs
    higher (a description) with the paired sign-flip p-value, and, when run, the test over
    texts (``p_text``, ``ci_low``, ``ci_high``: :mod:`uaes_hf.experiments.text_resampling`).
    """
    from uaes_hf.experiments.comparisons import COMPARISON_SIDES

    headline = []
    for comparison in present:
        sides = COMPARISON_SIDES[comparison]
        side_a, side_b = (sides[0], sides[1]) if len(sides) == 2 else (sides[1], sides[2])
        row = tests[
            (tests["comparison"] == comparison)
            & (tests["side_a"] == side_a)
            & (tests["side_b"] == side_b)
            & (tests["quantity"] == "difference")
        ]
        if row.empty:
            continue
        r = row.iloc[0]
        item = {
            "comparison": comparison,
            "side_a": side_a,
            "side_b": side_b,
            "n": int(r["n"]),
            "n_b": int(r.get("n_b", r["n"])),
            "mean_difference": float(r["mean_difference"]),
            "n_a_greater": int(r["n_a_greater"]),
            "n_pairs": int(r["n_pairs"]),
            "p_two_sided": float(r["p_two_sided"]),
            "p_a_greater": float(r["p_a_greater"]),
            "exact": bool(r["exact"]),
        }
        if text_tests is not None and len(text_tests):
            hit = text_tests[text_tests["comparison"] == comparison]
            if len(hit):
                t = hit.iloc[0]
                item.update(
                    text_statistic=float(t["observed"]),
                    p_text=_number(t["p_value"]),
                    p_text_a_greater=_number(t["p_a_greater"]),
                    ci_low=_number(t["ci_low"]),
                    ci_high=_number(t["ci_high"]),
                    text_null_mean=_number(t["null_mean"]),
                    ci_level=float(t["ci_level"]),
                    text_permutations=int(t["n_permutations"]),
                    text_subsamples=int(t["n_subsamples"]),
                )
        headline.append(item)
    return headline


def _number(value: Any) -> float | None:
    """A float, or None for NaN (JSON has no NaN)."""
    value = float(value)
    return None if value != value else value


def run_summary(
    inputs: AnalysisInputs,
    *,
    headline: list[dict[str, Any]],
    per_sample_n: int,
    tsne_model: str | None,
    tsne_layer: int | None,
    substituted: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Sizes, models, settings, headline tests, skipped comparisons, sampling notes and
    every substitution."""
    from uaes_hf.experiments.capability import model_info

    cfg = inputs.cfg
    an, al = cfg.analyse, cfg.align
    poems, plain, images = inputs.poems, inputs.plain, inputs.images
    text_models, vision_models = inputs.text_models, inputs.vision_models
    return {
        "name": cfg.name,
        "title": cfg.report.title,
        "config": cfg.to_dict(),
        "k": al.k,
        "layer_selection": al.layers,
        "max_layers_per_model": al.max_layers_per_model,
        "n_permutations": al.n_permutations,
        "n_bootstrap": al.n_bootstrap,
        "per_sample_mode": an.per_sample_layers,
        "per_sample_inflated": an.per_sample_layers == "max",
        "per_sample_n": per_sample_n,
        "layer_rule": al.layer_selection,
        "calibration": al.calibration,
        "outlier_quantile": al.outlier_quantile,
        "outlier_exact": al.outlier_exact,
        "exclude_embedding_layer": al.exclude_embedding_layer,
        "match_sizes": al.match_sizes,
        "text_permutations": an.text_permutations,
        "text_subsamples": an.text_subsamples,
        "models": {"text": text_models, "vision": vision_models},
        "model_info": model_info([*text_models, *vision_models], an.capability),
        "reference_model": inputs.reference,
        "cluster_model": an.cluster_model,
        "distribution_alignment_model": inputs.plan["notes"]
        .get("distribution_aligned", {})
        .get("model"),
        "n_clusters": an.n_clusters,
        "tsne_model": tsne_model,
        "tsne_layer": tsne_layer,
        "perplexity_model": cfg.extract.perplexity_model,
        "wordclouds": cfg.report.wordclouds,
        "sizes": {"poems": len(poems), "plain_texts": len(plain), "images": len(images)},
        "aesthetic_score_counts": {
            str(k): int(v)
            for k, v in poems["aesthetic_score"].value_counts(dropna=False).sort_index().items()
        },
        "image_poem_duplicates": int(images["poem"].duplicated().sum()) if len(images) else 0,
        "skipped": inputs.plan["skipped"],
        "sampling_notes": inputs.plan["notes"],
        "headline": headline,
        "substituted": substituted or [],
    }
