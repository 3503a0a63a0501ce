"""Record types of the poems and plain-text datasets (the data contracts of
``docs/architecture.md``).

A record is a frozen dataclass; ``as_row()`` gives the dict written to parquet, and
``POEM_FEATURES`` / ``PLAIN_TEXT_FEATURES`` (built lazily, they import ``datasets``) fix the
column types so that a column that is null everywhere (e.g. ``aesthetic_score`` before the
judge runs) still has a type on the Hub.

Example:
    >>> text = "Shall I compare thee\\nto a summer's day?"
    >>> len(content_id(text))
    16
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from typing import Any

FORM_CATEGORIES: tuple[str, ...] = ("formatted", "free_verse", "ambiguous", "unknown")


def content_id(text: str) -> str:
    """Stable id of a text: the first 16 hex digits of SHA-256 of its UTF-8 bytes.

    The text should already be normalised (``uaes_hf.data.ingest.normalize_text``), so the
    same poem read from two folders or two encodings gets the same id.

    Example:
        >>> content_id("a") == content_id("a")
        True
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class RawPoem:
    """One poem as read from one file or one table row, before cleaning.

    ``forms`` and ``topics`` are the Kaggle folders it sits in; a poem found in several
    folders is merged into one ``RawPoem`` whose ``files`` lists every origin.
    """

    title: str
    author: str
    text: str
    forms: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    is_translation: bool = False
    files: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return content_id(self.text)


@dataclass(frozen=True)
class PoemRecord:
    """A cleaned poem as published (one parquet row).

    Example:
        >>> r = PoemRecord(id="x", title="T", author="A", form="sonnet",
        ...                form_category="formatted", text="a b", n_words=2, n_lines=1,
        ...                english_ratio=1.0)
        >>> r.as_row()["aesthetic_score"] is None
        True
    """

    id: str
    title: str
    author: str
    form: str
    form_category: str
    text: str
    n_words: int
    n_lines: int
    english_ratio: float
    aesthetic_score: int | None = None
    aesthetic_rationale: str | None = None
    annotator: str | None = None
    source: str = ""
    forms: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    is_translation: bool = False
    copyright_cut: bool = False
    files: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.form_category not in FORM_CATEGORIES:
            raise ValueError(
                f"form_category must be one of {FORM_CATEGORIES}, got {self.form_category!r}"
            )

    def as_row(self) -> dict[str, Any]:
        row = asdict(self)
        for key in ("forms", "topics", "files"):
            row[key] = list(row[key])
        return row

    def with_annotation(
        self, score: int | None, rationale: str | None, annotator: str | None
    ) -> PoemRecord:
        return replace(
            self, aesthetic_score=score, aesthetic_rationale=rationale, annotator=annotator
        )


@dataclass(frozen=True)
class PlainTextRecord:
    """A plain descriptive text (the study's reference captions, or the offline sample)."""

    id: str
    text: str
    n_words: int
    source: str

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


def poem_features() -> Any:
    """``datasets.Features`` of a poem row (imports ``datasets``)."""
    from datasets import Features, List, Value

    return Features(
        {
            "id": Value("string"),
            "title": Value("string"),
            "author": Value("string"),
            "form": Value("string"),
            "form_category": Value("string"),
            "text": Value("string"),
            "n_words": Value("int32"),
            "n_lines": Value("int32"),
            "english_ratio": Value("float32"),
            "aesthetic_score": Value("int8"),
            "aesthetic_rationale": Value("string"),
            "annotator": Value("string"),
            "source": Value("string"),
            "forms": List(Value("string")),
            "topics": List(Value("string")),
            "is_translation": Value("bool"),
            "copyright_cut": Value("bool"),
            "files": List(Value("string")),
        }
    )


def plain_text_features() -> Any:
    """``datasets.Features`` of a plain-text row (imports ``datasets``)."""
    from datasets import Features, Value

    return Features(
        {
            "id": Value("string"),
            "text": Value("string"),
            "n_words": Value("int32"),
            "source": Value("string"),
        }
    )
