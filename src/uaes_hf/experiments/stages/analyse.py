"""The analyse stage: differences and paired tests, per-sample slopes, clusters, capability,
t-SNE, lengths and perplexity tables, and the summary.

==========  ==================================================================================
inputs      prepare: ``RunLayout.plain_texts``, ``image_text``, the prepared table of an
            aligned side; annotate: ``RunLayout.annotated_poems``; extract:
            ``RunLayout.feature_store``, ``RunLayout.perplexity``; align:
            ``RunLayout.convergence``, ``subsets``, ``cluster_labels``
cache key   ``align``, ``analyse``, ``extract.text_models``, ``extract.vision_models``,
            ``extract.perplexity_model``, ``report.title``, ``report.tsne``,
            ``report.wordclouds``
outputs     ``RunLayout.results``: ``results/<table>.csv`` and ``results/summary.json``
            (one function per report section: :mod:`uaes_hf.experiments.analysis`)
==========  ==================================================================================

Example:
    >>> DEPENDS_ON
    ('prepare', 'annotate', 'extract', 'align')
"""

from __future__ import annotations

from typing import Any

from uaes_hf.experiments.pipeline import StageContext

KEYS: tuple[str, ...] = (
    "align",
    "analyse",
    "extract.text_models",
    "extract.vision_models",
    "extract.perplexity_model",
    "report.title",
    "report.tsne",
    "report.wordclouds",
)
DEPENDS_ON: tuple[str, ...] = ("prepare", "annotate", "extract", "align")


def run_analyse(ctx: StageContext) -> dict[str, Any]:
    """Run every analysis; write the results tables and the summary."""
    from uaes_hf.experiments.analysis import analyse

    return analyse(ctx)
