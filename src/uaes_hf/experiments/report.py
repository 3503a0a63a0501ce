"""The report: results as CSV/JSON, figures as PNG, ``index.html`` with captions, and a
console summary of the headline comparisons.

Layout of a report folder::

    index.html                 every figure, captioned with what it shows and its numbers
    figures/*.png
    results/<table>.csv        tidy tables (see RESULT_TABLES)
    results/summary.json       sizes, models, settings, headline tests, skipped comparisons
    results/figures.json       file, title and caption of every figure
    results/timings.csv        per-stage wall time of the run that wrote the report

:func:`load_results` is the stable entry point for other code (the Gradio Space).

Example:
    >>> from uaes_hf.experiments.report import load_results  # doctest: +SKIP
    >>> res = load_results("report")  # doctest: +SKIP
    >>> res["convergence"].columns[:4].tolist()  # doctest: +SKIP
    ['subset', 'comparison', 'side', 'model_a']
"""

from __future__ import annotations

import html
import json
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

RESULT_TABLES: dict[str, str] = {
    "convergence": "model x model mutual kNN, one row per (subset, model A, layer A, model B, "
    "layer B, metric, k, N) with score, chance, calibrated, p_value, ci_low, ci_high",
    "differences": "per model pair, score on side A minus side B of each comparison",
    "comparison_tests": "paired sign-flip tests across model pairs for each comparison",
    "per_sample": "per-sample mutual kNN (held-out half or fixed layers) with covariates",
    "per_sample_slopes": "fitted slope of per-sample alignment on each covariate, per pair",
    "per_sample_layers": "the layer pair used per model pair in the per-sample analyses",
    "crossmodal_levels": "mean per-sample LLM x vision alignment per image aesthetic level",
    "cluster_similarity": "mean pairwise cosine similarity of plain texts, poems and clusters",
    "capability": "alignment with the reference model vs model capability",
    "tsne": "2-D t-SNE coordinates of the reference model's features",
    "lengths": "word counts of the compared sets (length histograms)",
    "word_frequencies": "content-word counts for the word clouds",
    "perplexity": "per-text perplexity (rarity) with length and aesthetic score",
}
RESULTS_DIR = "results"
FIGURES_DIR = "figures"


@dataclass
class Results:
    """Everything a report holds: tables, summary, figure list, timings."""

    tables: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    figures: list[dict[str, str]] = field(default_factory=list)
    timings: Any = None

    def __getitem__(self, name: str) -> Any:
        if name not in self.tables:
            raise KeyError(f"no results table {name!r}; available: {sorted(self.tables)}")
        return self.tables[name]

    def get(self, name: str) -> Any:
        """The table, or an empty DataFrame when the run did not produce it."""
        import pandas as pd

        return self.tables.get(name, pd.DataFrame())


def write_results(
    results_dir: str | Path, tables: Mapping[str, Any], summary: Mapping[str, Any]
) -> Path:
    """Write every table as CSV and the summary as JSON into ``results_dir``."""
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        if table is None:
            continue
        table.to_csv(results_dir / f"{name}.csv", index=False)
    (results_dir / "summary.json").write_text(
        json.dumps(dict(summary), indent=2, sort_keys=True, default=_json_default), "utf-8"
    )
    return results_dir


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def load_results(report_dir: str | Path) -> Results:
    """Load a report's results (``report_dir`` or its ``results/`` folder).

    Raises:
        ValueError: the folder holds no ``summary.json`` (not a report).

    Example:
        >>> load_results("report")["convergence"].shape  # doctest: +SKIP
    """
    import pandas as pd

    folder = Path(report_dir)
    if (folder / RESULTS_DIR / "summary.json").is_file():
        folder = folder / RESULTS_DIR
    summary_path = folder / "summary.json"
    if not summary_path.is_file():
        raise ValueError(
            f"{str(report_dir)!r} is not a uaes report: no results/summary.json (run `uaes run`)"
        )
    tables = {}
    for path in sorted(folder.glob("*.csv")):
        if path.stem == "timings":
            continue
        try:
            tables[path.stem] = pd.read_csv(path)
        except pd.errors.EmptyDataError:
            tables[path.stem] = pd.DataFrame()
    figures_path = folder / "figures.json"
    timings_path = folder / "timings.csv"
    return Results(
        tables=tables,
        summary=json.loads(summary_path.read_text("utf-8")),
        figures=json.loads(figures_path.read_text("utf-8")) if figures_path.is_file() else [],
        timings=pd.read_csv(timings_path) if timings_path.is_file() else None,
    )


# ---------------------------------------------------------------------------------------------
# Figures


@dataclass
class Figure:
    """One figure of the report."""

    file: str
    title: str
    caption: str
    section: str


def _fmt(x: Any, digits: int = 3) -> str:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not np.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"


def _p(x: Any) -> str:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return str(x)
    return "n/a" if not np.isfinite(value) else f"{value:.3g}"


def _subset_stats(table: Any) -> str:
    if table.empty:
        return "no pairs"
    return (
        f"N={int(table['n'].iloc[0])}, k={int(table['k'].iloc[0])}, chance "
        f"{_fmt(table['chance'].iloc[0])}; scores {_fmt(table['score'].min())}-"
        f"{_fmt(table['score'].max())} (mean {_fmt(table['score'].mean())}), calibrated mean "
        f"{_fmt(table['calibrated'].mean())}, {int((table['p_value'] < 0.05).sum())}/"
        f"{len(table)} pairs with permutation p < 0.05 (layer search corrected)"
        + (
            f", mean bootstrap CI half-width {_fmt(half.mean())}"
            if (half := (table["ci_high"] - table["ci_low"]) / 2).notna().any()
            else ""
        )
    )


def draw_figures(
    results: Results, out_dir: str | Path, *, dpi: int = 110, show_progress: bool = True
) -> list[Figure]:
    """Draw every figure the results support into ``out_dir/figures``; return their list."""
    from tqdm.auto import tqdm

    from uaes_hf.experiments import plots
    from uaes_hf.experiments.comparisons import COMPARISON_SIDES, COMPARISON_TITLES
    from uaes_hf.experiments.convergence import matrix

    out_dir = Path(out_dir)
    fig_dir = out_dir / FIGURES_DIR
    fig_dir.mkdir(parents=True, exist_ok=True)
    summary = results.summary
    text_models = list(summary.get("models", {}).get("text", []))
    vision_models = list(summary.get("models", {}).get("vision", []))
    conv = results.get("convergence")
    tests = results.get("comparison_tests")
    figures: list[Figure] = []
    jobs: list[Any] = []

    def add(section: str, name: str, title: str, caption: str, draw: Any) -> None:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        jobs.append((Figure(f"{FIGURES_DIR}/{safe}.png", title, caption, section), draw))

    # 1. Convergence on poems (all poems, and every side of every comparison)
    if not conv.empty and text_models:
        base = conv[conv["subset"] == "poems_vs_plain/poems"]
        if not base.empty:
            values = matrix(conv, "poems_vs_plain/poems", text_models)
            cal = matrix(conv, "poems_vs_plain/poems", text_models, value="calibrated")
            add(
                "Model convergence on poems",
                "convergence_poems",
                "Model x model mutual kNN on poems",
                f"Mutual kNN between every pair of text models on the poems (best layer pair, "
                f"search-corrected); each cell also shows its permutation-calibrated score. "
                f"{_subset_stats(base)}. Models in config order.",
                lambda p, v=values, c=cal, ch=float(base["chance"].iloc[0]): plots.heatmap(
                    v,
                    text_models,
                    text_models,
                    f"Mutual kNN on poems (chance {ch:.3f})",
                    p,
                    dpi=dpi,
                    calibrated=c,
                ),
            )
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
                        f"paired sign-flip p (two-sided) = {_p(t['p_two_sided'])}, "
                        f"p ({side_a} > {side_b}) = {_p(t['p_a_greater'])}."
                    )
                add(
                    "The impact of aesthetic factors",
                    f"compare_{comparison}_{side_a}_{side_b}",
                    f"{COMPARISON_TITLES[comparison]}",
                    f"Left: {side_a} ({_subset_stats(a_rows)}). Right: {side_b} "
                    f"({_subset_stats(b_rows)}). Middle: left - right per pair. Both sides have "
                    f"the same N (matched by subsampling with a fixed seed).{test_text}",
                    lambda p, l_=left, r_=right, a=side_a, b=side_b, c=cals, ch=chance: (
                        plots.three_heatmaps(
                            l_, r_, text_models, (a, b), p, dpi=dpi, calibrated=c, chance=ch
                        )
                    ),
                )

    # 2. Alignment vs capability
    cap = results.get("capability")
    if not cap.empty:
        for column in [
            c
            for c in ("ifeval", "leaderboard_average", "params_millions")
            if c in cap and cap[c].notna().any()
        ]:
            part = cap[cap[column].notna()]
            ref = summary.get("reference_model")
            group = "subset" if part["subset"].nunique() > 1 else None
            lines = "; ".join(
                f"{r.model} ({r.subset}): {_fmt(r.score)} [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]"
                for r in part.itertuples()
            )
            add(
                "Alignment vs capability",
                f"capability_{column}",
                f"Alignment with {ref} vs {column}",
                f"Mutual kNN of each model with the reference model {ref} against {column} "
                f"(circle area ~ parameters; bars = bootstrap CI). {lines}.",
                lambda p, d=part, c=column, g=group, r=ref: plots.capability_plot(
                    d, c, p, title=f"Alignment with {r} vs {c}", group_column=g, dpi=dpi
                ),
            )

    # 3. Lengths
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
                f"; Kolmogorov-Smirnov statistic poems vs plain texts {_fmt(ks.get('ks_before'))} "
                f"before and {_fmt(ks.get('ks_after'))} after alignment "
                f"({ks.get('sampled')} poems, no repeats"
                + (f"; from {ks['source']}" if ks.get("source") else "")
                + ")"
            )
        add(
            "Adjustment to reduce bias",
            "length_histograms",
            "Length distributions before and after length-aligned sampling",
            f"Word counts of poems and plain texts before alignment and of the length-aligned "
            f"poem sample. {medians}.",
            lambda p, pn=panels: plots.length_histograms(pn, p, dpi=dpi),
        )

    # 4. t-SNE maps
    tsne = results.get("tsne")
    if not tsne.empty:
        for map_name, part in tsne.groupby("map", sort=False):
            counts = ", ".join(f"{k}: {v}" for k, v in part["label"].value_counts().items())
            add(
                "Adjustment to reduce bias",
                f"tsne_{map_name}",
                f"t-SNE of {summary.get('tsne_model', '')} features: {map_name}",
                f"2-D t-SNE of the {summary.get('tsne_model', '')} features (layer "
                f"{summary.get('tsne_layer', '')}), coloured by {map_name}. Groups: {counts}.",
                lambda p, d=part, m=map_name: plots.scatter_map(
                    d, p, title=f"t-SNE: {m}", hue="label", dpi=dpi
                ),
            )

    # 5. Semantic clusters and word clouds
    cos = results.get("cluster_similarity")
    if not cos.empty:
        rows = "; ".join(
            f"{r.dataset}: {_fmt(r.mean_cosine, 4)} (n={r.n})" for r in cos.itertuples()
        )
        add(
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
                dpi=dpi,
            ),
        )
    words = results.get("word_frequencies")
    if not words.empty and summary.get("wordclouds", True):
        for group, part in words.groupby("group", sort=False):
            ranked = part.sort_values("count", ascending=False).head(8)
            top = ", ".join(
                f"{w} ({int(c)})" for w, c in zip(ranked["word"], ranked["count"], strict=True)
            )
            add(
                "Behind aesthetics: topics and rarity",
                f"wordcloud_{group}",
                f"Word cloud: {group}",
                f"Most frequent content words of {group} (stopwords removed): {top}.",
                lambda p, d=part, g=group: plots.word_cloud(
                    dict(zip(d["word"], d["count"], strict=False)), p, title=str(g), dpi=dpi
                ),
            )

    # 6. Per-sample analyses
    per_sample = results.get("per_sample")
    slopes = results.get("per_sample_slopes")
    k = int(summary.get("k", 10))
    mode = summary.get("per_sample_mode", "heldout")
    mode_text = (
        "layer pair chosen on a held-out half of the samples, scores on the other half"
        if mode == "heldout"
        else "fixed layers, all samples"
    )
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
            add(
                "Rarity and per-sample alignment",
                f"per_sample_{covariate}",
                f"Per-sample alignment vs {covariate}",
                f"Per-sample mutual kNN of every text-model pair against {covariate} ({mode_text}; "
                f"never a per-sample max over layer pairs). N report = "
                f"{int(summary.get('per_sample_n', 0))}, chance {_fmt(s['chance'].iloc[0])}, mean "
                f"per-sample score {_fmt(s['mean_score'].mean())}. Slope > 0 for {positive}/"
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
                    dpi=dpi,
                ),
            )
    ppl = results.get("perplexity")
    if not ppl.empty:
        groups = {str(g): d["perplexity"].to_numpy() for g, d in ppl.groupby("dataset")}
        med = "; ".join(f"{g}: median {np.median(v):.1f} (n={len(v)})" for g, v in groups.items())
        add(
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
                g, p, title="Perplexity", ylabel="perplexity", log_y=True, dpi=dpi
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
            add(
                "Rarity and per-sample alignment",
                "perplexity_vs_score",
                "Perplexity vs aesthetic score",
                f"Perplexity of each poem against its aesthetic score (jittered). {means}. "
                f"Slope of log-perplexity on score {fit['slope']:+.3f} (r={_fmt(fit['r'])}, "
                f"p={_p(fit['p_value'])}).",
                lambda p, d=poems_ppl: plots.jitter_scatter(
                    d["aesthetic_score"].to_numpy(),
                    d["perplexity"].to_numpy(),
                    p,
                    title="Perplexity vs aesthetic score",
                    xlabel="aesthetic score",
                    ylabel="perplexity",
                    log_y=True,
                    dpi=dpi,
                ),
            )

    # 7. Cross-modal
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
            add(
                "Multimodal convergence",
                f"crossmodal_{subset.split('/')[1]}",
                f"LLM x vision mutual kNN on {label}",
                f"Rows: text models on the {label.split('-')[1].split(' ')[0]}s; columns: vision "
                f"models on the images. {_subset_stats(part)}. Not symmetric; no diagonal."
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
                    dpi=dpi,
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
            add(
                "Multimodal convergence",
                f"levels_{analysis}",
                f"Convergence by image aesthetic level ({analysis.replace('_', '-')})",
                f"Slope of per-sample LLM x vision mutual kNN on the image aesthetic level "
                f"(positive = models agree more on more beautiful images; {mode_text}). "
                f"{int((s['slope'] > 0).sum())}/{len(s)} pairs positive. Mean per-sample score "
                f"per level over pairs: {level_means}.",
                lambda p, v=values: plots.heatmap(
                    v,
                    text_models,
                    vision_models,
                    "slope on aesthetic level",
                    p,
                    diverging=True,
                    dpi=dpi,
                    colorbar_label="slope",
                ),
            )
            chance = float(s["chance"].iloc[0])
            add(
                "Multimodal convergence",
                f"level_means_{analysis}",
                f"Per-sample convergence per image aesthetic level ({analysis.replace('_', '-')})",
                f"Mean per-sample LLM x vision mutual kNN at each image aesthetic level: one grey "
                f"line per model pair, the mean over the {len(s)} pairs in red, chance "
                f"{chance:.3f} dashed ({mode_text}). Means per level: {level_means}.",
                lambda p, d=lv, ch=chance, a=analysis: plots.level_lines(
                    d,
                    p,
                    title=f"Convergence by image level ({a.replace('_', '-')})",
                    chance=ch,
                    dpi=dpi,
                ),
            )

    bar = tqdm(jobs, desc="report figures", unit="fig", disable=not show_progress)
    for figure, draw in bar:
        draw(out_dir / figure.file)
        figures.append(figure)
    return figures


# ---------------------------------------------------------------------------------------------
# HTML and console


def _table_html(table: Any, columns: Sequence[str] | None = None, digits: int = 4) -> str:
    if table is None or table.empty:
        return "<p><em>none</em></p>"
    table = table[list(columns)] if columns else table
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = []
    for row in table.itertuples(index=False):
        cells = []
        for value in row:
            if isinstance(value, float):
                text = "n/a" if not np.isfinite(value) else f"{value:.{digits}g}"
            else:
                text = str(value)
            cells.append(f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}figure{margin:1.5em 0;border-top:1px solid #ddd;padding-top:1em}img{max-width:100%}
figcaption{font-size:.9em;color:#333}table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f3f3f3}
.note{background:#fff8e1;padding:.5em 1em;border-left:4px solid #f0c000}"""


def render_html(results: Results, figures: Sequence[Figure], timings: Any = None) -> str:
    """The report page (self-contained HTML referencing ``figures/*.png``)."""
    s = results.summary
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(s.get('title', 'uaes report'))}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(s.get('title', 'uaes report'))}</h1>",
        f"<p>Experiment <b>{html.escape(str(s.get('name', '')))}</b>; text models: "
        f"{html.escape(', '.join(s.get('models', {}).get('text', [])))}; vision models: "
        f"{html.escape(', '.join(s.get('models', {}).get('vision', [])) or 'none')}. "
        f"Sizes: {html.escape(json.dumps(s.get('sizes', {})))}. Mutual kNN with k={s.get('k')}, "
        f"layer selection <b>{html.escape(str(s.get('layer_selection')))}</b> "
        f"({s.get('n_permutations')} permutations, {s.get('n_bootstrap')} bootstrap "
        f"replicates). Per-sample analyses: <b>{html.escape(str(s.get('per_sample_mode')))}</b>.</p>",
        "<p class='note'>How to read the numbers: <b>chance</b> is k/(N-1), the expected score "
        "of unrelated spaces. <b>calibrated</b> = (score - tau)/(1 - tau) with tau the 95% "
        "quantile of a permutation null that relabels model B's samples in every searched "
        "layer and keeps the max over layer pairs (so the layer search is corrected); 0 means "
        "no better than chance. <b>p</b> is the add-one permutation p-value; CIs are "
        "percentile bootstrap intervals over samples (neighbour sets fixed). Compared subsets "
        "have equal N. Paired tests flip the sign of the per-pair differences; model pairs "
        "share models, so they are not independent and the p-values are indicative.</p>",
        "<p class='note'>Per-sample analyses (length, perplexity, aesthetic score, image "
        "aesthetic level) never take a per-sample max over layer pairs, which inflates the "
        "score several-fold above chance. "
        + (
            "Here the layer pair of each model pair is chosen on a <b>held-out half</b> of the "
            "samples and per-sample scores are reported on the other half"
            if s.get("per_sample_mode", "heldout") == "heldout"
            else "Here every model uses a <b>fixed layer</b> (align.fixed_layers, else its last)"
        )
        + f" (N = {s.get('per_sample_n', 'n/a')} reported poems; chance k/(N-1)).</p>",
    ]
    headline = s.get("headline", [])
    if headline:
        import pandas as pd

        parts.append("<h2>Headline comparisons</h2>")
        parts.append(_table_html(pd.DataFrame(headline)))
    skipped = s.get("skipped", [])
    if skipped:
        parts.append("<h2>Comparisons not run</h2><ul>")
        parts += [
            f"<li>{html.escape(x['comparison'])}: {html.escape(x['reason'])}</li>" for x in skipped
        ]
        parts.append("</ul>")
    section = None
    for figure in figures:
        if figure.section != section:
            section = figure.section
            parts.append(f"<h2>{html.escape(section)}</h2>")
        parts.append(
            f"<figure><img src='{html.escape(figure.file)}' alt='{html.escape(figure.title)}'>"
            f"<figcaption><b>{html.escape(figure.title)}.</b> {html.escape(figure.caption)}"
            f"</figcaption></figure>"
        )
    cos = results.get("cluster_similarity")
    if not cos.empty:
        parts.append("<h2>Cosine similarity table</h2>" + _table_html(cos))
    parts.append("<h2>Results files</h2><ul>")
    for name, text in RESULT_TABLES.items():
        if name in results.tables:
            parts.append(
                f"<li><a href='results/{name}.csv'>results/{name}.csv</a>: {html.escape(text)}</li>"
            )
    parts.append("<li><a href='results/summary.json'>results/summary.json</a></li></ul>")
    if timings is not None and len(timings):
        total = float(timings["seconds"].sum())
        parts.append(f"<h2>Run timings</h2><p>Total {total:.1f} s in this run.</p>")
        parts.append(_table_html(timings))
    parts.append("</body></html>")
    return "\n".join(parts)


def console_summary(results: Results) -> str:
    """Plain-text summary of the headline comparisons (printed by ``uaes run``).

    One line per comparison: mean mutual kNN on each side (equal N) with the chance level and
    the mean permutation-calibrated score, then the paired sign-flip test across model pairs.
    """
    s = results.summary
    conv = results.get("convergence")
    lines = [
        f"== {s.get('title', 'uaes report')} ==",
        f"k={s.get('k')}  layer selection={s.get('layer_selection')}  "
        f"per-sample={s.get('per_sample_mode')}  sizes={s.get('sizes')}",
    ]

    def side_text(comparison: str, side: str) -> str:
        if conv.empty:
            return side
        part = conv[conv["subset"] == f"{comparison}/{side}"]
        if part.empty:
            return side
        return f"{side} {part['score'].mean():.3f} (cal {part['calibrated'].mean():+.3f})"

    for row in s.get("headline", []):
        comparison, a, b = row["comparison"], row["side_a"], row["side_b"]
        chance = ""
        if not conv.empty and (conv["comparison"] == comparison).any():
            chance = f", chance {conv.loc[conv['comparison'] == comparison, 'chance'].iloc[0]:.3f}"
        lines.append(
            f"{comparison:<24} {side_text(comparison, a)} vs {side_text(comparison, b)} "
            f"(N={row['n']}{chance}): diff {row['mean_difference']:+.4f}, "
            f"{row['n_a_greater']}/{row['n_pairs']} pairs higher on {a}, "
            f"sign-flip p={_p(row['p_two_sided'])}"
        )
    if not conv.empty:
        for subset, label in (
            ("crossmodal/image_caption", "LLM x vision, image-caption"),
            ("crossmodal/image_poem", "LLM x vision, image-poem"),
        ):
            part = conv[conv["subset"] == subset]
            if not part.empty:
                lines.append(
                    f"{label:<28} mean {part['score'].mean():.3f} (chance "
                    f"{part['chance'].iloc[0]:.3f}, cal {part['calibrated'].mean():+.3f}, "
                    f"{int((part['p_value'] < 0.05).sum())}/{len(part)} pairs p < 0.05)"
                )
    for item in s.get("skipped", []):
        lines.append(f"skipped {item['comparison']}: {item['reason']}")
    return "\n".join(lines)


def publish_report(
    results_dir: str | Path,
    out_dir: str | Path,
    *,
    timings: Any = None,
    dpi: int = 110,
    show_progress: bool = True,
    figures: Sequence[Figure] | None = None,
    figures_from: str | Path | None = None,
) -> Path:
    """Write a complete report folder ``out_dir`` from stored results.

    Args:
        results_dir: a report folder or its ``results/`` folder.
        out_dir: where ``index.html``, ``figures/`` and ``results/`` go.
        timings: the timings table of this run (written to ``results/timings.csv``).
        figures: already-drawn figures (with ``figures_from`` holding their PNGs); default:
            draw them now.

    Returns:
        Path of ``index.html``.
    """
    import pandas as pd

    results = load_results(results_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    source = Path(results_dir)
    if (source / RESULTS_DIR / "summary.json").is_file():
        source = source / RESULTS_DIR
    target = out_dir / RESULTS_DIR
    if source.resolve() != target.resolve():
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target)
    if figures is None:
        figures = draw_figures(results, out_dir, dpi=dpi, show_progress=show_progress)
    elif figures_from is not None and Path(figures_from).resolve() != out_dir.resolve():
        fig_target = out_dir / FIGURES_DIR
        if fig_target.exists():
            shutil.rmtree(fig_target)
        shutil.copytree(Path(figures_from) / FIGURES_DIR, fig_target)
    (target / "figures.json").write_text(json.dumps([vars(f) for f in figures], indent=2), "utf-8")
    if timings is not None:
        timings = pd.DataFrame(timings)
        timings.to_csv(target / "timings.csv", index=False)
    elif (target / "timings.csv").is_file():
        timings = pd.read_csv(target / "timings.csv")
    index = out_dir / "index.html"
    index.write_text(render_html(results, figures, timings), "utf-8")
    return index


def stored_figures(results_dir: str | Path) -> list[Figure]:
    """The figure list saved with a report (``results/figures.json``)."""
    return [Figure(**f) for f in load_results(results_dir).figures]
