"""Substitutions: every fallback a run makes is logged and kept for the report.

A stage that cannot do what the config asks (an image set without poems, a dataset whose
columns were mapped, a comparison that could not be formed, ...) does something else and
says so: one ``uaes:`` line on stderr, and one record ``{"stage", "what", "detail"}`` that
the stage keeps in its summary or outputs. The report lists them all under "What was
substituted".

Example:
    >>> found = []
    >>> record(found, "prepare", "image poems", "none in the set: written by the retrieval "
    ...        "baseline", log_line=False)
    >>> found[0]["stage"], found[0]["what"]
    ('prepare', 'image poems')
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any


def record(
    found: list[dict[str, str]], stage: str, what: str, detail: str, *, log_line: bool = True
) -> None:
    """Append one substitution to ``found`` and log it (``uaes: substituted ...``)."""
    item = {"stage": stage, "what": what, "detail": detail}
    if item in found:
        return
    found.append(item)
    if log_line:
        print(f"uaes: {stage}: substituted {what}: {detail}", file=sys.stderr, flush=True)


def merged(*groups: Iterable[dict[str, Any]]) -> list[dict[str, str]]:
    """All substitutions of several stages, each once, in order.

    Example:
        >>> a = {"stage": "align", "what": "x", "detail": "y"}
        >>> merged([a], [a, {"stage": "analyse", "what": "z", "detail": "w"}])[1]["what"]
        'z'
    """
    out: list[dict[str, str]] = []
    for group in groups:
        for item in group or []:
            entry = {key: str(item.get(key, "")) for key in ("stage", "what", "detail")}
            if entry not in out:
                out.append(entry)
    return out
