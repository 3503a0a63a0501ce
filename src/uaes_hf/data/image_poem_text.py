"""Build the image-poem-text dataset repo: images, captions, poems, image aesthetic scores.

One record per image (the data contract in ARCHITECTURE.md)::

    id, image, caption, poem, poem_source, image_aesthetic_score, image_aesthetic_level,
    scorer, license, source

written as parquet with a ``datasets.Image`` column (bytes embedded) under
``data/default/`` plus the card rendered from ``model_cards/image_poem_text.md``, through the
generic repo writer (:mod:`uaes_hf.data.repo`), so ``load_dataset(folder)`` works offline
and :func:`uaes_hf.data.repo.publish` pushes the same folder to the Hub.

This module does not import the annotators (``data`` must not depend on ``annotate``): the
caller passes a poem generator and an image scorer, any objects with these methods::

    generator.name; generator.generate(images, captions) -> [poem | None]
        (a poem has .text and .source, the record's poem_source)
    scorer.name; scorer.score(images) -> [float]; scorer.level(score) -> int
        optional: scorer.with_quantile_cuts(scores) -> scorer whose levels are the
        quintiles of this set (used when present)

``datasets_scripts/image_poem_text.py`` wires the real backends in.

Example:
    >>> from uaes_hf.annotate.image_scorers import ClassicalAestheticScorer  # doctest: +SKIP
    >>> from uaes_hf.annotate.image_to_poem import RetrievalPoemBaseline  # doctest: +SKIP
    >>> report = build_image_poem_text_repo("images/", "out_repo",  # doctest: +SKIP
    ...     poem_generator=RetrievalPoemBaseline(), scorer=ClassicalAestheticScorer())
    >>> from datasets import load_dataset  # doctest: +SKIP
    >>> load_dataset("out_repo", split="train")[0]["image"].size  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from uaes_hf.data.image_ingest import ImageCaptionItem, IngestResult, read_image_captions
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
        >>> image_poem_text_features()["image"]  # doctest: +SKIP
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
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


def make_records(
    items: Sequence[ImageCaptionItem],
    poems: Sequence[Any],
    scores: Sequence[float],
    scorer: Any,
    *,
    default_license: str,
    default_source: str,
) -> tuple[list[ImagePoemTextRecord], list[dict[str, str]]]:
    """Pure assembly of records; an item without a poem is dropped and reported.

    A missing score (NaN: the model never answered usably) leaves score and level null.
    """
    if not (len(items) == len(poems) == len(scores)):
        raise ValueError(
            f"lengths differ: {len(items)} items, {len(poems)} poems, {len(scores)} scores"
        )
    records, dropped = [], []
    for item, poem, score in zip(items, poems, scores, strict=True):
        if poem is None or not str(getattr(poem, "text", "")).strip():
            dropped.append({"file_name": item.file_name, "reason": "no poem"})
            continue
        ok = _finite(score)
        records.append(
            ImagePoemTextRecord(
                id=item.id,
                image={"bytes": item.image_bytes(), "path": Path(item.file_name).name},
                caption=item.caption,
                poem=poem.text,
                poem_source=poem.source,
                image_aesthetic_score=round(float(score), 4) if ok else None,
                image_aesthetic_level=int(scorer.level(float(score))) if ok else None,
                scorer=scorer.name,
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


def _summary_table(report: dict[str, Any]) -> str:
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


def build_image_poem_text_repo(
    source: str | Path | IngestResult,
    out_dir: str | Path,
    *,
    poem_generator: Any,
    scorer: Any,
    caption_column: str | None = None,
    default_license: str = "unknown (see the source dataset)",
    batch_size: int = 32,
    card_template: str | Path | None = None,
    card_yaml: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Ingest, score, write poems, and write the dataset repo; returns the build report.

    ``source`` is an imagefolder, a Hub dataset id, or an :class:`IngestResult`. Images are
    decoded one batch at a time (``batch_size``) so memory stays bounded. Scorers that
    define levels relative to the set (``with_quantile_cuts``) get their cut points from all
    scores first. The report is also written to ``OUT/build_report.json``.

    Example:
        >>> build_image_poem_text_repo("imgs", "repo", poem_generator=g, scorer=s)  # doctest: +SKIP
    """
    from uaes_hf.data.repo import ConfigData, write_dataset_repo

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    started = time.perf_counter()
    ingest = (
        source if isinstance(source, IngestResult) else read_image_captions(source, caption_column)
    )
    items = ingest.items
    if not items:
        raise ValueError(f"no usable images in {ingest.source}:\n{ingest.report()}")
    timings: dict[str, float] = {"ingest": round(time.perf_counter() - started, 3)}

    scores: list[float] = []
    poems: list[Any] = []
    t_score = t_poem = 0.0
    batches = range(0, len(items), batch_size)
    if progress and len(items) > batch_size:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="image-poem-text batches", unit="batch")
    for start in batches:
        batch = items[start : start + batch_size]
        images = [item.open_image() for item in batch]
        t0 = time.perf_counter()
        batch_scores = [float(s) for s in scorer.score(images)]
        t1 = time.perf_counter()
        batch_poems = list(poem_generator.generate(images, [item.caption for item in batch]))
        t2 = time.perf_counter()
        if len(batch_scores) != len(batch) or len(batch_poems) != len(batch):
            raise RuntimeError("a scorer or poem generator returned the wrong number of results")
        scores += batch_scores
        poems += batch_poems
        t_score += t1 - t0
        t_poem += t2 - t1
    timings["score"] = round(t_score, 3)
    timings["poems"] = round(t_poem, 3)

    level_mode = "fixed"
    fit = getattr(scorer, "with_quantile_cuts", None)
    finite = [s for s in scores if math.isfinite(s)]
    if callable(fit) and len(finite) >= 5:
        scorer = fit(finite)
        level_mode = "quantile"
    records, dropped = make_records(
        items, poems, scores, scorer, default_license=default_license, default_source=ingest.source
    )
    if not records:
        raise ValueError("no record has a poem; nothing to write")

    cuts = [float(c) for c in getattr(scorer, "level_cuts", ())]
    report: dict[str, Any] = {
        "source": ingest.source,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "ingest": {
            "read": len(items),
            "skipped": len(ingest.skipped),
            "skipped_detail": [asdict(s) for s in ingest.skipped],
        },
        "dropped": dropped,
        "records": len(records),
        "poem_generator": getattr(poem_generator, "name", type(poem_generator).__name__),
        "poem_sources": dict(Counter(r.poem_source.split(":")[0] for r in records)),
        "scorer": scorer.name,
        "level_mode": level_mode,
        "level_cuts": cuts,
        "levels": {
            str(k): v
            for k, v in sorted(
                Counter(r.image_aesthetic_level for r in records if r.image_aesthetic_level).items()
            )
        },
        "unscored": sum(r.image_aesthetic_score is None for r in records),
        "licenses": dict(Counter(r.license for r in records).most_common()),
        "timings_s": timings,
    }
    meta, body = render_card(
        Path(card_template) if card_template else None,
        {"license_table": license_table(records), "build_summary": "{{build_summary}}"},
    )
    t_write = time.perf_counter()
    timings["total"] = round(t_write - started, 3)
    body = body.replace("{{build_summary}}", _summary_table(report))
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
    timings["write"] = round(time.perf_counter() - t_write, 3)
    timings["total"] = round(time.perf_counter() - started, 3)
    (out / REPORT_NAME).write_text(
        json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8"
    )
    return report
