"""Where uaes-hf keeps its caches: converted packaged models, embedded data, features.

Everything lives under one root, ``$UAES_HOME`` (default ``~/.cache/uaes_hf``), so a user
can move or wipe it in one place.

Example:
    >>> from uaes_hf.paths import uaes_home
    >>> uaes_home().name  # doctest: +SKIP
    'uaes_hf'
"""

from __future__ import annotations

import os
from pathlib import Path


def uaes_home() -> Path:
    """Return the cache root (``$UAES_HOME`` or ``~/.cache/uaes_hf``); nothing is created."""
    env = os.environ.get("UAES_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "uaes_hf"


def cache_dir(*parts: str) -> Path:
    """Return ``uaes_home()/parts...``, creating it.

    Example:
        >>> cache_dir("models", "smollm2-135m")  # doctest: +SKIP
    """
    path = uaes_home().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
