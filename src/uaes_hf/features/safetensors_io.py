"""Low-level safetensors reading and atomic writing, with numpy only (no torch).

The feature store reads tensors straight from the file (optionally memory-mapped) and
merges shards in a streaming pass, so one shard tensor at a time is in memory. Every write
goes to a unique temp file in the target folder and is renamed into place, so a reader never
sees half a file and two writers never share a temp name.

Example:
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.safetensors"
    >>> _ = write_tensors(path, {"features": np.ones((2, 3), np.float32)}, {"note": "hi"})
    >>> read_tensor(path, "features").shape, read_metadata(path)["note"]
    ((2, 3), 'hi')
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

STORAGE_DTYPES = {"float32": ("F32", np.float32), "float16": ("F16", np.float16)}
SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64}


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a unique temp file and a rename."""
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


def atomic_write_json(path: Path, payload: Mapping[str, Any]) -> None:
    """``payload`` as indented, key-sorted JSON (equal payloads give equal bytes)."""
    atomic_write_bytes(path, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())


def layer_tensors(layers: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """One ``features`` tensor (n, L, D) when widths agree, else one tensor per layer.

    Example:
        >>> sorted(layer_tensors([np.zeros((2, 3)), np.zeros((2, 4))]))
        ['layer_000', 'layer_001']
    """
    if not layers:
        raise ValueError("no layers to store")
    widths = {layer.shape[-1] for layer in layers}
    if len(widths) == 1:
        return {"features": np.stack(layers, axis=1)}
    return {f"layer_{index:03d}": layer for index, layer in enumerate(layers)}


def read_safetensors_header(path: Path) -> tuple[dict[str, Any], int]:
    """Return the JSON header of a safetensors file and the byte offset of its data."""
    path = Path(path)
    with path.open("rb") as handle:
        raw = handle.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path} is not a safetensors file (too short)")
        (header_len,) = struct.unpack("<Q", raw)
        if header_len > path.stat().st_size:
            raise ValueError(f"{path} is not a safetensors file (header length {header_len})")
        try:
            header = json.loads(handle.read(header_len))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path} has a malformed safetensors header") from err
    if not isinstance(header, dict):
        raise ValueError(f"{path} has a malformed safetensors header")
    return header, 8 + header_len


def tensor_names(header: Mapping[str, Any]) -> list[str]:
    """The tensor names of a header, sorted (the metadata entry left out)."""
    return sorted(name for name in header if name != "__metadata__")


def read_metadata(path: Path) -> dict[str, str]:
    """The ``__metadata__`` strings of a safetensors file (empty when it has none)."""
    header, _ = read_safetensors_header(path)
    return dict(header.get("__metadata__") or {})


def read_tensor(path: Path, name: str, mmap: bool = False) -> np.ndarray:
    """One tensor of a safetensors file as numpy (a read-only memmap when ``mmap``)."""
    path = Path(path)
    header, data_start = read_safetensors_header(path)
    if name not in header or name == "__metadata__":
        raise KeyError(f"{path} has no tensor {name!r}; it has {tensor_names(header)}")
    info = header[name]
    if info["dtype"] not in SAFETENSORS_DTYPES:
        raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']}")
    dtype = SAFETENSORS_DTYPES[info["dtype"]]
    start, end = info["data_offsets"]
    shape = tuple(info["shape"])
    if mmap:
        return np.memmap(path, dtype=dtype, mode="r", offset=data_start + start, shape=shape)
    with path.open("rb") as handle:
        handle.seek(data_start + start)
        buffer = handle.read(end - start)
    if len(buffer) != end - start:
        raise ValueError(f"{path} is truncated (tensor {name!r})")
    return np.frombuffer(buffer, dtype=dtype).reshape(shape).copy()


def write_tensors(
    path: Path, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None
) -> tuple[str, int]:
    """Write numpy tensors as one safetensors file, atomically.

    Returns the sha256 and the size of the bytes written (recorded as an entry's checksum).
    """
    from safetensors.numpy import save

    data = {name: np.ascontiguousarray(array) for name, array in tensors.items()}
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    payload = save(data, metadata=meta or None)
    atomic_write_bytes(Path(path), payload)
    return hashlib.sha256(payload).hexdigest(), len(payload)


def write_layers(
    path: Path,
    layers: Sequence[np.ndarray],
    storage_dtype: str,
    metadata: Mapping[str, str] | None = None,
) -> tuple[str, int]:
    """Write a list of (n, D_l) layers in ``storage_dtype`` (see :func:`layer_tensors`).

    Returns the sha256 and size of the file's bytes.
    """
    if storage_dtype not in STORAGE_DTYPES:
        raise ValueError(f"storage dtype must be one of {sorted(STORAGE_DTYPES)}")
    numpy_dtype = STORAGE_DTYPES[storage_dtype][1]
    tensors = {
        name: np.ascontiguousarray(array, dtype=numpy_dtype)
        for name, array in layer_tensors(layers).items()
    }
    return write_tensors(path, tensors, metadata)


def merge_shards_streaming(
    shard_paths: Sequence[Path],
    target: Path,
    metadata: Mapping[str, str] | None = None,
    digest: Any = None,
) -> dict[str, tuple[int, ...]]:
    """Concatenate shards along the first axis into one safetensors file, streaming.

    Only one shard tensor is in memory at a time, so the merged file may exceed RAM. The
    result is written to a temp file and renamed into place. Returns the merged shapes;
    ``digest`` (a ``hashlib`` object), when given, is fed every byte written.
    """
    if not shard_paths:
        raise ValueError("no shards to merge")
    headers = [read_safetensors_header(path)[0] for path in shard_paths]
    names = tensor_names(headers[0])
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
        itemsize = np.dtype(SAFETENSORS_DTYPES[dtype]).itemsize
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
            for chunk in _merged_chunks(shard_paths, names, header_bytes):
                handle.write(chunk)
                if digest is not None:
                    digest.update(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return {name: tuple(info["shape"]) for name, info in merged.items()}


def _merged_chunks(
    shard_paths: Sequence[Path], names: Sequence[str], header_bytes: bytes
) -> Iterator[bytes]:
    """The bytes of a merged file in order: header length, header, each tensor's shards."""
    yield struct.pack("<Q", len(header_bytes))
    yield header_bytes
    for name in names:
        for path in shard_paths:
            yield read_tensor(path, name).tobytes(order="C")
