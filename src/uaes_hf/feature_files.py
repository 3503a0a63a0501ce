"""Moved to :mod:`uaes_hf.features.files`; this alias keeps old imports working.

Example:
    >>> from uaes_hf.feature_files import read_layers
    >>> read_layers.__module__
    'uaes_hf.features.files'
"""

from __future__ import annotations

from uaes_hf.features.files import DEFAULT_MAX_BYTES, SUFFIXES, read_features, read_layers

__all__ = ["DEFAULT_MAX_BYTES", "SUFFIXES", "read_features", "read_layers"]
