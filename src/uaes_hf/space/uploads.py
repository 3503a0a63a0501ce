"""Uploaded feature files: their shape is known (and refused when over the budget) before
the file is parsed.

* The byte cap is checked on the file's size, before it is opened.
* ``.npy`` and ``.safetensors``: the shape comes from the header alone.
* ``.csv``: the file is streamed line by line, counting rows and bytes, and reading stops
  at the cap; only a file within the caps is then parsed (by the one feature reader,
  :func:`uaes_hf.features.read_features`).

Errors name the upload (``features A (my.npy)``), never the server's temporary path.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> from uaes_hf.space.budget import SpaceBudget
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.csv"
    >>> np.savetxt(path, np.ones((30, 2)), delimiter=",")
    >>> upload_shape(path, "features A", SpaceBudget(max_rows=10))
    Traceback (most recent call last):
    uaes_hf.space.budget.BudgetError: features A (a.csv) has more than 10 rows; the Space accepts at most 10 rows (use the library or `uaes align` for larger requests)
    >>> upload_shape(path, "features A", SpaceBudget())
    (30, 2)
"""

from __future__ import annotations

import csv
import io
import struct
from pathlib import Path
from typing import Any

import numpy as np

from uaes_hf.space.budget import LIBRARY_HINT, BudgetError, SpaceBudget

UPLOAD_SUFFIXES = (".npy", ".safetensors", ".csv")


def shown_name(path: Any, name: str) -> str:
    """How messages name an upload: ``features A (a.npy)``."""
    return f"{name} ({Path(path).name})"


def upload_shape(path: Any, name: str, budget: SpaceBudget) -> tuple[int, int]:
    """``(N, D)`` of an uploaded ``N x D`` file, from its header or a capped stream.

    Raises:
        BudgetError: over the byte, row or value cap (the message names the cap).
        ValueError: an unsupported type, a damaged header, not 2-D.
    """
    path = Path(path)
    shown = shown_name(path, name)
    suffix = path.suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise ValueError(
            f"{shown}: unsupported file type {suffix or '(none)'!r}; use one of "
            f"{', '.join(UPLOAD_SUFFIXES)}"
        )
    size = path.stat().st_size
    if size > budget.max_upload_bytes:
        raise BudgetError(
            f"{shown}: {size:,} bytes is above the limit of {budget.max_upload_bytes:,} bytes"
        )
    try:
        if suffix == ".npy":
            shape = _npy_shape(path)
        elif suffix == ".safetensors":
            shape = _safetensors_shape(path)
        else:
            shape = _csv_shape(path, budget, shown)
    except (BudgetError, ValueError) as err:
        message = str(err).replace(str(path), shown)
        raise type(err)(message if message.startswith(shown) else f"{shown}: {message}") from None
    except (OSError, EOFError, struct.error, UnicodeDecodeError) as err:
        raise ValueError(
            f"{shown}: cannot read as {suffix} ({type(err).__name__}: {err})"
        ) from None
    if len(shape) != 2:
        raise ValueError(f"{shown}: expected a 2-D array (N x D), got shape {tuple(shape)}")
    n, d = int(shape[0]), int(shape[1])
    budget.check_shape(n, d, shown)
    return n, d


def read_upload(path: Any, name: str, budget: SpaceBudget) -> np.ndarray:
    """Check an upload's shape against the budget, then read it (``N x D``, finite)."""
    from uaes_hf.alignment.validation import check_matrix
    from uaes_hf.features.files import read_features

    upload_shape(path, name, budget)
    shown = shown_name(path, name)
    try:
        matrix = read_features(path, max_bytes=budget.max_upload_bytes, ndim=(2,))
    except ValueError as err:
        message = str(err).replace(str(path), shown)
        raise ValueError(message if shown in message else f"{shown}: {message}") from None
    return check_matrix(matrix, shown)


def _npy_shape(path: Path) -> tuple[int, ...]:
    with path.open("rb") as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, _, _ = np.lib.format.read_array_header_1_0(handle)
        else:
            shape, _, _ = np.lib.format.read_array_header_2_0(handle)
    return tuple(shape)


def _safetensors_shape(path: Path) -> tuple[int, ...]:
    from uaes_hf.features.safetensors_io import read_safetensors_header, tensor_names

    header, _ = read_safetensors_header(path)
    names = tensor_names(header)
    if len(names) != 1:
        raise ValueError(f"holds {len(names)} tensors {sorted(names)[:10]}; upload one")
    return tuple(header[names[0]]["shape"])


def _csv_shape(path: Path, budget: SpaceBudget, shown: str) -> tuple[int, int]:
    """Rows and columns of a CSV, reading at most ``max_rows`` + 1 data rows and
    ``max_upload_bytes`` bytes (a header row is not counted)."""
    rows = 0
    width = 0
    read_bytes = 0
    first = True
    with path.open("rb") as raw:
        for line in raw:
            read_bytes += len(line)
            if read_bytes > budget.max_upload_bytes:
                raise BudgetError(
                    f"{shown} is larger than the limit of {budget.max_upload_bytes:,} bytes"
                )
            text = line.decode("utf-8").strip()
            if not text:
                continue
            cells = next(csv.reader(io.StringIO(text)))
            if first:
                first = False
                width = len(cells)
                if not _all_numbers(cells):
                    continue  # a header row
            rows += 1
            if rows > budget.max_rows:
                raise BudgetError(
                    f"{shown} has more than {budget.max_rows} rows; the Space accepts at most "
                    f"{budget.max_rows} rows ({LIBRARY_HINT})"
                )
    if rows == 0:
        raise ValueError("the CSV file has no data rows")
    return rows, width


def _all_numbers(cells: list[str]) -> bool:
    """Whether every cell reads as a number (else the row is a header)."""
    try:
        [float(cell) for cell in cells]
    except ValueError:
        return False
    return True
