"""Where uaes-hf keeps its caches: converted packaged models, embedded data, features.

Everything lives under one root, ``$UAES_HOME`` (default ``~/.cache/uaes_hf``), so a user
can move or wipe it in one place.

Example:
    >>> import os
    >>> from uaes_hf.paths import uaes_home
    >>> "UAES_HOME" in os.environ or uaes_home().name == "uaes_hf"
    True
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
        >>> import os, tempfile
        >>> os.environ["UAES_HOME"], saved = tempfile.mkdtemp(), os.environ.get("UAES_HOME")
        >>> cache_dir("models", "m").relative_to(uaes_home()).as_posix()
        'models/m'
        >>> _ = os.environ.pop("UAES_HOME") if saved is None else os.environ.update(UAES_HOME=saved)
    """
    path = uaes_home().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
