"""The study's copyright cut: drop everything from the first line that starts with a mark.

The study assumes the mark never occurs inside a poem and removes "all the content starting
from any line that begins with this symbol"; its example line is
``Copyright © Muzahidul Reza | 29 November,2017``. A line counts when, after leading
whitespace, it starts with ``©`` (with or without the emoji variation selector), ``(c)``,
or ``Copyright`` followed by ``©``/``(c)``. A bare "Copyright 2017" without a mark is kept,
as in the study.

Example:
    >>> cut_copyright("Line one\\nline two\\nCopyright © Someone | 2017\\nmore")
    ('Line one\\nline two', True)
"""

from __future__ import annotations

import re

COPYRIGHT_LINE = re.compile(r"^\s*(?:copyright\s*)?(?:©|\(c\))", re.IGNORECASE)


def is_copyright_line(line: str) -> bool:
    """True when ``line`` begins with a copyright mark (see module doc).

    Example:
        >>> [is_copyright_line(s) for s in ["© me", "(C) 2019", "Copyright© x", "my © x"]]
        [True, True, True, False]
    """
    return bool(COPYRIGHT_LINE.match(line))


def cut_copyright(text: str) -> tuple[str, bool]:
    """Return the text before the first copyright line (trailing blank lines removed) and
    whether a cut happened.

    Example:
        >>> cut_copyright("no mark here")
        ('no mark here', False)
    """
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if is_copyright_line(line):
            return "\n".join(lines[:index]).rstrip(), True
    return text, False
