"""The feature store: one folder per (dataset fingerprint, model, pooling) on disk.

Layout under the store root::

    <dataset-slug>/<fingerprint>/<model-slug>/<pooling>/
        features.safetensors   N x L x D (all layers), float32 or float16
        meta.json              model id and revision, pooling, dtype, N, layers, dim,
                               dataset name and fingerprint, package version, creation time
        shards/                while extracting: one file per fixed range of items

Shards are written by whichever process computed them (temp file + ``os.replace``), and a
shard that exists is never recomputed. Rank 0 merges them in a streaming pass (bounded
memory) into ``features.safetensors``; ``meta.json`` is written last, so its presence
means the entry is complete. Layers whose widths differ (CNN stages) are stored as one
tensor per layer (``layer_000`` ...) and read back with :meth:`StoredFeatures.layer`.

Example:
    >>> store = FeatureStore("features/")  # doctest: +SKIP
    >>> feats = store.load(dataset="poems_repo", model="smollm2-135m")  # doctest: +SKIP
    >>> feats.features.shape, feats.meta["pooling"]  # doctest: +SKIP
    ((1000, 31, 576), 'mean')
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FEATURES_FILE = "features.safetensors"
META_FILE = "meta.json"
SHARD_DIR = "shards"
STORAGE_DTYPES = {"float32": ("F32", np.float32), "float16": ("F16", np.float16)}
_SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64}


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


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _atomic_write_json(path: Path, payload: Mapping[str, Any]) -> None:
    _atomic_write_bytes(path, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())


def _layer_tensors(layers: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """One ``features`` tensor (n, L, D) when widths agree, else one tensor per layer."""
    widths = {layer.shape[-1] for layer in layers}
    if len(widths) == 1:
        return {"features": np.stack(layers, axis=1)}
    return {f"layer_{index:03d}": layer for index, layer in enumerate(layers)}


def read_safetensors_header(path: Path) -> tuple[dict[str, Any], int]:
    """Return the JSON header of a safetensors file and the byte offset of its data."""
    with path.open("rb") as handle:
        raw = handle.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path} is not a safetensors file (too short)")
        (header_len,) = struct.unpack("<Q", raw)
        try:
            header = json.loads(handle.read(header_len))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} has a malformed safetensors header") from err
    return header, 8 + header_len


def _read_tensor(path: Path, name: str, mmap: bool = False) -> np.ndarray:
    header, data_start = read_safetensors_header(path)
    if name not in header:
        raise KeyError(
            f"{path} has no tensor {name!r}; it has {sorted(set(header) - {'__metadata__'})}"
        )
    info = header[name]
    dtype = _SAFETENSORS_DTYPES[info["dtype"]]
    start, end = info["data_offsets"]
    shape = tuple(info["shape"])
    if mmap:
        return np.memmap(path, dtype=dtype, mode="r", offset=data_start + start, shape=shape)
    with path.open("rb") as handle:
        handle.seek(data_start + start)
        buffer = handle.read(end - start)
    return np.frombuffer(buffer, dtype=dtype).reshape(shape).copy()


def write_shard(
    path: Path, layers: Sequence[np.ndarray], storage_dtype: str, info: Mapping
) -> None:
    """Write one shard (a list of (n, D_l) arrays, one per layer) atomically."""
    from safetensors.numpy import save

    numpy_dtype = STORAGE_DTYPES[storage_dtype][1]
    tensors = {
        name: np.ascontiguousarray(array, dtype=numpy_dtype)
        for name, array in _layer_tensors(layers).items()
    }
    _atomic_write_bytes(path, save(tensors, metadata={"info": json.dumps(dict(info))}))


def read_shard_info(path: Path) -> dict[str, Any]:
    """The ``info`` dict a shard was written with (token counts, truncation, timing)."""
    header, _ = read_safetensors_header(path)
    return json.loads(header.get("__metadata__", {}).get("info", "{}"))


def merge_shards_streaming(
    shard_paths: Sequence[Path], target: Path, metadata: Mapping[str, str] | None = None
) -> dict[str, tuple[int, ...]]:
    """Concatenate shards along the first axis into one safetensors file, streaming.

    Only one shard tensor is in memory at a time, so the merged file may exceed RAM. The
    result is written to a temp file and renamed into place. Returns the merged shapes.
    """
    if not shard_paths:
        raise ValueError("no shards to merge")
    headers = [read_safetensors_header(path)[0] for path in shard_paths]
    names = sorted(key for key in headers[0] if key != "__metadata__")
    merged: dict[str, dict[str, Any]] = {}
    offset = 0
    for name in names:
        dtype = headers[0][name]["dtype"]
        tail = tuple(headers[0][name]["shape"][1:])
        rows = 0
        for path, header in zip(shard_paths, headers, strict=True):
            if name not in header or header[name]["dtype"] != dtype:
                raise ValueError(f"shard {path} does not match the others (tensor {name!r})")
            if tuple(header[name]["shape"][1:]) != tail:
                raise ValueError(f"shard {path} has shape {header[name]['shape']} for {name!r}")
            rows += header[name]["shape"][0]
        itemsize = np.dtype(_SAFETENSORS_DTYPES[dtype]).itemsize
        nbytes = rows * int(np.prod(tail, dtype=np.int64)) * itemsize
        merged[name] = {
            "dtype": dtype,
            "shape": [rows, *tail],
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    header_obj: dict[str, Any] = dict(merged)
    if metadata:
        header_obj["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    header_bytes = json.dumps(header_obj, separators=(",", ":")).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)  # data must start 8-byte aligned
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(struct.pack("<Q", len(header_bytes)))
            handle.write(header_bytes)
            for name in names:
                for path in shard_paths:
                    handle.write(_read_tensor(path, name).tobytes(order="C"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return {name: tuple(info["shape"]) for name, info in merged.items()}


@dataclass
class StoredFeatures:
    """Features loaded from the store: ``features`` is (N, L, D); ``meta`` the metadata."""

    path: Path
    meta: dict[str, Any]
    mmap: bool = False
    _cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def n_layers(self) -> int:
        return int(self.meta["n_layers"])

    @property
    def ids(self) -> list[Any] | None:
        """Record ids of the feature rows, in order, when extraction recorded them."""
        ids = self.meta.get("ids")
        return list(ids) if isinstance(ids, list) else None

    @property
    def ragged(self) -> bool:
        """True when layers differ in width (stored one tensor per layer)."""
        return self.meta.get("dim") is None

    @property
    def features(self) -> np.ndarray:
        """All layers as one (N, L, D) array (float32 or float16, as stored)."""
        if self.ragged:
            raise ValueError(
                f"layers of {self.meta['model']} have different widths {self.meta['dims']}; "
                "read them one at a time with .layer(i)"
            )
        if "features" not in self._cache:
            self._cache["features"] = _read_tensor(self.path / FEATURES_FILE, "features", self.mmap)
        return self._cache["features"]

    def layer(self, index: int) -> np.ndarray:
        """One layer's (N, D_l) features; negative indices count from the last layer."""
        if not -self.n_layers <= index < self.n_layers:
            raise IndexError(f"layer {index} out of range for {self.n_layers} layers")
        index %= self.n_layers
        if not self.ragged:
            return self.features[:, index, :]
        return _read_tensor(self.path / FEATURES_FILE, f"layer_{index:03d}", self.mmap)


class StoreEntry:
    """One (dataset fingerprint, model, pooling) folder: shards, merge and completion."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

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
        if storage_dtype not in STORAGE_DTYPES:
            raise ValueError(f"storage dtype must be one of {sorted(STORAGE_DTYPES)}")
        n_rows = {layer.shape[0] for layer in layers}
        if n_rows != {end - start}:
            raise ValueError(f"shard {start}..{end} needs {end - start} rows, got {sorted(n_rows)}")
        for layer in layers:
            if not np.isfinite(layer).all():
                raise ValueError(f"features for items {start}..{end} contain NaN or inf")
        path = self.shard_path(start, end)
        write_shard(path, layers, storage_dtype, info or {})
        return path

    def merge(
        self, ranges: Sequence[tuple[int, int]], meta: Mapping[str, Any], keep_shards: bool = False
    ) -> dict[str, Any]:
        """Merge the shards for ``ranges`` into the final file and write ``meta.json``.

        ``meta`` is completed with the shapes, per-shard totals and the creation time.
        """
        missing = [r for r in ranges if not self.has_shard(*r)]
        if missing:
            raise FileNotFoundError(f"cannot merge {self.path}: shards {missing[:5]} are missing")
        paths = [self.shard_path(*r) for r in ranges]
        infos = [read_shard_info(path) for path in paths]
        shapes = merge_shards_streaming(
            paths, self.path / FEATURES_FILE, metadata={"format": "uaes-features"}
        )
        full = dict(meta)
        if "features" in shapes:
            n_items, n_layers, dim = shapes["features"]
            full.update(n_items=n_items, n_layers=n_layers, dim=dim, dims=[dim] * n_layers)
        else:
            dims = [shapes[name][1] for name in sorted(shapes)]
            full.update(n_items=shapes["layer_000"][0], n_layers=len(dims), dim=None, dims=dims)
        totals: dict[str, float] = {}
        for info in infos:
            for key, value in info.items():
                additive = isinstance(value, (int, float)) and not isinstance(value, bool)
                if additive and "batch_size" not in key:
                    totals[key] = totals.get(key, 0) + value
        full["totals"] = totals
        full["n_shards"] = len(paths)
        full["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        _atomic_write_json(self.path / META_FILE, full)
        if not keep_shards:
            shutil.rmtree(self.shard_dir, ignore_errors=True)
        return full

    def read_meta(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / META_FILE).read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{self.path / META_FILE} is not valid JSON") from err


class FeatureStore:
    """Features on disk, addressed by dataset name (and fingerprint), model and pooling.

    Example:
        >>> store = FeatureStore("features/")  # doctest: +SKIP
        >>> store.load(dataset="poems", model="gemma3-270m").features.shape  # doctest: +SKIP
        (1000, 19, 640)
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.root)!r})"

    def entry(self, dataset: str, fingerprint: str, model: str, pooling: str) -> StoreEntry:
        """The folder for one (dataset, fingerprint, model, pooling); not created."""
        if not re.fullmatch(r"[0-9a-f]{8,64}", fingerprint):
            raise ValueError(f"fingerprint must be lowercase hex, got {fingerprint!r}")
        return StoreEntry(
            self.root / slugify(dataset) / fingerprint / slugify(model) / slugify(pooling)
        )

    def entries(self) -> list[dict[str, Any]]:
        """Metadata of every complete entry (with its ``path``)."""
        found = []
        for meta_path in sorted(self.root.glob(f"*/*/*/*/{META_FILE}")):
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
        mmap: bool = False,
    ) -> StoredFeatures:
        """Load stored features.

        Args:
            dataset: the dataset name used at extraction (the path or Hub id given to
                ``--dataset``, or its full key ``path@config:split``), or the data itself (``datasets.Dataset`` or list of items),
                whose fingerprint then selects and verifies the entry.
            model: the model name used at extraction (registry key, Hub id or path).
            pooling: ``mean``, ``last``, ``cls`` ...; None accepts the only one stored.
            fingerprint: the dataset's current fingerprint; a stored entry for a different
                one raises :class:`FingerprintMismatchError`.
            mmap: memory-map the features instead of reading them into RAM.

        Raises:
            FeaturesNotFoundError: nothing stored for that dataset/model/pooling.
            FingerprintMismatchError: features exist, but for a different version of the data.
        """
        if isinstance(dataset, str):
            name = dataset
        else:
            from uaes_hf.extract.fingerprint import dataset_fingerprint

            current = dataset_fingerprint(dataset)
            if fingerprint is not None and fingerprint != current:
                raise ValueError("fingerprint= disagrees with the dataset passed")
            fingerprint, name = current, None
        candidates = [
            meta
            for meta in self.entries()
            if (name is None or _names_dataset(meta, name))
            and model in (meta.get("model"), meta.get("model_id"))
            and (pooling is None or meta.get("pooling") == pooling)
        ]
        what = f"dataset={name or '<data>'!s} model={model} pooling={pooling or 'any'}"
        if not candidates:
            raise FeaturesNotFoundError(
                f"no features stored under {self.root} for {what}; run `uaes extract` first"
            )
        if fingerprint is not None:
            matching = [meta for meta in candidates if meta["dataset_fingerprint"] == fingerprint]
            if not matching:
                stored = sorted({meta["dataset_fingerprint"] for meta in candidates})
                raise FingerprintMismatchError(
                    f"the dataset changed since extraction: features for {what} were extracted "
                    f"from fingerprint(s) {stored}, but the data now has fingerprint "
                    f"{fingerprint}; re-run `uaes extract` on the current data"
                )
            candidates = matching
        if len(candidates) > 1:
            options = [
                (meta.get("dataset"), meta["dataset_fingerprint"], meta["pooling"])
                for meta in candidates
            ]
            raise ValueError(
                f"several stored entries match {what}: {options}; pass the full dataset key "
                "(path@config:split), pooling= or fingerprint="
            )
        meta = candidates[0]
        return StoredFeatures(path=Path(meta.pop("path")), meta=meta, mmap=mmap)


def _slug_eq(stored: str | None, name: str) -> bool:
    return stored is not None and slugify(stored) == slugify(name)


def _names_dataset(meta: Mapping[str, Any], name: str) -> bool:
    """``name`` is the stored dataset key (``path@config:split``) or the ``--dataset`` given."""
    stored = meta.get("dataset")
    if stored == name or _slug_eq(stored, name):
        return True
    source = meta.get("dataset_source")
    return isinstance(source, str) and _slug_eq(source, name)
