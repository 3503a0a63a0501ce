"""Annotation hook: attach aesthetic scores and rationales to poems, never dropping one.

Sources, all keyed by the poem ``id`` (content hash of the cleaned text):

* a CSV or JSONL file with columns ``id, score, rationale, annotator`` (``aesthetic_score``
  / ``aesthetic_rationale`` accepted as synonyms; ``rationale``/``annotator`` optional);
* a mapping ``{id: Annotation}`` (e.g. a result store loaded by the judge);
* a callable ``poem -> Annotation | None`` (e.g. the LLM judge itself).

Scores must be integers 1-5 (``"4"`` and ``4.0`` are accepted as 4); anything else is a
``ValueError`` naming the file and row. A poem without an annotation keeps ``None``.

Example:
    >>> poem = PoemRecord(id="abc", title="T", author="A", form="haiku",
    ...                   form_category="formatted", text="old pond", n_words=2, n_lines=1,
    ...                   english_ratio=1.0)
    >>> ann = {"abc": Annotation(4, "vivid imagery", "gpt-4o")}
    >>> merged, stats = merge_annotations([poem], ann)
    >>> merged[0].aesthetic_score, stats["annotated"]
    (4, 1)
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uaes_hf.data.records import PoemRecord


@dataclass(frozen=True)
class Annotation:
    """One aesthetic judgement."""

    score: int
    rationale: str | None = None
    annotator: str | None = None


AnnotationSource = str | Path | Mapping[str, Annotation] | Callable[[PoemRecord], Any]


def validate_score(value: Any, where: str = "") -> int:
    """An integer 1-5 from ``value``; ``ValueError`` naming ``where`` otherwise.

    Example:
        >>> validate_score("4"), validate_score(5.0)
        (4, 5)
    """
    at = f" ({where})" if where else ""
    if isinstance(value, bool) or value is None or value == "":
        raise ValueError(f"aesthetic score missing or not a number{at}: {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"aesthetic score must be an integer 1-5{at}, got {value!r}") from None
    if not number.is_integer() or not 1 <= number <= 5:
        raise ValueError(f"aesthetic score must be an integer 1-5{at}, got {value!r}")
    return int(number)


def _rows(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    if path.suffix.lower() == ".jsonl":
        with path.open(encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        yield number, json.loads(line)
                    except json.JSONDecodeError as err:
                        raise ValueError(f"{path}:{number}: not valid JSON ({err.msg})") from None
    elif path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            yield from enumerate(csv.DictReader(handle), start=2)
    else:
        raise ValueError(f"annotations must be a .csv or .jsonl file, got {path.name!r}")


def read_annotations(path: str | Path) -> dict[str, Annotation]:
    """Read ``id -> Annotation`` from a CSV/JSONL file (see module doc).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "ratings.csv"
        >>> _ = path.write_text("id,score,rationale\\n3f2a,4,vivid\\n")
        >>> read_annotations(path)["3f2a"].score
        4
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"annotations file {str(path)!r} does not exist")
    out: dict[str, Annotation] = {}
    for number, raw in _rows(path):
        row = {str(k).strip().lower(): v for k, v in raw.items()}
        where = f"{path.name} row {number}"
        if "id" not in row:
            raise ValueError(f"{where}: missing column 'id' (columns: {sorted(row)})")
        score_key = "score" if "score" in row else "aesthetic_score"
        if score_key not in row:
            raise ValueError(f"{where}: missing column 'score' (columns: {sorted(row)})")
        rationale = row.get("rationale", row.get("aesthetic_rationale"))
        annotator = row.get("annotator")
        poem_id = str(row["id"]).strip()
        if not poem_id:
            raise ValueError(f"{where}: empty id")
        out[poem_id] = Annotation(
            validate_score(row[score_key], where),
            str(rationale) if rationale not in (None, "") else None,
            str(annotator) if annotator not in (None, "") else None,
        )
    return out


def _coerce(value: Any, where: str) -> Annotation | None:
    if value is None:
        return None
    if isinstance(value, Annotation):
        return Annotation(validate_score(value.score, where), value.rationale, value.annotator)
    if isinstance(value, Mapping):
        score = value.get("score", value.get("aesthetic_score"))
        return Annotation(
            validate_score(score, where),
            value.get("rationale", value.get("aesthetic_rationale")),
            value.get("annotator"),
        )
    raise ValueError(f"{where}: expected an Annotation or a dict, got {type(value).__name__}")


def merge_annotations(
    records: Iterable[PoemRecord], source: AnnotationSource | None
) -> tuple[list[PoemRecord], dict[str, int]]:
    """Records with annotations attached, and counts (annotated, unannotated, unmatched).

    ``unmatched`` counts annotations whose id matches no poem (e.g. a poem dropped by the
    English filter); they are ignored, and reported by the build.

    Example:
        >>> merge_annotations([], None)
        ([], {'annotated': 0, 'unannotated': 0, 'unmatched': 0})
    """
    records = list(records)
    if source is None:
        return records, {"annotated": 0, "unannotated": len(records), "unmatched": 0}
    if isinstance(source, (str, Path)):
        source = read_annotations(source)
    merged: list[PoemRecord] = []
    annotated = 0
    if callable(source) and not isinstance(source, Mapping):
        for record in records:
            found = _coerce(source(record), f"annotation of poem {record.id}")
            merged.append(_apply(record, found))
            annotated += found is not None
        return merged, {
            "annotated": annotated,
            "unannotated": len(records) - annotated,
            "unmatched": 0,
        }
    ids = {record.id for record in records}
    for record in records:
        found = _coerce(source.get(record.id), f"annotation of poem {record.id}")
        merged.append(_apply(record, found))
        annotated += found is not None
    unmatched = sum(1 for key in source if key not in ids)
    return merged, {
        "annotated": annotated,
        "unannotated": len(records) - annotated,
        "unmatched": unmatched,
    }


def _apply(record: PoemRecord, annotation: Annotation | None) -> PoemRecord:
    if annotation is None:
        return record
    return record.with_annotation(annotation.score, annotation.rationale, annotation.annotator)
