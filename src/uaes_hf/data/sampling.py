"""Length-aligned and distribution-aligned sampling (the study's "Adjustment to reduce bias").

Length-aligned sampling draws poems so that their length distribution matches a reference
(the plain texts). The reference is cut into quantile bins (default 20); each bin gets the
reference's share of the sample, drawn from the candidates whose length falls in that bin.

Two details differ from the study's script on purpose:

* a value equal to the top bin edge belongs to the last bin (``np.digitize`` alone would
  put the reference's longest text, and every candidate of that length, outside all bins);
* a bin with no candidates is reported (:class:`EmptyBin`, with its share of the reference)
  and left empty, never silently refilled from a neighbour, so the sample is smaller
  instead of quietly misaligned.

``replace=True`` gives the study's ``aligned_5`` (repeated sampling, default size = the
reference size); ``replace=False`` gives ``aligned_s``: the largest sample that keeps every
bin's share without drawing a poem twice.

Distribution-aligned sampling (for the plain texts, on model features) follows the study:
concatenate both sets, standardise, PCA, logistic regression small-vs-large, and draw from
the large set with the predicted probability of "small" as weight.

Example:
    >>> import numpy as np
    >>> ref = np.array([5, 6, 7, 8, 9, 10])
    >>> cand = np.array([5, 5, 6, 7, 8, 9, 10, 40])
    >>> s = length_aligned_sample(cand, ref, n_bins=3, replace=True, seed=0)
    >>> int(s.indices.size), bool(40 in cand[s.indices])
    (6, False)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_BINS = 20


def _as_lengths(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D lengths, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def quantile_bin_edges(reference: Any, n_bins: int = DEFAULT_BINS) -> np.ndarray:
    """Edges of ``n_bins`` quantile bins of ``reference``; tied quantiles collapse.

    Example:
        >>> quantile_bin_edges([1, 2, 3, 4, 5], n_bins=2).tolist()
        [1.0, 3.0, 5.0]
        >>> quantile_bin_edges([7, 7, 7], n_bins=4).tolist()
        [7.0, 7.0]
    """
    ref = _as_lengths(reference, "reference")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    edges = np.unique(np.quantile(ref, np.linspace(0.0, 1.0, n_bins + 1)))
    if edges.size == 1:  # constant reference: one bin holding exactly that value
        edges = np.array([edges[0], edges[0]])
    return edges


def assign_bins(values: Any, edges: np.ndarray) -> np.ndarray:
    """Bin index of each value; the top edge belongs to the last bin; outside -> -1.

    Bins are ``[e0, e1), [e1, e2), ..., [e_{n-1}, e_n]``.

    Example:
        >>> assign_bins([0, 1, 2.5, 5, 6], np.array([1.0, 3.0, 5.0])).tolist()
        [-1, 0, 0, 1, -1]
    """
    vals = np.asarray(values, dtype=float)
    edges = np.asarray(edges, dtype=float)
    n_bins = edges.size - 1
    index = np.searchsorted(edges, vals, side="right") - 1
    index[vals == edges[-1]] = n_bins - 1
    index[(vals < edges[0]) | (vals > edges[-1])] = -1
    return index


def allocate(total: int, shares: np.ndarray) -> np.ndarray:
    """Split ``total`` into integers proportional to ``shares`` (largest remainder).

    Example:
        >>> allocate(10, np.array([0.25, 0.25, 0.5])).tolist()
        [3, 2, 5]
    """
    shares = np.asarray(shares, dtype=float)
    raw = total * shares / shares.sum()
    counts = np.floor(raw).astype(int)
    remainder = total - counts.sum()
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[:remainder]] += 1
    return counts


@dataclass(frozen=True)
class EmptyBin:
    """A reference bin with no candidate: its range, its share, and what it lacked."""

    index: int
    low: float
    high: float
    share: float
    wanted: int


@dataclass
class AlignedSample:
    """Result of :func:`length_aligned_sample`; ``indices`` index the candidates."""

    indices: np.ndarray
    replace: bool
    edges: np.ndarray
    reference_share: np.ndarray
    wanted: np.ndarray
    drawn: np.ndarray
    available: np.ndarray
    empty_bins: list[EmptyBin]
    out_of_range: int
    ks_before: float
    ks_after: float
    ks_pvalue_before: float
    ks_pvalue_after: float
    requested: int
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """JSON-ready numbers for the build report."""
        return {
            "replace": self.replace,
            "n_bins": int(self.edges.size - 1),
            "requested": self.requested,
            "sampled": int(self.indices.size),
            "unique_sampled": int(np.unique(self.indices).size),
            "candidates_outside_reference_range": self.out_of_range,
            "empty_bins": [vars(b) for b in self.empty_bins],
            "empty_bins_share": float(sum(b.share for b in self.empty_bins)),
            "ks_before": self.ks_before,
            "ks_after": self.ks_after,
            "ks_pvalue_before": self.ks_pvalue_before,
            "ks_pvalue_after": self.ks_pvalue_after,
            "notes": list(self.notes),
        }


def length_aligned_sample(
    candidate_lengths: Any,
    reference_lengths: Any,
    *,
    n_bins: int = DEFAULT_BINS,
    n_samples: int | None = None,
    replace: bool = True,
    seed: int = 0,
) -> AlignedSample:
    """Sample candidates so their lengths follow the reference's quantile-bin shares.

    ``n_samples`` defaults to the reference size with replacement; without replacement it
    defaults to (and is capped at) the largest size every non-empty bin can supply.

    Example:
        >>> s = length_aligned_sample([1, 2, 3, 50], [1, 2, 3], n_bins=3, replace=False)
        >>> sorted(s.indices.tolist()), s.empty_bins
        ([0, 1, 2], [])
    """
    cand = _as_lengths(candidate_lengths, "candidate_lengths")
    ref = _as_lengths(reference_lengths, "reference_lengths")
    if n_samples is not None and n_samples < 0:
        raise ValueError(f"n_samples must be >= 0, got {n_samples}")
    from scipy.stats import ks_2samp

    edges = quantile_bin_edges(ref, n_bins)
    n_real_bins = edges.size - 1
    ref_bins = assign_bins(ref, edges)
    share = np.bincount(ref_bins, minlength=n_real_bins) / ref.size
    cand_bins = assign_bins(cand, edges)
    members = [np.flatnonzero(cand_bins == b) for b in range(n_real_bins)]
    available = np.array([m.size for m in members])
    notes: list[str] = []
    if n_real_bins < n_bins:
        notes.append(f"{n_bins} quantile bins requested; tied quantiles left {n_real_bins}")

    if replace:
        total = ref.size if n_samples is None else n_samples
    else:
        feasible = (share > 0) & (available > 0)
        ratio = np.min(available[feasible] / share[feasible]) if feasible.any() else 0.0
        cap = int(np.floor(ratio + 1e-9))  # 1/(1/3) may come out as 2.9999999
        total = cap if n_samples is None else min(n_samples, cap)
        if n_samples is not None and n_samples > cap:
            notes.append(f"without replacement at most {cap} keep the shares; asked {n_samples}")
    wanted = allocate(total, share) if total > 0 else np.zeros(n_real_bins, dtype=int)

    rng = np.random.default_rng(seed)
    picks: list[np.ndarray] = []
    drawn = np.zeros(n_real_bins, dtype=int)
    empty: list[EmptyBin] = []
    for b in range(n_real_bins):
        if wanted[b] == 0:
            continue
        if available[b] == 0:
            empty.append(
                EmptyBin(b, float(edges[b]), float(edges[b + 1]), float(share[b]), int(wanted[b]))
            )
            continue
        count = int(wanted[b]) if replace else int(min(wanted[b], available[b]))
        picks.append(rng.choice(members[b], size=count, replace=replace))
        drawn[b] = count
    indices = np.concatenate(picks) if picks else np.zeros(0, dtype=int)
    indices = indices[rng.permutation(indices.size)]

    before = ks_2samp(cand, ref)
    after = ks_2samp(cand[indices], ref) if indices.size else None
    return AlignedSample(
        indices=indices,
        replace=replace,
        edges=edges,
        reference_share=share,
        wanted=wanted,
        drawn=drawn,
        available=available,
        empty_bins=empty,
        out_of_range=int(np.sum(cand_bins < 0)),
        ks_before=float(before.statistic),
        ks_after=float(after.statistic) if after else float("nan"),
        ks_pvalue_before=float(before.pvalue),
        ks_pvalue_after=float(after.pvalue) if after else float("nan"),
        requested=int(total),
        notes=notes,
    )


def save_length_histogram(
    reference_lengths: Any,
    candidate_lengths: Any,
    sampled_lengths: Any,
    path: str | Path,
    *,
    labels: tuple[str, str] = ("plain texts", "poems"),
) -> Path:
    """Save the study's before/after length histograms (two panels) as a PNG.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp()) / "hist.png"
        >>> save_length_histogram([1, 2], [1, 9], [1, 2], out).stat().st_size > 0
        True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref = _as_lengths(reference_lengths, "reference_lengths")
    cand = _as_lengths(candidate_lengths, "candidate_lengths")
    sampled = np.asarray(sampled_lengths, dtype=float)
    upper = float(np.percentile(np.concatenate([ref, cand]), 99)) + 1
    bins = np.linspace(0, upper, 40)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=False)
    for ax, other, title in ((axes[0], cand, "before"), (axes[1], sampled, "after")):
        ax.hist(ref, bins=bins, alpha=0.55, density=True, label=labels[0])
        if other.size:
            ax.hist(other, bins=bins, alpha=0.55, density=True, label=labels[1])
        ax.set_title(f"Length distribution ({title} alignment)")
        ax.set_xlabel("words")
        ax.set_ylabel("density")
        ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@dataclass
class DistributionAlignedSample:
    """Result of :func:`distribution_aligned_sample`; ``indices`` index the large set."""

    indices: np.ndarray
    weights: np.ndarray
    n_components: int


def _as_features(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n_samples, n_features) matrix, got {array.shape}")
    if array.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 rows, got {array.shape[0]}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def distribution_aligned_sample(
    small_features: Any,
    large_features: Any,
    n_samples: int | None = None,
    *,
    n_components: int = 50,
    replace: bool = False,
    seed: int = 0,
) -> DistributionAlignedSample:
    """Draw from the large set the points that look like the small set (the study's method).

    Concatenate, standardise, PCA to ``n_components`` (capped by the data), fit a logistic
    regression small (1) vs large (0), and sample the large set with its predicted
    probability of "small" as weight. ``n_samples`` defaults to the small set's size.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> small, large = rng.normal(2, 1, (50, 3)), rng.normal(0, 1, (500, 3))
        >>> res = distribution_aligned_sample(small, large, 50, seed=0)
        >>> bool(large[res.indices].mean() > large.mean())
        True
    """
    small = _as_features(small_features, "small_features")
    large = _as_features(large_features, "large_features")
    if small.shape[1] != large.shape[1]:
        raise ValueError(
            f"small and large sets differ in feature width: {small.shape[1]} vs {large.shape[1]}"
        )
    n = small.shape[0] if n_samples is None else n_samples
    if n < 1:
        raise ValueError(f"n_samples must be >= 1, got {n}")
    if not replace and n > large.shape[0]:
        raise ValueError(
            f"n_samples={n} > large set size {large.shape[0]}; use replace=True or fewer"
        )
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    both = np.vstack([small, large])
    labels = np.concatenate([np.ones(small.shape[0]), np.zeros(large.shape[0])])
    scaled = StandardScaler().fit_transform(both)
    k = int(min(n_components, both.shape[1], both.shape[0] - 1))
    reduced = PCA(n_components=k, random_state=seed).fit_transform(scaled)
    classifier = LogisticRegression(max_iter=1000).fit(reduced, labels)
    prob_small = classifier.predict_proba(reduced[small.shape[0] :])[:, 1]
    weights = prob_small / prob_small.sum()
    if not replace and np.count_nonzero(weights) < n:
        raise ValueError(f"only {np.count_nonzero(weights)} large points have weight > 0 < {n}")
    rng = np.random.default_rng(seed)
    indices = rng.choice(large.shape[0], size=n, replace=replace, p=weights)
    return DistributionAlignedSample(indices=indices, weights=weights, n_components=k)
