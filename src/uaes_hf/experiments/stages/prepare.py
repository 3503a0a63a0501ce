"""The prepare stage: load the poems, plain texts and image-text pairs; sample the sizes.

==========  ==================================================================================
inputs      the data named in the config (embedded, a local folder or a Hub repo)
cache key   the ``data`` section; sizes and mtimes of local data folders
outputs     ``RunLayout.prepared_poems``, ``plain_texts``, ``image_text`` and, when the
            config names a length-aligned set, ``aligned_poems`` (parquet, one row per record
            with its ``id``); the summary's ``substitutions`` (columns the importers mapped,
            rows they skipped, image poems or levels built here)
loading     poems, plain texts and image-text pairs go through the study importers
            (:mod:`uaes_hf.data.study_import`, column maps ``data.*_columns``); a dataset
            in the suite's format passes through them unchanged
==========  ==================================================================================

Example:
    >>> KEYS, DEPENDS_ON
    (('data',), ())
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from uaes_hf.experiments.config import ExperimentConfig
from uaes_hf.experiments.fallbacks import record
from uaes_hf.experiments.layout import ALIGNED_POEMS, RunLayout
from uaes_hf.experiments.pipeline import StageContext
from uaes_hf.images.records import sample_rows

KEYS: tuple[str, ...] = ("data",)
DEPENDS_ON: tuple[str, ...] = ()
IMAGEFOLDER_METADATA = ("metadata.csv", "metadata.jsonl")


def local_fingerprint(cfg: ExperimentConfig) -> str:
    """Sizes and mtimes of local data folders named in the config (Hub ids: their name)."""
    parts = []
    for source in (cfg.data.poems, cfg.data.plain_texts, cfg.data.image_text):
        path = Path(source)
        if source != "embedded" and path.exists():
            for f in sorted(p for p in path.rglob("*") if p.is_file()):
                stat = f.stat()
                parts.append(f"{f}:{stat.st_size}:{int(stat.st_mtime)}")
    # hashlib, not hash(): str hashes are salted per process, which would defeat the cache
    return hashlib.sha256("\n".join(parts).encode()).hexdigest() if parts else ""


def _columns(mapping: dict[str, Any]) -> dict[str, Any] | None:
    """A config column map for the importers (empty: their defaults)."""
    return dict(mapping) if mapping else None


def _import_notes(frame: Any, what: str, found: list[dict[str, str]]) -> None:
    """The importer's column map and notes (rows skipped, scores nulled) as substitutions."""
    info = getattr(frame, "attrs", {}).get("uaes_import") or {}
    if info.get("format") != "imported":
        return
    columns = {k: v for k, v in (info.get("columns") or {}).items() if v is not None}
    mapped = ", ".join(f"{field} <- {column}" for field, column in columns.items())
    record(
        found,
        "prepare",
        f"{what} columns",
        f"{info.get('source')}: read as {mapped}",
        log_line=False,
    )
    for note in info.get("notes", []):
        record(found, "prepare", what, f"{info.get('source')}: {note}")


def _poems_frame(
    cfg: ExperimentConfig,
    embedded: Any,
    found: list[dict[str, str]],
    revision: str | None = None,
) -> Any:
    """The poems (``revision``: another branch/config of the same repo, e.g. aligned_s).

    A repo in the suite's format passes through; any other (the study's
    ``SHENJJ1017/poem_aesthetic_eval``) is imported with ``data.poems_columns``.
    """
    from uaes_hf.data.study_import import load_poems_frame

    source = embedded().poems_repo if cfg.data.poems == "embedded" else cfg.data.poems
    revision = revision or cfg.data.poems_revision
    frame = load_poems_frame(
        source,
        revision,
        config=None if revision else cfg.data.poems_config,
        split="train",
        columns=_columns(cfg.data.poems_columns),
    )
    _import_notes(frame, "poems" if revision != cfg.data.aligned_poems else "aligned poems", found)
    return frame


def _plain_frame(cfg: ExperimentConfig, embedded: Any, found: list[dict[str, str]]) -> Any:
    """The plain texts: the embedded glosses, a folder or Hub repo in the suite's format,
    or the study's ``minhuh/prh`` (its first caption per row), through the importer."""
    from uaes_hf.data.study_import import PRH_REPO, PRH_REVISION, load_plain_texts_frame

    source = (
        embedded().plain_texts_dir if cfg.data.plain_texts == "embedded" else cfg.data.plain_texts
    )
    revision = cfg.data.plain_texts_revision
    if revision is None and str(source) == PRH_REPO:
        revision = PRH_REVISION
    frame = load_plain_texts_frame(
        source,
        revision,
        config=cfg.data.plain_texts_config,
        columns=_columns(cfg.data.plain_texts_columns),
    )
    _import_notes(frame, "plain texts", found)
    return frame


def _is_imagefolder(source: str) -> bool:
    path = Path(source)
    return path.is_dir() and any((path / name).is_file() for name in IMAGEFOLDER_METADATA)


def _image_text_frame(
    cfg: ExperimentConfig, n_images: int, seed: int, found: list[dict[str, str]]
) -> Any:
    """Image-caption-poem records with an image aesthetic level.

    A Hub id or parquet repo (the study's ``SHENJJ1017/Image-Text``) is imported with
    ``data.image_text_columns``; a set without poems or levels (and the embedded photos,
    an imagefolder) goes to :func:`uaes_hf.images.image_text_rows`, which writes the poems
    (retrieval baseline) and scores the images (classical heuristic), recorded as
    substitutions.
    """
    from uaes_hf.images.records import ImageTextBuild, image_text_rows

    source = cfg.data.image_text
    if n_images and source != "embedded" and not _is_imagefolder(source):
        from uaes_hf.data.study_import import load_image_text_frame

        try:
            frame = load_image_text_frame(
                source, cfg.data.image_text_revision, columns=_columns(cfg.data.image_text_columns)
            )
        except ValueError as err:  # no poem or level column: build them instead
            record(found, "prepare", "image-text import", f"{source}: {err}; built instead")
        else:
            _import_notes(frame, "image-text pairs", found)
            rows = sample_rows(len(frame), n_images, seed)
            return frame.iloc[rows].reset_index(drop=True)
    build = ImageTextBuild()
    frame = image_text_rows(
        source, n_images=n_images, seed=seed, revision=cfg.data.image_text_revision, details=build
    )
    if n_images and build.level_mode != "existing":
        record(
            found,
            "prepare",
            "image poems and levels",
            f"{'the embedded photos' if source == 'embedded' else build.source or source} have "
            f"no poem and aesthetic level per image: poems "
            f"written by {build.poem_backend or 'the retrieval baseline'}, levels from "
            f"{getattr(build.scorer, 'name', 'the classical heuristic')} ({build.level_mode} "
            f"cut points)",
        )
    return frame


def run_prepare(ctx: StageContext) -> dict[str, Any]:
    """Load the poems, plain texts and image-text pairs; sample the configured sizes."""
    from tqdm.auto import tqdm

    from uaes_hf.data.lengths import count_words

    cfg = ctx.config
    built: list[Any] = []
    found: list[dict[str, str]] = []

    def embedded() -> Any:
        """The packaged poems repo and plain texts, built once per run."""
        if not built:
            from uaes_hf.data.pipeline import prepare_embedded_data

            built.append(prepare_embedded_data(progress=ctx.show_progress))
        return built[0]

    bar = tqdm(total=3, desc="prepare", unit="dataset", disable=not ctx.show_progress)
    poems = _poems_frame(cfg, embedded, found)
    poems = poems.iloc[sample_rows(len(poems), cfg.data.n_poems, cfg.seed)].reset_index(drop=True)
    bar.update(1)
    plain = _plain_frame(cfg, embedded, found)
    if "n_words" not in plain:
        plain["n_words"] = [count_words(t) for t in plain["text"]]
    plain = plain.iloc[sample_rows(len(plain), cfg.data.n_plain_texts, cfg.seed + 1)]
    plain = plain.reset_index(drop=True)
    bar.update(1)
    images = _image_text_frame(cfg, cfg.data.n_images, cfg.seed + 2, found)
    bar.update(1)
    bar.close()
    layout = RunLayout.for_stage(ctx)
    poems.to_parquet(layout.prepared_poems, index=False)
    plain.to_parquet(layout.plain_texts, index=False)
    images.to_parquet(layout.image_text, index=False)
    summary: dict[str, Any] = {
        "n_poems": len(poems),
        "n_plain_texts": len(plain),
        "n_images": len(images),
    }
    if cfg.data.aligned_poems:
        aligned = _poems_frame(cfg, embedded, found, revision=cfg.data.aligned_poems)
        if "n_words" not in aligned:
            aligned["n_words"] = [count_words(t) for t in aligned["text"]]
        keep = ["id", "text", "n_words", "aesthetic_score", "form_category"]
        aligned = aligned[[c for c in keep if c in aligned]].reset_index(drop=True)
        aligned.to_parquet(layout.aligned_poems, index=False)
        summary[f"n_{ALIGNED_POEMS}"] = len(aligned)
    summary["substitutions"] = found
    return summary
