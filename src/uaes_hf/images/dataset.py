"""Build the image-poem-text dataset repo: images, captions, poems, image aesthetic scores.

:func:`build_image_poem_text_repo` reads an image-caption set, makes its rows with
:func:`uaes_hf.images.records.image_text_rows` (the one place image-poem-text rows are
built: poems from ``poem_generator``, scores and levels from ``scorer``), turns them into
published records (license and source per image; an image without a poem is dropped and
reported) and writes the repo with :mod:`uaes_hf.data.image_poem_text` (parquet with an
``Image`` column, the card, ``build_report.json``). ``datasets_scripts/image_poem_text.py``
wires in the real backends.

Example:
    >>> build_image_poem_text_repo("imgs", "repo", poem_generator=None, scorer=None, batch_size=0)
    Traceback (most recent call last):
    ...
    ValueError: batch_size must be >= 1, got 0
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any


def build_image_poem_text_repo(
    source: Any,
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

    ``source`` is an imagefolder, a Hub dataset id, or an
    :class:`~uaes_hf.data.image_ingest.IngestResult`. Every image is used (no sampling), and
    the given backends are used even when the set has poems already. Images are decoded one
    batch at a time (``batch_size``). The report is also written to
    ``OUT/build_report.json``.
    """
    from uaes_hf.data.image_ingest import IngestResult, read_image_captions
    from uaes_hf.data.image_poem_text import (
        REPORT_NAME,
        records_from_rows,
        write_image_poem_text_repo,
    )
    from uaes_hf.images.records import ImageTextBuild, image_text_rows

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    started = time.perf_counter()
    ingest = (
        source if isinstance(source, IngestResult) else read_image_captions(source, caption_column)
    )
    if not ingest.items:
        raise ValueError(f"no usable images in {ingest.source}:\n{ingest.report()}")
    build = ImageTextBuild()
    rows = image_text_rows(
        ingest,
        n_images=None,
        scorer=scorer,
        poem_backend=poem_generator,
        batch_size=batch_size,
        use_existing=False,
        progress=progress,
        details=build,
    )
    records, dropped = records_from_rows(
        rows.to_dict("records"),
        build.items,
        default_license=default_license,
        default_source=ingest.source,
    )
    if not records:
        raise ValueError("no record has a poem; nothing to write")
    timings = {"ingest": round(time.perf_counter() - started, 3), **build.timings_s}
    levels = Counter(r.image_aesthetic_level for r in records if r.image_aesthetic_level)
    report: dict[str, Any] = {
        "source": ingest.source,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "ingest": {
            "read": len(ingest.items),
            "skipped": len(ingest.skipped),
            "skipped_detail": [asdict(s) for s in ingest.skipped],
        },
        "dropped": dropped,
        "records": len(records),
        "poem_generator": build.poem_backend,
        "poem_sources": dict(Counter(r.poem_source.split(":")[0] for r in records)),
        "scorer": build.scorer.name,
        "level_mode": build.level_mode,
        "level_cuts": [float(c) for c in build.level_cuts if math.isfinite(float(c))],
        "levels": {str(k): v for k, v in sorted(levels.items())},
        "unscored": sum(r.image_aesthetic_score is None for r in records),
        "licenses": dict(Counter(r.license for r in records).most_common()),
        "timings_s": timings,
    }
    timings["total"] = round(time.perf_counter() - started, 3)
    t_write = time.perf_counter()
    write_image_poem_text_repo(
        out_dir, records, report, card_template=card_template, card_yaml=card_yaml
    )
    timings["write"] = round(time.perf_counter() - t_write, 3)
    timings["total"] = round(time.perf_counter() - started, 3)
    (Path(out_dir) / REPORT_NAME).write_text(
        json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8"
    )
    return report
