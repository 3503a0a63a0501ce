"""The report stage: every figure and the report folder, from the analysed results.

==========  ==================================================================================
inputs      analyse: ``RunLayout.results`` (``results/*.csv``, ``results/summary.json``)
cache key   ``report.dpi``
outputs     a report folder (:class:`uaes_hf.experiments.layout.ReportLayout`):
            ``figures/*.png``, ``results/`` (copied, with ``figures.json``), ``index.html``
==========  ==================================================================================

Example:
    >>> KEYS, DEPENDS_ON
    (('report.dpi',), ('analyse',))
"""

from __future__ import annotations

from typing import Any

from uaes_hf.experiments.layout import RunLayout
from uaes_hf.experiments.pipeline import StageContext

KEYS: tuple[str, ...] = ("report.dpi",)
DEPENDS_ON: tuple[str, ...] = ("analyse",)


def run_report(ctx: StageContext) -> dict[str, Any]:
    """Draw every figure and write the report folder from the analysed results."""
    from uaes_hf.experiments.report import publish_report

    layout = RunLayout.for_stage(ctx)
    index = publish_report(
        layout.results.folder,
        layout.report.root,
        dpi=ctx.config.report.dpi,
        show_progress=ctx.show_progress,
    )
    return {"index": index.name}
