"""Feature rows with ids, and the one way to pair them: by id, never by position.

Every reader of features (a feature-store entry, a plain ``.npy``/``.csv``/... file) returns
a :class:`Features`: its layers, one ``N x D_l`` matrix each, and the string id of every row.
A plain file carries no ids; it gets ``"0".."N-1"`` and ``ids_are_positions`` says so.

:func:`match_rows` pairs two feature sets (or features and a table of records with an
``id``) by id. Two entries of different datasets, or of different versions (fingerprints)
of one dataset, are refused with an error that names both.

Example:
    >>> import numpy as np
    >>> a = ArrayFeatures([np.eye(3)], ids=["x", "y", "z"], dataset="poems", fingerprint="ab")
    >>> b = ArrayFeatures([np.eye(3)], ids=["z", "x", "y"], dataset="poems", fingerprint="ab")
    >>> match = match_rows(a, b)
    >>> match.ids, match.left.tolist(), match.right.tolist()
    (['x', 'y', 'z'], [0, 1, 2], [1, 2, 0])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class Features:
    """What every feature reader returns: layers of ``N x D_l`` rows, each row with an id.

    Subclasses implement :meth:`_read_layer` and set the attributes in ``__init__``.

    Attributes:
        ids: the row ids, as strings, in row order.
        ids_are_positions: True when the source had no ids (``"0".."N-1"`` were given).
        dataset: the dataset the rows come from (None when unknown: a plain file).
        fingerprint: that dataset's content fingerprint (None when unknown).
        name: how messages name this feature set (a path, or model and dataset).
    """

    ids: list[str]
    ids_are_positions: bool
    dataset: str | None
    fingerprint: str | None
    name: str

    @property
    def n_rows(self) -> int:
        return len(self.ids)

    @property
    def n_layers(self) -> int:
        raise NotImplementedError

    def _read_layer(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def layer(self, index: int) -> np.ndarray:
        """One layer's ``N x D_l`` rows; negative indices count from the last layer."""
        if not -self.n_layers <= index < self.n_layers:
            raise IndexError(f"layer {index} out of range for {self.n_layers} layers")
        return self._read_layer(index % self.n_layers)

    def layers(self, rows: Sequence[int] | np.ndarray | None = None) -> list[np.ndarray]:
        """Every layer, optionally only ``rows`` (in that order), as contiguous arrays."""
        picked = None if rows is None else np.asarray(rows, dtype=np.int64)
        out = []
        for index in range(self.n_layers):
            matrix = self.layer(index)
            out.append(np.ascontiguousarray(matrix if picked is None else matrix[picked]))
        return out

    def describe(self) -> str:
        """``name (dataset <d>, fingerprint <f>)`` for messages."""
        return f"{self.name} (dataset {self.dataset!r}, fingerprint {self.fingerprint!r})"


class ArrayFeatures(Features):
    """Features held in memory (a plain file's matrix or stack, or computed layers).

    Example:
        >>> import numpy as np
        >>> f = ArrayFeatures([np.zeros((2, 3))])
        >>> f.ids, f.ids_are_positions, f.layer(-1).shape
        (['0', '1'], True, (2, 3))
    """

    def __init__(
        self,
        layers: Sequence[np.ndarray],
        *,
        ids: Sequence[Any] | None = None,
        dataset: str | None = None,
        fingerprint: str | None = None,
        name: str = "features",
    ) -> None:
        if not layers:
            raise ValueError(f"{name}: no layers")
        rows = {int(layer.shape[0]) for layer in layers}
        if len(rows) != 1:
            raise ValueError(f"{name}: layers have different numbers of rows {sorted(rows)}")
        n_rows = rows.pop()
        self._layers = list(layers)
        self.ids, self.ids_are_positions = row_ids(ids, n_rows, name)
        self.dataset, self.fingerprint, self.name = dataset, fingerprint, name

    @property
    def n_layers(self) -> int:
        return len(self._layers)

    def _read_layer(self, index: int) -> np.ndarray:
        return self._layers[index]


def row_ids(ids: Sequence[Any] | None, n_rows: int, name: str) -> tuple[list[str], bool]:
    """``(ids as strings, ids_are_positions)``; positions ``"0".."N-1"`` when ``ids`` is None.

    Example:
        >>> row_ids(None, 2, "x"), row_ids([7, "a"], 2, "x")
        ((['0', '1'], True), (['7', 'a'], False))
    """
    if ids is None:
        return [str(i) for i in range(n_rows)], True
    out = [str(value) for value in ids]
    if len(out) != n_rows:
        raise ValueError(f"{name}: {len(out)} ids for {n_rows} feature rows")
    return out, False


@dataclass(frozen=True)
class RowMatch:
    """Rows of two sides that hold the same ids, in the left side's order.

    ``left[i]`` and ``right[i]`` are the row numbers of ``ids[i]`` on each side;
    ``missing`` lists left ids the right side lacks (when they were allowed).
    """

    ids: list[str]
    left: np.ndarray
    right: np.ndarray
    missing: list[str] = field(default_factory=list)


def _side(value: Any) -> tuple[list[str], bool, str | None, str | None, str]:
    """(ids, positional, dataset, fingerprint, name) of features or a table of records."""
    if isinstance(value, Features):
        return value.ids, value.ids_are_positions, value.dataset, value.fingerprint, value.name
    return record_ids(value), False, None, None, "records"


def record_ids(table: Any) -> list[str]:
    """The ``id`` of every record of a table (DataFrame, ``datasets.Dataset``, list of dicts).

    Example:
        >>> record_ids([{"id": 3}, {"id": "b"}])
        ['3', 'b']
    """
    columns = getattr(table, "columns", None)
    if columns is None:
        columns = getattr(table, "column_names", None)
    if columns is not None:
        if "id" not in columns:
            raise ValueError(f"the records have no 'id' column (columns: {list(columns)[:10]})")
        return [str(value) for value in table["id"]]
    if isinstance(table, (str, bytes)) or not isinstance(table, Sequence):
        raise ValueError(
            f"expected features or a table of records with an 'id', got {type(table).__name__}"
        )
    ids = []
    for number, record in enumerate(table):
        if not isinstance(record, Mapping) or "id" not in record:
            raise ValueError(f"record {number} has no 'id'")
        ids.append(str(record["id"]))
    return ids


def _positions(ids: list[str], name: str) -> dict[str, int]:
    where: dict[str, int] = {}
    for row, value in enumerate(ids):
        if value in where:
            raise ValueError(
                f"{name}: id {value!r} appears more than once (rows {where[value]}, {row})"
            )
        where[value] = row
    return where


def check_same_dataset(a: Features, b: Features) -> None:
    """Refuse two feature sets of different datasets or dataset versions (both named)."""
    if a.dataset is not None and b.dataset is not None and a.dataset != b.dataset:
        raise ValueError(
            f"cannot pair features of different datasets: {a.describe()} and {b.describe()}"
        )
    if a.fingerprint is not None and b.fingerprint is not None and a.fingerprint != b.fingerprint:
        raise ValueError(
            "cannot pair features of different versions of the data (fingerprints differ): "
            f"{a.describe()} and {b.describe()}"
        )


def match_rows(left: Any, right: Any, *, allow_missing: bool = False) -> RowMatch:
    """Pair the rows of ``left`` and ``right`` by id, in ``left``'s order.

    Args:
        left, right: :class:`Features`, or a table of records with an ``id`` column
            (DataFrame, ``datasets.Dataset``, list of dicts).
        allow_missing: left ids that ``right`` lacks are listed in ``missing`` instead of
            raising.

    Raises:
        ValueError: two feature sets of different datasets or fingerprints (naming both);
            an id repeated on one side; left ids missing on the right (unless allowed);
            positional ids (a plain file) paired with real ids; no common id.

    Example:
        >>> import numpy as np
        >>> f = ArrayFeatures([np.eye(3)], ids=["a", "b", "c"])
        >>> m = match_rows([{"id": "c"}, {"id": "a"}], f)
        >>> m.right.tolist()
        [2, 0]
    """
    if isinstance(left, Features) and isinstance(right, Features):
        check_same_dataset(left, right)
    ids_l, pos_l, _, _, name_l = _side(left)
    ids_r, pos_r, _, _, name_r = _side(right)
    if pos_l != pos_r:
        positional = name_l if pos_l else name_r
        raise ValueError(
            f"{positional} has no row ids (a plain file: rows are numbered 0..N-1), so its "
            f"rows cannot be matched to the ids of {name_r if pos_l else name_l}"
        )
    if pos_l and len(ids_l) != len(ids_r):
        raise ValueError(
            f"{name_l} has {len(ids_l)} rows but {name_r} has {len(ids_r)}, and neither has "
            "row ids: give files with the same samples in the same order"
        )
    _positions(ids_l, name_l)
    where = _positions(ids_r, name_r)
    left_rows, right_rows, found, missing = [], [], [], []
    for row, value in enumerate(ids_l):
        if value in where:
            left_rows.append(row)
            right_rows.append(where[value])
            found.append(value)
        else:
            missing.append(value)
    if missing and not allow_missing:
        raise ValueError(
            f"{len(missing)} of {len(ids_l)} ids of {name_l} have no row in {name_r} "
            f"(e.g. {missing[:3]})"
        )
    if not found:
        raise ValueError(f"{name_l} and {name_r} have no row id in common")
    return RowMatch(
        ids=found,
        left=np.asarray(left_rows, dtype=np.int64),
        right=np.asarray(right_rows, dtype=np.int64),
        missing=missing,
    )


def layers_for(records: Any, features: Features) -> list[np.ndarray]:
    """The layers of ``features`` with one row per record, in the records' order.

    Every record must have a feature row (joined by ``id``).

    Example:
        >>> import numpy as np
        >>> f = ArrayFeatures([np.arange(3.0)[:, None]], ids=["a", "b", "c"])
        >>> layers_for([{"id": "c"}, {"id": "a"}], f)[0].ravel().tolist()
        [2.0, 0.0]
    """
    return features.layers(rows=match_rows(records, features).right)
