"""Extraction runs: models x dataset -> feature store, sharded across Accelerate processes.

Items are cut into fixed ranges (shards, ``--shard-size`` items). Process ``r`` of ``W``
computes shards ``r, r + W, ...`` that are not on disk yet and writes each one as soon as it
is done; after a barrier, rank 0 merges them. A rerun of the same command, with any number
of processes, skips every finished shard (and every merged entry).

Run it as ``python -m uaes_hf.extract``, ``uaes extract``, or under
``accelerate launch -m uaes_hf.extract`` (GPUs with NCCL; without CUDA the processes join on
the CPU with gloo). A launch whose processes cannot form one group stops before any work
(:func:`init_distributed`).

Example:
    >>> feats = extract_features(["a poem", "a text"], "smollm2-135m")  # doctest: +SKIP
    >>> feats.shape  # doctest: +SKIP
    (2, 31, 576)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from uaes_hf.extract.distributed import Distributed, init_distributed
from uaes_hf.extract.registry import KINDS, MODEL_SETS, ModelSpec, expand_models
from uaes_hf.extract.source import ItemColumn, dataset_key, read_dataset
from uaes_hf.features.fingerprint import dataset_fingerprint
from uaes_hf.features.store import (
    FEATURES_FILE,
    META_FILE,
    FeatureStore,
    StoredFeatures,
    StoreEntry,
    read_shard_info,
    shard_ranges,
)

DEFAULT_SHARD_SIZE = 1024


class Extractor(Protocol):
    """What a feature (or perplexity) extractor offers to the run loop."""

    pooling: str

    def __call__(self, items: Sequence[Any]) -> tuple[list[np.ndarray], dict[str, Any]]: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ExtractOptions:
    """Per-run settings shared by every model (None: each model's own default)."""

    pooling: str | None = None
    batch_size: int | None = None
    max_length: int | None = None
    dtype: str = "auto"
    storage_dtype: str = "float32"
    shard_size: int = DEFAULT_SHARD_SIZE
    device: str | None = None
    perplexity: bool = False
    pretrained: bool = True
    kind: str | None = None
    progress: bool = True


def build_extractor(spec: ModelSpec, options: ExtractOptions) -> Extractor:
    """Load the extractor for one model (the expensive step: weights are read here)."""
    if options.perplexity:
        from uaes_hf.extract.perplexity import PerplexityScorer

        if spec.modality != "text":
            raise ValueError(f"perplexity needs a causal LM; {spec.key} is a vision model")
        return PerplexityScorer(
            spec.key if spec.key in _registry_keys() else spec.source,
            batch_size=options.batch_size or 8,
            max_length=options.max_length or 1024,
            device=options.device,
            dtype=options.dtype,
            progress=options.progress,
        )
    name = spec.key if spec.key in _registry_keys() else spec.source
    if spec.modality == "text":
        from uaes_hf.extract.text import TextFeatureExtractor

        return TextFeatureExtractor(
            name,
            pooling=options.pooling or "mean",
            batch_size=options.batch_size or 8,
            max_length=options.max_length,
            device=options.device,
            dtype=options.dtype,
            kind=spec.kind,
            progress=options.progress,
        )
    from uaes_hf.extract.vision import VisionFeatureExtractor

    return VisionFeatureExtractor(
        name,
        pooling=options.pooling or "cls",
        batch_size=options.batch_size or 16,
        device=options.device,
        dtype=options.dtype,
        pretrained=options.pretrained,
        kind=spec.kind,
        progress=options.progress,
    )


def _registry_keys() -> set[str]:
    from uaes_hf.extract.registry import REGISTRY

    return set(REGISTRY)


def effective_pooling(spec: ModelSpec, options: ExtractOptions) -> str:
    """The pooling name the store uses for ``spec`` under ``options``."""
    if options.perplexity:
        return "perplexity"
    if spec.kind == "efficientnet_lite0":
        return "mean"  # a CNN has no CLS token
    return options.pooling or spec.default_pooling


def entry_options(
    spec: ModelSpec,
    options: ExtractOptions,
    *,
    device: str | None = None,
    column: str | None = None,
) -> dict[str, Any]:
    """Everything besides dataset, model and pooling that changes the stored numbers.

    These values key a store entry (see :mod:`uaes_hf.features.store`): a run with another
    max length, compute dtype or device kind, model kind, weights (pretrained or random,
    the package revision of packaged weights), storage dtype or column gets its own entry.
    ``device`` is the device the extractor will run on when ``options.device`` is unset.

    Example:
        >>> from uaes_hf.extract.registry import resolve_model
        >>> key = entry_options(resolve_model("gpt2"), ExtractOptions(max_length=8), device="cpu")
        >>> key["max_length"], key["compute_dtype"], key["device_kind"]
        (8, 'float32', 'cpu')
    """
    from uaes_hf.extract.text import packaged_revision, resolve_device, resolve_dtype

    resolved = resolve_device(options.device or device)
    compute = str(resolve_dtype(options.dtype, resolved)).replace("torch.", "")
    return {
        "model_id": spec.source,
        "model_kind": spec.kind,
        "column": column,
        "max_length": options.max_length,
        "compute_dtype": compute,
        "device_kind": resolved.split(":")[0],
        "pretrained": options.pretrained,
        "weights_revision": packaged_revision(spec) or spec.revision,
        "storage_dtype": options.storage_dtype,
        "perplexity": options.perplexity,
    }


def extract_layers(
    items: Sequence[Any], model: str, **options: Any
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Features of ``items`` under ``model`` as one (N, D_l) array per layer, plus run info.

    Keyword options are those of :class:`ExtractOptions`.
    """
    (spec,) = expand_models([model])
    extractor = build_extractor(spec, ExtractOptions(**options))
    layers, info = extractor(list(items))
    return layers, {**extractor.describe(), **info}


def extract_features(items: Sequence[Any], model: str, **options: Any) -> np.ndarray:
    """Features of texts or images under one model: an (N, L, D) float32 array.

    Args:
        items: texts (for text models) or images / image paths (for vision models).
        model: registry key, Hub id, timm name or local path.
        **options: ``pooling``, ``batch_size``, ``max_length``, ``dtype``, ``device``,
            ``pretrained`` (timm), ``kind`` (see :class:`ExtractOptions`).

    Example:
        >>> extract_features(["a poem"], "all-minilm-l6-v2").shape  # doctest: +SKIP
        (1, 7, 384)
    """
    layers, _ = extract_layers(items, model, **options)
    widths = {layer.shape[1] for layer in layers}
    if len(widths) != 1:
        raise ValueError(
            f"{model} has layers of different widths {sorted(widths)}; use extract_layers()"
        )
    return np.stack(layers, axis=1)


def extract_to_store(
    items: Sequence[Any] | ItemColumn,
    model: str | ModelSpec,
    store: FeatureStore | str | Path,
    *,
    dataset: str = "items",
    fingerprint: str | None = None,
    options: ExtractOptions | None = None,
    dist: Distributed | None = None,
    extractor: Extractor | None = None,
    dataset_info: dict[str, Any] | None = None,
    ids: Sequence[Any] | None = None,
) -> StoreEntry:
    """Extract features of ``items`` with one model into ``store``, resumably.

    Args:
        items: the items (list, or :class:`ItemColumn` over a dataset column).
        model: registry key / Hub id / path, or a resolved :class:`ModelSpec`.
        store: the feature store (or its root folder).
        dataset: the dataset's name in the store (e.g. ``path@config:split``).
        fingerprint: the dataset's fingerprint (default: computed from ``items``).
        options: pooling, batch size, dtypes, shard size...
        dist: rank/world/barrier (default: a single process).
        extractor: an already-built extractor (default: built lazily, only if work is left).
        dataset_info: extra dataset metadata recorded in ``meta.json``.
        ids: record ids of the items, in order, recorded in ``meta.json`` as ``"ids"`` so
            each feature row can be matched to its record (one per item); without them the
            rows are numbered ``"0".."N-1"`` and ``ids_are_positions`` is recorded.

    Returns:
        The store entry (complete once rank 0 has merged).
    """
    options = options or ExtractOptions()
    dist = dist or Distributed()
    store = store if isinstance(store, FeatureStore) else FeatureStore(store)
    column = items if isinstance(items, ItemColumn) else ItemColumn(items)
    if len(column) == 0:
        raise ValueError("no items to extract")
    spec = model if isinstance(model, ModelSpec) else expand_models([model])[0]
    if ids is not None:
        ids = [str(value) for value in ids]
        if len(ids) != len(column):
            raise ValueError(f"ids has {len(ids)} entries for {len(column)} items")
    if fingerprint is None:
        fingerprint = dataset_fingerprint(column.items)
    pooling = effective_pooling(spec, options)
    column_name = (dataset_info or {}).get("dataset_column", column.column)
    key = entry_options(spec, options, device=dist.device, column=column_name)
    entry = store.entry(dataset, fingerprint, spec.key, pooling, key)
    if entry.is_complete():
        problem = entry.damage()
        dist.barrier()  # every rank has looked before rank 0 removes anything
        if problem is None:
            _log(dist, f"{spec.key}: features already stored in {entry.path}; skipping")
            return entry
        _log(dist, f"warning: {entry.path} is damaged ({problem}); extracting it again")
        if dist.rank == 0:
            for name in (META_FILE, FEATURES_FILE):  # meta first: incomplete from now on
                (entry.path / name).unlink(missing_ok=True)
        dist.barrier()
    ranges = shard_ranges(len(column), options.shard_size)
    mine = [r for index, r in enumerate(ranges) if index % dist.world == dist.rank]
    todo = [r for r in mine if not entry.has_shard(*r)]
    print(
        f"uaes [rank {dist.rank}/{dist.world}] {spec.key}: computing {len(todo)} of "
        f"{len(mine)} shards ({len(mine) - len(todo)} already done)",
        file=sys.stderr,
    )
    description: dict[str, Any] | None = None
    for start, end in todo:
        if extractor is None:
            run_options = options
            if options.device is None and dist.device is not None:
                run_options = ExtractOptions(**{**options.__dict__, "device": dist.device})
            extractor = build_extractor(spec, run_options)
        layers, info = extractor(column.slice(start, end))
        description = extractor.describe()
        info = {**info, "model_description": description}
        entry.write_shard(start, end, layers, options.storage_dtype, info)
    dist.barrier()
    if dist.rank == 0 and not entry.is_complete():
        if description is None and entry.has_shard(*ranges[0]):
            # This rank computed nothing now; the model's description is in any shard.
            description = read_shard_info(entry.shard_path(*ranges[0])).get("model_description")
        meta = {
            **(dataset_info or {}),
            "model_id": spec.source,
            "model_kind": spec.kind,
            "storage_dtype": options.storage_dtype,
            "shard_size": options.shard_size,
            "world_size": dist.world,
            "package_version": _package_version(),
            **{k: v for k, v in (description or {}).items() if k not in ("model", "pooling")},
            **store.key_meta(dataset, fingerprint, spec.key, pooling, key),
        }
        if ids is not None:
            meta["ids"] = [str(value) for value in ids]
            meta["ids_are_positions"] = False
        meta = entry.merge(ranges, meta)
        totals = meta.get("totals", {})
        _report(spec.key, meta, totals)
    dist.barrier()
    return entry


def _report(key: str, meta: dict[str, Any], totals: dict[str, Any]) -> None:
    parts = [f"uaes: {key}: N={meta['n_items']} layers={meta['n_layers']} dim={meta['dim']}"]
    if "n_truncated" in totals:
        parts.append(
            f"truncated={int(totals['n_truncated'])} (max_length={meta.get('max_length')})"
        )
    if totals.get("n_positions"):
        parts.append(f"padding={1 - totals['n_tokens'] / totals['n_positions']:.1%}")
    if totals.get("seconds") and totals.get("n_tokens"):
        parts.append(f"{totals['n_tokens'] / totals['seconds']:.0f} tokens/s")
    print("  ".join(parts), file=sys.stderr)


def _log(dist: Distributed, message: str) -> None:
    if dist.rank == 0:
        print(f"uaes: {message}", file=sys.stderr)


def _package_version() -> str:
    from uaes_hf import __version__

    return __version__


def run_extraction(args: argparse.Namespace, dist: Distributed | None = None) -> list[StoreEntry]:
    """Run the command-line extraction described by parsed ``args`` (see add_arguments)."""
    dist = dist or init_distributed(use_accelerate=not args.no_accelerate, device=args.device)
    specs = expand_models(args.models)
    if args.kind:
        specs = [replace(spec, kind=args.kind) for spec in specs]
    data = read_dataset(args.dataset, args.config, args.split, args.revision, args.limit)
    fingerprint = dataset_fingerprint(data)
    key = dataset_key(args.dataset, args.config, args.split)
    options = ExtractOptions(
        pooling=args.pooling,
        batch_size=args.batch_size,
        max_length=args.max_length,
        dtype=args.dtype,
        storage_dtype=args.storage_dtype,
        shard_size=args.shard_size,
        device=args.device,
        perplexity=args.perplexity,
        pretrained=not args.random_weights,
        progress=not args.no_progress,
    )
    info = {
        "dataset_source": args.dataset,
        "dataset_config": args.config,
        "dataset_split": args.split,
        "dataset_revision": args.revision,
        "dataset_limit": args.limit,
    }
    _log(dist, f"{len(data)} items from {key} (fingerprint {fingerprint}); world size {dist.world}")
    # Record ids let users (and the Space) match feature rows to records.
    ids = list(data[args.id_column]) if args.id_column in data.column_names else None
    entries = []
    for spec in specs:
        column_name = args.column if spec.modality == "text" else args.image_column
        column = ItemColumn(data, column_name)
        entry = extract_to_store(
            column,
            spec,
            FeatureStore(args.out),
            dataset=key,
            fingerprint=fingerprint,
            options=options,
            dist=dist,
            dataset_info={**info, "dataset_column": column_name},
            ids=ids,
        )
        entries.append(entry)
        _log(dist, f"{spec.key}: {entry.path}")
    return entries


def load_features(
    dataset: str,
    model: str,
    out: str | Path,
    *,
    config: str | None = None,
    split: str = "train",
    pooling: str | None = None,
    revision: str | None = None,
    limit: int | None = None,
    options: dict[str, Any] | None = None,
    mmap: bool = False,
) -> StoredFeatures:
    """Load features for a dataset as it is *now*: re-reads it and checks its fingerprint.

    ``options`` picks among entries that differ in the options that change the numbers,
    e.g. ``{"max_length": 64}`` (see :func:`entry_options`).

    Raises:
        FingerprintMismatchError: the dataset changed since the features were extracted.
    """
    data = read_dataset(dataset, config, split, revision, limit)
    spec = expand_models([model])[0]
    return FeatureStore(out).load(
        dataset_key(dataset, config, split),
        spec.key,
        pooling,
        fingerprint=dataset_fingerprint(data),
        options=options,
        mmap=mmap,
    )


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the extraction options (shared by ``uaes extract`` and ``python -m uaes_hf.extract``)."""
    sets = ", ".join(f"{name} ({len(keys)})" for name, keys in MODEL_SETS.items())
    parser.add_argument(
        "--dataset",
        required=True,
        help="dataset repo folder (README.md + data/<config>/*.parquet), Hub dataset id, "
        "or a single .parquet/.jsonl/.csv file",
    )
    parser.add_argument("--config", default=None, help="dataset config, e.g. aligned_5")
    parser.add_argument("--split", default="train", help="dataset split (default: train)")
    parser.add_argument("--revision", default=None, help="Hub dataset revision (branch/tag)")
    parser.add_argument(
        "--column", default="text", help="text column for text models (default: text)"
    )
    parser.add_argument(
        "--id-column",
        default="id",
        help="record id column, stored in meta.json as `ids` when present (default: id); "
        "without it rows are numbered 0..N-1",
    )
    parser.add_argument(
        "--image-column", default="image", help="image column for vision models (default: image)"
    )
    parser.add_argument(
        "--models",
        required=True,
        help=f"comma-separated registry keys, Hub ids, timm names, local paths or sets: {sets}",
    )
    parser.add_argument("--out", required=True, help="feature store folder (created)")
    parser.add_argument(
        "--pooling",
        default=None,
        choices=["mean", "last", "cls"],
        help="token pooling: text mean (masked, default) or last; vision cls (default) or mean",
    )
    parser.add_argument("--batch-size", type=int, default=None, help="items per forward pass")
    parser.add_argument(
        "--max-length",
        type=int,
        default=None,
        help="max tokens per text; longer texts are truncated and counted (default 512, "
        "sentence-transformers: their own limit; perplexity: 1024)",
    )
    parser.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16", "float16"],
        help="compute dtype (auto: bfloat16 on GPU, float32 on CPU)",
    )
    parser.add_argument(
        "--storage-dtype",
        default="float32",
        choices=["float32", "float16"],
        help="dtype of stored features (float16 halves disk use)",
    )
    parser.add_argument(
        "--shard-size",
        type=int,
        default=DEFAULT_SHARD_SIZE,
        help="items per durable shard; finished shards are never recomputed",
    )
    parser.add_argument("--limit", type=int, default=None, help="use only the first N items")
    parser.add_argument("--device", default=None, help="device override (default: automatic)")
    parser.add_argument("--kind", default=None, choices=KINDS, help="force the model kind")
    parser.add_argument(
        "--perplexity",
        action="store_true",
        help="store per-text perplexity and bits-per-byte (causal LMs) instead of features",
    )
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help="timm models with random weights (mechanics tests only; never for results)",
    )
    parser.add_argument(
        "--no-accelerate",
        action="store_true",
        help="run as a single process without initialising Accelerate",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def validate_args(args: argparse.Namespace) -> None:
    """Boundary checks with messages that name the problem."""
    for name in ("batch_size", "max_length", "shard_size", "limit"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m uaes_hf.extract`` (also under ``accelerate launch``)."""
    parser = add_arguments(
        argparse.ArgumentParser(
            prog="python -m uaes_hf.extract",
            description="Extract all-layer features of texts/images into a feature store; "
            "run under `accelerate launch` to split the dataset across processes.",
        )
    )
    args = parser.parse_args(argv)
    return run_from_args(args)


def run_from_args(args: argparse.Namespace) -> int:
    """Validate and run; user errors become a one-line message and exit code 2."""
    try:
        validate_args(args)
        run_extraction(args)
    except (ValueError, FileNotFoundError, ModuleNotFoundError) as err:
        print(f"uaes extract: error: {err}", file=sys.stderr)
        return 2
    return 0
