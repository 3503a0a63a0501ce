"""The study's formatted (structured) and non-formatted (free) form lists, verbatim.

Four forms stand in both of the study's lists (blank-verse, shi, elegy, dramatic-monologue);
they are ``ambiguous`` and left out of the formatted-vs-free comparison by default. A form
in neither list is ``unknown``. Names are compared after lower-casing and turning spaces
and underscores into hyphens; an entry written ``"a / b"`` matches ``a`` and ``b``.

Example:
    >>> [form_category(f) for f in ["sonnet", "free-verse", "elegy", "limerick", "rap"]]
    ['formatted', 'free_verse', 'ambiguous', 'formatted', 'unknown']
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Copied verbatim from the study (class FormatCategory), spelling included.
FORMATED: tuple[str, ...] = ('burlesque', 'tetractys', 'villanelle', 'abecedarian', 'horatian-ode', 'bref-double', 'rhyme-royal / rime-royale', 'anacreontic', 'burns-stanza', 'bop', 'senryu', 'nonet', 'couplet', 'alexandrine', 'beymorlin-sonnet', 'monoku', 'divino-sonetto', 'limerick', 'sapphic', 'renga', 'acrostic', 'chain-verse', 'stanza', 'somonka', 'ballad', 'riddle', 'canzone', 'dactyl', 'pindaric-ode', 'triolet', 'ballade', 'tercet', 'terza-rima', 'brisbane-sonnet', 'blank-verse', 'haiku', 'shadorma', 'dirge', 'epithalamion', 'fourteener', 'arabian-sonnet', 'triversen', 'kyrielle', 'rictameter', 'choka', 'italian-sonnet', 'verse-paragraph', 'ode', 'busta-sonetto', 'octave', 'sijo', 'sonnet', 'glosa', 'curtal-sonnet', 'shi', 'quatern', 'elegy', 'dizain', 'catena-rondo', 'ottava-rima', 'ghazal', 'clerihew', 'rondeau', 'madrigal', 'spenserian-stanza', 'epigram', 'tyburn', 'balassi-stanza', 'pantoum', 'sestet', 'canzonetta', 'syllabic-verse', 'tanka', 'double-dactyl', 'cavatina', 'sestina', 'cinquain', 'quatrain', 'rondel / roundel', 'dramatic-monologue')  # fmt: skip
NONFORMATED: tuple[str, ...] = ('prose-poem', 'oulipo', 'abc', 'pastoral', 'kennings', 'panegyric', 'bio', 'slam', 'aubade', 'imagery', 'iambic-pentamerer', 'decastich', 'carol', 'ekphrastic', 'landays', 'carpe-diems', 'qasida', 'mock-epic', 'anagram', 'ars-poetica', 'palindrome', 'anaphora', 'lyric', 'lay', 'blues-poem', 'verse', 'conceit', 'narrative', 'cacophony', 'blank-verse', 'bucolic', 'collins-sestet', 'found-poem', 'irregular-ode', 'epic', 'cento', 'hymn', 'shi', 'elegy', 'occasional-poem', 'epistrophe', 'heroic-couplet', 'doggerel', 'palinode', 'free-verse', 'epistle', 'rispetto', 'echo-verse', 'didactic-poetry', 'lament', 'dramatic-monologue')  # fmt: skip


def normalize_form(name: str) -> str:
    """``"Blank Verse"`` -> ``"blank-verse"``."""
    return re.sub(r"[\s_]+", "-", name.strip().lower())


def _expand(entries: Iterable[str]) -> frozenset[str]:
    names: set[str] = set()
    for entry in entries:
        names.update(normalize_form(part) for part in entry.split("/"))
    return frozenset(names)


FORMATTED_FORMS: frozenset[str] = _expand(FORMATED)
FREE_FORMS: frozenset[str] = _expand(NONFORMATED)
AMBIGUOUS_FORMS: frozenset[str] = FORMATTED_FORMS & FREE_FORMS


def form_category(form: str | None) -> str:
    """``formatted`` | ``free_verse`` | ``ambiguous`` | ``unknown`` for one form name."""
    if not form:
        return "unknown"
    name = normalize_form(form)
    if name in AMBIGUOUS_FORMS:
        return "ambiguous"
    if name in FORMATTED_FORMS:
        return "formatted"
    if name in FREE_FORMS:
        return "free_verse"
    return "unknown"


def poem_form_category(forms: Iterable[str]) -> str:
    """Category of a poem filed under several forms.

    Unknown forms are ignored; if the known ones agree that category wins, otherwise the
    poem is ``ambiguous`` (e.g. filed under both ``sonnet`` and ``free-verse``).

    Example:
        >>> poem_form_category(["sonnet", "rap"]), poem_form_category(["sonnet", "epic"])
        ('formatted', 'ambiguous')
    """
    known = {form_category(f) for f in forms} - {"unknown"}
    if not known:
        return "unknown"
    return known.pop() if len(known) == 1 else "ambiguous"


def primary_form(forms: Iterable[str]) -> str:
    """The ``form`` column: the first form in sorted order, or ``""`` when none."""
    ordered = sorted(normalize_form(f) for f in forms)
    return ordered[0] if ordered else ""


def formatted_vs_free_mask(
    categories: Iterable[str], include_ambiguous: bool = False
) -> list[bool]:
    """Which poems take part in the formatted-vs-free comparison (ambiguous out by default)."""
    keep = {"formatted", "free_verse"} | ({"ambiguous"} if include_ambiguous else set())
    return [category in keep for category in categories]
