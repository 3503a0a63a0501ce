"""The report: results as CSV/JSON, figures as PNG, ``index.html`` with captions, a console
summary of the headline comparisons, and a diff of two runs' results.

A report folder is laid out by :class:`uaes_hf.experiments.layout.ReportLayout`::

    index.html                 every figure, captioned with what it shows and its numbers
    figures/*.png
    results/<table>.csv        tidy tables (see RESULT_TABLES)
    results/summary.json       sizes, models, settings, headline tests, skipped comparisons
    results/figures.json       file, title and caption of every figure
    results/timings.csv        per-stage wall time of the run that wrote the report

Modules: :mod:`~uaes_hf.experiments.report.results` (write/load tables),
:mod:`~uaes_hf.experiments.report.sections` (one figure function per report section),
:mod:`~uaes_hf.experiments.report.figures`, :mod:`~uaes_hf.experiments.report.html`,
:mod:`~uaes_hf.experiments.report.console`, :mod:`~uaes_hf.experiments.report.publish` and
:mod:`~uaes_hf.experiments.report.diff`. :func:`load_results` is the stable entry point for
other code (the Gradio Space).

Example:
    >>> import tempfile, pandas as pd
    >>> from uaes_hf.experiments.report import load_results, write_results
    >>> folder = write_results(tempfile.mkdtemp(), {"convergence": pd.DataFrame({"k": [10]})}, {})
    >>> load_results(folder)["convergence"].columns.tolist()
    ['k']
"""

from __future__ import annotations

from uaes_hf.experiments.report.console import console_summary
from uaes_hf.experiments.report.diff import diff_results
from uaes_hf.experiments.report.figure_set import Figure
from uaes_hf.experiments.report.figures import draw_figures
from uaes_hf.experiments.report.html import render_html
from uaes_hf.experiments.report.publish import publish_report, stored_figures
from uaes_hf.experiments.report.results import (
    RESULT_TABLES,
    Results,
    load_results,
    write_results,
)

__all__ = [
    "RESULT_TABLES",
    "Figure",
    "Results",
    "console_summary",
    "diff_results",
    "draw_figures",
    "load_results",
    "publish_report",
    "render_html",
    "stored_figures",
    "write_results",
]
