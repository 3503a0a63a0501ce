"""Boundary checks for feature matrices, layer stacks and k.

Every public alignment function calls these first, so a user gets a ``ValueError`` that
names the problem (shape, NaN/Inf, k too large) instead of a deep numpy/torch traceback.

Example:
    >>> import numpy as np
    >>> check_k(10, n_samples=5)
    Traceback (most recent call last):
    ...
    ValueError: k=10 needs at least k + 1 = 11 samples (each sample's k neighbours exclude itself), got N=5 (N <= k)
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np


def _is_torch_tensor(x: Any) -> bool:
    # Checked by module name so that validating numpy input never imports torch.
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def check_k(k: Any, n_samples: int, *, minimum: int = 1) -> int:
    """Return ``k`` as an int after checking ``minimum <= k < n_samples``.

    Example:
        >>> check_k(10, n_samples=100)
        10
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise ValueError(f"k must be an integer >= {minimum}, got {k!r} ({type(k).__name__})")
    k = int(k)
    if k < minimum:
        raise ValueError(f"k must be an integer >= {minimum}, got k={k}")
    if n_samples == 0:
        raise ValueError("the features have zero rows (samples): there is nothing to compare")
    if n_samples <= k:
        raise ValueError(
            f"k={k} needs at least k + 1 = {k + 1} samples (each sample's k neighbours "
            f"exclude itself), got N={n_samples} (N <= k)"
        )
    return k


def feature_shape(x: Any, name: str) -> tuple[int, ...]:
    """Shape of a numpy array, torch tensor or nested list, without converting a tensor."""
    if _is_torch_tensor(x):
        return tuple(int(s) for s in x.shape)
    if isinstance(x, np.ndarray):
        return x.shape
    try:
        return np.asarray(x).shape
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} is not a rectangular numeric array: {err}") from err


def check_matrix(x: Any, name: str = "features", *, dtype: Any = None) -> Any:
    """Check that ``x`` is a finite, numeric, non-empty ``N x D`` matrix and return it.

    numpy input comes back as a numpy array (lists are converted); a torch tensor comes back
    unchanged (it may live on a GPU), so callers choose where the arithmetic happens.

    Args:
        x: the matrix.
        name: how messages refer to it.
        dtype: the precision the computation will run in (``"float32"``/``"float64"``);
            when given, values and squared row norms must also be finite in it (float64
            features above ~1.8e19 are finite but their float32 norms overflow).

    Example:
        >>> check_matrix([[1.0, 2.0], [3.0, 4.0]], "A").shape
        (2, 2)
        >>> check_matrix([[1e20, 0.0], [1.0, 1.0]], "A", dtype="float32")
        Traceback (most recent call last):
        ...
        ValueError: A has 1 row(s) whose squared L2 norm overflows float32 (largest |value| 1e+20), the precision the computation runs in; rescale the features or use dtype='float64'
    """
    if _is_torch_tensor(x):
        x = _check_tensor(x, name)
        if dtype is not None and x.is_floating_point():
            check_overflow(x.detach().cpu().numpy(), name, dtype)
        return x
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name} is not a rectangular numeric array: {err}") from err
    if x.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array (N samples x D features), got a {x.ndim}-D array "
            f"of shape {x.shape}"
        )
    _check_sizes(x.shape, name)
    if x.dtype == np.bool_ or not (
        np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
    ):
        raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
    largest = None
    if np.issubdtype(x.dtype, np.floating):
        # Row maxima and minima: two passes without a temporary, and NaN or Inf shows in
        # them (NaN propagates), so the full count runs only when there is something to name.
        high, low = x.max(axis=1), x.min(axis=1)
        if not (np.isfinite(high).all() and np.isfinite(low).all()):
            bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
            raise ValueError(
                f"{name} contains {bad} NaN or Inf value(s); remove or impute them first"
            )
        largest = np.maximum(high, -low).astype(np.float64)
    if dtype is not None:
        check_overflow(x, name, dtype, largest=largest)
    return x


def check_overflow(
    x: np.ndarray, name: str, dtype: Any, *, largest: np.ndarray | None = None
) -> None:
    """Raise if ``x``'s squared row norms (hence values) are not finite in ``dtype``.

    ``largest``: each row's largest ``|value|`` when the caller has it already.

    Example:
        >>> check_overflow(np.ones((2, 2)), "A", "float32")
    """
    label = str(dtype).replace("torch.", "")
    if label not in ("float32", "float64", "double"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    limit = np.finfo(np.float32 if label == "float32" else np.float64).max
    if largest is None:
        largest = np.abs(x).max(axis=1).astype(np.float64)
    # sum(x^2) <= D * max|x|^2: only rows near the limit need the exact sum (which may
    # itself overflow in float64, so it is taken on rows scaled by their largest value).
    with np.errstate(over="ignore"):  # inf here just marks a row as risky
        risky = np.flatnonzero(largest * largest * x.shape[1] >= limit)
    if risky.size == 0:
        return
    rows = np.asarray(x[risky], dtype=np.float64)
    scale = np.where(largest[risky] > 0, largest[risky], 1.0)
    log_sq = 2 * np.log(scale) + np.log(np.sum(np.square(rows / scale[:, None]), axis=1))
    bad = int(np.count_nonzero(log_sq >= np.log(limit)))
    if bad:
        raise ValueError(
            f"{name} has {bad} row(s) whose squared L2 norm overflows {label} (largest "
            f"|value| {float(largest.max()):.3g}), the precision the computation runs in; "
            f"rescale the features" + (" or use dtype='float64'" if label == "float32" else "")
        )


def _check_sizes(shape: tuple[int, ...], name: str) -> None:
    if shape[0] == 0:
        raise ValueError(f"{name} has zero rows (samples); shape {tuple(shape)}")
    if shape[-1] == 0:
        raise ValueError(f"{name} has zero columns (features); shape {tuple(shape)}")


def _check_tensor(x: Any, name: str) -> Any:
    import torch

    if x.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D tensor (N samples x D features), got a {x.ndim}-D tensor "
            f"of shape {tuple(x.shape)}"
        )
    _check_sizes(tuple(x.shape), name)
    if x.dtype == torch.bool or x.is_complex():
        raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if x.is_floating_point():
        bad = int((~torch.isfinite(x)).sum().item())
        if bad:
            raise ValueError(
                f"{name} contains {bad} NaN or Inf value(s); remove or impute them first"
            )
    return x


def check_same_samples(n_a: int, n_b: int, name_a: str = "A", name_b: str = "B") -> int:
    """Return N after checking that both inputs describe the same number of samples.

    Example:
        >>> check_same_samples(4, 4)
        4
    """
    if n_a != n_b:
        raise ValueError(
            f"{name_a} has {n_a} rows but {name_b} has {n_b}: both must describe the same "
            f"N samples, in the same order"
        )
    return n_a


def split_layers(stack: Any, name: str) -> list[Any]:
    """Split a layer stack into a list of ``N x D_l`` matrices (validated).

    Accepts an ``N x L x D`` array/tensor, or a list/tuple of ``N x D_l`` matrices (layers of
    different widths). Items that are already ``NeighborIndex`` objects pass through.

    Example:
        >>> import numpy as np
        >>> [m.shape for m in split_layers(np.zeros((5, 3, 2)) + 1, "A")]
        [(5, 2), (5, 2), (5, 2)]
    """
    if isinstance(stack, (list, tuple)):
        if len(stack) == 0:
            raise ValueError(f"{name} is an empty list of layers")
        layers = [
            item if is_neighbor_index(item) else check_matrix(item, f"{name}[{i}]")
            for i, item in enumerate(stack)
        ]
        sizes = {_n_rows(layer) for layer in layers}
        if len(sizes) > 1:
            raise ValueError(
                f"the layers of {name} have different numbers of rows {sorted(sizes)}: every "
                f"layer must describe the same N samples"
            )
        return layers
    shape = feature_shape(stack, name)
    if len(shape) != 3:
        raise ValueError(
            f"{name} must be a 3-D layer stack (N samples x L layers x D features) or a list "
            f"of N x D_l matrices, got a {len(shape)}-D array of shape {tuple(shape)}"
        )
    if shape[1] == 0:
        raise ValueError(f"{name} has zero layers; shape {tuple(shape)}")
    return [check_matrix(stack[:, layer], f"{name}[:, {layer}]") for layer in range(shape[1])]


def is_neighbor_index(x: Any) -> bool:
    """Whether ``x`` is a :class:`~uaes_hf.alignment.NeighborIndex`.

    Checked by type name and attributes so that this module imports nothing from the
    neighbour search (which imports it), keeping the package free of import cycles.
    """
    return type(x).__name__ == "NeighborIndex" and hasattr(x, "indices") and hasattr(x, "k")


def _n_rows(x: Any) -> int:
    return x.n_samples if is_neighbor_index(x) else int(x.shape[0])


def check_alpha(alpha: float) -> float:
    """Check a significance level / miscoverage in (0, 1)."""
    if not (isinstance(alpha, numbers.Real) and 0.0 < float(alpha) < 1.0):
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}")
    return float(alpha)


def check_count(value: Any, name: str, minimum: int = 1) -> int:
    """Check a count such as ``n_permutations`` (an int >= minimum)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
