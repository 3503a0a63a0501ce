"""Win-rate arithmetic of the order-swapped pairwise judge (pure functions).

For every query a judge sees the top results of two systems as two rows, twice: in call 1
system A is row 1, in call 2 system B is row 1. Each call answers, per aspect, which row is
better (1 or 2). System A wins a query on an aspect only when BOTH calls prefer A (call 1
says row 1, call 2 says row 2); B wins when both prefer B; otherwise the calls disagree and
the query counts as "similar". Then, over the n judged queries:

- ``win_rate`` = wins / n, ``loss_rate`` = losses / n, ``similar_rate`` = similar / n,
- ``win_or_similar_rate`` = (wins + similar) / n = 1 - loss_rate,
- ``position_consistency`` = (wins + losses) / n, the share of queries where both calls
  agree on a system (a judge that always picks row 1 has 0),

with percentile-bootstrap confidence intervals over queries (``ci_low``/``ci_high`` for the
win rate, ``wos_ci_low``/``wos_ci_high`` for the win-or-similar rate).

Example:
    >>> query_outcome({"overall": 1}, {"overall": 2})  # both calls prefer A
    {'overall': 1}
    >>> query_outcome({"overall": 1}, {"overall": 1})  # each call picks row 1: similar
    {'overall': 0}
    >>> s = win_rate_stats([1, 1, 0, -1], n_bootstrap=200)
    >>> s.win_rate, s.similar_rate, s.win_or_similar_rate, s.position_consistency
    (0.5, 0.25, 0.75, 0.75)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from uaes_hf.alignment.calibration import bootstrap_mean_ci

ROWS = (1, 2)


def query_outcome(first_call: Mapping[str, int], second_call: Mapping[str, int]) -> dict[str, int]:
    """Per aspect: +1 when system A wins, -1 when B wins, 0 when the two calls disagree.

    ``first_call`` showed A as row 1; ``second_call`` showed B as row 1. Both must answer the
    same aspects with 1 or 2.
    """
    if set(first_call) != set(second_call) or not first_call:
        raise ValueError(
            f"both calls must answer the same aspects, got {sorted(first_call)} and "
            f"{sorted(second_call)}"
        )
    outcome = {}
    for aspect, first in first_call.items():
        second = second_call[aspect]
        if first not in ROWS or second not in ROWS:
            raise ValueError(f"row choices must be 1 or 2, got {first!r} and {second!r}")
        prefers_a_first = first == 1  # call 1: row 1 is A
        prefers_a_second = second == 2  # call 2: row 2 is A
        if prefers_a_first and prefers_a_second:
            outcome[aspect] = 1
        elif not prefers_a_first and not prefers_a_second:
            outcome[aspect] = -1
        else:
            outcome[aspect] = 0
    return outcome


@dataclass(frozen=True)
class WinRate:
    """Win-rate statistics of system A against baseline B on one aspect (see module doc)."""

    n: int
    wins: int
    losses: int
    similar: int
    win_rate: float
    loss_rate: float
    similar_rate: float
    win_or_similar_rate: float
    position_consistency: float
    ci_low: float
    ci_high: float
    wos_ci_low: float
    wos_ci_high: float
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def win_rate_stats(
    outcomes: Sequence[int],
    *,
    n_bootstrap: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> WinRate:
    """Statistics of per-query outcomes (+1 win, 0 similar, -1 loss)."""
    values = np.asarray(list(outcomes))
    if values.ndim != 1 or values.size == 0:
        raise ValueError("outcomes must be a non-empty list of +1 / 0 / -1")
    if not np.isin(values, (-1, 0, 1)).all():
        raise ValueError(f"outcomes must be +1, 0 or -1, got {sorted(set(values.tolist()))}")
    n = int(values.size)
    wins, losses = int((values == 1).sum()), int((values == -1).sum())
    similar = n - wins - losses
    win_ci = bootstrap_mean_ci(
        (values == 1).astype(float), n_bootstrap=n_bootstrap, confidence=confidence, seed=seed
    )
    wos_ci = bootstrap_mean_ci(
        (values >= 0).astype(float), n_bootstrap=n_bootstrap, confidence=confidence, seed=seed
    )
    return WinRate(
        n=n,
        wins=wins,
        losses=losses,
        similar=similar,
        win_rate=wins / n,
        loss_rate=losses / n,
        similar_rate=similar / n,
        win_or_similar_rate=(wins + similar) / n,
        position_consistency=(wins + losses) / n,
        ci_low=win_ci.low,
        ci_high=win_ci.high,
        wos_ci_low=wos_ci.low,
        wos_ci_high=wos_ci.high,
        confidence=confidence,
    )


def aspect_win_rates(
    per_query: Sequence[Mapping[str, int]], **bootstrap: Any
) -> dict[str, WinRate]:
    """:func:`win_rate_stats` for every aspect of a list of :func:`query_outcome` results.

    Example:
        >>> rates = aspect_win_rates([{"a": 1}, {"a": 0}], n_bootstrap=100)
        >>> rates["a"].win_rate
        0.5
    """
    if not per_query:
        raise ValueError("no judged queries")
    aspects = list(per_query[0])
    return {
        aspect: win_rate_stats([outcome[aspect] for outcome in per_query], **bootstrap)
        for aspect in aspects
    }
