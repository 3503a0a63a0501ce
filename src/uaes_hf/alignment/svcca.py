"""SVCCA: canonical correlations between the top singular subspaces of two representations.

Each representation (rows L2-normalised, then every column centred and divided by its
standard deviation + 1e-8) is reduced to its top ``cca_dim`` left singular vectors; the
score is the mean of the ``cca_dim`` canonical correlations between the two reduced
representations (Raghu et al., 2017; platonic-rep's ``svcca``). For orthonormal, centred
bases ``U_A``, ``U_B`` the canonical correlations are exactly the singular values of
``U_A^T U_B``, which is how they are computed here. Range [0, 1].

**Difference from the reference.** platonic-rep takes the subspaces from
``torch.svd_lowrank(q=cca_dim)`` (a randomised range finder with 2 power iterations and an
unseeded Gaussian sketch) and runs scikit-learn's iterative CCA on them. Here ``svd="exact"``
(default) uses the exact SVD, so the score is deterministic; ``svd="randomized"`` is the same
randomised range finder with a seeded sketch. The two agree when the spectrum has a gap after
``cca_dim`` (structured features); on flat spectra (unstructured, isotropic features) the
randomised subspace is far from the top one and the reference's score varies from call to
call (measured spread and the bound tested: see the card).

Chance level: no closed form (about the mean canonical correlation of two random
``cca_dim``-dimensional subspaces of the centred sample space, which grows with
``cca_dim / N``); :func:`uaes_hf.alignment.compare` reports the permutation null's mean.

Cost: the SVD, ``O(N D min(N, D))`` per representation; then ``O(N cca_dim^2)`` per pair
and per permutation.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 20))
    >>> round(svcca(x, 3 * x, cca_dim=5), 6), svcca(x, rng.normal(size=(200, 20))) < 0.3
    (1.0, True)
"""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

import numpy as np

from uaes_hf.alignment.base import Metric, as_float_matrix

SVD_METHODS = ("exact", "randomized")
POWER_ITERATIONS = 2  # as torch.svd_lowrank's default, which the reference uses


def standardize(x: np.ndarray) -> np.ndarray:
    """Columns centred and divided by their (N - 1)-normalised std plus 1e-8."""
    centred = x - x.mean(axis=0)
    return centred / (centred.std(axis=0, ddof=1) + 1e-8)


def top_subspace(act: np.ndarray, dim: int, *, svd: str = "exact", seed: int = 0) -> np.ndarray:
    """An orthonormal ``N x dim`` basis of the top-``dim`` left singular subspace.

    ``svd="randomized"``: a seeded Gaussian sketch, QR, and two power iterations (the
    algorithm of ``torch.svd_lowrank``; its ``U`` spans the same subspace).

    Example:
        >>> import numpy as np
        >>> basis = top_subspace(np.random.default_rng(0).normal(size=(30, 6)), 3)
        >>> np.allclose(basis.T @ basis, np.eye(3))
        True
    """
    if svd == "exact":
        return np.linalg.svd(act, full_matrices=False)[0][:, :dim]
    rng = np.random.default_rng(seed)
    q = np.linalg.qr(act @ rng.standard_normal((act.shape[1], dim)))[0]
    for _ in range(POWER_ITERATIONS):
        q = np.linalg.qr(act.T @ q)[0]
        q = np.linalg.qr(act @ q)[0]
    return q


class SVCCA(Metric):
    """SVCCA as a :class:`~uaes_hf.alignment.base.Metric`; a state is the ``N x cca_dim`` basis."""

    name: ClassVar[str] = "svcca"
    min_samples: ClassVar[int] = 3

    def __init__(self, cca_dim: int = 10, svd: str = "exact", svd_seed: int = 0):
        if isinstance(cca_dim, bool) or not isinstance(cca_dim, numbers.Integral) or cca_dim < 1:
            raise ValueError(f"cca_dim must be an integer >= 1, got {cca_dim!r}")
        if svd not in SVD_METHODS:
            raise ValueError(f"unknown svd {svd!r}; choose one of {', '.join(SVD_METHODS)}")
        if isinstance(svd_seed, bool) or not isinstance(svd_seed, numbers.Integral):
            raise ValueError(f"svd_seed must be an integer, got {svd_seed!r}")
        self.cca_dim, self.svd, self.svd_seed = int(cca_dim), str(svd), int(svd_seed)

    def options(self) -> dict[str, Any]:
        return {"cca_dim": self.cca_dim, "svd": self.svd, "svd_seed": self.svd_seed}

    def prepare(self, features: Any, *, name: str = "features", **search: Any) -> np.ndarray:
        x = as_float_matrix(features, name)
        n, d = x.shape
        self.check_samples(n)
        if self.cca_dim > min(n - 1, d):
            raise ValueError(
                f"cca_dim={self.cca_dim} is larger than {name}'s rank bound min(N - 1, D) = "
                f"{min(n - 1, d)} (N={n}, D={d}); pass a smaller cca_dim"
            )
        return top_subspace(standardize(x), self.cca_dim, svd=self.svd, seed=self.svd_seed)

    def score_states(self, a: np.ndarray, b: np.ndarray) -> float:
        correlations = np.linalg.svd(a.T @ b, compute_uv=False)
        return float(np.mean(np.clip(correlations, 0.0, 1.0)))

    def permute(self, state: np.ndarray, perm: np.ndarray) -> np.ndarray:
        return state[perm]


def svcca(
    features_a: Any,
    features_b: Any,
    *,
    cca_dim: int = 10,
    svd: str = "exact",
    svd_seed: int = 0,
) -> float:
    """SVCCA of two ``N x D`` representations (see the module docstring).

    Args:
        features_a, features_b: ``N x D_a`` and ``N x D_b`` matrices.
        cca_dim: singular directions kept per representation (``<= min(N - 1, D)``).
        svd: ``"exact"`` (default, deterministic) or ``"randomized"`` (seeded range finder).
        svd_seed: the sketch's seed for ``svd="randomized"``.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(1)
        >>> a, b = rng.normal(size=(500, 40)), rng.normal(size=(500, 40))
        >>> svcca(a, b, cca_dim=5) < 0.2
        True
    """
    return SVCCA(cca_dim, svd, svd_seed).score(features_a, features_b)
