"""Compare the results of two runs: every CSV and JSON file under ``results/``.

Numbers are equal when they differ by at most ``tolerance`` (relative to their size when it
exceeds 1); strings, booleans, headers, keys and file sets must match exactly. Timings, paths
and creation times are ignored (``timings.csv``; the keys in :data:`IGNORED_KEYS`). Used by
``uaes report diff OLD NEW`` to check that a refactor leaves the numbers unchanged.

Example:
    >>> import tempfile, pandas as pd
    >>> from pathlib import Path
    >>> from uaes_hf.experiments.report.results import write_results
    >>> root = Path(tempfile.mkdtemp())
    >>> old = write_results(root / "old", {"t": pd.DataFrame({"x": [0.5]})}, {"k": 10})
    >>> new = write_results(root / "new", {"t": pd.DataFrame({"x": [0.5 + 1e-9]})}, {"k": 10})
    >>> [str(d) for d in diff_results(old, new)]
    ['t.csv: row 1, column x: 0.5 != 0.500000001']
    >>> diff_results(old, new, tolerance=1e-6)
    []
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uaes_hf.experiments.layout import ResultsLayout

IGNORED_FILES = frozenset({ResultsLayout(Path()).timings.name})
IGNORED_KEYS = frozenset(
    {"stage_dirs", "created", "timings", "seconds", "compute_seconds", "path", "work_dir"}
)
COMPARED_SUFFIXES = (".csv", ".json")


@dataclass(frozen=True)
class Difference:
    """One difference: the file, where in it, and the two values."""

    file: str
    where: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.old} != {self.new}"


def numbers_equal(a: float, b: float, tolerance: float) -> bool:
    """Equal within ``tolerance`` (absolute up to 1, relative beyond); NaN equals NaN.

    Example:
        >>> numbers_equal(1.0, 1.0 + 1e-13, 1e-12), numbers_equal(0.5, 0.5 + 1e-9, 1e-12)
        (True, False)
    """
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= tolerance * max(1.0, abs(a), abs(b))


def _as_number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def diff_csv(old: Path, new: Path, name: str, tolerance: float) -> list[Difference]:
    """Cell-by-cell differences of two CSV files (header and row count exactly)."""
    with old.open(newline="", encoding="utf-8") as handle:
        rows_old = list(csv.reader(handle))
    with new.open(newline="", encoding="utf-8") as handle:
        rows_new = list(csv.reader(handle))
    header_old = rows_old[0] if rows_old else []
    header_new = rows_new[0] if rows_new else []
    if header_old != header_new:
        return [Difference(name, "header", header_old, header_new)]
    if len(rows_old) != len(rows_new):
        return [Difference(name, "number of rows", len(rows_old) - 1, len(rows_new) - 1)]
    found = []
    for number, (row_old, row_new) in enumerate(
        zip(rows_old[1:], rows_new[1:], strict=True), start=1
    ):
        if len(row_old) != len(row_new):
            found.append(Difference(name, f"row {number} length", len(row_old), len(row_new)))
            continue
        for column, a, b in zip(header_old, row_old, row_new, strict=False):
            if a == b:
                continue
            x, y = _as_number(a), _as_number(b)
            if x is not None and y is not None and numbers_equal(x, y, tolerance):
                continue
            found.append(Difference(name, f"row {number}, column {column}", a, b))
    return found


def diff_json(
    old: Any, new: Any, name: str, tolerance: float, where: str = "", ignore: Iterable[str] = ()
) -> list[Difference]:
    """Differences of two parsed JSON values (keys in ``ignore`` skipped at any depth)."""
    skip = frozenset(ignore)
    here = where or "(top)"
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            if key in skip:
                continue
            path = f"{where}.{key}" if where else str(key)
            if key not in new:
                found.append(Difference(name, f"key {path}", "present", "missing"))
            elif key not in old:
                found.append(Difference(name, f"key {path}", "missing", "present"))
            else:
                found += diff_json(old[key], new[key], name, tolerance, path, skip)
        return found
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [Difference(name, f"{here} length", len(old), len(new))]
        found = []
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            found += diff_json(a, b, name, tolerance, f"{where}[{index}]", skip)
        return found
    numeric = (int, float)
    if (
        isinstance(old, numeric)
        and isinstance(new, numeric)
        and not isinstance(old, bool)
        and not isinstance(new, bool)
    ):
        same = numbers_equal(float(old), float(new), tolerance)
        return [] if same else [Difference(name, here, old, new)]
    return [] if type(old) is type(new) and old == new else [Difference(name, here, old, new)]


def _files(folder: Path) -> dict[str, Path]:
    return {
        path.relative_to(folder).as_posix(): path
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.suffix in COMPARED_SUFFIXES and path.name not in IGNORED_FILES
    }


def diff_results(
    old_dir: str | Path,
    new_dir: str | Path,
    *,
    tolerance: float = 1e-12,
    ignore_keys: Iterable[str] = IGNORED_KEYS,
) -> list[Difference]:
    """Every difference between the results of two reports (or two ``results/`` folders).

    Raises:
        ValueError: a folder is not a report, or ``tolerance`` is negative.
    """
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    folders = []
    for given in (old_dir, new_dir):
        layout = ResultsLayout.of(given)
        if not layout.summary.is_file():
            raise ValueError(f"{str(given)!r} is not a uaes report: no results/summary.json")
        folders.append(layout.folder)
    old_files, new_files = _files(folders[0]), _files(folders[1])
    found = []
    for name in sorted(set(old_files) | set(new_files)):
        if name not in new_files:
            found.append(Difference(name, "file", "present", "missing"))
        elif name not in old_files:
            found.append(Difference(name, "file", "missing", "present"))
        elif name.endswith(".csv"):
            found += diff_csv(old_files[name], new_files[name], name, tolerance)
        else:
            old = json.loads(old_files[name].read_text("utf-8"))
            new = json.loads(new_files[name].read_text("utf-8"))
            found += diff_json(old, new, name, tolerance, ignore=ignore_keys)
    return found
