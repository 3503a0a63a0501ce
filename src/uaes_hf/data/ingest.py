"""Read the Kaggle "Poems" dataset as downloaded, or a CSV/JSONL table of poems.

Kaggle layout::

    RAW_DIR/forms/<form>/<Title>Poemby<Author>.txt
    RAW_DIR/topics/<topic>/<Title>Poemby<Author>.txt
    RAW_DIR/*.csv | *.jsonl     (columns: title, author, form, text; optional topic)

File names are CamelCase without spaces; some carry a ``<Form>Poems`` / ``<Topic>Poems``
prefix before the title and some a translation mark (``Translation``/``Translated``). A bad
input (unreadable, binary, not UTF-8, empty, table without a required column, row without
text) is recorded as a :class:`BadInput` and skipped: never fatal, never silent.

Example (the calls in order; :func:`read_poems_folder` shows them on a small folder)::

    result = read_poems_folder("path/to/kaggle_poems")
    merged, n_duplicates = merge_duplicates(result.poems)
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from uaes_hf.data.records import RawPoem, content_id

TABLE_COLUMNS: tuple[str, ...] = ("title", "author", "form", "text")
TABLE_SUFFIXES: tuple[str, ...] = (".csv", ".jsonl")

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
_INLINE_SPACE = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_CAMEL_BOUNDARY = re.compile(
    r"(?<=[a-z0-9'’])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)"
)
_TRANSLATION_MARK = re.compile(r"[\s(\[_-]*\b(?:translation|translated)\b[)\]]?", re.IGNORECASE)


@dataclass(frozen=True)
class BadInput:
    """A file (or a row of a table) that was skipped, and why."""

    path: str
    reason: str
    row: int | None = None


@dataclass
class ReadResult:
    """Poems read from a folder plus every input that was skipped."""

    poems: list[RawPoem] = field(default_factory=list)
    bad: list[BadInput] = field(default_factory=list)
    files_seen: int = 0


def normalize_text(text: str) -> str:
    """Unicode NFC, one newline style, single inner spaces, no blank-line runs.

    Lines are stripped (indentation in scraped poems is noise, and stripping makes the same
    poem hash the same); stanza breaks are kept as one empty line.

    Example:
        >>> normalize_text("  Caf\\u0065\\u0301\\u00a0 au  lait \\r\\n\\r\\n\\r\\n\\nbye ")
        'Café au lait\\n\\nbye'
    """
    text = unicodedata.normalize("NFC", text).translate(_ZERO_WIDTH)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [_INLINE_SPACE.sub(" ", line).strip() for line in text.split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def split_camel_case(name: str) -> str:
    """``"ALittleBirdSang12"`` -> ``"A Little Bird Sang 12"``."""
    return _CAMEL_BOUNDARY.sub(" ", name).strip()


def parse_poem_filename(filename: str, folder: str | None = None) -> tuple[str, str, bool]:
    """Title, author and translation flag from a Kaggle file name.

    A ``<Folder>Poems`` prefix (e.g. ``HaikuPoems`` in ``forms/haiku``) is removed from the
    title; a name without ``Poemby`` keeps the whole stem as title and an empty author.

    Example:
        >>> parse_poem_filename("ALittleBirdPoembyJohnDoe.txt")
        ('A Little Bird', 'John Doe', False)
        >>> parse_poem_filename("HaikuPoemsMorningDewPoembyAnnLee.txt", folder="haiku")
        ('Morning Dew', 'Ann Lee', False)
        >>> parse_poem_filename("OdeToJoyTranslationPoembyFriedrichSchiller.txt")
        ('Ode To Joy', 'Friedrich Schiller', True)
    """
    stem = Path(filename).stem
    if "Poemby" in stem:
        title_part, author_part = stem.rsplit("Poemby", 1)
    else:
        title_part, author_part = stem, ""
    if folder:
        prefix = "".join(part.capitalize() for part in re.split(r"[-_\s]+", folder)) + "Poems"
        if title_part.lower().startswith(prefix.lower()) and len(title_part) > len(prefix):
            title_part = title_part[len(prefix) :]
    title, author = split_camel_case(title_part), split_camel_case(author_part)
    is_translation = bool(_TRANSLATION_MARK.search(title) or _TRANSLATION_MARK.search(author))
    title = _INLINE_SPACE.sub(" ", _TRANSLATION_MARK.sub(" ", title)).strip(" -_")
    author = _INLINE_SPACE.sub(" ", _TRANSLATION_MARK.sub(" ", author)).strip(" -_")
    return title, author, is_translation


def decode_poem_bytes(data: bytes, encoding_fallback: str | None = None) -> str:
    """Decode a poem file; raise ``ValueError`` naming the problem if it is not text.

    UTF-8 (with or without BOM) is expected. Another encoding is an error unless
    ``encoding_fallback`` (e.g. ``"cp1252"``) is given, so mojibake is never silent.

    Example:
        >>> decode_poem_bytes("é".encode("latin-1"), encoding_fallback="latin-1")
        'é'
    """
    if b"\x00" in data:
        raise ValueError("binary file (contains NUL bytes), not a text poem")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        if encoding_fallback is None:
            raise ValueError(
                f"not valid UTF-8 (byte {data[err.start]:#04x} at offset {err.start}); "
                "pass encoding_fallback='cp1252' (or 'latin-1') to read it anyway"
            ) from None
        return data.decode(encoding_fallback)


def read_poem_file(
    path: Path, root: Path, encoding_fallback: str | None = None
) -> RawPoem | BadInput:
    """Read one Kaggle poem file; a problem comes back as a :class:`BadInput`."""
    rel = path.relative_to(root).as_posix()
    try:
        data = path.read_bytes()
    except OSError as err:
        return BadInput(rel, f"unreadable: {err.strerror or err}")
    try:
        text = normalize_text(decode_poem_bytes(data, encoding_fallback))
    except ValueError as err:
        return BadInput(rel, str(err))
    if not text:
        return BadInput(rel, "empty poem (no text after whitespace normalisation)")
    parts = path.relative_to(root).parts
    kind, folder = (parts[0], parts[1]) if len(parts) >= 3 else ("", "")
    title, author, is_translation = parse_poem_filename(path.name, folder or None)
    forms = (_folder_key(folder),) if kind == "forms" else ()
    topics = (_folder_key(folder),) if kind == "topics" else ()
    return RawPoem(
        title=title,
        author=author,
        text=text,
        forms=forms,
        topics=topics,
        is_translation=is_translation,
        files=(rel,),
    )


def _folder_key(name: str) -> str:
    return re.sub(r"[\s_]+", "-", name.strip().lower())


def _table_rows(path: Path) -> Iterator[tuple[int, dict]]:
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield number, json.loads(line)
    else:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            yield from enumerate(csv.DictReader(handle), start=2)


def read_poem_table(path: Path, root: Path | None = None) -> ReadResult:
    """Read a CSV or JSONL with columns ``title, author, form, text`` (``topic`` optional).

    Column names are matched case-insensitively. A missing column rejects the file; a row
    without text is rejected alone.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "poems.csv"
        >>> _ = path.write_text("Title,Author,Form,Text\\nPond,Basho,haiku,old pond\\n")
        >>> read_poem_table(path).poems[0].forms
        ('haiku',)
    """
    rel = path.relative_to(root).as_posix() if root else str(path)
    result = ReadResult(files_seen=1)
    try:
        rows = _table_rows(path)
        first = next(rows, None)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error) as err:
        result.bad.append(BadInput(rel, f"unreadable table: {err}"))
        return result
    if first is None:
        result.bad.append(BadInput(rel, "empty table (no rows)"))
        return result
    columns = {str(key).strip().lower() for key in first[1]}
    missing = [name for name in TABLE_COLUMNS if name not in columns]
    if missing:
        result.bad.append(BadInput(rel, f"missing column(s) {missing}; need {list(TABLE_COLUMNS)}"))
        return result
    try:
        for number, row in _chain([first], rows):
            lowered = {str(k).strip().lower(): v for k, v in row.items()}
            text = normalize_text(str(lowered.get("text") or ""))
            if not text:
                result.bad.append(BadInput(rel, "empty poem text", row=number))
                continue
            form = str(lowered.get("form") or "").strip()
            topic = str(lowered.get("topic") or "").strip()
            flag = str(lowered.get("is_translation") or "").strip().lower()
            result.poems.append(
                RawPoem(
                    title=normalize_text(str(lowered.get("title") or "")),
                    author=normalize_text(str(lowered.get("author") or "")),
                    text=text,
                    forms=(_folder_key(form),) if form else (),
                    topics=(_folder_key(topic),) if topic else (),
                    is_translation=flag in {"1", "true", "yes"},
                    files=(f"{rel}:{number}",),
                )
            )
    except (UnicodeDecodeError, json.JSONDecodeError, csv.Error) as err:
        result.bad.append(BadInput(rel, f"table unreadable after {len(result.poems)} rows: {err}"))
    return result


def _chain(first: Iterable, rest: Iterable) -> Iterator:
    yield from first
    yield from rest


def list_poem_inputs(root: Path) -> list[Path]:
    """Every ``.txt`` under ``forms/``/``topics/`` and every table at any depth, sorted."""
    root = Path(root)
    files = [
        path
        for path in root.rglob("*")
        if (
            path.suffix.lower() == ".txt" and path.relative_to(root).parts[0] in ("forms", "topics")
        )
        or path.suffix.lower() in TABLE_SUFFIXES
    ]
    return sorted(files)


def read_poems_folder(
    root: str | Path,
    *,
    encoding_fallback: str | None = None,
    progress: bool = False,
) -> ReadResult:
    """Read every poem under ``root`` (Kaggle layout and/or tables); see module doc.

    Example:
        >>> import tempfile
        >>> raw = Path(tempfile.mkdtemp())
        >>> (raw / "forms" / "haiku").mkdir(parents=True)
        >>> _ = (raw / "forms" / "haiku" / "OldPondPoembyBasho.txt").write_text("old pond")
        >>> _ = (raw / "forms" / "haiku" / "EmptyPoembyNobody.txt").write_text("")
        >>> res = read_poems_folder(raw)
        >>> [p.title for p in res.poems], len(res.bad)
        (['Old Pond'], 1)
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"raw poems folder {str(root)!r} does not exist or is not a folder")
    paths = list_poem_inputs(root)
    if not paths:
        raise ValueError(
            f"no poems under {str(root)!r}: expected forms/<form>/*.txt, topics/<topic>/*.txt "
            "or a .csv/.jsonl table with columns title, author, form, text"
        )
    result = ReadResult()
    iterator: Iterable[Path] = paths
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(paths, desc="read poems", unit="file")
    for path in iterator:
        if path.suffix.lower() in TABLE_SUFFIXES:
            table = read_poem_table(path, root)
            result.poems.extend(table.poems)
            result.bad.extend(table.bad)
            result.files_seen += 1
            continue
        result.files_seen += 1
        item = read_poem_file(path, root, encoding_fallback)
        (result.bad if isinstance(item, BadInput) else result.poems).append(item)
    return result


def merge_duplicates(poems: Iterable[RawPoem]) -> tuple[list[RawPoem], int]:
    """Merge poems with identical (normalised) text; keep every form, topic and file.

    Title, author and translation flag come from the first occurrence (inputs are read in
    sorted path order, so this is deterministic). Returns the merged list (first-seen order)
    and how many inputs were merged away.

    Example:
        >>> a = RawPoem("T", "A", "same", forms=("haiku",), files=("f/1",))
        >>> b = RawPoem("T", "A", "same", topics=("love",), files=("t/1",))
        >>> merged, n = merge_duplicates([a, b])
        >>> (len(merged), n, merged[0].forms, merged[0].topics)
        (1, 1, ('haiku',), ('love',))
    """
    by_id: dict[str, RawPoem] = {}
    duplicates = 0
    for poem in poems:
        key = content_id(poem.text)
        seen = by_id.get(key)
        if seen is None:
            by_id[key] = poem
            continue
        duplicates += 1
        by_id[key] = RawPoem(
            title=seen.title or poem.title,
            author=seen.author or poem.author,
            text=seen.text,
            forms=tuple(sorted(set(seen.forms) | set(poem.forms))),
            topics=tuple(sorted(set(seen.topics) | set(poem.topics))),
            is_translation=seen.is_translation or poem.is_translation,
            files=seen.files + poem.files,
        )
    return list(by_id.values()), duplicates
