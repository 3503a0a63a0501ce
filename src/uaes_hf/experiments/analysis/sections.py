"""One function per report section: each takes the analyse stage's inputs and returns the
result tables of its section (the names of :data:`uaes_hf.experiments.report.RESULT_TABLES`).

Example:
    >>> import pandas as pd
    >>> lengths_table(pd.DataFrame({"n_words": [3, 4]}), pd.DataFrame({"n_words": [9]}),
    ...               None).groupby("group")["n_words"].sum().to_dict()
    {'plain texts': 9, 'poems': 7}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from uaes_hf.experiments.analysis.inputs import AnalysisInputs

CAPABILITY_SUBSETS = (
    "poems_vs_plain/poems",
    "poems_vs_plain/plain_texts",
    "clusters/poems",
    "clusters/cluster_1",
    "clusters/cluster_2",
)


def _concat(frames: list[Any]) -> Any:
    import pandas as pd

    return pd.concat(frames, ignore_index=True) if frames else None


def comparison_section(inputs: AnalysisInputs) -> tuple[dict[str, Any], list[str]]:
    """Headline and aesthetic factors: per-pair differences and paired sign-flip tests.

    Returns the tables and the comparisons present in the convergence table.
    """
    from uaes_hf.experiments.comparisons import comparison_tests

    cfg = inputs.cfg
    convergence = inputs.convergence
    present = [c for c in cfg.analyse.comparisons if c in set(convergence["comparison"])]
    differences, tests = comparison_tests(
        convergence, present, n_flips=cfg.analyse.n_sign_flips, seed=cfg.seed
    )
    tables = {"convergence": convergence, "differences": differences, "comparison_tests": tests}
    return tables, present


def poem_covariates(inputs: AnalysisInputs) -> dict[str, np.ndarray]:
    """Per-poem length, aesthetic score and (when scored) perplexity, in the poems' order."""
    covariates = {
        "n_words": inputs.poems["n_words"].to_numpy(float),
        "aesthetic_score": inputs.scores(),
    }
    if inputs.perplexity is not None:
        covariates["perplexity"] = inputs.poem_perplexity()
    return covariates


def _clamped(inputs: AnalysisInputs, layers: list[np.ndarray]) -> list[np.ndarray]:
    """All rows of one model's stack, clamped as one stack when ``align.outlier_quantile``."""
    from uaes_hf.experiments.convergence import clamped_rows

    al = inputs.cfg.align
    rows = np.arange(layers[0].shape[0])
    return clamped_rows(layers, rows, al.outlier_quantile, al.outlier_exact)


def per_sample_section(
    inputs: AnalysisInputs, covariates: dict[str, np.ndarray]
) -> tuple[list[Any], int]:
    """Rarity and per-sample alignment: per-sample mutual kNN of every text-model pair on the
    poems against length, perplexity and aesthetic score (layers chosen on held-out samples,
    fixed, or the study's inflated max over layer pairs). Returns ``([scores, slopes,
    layers] frames, N reported)``."""
    from uaes_hf.experiments.convergence import candidate_layers, model_pairs
    from uaes_hf.experiments.per_sample import per_sample_alignment

    cfg = inputs.cfg
    an, al = cfg.analyse, cfg.align
    text_models = inputs.text_models
    spaces, layer_ids, fixed = {}, {}, {}
    for model in text_models:
        layers = _clamped(inputs, inputs.layers("poems", model))
        if an.per_sample_layers in ("heldout", "max"):
            chosen = candidate_layers(
                len(layers), al.max_layers_per_model, al.exclude_embedding_layer
            )
        else:
            chosen = [int(al.fixed_layers.get(model, -1)) % len(layers)]
        spaces[model] = [layers[i] for i in chosen]
        layer_ids[model] = chosen
        fixed[model] = 0
    if len(text_models) < 2 or len(inputs.poems) <= 2 * (al.k + 2):
        return [], 0
    result = per_sample_alignment(
        spaces,
        model_pairs(text_models),
        covariates,
        k=al.k,
        mode=an.per_sample_layers,
        fixed_layers=fixed,
        layer_ids=layer_ids,
        seed=cfg.seed,
        sample_ids=inputs.poems["id"].to_numpy(),
        n_permutations=al.n_permutations,
    )
    frames = [
        result.scores.assign(analysis="text"),
        result.slopes.assign(analysis="text"),
        result.layers.assign(analysis="text"),
    ]
    return frames, result.n_report


def multimodal_section(inputs: AnalysisInputs) -> tuple[list[Any], list[Any]]:
    """Multimodal convergence by image aesthetic level: per-sample LLM x vision alignment on
    image-caption and image-poem pairs. Returns ``([scores, slopes, layers] frames of each
    analysis, level means)``."""
    from uaes_hf.experiments.crossmodal import level_analysis

    cfg = inputs.cfg
    al = cfg.align
    images = inputs.images
    frames: list[Any] = []
    level_frames: list[Any] = []
    vision_models = inputs.vision_models
    if not vision_models or len(images) <= 2 * (al.k + 2):
        return frames, level_frames
    vision = {m: _clamped(inputs, inputs.layers("image_text", m, "image")) for m in vision_models}
    for column, analysis in (("caption", "image_caption"), ("poem", "image_poem")):
        text = {
            m: _clamped(inputs, inputs.layers("image_text", m, column)) for m in inputs.text_models
        }
        result, means = level_analysis(
            text,
            vision,
            images["image_aesthetic_level"].to_numpy(float),
            k=al.k,
            mode=cfg.analyse.per_sample_layers,
            max_layers=al.max_layers_per_model,
            seed=cfg.seed,
            sample_ids=images["id"].to_numpy(),
            n_permutations=al.n_permutations,
            exclude_embedding_layer=al.exclude_embedding_layer,
        )
        frames += [
            result.scores.assign(analysis=analysis),
            result.slopes.assign(analysis=analysis),
            result.layers.assign(analysis=analysis),
        ]
        level_frames.append(means.assign(analysis=analysis))
    return frames, level_frames


def per_sample_tables(frames: list[Any], level_frames: list[Any]) -> dict[str, Any]:
    """The per-sample tables of the text and multimodal analyses, stacked."""
    return {
        "per_sample": _concat(frames[0::3]),
        "per_sample_slopes": _concat(frames[1::3]),
        "per_sample_layers": _concat(frames[2::3]),
        "crossmodal_levels": _concat(level_frames),
    }


def topics_section(inputs: AnalysisInputs) -> dict[str, Any]:
    """Behind aesthetics (topics): cosine similarity of the clusters, word frequencies."""
    import pandas as pd

    from uaes_hf.experiments.clusters import cosine_similarity_table, word_frequencies

    cfg = inputs.cfg
    labels = inputs.labels
    emb_poems = inputs.layers("poems", cfg.analyse.cluster_model)[-1]
    emb_plain = inputs.layers("plain_texts", cfg.analyse.cluster_model)[-1]
    tables = {"cluster_similarity": cosine_similarity_table(emb_plain, emb_poems, labels)}
    words = []
    if cfg.report.wordclouds:
        poems, plain = inputs.poems, inputs.plain
        groups = {"poems": list(poems["text"]), "plain_texts": list(plain["text"])}
        for label in range(int(labels.max()) + 1):
            groups[f"poems_cluster_{label + 1}"] = list(poems["text"][labels == label])
        for group, texts in groups.items():
            for word, count in word_frequencies(texts).items():
                words.append({"group": group, "word": word, "count": count})
    tables["word_frequencies"] = pd.DataFrame(words) if words else None
    return tables


def capability_section(inputs: AnalysisInputs) -> Any:
    """Alignment vs capability: each model's score with the reference model vs its size
    and leaderboard scores (None without a reference model)."""
    from uaes_hf.experiments.capability import capability_table, model_info

    convergence = inputs.convergence
    subsets = [s for s in CAPABILITY_SUBSETS if s in set(convergence["subset"])]
    info = model_info(inputs.text_models, inputs.cfg.analyse.capability)
    reference = inputs.reference
    return capability_table(convergence, reference, subsets, info) if reference else None


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


def tsne_section(inputs: AnalysisInputs) -> tuple[Any, str | None, int | None]:
    """t-SNE maps of the reference (or ``tsne_model``) features: by aesthetic score, by
    length, poems vs plain texts. Returns ``(table or None, model, layer)``."""
    import pandas as pd

    from uaes_hf.data.lengths import split_at_median

    cfg = inputs.cfg
    an = cfg.analyse
    tsne_model = an.tsne_model or inputs.reference
    if not (cfg.report.tsne and tsne_model):
        return None, tsne_model, None
    poems, plain = inputs.poems, inputs.plain
    poem_layers = inputs.layers("poems", tsne_model)
    plain_layers = inputs.layers("plain_texts", tsne_model)
    tsne_layer = len(poem_layers) - 1
    maps = []
    scores = pd.to_numeric(poems["aesthetic_score"], errors="coerce")
    if scores.notna().sum() > 10:
        keep = scores.notna().to_numpy()
        xy = _tsne(poem_layers[-1][keep], an.tsne_perplexity, cfg.seed)
        labels = scores[keep].astype(int).astype(str).to_numpy()
        maps.append(
            pd.DataFrame({"map": "aesthetic score", "x": xy[:, 0], "y": xy[:, 1], "label": labels})
        )
    xy = _tsne(poem_layers[-1], an.tsne_perplexity, cfg.seed)
    halves = split_at_median(list(poems["n_words"]))
    maps.append(pd.DataFrame({"map": "length", "x": xy[:, 0], "y": xy[:, 1], "label": halves}))
    both = np.vstack([poem_layers[-1], plain_layers[-1]])
    xy = _tsne(both, an.tsne_perplexity, cfg.seed)
    kinds = ["poem"] * len(poems) + ["plain text"] * len(plain)
    maps.append(
        pd.DataFrame({"map": "poems vs plain texts", "x": xy[:, 0], "y": xy[:, 1], "label": kinds})
    )
    return pd.concat(maps, ignore_index=True), tsne_model, tsne_layer


def _length_aligned_words(inputs: AnalysisInputs) -> Any:
    """Word counts of the length-aligned poem side, or None when it was not formed."""
    import pandas as pd

    side = next(
        (
            s
            for s in inputs.plan["subsets"]
            if s["comparison"] == "length_aligned" and s["side"] == "poems_length_aligned"
        ),
        None,
    )
    if side is None:
        return None
    if side["dataset"] != "poems":  # the repo's own length-aligned set
        words = pd.read_parquet(inputs.layout.prepared_table(side["dataset"]))["n_words"]
    else:
        words = inputs.poems["n_words"]
    return words.to_numpy()[side["rows"]]


def lengths_table(poems: Any, plain: Any, aligned_words: np.ndarray | None) -> Any:
    """Adjustment to reduce bias: word counts before alignment and of the length-aligned
    sample (the length histograms)."""
    import pandas as pd

    def part(panel: str, group: str, words: Any) -> Any:
        return pd.DataFrame({"panel": panel, "group": group, "n_words": words})

    rows = [
        part("before alignment", "plain texts", plain["n_words"].to_numpy()),
        part("before alignment", "poems", poems["n_words"].to_numpy()),
    ]
    if aligned_words is not None:
        rows += [
            part("after alignment", "plain texts", plain["n_words"].to_numpy()),
            part("after alignment", "poems (length-aligned)", aligned_words),
        ]
    return pd.concat(rows, ignore_index=True)


def lengths_section(inputs: AnalysisInputs) -> Any:
    """The length table of this run (see :func:`lengths_table`)."""
    return lengths_table(inputs.poems, inputs.plain, _length_aligned_words(inputs))


def perplexity_section(inputs: AnalysisInputs, covariates: dict[str, np.ndarray]) -> Any:
    """Rarity: per-text perplexity with length and aesthetic score (None when not scored);
    perplexity rows are joined to the poems and plain texts by id."""
    if inputs.perplexity is None:
        return None
    frame = inputs.perplexity[["dataset", "row", "perplexity", "bits_per_byte"]].copy()
    frame["aesthetic_score"] = np.nan
    frame["n_words"] = np.nan
    mask = (inputs.perplexity["dataset"] == "poems").to_numpy()
    _, rows = inputs.perplexity_rows("poems", inputs.poems)
    frame.loc[mask, "aesthetic_score"] = covariates["aesthetic_score"][rows]
    frame.loc[mask, "n_words"] = inputs.poems["n_words"].to_numpy()[rows]
    pmask = (inputs.perplexity["dataset"] == "plain_texts").to_numpy()
    _, rows = inputs.perplexity_rows("plain_texts", inputs.plain)
    frame.loc[pmask, "n_words"] = inputs.plain["n_words"].to_numpy()[rows]
    return frame
