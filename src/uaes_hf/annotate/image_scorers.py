"""Deprecated: the image scorers moved to :mod:`uaes_hf.images.scorers`.

This module re-exports every public name of the new one so that existing imports keep
working; it will be removed. Import from ``uaes_hf.images.scorers`` instead.

Example:
    >>> from uaes_hf.annotate.image_scorers import VLMScorer
    >>> VLMScorer.__module__
    'uaes_hf.images.vlm'
"""

from __future__ import annotations

import warnings

from uaes_hf.images.scorers import *  # noqa: F403 - a re-export shim
from uaes_hf.images.scorers import __all__  # noqa: F401

warnings.warn(
    "uaes_hf.annotate.image_scorers moved to uaes_hf.images.scorers",
    DeprecationWarning,
    stacklevel=2,
)
