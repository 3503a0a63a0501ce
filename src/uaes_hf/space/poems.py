r"""Poems and images as the Explore tab shows them: filtering, labels, one poem's text, the
image-poem-text gallery. Pure functions of tables (DataFrame, ``datasets.Dataset`` or
records); no Gradio.

Example:
    >>> import pandas as pd
    >>> poems = with_poem_fields(pd.DataFrame({"id": ["a"], "text": ["Tyger Tyger\nburning"]}))
    >>> poem_label(poems.iloc[0])
    'Tyger Tyger — anonymous [a]'
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np

POEM_TABLE_COLUMNS: tuple[str, ...] = (
    "title",
    "author",
    "form",
    "form_category",
    "aesthetic_score",
    "n_words",
    "n_lines",
    "opening",
)


# Short headers for display (the long field names make narrow columns).
POEM_TABLE_HEADERS = {
    "form_category": "category",
    "aesthetic_score": "score",
    "n_words": "words",
    "n_lines": "lines",
}


def filter_poems(
    poems: Any,
    *,
    min_score: int = 1,
    max_score: int = 5,
    include_unscored: bool = False,
    form_categories: Sequence[str] | None = None,
    min_words: int = 0,
    max_words: int | None = None,
    limit: int = 200,
) -> tuple[Any, int]:
    """Poems whose score, form category and length pass the filters.

    Args:
        poems: a ``pandas.DataFrame`` or ``datasets.Dataset`` of poem records.
        min_score, max_score: inclusive aesthetic-score range (1..5).
        include_unscored: also keep poems without a score.
        form_categories: keep these ``form_category`` values (``None`` keeps all).
        min_words, max_words: inclusive ``n_words`` range (``max_words=None``: no maximum).
        limit: at most this many rows are returned (the count covers all matches).

    Returns:
        ``(table, n_matches)``: a DataFrame with :data:`POEM_TABLE_COLUMNS` plus ``id``, and
        the number of matching poems before ``limit``.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"id": ["a", "b"], "title": ["A", "B"], "author": ["x", "y"],
        ...     "form": ["sonnet", "free"], "form_category": ["formatted", "free_verse"],
        ...     "text": ["one\\ntwo", "three"], "aesthetic_score": [5, 2],
        ...     "n_words": [2, 1], "n_lines": [2, 1]})
        >>> filter_poems(df, min_score=4)[1]
        1
    """
    frame = as_frame(poems)
    if min_score > max_score:
        raise ValueError(f"min_score={min_score} is above max_score={max_score}")
    if max_words is not None and min_words > max_words:
        raise ValueError(f"min_words={min_words} is above max_words={max_words}")
    scores = frame["aesthetic_score"]
    keep = scores.between(min_score, max_score)
    if include_unscored:
        keep |= scores.isna()
    if form_categories is not None:
        keep &= frame["form_category"].isin(list(form_categories))
    keep &= frame["n_words"] >= min_words
    if max_words is not None:
        keep &= frame["n_words"] <= max_words
    matched = frame[keep.fillna(False).astype(bool)]
    table = matched.head(limit).copy()
    table["opening"] = [_opening(text) for text in table["text"]]
    columns = ["id", *[c for c in POEM_TABLE_COLUMNS if c in table.columns]]
    return table[columns].reset_index(drop=True), int(len(matched))


def _opening(text: str, n_lines: int = 2, width: int = 90) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    opening = " / ".join(lines[:n_lines])
    return opening if len(opening) <= width else opening[: width - 1] + "…"


def as_frame(data: Any) -> Any:
    """A ``pandas.DataFrame`` view of a DataFrame, ``datasets.Dataset`` or list of dicts."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if hasattr(data, "to_pandas"):
        return data.to_pandas()
    return pd.DataFrame(list(data))


def with_poem_fields(poems: Any) -> Any:
    r"""The poems as a DataFrame with every field the Space shows (``id`` and ``text`` needed).

    Tables with fewer columns (a run's sample, a user's dataset) get defaults: the title is
    the first line, counts come from the text, unknown fields are empty.

    Example:
        >>> import pandas as pd
        >>> with_poem_fields(pd.DataFrame({"id": ["a"], "text": ["Tyger Tyger\nburning"]}))[
        ...     ["title", "n_lines", "form_category"]].values.tolist()
        [['Tyger Tyger', 2, 'unknown']]
    """
    frame = as_frame(poems).copy()
    missing = [c for c in ("id", "text") if c not in frame.columns]
    if missing:
        raise ValueError(f"the poems table lacks the column(s) {missing}")
    texts = frame["text"].astype(str)
    defaults = {
        "title": [_first_line(t) for t in texts],
        "author": "",
        "form": "",
        "form_category": "unknown",
        "n_words": [len(t.split()) for t in texts],
        "n_lines": [sum(1 for line in t.splitlines() if line.strip()) for t in texts],
        "aesthetic_score": np.nan,
        "aesthetic_rationale": None,
    }
    for column, value in defaults.items():
        if column not in frame.columns:
            frame[column] = value
    return frame


def _first_line(text: str, width: int = 60) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"


def poem_label(row: Any) -> str:
    """Dropdown label of a poem: ``title — author [id]`` (the id makes it unique).

    Example:
        >>> poem_label({"id": "ab12", "title": "Ozymandias", "author": "Shelley"})
        'Ozymandias — Shelley [ab12]'
    """
    return f"{row['title'] or '(untitled)'} — {row['author'] or 'anonymous'} [{row['id']}]"


def id_from_label(label: str) -> str:
    """Inverse of :func:`poem_label` (also accepts a bare id).

    Example:
        >>> id_from_label('Ozymandias — Shelley [ab12]')
        'ab12'
    """
    label = str(label).strip()
    if label.endswith("]") and "[" in label:
        return label[label.rindex("[") + 1 : -1]
    return label


def gallery_items(
    records: Any, *, min_level: int = 1, max_level: int = 5, limit: int = 48
) -> tuple[list[tuple[Any, str]], Any]:
    """Images with a caption line, and a table of captions, poems and scores.

    Args:
        records: image-poem-text records (DataFrame, ``datasets.Dataset`` or dicts) with
            ``id``, ``image``, ``caption``, ``poem``, ``image_aesthetic_score``,
            ``image_aesthetic_level``.
        min_level, max_level: inclusive range of ``image_aesthetic_level``.

    Returns:
        ``(gallery, table)``: ``[(PIL image, caption), ...]`` for ``gr.Gallery`` and a
        DataFrame with id, level, score, caption and poem.
    """
    if min_level > max_level:
        raise ValueError(f"min_level={min_level} is above max_level={max_level}")
    rows = list(_iter_rows(records))
    chosen = [
        row
        for row in rows
        if row.get("image_aesthetic_level") is not None
        and min_level <= int(row["image_aesthetic_level"]) <= max_level
    ][:limit]
    gallery = [
        (
            _as_image(row["image"]),
            f"level {row['image_aesthetic_level']} · score "
            f"{_score_text(row.get('image_aesthetic_score'))} · {row['caption']}",
        )
        for row in chosen
    ]
    import pandas as pd

    table = pd.DataFrame(
        {
            "id": [row["id"] for row in chosen],
            "image_aesthetic_level": [int(row["image_aesthetic_level"]) for row in chosen],
            "image_aesthetic_score": [
                round(float(row.get("image_aesthetic_score", np.nan)), 3) for row in chosen
            ],
            "caption": [row["caption"] for row in chosen],
            "poem": [row.get("poem", "") for row in chosen],
        }
    )
    return gallery, table


def _score_text(score: Any) -> str:
    if score is None or _isnan(score):
        return "score n/a"
    return f"score {float(score):.2f}"


def _iter_rows(records: Any) -> Any:
    if hasattr(records, "to_dict") and hasattr(records, "columns"):  # pandas
        yield from records.to_dict("records")
    else:
        yield from records


def _as_image(value: Any) -> Any:
    """A PIL image from a PIL image, a path, or a ``{"bytes"|"path": ...}`` datasets cell."""
    from PIL import Image

    if isinstance(value, Image.Image):
        return value
    if isinstance(value, dict):
        if value.get("bytes"):
            import io

            return Image.open(io.BytesIO(value["bytes"]))
        value = value.get("path")
    return Image.open(value)


def poem_row(poems: Any, label: str) -> dict[str, Any]:
    """The record of the poem named by a :func:`poem_label` (or its id)."""
    frame = as_frame(poems)
    poem_id = id_from_label(label)
    hits = frame[frame["id"].astype(str) == poem_id]
    if hits.empty:
        raise ValueError(f"no poem with id {poem_id!r} in the dataset")
    return hits.iloc[0].to_dict()


def poem_markdown(poems: Any, label: str) -> str:
    """A poem's full text with its metadata, as Markdown (line breaks kept)."""
    row = poem_row(poems, label)
    score = row.get("aesthetic_score")
    score_text = "unscored" if score is None or _isnan(score) else f"aesthetic score {int(score)}"
    body = "  \n".join(html.escape(line) for line in str(row["text"]).splitlines())
    rationale = row.get("aesthetic_rationale")
    extra = (
        "" if not rationale or _isnan(rationale) else f"\n\n*Judge:* {html.escape(str(rationale))}"
    )
    return (
        f"#### {html.escape(str(row['title']))}\n*{html.escape(str(row['author']))}* · "
        f"{row['form']} ({row['form_category']}) · {int(row['n_words'])} words · {score_text}"
        f"\n\n{body}{extra}"
    )


def _isnan(value: Any) -> bool:
    try:
        return bool(np.isnan(value))
    except (TypeError, ValueError):
        return False


def poem_labels(poems: Any) -> list[str]:
    """Dropdown labels of every poem of a table, in its order."""
    return [poem_label(row) for row in as_frame(poems).to_dict("records")]
