"""The prepare stage: load the poems, plain texts and image-text pairs; sample the sizes.

==========  ==================================================================================
inputs      the data named in the config (embedded, a local folder or a Hub repo)
cache key   the ``data`` section; sizes and mtimes of local data folders
outputs     ``RunLayout.prepared_poems``, ``plain_texts``, ``image_text`` and, when the
            config names a length-aligned set, ``aligned_poems`` (parquet, one row per record
            with its ``id``)
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
from uaes_hf.experiments.layout import ALIGNED_POEMS, RunLayout
from uaes_hf.experiments.pipeline import StageContext
from uaes_hf.images.records import sample_rows

KEYS: tuple[str, ...] = ("data",)
DEPENDS_ON: tuple[str, ...] = ()


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


def _poems_frame(cfg: ExperimentConfig, embedded: Any, revision: str | None = None) -> Any:
    """The poems (``revision``: another branch/config of the same repo, e.g. aligned_s)."""
    import pandas as pd

    from uaes_hf.data.repo import load_poems

    source = embedded().poems_repo if cfg.data.poems == "embedded" else cfg.data.poems
    revision = revision or cfg.data.poems_revision
    dataset = load_poems(
        source,
        revision=revision,
        config=None if revision else cfg.data.poems_config,
        split="train",
    )
    frame = dataset.to_pandas() if hasattr(dataset, "to_pandas") else pd.DataFrame(dataset)
    return frame


def _plain_frame(cfg: ExperimentConfig, embedded: Any) -> Any:
    import pandas as pd

    from uaes_hf.data import plain_texts as pt

    if cfg.data.plain_texts == "embedded":
        records = pt.load_plain_text_records(embedded().plain_texts_dir)
    elif Path(cfg.data.plain_texts).exists():
        records = pt.load_plain_text_records(cfg.data.plain_texts)
    else:
        # The study's plain texts: minhuh/prh at revision wit_1024 (first caption per row).
        records = pt.load_prh_captions(
            revision=cfg.data.plain_texts_revision or cfg.data.plain_texts_config or "wit_1024",
            repo_id=cfg.data.plain_texts,
        )
    return pd.DataFrame([vars(r) if hasattr(r, "__dict__") else dict(r) for r in records])


def _image_text_frame(cfg: ExperimentConfig, n_images: int, seed: int) -> Any:
    """Image-caption-poem records with an image aesthetic level (the set's own, or built).

    One builder for the stage and the dataset script: :func:`uaes_hf.images.image_text_rows`.
    """
    from uaes_hf.images.records import image_text_rows

    return image_text_rows(
        cfg.data.image_text, n_images=n_images, seed=seed, revision=cfg.data.image_text_revision
    )


def run_prepare(ctx: StageContext) -> dict[str, Any]:
    """Load the poems, plain texts and image-text pairs; sample the configured sizes."""
    from tqdm.auto import tqdm

    from uaes_hf.data.lengths import count_words

    cfg = ctx.config
    built: list[Any] = []

    def embedded() -> Any:
        """The packaged poems repo and plain texts, built once per run."""
        if not built:
            from uaes_hf.data.pipeline import prepare_embedded_data

            built.append(prepare_embedded_data(progress=ctx.show_progress))
        return built[0]

    bar = tqdm(total=3, desc="prepare", unit="dataset", disable=not ctx.show_progress)
    poems = _poems_frame(cfg, embedded)
    poems = poems.iloc[sample_rows(len(poems), cfg.data.n_poems, cfg.seed)].reset_index(drop=True)
    bar.update(1)
    plain = _plain_frame(cfg, embedded)
    if "n_words" not in plain:
        plain["n_words"] = [count_words(t) for t in plain["text"]]
    plain = plain.iloc[sample_rows(len(plain), cfg.data.n_plain_texts, cfg.seed + 1)]
    plain = plain.reset_index(drop=True)
    bar.update(1)
    images = _image_text_frame(cfg, cfg.data.n_images, cfg.seed + 2)
    bar.update(1)
    bar.close()
    layout = RunLayout.for_stage(ctx)
    poems.to_parquet(layout.prepared_poems, index=False)
    plain.to_parquet(layout.plain_texts, index=False)
    images.to_parquet(layout.image_text, index=False)
    summary = {"n_poems": len(poems), "n_plain_texts": len(plain), "n_images": len(images)}
    if cfg.data.aligned_poems:
        aligned = _poems_frame(cfg, embedded, revision=cfg.data.aligned_poems)
        if "n_words" not in aligned:
            aligned["n_words"] = [count_words(t) for t in aligned["text"]]
        keep = ["id", "text", "n_words", "aesthetic_score", "form_category"]
        aligned = aligned[[c for c in keep if c in aligned]].reset_index(drop=True)
        aligned.to_parquet(layout.aligned_poems, index=False)
        summary[f"n_{ALIGNED_POEMS}"] = len(aligned)
    return summary
