"""The feature store: one folder per (dataset version, model, pooling, options) on disk.

Layout under the store root::

    <dataset-slug>/<fingerprint>/<model-slug>/<pooling>/<options-hash>/
        features.safetensors   N x L x D (all layers), float32 or float16
        meta.json              ids of the rows, dataset and fingerprint, model, pooling,
                               the options that change the numbers, shapes
        shards/                while extracting: one file per fixed range of items

The *options* are everything besides dataset, model and pooling that changes the numbers
(max length, compute dtype and device kind, model kind, pretrained or random weights, the
package revision of packaged weights, storage dtype, the embedded column ...). Their hash is
a folder of the path and is written into every shard, and a merge refuses a shard written
under other options: changed options always give a new entry.

Shards are written by whichever process computed them (temp file + ``os.replace``), and a
shard that exists is never recomputed. Rank 0 merges them in a streaming pass (bounded
memory) into ``features.safetensors``; ``meta.json`` is written last, so its presence
means the entry is complete. An entry written from memory (:meth:`StoreEntry.write`) is
built in a unique temp folder and swapped in whole. Layers whose widths differ (CNN stages)
are stored as one tensor per layer (``layer_000`` ...). Every entry has row ids
(``meta["ids"]``) and the sha256 and size of its features file (``features_sha256``,
``features_bytes``; :meth:`StoreEntry.damage` checks them). Values the storage dtype cannot
hold are refused before anything is written (:func:`~uaes_hf.features.integrity.check_storable`).

Example:
    >>> import tempfile, numpy as np
    >>> store = FeatureStore(tempfile.mkdtemp())
    >>> _ = store.write(dataset="poems", fingerprint="ab" * 12, model="m", pooling="mean",
    ...                 layers=[np.ones((2, 3)), np.zeros((2, 3))], ids=["p1", "p2"])
    >>> feats = store.load("poems", "m")
    >>> feats.features.shape, feats.ids
    ((2, 2, 3), ['p1', 'p2'])
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from uaes_hf.features.atomic import replace_directory, unique_temp_dir
from uaes_hf.features.fingerprint import FINGERPRINT_SCHEME
from uaes_hf.features.integrity import check_storable, file_damage
from uaes_hf.features.rows import Features, row_ids
from uaes_hf.features.safetensors_io import (
    atomic_write_json,
    merge_shards_streaming,
    read_metadata,
    read_safetensors_header,
    read_tensor,
    tensor_names,
    write_layers,
)

FEATURES_FILE = "features.safetensors"
META_FILE = "meta.json"
SHARD_DIR = "shards"
OPTIONS_HASH_CHARS = 16
CHECKSUM_KEY = "features_sha256"  # meta.json: sha256 of features.safetensors as written
SIZE_KEY = "features_bytes"  # meta.json: its size in bytes
_ENTRY_GLOB = f"*/*/*/*/*/{META_FILE}"


class FingerprintMismatchError(ValueError):
    """The dataset changed since its features were extracted."""


class FeaturesNotFoundError(FileNotFoundError):
    """Nothing is stored for the requested dataset, model and pooling."""


def slugify(name: str) -> str:
    """A filesystem-safe, readable folder name for a dataset or model name.

    Example:
        >>> slugify("google/gemma-2b")
        'google--gemma-2b'
    """
    if not name:
        raise ValueError("a dataset or model name must not be empty")
    slug = name.strip().replace("\\", "/").rstrip("/").replace("/", "--")
    slug = re.sub(r"[^A-Za-z0-9._@+=-]+", "_", slug).strip("._")
    return slug[:150] or "_"


def shard_ranges(n_items: int, shard_size: int) -> list[tuple[int, int]]:
    """Split ``range(n_items)`` into consecutive ``(start, end)`` ranges of ``shard_size``.

    Example:
        >>> shard_ranges(5, 2)
        [(0, 2), (2, 4), (4, 5)]
    """
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    if n_items < 0:
        raise ValueError(f"n_items must be >= 0, got {n_items}")
    return [(start, min(start + shard_size, n_items)) for start in range(0, n_items, shard_size)]


def options_hash(options: Mapping[str, Any] | None) -> str:
    """The hash of the options that change the numbers (a folder of the entry's path).

    Example:
        >>> options_hash({"max_length": 8}) != options_hash({"max_length": 64})
        True
        >>> options_hash({"a": 1, "b": 2}) == options_hash({"b": 2, "a": 1})
        True
    """
    text = json.dumps(dict(options or {}), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:OPTIONS_HASH_CHARS]


def read_shard_info(path: Path) -> dict[str, Any]:
    """The ``info`` dict a shard was written with (token counts, truncation, timing)."""
    return json.loads(read_metadata(path).get("info", "{}"))


def _shape_meta(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, Any]:
    if "features" in shapes:
        n_items, n_layers, dim = shapes["features"]
        return {"n_items": n_items, "n_layers": n_layers, "dim": dim, "dims": [dim] * n_layers}
    dims = [shapes[name][1] for name in sorted(shapes)]
    return {"n_items": shapes["layer_000"][0], "n_layers": len(dims), "dim": None, "dims": dims}


class StoredFeatures(Features):
    """One stored entry, read lazily: ``features`` (N, L, D) or ``layer(i)``; ``meta``.

    The layout (one stacked tensor or one tensor per layer) is read from the file itself,
    so any ``features.safetensors`` + ``meta.json`` folder can be read.
    """

    def __init__(self, path: str | Path, meta: Mapping[str, Any], mmap: bool = False) -> None:
        self.path = Path(path)
        self.meta = dict(meta)
        self.mmap = mmap
        self._cache: dict[str, np.ndarray] = {}
        tensors = self.path / FEATURES_FILE
        problem = file_damage(tensors, n_bytes=self.meta.get(SIZE_KEY), full=False)
        if problem is not None:
            raise ValueError(f"{tensors} is damaged: {problem}; extract these features again")
        header, _ = read_safetensors_header(tensors)
        names = tensor_names(header)
        if "features" in names:
            shape = header["features"]["shape"]
            if len(shape) != 3:
                raise ValueError(f"{tensors}: 'features' must be N x L x D, got shape {shape}")
            self._n_layers, n_rows = int(shape[1]), int(shape[0])
        else:
            layer_names = [name for name in names if name.startswith("layer_")]
            if not layer_names:
                raise ValueError(f"{tensors}: no 'features' or 'layer_NNN' tensors: {names}")
            self._n_layers = len(layer_names)
            n_rows = int(header[layer_names[0]]["shape"][0])
        self._stacked = "features" in names
        model = self.meta.get("model")
        self.name = f"{model} on {self.meta.get('dataset')}" if model else str(self.path)
        raw_ids = self.meta.get("ids") if isinstance(self.meta.get("ids"), list) else None
        self.ids, positional = row_ids(raw_ids, n_rows, self.name)
        self.ids_are_positions = bool(self.meta.get("ids_are_positions", positional))
        self.dataset = self.meta.get("dataset")
        self.fingerprint = self.meta.get("dataset_fingerprint")

    def __repr__(self) -> str:
        return f"StoredFeatures({str(self.path)!r})"

    @property
    def n_layers(self) -> int:
        return self._n_layers

    @property
    def options(self) -> dict[str, Any]:
        """The options that changed the numbers (part of the entry's key)."""
        return dict(self.meta.get("options") or {})

    @property
    def ragged(self) -> bool:
        """True when layers differ in width (stored one tensor per layer)."""
        return not self._stacked

    @property
    def features(self) -> np.ndarray:
        """All layers as one (N, L, D) array (float32 or float16, as stored)."""
        if self.ragged:
            raise ValueError(
                f"layers of {self.name} have different widths {self.meta.get('dims')}; "
                "read them one at a time with .layer(i)"
            )
        if "features" not in self._cache:
            self._cache["features"] = read_tensor(self.path / FEATURES_FILE, "features", self.mmap)
        return self._cache["features"]

    def _read_layer(self, index: int) -> np.ndarray:
        if self._stacked:
            return self.features[:, index, :]
        return read_tensor(self.path / FEATURES_FILE, f"layer_{index:03d}", self.mmap)


def open_entry(path: str | Path, *, mmap: bool = False) -> StoredFeatures:
    """Read one entry folder (``features.safetensors`` + ``meta.json``).

    Raises:
        ValueError: the folder is not an entry, is incomplete, or its meta.json is invalid.
    """
    folder = Path(path)
    if not (folder / FEATURES_FILE).is_file():
        raise ValueError(
            f"{folder}: a folder must be a feature-store entry with {FEATURES_FILE} "
            "(give the <dataset>/<fingerprint>/<model>/<pooling>/<options> folder)"
        )
    if not (folder / META_FILE).is_file():
        raise ValueError(f"{folder}: no {META_FILE}, so the entry is incomplete (extraction ran?)")
    return StoredFeatures(folder, StoreEntry(folder).read_meta(), mmap=mmap)


class StoreEntry:
    """One entry folder: shards, merge, direct writes and completion.

    ``key`` (set by :meth:`FeatureStore.entry`) holds the key fields every meta.json of this
    entry records; ``options_hash`` is checked against every shard at merge.
    """

    def __init__(
        self,
        path: str | Path,
        options_hash: str | None = None,
        key: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.options_hash = options_hash
        self.key = dict(key or {})

    def __repr__(self) -> str:
        return f"StoreEntry({str(self.path)!r})"

    @property
    def shard_dir(self) -> Path:
        return self.path / SHARD_DIR

    def shard_path(self, start: int, end: int) -> Path:
        return self.shard_dir / f"shard-{start:010d}-{end:010d}.safetensors"

    def has_shard(self, start: int, end: int) -> bool:
        return self.shard_path(start, end).exists()

    def is_complete(self) -> bool:
        return (self.path / META_FILE).exists() and (self.path / FEATURES_FILE).exists()

    def write_shard(
        self,
        start: int,
        end: int,
        layers: Sequence[np.ndarray],
        storage_dtype: str = "float32",
        info: Mapping[str, Any] | None = None,
    ) -> Path:
        """Store the features of items ``start..end`` (one (n, D_l) array per layer)."""
        check_storable(layers, storage_dtype, f"features of items {start}..{end} of {self.path}")
        n_rows = {np.shape(layer)[0] for layer in layers}
        if n_rows != {end - start}:
            raise ValueError(f"shard {start}..{end} needs {end - start} rows, got {sorted(n_rows)}")
        path = self.shard_path(start, end)
        metadata = {"info": json.dumps(dict(info or {}))}
        if self.options_hash is not None:
            metadata["options_hash"] = self.options_hash
        write_layers(path, layers, storage_dtype, metadata)
        return path

    def _check_shard_options(self, paths: Sequence[Path]) -> None:
        if self.options_hash is None:
            return
        for path in paths:
            found = read_metadata(path).get("options_hash")
            if found != self.options_hash:
                raise ValueError(
                    f"shard {path} was written under options {found!r}, not this entry's "
                    f"{self.options_hash!r}: shards of different options are never merged"
                )

    def merge(
        self, ranges: Sequence[tuple[int, int]], meta: Mapping[str, Any], keep_shards: bool = False
    ) -> dict[str, Any]:
        """Merge the shards for ``ranges`` into the final file and write ``meta.json``.

        ``meta`` is completed with the shapes, per-shard totals and the creation time. Numbers
        in the shards' info are summed into ``totals``; lists of row positions (keys ending in
        ``_rows``, e.g. ``truncated_rows``) are shifted by each shard's start and joined.
        """
        missing = [r for r in ranges if not self.has_shard(*r)]
        if missing:
            raise FileNotFoundError(f"cannot merge {self.path}: shards {missing[:5]} are missing")
        paths = [self.shard_path(*r) for r in ranges]
        self._check_shard_options(paths)
        infos = [read_shard_info(path) for path in paths]
        digest = hashlib.sha256()
        shapes = merge_shards_streaming(
            paths, self.path / FEATURES_FILE, metadata={"format": "uaes-features"}, digest=digest
        )
        full = {**dict(meta), **self.key, **_shape_meta(shapes)}
        full[CHECKSUM_KEY] = digest.hexdigest()
        full[SIZE_KEY] = (self.path / FEATURES_FILE).stat().st_size
        full["fingerprint_scheme"] = FINGERPRINT_SCHEME
        totals: dict[str, float] = {}
        positions: dict[str, list[int]] = {}
        for (start, _), info in zip(ranges, infos, strict=True):
            for key, value in info.items():
                additive = isinstance(value, (int, float)) and not isinstance(value, bool)
                if additive and "batch_size" not in key:
                    totals[key] = totals.get(key, 0) + value
                elif key.endswith("_rows") and isinstance(value, list):
                    positions.setdefault(key, []).extend(start + int(i) for i in value)
        full["totals"] = totals
        full.update(positions)
        full["n_shards"] = len(paths)
        full["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        full.setdefault("ids", [str(i) for i in range(full["n_items"])])
        full.setdefault("ids_are_positions", "ids" not in meta)
        atomic_write_json(self.path / META_FILE, full)
        if not keep_shards:
            shutil.rmtree(self.shard_dir, ignore_errors=True)
        return full

    def write(
        self, layers: Sequence[np.ndarray], meta: Mapping[str, Any], storage_dtype: str = "float32"
    ) -> dict[str, Any]:
        """Write a complete entry from in-memory layers (no shards, no timestamp).

        The entry is built in a unique temp folder and moved into place whole
        (:func:`~uaes_hf.features.atomic.replace_directory`), replacing an entry that is
        there without ever deleting it first. Equal layers and meta give byte-identical
        files, so a recomputed stage that wrote them leaves the stages after it cached.
        ``meta.json`` records the sha256 and size of ``features.safetensors``.
        """
        check_storable(layers, storage_dtype, f"features for {self.path}")
        tmp = unique_temp_dir(self.path)
        try:
            checksum, size = write_layers(
                tmp / FEATURES_FILE, layers, storage_dtype, metadata={"format": "uaes-features"}
            )
            header, _ = read_safetensors_header(tmp / FEATURES_FILE)
            shapes = {name: tuple(header[name]["shape"]) for name in tensor_names(header)}
            full = {**dict(meta), **self.key, **_shape_meta(shapes), "storage_dtype": storage_dtype}
            full.setdefault("ids", [str(i) for i in range(full["n_items"])])
            full.setdefault("ids_are_positions", "ids" not in meta)
            full.update({CHECKSUM_KEY: checksum, SIZE_KEY: size})
            full["fingerprint_scheme"] = FINGERPRINT_SCHEME
            atomic_write_json(tmp / META_FILE, full)
            replace_directory(tmp, self.path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return full

    def damage(self, *, full: bool = True) -> str | None:
        """What is wrong with this complete entry, or None when it is whole.

        Checks that ``meta.json`` is a JSON object and that ``features.safetensors`` has the
        size its header describes and, when recorded at write time, the recorded size and
        sha256 (``full=False`` skips hashing the file).
        """
        try:
            meta = self.read_meta()
        except (OSError, ValueError) as err:
            return f"its {META_FILE} cannot be read ({err})"
        return file_damage(
            self.path / FEATURES_FILE,
            sha256=meta.get(CHECKSUM_KEY),
            n_bytes=meta.get(SIZE_KEY),
            full=full,
        )

    def read_meta(self) -> dict[str, Any]:
        try:
            meta = json.loads((self.path / META_FILE).read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{self.path / META_FILE} is not valid JSON") from err
        if not isinstance(meta, dict):
            raise ValueError(f"{self.path / META_FILE} must hold a JSON object")
        return meta


class FeatureStore:
    """Features on disk, addressed by dataset (and fingerprint), model, pooling and options.

    Example:
        >>> import tempfile, numpy as np
        >>> store = FeatureStore(tempfile.mkdtemp())
        >>> for n in (8, 64):
        ...     _ = store.write(dataset="d", fingerprint="ab" * 12, model="m", pooling="mean",
        ...                     layers=[np.full((1, 2), n)], options={"max_length": n})
        >>> store.load("d", "m", options={"max_length": 64}).layer(0).tolist()
        [[64.0, 64.0]]
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.root)!r})"

    def entry(
        self,
        dataset: str,
        fingerprint: str,
        model: str,
        pooling: str,
        options: Mapping[str, Any] | None = None,
    ) -> StoreEntry:
        """The folder for one (dataset, fingerprint, model, pooling, options); not created."""
        if not re.fullmatch(r"[0-9a-f]{8,64}", fingerprint):
            raise ValueError(f"fingerprint must be lowercase hex, got {fingerprint!r}")
        digest = options_hash(options)
        folder = self.root / slugify(dataset) / fingerprint / slugify(model) / slugify(pooling)
        key = self.key_meta(dataset, fingerprint, model, pooling, options)
        return StoreEntry(folder / digest, options_hash=digest, key=key)

    def key_meta(
        self,
        dataset: str,
        fingerprint: str,
        model: str,
        pooling: str,
        options: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The key fields every entry's meta.json records."""
        return {
            "dataset": dataset,
            "dataset_fingerprint": fingerprint,
            "model": model,
            "pooling": pooling,
            "options": dict(options or {}),
            "options_hash": options_hash(options),
        }

    def write(
        self,
        *,
        dataset: str,
        fingerprint: str,
        model: str,
        pooling: str,
        layers: Sequence[np.ndarray],
        ids: Sequence[Any] | None = None,
        options: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
        storage_dtype: str = "float32",
    ) -> StoreEntry:
        """Write a complete entry from in-memory layers (see :meth:`StoreEntry.write`)."""
        entry = self.entry(dataset, fingerprint, model, pooling, options)
        full = dict(meta or {})
        if ids is not None:
            full["ids"], _ = row_ids(ids, int(layers[0].shape[0]) if layers else 0, str(entry.path))
            full["ids_are_positions"] = False
        entry.write(layers, full, storage_dtype)
        return entry

    def entries(self) -> list[dict[str, Any]]:
        """Metadata of every complete entry (with its ``path``)."""
        found = []
        for meta_path in sorted(self.root.glob(_ENTRY_GLOB)):
            entry = StoreEntry(meta_path.parent)
            if entry.is_complete():
                meta = entry.read_meta()
                meta["path"] = str(entry.path)
                found.append(meta)
        return found

    def load(
        self,
        dataset: Any,
        model: str,
        pooling: str | None = None,
        *,
        fingerprint: str | None = None,
        options: Mapping[str, Any] | None = None,
        mmap: bool = False,
    ) -> StoredFeatures:
        """Load stored features.

        Args:
            dataset: the dataset name used at extraction (the path or Hub id given to
                ``--dataset``, or its full key ``path@config:split``), or the data itself
                (``datasets.Dataset`` or list of items), whose fingerprint then selects and
                verifies the entry.
            model: the model name used at extraction (registry key, Hub id or path).
            pooling: ``mean``, ``last``, ``cls`` ...; None accepts the only one stored.
            fingerprint: the dataset's current fingerprint; a stored entry for a different
                one raises :class:`FingerprintMismatchError`.
            options: option values the entry must have (e.g. ``{"max_length": 64}``) when
                several entries differ only in options.
            mmap: memory-map the features instead of reading them into RAM.

        Raises:
            FeaturesNotFoundError: nothing stored for that dataset/model/pooling/options.
            FingerprintMismatchError: features exist, but for a different version of the data.
            ValueError: several entries match.
        """
        if isinstance(dataset, str):
            name = dataset
        else:
            from uaes_hf.features.fingerprint import dataset_fingerprint

            current = dataset_fingerprint(dataset)
            if fingerprint is not None and fingerprint != current:
                raise ValueError("fingerprint= disagrees with the dataset passed")
            fingerprint, name = current, None
        wanted = dict(options or {})
        candidates = [
            meta
            for meta in self.entries()
            if (name is None or _names_dataset(meta, name))
            and model in (meta.get("model"), meta.get("model_id"))
            and (pooling is None or meta.get("pooling") == pooling)
            and all((meta.get("options") or {}).get(k) == v for k, v in wanted.items())
        ]
        what = f"dataset={name or '<data>'!s} model={model} pooling={pooling or 'any'}"
        if wanted:
            what += f" options={wanted}"
        if not candidates:
            raise FeaturesNotFoundError(
                f"no features stored under {self.root} for {what}; run `uaes extract` first"
            )
        if fingerprint is not None:
            matching = [meta for meta in candidates if meta["dataset_fingerprint"] == fingerprint]
            if not matching:
                stored = sorted({meta["dataset_fingerprint"] for meta in candidates})
                older = any(m.get("fingerprint_scheme") != FINGERPRINT_SCHEME for m in candidates)
                raise FingerprintMismatchError(
                    f"the dataset changed since extraction: features for {what} were extracted "
                    f"from fingerprint(s) {stored}, but the data now has fingerprint "
                    f"{fingerprint}; re-run `uaes extract` on the current data"
                    + (
                        " (entries written before fingerprint scheme "
                        f"{FINGERPRINT_SCHEME} never match the data: extract them again)"
                        if older
                        else ""
                    )
                )
            candidates = matching
        if len(candidates) > 1:
            found = [
                (meta.get("dataset"), meta["dataset_fingerprint"], meta.get("pooling"))
                + ((meta.get("options"),) if meta.get("options") else ())
                for meta in candidates
            ]
            raise ValueError(
                f"several stored entries match {what}: {found}; pass the full dataset key "
                "(path@config:split), pooling=, fingerprint= or options="
            )
        meta = candidates[0]
        return StoredFeatures(Path(meta.pop("path")), meta, mmap=mmap)


def _slug_eq(stored: str | None, name: str) -> bool:
    return stored is not None and slugify(stored) == slugify(name)


def _names_dataset(meta: Mapping[str, Any], name: str) -> bool:
    """``name`` is the stored dataset key (``path@config:split``) or the ``--dataset`` given."""
    stored = meta.get("dataset")
    if stored == name or _slug_eq(stored, name):
        return True
    source = meta.get("dataset_source")
    return isinstance(source, str) and _slug_eq(source, name)
