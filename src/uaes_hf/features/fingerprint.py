"""A stable fingerprint of a dataset's ordered items, so stored features can be checked.

Features are only valid for the exact items, in the exact order, they were extracted from.
The fingerprint is a hash of that ordered content (texts, image files or pixels, ids). A
``datasets.Dataset`` is hashed from its Arrow data, not from ``Dataset._fingerprint``: with
datasets 5.2, two local repo folders with the same README get the same ``_fingerprint``
(and the same cache) even when their parquet files differ.

Example:
    >>> from uaes_hf.features.fingerprint import dataset_fingerprint
    >>> dataset_fingerprint(["a poem", "a text"])
    '415ac1d27c7044ad091e41a4'
    >>> dataset_fingerprint(["a text", "a poem"]) != dataset_fingerprint(["a poem", "a text"])
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

FINGERPRINT_CHARS = 24


def dataset_fingerprint(items: Any, ids: Sequence[str] | None = None) -> str:
    """Return a stable hex fingerprint of ``items`` (order matters).

    Args:
        items: a ``datasets.Dataset`` (its Arrow rows are hashed), or a sequence of
            texts, image paths, PIL images or numpy arrays.
        ids: optional record ids, hashed together with the items.

    Raises:
        ValueError: if an item has a type that cannot be fingerprinted.
    """
    digest = hashlib.sha256()
    if hasattr(items, "with_format") and hasattr(items, "features"):  # datasets.Dataset
        _update_with_dataset(digest, items)
        if ids is not None:
            for record_id in ids:
                digest.update(str(record_id).encode("utf-8") + b"\x01")
        return digest.hexdigest()[:FINGERPRINT_CHARS]
    for index, item in enumerate(_iter_items(items)):
        digest.update(_item_bytes(item, index))
        digest.update(b"\x00")
    if ids is not None:
        for record_id in ids:
            digest.update(str(record_id).encode("utf-8") + b"\x01")
    return digest.hexdigest()[:FINGERPRINT_CHARS]


def _update_with_dataset(digest: Any, dataset: Any, batch_size: int = 1024) -> None:
    """Hash a ``datasets.Dataset``'s rows in order (its Arrow data, IPC-serialised)."""
    import pyarrow as pa

    digest.update(b"datasets:" + repr(sorted(dataset.features.to_dict().items())).encode())
    for table in dataset.with_format("arrow").iter(batch_size=batch_size):
        sink = pa.BufferOutputStream()
        table = table.combine_chunks()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        digest.update(sink.getvalue().to_pybytes())


def _iter_items(items: Any) -> Iterable[Any]:
    if isinstance(items, (str, bytes)):
        raise ValueError("items must be a sequence of texts or images, not a single string")
    return items


def _item_bytes(item: Any, index: int) -> bytes:
    """Bytes that identify one item's content."""
    if isinstance(item, str):
        return b"t" + item.encode("utf-8")
    if isinstance(item, Path):
        return b"f" + hashlib.sha256(item.read_bytes()).digest()
    if isinstance(item, bytes):
        return b"b" + hashlib.sha256(item).digest()
    if hasattr(item, "tobytes") and hasattr(item, "size") and hasattr(item, "mode"):  # PIL
        header = f"{item.mode}:{item.size}".encode()
        return b"p" + header + hashlib.sha256(item.tobytes()).digest()
    if hasattr(item, "tobytes") and hasattr(item, "shape"):  # numpy array
        header = f"{item.dtype}:{item.shape}".encode()
        return b"a" + header + hashlib.sha256(item.tobytes()).digest()
    if isinstance(item, dict) and ("bytes" in item or "path" in item):  # datasets Image storage
        if item.get("bytes") is not None:
            return b"b" + hashlib.sha256(item["bytes"]).digest()
        return b"f" + hashlib.sha256(Path(item["path"]).read_bytes()).digest()
    raise ValueError(
        f"cannot fingerprint item {index} of type {type(item).__name__}; "
        "expected str, pathlib.Path, bytes, PIL.Image or numpy array"
    )


def table_fingerprint(columns: dict[str, Sequence[Any]], ids: Sequence[Any]) -> str:
    """Fingerprint of a table: its ids and the named columns (texts, image bytes ...).

    Features of different columns of one table share this fingerprint, so they can be
    paired (captions with images) while a changed cell in any of them changes it.

    Example:
        >>> a = table_fingerprint({"text": ["x", "y"]}, ids=["1", "2"])
        >>> a == table_fingerprint({"text": ["x", "y"]}, ids=["1", "3"])
        False
    """
    digest = hashlib.sha256(b"table:")
    n_rows = len(ids)
    for record_id in ids:
        digest.update(str(record_id).encode("utf-8") + b"\x01")
    for name in sorted(columns):
        values = list(columns[name])
        if len(values) != n_rows:
            raise ValueError(f"column {name!r} has {len(values)} values for {n_rows} ids")
        digest.update(b"column:" + name.encode("utf-8") + b"\x00")
        for index, item in enumerate(values):
            digest.update(_item_bytes(item, index))
            digest.update(b"\x00")
    return digest.hexdigest()[:FINGERPRINT_CHARS]
