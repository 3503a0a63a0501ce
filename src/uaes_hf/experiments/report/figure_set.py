"""A report's figures before they are drawn, and the number formats of their captions.

Example:
    >>> from uaes_hf.experiments.report.results import Results
    >>> fs = FigureSet(Results(), dpi=50)
    >>> fs.add("Section", "a b", "Title", "Caption 1.", lambda path: None)
    >>> fs.jobs[0][0].file
    'figures/a_b.png'
    >>> fmt(0.12345), fmt(float("nan")), p_text(0.000123)
    ('0.123', 'n/a', '0.000123')
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from uaes_hf.experiments.layout import ReportLayout
from uaes_hf.experiments.report.results import Results


@dataclass
class Figure:
    """One figure of the report."""

    file: str
    title: str
    caption: str
    section: str


def fmt(x: Any, digits: int = 3) -> str:
    """A number with ``digits`` decimals, ``n/a`` when not finite."""
    try:
        value = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not np.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"


def p_text(x: Any) -> str:
    """A p-value with 3 significant digits, ``n/a`` when not finite."""
    try:
        value = float(x)
    except (TypeError, ValueError):
        return str(x)
    return "n/a" if not np.isfinite(value) else f"{value:.3g}"


def subset_stats(table: Any) -> str:
    """N, k, chance, score range and mean, calibrated mean, significant pairs, CI width."""
    if table.empty:
        return "no pairs"
    return (
        f"N={int(table['n'].iloc[0])}, k={int(table['k'].iloc[0])}, chance "
        f"{fmt(table['chance'].iloc[0])}; scores {fmt(table['score'].min())}-"
        f"{fmt(table['score'].max())} (mean {fmt(table['score'].mean())}), calibrated mean "
        f"{fmt(table['calibrated'].mean())}, {int((table['p_value'] < 0.05).sum())}/"
        f"{len(table)} pairs with permutation p < 0.05 (layer search corrected)"
        + (
            f", mean bootstrap CI half-width {fmt(half.mean())}"
            if (half := (table["ci_high"] - table["ci_low"]) / 2).notna().any()
            else ""
        )
    )


@dataclass
class FigureSet:
    """The results a report draws from, and the figures queued so far (in report order)."""

    results: Results
    dpi: int = 110
    jobs: list[tuple[Figure, Callable[[Path], Any]]] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, Any]:
        return self.results.summary

    @property
    def text_models(self) -> list[str]:
        return list(self.summary.get("models", {}).get("text", []))

    @property
    def vision_models(self) -> list[str]:
        return list(self.summary.get("models", {}).get("vision", []))

    @property
    def convergence(self) -> Any:
        return self.results.get("convergence")

    @property
    def tests(self) -> Any:
        return self.results.get("comparison_tests")

    def add(
        self, section: str, name: str, title: str, caption: str, draw: Callable[[Path], Any]
    ) -> None:
        """Queue one figure; ``draw(path)`` writes its PNG."""
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        file = ReportLayout.figure_file(safe)
        self.jobs.append((Figure(file, title, caption, section), draw))
