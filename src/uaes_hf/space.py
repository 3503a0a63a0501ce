"""Presentation glue for the Gradio Space (``spaces/demo/app.py``): tables and figures only.

Every number shown by the Space is computed by the library (``uaes_hf.alignment``,
``uaes_hf.experiments``, ``uaes_hf.data``, ``uaes_hf.annotate``); this module only selects,
reshapes and draws what those return, so it is importable and testable without Gradio.

Example:
    >>> import numpy as np
    >>> from uaes_hf.space import compare_features
    >>> x = np.random.default_rng(0).normal(size=(60, 8))
    >>> result = compare_features(x, 2 * x, k=5, n_permutations=20)
    >>> result.score
    1.0
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from uaes_hf.experiments.layout import ReportLayout

# Upload limits of the "Your features" tab: a feature file larger than this is refused
# before it is parsed, and so is a matrix with more rows (the permutation null costs
# O(N * k) per permutation, and the neighbour search O(N^2 * D)).
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
MAX_UPLOAD_ROWS = 20_000
MAX_PERMUTATIONS = 1000


# ---------------------------------------------------------------------------------------------
# Explore: poems and the image-poem-text gallery

POEM_TABLE_COLUMNS: tuple[str, ...] = (
    "title",
    "author",
    "form",
    "form_category",
    "aesthetic_score",
    "n_words",
    "n_lines",
    "opening",
)


# Short headers for display (the long field names make narrow columns).
POEM_TABLE_HEADERS = {
    "form_category": "category",
    "aesthetic_score": "score",
    "n_words": "words",
    "n_lines": "lines",
}


def filter_poems(
    poems: Any,
    *,
    min_score: int = 1,
    max_score: int = 5,
    include_unscored: bool = False,
    form_categories: Sequence[str] | None = None,
    min_words: int = 0,
    max_words: int | None = None,
    limit: int = 200,
) -> tuple[Any, int]:
    """Poems whose score, form category and length pass the filters.

    Args:
        poems: a ``pandas.DataFrame`` or ``datasets.Dataset`` of poem records.
        min_score, max_score: inclusive aesthetic-score range (1..5).
        include_unscored: also keep poems without a score.
        form_categories: keep these ``form_category`` values (``None`` keeps all).
        min_words, max_words: inclusive ``n_words`` range (``max_words=None``: no maximum).
        limit: at most this many rows are returned (the count covers all matches).

    Returns:
        ``(table, n_matches)``: a DataFrame with :data:`POEM_TABLE_COLUMNS` plus ``id``, and
        the number of matching poems before ``limit``.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"id": ["a", "b"], "title": ["A", "B"], "author": ["x", "y"],
        ...     "form": ["sonnet", "free"], "form_category": ["formatted", "free_verse"],
        ...     "text": ["one\\ntwo", "three"], "aesthetic_score": [5, 2],
        ...     "n_words": [2, 1], "n_lines": [2, 1]})
        >>> filter_poems(df, min_score=4)[1]
        1
    """
    frame = as_frame(poems)
    if min_score > max_score:
        raise ValueError(f"min_score={min_score} is above max_score={max_score}")
    if max_words is not None and min_words > max_words:
        raise ValueError(f"min_words={min_words} is above max_words={max_words}")
    scores = frame["aesthetic_score"]
    keep = scores.between(min_score, max_score)
    if include_unscored:
        keep |= scores.isna()
    if form_categories is not None:
        keep &= frame["form_category"].isin(list(form_categories))
    keep &= frame["n_words"] >= min_words
    if max_words is not None:
        keep &= frame["n_words"] <= max_words
    matched = frame[keep.fillna(False).astype(bool)]
    table = matched.head(limit).copy()
    table["opening"] = [_opening(text) for text in table["text"]]
    columns = ["id", *[c for c in POEM_TABLE_COLUMNS if c in table.columns]]
    return table[columns].reset_index(drop=True), int(len(matched))


def _opening(text: str, n_lines: int = 2, width: int = 90) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    opening = " / ".join(lines[:n_lines])
    return opening if len(opening) <= width else opening[: width - 1] + "…"


def as_frame(data: Any) -> Any:
    """A ``pandas.DataFrame`` view of a DataFrame, ``datasets.Dataset`` or list of dicts."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if hasattr(data, "to_pandas"):
        return data.to_pandas()
    return pd.DataFrame(list(data))


def with_poem_fields(poems: Any) -> Any:
    r"""The poems as a DataFrame with every field the Space shows (``id`` and ``text`` needed).

    Tables with fewer columns (a run's sample, a user's dataset) get defaults: the title is
    the first line, counts come from the text, unknown fields are empty.

    Example:
        >>> import pandas as pd
        >>> with_poem_fields(pd.DataFrame({"id": ["a"], "text": ["Tyger Tyger\nburning"]}))[
        ...     ["title", "n_lines", "form_category"]].values.tolist()
        [['Tyger Tyger', 2, 'unknown']]
    """
    frame = as_frame(poems).copy()
    missing = [c for c in ("id", "text") if c not in frame.columns]
    if missing:
        raise ValueError(f"the poems table lacks the column(s) {missing}")
    texts = frame["text"].astype(str)
    defaults = {
        "title": [_first_line(t) for t in texts],
        "author": "",
        "form": "",
        "form_category": "unknown",
        "n_words": [len(t.split()) for t in texts],
        "n_lines": [sum(1 for line in t.splitlines() if line.strip()) for t in texts],
        "aesthetic_score": np.nan,
        "aesthetic_rationale": None,
    }
    for column, value in defaults.items():
        if column not in frame.columns:
            frame[column] = value
    return frame


def _first_line(text: str, width: int = 60) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"


def poem_label(row: Any) -> str:
    """Dropdown label of a poem: ``title — author [id]`` (the id makes it unique).

    Example:
        >>> poem_label({"id": "ab12", "title": "Ozymandias", "author": "Shelley"})
        'Ozymandias — Shelley [ab12]'
    """
    return f"{row['title'] or '(untitled)'} — {row['author'] or 'anonymous'} [{row['id']}]"


def id_from_label(label: str) -> str:
    """Inverse of :func:`poem_label` (also accepts a bare id).

    Example:
        >>> id_from_label('Ozymandias — Shelley [ab12]')
        'ab12'
    """
    label = str(label).strip()
    if label.endswith("]") and "[" in label:
        return label[label.rindex("[") + 1 : -1]
    return label


def gallery_items(
    records: Any, *, min_level: int = 1, max_level: int = 5, limit: int = 48
) -> tuple[list[tuple[Any, str]], Any]:
    """Images with a caption line, and a table of captions, poems and scores.

    Args:
        records: image-poem-text records (DataFrame, ``datasets.Dataset`` or dicts) with
            ``id``, ``image``, ``caption``, ``poem``, ``image_aesthetic_score``,
            ``image_aesthetic_level``.
        min_level, max_level: inclusive range of ``image_aesthetic_level``.

    Returns:
        ``(gallery, table)``: ``[(PIL image, caption), ...]`` for ``gr.Gallery`` and a
        DataFrame with id, level, score, caption and poem.
    """
    if min_level > max_level:
        raise ValueError(f"min_level={min_level} is above max_level={max_level}")
    rows = list(_iter_rows(records))
    chosen = [
        row
        for row in rows
        if row.get("image_aesthetic_level") is not None
        and min_level <= int(row["image_aesthetic_level"]) <= max_level
    ][:limit]
    gallery = [
        (
            _as_image(row["image"]),
            f"level {row['image_aesthetic_level']} · score "
            f"{_score_text(row.get('image_aesthetic_score'))} · {row['caption']}",
        )
        for row in chosen
    ]
    import pandas as pd

    table = pd.DataFrame(
        {
            "id": [row["id"] for row in chosen],
            "image_aesthetic_level": [int(row["image_aesthetic_level"]) for row in chosen],
            "image_aesthetic_score": [
                round(float(row.get("image_aesthetic_score", np.nan)), 3) for row in chosen
            ],
            "caption": [row["caption"] for row in chosen],
            "poem": [row.get("poem", "") for row in chosen],
        }
    )
    return gallery, table


def _score_text(score: Any) -> str:
    if score is None or _isnan(score):
        return "score n/a"
    return f"score {float(score):.2f}"


def _iter_rows(records: Any) -> Any:
    if hasattr(records, "to_dict") and hasattr(records, "columns"):  # pandas
        yield from records.to_dict("records")
    else:
        yield from records


def _as_image(value: Any) -> Any:
    """A PIL image from a PIL image, a path, or a ``{"bytes"|"path": ...}`` datasets cell."""
    from PIL import Image

    if isinstance(value, Image.Image):
        return value
    if isinstance(value, dict):
        if value.get("bytes"):
            import io

            return Image.open(io.BytesIO(value["bytes"]))
        value = value.get("path")
    return Image.open(value)


# ---------------------------------------------------------------------------------------------
# Your features: mutual kNN of two matrices, with chance level and calibration


@dataclass(frozen=True)
class FeatureComparison:
    """Mutual kNN of two feature matrices, with what it means.

    Attributes:
        score: mutual kNN in [0, 1].
        per_sample: the N per-sample overlaps |kNN_A(i) ∩ kNN_B(i)| / k.
        chance: expected score of unrelated spaces, k / (N - 1).
        null_mean, null_quantile: mean and 1 - alpha quantile (tau) of the permutation null
            (rows of B shuffled).
        calibrated: (score - tau) / (1 - tau): about 0 (or below) for unrelated spaces, 1 for
            identical neighbourhoods (:func:`uaes_hf.alignment.calibration.calibrate`).
        p_value: add-one permutation p-value.
        k, n, n_permutations: the settings.
    """

    score: float
    per_sample: np.ndarray
    chance: float
    null_mean: float
    null_quantile: float
    calibrated: float
    p_value: float
    k: int
    n: int
    n_permutations: int

    def rows(self) -> list[list[Any]]:
        """``[quantity, value]`` rows for a table."""
        return [
            ["mutual_knn", round(self.score, 6)],
            ["chance_level", round(self.chance, 6)],
            ["null_mean", round(self.null_mean, 6)],
            ["null_quantile_95", round(self.null_quantile, 6)],
            ["calibrated", round(self.calibrated, 6)],
            ["p_value", round(self.p_value, 6)],
            ["k", self.k],
            ["N", self.n],
            ["n_permutations", self.n_permutations],
        ]

    def summary(self) -> str:
        """One Markdown paragraph for people."""
        return (
            f"**mutual kNN = {self.score:.3f}** (k={self.k}, N={self.n}). Chance level "
            f"k/(N-1) = {self.chance:.3f}; permutation null: mean {self.null_mean:.3f}, 95% "
            f"quantile {self.null_quantile:.3f} ({self.n_permutations} shuffles of B's rows). "
            f"**Calibrated score = {self.calibrated:.3f}** (0 = null quantile, 1 = identical "
            f"neighbourhoods), p = {self.p_value:.3g}."
        )


def compare_features(
    features_a: Any,
    features_b: Any,
    *,
    k: int = 10,
    n_permutations: int = 200,
    seed: int = 0,
) -> FeatureComparison:
    """Mutual kNN, chance level and permutation-calibrated score of two ``N x D`` matrices.

    The neighbour sets are searched once and reused by the score and the permutation null.
    Raises ``ValueError`` (from the library's boundary checks) for wrong shapes, NaN/Inf,
    mismatched N or ``k >= N``.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> out = compare_features(rng.normal(size=(80, 4)), rng.normal(size=(80, 4)), k=5)
        >>> out.calibrated < 0.1
        True
    """
    from uaes_hf.alignment.calibration import chance_level, permutation_test
    from uaes_hf.alignment.mutual_knn import mutual_knn_per_sample, neighbor_pair

    if isinstance(n_permutations, bool) or not 1 <= int(n_permutations) <= MAX_PERMUTATIONS:
        raise ValueError(
            f"n_permutations must be between 1 and {MAX_PERMUTATIONS}, got {n_permutations}"
        )
    index_a, index_b = neighbor_pair(features_a, features_b, int(k))
    per_sample = mutual_knn_per_sample(index_a, index_b, int(k))
    test = permutation_test(index_a, index_b, int(k), n_permutations=int(n_permutations), seed=seed)
    return FeatureComparison(
        score=float(per_sample.mean()),
        per_sample=per_sample,
        chance=float(chance_level(int(k), index_a.n_samples)),
        null_mean=float(test.null_mean),
        null_quantile=float(test.null_quantile),
        calibrated=float(test.calibrated),
        p_value=float(test.p_value),
        k=int(k),
        n=index_a.n_samples,
        n_permutations=int(n_permutations),
    )


def per_sample_histogram(per_sample: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts of samples sharing 0, 1, ..., k neighbours (x = shared / k).

    Example:
        >>> import numpy as np
        >>> per_sample_histogram(np.array([0.0, 0.5, 0.5, 1.0]), k=2)[1].tolist()
        [1, 2, 1]
    """
    shared = np.rint(np.asarray(per_sample, dtype=float) * k).astype(int)
    counts = np.bincount(shared, minlength=k + 1)[: k + 1]
    return np.arange(k + 1) / k, counts


def per_sample_histogram_figure(result: FeatureComparison) -> Any:
    """Bar chart of the per-sample overlaps, with the mean and the chance level marked."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    x, counts = per_sample_histogram(result.per_sample, result.k)
    fig, ax = plt.subplots(figsize=(6.4, 3.4), dpi=100)
    ax.bar(x, counts, width=0.8 / result.k, color="#4c72b0")
    ax.axvline(result.score, color="#c44e52", lw=2, label=f"mean = {result.score:.3f}")
    ax.axvline(result.chance, color="grey", ls="--", label=f"chance = {result.chance:.3f}")
    ax.set_xlabel(f"shared neighbours / k  (k = {result.k})")
    ax.set_ylabel("samples")
    ax.set_title(f"Per-sample mutual kNN (N = {result.n})")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Convergence: model x model heatmaps from the tidy alignment table

# Column names of the tidy alignment table (ARCHITECTURE.md "Alignment results").
RESULT_COLUMNS = {
    "subset": "subset",
    "model_a": "model_a",
    "model_b": "model_b",
    "metric": "metric",
    "k": "k",
    "score": "score",
    "chance": "chance",
    "calibrated": "calibrated",
    "p_value": "p_value",
}


def convergence_choices(table: Any) -> dict[str, list[Any]]:
    """The subsets, k values and metrics present in a tidy alignment table.

    Example:
        >>> import pandas as pd
        >>> t = pd.DataFrame({"subset": ["poems", "plain"], "k": [10, 10],
        ...                   "metric": ["mutual_knn"] * 2})
        >>> convergence_choices(t)["subset"]
        ['plain', 'poems']
    """
    cols = RESULT_COLUMNS
    return {
        "subset": sorted(map(str, table[cols["subset"]].unique())),
        "k": sorted(int(v) for v in table[cols["k"]].unique()),
        "metric": sorted(map(str, table[cols["metric"]].unique())),
    }


def default_subset(subsets: Sequence[str]) -> str | None:
    """The subset shown first: the study's headline (all poems) when present.

    Example:
        >>> default_subset(["clusters/poems", "poems_vs_plain/poems", "poems_vs_plain/plain"])
        'poems_vs_plain/poems'
    """
    for wanted in ("poems_vs_plain/poems", "poems"):
        if wanted in subsets:
            return wanted
    return next(iter(subsets), None)


def convergence_cells(table: Any, *, subset: str, k: int, metric: str) -> Any:
    """The rows of one heatmap: one per unordered model pair (both orders filled in).

    Returns a DataFrame with ``model_a, model_b, score, chance_level, calibrated_score,
    p_value`` (the table's own values, not recomputed).
    """
    cols = RESULT_COLUMNS
    picked = table[
        (table[cols["subset"]].astype(str) == str(subset))
        & (table[cols["k"]].astype(int) == int(k))
        & (table[cols["metric"]].astype(str) == str(metric))
    ]
    if picked.empty:
        choices = convergence_choices(table)
        raise ValueError(
            f"no results for subset={subset!r}, k={k}, metric={metric!r}; available: "
            f"subsets {choices['subset']}, k {choices['k']}, metrics {choices['metric']}"
        )
    keep = [cols[name] for name in ("model_a", "model_b", "score", "chance", "calibrated")]
    keep += [
        c
        for c in (cols["p_value"], "ci_low", "ci_high", "layer_a", "layer_b", "n")
        if c in picked.columns
    ]
    # one cell per model pair (a table may repeat a pair, e.g. from several comparisons)
    picked = picked.drop_duplicates(subset=[cols["model_a"], cols["model_b"]])
    # six decimals are plenty to read; the report's CSV files keep full precision
    return picked[list(dict.fromkeys(keep))].round(6).reset_index(drop=True)


def convergence_matrices(cells: Any) -> tuple[list[str], list[str], dict[str, np.ndarray]]:
    """``score``/``chance``/``calibrated`` matrices of one heatmap's cells.

    Within one model family (the A and B models overlap) the matrix is square and symmetric
    with NaN on the diagonal; across families (LLMs x vision models) rows are the A models
    and columns the B models.

    Returns:
        ``(row_models, column_models, {"score": M, "chance": M, "calibrated": M})``.

    Example:
        >>> import pandas as pd
        >>> cells = pd.DataFrame({"model_a": ["a", "a", "b"], "model_b": ["b", "c", "c"],
        ...                       "score": [0.5, 0.3, 0.2], "chance": [0.1] * 3,
        ...                       "calibrated": [0.4] * 3})
        >>> rows, cols, mats = convergence_matrices(cells)
        >>> rows, mats["score"].tolist()
        (['a', 'b', 'c'], [[nan, 0.5, 0.3], [0.5, nan, 0.2], [0.3, 0.2, nan]])
    """
    cols = RESULT_COLUMNS
    models_a = list(dict.fromkeys(map(str, cells[cols["model_a"]])))
    models_b = list(dict.fromkeys(map(str, cells[cols["model_b"]])))
    symmetric = bool(set(models_a) & set(models_b))
    if symmetric:
        models_a = models_b = sorted(set(models_a) | set(models_b))
    row_of = {model: i for i, model in enumerate(models_a)}
    col_of = {model: j for j, model in enumerate(models_b)}
    out = {
        name: np.full((len(models_a), len(models_b)), np.nan)
        for name in ("score", "chance", "calibrated")
    }
    for row in cells.to_dict("records"):
        i, j = row_of[str(row[cols["model_a"]])], col_of[str(row[cols["model_b"]])]
        for name in out:
            out[name][i, j] = float(row[cols[name]])
            if symmetric:
                out[name][j, i] = out[name][i, j]
    return models_a, models_b, out


def convergence_heatmap_figure(cells: Any, *, title: str = "") -> Any:
    """Model x model heatmap of the score; each cell also shows chance and calibrated score."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows, columns, mats = convergence_matrices(cells)
    fig, ax = plt.subplots(
        figsize=(max(4.5, 1.3 * len(columns) + 3.2), max(4.0, 1.1 * len(rows) + 2.0)), dpi=100
    )
    image = ax.imshow(np.ma.masked_invalid(mats["score"]), cmap="viridis", vmin=0.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="mutual kNN")
    finite = mats["score"][np.isfinite(mats["score"])]
    middle = float(np.nanmean(finite)) if finite.size else 0.0
    for i in range(len(rows)):
        for j in range(len(columns)):
            score = mats["score"][i, j]
            if not np.isfinite(score):
                continue
            colour = "black" if score > middle else "white"
            ax.text(
                j,
                i,
                f"{score:.3f}\nchance {mats['chance'][i, j]:.3f}\ncal {mats['calibrated'][i, j]:.3f}",
                ha="center",
                va="center",
                fontsize=7,
                color=colour,
            )
    ax.set_xticks(range(len(columns)), columns, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Neighbours: one poem's k nearest poems under two models


@dataclass(frozen=True)
class NeighbourComparison:
    """The k nearest rows of one query row under two representations."""

    query: int
    neighbours_a: list[int]
    neighbours_b: list[int]
    similarities_a: list[float]
    similarities_b: list[float]

    @property
    def shared(self) -> set[int]:
        return set(self.neighbours_a) & set(self.neighbours_b)

    @property
    def overlap(self) -> float:
        """|kNN_A(q) ∩ kNN_B(q)| / k: this row's term of the mutual kNN mean."""
        return len(self.shared) / len(self.neighbours_a)


def compare_neighbours(
    features_a: Any, features_b: Any, query: int, k: int = 10
) -> NeighbourComparison:
    """The ``k`` nearest rows of row ``query`` in both spaces (cosine, self excluded).

    Uses the library's neighbour search, so ``overlap`` equals the per-sample mutual kNN.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(30, 4))
        >>> compare_neighbours(x, x, query=3, k=5).overlap
        1.0
    """
    from uaes_hf.alignment.mutual_knn import neighbor_pair

    index_a, index_b = neighbor_pair(features_a, features_b, k)
    if not 0 <= int(query) < index_a.n_samples:
        raise ValueError(f"query row {query} is outside [0, {index_a.n_samples})")
    q = int(query)
    return NeighbourComparison(
        query=q,
        neighbours_a=index_a.indices[q].tolist(),
        neighbours_b=index_b.indices[q].tolist(),
        similarities_a=[float(s) for s in index_a.similarities[q]],
        similarities_b=[float(s) for s in index_b.similarities[q]],
    )


def neighbours_html(
    neighbours: Sequence[int],
    similarities: Sequence[float],
    shared: set[int],
    labels: Sequence[str],
    *,
    heading: str,
) -> str:
    """An HTML list of neighbours; shared ones are highlighted and marked ``data-shared``."""
    items = []
    for rank, (row, sim) in enumerate(zip(neighbours, similarities, strict=True), start=1):
        is_shared = row in shared
        style = "background:#fde68a;font-weight:600;" if is_shared else ""
        mark = " ★" if is_shared else ""
        items.append(
            f'<tr data-row="{row}" data-shared="{str(is_shared).lower()}" style="{style}">'
            f"<td>{rank}</td><td>{html.escape(labels[row])}{mark}</td><td>{sim:.3f}</td></tr>"
        )
    return (
        f'<div class="uaes-neighbours"><h4>{html.escape(heading)}</h4>'
        "<table><thead><tr><th>#</th><th>poem</th><th>cosine</th></tr></thead>"
        f"<tbody>{''.join(items)}</tbody></table></div>"
    )


@dataclass(frozen=True)
class NeighbourView:
    """What the Neighbours tab shows: a summary line and two HTML neighbour lists."""

    comparison: NeighbourComparison
    summary: str
    html_a: str
    html_b: str


def neighbour_view(
    features_a: Any,
    features_b: Any,
    query: int,
    k: int,
    labels: Sequence[str],
    *,
    model_a: str,
    model_b: str,
) -> NeighbourView:
    """Compare one row's neighbours under two models and render both lists.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(20, 3))
        >>> view = neighbour_view(x, x, 0, 3, [str(i) for i in range(20)], model_a="a",
        ...                       model_b="b")
        >>> view.comparison.overlap
        1.0
    """
    if len(labels) != sample_rows(features_a):
        raise ValueError(f"{len(labels)} labels for {sample_rows(features_a)} feature rows")
    comparison = compare_neighbours(features_a, features_b, query, k)
    shared = comparison.shared
    summary = (
        f"**{labels[query]}**: {len(shared)} of its k={k} nearest poems are shared by "
        f"{model_a} and {model_b} (this poem's mutual kNN = {comparison.overlap:.2f}; chance "
        f"≈ {k / (sample_rows(features_a) - 1):.2f})."
    )
    html_a = neighbours_html(
        comparison.neighbours_a, comparison.similarities_a, shared, labels, heading=f"A: {model_a}"
    )
    html_b = neighbours_html(
        comparison.neighbours_b, comparison.similarities_b, shared, labels, heading=f"B: {model_b}"
    )
    return NeighbourView(comparison, summary, html_a, html_b)


def sample_rows(features: Any) -> int:
    """N of a feature matrix."""
    return int(np.shape(features)[0])


# ---------------------------------------------------------------------------------------------
# Poems: reading one poem


def poem_row(poems: Any, label: str) -> dict[str, Any]:
    """The record of the poem named by a :func:`poem_label` (or its id)."""
    frame = as_frame(poems)
    poem_id = id_from_label(label)
    hits = frame[frame["id"].astype(str) == poem_id]
    if hits.empty:
        raise ValueError(f"no poem with id {poem_id!r} in the dataset")
    return hits.iloc[0].to_dict()


def poem_markdown(poems: Any, label: str) -> str:
    """A poem's full text with its metadata, as Markdown (line breaks kept)."""
    row = poem_row(poems, label)
    score = row.get("aesthetic_score")
    score_text = "unscored" if score is None or _isnan(score) else f"aesthetic score {int(score)}"
    body = "  \n".join(html.escape(line) for line in str(row["text"]).splitlines())
    rationale = row.get("aesthetic_rationale")
    extra = (
        "" if not rationale or _isnan(rationale) else f"\n\n*Judge:* {html.escape(str(rationale))}"
    )
    return (
        f"#### {html.escape(str(row['title']))}\n*{html.escape(str(row['author']))}* · "
        f"{row['form']} ({row['form_category']}) · {int(row['n_words'])} words · {score_text}"
        f"\n\n{body}{extra}"
    )


def _isnan(value: Any) -> bool:
    try:
        return bool(np.isnan(value))
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------
# Where the Space's data comes from, loaded lazily and kept per app


@dataclass(frozen=True)
class SpaceSources:
    """Settings of one Space instance (see ``spaces/demo/app.py:build_demo``).

    ``None`` for poems, images or features means "the main job's run behind the results"
    (its annotated poems, its image-text pairs, its extracted features).
    """

    results_dir: Any = None
    poems: Any = None
    poems_revision: str | None = None
    images: Any = None
    features_root: Any = None
    features_dataset: str | None = None
    judge_base_url: str | None = None
    judge_model: str = "gpt-4o"
    max_upload_bytes: int = MAX_UPLOAD_BYTES


def default_results_dir() -> Any:
    """Where the Space keeps the embedded default run's report: ``$UAES_HOME/space/report``."""
    from uaes_hf.paths import uaes_home

    return uaes_home() / "space" / "report"


def user_message(err: BaseException) -> str:
    """The message a Space user sees for a library error (no traceback, no key)."""
    text = str(err).strip() or type(err).__name__
    if isinstance(err, KeyError):
        text = f"missing field {text}"
    return text


def missing_results_message(sources: SpaceSources) -> str:
    where = sources.results_dir or default_results_dir()
    return (
        f"No convergence results yet in `{where}`. Press **Compute the embedded default "
        "results now** to run the embedded default experiment here (packaged models and data; "
        "about 12 minutes on a 2-core CPU, with progress shown), or start the Space with "
        "`UAES_RESULTS_DIR` pointing at the report folder of `uaes run`."
    )


# The Space records which stage folders produced a report it computed (a report written by
# `uaes run` lists them in results/summary.json under "stage_dirs"); the name is the layout's.
RUN_SIDECAR = ReportLayout(Path()).space_run.name


class SpaceData:
    """Loads each data source once, on first use, and keeps it for this app.

    A lock makes concurrent first requests load a source once; errors are not cached, so
    fixing the data (or computing the results) and retrying works without a restart.
    """

    def __init__(self, sources: SpaceSources) -> None:
        import threading

        self.sources = sources
        self._lock = threading.RLock()
        self._cache: dict[str, Any] = {}

    def _get(self, name: str, load: Any) -> Any:
        with self._lock:
            if name not in self._cache:
                self._cache[name] = load()
            return self._cache[name]

    # -- the main job's run -------------------------------------------------------------------
    def results_dir(self) -> Any:
        from pathlib import Path

        return Path(self.sources.results_dir or default_results_dir())

    def has_results(self) -> bool:
        """Whether the results folder holds a readable alignment table."""
        if "results" in self._cache:
            return True
        try:
            self.results()
        except (FileNotFoundError, ValueError):
            return False
        return True

    def results(self) -> Any:
        """The tidy alignment table (DataFrame) of the main job."""
        return self._get("results", lambda: load_results_table(self.results_dir()))

    def stage_dirs(self) -> dict[str, Any]:
        """Stage folders (prepare, annotate, extract ...) of the run behind the results."""
        return self._get("stage_dirs", lambda: run_stage_dirs(self.results_dir()))

    def results_status(self) -> str:
        table = self.results()
        return (
            f"Results from `{self.results_dir()}`: {len(table)} rows over "
            f"{table[RESULT_COLUMNS['subset']].nunique()} subset(s). Each cell shows the mutual "
            "kNN score, the chance level k/(N-1) and the calibrated score (0 at the "
            "permutation null's 95% quantile, 1 for identical neighbourhoods)."
        )

    def compute_results(self) -> None:
        """Run the embedded default experiment into the results folder (if none is there)."""
        with self._lock:
            if self.has_results():
                return
            run_default_experiment(self.results_dir())
            self._cache.clear()

    # -- poems and images ---------------------------------------------------------------------
    def poems(self) -> Any:
        """The poems (DataFrame): the given source, else the run's annotated poems."""
        return self._get("poems", lambda: with_poem_fields(self._load_poems()))

    def _load_poems(self) -> Any:
        if self.sources.poems is not None:
            return load_poem_table(self.sources.poems, self.sources.poems_revision)
        stages = self._stage_dirs_or_none()
        if stages is not None:
            return read_run_poems(stages)
        return load_poem_table("embedded", None)  # not annotated: scores are empty

    def _stage_dirs_or_none(self) -> dict[str, Any] | None:
        try:
            return self.stage_dirs()
        except (FileNotFoundError, ValueError):
            return None

    def images(self) -> Any:
        """The image-poem-text records: the given source, else the run's image-text pairs."""
        return self._get("images", self._load_images)

    def _load_images(self) -> Any:
        if self.sources.images is not None:
            return load_image_records(self.sources.images)
        stages = self._stage_dirs_or_none()
        if stages is None:
            raise FileNotFoundError(
                "no image-poem-text data: compute the default results (Convergence tab) or "
                "start the Space with UAES_IMAGES set to a dataset folder or Hub repo id"
            )
        return read_run_images(stages)

    # -- features -----------------------------------------------------------------------------
    def feature_set(self) -> Any:
        """Stored poem features: a feature store if given, else the run's extracted features."""
        return self._get("features", self._open_features)

    def _open_features(self) -> Any:
        if self.sources.features_root is not None:
            return StoredFeatureSet.open(self.sources.features_root, self.sources.features_dataset)
        stages = self._stage_dirs_or_none()
        if stages is None or "extract" not in stages:
            raise FileNotFoundError(
                "no stored features: compute the default results (Convergence tab) or start "
                "the Space with UAES_FEATURES set to a feature store (`uaes extract` output)"
            )
        return RunFeatureSet(stages["extract"], self.sources.features_dataset or "poems")

    def stored_models(self) -> list[str]:
        try:
            return self.feature_set().models()
        except FileNotFoundError:
            return []

    def read_upload(self, path: Any, name: str) -> np.ndarray:
        return read_feature_upload(path, name, max_bytes=self.sources.max_upload_bytes)

    # -- neighbours ---------------------------------------------------------------------------
    def neighbour_poem_labels(self) -> list[str]:
        return [poem_label(row) for row in self.neighbour_poems().to_dict("records")]

    def neighbour_poems(self) -> Any:
        """The poems that have feature rows, in row order (their row in ``_row``)."""
        return self._get("neighbour_poems", lambda: self.feature_set().rows_as_poems(self.poems()))

    def neighbours(self, label: str, model_a: str, model_b: str, k: int) -> NeighbourView:
        poems = self.neighbour_poems()
        poem_id = id_from_label(label)
        where = np.flatnonzero(poems["id"].astype(str).to_numpy() == poem_id)
        if where.size == 0:
            raise ValueError(f"poem {poem_id!r} has no stored features")
        features = self.feature_set()
        rows = poems["_row"].to_numpy()
        labels = [poem_label(row) for row in poems.to_dict("records")]
        return neighbour_view(
            features.layer(model_a, -1, rows=rows),
            features.layer(model_b, -1, rows=rows),
            int(where[0]),
            k,
            labels,
            model_a=model_a,
            model_b=model_b,
        )


# ---------------------------------------------------------------------------------------------
# Adapters to the library's loaders (one place to change if a loader's signature moves)


def _is_location(value: Any) -> bool:
    return isinstance(value, str) or hasattr(value, "__fspath__")


def load_poem_table(source: Any, revision: str | None = None) -> Any:
    """Poems from data passed in, ``"embedded"``, a dataset folder or a Hub repo id."""
    if not _is_location(source):
        return source  # already data (Dataset / DataFrame / records)
    from uaes_hf.data.repo import load_poems

    if str(source) == "embedded":
        source = embedded_poems_repo()
    return load_poems(str(source), revision=revision, split="train")


def embedded_poems_repo() -> Any:
    """The embedded poems repo folder, built once under the cache (offline, public domain)."""
    from uaes_hf.paths import cache_dir

    repo = cache_dir("data", "embedded") / "poems"
    if not (repo / "README.md").is_file():
        from uaes_hf.data.pipeline import prepare_embedded_data

        repo = prepare_embedded_data(progress=False).poems_repo
    return repo


def load_image_records(source: Any) -> Any:
    """Image-poem-text records from data passed in, a dataset folder or a Hub repo id."""
    if not _is_location(source):
        return source
    from uaes_hf.data.repo import load_dataset_repo

    return load_dataset_repo(str(source), split="train")


def run_stage_dirs(results_dir: Any) -> dict[str, Any]:
    """Stage folders of the run that wrote a report: the Space's sidecar or the summary's."""
    from uaes_hf.experiments.layout import stage_dirs_of

    return stage_dirs_of(results_dir)


def read_run_poems(stages: dict[str, Any]) -> Any:
    """The run's poems, annotated when the annotate stage ran (rows match features by id)."""
    import pandas as pd

    from uaes_hf.experiments.layout import RunLayout

    layout = RunLayout(stages)
    try:
        path = layout.poems
    except ValueError:
        raise FileNotFoundError("the run has no poems") from None
    if not path.is_file():
        raise FileNotFoundError(f"the run has no poems ({path})")
    return pd.read_parquet(path)


def read_run_images(stages: dict[str, Any]) -> Any:
    """The run's image-text pairs (image bytes, caption, poem, aesthetic score and level)."""
    import pandas as pd

    from uaes_hf.experiments.layout import RunLayout

    path = RunLayout(stages).image_text if "prepare" in stages else None
    if path is None or not path.is_file():
        raise FileNotFoundError("the run has no image-text pairs")
    frame = pd.read_parquet(path)
    if frame.empty:
        raise FileNotFoundError("the run used no images (data.n_images = 0)")
    frame["image"] = [
        cell if isinstance(cell, dict) else {"bytes": cell} for cell in frame["image"]
    ]
    return frame


def load_results_table(results_dir: Any) -> Any:
    """The main job's tidy convergence table from a report folder (``uaes run``'s output)."""
    from pathlib import Path

    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"results folder {results_dir} does not exist")
    from uaes_hf.experiments import load_results

    results = load_results(results_dir)
    try:
        table = results["convergence"]
    except KeyError as err:
        raise ValueError(str(err.args[0])) from None
    missing = [c for c in RESULT_COLUMNS.values() if c not in table.columns and c != "p_value"]
    if missing:
        raise ValueError(f"the convergence table in {results_dir} lacks columns {missing}")
    if table.empty:
        raise ValueError(f"the convergence table in {results_dir} is empty")
    return table


def run_default_experiment(report_dir: Any) -> None:
    """Run the embedded default experiment (``uaes run``) and write its report to ``report_dir``.

    The pipeline's tqdm bars are what the Space shows as progress. The stage folders are
    recorded next to the report so that the other tabs find the run's poems and features.
    """
    import json
    from pathlib import Path

    from uaes_hf.experiments import load_config, run_experiment

    report_dir = Path(report_dir)
    _, stages = run_experiment(load_config(), report_dir, show_progress=True)
    dirs = {stage.name: str(stage.directory) for stage in stages}
    ReportLayout(report_dir).space_run.write_text(json.dumps(dirs, indent=2), "utf-8")


class _FeatureRows:
    """Shared by both feature sources: matching poems to feature rows."""

    def n_rows(self) -> int:
        raise NotImplementedError

    def row_ids(self) -> list[str] | None:
        return None

    def rows_as_poems(self, poems: Any) -> Any:
        """The poems that have feature rows, in row order, with their row in ``_row``
        (joined by id; by position only for features stored without ids)."""
        frame = as_frame(poems)
        n_rows = self.n_rows()
        ids = self.row_ids()
        if ids is None:
            if len(frame) != n_rows:
                raise ValueError(
                    f"the stored features have {n_rows} rows but the poems dataset has "
                    f"{len(frame)} and no row ids are recorded: cannot match poems to rows"
                )
            out = frame.reset_index(drop=True).copy()
            out["_row"] = np.arange(n_rows)
            return out
        position = {poem_id: i for i, poem_id in enumerate(ids)}
        keep = frame[frame["id"].astype(str).isin(position)].copy()
        if len(keep) < 2:
            raise ValueError("fewer than 2 poems of the dataset have stored features")
        keep["_row"] = [position[str(v)] for v in keep["id"]]
        return keep.sort_values("_row").reset_index(drop=True)


class StoredFeatureSet(_FeatureRows):
    """The features of one dataset in a feature store (``uaes extract``): one entry per model."""

    def __init__(self, store: Any, dataset: str | None, metas: list[dict[str, Any]]) -> None:
        self.store = store
        self.dataset = dataset
        self.metas = {str(meta["model"]): meta for meta in metas}

    @classmethod
    def open(cls, root: Any, dataset: str | None = None) -> StoredFeatureSet:
        """The entries under ``root`` for ``dataset`` (default: the first dataset stored)."""
        from uaes_hf.features.store import FeatureStore

        store = FeatureStore(root)
        metas = store.entries()
        if dataset:
            metas = [m for m in metas if _same_name(m.get("dataset"), dataset)]
        if not metas:
            raise FileNotFoundError(
                f"no stored features under {root}"
                + (f" for dataset {dataset!r}" if dataset else "")
                + "; run `uaes extract` first"
            )
        dataset = dataset or str(metas[0].get("dataset"))
        metas = [m for m in metas if _same_name(m.get("dataset"), dataset)]
        return cls(store, dataset, metas)

    def models(self) -> list[str]:
        return sorted(self.metas)

    def n_rows(self) -> int:
        return int(next(iter(self.metas.values()))["n_items"])

    def _load(self, model: str) -> Any:
        if model not in self.metas:
            raise ValueError(f"no stored features for model {model!r}; stored: {self.models()}")
        meta = self.metas[model]
        return self.store.load(
            dataset=self.dataset, model=model, pooling=meta.get("pooling"),
            fingerprint=meta.get("dataset_fingerprint"), options=meta.get("options"),
        )  # fmt: skip

    def layer(self, model: str, index: int = -1, rows: Any = None) -> np.ndarray:
        """One layer's ``N x D`` features as float32 (optionally only ``rows``)."""
        stored = self._load(model)
        try:
            matrix = stored.layer(int(index))
        except IndexError as err:
            raise ValueError(f"{model}: {err}") from None
        matrix = np.asarray(matrix, dtype=np.float32)
        return matrix if rows is None else matrix[np.asarray(rows)]

    def row_ids(self) -> list[str] | None:
        """Record ids of the feature rows (None when stored without ids)."""
        stored = self._load(next(iter(self.metas)))
        return None if stored.ids_are_positions else stored.ids


class RunFeatureSet(StoredFeatureSet):
    """The features a ``uaes run`` extract stage stored (its feature store, one dataset)."""

    def __init__(self, extract_dir: Any, dataset: str = "poems") -> None:
        from uaes_hf.experiments.layout import RunLayout

        store_dir = RunLayout({"extract": extract_dir}).feature_store
        opened = StoredFeatureSet.open(store_dir, dataset)
        super().__init__(opened.store, opened.dataset, list(opened.metas.values()))
        self.extract_dir = extract_dir


def _same_name(stored: Any, name: str) -> bool:
    from uaes_hf.features.store import slugify

    return stored is not None and (str(stored) == name or slugify(str(stored)) == slugify(name))


def read_feature_upload(path: Any, name: str, *, max_bytes: int = MAX_UPLOAD_BYTES) -> np.ndarray:
    """Read an uploaded ``N x D`` feature file (.npy, .safetensors, .csv) with clear errors.

    Errors name the upload (``features A (my.npy)``), not the server's temporary path.
    """
    from pathlib import Path

    from uaes_hf.alignment.validation import check_matrix
    from uaes_hf.features.files import read_features

    shown = f"{name} ({Path(path).name})"
    try:
        matrix = read_features(path, max_bytes=max_bytes, ndim=(2,))
    except ValueError as err:
        message = str(err).replace(str(path), shown)
        raise ValueError(message if shown in message else f"{shown}: {message}") from None
    if matrix.shape[0] > MAX_UPLOAD_ROWS:
        raise ValueError(
            f"{shown} has {matrix.shape[0]} rows; the Space accepts at most {MAX_UPLOAD_ROWS} "
            "(use the library or `uaes align` for larger sets)"
        )
    return check_matrix(matrix, shown)


# ---------------------------------------------------------------------------------------------
# Judge


def judge_configured(sources: SpaceSources) -> bool:
    """Whether an API key is set (``OPENAI_API_KEY``); the endpoint defaults to OpenAI's."""
    import os

    return bool(os.environ.get("OPENAI_API_KEY", "").strip())


def judge_status_markdown(sources: SpaceSources) -> str:
    if judge_configured(sources):
        endpoint = sources.judge_base_url or "https://api.openai.com/v1"
        return (
            f"The judge is configured: model **{sources.judge_model}** at `{endpoint}` "
            "(the study's rubric, `poem-aesthetic-v1`). Pick or paste a poem and press *Rate*."
        )
    return JUDGE_HOWTO


JUDGE_HOWTO = """\
**The LLM judge is not configured.** To rate poems here, give the Space an OpenAI-compatible
endpoint:

- set the secret `OPENAI_API_KEY` (Space settings → *Variables and secrets*; locally
  `export OPENAI_API_KEY=...`; any non-empty value for a local server that ignores keys);
- optionally `OPENAI_BASE_URL` (e.g. `http://127.0.0.1:8000/v1` for vLLM or ollama) and
  `UAES_JUDGE_MODEL` (default `gpt-4o`, the study's judge);
- restart the Space.

Offline, the library rates poems with a packaged SmolLM2 instead:
`uaes annotate poems --backend local`.
"""


def judge_poem(text: str, sources: SpaceSources) -> str:
    """Rate one poem with the study's rubric through the configured endpoint (Markdown)."""
    if not judge_configured(sources):
        return JUDGE_HOWTO
    from uaes_hf.annotate.client import ChatClient, ChatConfig
    from uaes_hf.annotate.judge import OpenAIRatingBackend, RatingFailure

    if not text or not text.strip():
        raise ValueError("the poem is empty")
    client = ChatClient(
        ChatConfig(model=sources.judge_model, base_url=sources.judge_base_url, max_retries=2,
                   timeout=60.0, concurrency=1)
    )  # fmt: skip
    backend = OpenAIRatingBackend(client)
    try:
        outcome = backend.rate(text)
    except RatingFailure as err:
        return f"**The judge failed** ({err.reason}): {html.escape(err.detail)}"
    return (
        f"### Score: {outcome.score} / 5\n\n{html.escape(outcome.rationale)}\n\n"
        f"<small>{sources.judge_model} · prompt {backend.prompt.version} · "
        f"{outcome.prompt_tokens} + {outcome.completion_tokens} tokens</small>"
    )
