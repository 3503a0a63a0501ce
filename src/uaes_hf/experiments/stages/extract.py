"""The extract stage: all-layer pooled features of every model on every dataset, and perplexity.

==========  ==================================================================================
inputs      prepare: ``RunLayout.prepared_poems``, ``plain_texts``, ``image_text``,
            ``aligned_poems``
cache key   every ``extract.*`` key but ``num_processes`` (how many processes compute the
            features does not change them), ``analyse.cluster_model``; :data:`REVISION`;
            the code of this module and all it imports; :func:`environment_fingerprint`
            (device kind, compute dtype, feature libraries' versions)
outputs     ``RunLayout.feature_store``: a feature store with one entry per (dataset, model):
            ``poems``, ``plain_texts``, ``poems_aligned`` (column ``text``) and
            ``image_text`` (columns ``caption`` and ``poem`` for text models, ``image`` for
            vision models), each with the row ids of its table;
            ``RunLayout.perplexity`` (one row per poem and plain text, with its ``id``)
==========  ==================================================================================

Every model's result is also kept as a checkpoint: an entry of the content-addressed feature
store ``$UAES_HOME/runs/model_features`` (:func:`model_checkpoint`), so an interrupted
extraction resumes at the next model and adding a model computes only that model. A
checkpoint's key holds the extraction code and library versions (:func:`checkpoint_code`),
and ``--force extract`` recomputes (and replaces) every checkpoint the stage uses.

Example:
    >>> DEPENDS_ON, "extract.num_processes" in KEYS
    (('prepare',), False)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from uaes_hf.experiments.config import ExperimentConfig, ExtractConfig
from uaes_hf.experiments.layout import (
    ALIGNED_POEMS,
    IMAGE_TEXT,
    TEXT_DATASETS,
    RunLayout,
    checkpoint_store_dir,
)
from uaes_hf.experiments.pipeline import StageContext
from uaes_hf.experiments.stages.common import log
from uaes_hf.features.atomic import file_lock
from uaes_hf.features.fingerprint import table_fingerprint
from uaes_hf.features.store import FeatureStore, StoreEntry, open_entry

KEYS: tuple[str, ...] = (
    *(f"extract.{f.name}" for f in dataclasses.fields(ExtractConfig) if f.name != "num_processes"),
    "analyse.cluster_model",
)
DEPENDS_ON: tuple[str, ...] = ("prepare",)
# The format of this stage's outputs: part of its cache key, so a folder written in an
# older format (``features/<dataset>__<model>.npz``) is never reused.
REVISION = "feature-store-entries"


def compute_target(device: str) -> dict[str, str]:
    """The device kind and compute dtype the extractors will use for ``extract.device``.

    Example:
        >>> compute_target("cpu")
        {'device_kind': 'cpu', 'compute_dtype': 'float32'}
    """
    from uaes_hf.extract.text import resolve_device, resolve_dtype

    resolved = resolve_device(None if device == "auto" else device)
    dtype = str(resolve_dtype("auto", resolved)).replace("torch.", "")
    return {"device_kind": resolved.split(":")[0], "compute_dtype": dtype}


def environment_fingerprint(config: ExperimentConfig) -> str:
    """What besides config and code changes this stage's numbers: the device kind and
    compute dtype ``extract.device`` resolves to here, and the versions of the libraries
    that compute features (part of the stage's key).

    Example:
        >>> from uaes_hf.experiments.config import load_config
        >>> len(environment_fingerprint(load_config(overrides={"extract": {"device": "cpu"}})))
        64
    """
    from uaes_hf.experiments.code_fingerprint import library_versions

    payload = {"target": compute_target(config.extract.device), "libraries": library_versions()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def checkpoint_code() -> str:
    """The code behind a checkpoint: :func:`~uaes_hf.experiments.code_fingerprint.
    extraction_code_fingerprint` (``uaes_hf.extract``, ``uaes_hf.features``, what they
    import, the feature libraries' versions) and this module's own source, which calls them.
    """
    from uaes_hf.experiments.code_fingerprint import extraction_code_fingerprint

    digest = hashlib.sha256(extraction_code_fingerprint().encode())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()


def _weights_revision(model: str) -> str | None:
    """The pip package==version of a packaged model's weights (or the registry revision)."""
    from uaes_hf.extract.registry import resolve_model
    from uaes_hf.extract.text import packaged_revision

    try:
        spec = resolve_model(model)
    except ValueError:
        return None
    return packaged_revision(spec) or spec.revision


def model_checkpoint(
    kind: str,
    model: str,
    settings: dict[str, Any],
    items: Sequence[Any],
    target: dict[str, str] | None = None,
) -> StoreEntry:
    """The checkpoint entry of one model's features on exactly these items.

    An entry of the content-addressed feature store ``$UAES_HOME/runs/model_features``: its
    fingerprint hashes the items, its options the settings, the device kind and compute
    dtype (``target``, default: this machine's for ``extract.device: auto``), the package
    version, the weights' revision and :func:`checkpoint_code`, so edited extraction code or
    another library version never reuses a checkpoint.

    Example:
        >>> entry = model_checkpoint("text", "m", {"pooling": "mean"}, ["a poem"],
        ...                          {"device_kind": "cpu", "compute_dtype": "float32"})
        >>> entry.path.parts[-5], entry.path.parts[-3], entry.key["options"]["kind"]
        ('stage-text', 'm', 'text')
        >>> entry.key["options"]["code"] == checkpoint_code()
        True
    """
    from uaes_hf import __version__

    digest = hashlib.sha256()
    for item in items:
        data = item if isinstance(item, bytes) else str(item).encode()
        digest.update(hashlib.sha256(data).digest())
    options = {
        **settings,
        **(target or compute_target("auto")),
        "kind": kind,
        "version": __version__,
        "weights_revision": _weights_revision(model),
        "code": checkpoint_code(),
    }
    pooling = str(settings.get("pooling", kind))
    store = FeatureStore(checkpoint_store_dir())
    return store.entry(f"stage-{kind}", digest.hexdigest()[:24], model, pooling, options)


def checkpointed_layers(
    entry: StoreEntry,
    compute: Callable[[], tuple[list[np.ndarray], dict[str, Any]]],
    *,
    force: bool = False,
) -> tuple[list[np.ndarray], dict[str, Any], bool]:
    """Layers and run info from the checkpoint ``entry`` if it is complete and whole, else
    computed and stored (``force``: always computed, the checkpoint replaced).

    ``compute()`` returns the layers and the run info worth keeping with them (e.g.
    ``truncated_rows``), which is stored in the checkpoint's ``meta.json`` under ``info``.

    Runs under the entry's lock, so two runs never compute one checkpoint at once (the
    second reuses the first's). A damaged checkpoint (size or sha256 not as written, an
    unreadable file) is computed again, with a warning. Returns ``(float32 layers, info,
    whether the checkpoint was reused)``.
    """
    with file_lock(entry.path):
        if entry.is_complete() and not force:
            problem = entry.damage()
            if problem is None:
                try:
                    stored = open_entry(entry.path)
                    layers = [stored.layer(i) for i in range(stored.n_layers)]
                    info = dict(stored.meta.get("info") or {})
                    return [np.asarray(layer, np.float32) for layer in layers], info, True
                except (OSError, ValueError, KeyError) as err:
                    problem = str(err)
            log(f"warning: checkpoint {entry.path} is damaged ({problem}); computing it again")
        computed, info = compute()
        layers = [np.asarray(layer, np.float32) for layer in computed]
        # a whole folder, moved into place: complete means whole
        entry.write(layers, {"info": info})
        return layers, info, False


def run_extract(ctx: StageContext) -> dict[str, Any]:
    """All-layer pooled features of every model on every dataset, and perplexity.

    Each model's result is checkpointed (:func:`model_checkpoint`) the moment it is done.
    With ``extract.num_processes`` > 1 the text models run under ``accelerate launch``
    (:func:`uaes_hf.extract.launch.extract_text_group_accelerate`); vision models and
    perplexity stay in this process.
    """
    import pandas as pd

    from uaes_hf.extract.launch import extract_text_group_accelerate
    from uaes_hf.extract.text import TextFeatureExtractor

    cfg = ctx.config
    ex = cfg.extract
    layout = RunLayout.for_stage(ctx)
    poems = pd.read_parquet(layout.prepared_poems)
    plain = pd.read_parquet(layout.plain_texts)
    images = pd.read_parquet(layout.image_text)
    store = FeatureStore(layout.feature_store)
    layout.feature_store.mkdir()
    device = None if ex.device == "auto" else ex.device
    target = compute_target(ex.device)
    # (dataset, column) -> texts; each dataset's ids and fingerprint
    texts = {
        ("poems", "text"): list(poems["text"]),
        ("plain_texts", "text"): list(plain["text"]),
    }
    ids = {"poems": [str(i) for i in poems["id"]], "plain_texts": [str(i) for i in plain["id"]]}
    if len(images):
        texts[(IMAGE_TEXT, "caption")] = list(images["caption"])
        texts[(IMAGE_TEXT, "poem")] = list(images["poem"])
        ids[IMAGE_TEXT] = [str(i) for i in images["id"]]
    aligned = pd.read_parquet(layout.aligned_poems) if layout.aligned_poems.is_file() else None
    if aligned is not None and len(aligned):
        ids[ALIGNED_POEMS] = [str(i) for i in aligned["id"]]
    fingerprints = {
        "poems": table_fingerprint({"text": texts[("poems", "text")]}, ids["poems"]),
        "plain_texts": table_fingerprint(
            {"text": texts[("plain_texts", "text")]}, ids["plain_texts"]
        ),
    }
    blobs = [bytes(b) for b in images["image"]] if len(images) else []
    if len(images):
        fingerprints[IMAGE_TEXT] = table_fingerprint(
            {
                "caption": texts[(IMAGE_TEXT, "caption")],
                "poem": texts[(IMAGE_TEXT, "poem")],
                "image": blobs,
            },
            ids[IMAGE_TEXT],
        )
    aligned_texts = list(aligned["text"]) if ALIGNED_POEMS in ids else []
    if aligned_texts:
        fingerprints[ALIGNED_POEMS] = table_fingerprint({"text": aligned_texts}, ids[ALIGNED_POEMS])
    text_models = list(ex.text_models)
    cluster_model = cfg.analyse.cluster_model
    timings: dict[str, float] = {}
    reused: list[str] = []
    settings = {"pooling": ex.pooling, "max_tokens": ex.max_tokens}

    def entry_options(column: str, kind: str) -> dict[str, Any]:
        return {"column": column, **settings, **target, "kind": kind}

    for model in [*text_models, *([cluster_model] if cluster_model not in text_models else [])]:
        started = time.perf_counter()
        wanted = (
            texts
            if model in text_models
            else {(d, "text"): texts[(d, "text")] for d in TEXT_DATASETS}
        )
        # The length-aligned poems are their own group (own checkpoint), so adding them never
        # invalidates the features of the other datasets.
        groups = [wanted, *([{(ALIGNED_POEMS, "text"): aligned_texts}] if aligned_texts else [])]
        built: list[Any] = []

        def embed_texts(items: list[str], model: str = model, built: list[Any] = built) -> Any:
            if ex.num_processes > 1:
                # A work folder next to the checkpoint: a failed launch leaves its finished
                # shards there, and the rerun of this model resumes from them.
                work = model_checkpoint("text", model, settings, items, target).path
                return extract_text_group_accelerate(
                    model,
                    items,
                    work.parent / f".{work.name}.accelerate",
                    num_processes=ex.num_processes,
                    pooling=ex.pooling,
                    batch_size=ex.batch_size,
                    max_tokens=ex.max_tokens,
                    device=ex.device,
                    show_progress=ctx.show_progress,
                    fresh=ctx.force,
                )
            if not built:
                built.append(
                    TextFeatureExtractor(
                        model,
                        pooling=ex.pooling,
                        batch_size=ex.batch_size,
                        max_length=ex.max_tokens,
                        device=device,
                        progress=ctx.show_progress,
                    )
                )
            layers, info = built[0](items)
            return layers, {"truncated_rows": info["truncated_rows"]}

        hits = []
        for group in groups:
            everything = [t for values in group.values() for t in values]
            entry = model_checkpoint("text", model, settings, everything, target)
            layers, info, hit = checkpointed_layers(
                entry, lambda e=everything: embed_texts(e), force=ctx.force
            )
            hits.append(hit)
            # Texts cut at the token cap, per written entry (the report's truncation table);
            # unknown for a checkpoint written before they were recorded.
            truncated = info.get("truncated_rows")
            start = 0
            for (dataset, column), values in group.items():
                end = start + len(values)
                counted = (
                    {"n_truncated": sum(start <= i < end for i in truncated)}
                    if truncated is not None
                    else {}
                )
                store.write(
                    dataset=dataset,
                    fingerprint=fingerprints[dataset],
                    model=model,
                    pooling=ex.pooling,
                    layers=[layer[start:end] for layer in layers],
                    ids=ids[dataset],
                    options=entry_options(column, "text"),
                    meta=counted,
                )
                start = end
        built.clear()
        timings[model] = time.perf_counter() - started
        reused += [model] if all(hits) else []
    if len(images):
        reused += _extract_images(
            ctx, store, blobs, ids[IMAGE_TEXT], fingerprints[IMAGE_TEXT], target, timings
        )
    if ex.perplexity_model:
        started = time.perf_counter()
        table, hit = _perplexity(ctx, texts, ids, target)
        reused += [f"perplexity:{ex.perplexity_model}"] if hit else []
        table.to_parquet(layout.perplexity, index=False)
        timings[f"perplexity:{ex.perplexity_model}"] = time.perf_counter() - started
    # Timings go to the manifest (the summary), not into the hashed outputs.
    if reused:
        log(f"extract: reused finished features of {', '.join(reused)}")
    return {
        "seconds_per_model": {k: round(v, 1) for k, v in timings.items()},
        "reused_checkpoints": reused,
    }


def _extract_images(
    ctx: StageContext,
    store: FeatureStore,
    blobs: list[bytes],
    ids: list[str],
    fingerprint: str,
    target: dict[str, str],
    timings: dict[str, float],
) -> list[str]:
    """Every vision model's features of the images (column ``image`` of ``image_text``)."""
    from uaes_hf.extract.vision import VisionFeatureExtractor, load_image

    ex = ctx.config.extract
    device = None if ex.device == "auto" else ex.device
    reused = []
    for model in ex.vision_models:
        started = time.perf_counter()

        def embed_images(model: str = model) -> Any:
            pil = [load_image({"bytes": b}) for b in blobs]
            extractor = VisionFeatureExtractor(
                model,
                pooling=ex.vision_pooling,
                batch_size=ex.batch_size * 2,
                device=device,
                progress=ctx.show_progress,
            )
            return extractor(pil)[0], {}

        settings = {"pooling": ex.vision_pooling}
        entry = model_checkpoint("vision", model, settings, blobs, target)
        layers, _, hit = checkpointed_layers(entry, embed_images, force=ctx.force)
        options = {"column": "image", **settings, **target, "kind": "vision"}
        store.write(
            dataset=IMAGE_TEXT,
            fingerprint=fingerprint,
            model=model,
            pooling=ex.vision_pooling,
            layers=layers,
            ids=ids,
            options=options,
        )
        timings[model] = time.perf_counter() - started
        reused += [model] if hit else []
    return reused


def _perplexity(
    ctx: StageContext,
    texts: dict[tuple[str, str], list[str]],
    ids: dict[str, list[str]],
    target: dict[str, str],
) -> tuple[Any, bool]:
    """The perplexity table of the poems and plain texts (checkpointed as an entry whose
    four one-wide layers are the scorer's float32 columns)."""
    import pandas as pd

    from uaes_hf.extract.perplexity import PerplexityScorer, perplexity_table

    ex = ctx.config.extract
    device = None if ex.device == "auto" else ex.device
    items = [f"{d}\0{t}" for d in TEXT_DATASETS for t in texts[(d, "text")]]
    max_length = max(ex.max_tokens, 16)
    entry = model_checkpoint(
        "perplexity", ex.perplexity_model, {"max_tokens": max_length}, items, target
    )

    def score() -> tuple[list[np.ndarray], dict[str, Any]]:
        scorer = PerplexityScorer(
            ex.perplexity_model,
            batch_size=ex.batch_size,
            max_length=max_length,
            device=device,
            progress=ctx.show_progress,
        )
        parts = [scorer(texts[(dataset, "text")])[0] for dataset in TEXT_DATASETS]
        return [np.concatenate(columns) for columns in zip(*parts, strict=True)], {}

    columns, _, hit = checkpointed_layers(entry, score, force=ctx.force)
    frames, start = [], 0
    for dataset in TEXT_DATASETS:
        n = len(texts[(dataset, "text")])
        part = perplexity_table([column[start : start + n] for column in columns])
        part.insert(0, "dataset", dataset)
        part.insert(1, "row", np.arange(len(part)))
        part.insert(2, "id", ids[dataset])
        frames.append(part)
        start += n
    return pd.concat(frames, ignore_index=True), hit
