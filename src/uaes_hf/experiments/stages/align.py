"""The align stage: every comparison's matched subsets and the model x model tables.

==========  ==================================================================================
inputs      prepare: ``RunLayout.plain_texts``, ``image_text``, ``aligned_poems``;
            annotate: ``RunLayout.annotated_poems``; extract: ``RunLayout.feature_store``
            (rows joined to the tables by id)
cache key   ``align``, ``extract.text_models``, ``extract.vision_models``,
            ``analyse.comparisons``, ``analyse.cluster_model``, ``analyse.n_clusters``,
            ``analyse.reference_model``, ``analyse.distribution_model``
outputs     ``RunLayout.convergence`` (one row per subset x model pair x layer search),
            ``RunLayout.subsets`` (the rows of every compared side, skipped comparisons,
            sampling notes, substitutions),
            ``RunLayout.cluster_labels`` (KMeans label per poem, in the poems' order)

The distribution-aligned plain texts are fitted in the last layer of
``analyse.distribution_model`` (default: the reference model, an LLM, as the study fitted
them in Llama-3-8B's space); the random plain texts are a draw from the whole pool.
==========  ==================================================================================

Example:
    >>> DEPENDS_ON
    ('prepare', 'annotate', 'extract')
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from uaes_hf.experiments.layout import ALIGNED_POEMS, IMAGE_TEXT, TEXT_DATASETS, RunLayout
from uaes_hf.experiments.pipeline import StageContext
from uaes_hf.experiments.run_features import run_layers

KEYS: tuple[str, ...] = (
    "align",
    "extract.text_models",
    "extract.vision_models",
    "analyse.comparisons",
    "analyse.cluster_model",
    "analyse.n_clusters",
    "analyse.reference_model",
    "analyse.distribution_model",
)
DEPENDS_ON: tuple[str, ...] = ("prepare", "annotate", "extract")
# The cross-modal analyses: (text column of image_text, name of the analysis).
CROSSMODAL = (("caption", "image_caption"), ("poem", "image_poem"))


def _stacks(
    layout: RunLayout, dataset: str, models: list[str], records: Any, column: str | None = None
) -> dict[str, list[np.ndarray]]:
    return {m: run_layers(layout, dataset, m, records, column) for m in models}


def run_align(ctx: StageContext) -> dict[str, Any]:
    """Every comparison's matched subsets and the model x model tables (text and cross-modal)."""
    import pandas as pd
    from tqdm.auto import tqdm

    from uaes_hf.experiments.clusters import semantic_clusters
    from uaes_hf.experiments.comparisons import build_subsets
    from uaes_hf.experiments.convergence import model_pairs
    from uaes_hf.experiments.crossmodal import crossmodal_rows

    cfg = ctx.config
    al = cfg.align
    layout = RunLayout.for_stage(ctx)
    poems = pd.read_parquet(layout.annotated_poems)
    plain = pd.read_parquet(layout.plain_texts)
    tables = {"poems": poems, "plain_texts": plain}
    text_models = list(cfg.extract.text_models)
    stacks = {d: _stacks(layout, d, text_models, tables[d]) for d in TEXT_DATASETS}
    cluster_model = cfg.analyse.cluster_model
    cluster_poems = run_layers(layout, "poems", cluster_model, poems)[-1]
    labels = semantic_clusters(cluster_poems, cfg.analyse.n_clusters, cfg.seed)
    np.save(layout.cluster_labels, labels)
    found: list[dict[str, str]] = []
    dist_model = _distribution_model(cfg, layout, poems, found)
    aligned, aligned_features = None, None
    if layout.aligned_poems.is_file():
        aligned = pd.read_parquet(layout.aligned_poems)
        stacks[ALIGNED_POEMS] = _stacks(layout, ALIGNED_POEMS, text_models, aligned)
        aligned_features = run_layers(layout, ALIGNED_POEMS, dist_model, aligned)[-1]
    plan = build_subsets(
        poems,
        plain,
        cfg.analyse.comparisons,
        min_size=al.min_subset_size,
        seed=cfg.seed,
        plain_features=run_layers(layout, "plain_texts", dist_model, plain)[-1],
        poem_features=run_layers(layout, "poems", dist_model, poems)[-1],
        cluster_labels=labels,
        aligned_poems=aligned,
        aligned_features=aligned_features,
        match=al.match_sizes,
        distribution_model=dist_model,
    )
    plan.substitutions[:0] = found
    settings = dict(
        k=al.k,
        layer_selection=al.layers,
        max_layers=al.max_layers_per_model,
        fixed_layers=al.fixed_layers,
        n_permutations=al.n_permutations,
        n_bootstrap=al.n_bootstrap,
        ci_level=al.ci_level,
        seed=cfg.seed,
        rule=al.layer_selection,
        calibration=al.calibration,
        outlier_quantile=al.outlier_quantile,
        outlier_exact=al.outlier_exact,
        exclude_embedding_layer=al.exclude_embedding_layer,
    )
    images = pd.read_parquet(layout.image_text)
    vision = list(cfg.extract.vision_models) if len(images) > al.k + 1 else []
    if cfg.extract.vision_models and not vision:
        plan.substitute(
            "cross-modal convergence",
            f"{len(images)} image(s), too few for k={al.k}: no LLM x vision scores",
        )
    n_cells = len(plan.subsets) * len(model_pairs(text_models)) + 2 * len(text_models) * len(vision)
    bar = tqdm(total=n_cells, desc="align (model pairs)", disable=not ctx.show_progress)
    rows: list[dict[str, Any]] = []
    for subset in plan.subsets:
        bar.set_postfix_str(subset.name)
        rows += _convergence(stacks[subset.dataset], subset, settings, bar)
    if vision:
        vision_stacks = _stacks(layout, IMAGE_TEXT, vision, images, "image")
        for column, side in CROSSMODAL:
            bar.set_postfix_str(f"crossmodal/{side}")
            text_stacks = _stacks(layout, IMAGE_TEXT, text_models, images, column)
            vis_settings = {**settings}
            if al.layers == "fixed":  # vision models without a fixed layer use their last one
                vis_settings["fixed_layers"] = {**{v: -1 for v in vision}, **dict(al.fixed_layers)}
            rows += crossmodal_rows(
                text_stacks,
                vision_stacks,
                subset=f"crossmodal/{side}",
                progress=bar,
                **vis_settings,
            )
    bar.close()
    table = pd.DataFrame(rows)
    table.to_csv(layout.convergence, index=False)
    layout.subsets.write_text(
        json.dumps(
            {
                "subsets": [
                    {
                        "comparison": s.comparison,
                        "side": s.side,
                        "dataset": s.dataset,
                        "rows": s.indices.tolist(),
                    }
                    for s in plan.subsets
                ],
                "skipped": [vars(s) for s in plan.skipped],
                "notes": plan.notes,
                "substitutions": plan.substitutions,
            },
            indent=2,
            default=float,
        )
    )
    return {
        "n_rows": len(table),
        "n_subsets": len(plan.subsets),
        "skipped": [s.comparison for s in plan.skipped],
    }


def _distribution_model(
    cfg: Any, layout: RunLayout, poems: Any, found: list[dict[str, str]]
) -> str:
    """The model the distribution alignment is fitted in: ``analyse.distribution_model``,
    else the reference model; the cluster model (recorded) when it has no features."""
    from uaes_hf.experiments.analysis.inputs import reference_model
    from uaes_hf.experiments.fallbacks import record

    wanted = cfg.analyse.distribution_model or reference_model(cfg) or cfg.analyse.cluster_model
    try:
        run_layers(layout, "poems", wanted, poems.iloc[:1])
    except (FileNotFoundError, ValueError) as err:
        fallback = cfg.analyse.cluster_model
        record(
            found,
            "align",
            "distribution-alignment model",
            f"{wanted} has no features here ({type(err).__name__}); fitted in {fallback}",
        )
        return fallback
    return wanted


def _convergence(
    stacks: dict[str, list[np.ndarray]], subset: Any, settings: dict[str, Any], bar: Any
) -> list[dict[str, Any]]:
    from uaes_hf.experiments.convergence import convergence_rows

    return convergence_rows(
        stacks,
        subset.indices,
        subset=subset.name,
        comparison=subset.comparison,
        side=subset.side,
        progress=bar,
        **settings,
    )
