"""The analyse stage: every derived result table and the summary, from the stage folders.

Reads prepare/annotate/extract/align outputs and writes ``results/*.csv`` and
``results/summary.json`` (the layout :func:`uaes_hf.experiments.report.load_results` reads).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from uaes_hf.experiments.pipeline import StageContext


def _tsne(features: np.ndarray, perplexity: float, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.asarray(features, np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    if x.shape[1] > 50 and x.shape[0] > 50:
        x = PCA(n_components=50, random_state=seed).fit_transform(x)
    perplexity = float(min(perplexity, max(2.0, (x.shape[0] - 1) / 3)))
    tsne = TSNE(n_components=2, perplexity=perplexity, random_state=seed, init="pca", max_iter=500)
    return tsne.fit_transform(x)


def analyse(ctx: StageContext) -> dict[str, Any]:  # noqa: C901 - a list of analyses
    """Run every analysis; write results into ``ctx.out_dir / 'results'``."""
    import pandas as pd
    from tqdm.auto import tqdm

    from uaes_hf.experiments.capability import capability_table, model_info
    from uaes_hf.experiments.clusters import cosine_similarity_table, word_frequencies
    from uaes_hf.experiments.comparisons import COMPARISON_SIDES, comparison_tests
    from uaes_hf.experiments.convergence import candidate_layers
    from uaes_hf.experiments.crossmodal import level_analysis
    from uaes_hf.experiments.per_sample import per_sample_alignment
    from uaes_hf.experiments.report import write_results
    from uaes_hf.experiments.stages import load_stack

    cfg = ctx.config
    an, al = cfg.analyse, cfg.align
    prep, ext, aligned = ctx.inputs["prepare"], ctx.inputs["extract"], ctx.inputs["align"]
    poems = pd.read_parquet(ctx.inputs["annotate"] / "poems.parquet")
    plain = pd.read_parquet(prep / "plain_texts.parquet")
    images = pd.read_parquet(prep / "image_text.parquet")
    convergence = pd.read_csv(aligned / "convergence.csv")
    plan = json.loads((aligned / "subsets.json").read_text())
    labels = np.load(aligned / "cluster_labels.npy")
    text_models = list(cfg.extract.text_models)
    vision_models = list(cfg.extract.vision_models) if len(images) > al.k + 1 else []
    reference = an.reference_model or (text_models[-1] if text_models else None)
    steps = [
        "differences",
        "per-sample",
        "cross-modal",
        "clusters",
        "capability",
        "t-SNE",
        "tables",
    ]
    bar = tqdm(steps, desc="analyse", disable=not ctx.show_progress)
    tables: dict[str, Any] = {}

    # Differences and paired sign-flip tests
    bar.set_postfix_str("differences")
    present = [c for c in an.comparisons if c in set(convergence["comparison"])]
    differences, tests = comparison_tests(
        convergence, present, n_flips=an.n_sign_flips, seed=cfg.seed
    )
    tables["convergence"] = convergence
    tables["differences"] = differences
    tables["comparison_tests"] = tests
    bar.update(1)

    # Per-sample alignment on the poems vs length, perplexity and aesthetic score
    bar.set_postfix_str("per-sample")
    perplexity = None
    ppl_path = ext / "perplexity.parquet"
    if ppl_path.is_file():
        perplexity = pd.read_parquet(ppl_path)
    covariates = {
        "n_words": poems["n_words"].to_numpy(float),
        "aesthetic_score": pd.to_numeric(poems["aesthetic_score"], errors="coerce").to_numpy(float),
    }
    if perplexity is not None:
        covariates["perplexity"] = perplexity[perplexity["dataset"] == "poems"][
            "perplexity"
        ].to_numpy(float)
    spaces, layer_ids, fixed = {}, {}, {}
    for model in text_models:
        layers = load_stack(ext, "poems", model)
        if an.per_sample_layers == "heldout":
            chosen = candidate_layers(len(layers), al.max_layers_per_model)
        else:
            chosen = [int(al.fixed_layers.get(model, -1)) % len(layers)]
        spaces[model] = [layers[i] for i in chosen]
        layer_ids[model] = chosen
        fixed[model] = 0
    from uaes_hf.experiments.convergence import model_pairs

    per_sample_frames, slope_frames, layer_frames = [], [], []
    per_sample_n = 0
    if len(text_models) >= 2 and len(poems) > 2 * (al.k + 2):
        result = per_sample_alignment(
            spaces,
            model_pairs(text_models),
            covariates,
            k=al.k,
            mode=an.per_sample_layers,
            fixed_layers=fixed,
            layer_ids=layer_ids,
            seed=cfg.seed,
            sample_ids=poems["id"].to_numpy(),
        )
        per_sample_n = result.n_report
        per_sample_frames.append(result.scores.assign(analysis="text"))
        slope_frames.append(result.slopes.assign(analysis="text"))
        layer_frames.append(result.layers.assign(analysis="text"))
    bar.update(1)

    # Cross-modal convergence by image aesthetic level
    bar.set_postfix_str("cross-modal")
    level_frames = []
    if vision_models and len(images) > 2 * (al.k + 2):
        vision = {m: load_stack(ext, "images", m) for m in vision_models}
        for dataset, analysis in (
            ("image_captions", "image_caption"),
            ("image_poems", "image_poem"),
        ):
            text = {m: load_stack(ext, dataset, m) for m in text_models}
            result, means = level_analysis(
                text,
                vision,
                images["image_aesthetic_level"].to_numpy(float),
                k=al.k,
                mode=an.per_sample_layers,
                max_layers=al.max_layers_per_model,
                seed=cfg.seed,
                sample_ids=images["id"].to_numpy(),
            )
            per_sample_frames.append(result.scores.assign(analysis=analysis))
            slope_frames.append(result.slopes.assign(analysis=analysis))
            layer_frames.append(result.layers.assign(analysis=analysis))
            level_frames.append(means.assign(analysis=analysis))
    tables["per_sample"] = (
        pd.concat(per_sample_frames, ignore_index=True) if per_sample_frames else None
    )
    tables["per_sample_slopes"] = (
        pd.concat(slope_frames, ignore_index=True) if slope_frames else None
    )
    tables["per_sample_layers"] = (
        pd.concat(layer_frames, ignore_index=True) if layer_frames else None
    )
    tables["crossmodal_levels"] = (
        pd.concat(level_frames, ignore_index=True) if level_frames else None
    )
    bar.update(1)

    # Semantic clusters: cosine table, word frequencies
    bar.set_postfix_str("clusters")
    emb_poems = load_stack(ext, "poems", an.cluster_model)[-1]
    emb_plain = load_stack(ext, "plain_texts", an.cluster_model)[-1]
    tables["cluster_similarity"] = cosine_similarity_table(emb_plain, emb_poems, labels)
    words = []
    if cfg.report.wordclouds:
        groups = {"poems": list(poems["text"]), "plain_texts": list(plain["text"])}
        for label in range(int(labels.max()) + 1):
            groups[f"poems_cluster_{label + 1}"] = list(poems["text"][labels == label])
        for group, texts in groups.items():
            for word, count in word_frequencies(texts).items():
                words.append({"group": group, "word": word, "count": count})
    tables["word_frequencies"] = pd.DataFrame(words) if words else None
    bar.update(1)

    # Alignment vs capability (reference model)
    bar.set_postfix_str("capability")
    subsets = [
        s
        for s in (
            "poems_vs_plain/poems",
            "poems_vs_plain/plain_texts",
            "clusters/poems",
            "clusters/cluster_1",
            "clusters/cluster_2",
        )
        if s in set(convergence["subset"])
    ]
    info = model_info(text_models, an.capability)
    tables["capability"] = (
        capability_table(convergence, reference, subsets, info) if reference else None
    )
    bar.update(1)

    # t-SNE maps of the reference (or tsne_model) features
    bar.set_postfix_str("t-SNE")
    tsne_model = an.tsne_model or reference
    tsne_layer = None
    if cfg.report.tsne and tsne_model:
        poem_layers = load_stack(ext, "poems", tsne_model)
        plain_layers = load_stack(ext, "plain_texts", tsne_model)
        tsne_layer = len(poem_layers) - 1
        maps = []
        scores = pd.to_numeric(poems["aesthetic_score"], errors="coerce")
        if scores.notna().sum() > 10:
            keep = scores.notna().to_numpy()
            xy = _tsne(poem_layers[-1][keep], an.tsne_perplexity, cfg.seed)
            maps.append(
                pd.DataFrame(
                    {
                        "map": "aesthetic score",
                        "x": xy[:, 0],
                        "y": xy[:, 1],
                        "label": scores[keep].astype(int).astype(str).to_numpy(),
                    }
                )
            )
        from uaes_hf.data.lengths import split_at_median

        xy = _tsne(poem_layers[-1], an.tsne_perplexity, cfg.seed)
        maps.append(
            pd.DataFrame(
                {
                    "map": "length",
                    "x": xy[:, 0],
                    "y": xy[:, 1],
                    "label": split_at_median(list(poems["n_words"])),
                }
            )
        )
        both = np.vstack([poem_layers[-1], plain_layers[-1]])
        xy = _tsne(both, an.tsne_perplexity, cfg.seed)
        maps.append(
            pd.DataFrame(
                {
                    "map": "poems vs plain texts",
                    "x": xy[:, 0],
                    "y": xy[:, 1],
                    "label": ["poem"] * len(poems) + ["plain text"] * len(plain),
                }
            )
        )
        tables["tsne"] = pd.concat(maps, ignore_index=True)
    bar.update(1)

    # Length and perplexity tables
    bar.set_postfix_str("tables")
    length_rows = [
        pd.DataFrame(
            {
                "panel": "before alignment",
                "group": "plain texts",
                "n_words": plain["n_words"].to_numpy(),
            }
        ),
        pd.DataFrame(
            {"panel": "before alignment", "group": "poems", "n_words": poems["n_words"].to_numpy()}
        ),
    ]
    aligned_side = next(
        (
            s
            for s in plan["subsets"]
            if s["comparison"] == "length_aligned" and s["side"] == "poems_length_aligned"
        ),
        None,
    )
    aligned_rows = None
    if aligned_side is not None:
        aligned_rows = aligned_side["rows"]
        if aligned_side["dataset"] != "poems":  # the repo's own length-aligned set
            aligned_words = pd.read_parquet(prep / f"{aligned_side['dataset']}.parquet")["n_words"]
        else:
            aligned_words = poems["n_words"]
    if aligned_rows is not None:
        length_rows += [
            pd.DataFrame(
                {
                    "panel": "after alignment",
                    "group": "plain texts",
                    "n_words": plain["n_words"].to_numpy(),
                }
            ),
            pd.DataFrame(
                {
                    "panel": "after alignment",
                    "group": "poems (length-aligned)",
                    "n_words": aligned_words.to_numpy()[aligned_rows],
                }
            ),
        ]
    tables["lengths"] = pd.concat(length_rows, ignore_index=True)
    if perplexity is not None:
        frame = perplexity[["dataset", "row", "perplexity", "bits_per_byte"]].copy()
        frame["aesthetic_score"] = np.nan
        frame["n_words"] = np.nan
        mask = frame["dataset"] == "poems"
        frame.loc[mask, "aesthetic_score"] = covariates["aesthetic_score"][frame.loc[mask, "row"]]
        frame.loc[mask, "n_words"] = poems["n_words"].to_numpy()[frame.loc[mask, "row"]]
        pmask = frame["dataset"] == "plain_texts"
        frame.loc[pmask, "n_words"] = plain["n_words"].to_numpy()[frame.loc[pmask, "row"]]
        tables["perplexity"] = frame
    bar.update(1)
    bar.close()

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
        if not row.empty:
            r = row.iloc[0]
            headline.append(
                {
                    "comparison": comparison,
                    "side_a": side_a,
                    "side_b": side_b,
                    "n": int(r["n"]),
                    "mean_difference": float(r["mean_difference"]),
                    "n_a_greater": int(r["n_a_greater"]),
                    "n_pairs": int(r["n_pairs"]),
                    "p_two_sided": float(r["p_two_sided"]),
                    "p_a_greater": float(r["p_a_greater"]),
                    "exact": bool(r["exact"]),
                }
            )
    summary = {
        "name": cfg.name,
        "title": cfg.report.title,
        "config": cfg.to_dict(),
        "k": al.k,
        "layer_selection": al.layers,
        "max_layers_per_model": al.max_layers_per_model,
        "n_permutations": al.n_permutations,
        "n_bootstrap": al.n_bootstrap,
        "per_sample_mode": an.per_sample_layers,
        "per_sample_n": per_sample_n,
        "models": {"text": text_models, "vision": vision_models},
        "model_info": model_info([*text_models, *vision_models], an.capability),
        "reference_model": reference,
        "cluster_model": an.cluster_model,
        "distribution_alignment_model": an.cluster_model,
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
        "skipped": plan["skipped"],
        "sampling_notes": plan["notes"],
        "headline": headline,
    }
    write_results(Path(ctx.out_dir) / "results", tables, summary)
    return {
        "headline": [
            (h["comparison"], round(h["mean_difference"], 4), round(h["p_two_sided"], 4))
            for h in headline
        ]
    }
