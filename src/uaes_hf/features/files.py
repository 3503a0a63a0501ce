"""Read features from a file or an entry folder: the one reader every command uses.

Formats, by extension: ``.npy``, ``.safetensors`` (the only tensor, or the one named by
``key``), ``.pt``/``.pth`` (a tensor, or a dict of tensors with ``key``; loaded with
``weights_only=True``), ``.csv`` (numeric, comma-separated, an optional header row), each
an ``N x D`` matrix or an ``N x L x D`` layer stack; or a feature-store entry folder
(``features.safetensors`` + ``meta.json``, see :mod:`uaes_hf.features.store`).

:func:`open_features` returns a :class:`~uaes_hf.features.rows.Features` (layers and row
ids; a plain file's rows get the ids ``"0".."N-1"``, flagged ``ids_are_positions``);
:func:`read_layers` and :func:`read_features` return plain arrays. Every failure is a
``ValueError`` that names the file and the problem; used by ``uaes align``, the evaluate
module and the Space.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.npy"
    >>> np.save(path, np.ones((3, 2)))
    >>> read_features(path).shape
    (3, 2)
    >>> feats = open_features(path)
    >>> feats.ids, feats.ids_are_positions
    (['0', '1', '2'], True)
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from uaes_hf.features.rows import ArrayFeatures, Features
from uaes_hf.features.store import FEATURES_FILE, StoredFeatures, open_entry

DEFAULT_MAX_BYTES = 2 * 1024**3
SUFFIXES = (".npy", ".safetensors", ".pt", ".pth", ".csv")


def read_features(
    path: str | Path,
    *,
    key: str | None = None,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    ndim: tuple[int, ...] = (2,),
) -> np.ndarray:
    """Load a numeric feature array from ``path`` as float32/float64 numpy.

    Args:
        path: the file; the format comes from its extension.
        key: tensor name inside a .safetensors or .pt dict (needed if it holds several).
        max_bytes: refuse larger files (``None`` = no limit).
        ndim: accepted numbers of dimensions (``(2,)`` for N x D; ``(2, 3)`` for stacks).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise ValueError(f"{path}: {size} bytes is above the limit of {max_bytes} bytes")
    suffix = path.suffix.lower()
    readers = {
        ".npy": _read_npy,
        ".safetensors": _read_safetensors,
        ".pt": _read_torch,
        ".pth": _read_torch,
        ".csv": _read_csv,
    }
    if suffix not in readers:
        raise ValueError(
            f"{path}: unsupported file type {suffix or '(none)'!r}; use one of "
            f"{', '.join(SUFFIXES)}"
        )
    try:
        array = readers[suffix](path, key)
    except ValueError:
        raise
    except Exception as err:  # any parser failure becomes one clear message
        raise ValueError(f"{path}: cannot read as {suffix} ({type(err).__name__}: {err})") from err
    return _check_array(np.asarray(array), path, ndim)


def open_features(
    path: str | Path, *, key: str | None = None, max_bytes: int | None = DEFAULT_MAX_BYTES
) -> Features:
    """Read a feature file or an entry folder as :class:`Features` (layers and row ids).

    An ``N x D`` matrix is one layer, an ``N x L x D`` stack is L layers. An entry folder
    keeps its dataset, fingerprint and row ids; a plain file gets positional ids.

    Example:
        >>> import numpy as np, tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "stack.npy"
        >>> np.save(path, np.ones((5, 3, 2)))
        >>> open_features(path).n_layers
        3
    """
    path = Path(path)
    if path.is_dir():
        return _open_entry(path, max_bytes)
    array = read_features(path, key=key, max_bytes=max_bytes, ndim=(2, 3))
    if array.ndim == 2:
        return ArrayFeatures([array], name=str(path))
    if array.shape[1] == 0:
        raise ValueError(f"{path}: the layer stack has zero layers (shape {array.shape})")
    return ArrayFeatures([array[:, layer] for layer in range(array.shape[1])], name=str(path))


def read_layers(
    path: str | Path, *, key: str | None = None, max_bytes: int | None = DEFAULT_MAX_BYTES
) -> list[np.ndarray]:
    """Read the layers of a representation as a list of ``N x D_l`` float matrices.

    ``path`` is a feature file (an ``N x D`` matrix is one layer, an ``N x L x D`` stack is
    L layers) or a feature-store entry folder holding ``features.safetensors`` (one
    ``features`` tensor ``N x L x D``, or ``layer_000``, ``layer_001``, ... tensors for
    layers of different widths) and ``meta.json``. float16 is read as float32.

    Example:
        >>> import numpy as np, tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "stack.npy"
        >>> np.save(path, np.ones((5, 3, 2)))
        >>> [layer.shape for layer in read_layers(path)]
        [(5, 2), (5, 2), (5, 2)]
    """
    features = open_features(path, key=key, max_bytes=max_bytes)
    source = Path(path)
    if isinstance(features, StoredFeatures):
        source = source / FEATURES_FILE
    return [_check_array(layer, source, (2,)) for layer in features.layers()]


def _open_entry(folder: Path, max_bytes: int | None) -> StoredFeatures:
    tensors = folder / FEATURES_FILE
    if tensors.is_file() and max_bytes is not None and tensors.stat().st_size > max_bytes:
        size = tensors.stat().st_size
        raise ValueError(f"{tensors}: {size} bytes is above the limit of {max_bytes} bytes")
    try:
        return open_entry(folder)
    except ValueError:
        raise
    except (OSError, KeyError, TypeError) as err:
        raise ValueError(f"{tensors}: cannot read ({type(err).__name__}: {err})") from err


def _check_array(array: np.ndarray, path: Path, ndim: tuple[int, ...]) -> np.ndarray:
    if (
        array.dtype == object
        or not (
            np.issubdtype(array.dtype, np.number)
            and not np.issubdtype(array.dtype, np.complexfloating)
        )
        or array.dtype == np.bool_
    ):
        raise ValueError(f"{path}: holds non-numeric data (dtype {array.dtype})")
    if array.ndim not in ndim:
        wanted = " or ".join(f"{d}-D" for d in ndim)
        raise ValueError(f"{path}: expected a {wanted} array, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{path}: the array is empty (shape {array.shape})")
    if not np.issubdtype(array.dtype, np.floating) or array.dtype == np.float16:
        array = array.astype(np.float32)
    return array


def _read_npy(path: Path, key: str | None) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def _pick(named: dict[str, Any], path: Path, key: str | None) -> Any:
    if key is not None:
        if key not in named:
            raise ValueError(f"{path}: no tensor named {key!r}; it has {sorted(named)}")
        return named[key]
    if len(named) != 1:
        raise ValueError(
            f"{path}: holds {len(named)} tensors {sorted(named)[:10]}; choose one with key="
        )
    return next(iter(named.values()))


def _read_safetensors(path: Path, key: str | None) -> np.ndarray:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        name = _pick({name: name for name in handle.keys()}, path, key)  # noqa: SIM118
        tensor = handle.get_tensor(name)
    return _tensor_to_numpy(tensor)


def _tensor_to_numpy(tensor: Any) -> np.ndarray:
    import torch

    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"expected a tensor, found {type(tensor).__name__}")
    if tensor.dtype in (torch.bfloat16, torch.float16):
        tensor = tensor.float()
    return tensor.detach().cpu().numpy()


def _read_torch(path: Path, key: str | None) -> np.ndarray:
    import torch

    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict):
        obj = _pick(obj, path, key)
    return _tensor_to_numpy(obj)


def _read_csv(path: Path, key: str | None) -> np.ndarray:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.reader(handle) if row and any(cell.strip() for cell in row)]
    if not rows:
        raise ValueError(f"{path}: the CSV file is empty")
    if not _is_numeric_row(rows[0]):
        rows = rows[1:]  # a header
    widths = {len(row) for row in rows}
    if len(widths) > 1:
        raise ValueError(f"{path}: rows have different numbers of columns {sorted(widths)}")
    for number, row in enumerate(rows, start=1):
        if not _is_numeric_row(row):
            bad = next(cell for cell in row if not _is_number(cell))
            raise ValueError(f"{path}: non-numeric value {bad!r} in data row {number}")
    return np.array(rows, dtype=np.float64)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _is_numeric_row(row: list[str]) -> bool:
    return all(_is_number(cell) for cell in row)
