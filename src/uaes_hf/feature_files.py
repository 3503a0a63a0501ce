"""Read a feature matrix (N x D, or an N x L x D layer stack) from a file.

Formats, by extension: ``.npy``, ``.safetensors`` (the only tensor, or the one named by
``key``), ``.pt``/``.pth`` (a tensor, or a dict of tensors with ``key``; loaded with
``weights_only=True``), ``.csv`` (numeric, comma-separated, an optional header row).
:func:`read_layers` also reads a feature-store entry folder (``features.safetensors`` +
``meta.json``, see ``uaes_hf.extract.store``) as a list of per-layer matrices.
Every failure is a ``ValueError`` that names the file and the problem; used by
``uaes align`` and the Gradio apps.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.npy"
    >>> np.save(path, np.ones((3, 2)))
    >>> read_features(path).shape
    (3, 2)
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

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


def read_layers(
    path: str | Path, *, key: str | None = None, max_bytes: int | None = DEFAULT_MAX_BYTES
) -> list[np.ndarray]:
    """Read the layers of a representation as a list of ``N x D_l`` matrices.

    ``path`` is a feature file (an ``N x D`` matrix is one layer, an ``N x L x D`` stack is
    L layers) or a feature-store entry folder holding ``features.safetensors`` (one
    ``features`` tensor ``N x L x D``, or ``layer_000``, ``layer_001``, ... tensors for
    layers of different widths) and ``meta.json``.

    Example:
        >>> import numpy as np, tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "stack.npy"
        >>> np.save(path, np.ones((5, 3, 2)))
        >>> [layer.shape for layer in read_layers(path)]
        [(5, 2), (5, 2), (5, 2)]
    """
    path = Path(path)
    if path.is_dir():
        return _read_store_entry(path, max_bytes)
    array = read_features(path, key=key, max_bytes=max_bytes, ndim=(2, 3))
    if array.ndim == 2:
        return [array]
    if array.shape[1] == 0:
        raise ValueError(f"{path}: the layer stack has zero layers (shape {array.shape})")
    return [array[:, layer] for layer in range(array.shape[1])]


def _read_store_entry(folder: Path, max_bytes: int | None) -> list[np.ndarray]:
    tensors = folder / "features.safetensors"
    if not tensors.is_file():
        raise ValueError(
            f"{folder}: a folder must be a feature-store entry with features.safetensors "
            f"(give the <dataset>/<fingerprint>/<model>/<pooling> folder)"
        )
    if not (folder / "meta.json").is_file():
        raise ValueError(f"{folder}: no meta.json, so the entry is incomplete (extraction ran?)")
    size = tensors.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise ValueError(f"{tensors}: {size} bytes is above the limit of {max_bytes} bytes")
    from safetensors import safe_open

    try:
        with safe_open(str(tensors), framework="pt") as handle:
            names = sorted(handle.keys())
            if "features" in names:
                stacked = _tensor_to_numpy(handle.get_tensor("features"))
                layers = None
            else:
                layer_names = [name for name in names if name.startswith("layer_")]
                if not layer_names:
                    raise ValueError(f"{tensors}: no 'features' or 'layer_NNN' tensors: {names}")
                layers = [_tensor_to_numpy(handle.get_tensor(name)) for name in layer_names]
    except ValueError:
        raise
    except Exception as err:
        raise ValueError(f"{tensors}: cannot read ({type(err).__name__}: {err})") from err
    if layers is None:
        stacked = _check_array(stacked, tensors, (3,))
        return [stacked[:, layer] for layer in range(stacked.shape[1])]
    return [_check_array(layer, tensors, (2,)) for layer in layers]


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
