"""A report's results: tidy tables as CSV, the summary as JSON (:func:`load_results` is the
stable entry point for other code, e.g. the Gradio Space).

Example:
    >>> import tempfile, pandas as pd
    >>> folder = write_results(tempfile.mkdtemp(), {"convergence": pd.DataFrame({"k": [10]})},
    ...                        {"title": "t"})
    >>> load_results(folder)["convergence"]["k"].tolist()
    [10]
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from uaes_hf.experiments.layout import ResultsLayout

RESULT_TABLES: dict[str, str] = {
    "convergence": "model x model mutual kNN, one row per (subset, model A, layer A, model B, "
    "layer B, metric, k, N) with score, chance, calibrated, p_value, ci_low, ci_high",
    "differences": "per model pair, score on side A minus side B of each comparison",
    "comparison_tests": "paired sign-flip tests across model pairs for each comparison "
    "(a description: pairs share models and the texts are a sample)",
    "text_tests": "the headline test over texts: mean-over-pairs difference, p-value from "
    "random splits of the pooled texts (two-sided on the distance from the null's mean, "
    "null_mean: not 0 when the sides' sizes differ), interval from half-samples, neighbours "
    "recomputed",
    "headline_variants": "each comparison's mean difference as in the headline, without "
    "(or with) the embedding layer, and of each model's agreement with TF-IDF",
    "lexical": "every model's mutual kNN with TF-IDF of the same texts, per compared side",
    "truncation": "texts truncated at each model's token cap (extractor counts)",
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
    layout = ResultsLayout(Path(results_dir))
    layout.folder.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        if table is None:
            continue
        table.to_csv(layout.table(name), index=False)
    layout.summary.write_text(
        json.dumps(dict(summary), indent=2, sort_keys=True, default=_json_default), "utf-8"
    )
    return layout.folder


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
        >>> load_results("nowhere")
        Traceback (most recent call last):
        ValueError: 'nowhere' is not a uaes report: no results/summary.json (run `uaes run`)
    """
    import pandas as pd

    layout = ResultsLayout.of(report_dir)
    if not layout.summary.is_file():
        raise ValueError(
            f"{str(report_dir)!r} is not a uaes report: no results/summary.json (run `uaes run`)"
        )
    tables = {}
    for name, path in layout.tables().items():
        try:
            tables[name] = pd.read_csv(path)
        except pd.errors.EmptyDataError:
            tables[name] = pd.DataFrame()
    figures = layout.figures_list
    return Results(
        tables=tables,
        summary=json.loads(layout.summary.read_text("utf-8")),
        figures=json.loads(figures.read_text("utf-8")) if figures.is_file() else [],
        timings=pd.read_csv(layout.timings) if layout.timings.is_file() else None,
    )
