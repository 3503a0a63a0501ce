"""Read the poems to rate: a poems dataset repo folder, or a plain file.

- A dataset repo folder (``README.md`` + ``data/<config>/*.parquet``, the layout the poems
  dataset publishes): the ``id`` and ``text`` columns of every parquet file of ``config``.
- A ``.parquet``, ``.csv`` or ``.jsonl`` file with ``id`` and ``text`` columns.
- A ``.txt`` file: poems separated by lines holding only ``---`` (or, when there is no such
  line, by two or more blank lines); the id is the first 16 hex digits of the text's sha256.

Ids are unique in the result: a repeated (id, text) pair is kept once, and one id with two
different texts is a ``ValueError``. Distinct ids may share a text (rated once, both rows
get the rating).

Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "poems.txt"
    >>> _ = path.write_text("Roses are red\\n---\\nThe sea is calm tonight\\n")
    >>> [p.text for p in load_poems(path)]
    ['Roses are red', 'The sea is calm tonight']
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from uaes_hf.annotate.judge import PoemItem


def text_id(text: str) -> str:
    """Stable id of a poem text (sha256 prefix)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def load_poems(path: str | Path, config: str = "main", limit: int | None = None) -> list[PoemItem]:
    """Poems (id, text) from a dataset folder or a file; see the module docstring."""
    path = Path(path)
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if path.is_dir():
        items = _from_repo(path, config)
    elif path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".txt":
            items = _from_text(path)
        elif suffix in (".parquet", ".csv", ".jsonl"):
            items = _from_table([path])
        else:
            raise ValueError(f"unsupported poems file {path}; use .txt, .parquet, .csv or .jsonl")
    else:
        raise ValueError(f"{path} does not exist")
    if not items:
        raise ValueError(f"no poems found in {path}")
    items = _unique_ids(items, path)
    return items[:limit] if limit else items


def _unique_ids(items: list[PoemItem], source: Path) -> list[PoemItem]:
    """One item per id: exact repeats (e.g. a poem pasted twice in a .txt file, whose id is
    its text hash) are dropped; one id with two different texts is an error, because the
    ratings file and the dataset hook are keyed by id."""
    seen: dict[str, str] = {}
    unique: list[PoemItem] = []
    for item in items:
        if item.id in seen:
            if seen[item.id] != item.text:
                raise ValueError(
                    f"{source}: poem id {item.id!r} appears with two different texts; "
                    "ids must be unique"
                )
            continue
        seen[item.id] = item.text
        unique.append(item)
    return unique


def _from_repo(folder: Path, config: str) -> list[PoemItem]:
    config_dir = folder / "data" / config
    files = sorted(config_dir.rglob("*.parquet")) if config_dir.is_dir() else []
    if not files:
        available = sorted(p.name for p in (folder / "data").glob("*") if p.is_dir())
        raise ValueError(
            f"{folder} has no parquet files under data/{config}/; "
            f"available configs: {available or 'none (not a dataset repo folder?)'}"
        )
    return _from_table(files)


def _from_table(files: list[Path]) -> list[PoemItem]:
    import pandas as pd

    items: list[PoemItem] = []
    for file in files:
        suffix = file.suffix.lower()
        if suffix == ".parquet":
            frame = pd.read_parquet(file, columns=None)
        elif suffix == ".csv":
            frame = pd.read_csv(file, dtype={"id": str})
        else:
            frame = pd.read_json(file, lines=True, dtype={"id": str})
        missing = {"id", "text"} - set(frame.columns)
        if missing:
            raise ValueError(
                f"{file} lacks column(s) {sorted(missing)}; columns: {list(frame.columns)}"
            )
        for item_id, text in zip(frame["id"], frame["text"], strict=True):
            if isinstance(text, str) and text.strip():
                items.append(PoemItem(str(item_id), text))
    return items


def _from_text(path: Path) -> list[PoemItem]:
    content = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    if re.search(r"^---\s*$", content, flags=re.MULTILINE):
        chunks = re.split(r"^---\s*$", content, flags=re.MULTILINE)
    else:
        chunks = re.split(r"\n[ \t]*\n(?:[ \t]*\n)+", content)
    texts = [chunk.strip("\n").rstrip() for chunk in chunks]
    return [PoemItem(text_id(t), t) for t in texts if t.strip()]
