"""The stored features the Space compares and searches: one feature-store entry per model.

Rows are joined by id, never by position (:func:`uaes_hf.features.match_rows`): two
models' entries are paired id by id, and poems are matched to each model's rows by their
``id``, so entries whose rows are in different orders still line up. Entries of different
datasets or dataset versions are refused (the message names both).

Example:
    >>> import tempfile, numpy as np
    >>> from uaes_hf.features import FeatureStore
    >>> root = tempfile.mkdtemp()
    >>> for model, ids in (("m1", ["a", "b", "c"]), ("m2", ["c", "a", "b"])):
    ...     _ = FeatureStore(root).write(dataset="poems", fingerprint="ab" * 12, model=model,
    ...         pooling="mean", layers=[np.array([[1.0], [2.0], [3.0]])], ids=ids)
    >>> features = StoredFeatureSet.open(root)
    >>> a, b = features.pair("m1", -1, "m2", -1)
    >>> a.ravel().tolist(), b.ravel().tolist()
    ([1.0, 2.0, 3.0], [2.0, 3.0, 1.0])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _same_name(stored: Any, name: str) -> bool:
    from uaes_hf.features.store import slugify

    return stored is not None and (str(stored) == name or slugify(str(stored)) == slugify(name))


class StoredFeatureSet:
    """The features of one dataset in a feature store (``uaes extract``): one entry per model."""

    def __init__(self, store: Any, dataset: str | None, metas: list[dict[str, Any]]) -> None:
        self.store = store
        self.dataset = dataset
        self.metas = {str(meta["model"]): meta for meta in metas}
        self._loaded: dict[str, Any] = {}

    @classmethod
    def open(cls, root: Any, dataset: str | None = None) -> StoredFeatureSet:
        """The entries under ``root`` for ``dataset`` (default: the first dataset stored)."""
        from uaes_hf.features.store import FeatureStore

        store = FeatureStore(root)
        metas = store.entries()
        if dataset:
            metas = [m for m in metas if _same_name(m.get("dataset"), dataset)]
        if not metas:
            raise FileNotFoundError(
                f"no stored features under {root}"
                + (f" for dataset {dataset!r}" if dataset else "")
                + "; run `uaes extract` first"
            )
        dataset = dataset or str(metas[0].get("dataset"))
        metas = [m for m in metas if _same_name(m.get("dataset"), dataset)]
        return cls(store, dataset, metas)

    def models(self) -> list[str]:
        return sorted(self.metas)

    def entry(self, model: str) -> Any:
        """The model's stored entry (:class:`uaes_hf.features.StoredFeatures`, read lazily)."""
        if model not in self.metas:
            raise ValueError(f"no stored features for model {model!r}; stored: {self.models()}")
        if model not in self._loaded:
            meta = self.metas[model]
            self._loaded[model] = self.store.load(
                self.dataset, model, pooling=meta.get("pooling"),
                fingerprint=meta.get("dataset_fingerprint"), options=meta.get("options"),
            )  # fmt: skip
        return self._loaded[model]

    def shape(self, model: str, layer: int = -1) -> tuple[int, int]:
        """``(N, D)`` of one layer, from the entry's metadata (nothing is read)."""
        entry = self.entry(model)
        dims = entry.meta.get("dims") or [entry.meta.get("dim")] * entry.n_layers
        if not -entry.n_layers <= int(layer) < entry.n_layers:
            raise ValueError(f"{model}: layer {layer} out of range for {entry.n_layers} layers")
        return entry.n_rows, int(dims[int(layer) % entry.n_layers])

    def layer(self, model: str, index: int = -1, rows: Any = None) -> np.ndarray:
        """One layer's ``N x D`` features as float32 (in stored row order, or ``rows``)."""
        try:
            matrix = self.entry(model).layer(int(index))
        except IndexError as err:
            raise ValueError(f"{model}: {err}") from None
        matrix = np.asarray(matrix, dtype=np.float32)
        return matrix if rows is None else matrix[np.asarray(rows)]

    def pair(
        self, model_a: str, layer_a: int, model_b: str, layer_b: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Two models' layers with one row per id, in model A's row order."""
        from uaes_hf.features.rows import match_rows

        match = match_rows(self.entry(model_a), self.entry(model_b))
        return (
            self.layer(model_a, layer_a, rows=match.left),
            self.layer(model_b, layer_b, rows=match.right),
        )

    def poems_with_features(self, poems: Any, models: list[str] | None = None) -> Any:
        """The poems that have a feature row in every model's entry, in the poems' order."""
        keep = None
        for model in models or self.models():
            entry = self.entry(model)
            if entry.ids_are_positions:
                raise ValueError(
                    f"the stored features of {model} have no row ids, so poems cannot be "
                    "matched to them; extract with an id column"
                )
            ids = set(entry.ids)
            keep = ids if keep is None else keep & ids
        frame = poems[poems["id"].astype(str).isin(keep or set())].reset_index(drop=True)
        if len(frame) < 2:
            raise ValueError("fewer than 2 poems of the dataset have stored features")
        return frame

    def row_ids(self, model: str | None = None) -> list[str] | None:
        """Record ids of one model's rows (the first model's by default; None: no ids)."""
        entry = self.entry(model or self.models()[0])
        return None if entry.ids_are_positions else list(entry.ids)

    def rows_as_poems(self, poems: Any, model: str | None = None) -> Any:
        """The poems that have a row in ``model``'s entry, with that row in ``_row``, in row
        order (joined by id)."""
        from uaes_hf.features.rows import match_rows

        entry = self.entry(model or self.models()[0])
        match = match_rows(entry, poems, allow_missing=True)
        frame = poems.reset_index(drop=True).iloc[match.right].copy()
        frame["_row"] = match.left
        return frame.reset_index(drop=True)

    def rows_for(self, records: Any, model: str, layer: int = -1) -> np.ndarray:
        """``model``'s layer with one row per record, in the records' order (joined by id)."""
        from uaes_hf.features.rows import match_rows

        return self.layer(model, layer, rows=match_rows(records, self.entry(model)).right)


class RunFeatureSet(StoredFeatureSet):
    """The features a ``uaes run`` extract stage stored (its feature store, one dataset)."""

    def __init__(self, extract_dir: Any, dataset: str = "poems") -> None:
        from uaes_hf.experiments.layout import RunLayout

        store_dir = RunLayout({"extract": Path(extract_dir)}).feature_store
        opened = StoredFeatureSet.open(store_dir, dataset)
        super().__init__(opened.store, opened.dataset, list(opened.metas.values()))
        self.extract_dir = extract_dir
