"""What may be stored, and whether what is stored is whole.

:func:`check_storable` runs before anything is written: every layer is a 2-D numeric array of
finite values that fit the storage dtype (float16 holds at most 65504; a larger value would
silently become ``inf`` and only fail later, at align time). :func:`file_damage` runs before a
stored file is trusted: its safetensors header parses, its size is what the header describes
and, when the entry recorded them, its byte count and sha256 match.

Example:
    >>> import numpy as np
    >>> check_storable([np.ones((2, 3))], "float16", "entry e")
    >>> check_storable([np.array([[1.0, 7e4]])], "float16", "entry e")
    Traceback (most recent call last):
    ...
    ValueError: entry e, layer 0: values up to 70000 are above the float16 range (largest 65504); store these features as float32
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from uaes_hf.features.safetensors_io import STORAGE_DTYPES, read_safetensors_header, tensor_names


def check_storable(layers: Sequence[Any], storage_dtype: str, what: str) -> None:
    """Raise a ValueError naming ``what`` and the layer unless every layer can be stored.

    Checks: at least one layer; each a 2-D array of numbers with equal row counts; no NaN or
    infinity; no magnitude above the largest finite value of ``storage_dtype``.
    """
    if storage_dtype not in STORAGE_DTYPES:
        raise ValueError(
            f"{what}: storage dtype must be one of {sorted(STORAGE_DTYPES)}, got {storage_dtype!r}"
        )
    if len(layers) == 0:
        raise ValueError(f"{what}: no layers to store")
    limit = float(np.finfo(STORAGE_DTYPES[storage_dtype][1]).max)
    rows = set()
    for index, layer in enumerate(layers):
        array = np.asarray(layer)
        if array.ndim != 2:
            raise ValueError(
                f"{what}, layer {index}: must be a 2-D (rows x dim) array, got shape {array.shape}"
            )
        if array.dtype.kind not in "fiu":
            raise ValueError(f"{what}, layer {index}: must hold numbers, got dtype {array.dtype}")
        rows.add(array.shape[0])
        if array.size == 0:
            continue
        finite = np.isfinite(array)
        if not finite.all():
            bad = int(array.size - finite.sum())
            raise ValueError(f"{what}, layer {index}: {bad} NaN or infinite value(s)")
        largest = float(np.abs(array).max())
        if largest > limit:
            advice = "store these features as float32" if storage_dtype != "float32" else "rescale"
            raise ValueError(
                f"{what}, layer {index}: values up to {largest:.6g} are above the "
                f"{storage_dtype} range (largest {limit:.6g}); {advice}"
            )
    if len(rows) > 1:
        raise ValueError(f"{what}: layers have different numbers of rows {sorted(rows)}")


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_damage(
    path: Path, *, sha256: str | None = None, n_bytes: int | None = None, full: bool = True
) -> str | None:
    """What is wrong with the safetensors file ``path``, or None when it is whole.

    Args:
        path: the file.
        sha256, n_bytes: what the entry recorded when it was written (None: not recorded).
        full: also hash the whole file (else only the header and the sizes: cheap).

    Example:
        >>> import tempfile, pathlib
        >>> from uaes_hf.features.safetensors_io import write_tensors
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "f.safetensors"
        >>> sha256, size = write_tensors(path, {"features": np.ones((4, 2, 3), np.float32)})
        >>> file_damage(path) is None
        True
        >>> with path.open("r+b") as handle:
        ...     _ = handle.truncate(100)
        >>> file_damage(path)
        'the file has 100 bytes, its header describes 176'
    """
    path = Path(path)
    if not path.is_file():
        return "the features file is missing"
    size = path.stat().st_size
    if n_bytes is not None and size != n_bytes:
        return f"the file has {size} bytes, {n_bytes} were written"
    try:
        header, data_start = read_safetensors_header(path)
        ends = [int(header[name]["data_offsets"][1]) for name in tensor_names(header)]
    except (ValueError, KeyError, TypeError, IndexError, OSError) as err:
        return f"its header cannot be read ({err})"
    expected = data_start + max(ends, default=0)
    if size != expected:
        return f"the file has {size} bytes, its header describes {expected}"
    if full and sha256 is not None and file_sha256(path) != sha256:
        return "its sha256 differs from the one recorded when it was written"
    return None
