"""The image-poem-text dataset's records, card and repo writer (pure data layer).

One record per image (the data contract in ``docs/architecture.md``)::

    id, image, caption, poem, poem_source, image_aesthetic_score, image_aesthetic_level,
    scorer, license, source

written as parquet with a ``datasets.Image`` column (bytes embedded) under
``data/default/`` plus the card rendered from ``model_cards/image_poem_text.md``, through the
generic repo writer (:mod:`uaes_hf.data.repo`), so ``load_dataset(folder)`` works offline
and :func:`uaes_hf.data.repo.publish` pushes the same folder to the Hub.

The rows come from :func:`uaes_hf.images.records.image_text_rows`; the build itself (ingest,
poems, scores, this writer) is :func:`uaes_hf.images.dataset.build_image_poem_text_repo`.
This module imports neither (``data`` does not depend on ``images``).

Example:
    >>> license_table([])
    '| image | license | source |\\n|---|---|---|'
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from uaes_hf.data.image_ingest import ImageCaptionItem
from uaes_hf.data.repo import card_template

CONFIG_NAME = "default"
CARD_TEMPLATE = card_template("image_poem_text.md")
REPORT_NAME = "build_report.json"
RECORD_COLUMNS: tuple[str, ...] = (
    "id",
    "image",
    "caption",
    "poem",
    "poem_source",
    "image_aesthetic_score",
    "image_aesthetic_level",
    "scorer",
    "license",
    "source",
)
BASE_CARD_YAML: dict[str, Any] = {
    "pretty_name": "Image-Poem-Text (uaes-hf)",
    "language": ["en"],
    "task_categories": ["image-to-text", "feature-extraction"],
    "tags": ["poetry", "aesthetics", "image-captioning", "representation-similarity"],
}


@dataclass(frozen=True)
class ImagePoemTextRecord:
    """One published row. ``image`` is ``{"bytes": ..., "path": file name}``."""

    id: str
    image: dict[str, Any]
    caption: str
    poem: str
    poem_source: str
    image_aesthetic_score: float | None
    image_aesthetic_level: int | None
    scorer: str
    license: str
    source: str

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


def image_poem_text_features() -> Any:
    """The ``datasets.Features`` of the records (typed even where a column is all null).

    Example:
        >>> image_poem_text_features()["image"]
        Image(mode=None, decode=True)
    """
    from datasets import Features, Image, Value

    return Features(
        {
            "id": Value("string"),
            "image": Image(),
            "caption": Value("string"),
            "poem": Value("string"),
            "poem_source": Value("string"),
            "image_aesthetic_score": Value("float32"),
            "image_aesthetic_level": Value("int8"),
            "scorer": Value("string"),
            "license": Value("string"),
            "source": Value("string"),
        }
    )


def item_license(item: ImageCaptionItem, default: str) -> str:
    """The license recorded for an item (its ``license`` metadata column, else ``default``)."""
    value = str(item.extra.get("license") or "").strip()
    return value or default


def item_source(item: ImageCaptionItem, default: str) -> str:
    """Where an image came from: ``source_package:path_in_package``, a ``source`` column, or
    the ingest source, in that order."""
    package = str(item.extra.get("source_package") or "").strip()
    path = str(item.extra.get("path_in_package") or "").strip()
    if package and path:
        return f"{package}:{path}"
    return str(item.extra.get("source") or "").strip() or default


def _finite(value: Any) -> bool:
    """A real, finite number (numpy scalars included; None, NaN and pd.NA are not)."""
    if value is None or isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return math.isfinite(float(value))


def records_from_rows(
    rows: Sequence[Mapping[str, Any]],
    items: Sequence[ImageCaptionItem],
    *,
    default_license: str,
    default_source: str,
) -> tuple[list[ImagePoemTextRecord], list[dict[str, str]]]:
    """Published records from image-text rows and their items (same order; pure).

    A row without a poem is dropped and reported; a missing score (NaN: the model never
    answered usably) leaves score and level null.

    Example:
        >>> item = ImageCaptionItem("a1", "a.png", "A cat.", data=b"png")
        >>> row = {"id": "a1", "caption": "A cat.", "image": b"png", "poem": "",
        ...        "poem_source": "", "image_aesthetic_score": 5.0, "image_aesthetic_level": 3,
        ...        "scorer": "s"}
        >>> records_from_rows([row], [item], default_license="CC0", default_source="x")[1]
        [{'file_name': 'a.png', 'reason': 'no poem'}]
    """
    if len(rows) != len(items):
        raise ValueError(f"lengths differ: {len(rows)} rows, {len(items)} items")
    records, dropped = [], []
    for row, item in zip(rows, items, strict=True):
        if row["id"] != item.id:
            raise ValueError(f"row {row['id']!r} is not item {item.id!r}: pass them in order")
        if not str(row.get("poem") or "").strip():
            dropped.append({"file_name": item.file_name, "reason": "no poem"})
            continue
        score = row.get("image_aesthetic_score")
        level = row.get("image_aesthetic_level")
        ok = _finite(score) and _finite(level)
        records.append(
            ImagePoemTextRecord(
                id=item.id,
                image={"bytes": row["image"], "path": Path(item.file_name).name},
                caption=item.caption,
                poem=str(row["poem"]),
                poem_source=str(row.get("poem_source") or ""),
                image_aesthetic_score=round(float(score), 4) if ok else None,
                image_aesthetic_level=int(level) if ok else None,
                scorer=str(row.get("scorer") or ""),
                license=item_license(item, default_license),
                source=item_source(item, default_source),
            )
        )
    return records, dropped


def license_table(records: Sequence[ImagePoemTextRecord]) -> str:
    """Markdown table: one row per image with its license and source.

    Example:
        >>> license_table([])
        '| image | license | source |\\n|---|---|---|'
    """
    lines = ["| image | license | source |", "|---|---|---|"]
    for r in records:
        name = str(r.image.get("path") or r.id).replace("|", "/")
        lines.append(
            f"| `{name}` | {r.license.replace('|', '/')} | `{r.source.replace('|', '/')}` |"
        )
    return "\n".join(lines)


def summary_table(report: dict[str, Any]) -> str:
    """The build report as a Markdown table for the card."""
    levels = report["levels"]
    level_text = ", ".join(f"{k}: {v}" for k, v in sorted(levels.items())) or "none"
    rows = [
        f"Built from `{report['source']}` on {report['built_at']} in {report['timings_s']['total']} s.",
        "",
        "| what | value |",
        "|---|---|",
        f"| images read | {report['ingest']['read']} |",
        f"| images skipped at ingest | {report['ingest']['skipped']} |",
        f"| images without a poem (dropped) | {len(report['dropped'])} |",
        f"| records | {report['records']} |",
        f"| poems by | `{report['poem_generator']}` |",
        f"| scores by | `{report['scorer']}` |",
        f"| level cut points | {report['level_cuts']} ({report['level_mode']}) |",
        f"| records per level | {level_text} |",
        f"| records without a score | {report['unscored']} |",
        f"| licenses | {', '.join(f'{k} ({v})' for k, v in report['licenses'].items())} |",
    ]
    return "\n".join(rows)


def render_card(template: Path | None, fields: dict[str, str]) -> tuple[dict[str, Any], str]:
    """YAML meta and Markdown body of the card, placeholders ``{{name}}`` filled."""
    from uaes_hf.data.repo import split_front_matter

    path = template if template is not None else CARD_TEMPLATE
    if path.is_file():
        meta, body = split_front_matter(path.read_text(encoding="utf-8"))
    else:  # installed without the repo's model_cards/: a minimal, honest card
        meta, body = (
            {},
            (
                "# Image-Poem-Text\n\nCard template model_cards/image_poem_text.md was not "
                "found.\n\n{{build_summary}}\n\n## Licenses per image\n\n{{license_table}}\n"
            ),
        )
    for key, value in fields.items():
        body = body.replace("{{" + key + "}}", value)
    return meta, body


def write_image_poem_text_repo(
    out_dir: str | Path,
    records: Sequence[ImagePoemTextRecord],
    report: dict[str, Any],
    *,
    card_template: str | Path | None = None,
    card_yaml: dict[str, Any] | None = None,
) -> Path:
    """Write the dataset repo (parquet + card); returns the folder.

    ``report`` is the build report (:func:`summary_table` renders it into the card; the
    builder writes it to :data:`REPORT_NAME`).
    """
    from uaes_hf.data.repo import ConfigData, write_dataset_repo

    if not records:
        raise ValueError("no record has a poem; nothing to write")
    meta, body = render_card(
        Path(card_template) if card_template else None,
        {"license_table": license_table(records), "build_summary": summary_table(report)},
    )
    yaml_meta = {**BASE_CARD_YAML, **meta, **(card_yaml or {})}
    if "license" not in (card_yaml or {}) and "license" not in meta:
        yaml_meta["license"] = "other"
    out = Path(out_dir)
    write_dataset_repo(
        out,
        [
            ConfigData(
                CONFIG_NAME,
                [r.as_row() for r in records],
                image_poem_text_features(),
                default=True,
            )
        ],
        card_yaml=yaml_meta,
        card_body=body,
    )
    return out
