"""Importers for the study's published datasets: their columns mapped to the suite's records.

The study (``github:SjJ1017/EPFL25_FDH_Universal_Aesthetics``) published its data on the Hub:

* ``SHENJJ1017/poem_aesthetic_eval``: the cleaned Kaggle poems with its GPT-4o scores, one
  branch per set (``main``; ``aligned_s``, length-aligned to the plain texts). Its code reads
  ``content`` (the poem), ``score`` (GPT-4o, 1-5; its rating script writes 0 when the
  answer could not be parsed) and ``form`` (the Kaggle form folder); its loader also wrote
  ``title``, ``author``, ``is_translation``, ``filename``, and its rating script nested the
  rationale and score under ``evaluation`` (``{thinking, score}``).
* ``SHENJJ1017/Image-Text``: images (``image``), their captions (``text``), poems generated
  from the images (image2poem), and the ROC4MLLM aesthetic level (``score``, which its
  plots read as ``int(d['score'])``).
* ``minhuh/prh`` at revision ``wit_1024``: the plain texts; ``text`` is a list of captions
  and the study uses the first.

Names the code does not show are configuration: every importer takes ``columns``, a mapping
from a record field to a column name, a list of candidate names (the first present wins),
or ``None`` (the dataset has no such column: the field stays empty). Dotted names reach
into a struct column (``evaluation.score``). The defaults (:data:`POEM_COLUMNS`,
:data:`IMAGE_TEXT_COLUMNS`, :data:`PLAIN_TEXT_COLUMNS`) hold the study's names first. A
required field without a column raises ``ValueError`` listing the columns found.

Every import returns an :class:`ImportResult`: the records (in the dataset's row order),
the column used for each field, and notes on everything substituted or skipped (a failed
rating becomes a null score, an empty text is skipped, a repeated text gets a suffixed id).

Example:
    >>> resolve_columns(["content", "score", "form"], POEM_COLUMNS, POEM_REQUIRED)["text"]
    'content'
    >>> resolve_columns(["poem_text"], POEM_COLUMNS, POEM_REQUIRED)
    Traceback (most recent call last):
    ...
    ValueError: no column for field 'text' (tried ['content', 'text', 'poem']); ...
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uaes_hf.data.forms import form_category
from uaes_hf.data.lengths import count_lines, count_words
from uaes_hf.data.records import PlainTextRecord, PoemRecord, content_id

# The study's plain texts: the first caption of each row of minhuh/prh at wit_1024.
PRH_REPO = "minhuh/prh"
PRH_REVISION = "wit_1024"

STUDY_POEMS = "SHENJJ1017/poem_aesthetic_eval"
STUDY_IMAGE_TEXT = "SHENJJ1017/Image-Text"
STUDY_ANNOTATOR = "openai:gpt-4o:study"  # the study's rating script (poems/rating_poems.py)
STUDY_POEM_SOURCE = "image2poem (Liu et al. 2018), run by the study"
STUDY_IMAGE_SCORER = "ROC4MLLM, mapped to levels 1-5 by the study"

ColumnSpec = str | Sequence[str] | None

POEM_COLUMNS: dict[str, tuple[str, ...]] = {
    "text": ("content", "text", "poem"),
    "aesthetic_score": ("score", "evaluation.score", "aesthetic_score"),
    "aesthetic_rationale": ("thinking", "evaluation.thinking", "aesthetic_rationale"),
    "title": ("title",),
    "author": ("author",),
    "form": ("form",),
    "is_translation": ("is_translation",),
    "file": ("filename", "file_name"),
}
POEM_REQUIRED: tuple[str, ...] = ("text", "aesthetic_score")

IMAGE_TEXT_COLUMNS: dict[str, tuple[str, ...]] = {
    "image": ("image",),
    "caption": ("text", "caption"),
    "poem": ("poem", "content"),
    "image_aesthetic_level": ("score", "image_aesthetic_level", "level"),
    "image_aesthetic_score": ("image_aesthetic_score", "aesthetic_score"),
    "license": ("license",),
    "file": ("file_name", "image_filename", "filename"),
}
IMAGE_TEXT_REQUIRED: tuple[str, ...] = ("image", "caption", "poem", "image_aesthetic_level")

PLAIN_TEXT_COLUMNS: dict[str, tuple[str, ...]] = {"text": ("text", "caption", "content")}
PLAIN_TEXT_REQUIRED: tuple[str, ...] = ("text",)

# A dataset with these columns is already in the suite's format and is passed through.
SUITE_POEM_COLUMNS = ("id", "text", "form_category", "n_words", "aesthetic_score")
SUITE_PLAIN_COLUMNS = ("id", "text", "n_words", "source")


@dataclass
class ImportResult:
    """Records in row order, the column used for each field, and what was substituted."""

    source: str
    records: list[Any]
    columns: dict[str, str | None]
    n_rows: int
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line per note, after a header (what a log or a report shows)."""
        head = f"{self.source}: {len(self.records)} records from {self.n_rows} rows"
        return "\n".join([head, *(f"  {note}" for note in self.notes)])


def _present(column: str, found: Sequence[str], structs: Mapping[str, Sequence[str]]) -> bool:
    if column in found:
        return True
    top, _, inner = column.partition(".")
    return bool(inner) and top in found and inner in structs.get(top, ())


def resolve_columns(
    found: Sequence[str],
    defaults: Mapping[str, Sequence[str]],
    required: Sequence[str],
    columns: Mapping[str, ColumnSpec] | None = None,
    structs: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, str | None]:
    """The column each field reads (``None``: absent), from overrides, then the defaults.

    Args:
        found: the dataset's column names.
        defaults: field -> candidate column names, in order of preference.
        required: fields that must have a column.
        columns: overrides: field -> a name, a list of candidates, or ``None`` (absent).
        structs: struct column -> its field names (for dotted names such as ``a.b``).

    Raises:
        ValueError: an unknown field, an override naming a missing column, or a required
            field without a column; the message lists the columns found.

    Example:
        >>> resolve_columns(["poem", "s"], POEM_COLUMNS, POEM_REQUIRED,
        ...                 {"aesthetic_score": "s"})["aesthetic_score"]
        's'
    """
    found = list(found)
    structs = structs or {}
    overrides = dict(columns or {})
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ValueError(f"unknown field(s) {unknown} in columns; fields are {sorted(defaults)}")
    resolved: dict[str, str | None] = {}
    for name, candidates in defaults.items():
        explicit = name in overrides
        wanted = overrides.get(name, candidates)
        if wanted is None:
            if name in required:
                raise ValueError(f"field {name!r} is required and cannot be mapped to None")
            resolved[name] = None
            continue
        options = [wanted] if isinstance(wanted, str) else list(wanted)
        hit = next((c for c in options if _present(c, found, structs)), None)
        if hit is None and explicit:
            raise ValueError(
                f"column(s) {options} for field {name!r} not found; columns found: {found}"
            )
        if hit is None and name in required:
            raise ValueError(
                f"no column for field {name!r} (tried {options}); columns found: {found}; "
                f"map it with columns={{{name!r}: '<column>'}}"
            )
        resolved[name] = hit
    return resolved


def _cell(row: Mapping[str, Any], column: str | None) -> Any:
    if column is None:
        return None
    if column in row:
        return row[column]
    top, _, inner = column.partition(".")
    value = row.get(top)
    return value.get(inner) if isinstance(value, Mapping) else None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _number(value: Any) -> float | None:
    """A finite float from a number or numeric string; ``None`` for anything else."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def study_score(value: Any) -> tuple[int | None, str | None]:
    """A poem score 1-5, or ``None`` and why (0 is the study's code for a failed rating).

    Example:
        >>> study_score(4), study_score("5"), study_score(None)
        ((4, None), (5, None), (None, 'score missing'))
        >>> study_score(0)[1], study_score(4.5)[1]
        ('score 0 (rating failed)', 'score not an integer 1-5')
    """
    number = _number(value)
    if number is None:
        return None, "score missing"
    if number == 0:
        return None, "score 0 (rating failed)"
    if number != int(number) or not 1 <= number <= 5:
        return None, "score not an integer 1-5"
    return int(number), None


def _structs(dataset: Any) -> dict[str, list[str]]:
    features = getattr(dataset, "features", None) or {}
    return {name: list(f) for name, f in features.items() if isinstance(f, Mapping)}


def _load(
    source: str | Path, revision: str | None, config: str | None, split: str
) -> tuple[Any, str]:
    from uaes_hf.data.repo import load_dataset_repo

    dataset = load_dataset_repo(source, revision=revision, config=config, split=split)
    label = f"{source}@{revision or config or 'main'}"
    return dataset, label


def _unique_id(base: str, seen: Counter[str]) -> str:
    seen[base] += 1
    return base if seen[base] == 1 else f"{base}-{seen[base]}"


def _notes(counts: Counter[str], total: int) -> list[str]:
    return [f"{reason}: {n} of {total} rows" for reason, n in sorted(counts.items())]


def poem_records_from_rows(
    rows: Any,
    columns: Mapping[str, str | None],
    source: str,
    *,
    annotator: str = STUDY_ANNOTATOR,
) -> tuple[list[PoemRecord], list[str]]:
    """Poem records from rows already resolved to ``columns`` (pure; no I/O).

    Example:
        >>> cols = resolve_columns(["content", "score", "form"], POEM_COLUMNS, POEM_REQUIRED)
        >>> records, notes = poem_records_from_rows(
        ...     [{"content": "a b\\nc", "score": 4, "form": "sonnet"},
        ...      {"content": "d", "score": 0, "form": "free-verse"}], cols, "x")
        >>> [(r.n_words, r.n_lines, r.aesthetic_score, r.form_category) for r in records]
        [(3, 2, 4, 'formatted'), (1, 1, None, 'free_verse')]
        >>> notes
        ['score 0 (rating failed) -> null score: 1 of 2 rows']
    """
    records: list[PoemRecord] = []
    counts: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    n_rows = 0
    for row in rows:
        n_rows += 1
        text = _text(_cell(row, columns["text"]))
        if not text.strip():
            counts["empty poem text -> row skipped"] += 1
            continue
        score, why = study_score(_cell(row, columns["aesthetic_score"]))
        if why is not None and columns["aesthetic_score"] is not None:
            counts[f"{why} -> null score"] += 1
        form = _text(_cell(row, columns.get("form"))).strip()
        file = _text(_cell(row, columns.get("file"))).strip()
        base = content_id(text)
        if seen[base]:
            counts["repeated text -> id suffixed -2, -3, ..."] += 1
        rationale = _cell(row, columns.get("aesthetic_rationale"))
        records.append(
            PoemRecord(
                id=_unique_id(base, seen),
                title=_text(_cell(row, columns.get("title"))).strip(),
                author=_text(_cell(row, columns.get("author"))).strip(),
                form=form,
                form_category=form_category(form),
                text=text,  # as published: the study embedded this exact string
                n_words=count_words(text),
                n_lines=count_lines(text),
                english_ratio=float("nan"),  # the study filtered at 0.8 before publishing
                aesthetic_score=score,
                aesthetic_rationale=None if rationale is None else str(rationale),
                annotator=annotator if score is not None else None,
                source=source,
                forms=(form,) if form else (),
                is_translation=bool(_cell(row, columns.get("is_translation")) or False),
                files=(file,) if file else (),
            )
        )
    return records, _notes(counts, n_rows)


def import_study_poems(
    source: str | Path = STUDY_POEMS,
    revision: str | None = None,
    *,
    config: str | None = None,
    split: str = "train",
    columns: Mapping[str, ColumnSpec] | None = None,
    annotator: str = STUDY_ANNOTATOR,
) -> ImportResult:
    """The study's poems (``revision``: its branch, e.g. ``aligned_s``) as poem records.

    Scores are kept as published; 0 (a failed rating) and anything outside 1-5 become null
    and are counted in the notes. The text is kept exactly, so features match the study's.

    Example:
        >>> result = import_study_poems(revision="aligned_s")  # doctest: +SKIP
        >>> result.records[0].aesthetic_score, result.columns["text"]  # doctest: +SKIP
        (4, 'content')
    """
    dataset, label = _load(source, revision, config, split)
    used = resolve_columns(
        dataset.column_names, POEM_COLUMNS, POEM_REQUIRED, columns, _structs(dataset)
    )
    records, notes = poem_records_from_rows(dataset, used, label, annotator=annotator)
    return ImportResult(label, records, used, len(dataset), notes)


def _first_caption(value: Any, index: int) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return None if index >= len(value) else _text(value[index])
    return None if value is None else str(value)


def import_plain_texts(
    source: str | Path = PRH_REPO,
    revision: str | None = PRH_REVISION,
    *,
    config: str | None = None,
    split: str = "train",
    columns: Mapping[str, ColumnSpec] | None = None,
    caption_index: int = 0,
) -> ImportResult:
    """Plain texts as records; a list cell gives its ``caption_index``-th caption.

    The study read ``minhuh/prh@wit_1024`` as ``str(row['text'][0])``: the text is kept as
    that string (not stripped); a row with no text is skipped and counted.

    Example:
        >>> result = import_plain_texts()  # minhuh/prh@wit_1024  # doctest: +SKIP
        >>> len(result.records)  # doctest: +SKIP
        1024
    """
    if caption_index < 0:
        raise ValueError(f"caption_index must be >= 0, got {caption_index}")
    dataset, label = _load(source, revision, config, split)
    used = resolve_columns(dataset.column_names, PLAIN_TEXT_COLUMNS, PLAIN_TEXT_REQUIRED, columns)
    records: list[PlainTextRecord] = []
    counts: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    for row in dataset:
        text = _first_caption(_cell(row, used["text"]), caption_index)
        if text is None or not text.strip():
            counts["no text -> row skipped"] += 1
            continue
        base = content_id(text)
        if seen[base]:
            counts["repeated text -> id suffixed -2, -3, ..."] += 1
        records.append(PlainTextRecord(_unique_id(base, seen), text, count_words(text), label))
    return ImportResult(label, records, used, len(dataset), _notes(counts, len(dataset)))


def _image_bytes(cell: Any) -> bytes | None:
    if isinstance(cell, (bytes, bytearray)):
        return bytes(cell)
    if not isinstance(cell, Mapping):
        return None
    data = cell.get("bytes")
    if data is None and cell.get("path") and Path(cell["path"]).is_file():
        data = Path(cell["path"]).read_bytes()
    return None if data is None else bytes(data)


def import_study_image_text(
    source: str | Path = STUDY_IMAGE_TEXT,
    revision: str | None = None,
    *,
    config: str | None = None,
    split: str = "train",
    columns: Mapping[str, ColumnSpec] | None = None,
) -> ImportResult:
    """The study's image-caption-poem set as image-poem-text records, levels kept.

    The level is ``int(value)`` of the level column, as the study's plots read it; the
    record's ``image_aesthetic_score`` is the mapped score column, else that same value.
    Unreadable images, empty captions or poems are skipped, levels outside 1-5 become null;
    each is counted in the notes.

    Example:
        >>> result = import_study_image_text()  # doctest: +SKIP
        >>> result.records[0].image_aesthetic_level  # doctest: +SKIP
        3
    """
    import datasets

    from uaes_hf.data.image_ingest import image_id, image_problem
    from uaes_hf.data.image_poem_text import ImagePoemTextRecord

    dataset, label = _load(source, revision, config, split)
    used = resolve_columns(
        dataset.column_names, IMAGE_TEXT_COLUMNS, IMAGE_TEXT_REQUIRED, columns, _structs(dataset)
    )
    image_column = used["image"]
    assert image_column is not None  # required
    if isinstance(dataset.features.get(image_column), datasets.Image):
        dataset = dataset.cast_column(image_column, datasets.Image(decode=False))
    records = []
    counts: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    for row in dataset:
        data = _image_bytes(_cell(row, image_column))
        problem = "no image bytes" if data is None else image_problem(data)
        caption = _text(_cell(row, used["caption"]))
        poem = _text(_cell(row, used["poem"]))
        if problem is not None or data is None:
            counts[f"{problem.split(':')[0] if problem else 'no image'} -> row skipped"] += 1
            continue
        if not caption.strip() or not poem.strip():
            counts["empty caption or poem -> row skipped"] += 1
            continue
        raw_level = _number(_cell(row, used["image_aesthetic_level"]))
        level = None if raw_level is None else int(raw_level)  # the study's int(d['score'])
        if level is None or not 1 <= level <= 5:
            counts["level missing or outside 1-5 -> null level"] += 1
            level = None
        score = _number(_cell(row, used.get("image_aesthetic_score")))
        base = image_id(data)
        if seen[base]:
            counts["repeated image -> id suffixed -2, -3, ..."] += 1
        cell = _cell(row, image_column)
        name = cell.get("path") if isinstance(cell, Mapping) else None
        name = name or _text(_cell(row, used.get("file"))) or f"{base}.img"
        records.append(
            ImagePoemTextRecord(
                id=_unique_id(base, seen),
                image={"bytes": data, "path": Path(str(name)).name},
                caption=caption,
                poem=poem,
                poem_source=STUDY_POEM_SOURCE,
                image_aesthetic_score=raw_level if score is None else score,
                image_aesthetic_level=level,
                scorer=STUDY_IMAGE_SCORER,
                license=_text(_cell(row, used.get("license"))) or f"see the card of {label}",
                source=label,
            )
        )
    return ImportResult(label, records, used, len(dataset), _notes(counts, len(dataset)))


def _report(result: ImportResult) -> None:
    if result.notes:
        print(f"uaes: {result.summary()}", file=sys.stderr)


def load_poems_frame(
    source: str | Path,
    revision: str | None = None,
    *,
    config: str | None = None,
    split: str = "train",
    columns: Mapping[str, ColumnSpec] | None = None,
) -> Any:
    """A pandas frame of poem rows from any poems dataset (local folder or Hub id).

    A dataset already in the suite's format (``id``, ``text``, ``form_category``, ...) is
    returned as is unless ``columns`` is given; any other (the study's) is imported with
    :func:`import_study_poems`. The import's column map and notes are in
    ``frame.attrs["uaes_import"]`` (and printed when something was substituted).

    Example:
        >>> frame = load_poems_frame("SHENJJ1017/poem_aesthetic_eval", "aligned_s")  # doctest: +SKIP
    """
    if columns is None:
        frame = _suite_frame(source, revision, config, split, SUITE_POEM_COLUMNS)
        if frame is not None:
            return frame
    result = import_study_poems(source, revision, config=config, split=split, columns=columns)
    return _imported_frame(result, [record.as_row() for record in result.records])


def load_plain_texts_frame(
    source: str | Path = PRH_REPO,
    revision: str | None = PRH_REVISION,
    *,
    config: str | None = None,
    split: str = "train",
    columns: Mapping[str, ColumnSpec] | None = None,
    caption_index: int = 0,
) -> Any:
    """A pandas frame of plain-text rows (``id``, ``text``, ``n_words``, ``source``).

    A dataset in the suite's plain-text format is passed through unless ``columns`` is
    given; otherwise :func:`import_plain_texts` maps it (``minhuh/prh``: first caption).
    """
    if columns is None:
        frame = _suite_frame(source, revision, config, split, SUITE_PLAIN_COLUMNS, keep_all=False)
        if frame is not None:
            return frame
    result = import_plain_texts(
        source, revision, config=config, split=split, columns=columns, caption_index=caption_index
    )
    return _imported_frame(result, [record.as_row() for record in result.records])


def load_image_text_frame(
    source: str | Path = STUDY_IMAGE_TEXT,
    revision: str | None = None,
    *,
    config: str | None = None,
    split: str = "train",
    columns: Mapping[str, ColumnSpec] | None = None,
) -> Any:
    """A pandas frame of image-poem-text rows, ``image`` as encoded bytes (the prepare
    stage's ``image_text.parquet`` layout), from the study's set or the suite's own."""
    result = import_study_image_text(source, revision, config=config, split=split, columns=columns)
    rows = [{**record.as_row(), "image": record.image["bytes"]} for record in result.records]
    return _imported_frame(result, rows)


def _suite_frame(
    source: str | Path,
    revision: str | None,
    config: str | None,
    split: str,
    suite_columns: Sequence[str],
    keep_all: bool = True,
) -> Any | None:
    """The dataset as a frame if it already has the suite's columns (passed through; only
    those unless ``keep_all``), else None (it needs the importer)."""
    dataset, label = _load(source, revision, config, split)
    if not set(suite_columns) <= set(dataset.column_names):
        return None
    frame = dataset.to_pandas()
    if not keep_all:
        frame = frame[list(suite_columns)]
    frame.attrs["uaes_import"] = {"source": label, "format": "suite", "notes": []}
    return frame


def _imported_frame(result: ImportResult, rows: list[dict[str, Any]]) -> Any:
    """The importer's rows as a frame, with what it did (column map, notes) in ``attrs``."""
    import pandas as pd

    _report(result)
    frame = pd.DataFrame(rows)
    frame.attrs["uaes_import"] = {
        "source": result.source,
        "format": "imported",
        "columns": dict(result.columns),
        "n_rows": result.n_rows,
        "n_records": len(result.records),
        "notes": list(result.notes),
    }
    return frame
