"""One poem's k nearest poems under two models, side by side (the Neighbours tab).

The neighbour search is the library's (cosine, self excluded), so a row's overlap is its
term of the mutual kNN mean. Rows are numbered in the order of the poems given (the poems
dataset's order, joined to each model's feature rows by id).

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(20, 3))
    >>> found = compare_neighbours(x, x[:, ::-1] * 2, query=5, k=4)
    >>> found.neighbours_a == found.neighbours_b, found.overlap
    (True, 1.0)
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


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
