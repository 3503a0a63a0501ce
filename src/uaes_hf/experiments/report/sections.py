"""The report's figures, one function per report section, each with its numbers in the
caption. A section function adds ``(figure, draw)`` jobs to a :class:`FigureSet`; nothing is
drawn until :func:`uaes_hf.experiments.report.figures.draw_figures` runs the jobs.

Example:
    >>> from uaes_hf.experiments.report.results import Results
    >>> fs = FigureSet(Results(), dpi=50)
    >>> for section in SECTIONS:
    ...     section(fs)
    >>> fs.jobs
    []
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from uaes_hf.experiments.report.figure_set import FigureSet, fmt, p_text, subset_stats


def mode_text(summary: dict[str, Any]) -> str:
    """How the per-sample layers were chosen, in words.

    Example:
        >>> mode_text({"per_sample_mode": "max"}).split(":")[0]
        'INFLATED'
    """
    mode = summary.get("per_sample_mode", "heldout")
    if mode == "max":
        return (
            "INFLATED: the study's per-sample max over every searched layer pair, all "
            "samples; its chance level is the mean per-sample max under a permutation null "
            "with the same max, not k/(N-1)"
        )
    return (
        "layer pair chosen on a held-out half of the samples, scores on the other half"
        if mode == "heldout"
        else "fixed layers, all samples"
    )


def headline_figures(fs: FigureSet) -> None:
    """Headline statistics: the test over texts (intervals) and the lexical variants."""
    from uaes_hf.experiments import plots_stats

    results, summary = fs.results, fs.results.summary
    tests = results.get("text_tests")
    if not tests.empty:
        level = float(tests["ci_level"].iloc[0])
        lines = "; ".join(
            f"{r.comparison}: {r.observed:+.4f} [{fmt(r.ci_low, 4)}, {fmt(r.ci_high, 4)}], "
            f"p={p_text(r.p_value)}, {int(r.n_a_greater)}/{int(r.n_pairs)} pairs higher"
            for r in tests.itertuples()
        )
        fs.add(
            "Headline statistics",
            "headline_text_test",
            "The headline difference with an interval and a test over texts",
            f"Mean over model pairs of (mutual kNN on side A - side B), every model's layers "
            f"searched among {int(tests['max_layers'].iloc[0]) or 'all'} candidates (embedding "
            f"layer {tests['embedding_layer'].iloc[0]}). Bars: {level:.0%} interval from "
            f"{int(tests['n_subsamples'].iloc[0])} half-samples of each side (without "
            f"replacement, every neighbour set recomputed); p: two-sided, from "
            f"{int(tests['n_permutations'].iloc[0])} random splits of the two sides' pooled "
            f"texts (the null: both sides are draws from one pool). {lines}."
            + (
                " Where the sides' N differ (the study's sizes), the difference and its "
                "interval include the effect of N on mutual kNN (chance k/(N-1)); the random "
                "splits keep the sizes, so the p-value does not."
                if (tests["n_a"] != tests["n_b"]).any()
                else ""
            ),
            lambda p, t=tests: plots_stats.forest_plot(
                t, p, title="Headline differences (test over texts)", dpi=fs.dpi
            ),
        )
    variants = results.get("headline_variants")
    if not variants.empty:
        lines = "; ".join(
            f"{r.comparison} / {r.variant}: {r.mean_difference:+.4f} "
            f"({int(r.n_higher_on_a)}/{int(r.n_pairs)} higher on {r.side_a})"
            for r in variants.itertuples()
        )
        fs.add(
            "Headline statistics",
            "headline_variants",
            "How much of the agreement is lexical",
            "Each comparison's mean difference: as in the headline; with the embedding layer "
            "(layer 0, mean-pooled input embeddings: a bag of words) "
            + ("put back into" if summary.get("exclude_embedding_layer") else "left out of")
            + " the layer search; and each model's agreement with TF-IDF of the same texts "
            f"(a representation that knows only the words). {lines}.",
            lambda p, v=variants: plots_stats.variant_bars(
                v, p, title="Headline beside its lexical and embedding-layer variants", dpi=fs.dpi
            ),
        )


def convergence_figures(fs: FigureSet) -> None:
    """Model convergence on poems: the model x model heatmap with calibrated scores."""
    from uaes_hf.experiments import plots
    from uaes_hf.experiments.convergence import matrix

    conv, text_models = fs.convergence, fs.text_models
    if not conv.empty and text_models:
        base = conv[conv["subset"] == "poems_vs_plain/poems"]
        if not base.empty:
            values = matrix(conv, "poems_vs_plain/poems", text_models)
            cal = matrix(conv, "poems_vs_plain/poems", text_models, value="calibrated")
            fs.add(
                "Model convergence on poems",
                "convergence_poems",
                "Model x model mutual kNN on poems",
                f"Mutual kNN between every pair of text models on the poems (best layer pair, "
                f"search-corrected); each cell also shows its permutation-calibrated score. "
                f"{subset_stats(base)}. Models in config order.",
                lambda p, v=values, c=cal, ch=float(base["chance"].iloc[0]): plots.heatmap(
                    v,
                    text_models,
                    text_models,
                    f"Mutual kNN on poems (chance {ch:.3f})",
                    p,
                    dpi=fs.dpi,
                    calibrated=c,
                ),
            )


def aesthetic_factor_figures(fs: FigureSet) -> None:
    """The impact of aesthetic factors: left / difference / right heatmaps per comparison."""
    from uaes_hf.experiments import plots
    from uaes_hf.experiments.comparisons import COMPARISON_SIDES, COMPARISON_TITLES
    from uaes_hf.experiments.convergence import matrix

    conv, tests, text_models = fs.convergence, fs.tests, fs.text_models
    if not conv.empty and text_models:
        for comparison, sides in COMPARISON_SIDES.items():
            part = conv[conv["comparison"] == comparison]
            if part.empty:
                continue
            pairs = [(sides[0], sides[1])] if len(sides) == 2 else [(sides[1], sides[2])]
            for side_a, side_b in pairs:
                left = matrix(conv, f"{comparison}/{side_a}", text_models)
                right = matrix(conv, f"{comparison}/{side_b}", text_models)
                cals = (
                    matrix(conv, f"{comparison}/{side_a}", text_models, value="calibrated"),
                    matrix(conv, f"{comparison}/{side_b}", text_models, value="calibrated"),
                )
                test = (
                    tests[
                        (tests["comparison"] == comparison)
                        & (tests["side_a"] == side_a)
                        & (tests["side_b"] == side_b)
                        & (tests["quantity"] == "difference")
                    ]
                    if not tests.empty
                    else tests
                )
                a_rows = part[part["side"] == side_a]
                b_rows = part[part["side"] == side_b]
                chance = float(a_rows["chance"].iloc[0]) if len(a_rows) else None
                test_text = ""
                if not test.empty:
                    t = test.iloc[0]
                    test_text = (
                        f" Mean difference {side_a} - {side_b}: {float(t['mean_difference']):+.4f}; "
                        f"{int(t['n_a_greater'])}/{int(t['n_pairs'])} pairs higher on {side_a}; "
                        f"paired sign-flip p (two-sided) = {p_text(t['p_two_sided'])}, "
                        f"p ({side_a} > {side_b}) = {p_text(t['p_a_greater'])}."
                    )
                fs.add(
                    "The impact of aesthetic factors",
                    f"compare_{comparison}_{side_a}_{side_b}",
                    f"{COMPARISON_TITLES[comparison]}",
                    f"Left: {side_a} ({subset_stats(a_rows)}). Right: {side_b} "
                    f"({subset_stats(b_rows)}). Middle: left - right per pair. Both sides have "
                    f"the same N (matched by subsampling with a fixed seed).{test_text}",
                    lambda p, l_=left, r_=right, a=side_a, b=side_b, c=cals, ch=chance: (
                        plots.three_heatmaps(
                            l_, r_, text_models, (a, b), p, dpi=fs.dpi, calibrated=c, chance=ch
                        )
                    ),
                )


def capability_figures(fs: FigureSet) -> None:
    """Alignment vs capability: alignment with the reference model against IFEval and the
    Open LLM Leaderboard average (one figure, two panels, as the study plotted them), and
    against size."""
    from uaes_hf.experiments import plots, plots_stats

    results, summary = fs.results, fs.results.summary
    cap = results.get("capability")
    if cap.empty:
        return
    ref = summary.get("reference_model")
    scores = ("ifeval", "leaderboard_average")
    present = [c for c in scores if c in cap and cap[c].notna().any()]

    def lines(column: str) -> str:
        part = cap[cap[column].notna()] if column in cap else cap.iloc[:0]
        return "; ".join(
            f"{r.model} ({r.subset}): {fmt(r.score)} [{fmt(r.ci_low)}, {fmt(r.ci_high)}] at "
            f"{fmt(getattr(r, column), 2)}"
            for r in part.itertuples()
        )

    sources = sorted({str(x) for x in cap.get("score_source", []) if isinstance(x, str)})
    if present:  # no model of the run has a score: no empty panels (sizes still plotted)
        fs.add(
            "Alignment vs capability",
            "capability_scores",
            f"Alignment with {ref} vs IFEval and the leaderboard average",
            f"Mutual kNN of each model with the reference model {ref} against its IFEval "
            f"score (left) and its Open LLM Leaderboard average (right); circle area ~ "
            f"parameters, bars = bootstrap CI, dashed = chance. "
            + (f"Scores: {'; '.join(sources)}. " if sources else "")
            + f"IFEval: {lines('ifeval') or 'none recorded'}. Leaderboard average: "
            f"{lines('leaderboard_average') or 'none recorded'}.",
            lambda p, d=cap: plots_stats.capability_panels(
                d,
                scores,
                p,
                title=f"Alignment with {ref} vs capability",
                labels=("IFEval", "Open LLM Leaderboard average"),
                dpi=fs.dpi,
            ),
        )
    if "params_millions" in cap and cap["params_millions"].notna().any():
        part = cap[cap["params_millions"].notna()]
        group = "subset" if part["subset"].nunique() > 1 else None
        fs.add(
            "Alignment vs capability",
            "capability_params_millions",
            f"Alignment with {ref} vs parameters",
            f"Mutual kNN of each model with the reference model {ref} against its size "
            f"(millions of parameters). {lines('params_millions')}.",
            lambda p, d=part, g=group, r=ref: plots.capability_plot(
                d,
                "params_millions",
                p,
                title=f"Alignment with {r} vs size",
                group_column=g,
                dpi=fs.dpi,
            ),
        )


def bias_adjustment_figures(fs: FigureSet) -> None:
    """Adjustment to reduce bias: length histograms before/after alignment, t-SNE maps."""
    from uaes_hf.experiments import plots

    results, summary = fs.results, fs.results.summary
    lengths = results.get("lengths")
    if not lengths.empty:
        panels = []
        for panel, part in lengths.groupby("panel", sort=False):
            panels.append(
                (
                    str(panel),
                    {str(g): d["n_words"].to_numpy() for g, d in part.groupby("group", sort=False)},
                )
            )
        medians = "; ".join(
            f"{panel} / {g}: median {np.median(v):.0f} words (n={len(v)})"
            for panel, series in panels
            for g, v in series.items()
        )
        ks = summary.get("sampling_notes", {}).get("length_aligned", {})
        if ks:
            medians += (
                f"; Kolmogorov-Smirnov statistic poems vs plain texts {fmt(ks.get('ks_before'))} "
                f"before and {fmt(ks.get('ks_after'))} after alignment "
                f"({ks.get('sampled')} poems, no repeats"
                + (f"; from {ks['source']}" if ks.get("source") else "")
                + ")"
            )
        fs.add(
            "Adjustment to reduce bias",
            "length_histograms",
            "Length distributions before and after length-aligned sampling",
            f"Word counts of poems and plain texts before alignment and of the length-aligned "
            f"poem sample. {medians}.",
            lambda p, pn=panels: plots.length_histograms(pn, p, dpi=fs.dpi),
        )

    tsne = results.get("tsne")
    if not tsne.empty:
        for map_name, part in tsne.groupby("map", sort=False):
            counts = ", ".join(f"{k}: {v}" for k, v in part["label"].value_counts().items())
            fs.add(
                "Adjustment to reduce bias",
                f"tsne_{map_name}",
                f"t-SNE of {summary.get('tsne_model', '')} features: {map_name}",
                f"2-D t-SNE of the {summary.get('tsne_model', '')} features (layer "
                f"{summary.get('tsne_layer', '')}), coloured by {map_name}. Groups: {counts}.",
                lambda p, d=part, m=map_name: plots.scatter_map(
                    d, p, title=f"t-SNE: {m}", hue="label", dpi=fs.dpi
                ),
            )


def topics_figures(fs: FigureSet) -> None:
    """Behind aesthetics (topics): cosine similarity of the clusters, word clouds."""
    from uaes_hf.experiments import plots

    results, summary = fs.results, fs.results.summary
    cos = results.get("cluster_similarity")
    if not cos.empty:
        rows = "; ".join(
            f"{r.dataset}: {fmt(r.mean_cosine, 4)} (n={r.n})" for r in cos.itertuples()
        )
        fs.add(
            "Behind aesthetics: topics and rarity",
            "cluster_similarity",
            "Mean cosine similarity (all-MiniLM-L6-v2)",
            f"Mean pairwise cosine similarity of the {summary.get('cluster_model', '')} "
            f"embeddings, KMeans K={summary.get('n_clusters', 2)} on the poems (cluster 1 = "
            f"tighter). {rows}.",
            lambda p, d=cos: plots.bar_table(
                list(d["dataset"]),
                list(d["mean_cosine"]),
                p,
                title="Mean cosine similarity",
                ylabel="cosine",
                dpi=fs.dpi,
            ),
        )
    words = results.get("word_frequencies")
    if not words.empty and summary.get("wordclouds", True):
        for group, part in words.groupby("group", sort=False):
            ranked = part.sort_values("count", ascending=False).head(8)
            top = ", ".join(
                f"{w} ({int(c)})" for w, c in zip(ranked["word"], ranked["count"], strict=True)
            )
            fs.add(
                "Behind aesthetics: topics and rarity",
                f"wordcloud_{group}",
                f"Word cloud: {group}",
                f"Most frequent content words of {group} (stopwords removed): {top}.",
                lambda p, d=part, g=group: plots.word_cloud(
                    dict(zip(d["word"], d["count"], strict=False)), p, title=str(g), dpi=fs.dpi
                ),
            )


def per_sample_figures(fs: FigureSet) -> None:
    """Rarity and per-sample alignment: slopes on length, perplexity and score; perplexity."""
    from uaes_hf.experiments import plots

    results, summary, text_models = fs.results, fs.results.summary, fs.text_models
    per_sample = results.get("per_sample")
    slopes = results.get("per_sample_slopes")
    k = int(summary.get("k", 10))
    mode = mode_text(summary)
    if not per_sample.empty and not slopes.empty:
        text_part = per_sample[per_sample["analysis"] == "text"]
        text_slopes = slopes[slopes["analysis"] == "text"]
        for covariate, log_x in (
            ("n_words", False),
            ("perplexity", True),
            ("aesthetic_score", False),
        ):
            s = text_slopes[text_slopes["covariate"] == covariate]
            if s.empty or s["slope"].isna().all():
                continue
            positive = int((s["slope"] > 0).sum())
            significant = int((s["p_value"] < 0.05).sum())
            fs.add(
                "Rarity and per-sample alignment",
                f"per_sample_{covariate}",
                f"Per-sample alignment vs {covariate}",
                f"Per-sample mutual kNN of every text-model pair against {covariate} ({mode}). "
                f"N report = {int(summary.get('per_sample_n', 0))}, chance "
                f"{fmt(s['chance'].mean())}"
                + (
                    f" under the same max (one pair: {fmt(s['chance_one_pair'].iloc[0])})"
                    if "chance_one_pair" in s and s["chance_one_pair"].notna().any()
                    else ""
                )
                + ", mean "
                f"per-sample score {fmt(s['mean_score'].mean())}. Slope > 0 for {positive}/"
                f"{len(s)} pairs, p < 0.05 for {significant}; slope per SD of {covariate}: "
                + ", ".join(
                    f"{r.model_a}-{r.model_b} {r.slope_per_sd:+.4f}" for r in s.itertuples()
                )
                + ". Lower-left: jittered scatter with binned means; upper-right: fitted line.",
                lambda p, c=covariate, lx=log_x, d=text_part, sl=text_slopes: plots.slope_grid(
                    d,
                    sl,
                    text_models,
                    c,
                    p,
                    title=f"Per-sample alignment vs {c}",
                    k=k,
                    log_x=lx,
                    dpi=fs.dpi,
                ),
            )
    ppl = results.get("perplexity")
    if not ppl.empty:
        groups = {str(g): d["perplexity"].to_numpy() for g, d in ppl.groupby("dataset")}
        med = "; ".join(f"{g}: median {np.median(v):.1f} (n={len(v)})" for g, v in groups.items())
        fs.add(
            "Rarity and per-sample alignment",
            "perplexity_boxplot",
            "Perplexity of poems and plain texts",
            f"Perplexity under {summary.get('perplexity_model', '')} "
            + (
                "(also one of the compared text models here; the study used a model kept out "
                "of every other analysis, GPT-2). "
                if summary.get("perplexity_model") in text_models
                else "(a model used for nothing else, as in the study). "
            )
            + f"{med}.",
            lambda p, g=groups: plots.boxplot(
                g, p, title="Perplexity", ylabel="perplexity", log_y=True, dpi=fs.dpi
            ),
        )
        poems_ppl = ppl[(ppl["dataset"] == "poems") & ppl["aesthetic_score"].notna()]
        if not poems_ppl.empty:
            means = "; ".join(
                f"score {int(s)}: mean {d['perplexity'].mean():.1f} (n={len(d)})"
                for s, d in poems_ppl.groupby("aesthetic_score")
            )
            from uaes_hf.experiments.per_sample import fit_slope

            fit = fit_slope(
                poems_ppl["aesthetic_score"].to_numpy(), np.log(poems_ppl["perplexity"].to_numpy())
            )
            fs.add(
                "Rarity and per-sample alignment",
                "perplexity_vs_score",
                "Perplexity vs aesthetic score",
                f"Perplexity of each poem against its aesthetic score (jittered). {means}. "
                f"Slope of log-perplexity on score {fit['slope']:+.3f} (r={fmt(fit['r'])}, "
                f"p={p_text(fit['p_value'])}).",
                lambda p, d=poems_ppl: plots.jitter_scatter(
                    d["aesthetic_score"].to_numpy(),
                    d["perplexity"].to_numpy(),
                    p,
                    title="Perplexity vs aesthetic score",
                    xlabel="aesthetic score",
                    ylabel="perplexity",
                    log_y=True,
                    dpi=fs.dpi,
                ),
            )


def multimodal_figures(fs: FigureSet) -> None:
    """Multimodal convergence: LLM x vision heatmaps, convergence by image aesthetic level."""
    from uaes_hf.experiments import plots
    from uaes_hf.experiments.convergence import matrix

    results, summary = fs.results, fs.results.summary
    conv, text_models, vision_models = fs.convergence, fs.text_models, fs.vision_models
    slopes = results.get("per_sample_slopes")
    mode = mode_text(summary)
    if not conv.empty and vision_models:
        for subset, label in (
            ("crossmodal/image_caption", "image-caption pairs"),
            ("crossmodal/image_poem", "image-poem pairs"),
        ):
            part = conv[conv["subset"] == subset]
            if part.empty:
                continue
            values = matrix(conv, subset, text_models, models_b=vision_models)
            cal = matrix(conv, subset, text_models, value="calibrated", models_b=vision_models)
            chance = float(part["chance"].iloc[0])
            fs.add(
                "Multimodal convergence",
                f"crossmodal_{subset.split('/')[1]}",
                f"LLM x vision mutual kNN on {label}",
                f"Rows: text models on the {label.split('-')[1].split(' ')[0]}s; columns: vision "
                f"models on the images. {subset_stats(part)}. Not symmetric; no diagonal."
                + (
                    f" {summary.get('image_poem_duplicates')} of the {part['n'].iloc[0]} poems "
                    f"repeat another image's poem (retrieval reuses stanzas): their text-side "
                    f"neighbour sets are ambiguous."
                    if subset.endswith("image_poem") and summary.get("image_poem_duplicates")
                    else ""
                ),
                lambda p, v=values, t=label, c=cal, ch=chance: plots.heatmap(
                    v,
                    text_models,
                    vision_models,
                    f"Mutual kNN on {t} (chance {ch:.3f})",
                    p,
                    dpi=fs.dpi,
                    calibrated=c,
                ),
            )
    levels = results.get("crossmodal_levels")
    if not levels.empty and not slopes.empty:
        for analysis in ("image_caption", "image_poem"):
            s = slopes[
                (slopes["analysis"] == analysis) & (slopes["covariate"] == "image_aesthetic_level")
            ]
            if s.empty:
                continue
            values = np.full((len(text_models), len(vision_models)), np.nan)
            for r in s.itertuples():
                if r.model_a in text_models and r.model_b in vision_models:
                    values[text_models.index(r.model_a), vision_models.index(r.model_b)] = r.slope
            lv = levels[levels["analysis"] == analysis]
            level_means = "; ".join(
                f"level {int(lvl)}: {d['mean_score'].mean():.3f} (n={int(d['n'].iloc[0])})"
                for lvl, d in lv.groupby("image_aesthetic_level")
            )
            fs.add(
                "Multimodal convergence",
                f"levels_{analysis}",
                f"Convergence by image aesthetic level ({analysis.replace('_', '-')})",
                f"Slope of per-sample LLM x vision mutual kNN on the image aesthetic level "
                f"(positive = models agree more on more beautiful images; {mode}). "
                f"{int((s['slope'] > 0).sum())}/{len(s)} pairs positive. Mean per-sample score "
                f"per level over pairs: {level_means}.",
                lambda p, v=values: plots.heatmap(
                    v,
                    text_models,
                    vision_models,
                    "slope on aesthetic level",
                    p,
                    diverging=True,
                    dpi=fs.dpi,
                    colorbar_label="slope",
                ),
            )
            chance = float(s["chance"].iloc[0])
            fs.add(
                "Multimodal convergence",
                f"level_means_{analysis}",
                f"Per-sample convergence per image aesthetic level ({analysis.replace('_', '-')})",
                f"Mean per-sample LLM x vision mutual kNN at each image aesthetic level: one grey "
                f"line per model pair, the mean over the {len(s)} pairs in red, chance "
                f"{chance:.3f} dashed ({mode}). Means per level: {level_means}.",
                lambda p, d=lv, ch=chance, a=analysis: plots.level_lines(
                    d,
                    p,
                    title=f"Convergence by image level ({a.replace('_', '-')})",
                    chance=ch,
                    dpi=fs.dpi,
                ),
            )


# In the report's order: each section's figures follow the previous section's.
SECTIONS: tuple[Callable[[FigureSet], None], ...] = (
    headline_figures,
    convergence_figures,
    aesthetic_factor_figures,
    capability_figures,
    bias_adjustment_figures,
    topics_figures,
    per_sample_figures,
    multimodal_figures,
)
