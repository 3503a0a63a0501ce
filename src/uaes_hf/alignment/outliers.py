"""The study's outlier clamp: limit every feature to a quantile of the absolute values.

LLM hidden states have a few *massive-activation* dimensions, orders of magnitude larger
than the rest; after L2 normalisation they dominate every cosine, so neighbours reflect
those few dimensions. platonic-rep's ``prepare_features`` (and the study's fork of it)
clamp each feature stack to ``[-v, v]`` before any metric, with ``v`` a high quantile of
``|x|``:

- ``exact=True``: ``v`` is the element at position ``int(q * numel)`` of the ascending sort
  of ``|x|`` over the whole array;
- ``exact=False`` (the study's setting, ``precise=False``): ``v`` is the mean over rows
  (first axis, the samples) of each row's ``q``-quantile of ``|x|`` over all its other
  elements (every layer and feature of that sample), with linear interpolation as
  ``torch.quantile``;
- ``q = 1`` returns the input unchanged.

The clamp is applied to a whole layer stack at once (one ``v`` for all its layers), before
the layer search. A list of layers of different widths is treated as one stack (each row is
the concatenation of its layers), which equals the ``N x L x D`` case for equal widths.

Example:
    >>> import numpy as np
    >>> x = np.array([[1.0, -2.0, 100.0], [0.5, 3.0, -90.0]])
    >>> remove_outliers(x, q=0.5, exact=True).tolist()
    [[1.0, -2.0, 3.0], [0.5, 3.0, -3.0]]
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from uaes_hf.alignment.validation import _is_torch_tensor, check_matrix


def check_quantile(q: Any) -> float:
    """``q`` as a float after checking ``0 < q <= 1``."""
    if isinstance(q, bool) or not isinstance(q, numbers.Real) or not 0.0 < float(q) <= 1.0:
        raise ValueError(f"the outlier quantile q must be a number in (0, 1], got {q!r}")
    return float(q)


def _rows_abs(features: Any) -> tuple[list[np.ndarray], int]:
    """Validated ``|x|`` of every layer, each as ``N x (width)``, and N."""
    if isinstance(features, (list, tuple)):
        if not features:
            raise ValueError("features is an empty list of layers")
        layers = [_as_numpy(check_matrix(x, f"features[{i}]")) for i, x in enumerate(features)]
    else:
        array = features.detach().cpu().numpy() if _is_torch_tensor(features) else features
        array = np.asarray(array)
        if array.ndim == 3:
            layers = [_as_numpy(check_matrix(array.reshape(array.shape[0], -1), "features"))]
        elif array.ndim == 2:
            layers = [_as_numpy(check_matrix(array, "features"))]
        else:
            raise ValueError(
                f"features must be an N x D matrix, an N x L x D stack or a list of N x D_l "
                f"matrices, got an array of shape {array.shape}"
            )
    sizes = {layer.shape[0] for layer in layers}
    if len(sizes) > 1:
        raise ValueError(f"the layers have different numbers of rows {sorted(sizes)}")
    return [np.abs(layer).reshape(layer.shape[0], -1) for layer in layers], sizes.pop()


def _as_numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if _is_torch_tensor(x) else np.asarray(x)


def clamp_threshold(features: Any, q: float = 0.95, exact: bool = False) -> float:
    """The clamp value ``v`` of :func:`remove_outliers` (see the module docstring).

    Example:
        >>> clamp_threshold(np.arange(10.0).reshape(2, 5), q=0.5)  # mean of medians 2 and 7
        4.5
    """
    q = check_quantile(q)
    layers, n = _rows_abs(features)
    if exact:
        flat = np.concatenate([layer.ravel() for layer in layers])
        position = min(int(q * flat.size), flat.size - 1)
        return float(np.partition(flat, position)[position])
    rows = layers[0] if len(layers) == 1 else np.concatenate(layers, axis=1)
    return float(np.quantile(rows, q, axis=1, method="linear").mean())


def remove_outliers(features: Any, q: float = 0.95, exact: bool = False) -> Any:
    """Clamp ``features`` to ``[-v, v]`` with the study's ``v`` (see the module docstring).

    Args:
        features: an ``N x D`` matrix, an ``N x L x D`` stack (numpy or torch), or a list of
            ``N x D_l`` layer matrices (treated as one stack).
        q: the quantile, in (0, 1]; 1 returns ``features`` unchanged.
        exact: the whole-array order statistic (True) or the mean of per-row quantiles.

    Returns:
        The same kind of input (array, tensor or list) and dtype, clamped.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(50, 4, 8))
        >>> x[:, 2, 0] *= 1000.0  # a massive-activation dimension in layer 2
        >>> float(np.abs(remove_outliers(x)).max()) < 3.0
        True
    """
    q = check_quantile(q)
    if not isinstance(exact, bool):
        raise ValueError(f"exact must be True or False, got {exact!r}")
    if q == 1.0:
        _rows_abs(features)  # still validated
        return features
    v = clamp_threshold(features, q, exact)
    if isinstance(features, (list, tuple)):
        return type(features)(_clamp(layer, v) for layer in features)
    return _clamp(features, v)


def _clamp(x: Any, v: float) -> Any:
    if _is_torch_tensor(x):
        return x.clamp(-v, v)
    x = np.asarray(x)
    limit = np.asarray(v, dtype=x.dtype) if np.issubdtype(x.dtype, np.floating) else v
    return np.clip(x, -limit, limit)
