"""Drawing a report's figures: every section's figures, in the report's order.

Example:
    >>> import tempfile
    >>> from uaes_hf.experiments.report.results import Results
    >>> draw_figures(Results(), tempfile.mkdtemp(), show_progress=False)
    []
"""

from __future__ import annotations

from pathlib import Path

from uaes_hf.experiments.layout import ReportLayout
from uaes_hf.experiments.report.figure_set import Figure, FigureSet
from uaes_hf.experiments.report.results import Results
from uaes_hf.experiments.report.sections import SECTIONS


def draw_figures(
    results: Results, out_dir: str | Path, *, dpi: int = 110, show_progress: bool = True
) -> list[Figure]:
    """Draw every figure the results support into ``out_dir/figures``; return their list."""
    from tqdm.auto import tqdm

    out = ReportLayout(Path(out_dir))
    out.figures_dir.mkdir(parents=True, exist_ok=True)
    figure_set = FigureSet(results, dpi=dpi)
    for section in SECTIONS:
        section(figure_set)
    figures: list[Figure] = []
    bar = tqdm(figure_set.jobs, desc="report figures", unit="fig", disable=not show_progress)
    for figure, draw in bar:
        draw(out.root / figure.file)
        figures.append(figure)
    return figures
