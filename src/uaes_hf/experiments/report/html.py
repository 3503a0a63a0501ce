"""The report page: every figure with its caption, the headline table, the results files
and the run timings, as one self-contained ``index.html``.

Example:
    >>> from uaes_hf.experiments.report.results import Results
    >>> page = render_html(Results(summary={"title": "T"}), [])
    >>> page.startswith("<!doctype html>") and "<h1>T</h1>" in page
    True
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from uaes_hf.experiments.layout import ReportLayout
from uaes_hf.experiments.report.figure_set import Figure
from uaes_hf.experiments.report.results import RESULT_TABLES, Results


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


HEADLINE_COLUMNS = (
    "comparison",
    "side_a",
    "side_b",
    "n",
    "n_b",
    "mean_difference",
    "ci_low",
    "ci_high",
    "p_text",
    "n_a_greater",
    "n_pairs",
    "p_two_sided",
)


def _present(rows: list[dict[str, Any]], columns: Sequence[str]) -> list[str]:
    return [c for c in columns if any(c in row for row in rows)]


def _clamp_text(summary: dict[str, Any]) -> str:
    """The clamp setting in words.

    Example:
        >>> _clamp_text({"outlier_quantile": 0.95}), _clamp_text({})
        ('q = 0.95 (mean of per-sample quantiles)', 'none')
    """
    q = summary.get("outlier_quantile")
    if q is None:
        return "none"
    kind = (
        "exact order statistic" if summary.get("outlier_exact") else "mean of per-sample quantiles"
    )
    return f"q = {q} ({kind})"


def render_html(results: Results, figures: Sequence[Figure], timings: Any = None) -> str:
    """The report page (self-contained HTML referencing ``figures/*.png``)."""
    s = results.summary
    per_sample_note = (
        "Here every sample's score is the study's <b>max over every searched layer pair</b>: "
        "<b>INFLATED</b>. Each per-sample figure gives the chance level under the same max "
        "(the mean per-sample max of a permutation null), several times k/(N-1)"
        if s.get("per_sample_mode") == "max"
        else (
            "Here the layer pair of each model pair is chosen on a <b>held-out half</b> of the "
            "samples and per-sample scores are reported on the other half"
            if s.get("per_sample_mode", "heldout") == "heldout"
            else "Here every model uses a <b>fixed layer</b> (align.fixed_layers, else its last)"
        )
    )
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(s.get('title', 'uaes report'))}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(s.get('title', 'uaes report'))}</h1>",
        f"<p>Experiment <b>{html.escape(str(s.get('name', '')))}</b>; text models: "
        f"{html.escape(', '.join(s.get('models', {}).get('text', [])))}; vision models: "
        f"{html.escape(', '.join(s.get('models', {}).get('vision', [])) or 'none')}. "
        f"Sizes: {html.escape(json.dumps(s.get('sizes', {})))}. Mutual kNN with k={s.get('k')}, "
        f"layer selection <b>{html.escape(str(s.get('layer_selection')))}</b> "
        f"(rule {html.escape(str(s.get('layer_rule', 'best')))}; embedding layer "
        f"{'excluded' if s.get('exclude_embedding_layer') else 'searched'}; "
        f"{s.get('n_permutations')} permutations, {html.escape(str(s.get('calibration', '')))} "
        f"calibration, {s.get('n_bootstrap')} bootstrap replicates). Outlier clamp: "
        f"<b>{_clamp_text(s)}</b>. Compared sides: "
        f"{'matched in N' if s.get('match_sizes', True) else 'the study sizes (N may differ)'}. "
        f"Distribution alignment fitted in "
        f"{html.escape(str(s.get('distribution_alignment_model')))}. Per-sample analyses: "
        f"<b>{html.escape(str(s.get('per_sample_mode')))}</b>"
        + (" (<b>INFLATED</b>)" if s.get("per_sample_inflated") else "")
        + ".</p>",
        "<p class='note'>How to read the numbers: <b>chance</b> is k/(N-1), the expected score "
        "of unrelated spaces. <b>calibrated</b> = (score - tau)/(1 - tau) with tau the 95% "
        "quantile of a permutation null that relabels model B's samples in every searched "
        "layer and keeps the max over layer pairs (so the layer search is corrected); 0 means "
        "no better than chance. <b>p</b> is the add-one permutation p-value; CIs are "
        "percentile bootstrap intervals over samples (neighbour sets fixed). Compared subsets "
        "have equal N. The headline test resamples the texts: its p-value comes from random "
        "splits of the two sides' pooled texts and its interval from half-samples of each "
        "side, every neighbour set recomputed, so it asks whether the difference is a "
        "property of the kind of text rather than of the texts drawn. The count of model "
        "pairs higher (with a paired sign-flip p-value) only describes the pairs: they "
        "share models and the texts are fixed in it.</p>",
        "<p class='note'>Per-sample analyses (length, perplexity, aesthetic score, image "
        "aesthetic level): a per-sample max over layer pairs inflates the score several-fold "
        f"above chance. {per_sample_note} (N = {s.get('per_sample_n', 'n/a')} reported "
        "poems).</p>",
    ]
    headline = s.get("headline", [])
    if headline:
        import pandas as pd

        parts.append("<h2>Headline comparisons</h2>")
        parts.append(_table_html(pd.DataFrame(headline), _present(headline, HEADLINE_COLUMNS)))
    variants = results.get("headline_variants")
    if not variants.empty:
        parts.append(
            "<h3>Beside the headline: without the embedding layer, and against TF-IDF</h3>"
            + _table_html(variants)
        )
    substituted = s.get("substituted", [])
    parts.append("<h2>What was substituted</h2>")
    if substituted:
        parts.append("<ul>")
        parts += [
            f"<li><b>{html.escape(x['what'])}</b> ({html.escape(x['stage'])}): "
            f"{html.escape(x['detail'])}</li>"
            for x in substituted
        ]
        parts.append("</ul>")
    else:
        parts.append("<p>Nothing: every step ran as configured.</p>")
    truncation = results.get("truncation")
    if not truncation.empty:
        parts.append("<h3>Texts truncated at each model's token cap</h3>" + _table_html(truncation))
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
    links = ReportLayout(Path()).results  # paths relative to index.html
    for name, text in RESULT_TABLES.items():
        if name in results.tables:
            href = links.table(name).as_posix()
            parts.append(f"<li><a href='{href}'>{href}</a>: {html.escape(text)}</li>")
    summary = links.summary.as_posix()
    parts.append(f"<li><a href='{summary}'>{summary}</a></li></ul>")
    if timings is not None and len(timings):
        total = float(timings["seconds"].sum())
        parts.append(f"<h2>Run timings</h2><p>Total {total:.1f} s in this run.</p>")
        parts.append(_table_html(timings))
    parts.append("</body></html>")
    return "\n".join(parts)
