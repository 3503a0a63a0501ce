"""Moved to :mod:`uaes_hf.features.fingerprint` (the feature format owns it); kept as an alias.

Example:
    >>> from uaes_hf.extract.fingerprint import dataset_fingerprint
    >>> dataset_fingerprint(["a poem", "a text"])
    '0fd62695d6a83eea5bb5ca70'
"""

from __future__ import annotations

from uaes_hf.features.fingerprint import FINGERPRINT_CHARS, dataset_fingerprint

__all__ = ["FINGERPRINT_CHARS", "dataset_fingerprint"]
