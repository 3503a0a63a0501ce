"""Moved to :mod:`uaes_hf.features.store` (one feature format); this alias keeps old
imports working.

Example:
    >>> from uaes_hf.extract.store import FeatureStore
    >>> FeatureStore.__module__
    'uaes_hf.features.store'
"""

from __future__ import annotations

from uaes_hf.features.safetensors_io import merge_shards_streaming, read_safetensors_header
from uaes_hf.features.store import (
    FEATURES_FILE,
    META_FILE,
    SHARD_DIR,
    FeaturesNotFoundError,
    FeatureStore,
    FingerprintMismatchError,
    StoredFeatures,
    StoreEntry,
    read_shard_info,
    shard_ranges,
    slugify,
)

__all__ = [
    "FEATURES_FILE",
    "META_FILE",
    "SHARD_DIR",
    "FeatureStore",
    "FeaturesNotFoundError",
    "FingerprintMismatchError",
    "StoreEntry",
    "StoredFeatures",
    "merge_shards_streaming",
    "read_safetensors_header",
    "read_shard_info",
    "shard_ranges",
    "slugify",
]
