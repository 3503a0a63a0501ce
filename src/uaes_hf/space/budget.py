"""The Space's cost budget: what one request may cost, checked before any work is done.

Every endpoint of the public Space has a limit, and every refusal says what the limit is
(a ``BudgetError``, a ``ValueError``). The limits were measured on a 2-core CPU
(``benchmarks/space_budget.py`` times the largest request each allows):

=============================  ============================================================
uploads                        at most ``max_upload_bytes`` (16 MiB), ``max_rows`` (5,000)
                               rows and ``max_cells`` (2 million) values per file, checked
                               before the file is parsed
k (neighbour metrics)          ``k <= min(max_k, N - 1)`` (``max_k`` = 100)
permutations                   at most ``max_permutations`` (1,000)
neighbour metrics              ``w * N * k^2 * (permutations + 2) <= max_neighbour_work``
                               (750 million): each evaluation (the score, the per-sample
                               scores, each permutation) compares k-lists of N samples, about
                               N * k^2 work; ``w`` is each metric's measured cost relative to
                               mutual_knn: 1 mutual_knn, 2 cknna, 8 lcs_knn, 12 cycle_knn,
                               20 edit_distance_knn
cka, unbiased_cka              ``N^2 * permutations <= max_kernel_work`` (25 million), and
                               with permutations ``N^2 * (D_A + D_B) <= max_gram_work`` (10
                               billion: the null's Gram matrices)
svcca                          ``N * D * min(N, D) <= max_svd_work`` per input (125 million)
judge (off unless enabled)     ``judge_per_session`` ratings per ``judge_window_s`` per
                               visitor, ``judge_max_chars`` characters, a deadline and a cap
                               on the HTTP requests of the whole Space
queue                          ``concurrency`` requests at once, ``queue_size`` waiting
=============================  ============================================================

Example:
    >>> budget = SpaceBudget()
    >>> budget.check_compare("mutual_knn", n=2000, dims=(64, 64), k=10, permutations=200)
    >>> budget.check_compare("mutual_knn", n=2000, dims=(64, 64), k=1999, permutations=1000)
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    uaes_hf.space.budget.BudgetError: k=1999 is above the Space's limit of 100 (k <= min(100, ...
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Cost of one evaluation (about N * k^2) of each neighbour metric relative to mutual_knn,
# measured at N = 5,000 and k = 30 and 100 (benchmarks/space_budget.py).
NEIGHBOUR_WEIGHTS = {
    "mutual_knn": 1,
    "cknna": 2,
    "lcs_knn": 8,
    "cycle_knn": 12,
    "edit_distance_knn": 20,
}
NEIGHBOUR_METRICS = tuple(NEIGHBOUR_WEIGHTS)
KERNEL_METRICS = ("cka", "unbiased_cka")
LIBRARY_HINT = "use the library or `uaes align` for larger requests"


class BudgetError(ValueError):
    """A request over one of the Space's limits (the message names the limit)."""


@dataclass(frozen=True)
class SpaceBudget:
    """The limits of one Space (see the module docstring for what each bounds and why)."""

    max_upload_bytes: int = 16 * 2**20
    max_rows: int = 5_000
    max_cells: int = 2_000_000
    max_k: int = 100
    max_permutations: int = 1_000
    max_neighbour_work: int = 750_000_000
    max_kernel_work: int = 25_000_000
    max_gram_work: int = 10_000_000_000
    max_svd_work: int = 125_000_000
    max_shown_poems: int = 200
    max_gallery_images: int = 48
    concurrency: int = 2
    queue_size: int = 16
    judge_per_session: int = 5
    judge_window_s: float = 600.0
    judge_max_chars: int = 4_000
    judge_max_requests: int = 200
    judge_deadline_s: float = 60.0

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"SpaceBudget.{name} must be a positive number, got {value!r}")

    # -- feature comparisons -----------------------------------------------------------------
    def check_settings(self, metric: str, k: int, permutations: int) -> None:
        """What can be checked before any file is opened: the metric, k and permutations."""
        from uaes_hf.alignment import METRICS

        if metric not in METRICS:
            raise BudgetError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
        if k < 1:
            raise BudgetError(f"k must be at least 1, got k={k}")
        if metric in NEIGHBOUR_METRICS and k > self.max_k:
            raise BudgetError(
                f"k={k} is above the Space's limit of {self.max_k} (k <= min({self.max_k}, "
                f"N - 1); {LIBRARY_HINT})"
            )
        if not 0 <= permutations <= self.max_permutations:
            raise BudgetError(
                f"permutations={permutations} is outside the Space's limit of 0 to "
                f"{self.max_permutations}"
            )

    def check_shape(self, n: int, d: int, name: str) -> None:
        """One input's rows and cells (uploads and stored features alike)."""
        if n > self.max_rows:
            raise BudgetError(
                f"{name} has {n} rows; the Space accepts at most {self.max_rows} rows "
                f"({LIBRARY_HINT})"
            )
        if n * d > self.max_cells:
            raise BudgetError(
                f"{name} has {n} x {d} = {n * d:,} values; the Space accepts at most "
                f"{self.max_cells:,} per input ({LIBRARY_HINT})"
            )

    def check_compare(
        self, metric: str, *, n: int, dims: Sequence[int], k: int, permutations: int
    ) -> None:
        """The whole request, once N and the widths are known (before any computation)."""
        self.check_settings(metric, k, permutations)
        if metric in NEIGHBOUR_METRICS:
            limit = min(self.max_k, n - 1)
            if k > limit:
                raise BudgetError(
                    f"k={k} is above the limit of min({self.max_k}, N - 1) = {limit} for "
                    f"N={n} samples"
                )
        for cost, formula, limit in self.compare_costs(metric, n=n, dims=dims, k=k, p=permutations):
            if cost > limit:
                raise BudgetError(
                    f"this request costs {formula} = {cost:,}, above the Space's limit of "
                    f"{limit:,} for {metric}: use fewer permutations, a smaller k or fewer "
                    f"rows ({LIBRARY_HINT})"
                )

    def compare_costs(
        self, metric: str, *, n: int, dims: Sequence[int], k: int, p: int
    ) -> list[tuple[int, str, int]]:
        """``(cost, formula with the numbers, limit)`` of each limit a comparison meets.

        Example:
            >>> SpaceBudget().compare_costs("lcs_knn", n=1000, dims=(8, 8), k=20, p=8)
            [(32000000, '8 * N * k^2 * (permutations + 2) = 8 * 1000 * 20^2 * 10', 750000000)]
        """
        if metric in NEIGHBOUR_METRICS:
            weight = NEIGHBOUR_WEIGHTS[metric]
            formula = f"{weight} * N * k^2 * (permutations + 2) = {weight} * {n} * {k}^2 * {p + 2}"
            return [(weight * n * k * k * (p + 2), formula, self.max_neighbour_work)]
        if metric in KERNEL_METRICS:
            checks = [(n * n * p, f"N^2 * permutations = {n}^2 * {p}", self.max_kernel_work)]
            if p:
                width = int(sum(dims))
                formula = f"N^2 * (D_A + D_B) = {n}^2 * {width}"
                checks.append((n * n * width, formula, self.max_gram_work))
            return checks
        widest = max(dims)
        formula = f"N * D * min(N, D) = {n} * {widest} * {min(n, widest)}"
        return [(n * widest * min(n, widest), formula, self.max_svd_work)]

    def check_neighbours(self, n: int, k: int) -> None:
        """The Neighbours tab: one poem's k nearest poems."""
        limit = min(self.max_k, n - 1)
        if not 1 <= k <= limit:
            raise BudgetError(f"k={k} is outside 1 to min({self.max_k}, N - 1) = {limit}")

    def check_judge_text(self, text: str) -> None:
        if len(text) > self.judge_max_chars:
            raise BudgetError(
                f"the poem has {len(text):,} characters; the Space's judge rates at most "
                f"{self.judge_max_chars:,}"
            )


class SessionRateLimiter:
    """At most ``limit`` events per ``window_s`` seconds for each session (sliding window).

    Thread-safe; ``clock`` is injectable for tests.

    Example:
        >>> now = [0.0]
        >>> limiter = SessionRateLimiter(2, 60.0, clock=lambda: now[0])
        >>> limiter.acquire("s1"), limiter.acquire("s1"), limiter.acquire("s1")
        (None, None, 60.0)
        >>> now[0] = 61.0
        >>> limiter.acquire("s1")
    """

    def __init__(
        self, limit: int, window_s: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError(f"need limit >= 1 and window_s > 0, got {limit}, {window_s}")
        self.limit, self.window_s, self.clock = int(limit), float(window_s), clock
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, session: str) -> float | None:
        """Record one event; None when allowed, else the seconds until one is allowed."""
        with self._lock:
            now = self.clock()
            events = self._events.setdefault(session, deque())
            while events and now - events[0] >= self.window_s:
                events.popleft()
            if len(events) >= self.limit:
                return round(self.window_s - (now - events[0]), 1)
            events.append(now)
            return None
