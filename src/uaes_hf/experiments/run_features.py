"""Reading a run's features joined to its tables: the one way stages and analyses do it.

The extract stage stores one feature-store entry per (dataset, model) with the row ids of
the table it embedded. Readers get the layers with one row per record of the table they
hold, in the table's order, joined by ``id`` (:func:`uaes_hf.features.match_rows`).

Example:
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> from uaes_hf.features import FeatureStore
    >>> from uaes_hf.experiments.layout import RunLayout
    >>> layout = RunLayout({"extract": Path(tempfile.mkdtemp())})
    >>> _ = FeatureStore(layout.feature_store).write(
    ...     dataset="poems", fingerprint="ab" * 12, model="m", pooling="mean",
    ...     layers=[np.arange(3.0)[:, None]], ids=["a", "b", "c"], options={"column": "text"})
    >>> run_layers(layout, "poems", "m", [{"id": "c"}, {"id": "a"}])[0].ravel().tolist()
    [2.0, 0.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from uaes_hf.experiments.layout import RunLayout
from uaes_hf.features.rows import layers_for
from uaes_hf.features.store import FeatureStore, StoredFeatures


def run_entry(
    layout: RunLayout, dataset: str, model: str, column: str | None = None
) -> StoredFeatures:
    """The stored features of ``model`` on ``dataset`` (one ``column`` of it, if given)."""
    store = FeatureStore(layout.feature_store)
    return store.load(dataset, model, options={"column": column} if column else None)


def run_layers(
    layout: RunLayout, dataset: str, model: str, records: Any, column: str | None = None
) -> list[np.ndarray]:
    """``model``'s float32 layers on ``dataset``, one row per record of ``records`` (by id)."""
    stored = run_entry(layout, dataset, model, column)
    return [np.asarray(layer, np.float32) for layer in layers_for(records, stored)]
