"""Publishing a report folder from stored results (``uaes run``, ``uaes report``).

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from uaes_hf.experiments.report.results import write_results
    >>> results = write_results(Path(tempfile.mkdtemp()) / "results", {}, {"title": "T"})
    >>> index = publish_report(results, results.parent / "out", show_progress=False)
    >>> index.name, stored_figures(index.parent)
    ('index.html', [])
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from uaes_hf.experiments.layout import ReportLayout, ResultsLayout
from uaes_hf.experiments.report.figure_set import Figure
from uaes_hf.experiments.report.figures import draw_figures
from uaes_hf.experiments.report.html import render_html
from uaes_hf.experiments.report.results import load_results


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
    out = ReportLayout(Path(out_dir))
    out.root.mkdir(parents=True, exist_ok=True)
    source = ResultsLayout.of(results_dir).folder
    target = out.results
    if source.resolve() != target.folder.resolve():
        if target.folder.exists():
            shutil.rmtree(target.folder)
        shutil.copytree(source, target.folder)
    if figures is None:
        figures = draw_figures(results, out.root, dpi=dpi, show_progress=show_progress)
    elif figures_from is not None and Path(figures_from).resolve() != out.root.resolve():
        if out.figures_dir.exists():
            shutil.rmtree(out.figures_dir)
        shutil.copytree(ReportLayout(Path(figures_from)).figures_dir, out.figures_dir)
    figure_list = json.dumps([vars(f) for f in figures], indent=2)
    target.figures_list.write_text(figure_list, "utf-8")
    if timings is not None:
        timings = pd.DataFrame(timings)
        timings.to_csv(target.timings, index=False)
    elif target.timings.is_file():
        timings = pd.read_csv(target.timings)
    out.index.write_text(render_html(results, figures, timings), "utf-8")
    return out.index


def stored_figures(results_dir: str | Path) -> list[Figure]:
    """The figure list saved with a report (``results/figures.json``)."""
    return [Figure(**f) for f in load_results(results_dir).figures]
