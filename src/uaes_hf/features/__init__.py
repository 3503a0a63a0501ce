"""The feature format: feature-store entries (safetensors + meta.json) and one reader API.

Every feature on disk is a store entry; every reader (extraction, the experiment stages,
``uaes align``, the evaluate module, the Space) goes through this package:

- :class:`FeatureStore` / :class:`StoreEntry`: entries keyed by dataset, fingerprint, model,
  pooling and the options that change the numbers; resumable shards, streaming merge.
- :func:`open_features`: a file (``.npy``, ``.safetensors``, ``.pt``, ``.csv``) or an entry
  folder as :class:`Features` (layers + row ids); :func:`read_layers` as plain arrays.
- :func:`match_rows`: pair two feature sets, or features and records, by row id; entries of
  different datasets or fingerprints are refused.
- :mod:`~uaes_hf.features.integrity` and :mod:`~uaes_hf.features.atomic`: what may be stored
  (finite, within the storage dtype's range), checksums of what is stored, entries written
  whole and swapped in atomically, per-entry locks.

It depends on numpy and safetensors only (torch just for ``.pt`` files and the ``.safetensors``
dtypes numpy lacks), and on nothing else in ``uaes_hf``. The format and its key are described
in ``docs/architecture.md`` ("The feature format").

Example:
    >>> import tempfile, numpy as np
    >>> from uaes_hf.features import FeatureStore, match_rows
    >>> store = FeatureStore(tempfile.mkdtemp())
    >>> _ = store.write(dataset="poems", fingerprint="ab" * 12, model="m", pooling="mean",
    ...                 layers=[np.eye(2)], ids=["p2", "p1"])
    >>> match_rows([{"id": "p1"}, {"id": "p2"}], store.load("poems", "m")).right.tolist()
    [1, 0]
"""

from __future__ import annotations

from uaes_hf._lazy import lazy_exports

_LAZY = {
    "FeatureStore": "uaes_hf.features.store",
    "StoreEntry": "uaes_hf.features.store",
    "StoredFeatures": "uaes_hf.features.store",
    "FingerprintMismatchError": "uaes_hf.features.store",
    "FeaturesNotFoundError": "uaes_hf.features.store",
    "open_entry": "uaes_hf.features.store",
    "options_hash": "uaes_hf.features.store",
    "shard_ranges": "uaes_hf.features.store",
    "slugify": "uaes_hf.features.store",
    "Features": "uaes_hf.features.rows",
    "ArrayFeatures": "uaes_hf.features.rows",
    "RowMatch": "uaes_hf.features.rows",
    "match_rows": "uaes_hf.features.rows",
    "layers_for": "uaes_hf.features.rows",
    "record_ids": "uaes_hf.features.rows",
    "open_features": "uaes_hf.features.files",
    "read_layers": "uaes_hf.features.files",
    "read_features": "uaes_hf.features.files",
    "dataset_fingerprint": "uaes_hf.features.fingerprint",
    "table_fingerprint": "uaes_hf.features.fingerprint",
}


__getattr__ = lazy_exports("uaes_hf.features", _LAZY)


__all__ = sorted(_LAZY)
