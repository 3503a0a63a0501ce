"""Brute-force references of the eight alignment metrics, written from their definitions.

They share no code with ``uaes_hf.alignment``: full N x N matrices, Python lists and sets,
textbook dynamic programmes and the classic CCA formula. Neighbour lists follow the library's
documented tie rule (similarity descending, then row index ascending), in float64.
"""

from __future__ import annotations

import numpy as np


def normalize(x):
    x = np.asarray(x, dtype=np.float64)
    norms = np.sqrt((x * x).sum(axis=1, keepdims=True))
    return x / np.where(norms > 0, norms, 1.0)


def neighbor_lists(x, k):
    """k most similar other rows of every row, by (similarity desc, index asc)."""
    xn = normalize(x)
    out = []
    for i in range(len(xn)):
        # one dot product per pair: equal rows give bit-equal similarities (a BLAS matrix
        # product may round two equal columns differently)
        sims = {j: float(np.dot(xn[i], xn[j])) for j in range(len(xn)) if j != i}
        out.append(sorted(sims, key=lambda j: (-sims[j], j))[:k])
    return out


# ---------------------------------------------------------------- neighbour-list metrics


def mutual_knn_rows(a, b, k):
    la, lb = neighbor_lists(a, k), neighbor_lists(b, k)
    return np.array([len(set(la[i]) & set(lb[i])) / k for i in range(len(la))])


def cycle_knn_rows(a, b, k):
    """1 if i is among A's neighbours of one of B's neighbours of i."""
    la, lb = neighbor_lists(a, k), neighbor_lists(b, k)
    return np.array([float(any(i in la[j] for j in lb[i])) for i in range(len(la))])


def lcs_length(x, y):
    table = [[0] * (len(y) + 1) for _ in range(len(x) + 1)]
    for i in range(1, len(x) + 1):
        for j in range(1, len(y) + 1):
            if x[i - 1] == y[j - 1]:
                table[i][j] = table[i - 1][j - 1] + 1
            else:
                table[i][j] = max(table[i - 1][j], table[i][j - 1])
    return table[-1][-1]


def lcs_knn_rows(a, b, k, normalize_by_k=False):
    la, lb = neighbor_lists(a, k), neighbor_lists(b, k)
    rows = np.array([float(lcs_length(la[i], lb[i])) for i in range(len(la))])
    return rows / k if normalize_by_k else rows


def levenshtein(x, y):
    previous = list(range(len(y) + 1))
    for i, left in enumerate(x, 1):
        current = [i]
        for j, right in enumerate(y, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (left != right))
            )
        previous = current
    return previous[-1]


def edit_distance_knn_rows(a, b, k):
    la, lb = neighbor_lists(a, k), neighbor_lists(b, k)
    return np.array([1.0 - levenshtein(la[i], lb[i]) / k for i in range(len(la))])


# ---------------------------------------------------------------- kernel metrics


def hsic_biased(K, L):
    n = K.shape[0]
    H = np.eye(n) - 1.0 / n
    return np.trace(K @ H @ L @ H)


def hsic_unbiased(K, L):
    m = K.shape[0]
    Kt, Lt = K.copy(), L.copy()
    np.fill_diagonal(Kt, 0)
    np.fill_diagonal(Lt, 0)
    value = (
        np.sum(Kt * Lt.T)
        + np.sum(Kt) * np.sum(Lt) / ((m - 1) * (m - 2))
        - 2 * np.sum(Kt @ Lt) / (m - 2)
    )
    return value / (m * (m - 3))


def kernel(x, name="linear", sigma=1.0):
    xn = normalize(x)
    if name == "linear":
        return xn @ xn.T
    diff = xn[:, None, :] - xn[None, :, :]
    return np.exp(-np.sum(diff * diff, axis=2) / (2 * sigma**2))


def cka(a, b, kernel_name="linear", sigma=1.0, unbiased=False):
    K, L = kernel(a, kernel_name, sigma), kernel(b, kernel_name, sigma)
    h = hsic_unbiased if unbiased else hsic_biased
    return h(K, L) / np.sqrt(h(K, K) * h(L, L))


def cknna(a, b, k):
    K, L = kernel(a), kernel(b)
    n = len(K)

    def mask(lists):
        m = np.zeros((n, n))
        for i, row in enumerate(lists):
            m[i, row] = 1.0
        return m

    mk, ml = mask(neighbor_lists(a, k)), mask(neighbor_lists(b, k))
    kl = hsic_unbiased(mk * ml * K, mk * ml * L)
    kk = hsic_unbiased(mk * K, mk * K)
    ll = hsic_unbiased(ml * L, ml * L)
    return kl / np.sqrt(kk * ll)


# ---------------------------------------------------------------- SVCCA


def svcca(a, b, cca_dim):
    """Top singular directions from the eigenvectors of act act^T, then textbook CCA."""

    def reduced(x):
        act = normalize(x)
        act = act - act.mean(axis=0)
        act = act / (act.std(axis=0, ddof=1) + 1e-8)
        values, vectors = np.linalg.eigh(act @ act.T)
        top = vectors[:, np.argsort(values)[::-1][:cca_dim]]
        return top * np.sqrt(np.sort(values)[::-1][:cca_dim])  # U S: the reduced data

    x, y = reduced(a), reduced(b)
    x, y = x - x.mean(0), y - y.mean(0)
    cxx, cyy, cxy = x.T @ x, y.T @ y, x.T @ y
    # canonical correlations^2 = eigenvalues of Cxx^-1 Cxy Cyy^-1 Cyx
    values = np.linalg.eigvals(np.linalg.solve(cxx, cxy) @ np.linalg.solve(cyy, cxy.T))
    return float(np.mean(np.sqrt(np.clip(np.sort(values.real)[::-1], 0.0, 1.0))))


# name -> (score(a, b, k, **options), per-sample rows or None)
REFERENCES = {
    "mutual_knn": (lambda a, b, k: mutual_knn_rows(a, b, k).mean(), mutual_knn_rows),
    "cycle_knn": (lambda a, b, k: cycle_knn_rows(a, b, k).mean(), cycle_knn_rows),
    "lcs_knn": (lambda a, b, k: lcs_knn_rows(a, b, k).mean(), lcs_knn_rows),
    "edit_distance_knn": (
        lambda a, b, k: edit_distance_knn_rows(a, b, k).mean(),
        edit_distance_knn_rows,
    ),
    "cknna": (cknna, None),
    "cka": (lambda a, b, k: cka(a, b), None),
    "unbiased_cka": (lambda a, b, k: cka(a, b, unbiased=True), None),
    "svcca": (lambda a, b, k: svcca(a, b, 3), None),
}


def random_pair(seed, n=40, d_a=6, d_b=9):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d_a)), rng.normal(size=(n, d_b))


def related_pair(seed, n=45, d=6):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d))
    return a, np.tanh(a @ rng.normal(size=(d, d + 3))) + 0.3 * rng.normal(size=(n, d + 3))


def tied_pair(seed, n=42):
    """Clustered data with exact (and power-of-2 scaled) duplicate rows: exact ties.

    "Mathematical" ties between distinct rows would depend on rounding, so there are none.
    """
    rng = np.random.default_rng(seed)
    centers = 3 * rng.normal(size=(4, 5))
    a = centers[rng.integers(0, 4, size=n)] + 0.5 * rng.normal(size=(n, 5))
    a[n - 6 : n - 3] = a[:3]
    a[n - 3 :] = 4.0 * a[3:6]
    b = np.tanh(a @ rng.normal(size=(5, 7))) + 0.3 * rng.normal(size=(n, 7))
    b[n - 2 :] = b[10:12]
    return a, b
