"""Small helpers the stage modules share.

Example:
    >>> log("hello")  # printed to stderr as "uaes: hello"
"""

from __future__ import annotations

import sys


def log(message: str) -> None:
    """One progress line on stderr, prefixed ``uaes:``."""
    print(f"uaes: {message}", file=sys.stderr, flush=True)
