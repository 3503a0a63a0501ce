"""A stable fingerprint of a dataset's ordered items, so stored features can be checked.

Features are only valid for the exact items, in the exact order, they were extracted from.
The fingerprint is a hash of that ordered content (texts, image files or pixels, ids). A
``datasets.Dataset`` is hashed from its Arrow data, not from ``Dataset._fingerprint``: with
datasets 5.2, two local repo folders with the same README get the same ``_fingerprint``
(and the same cache) even when their parquet files differ.

Every item, id and column name enters the hash with its length in front (scheme 2,
:data:`FINGERPRINT_SCHEME`), so no two different sequences give the same byte stream:
``["a\x00tb"]`` and ``["a", "b"]`` collided under scheme 1, which used separators.

Example:
    >>> from uaes_hf.features.fingerprint import dataset_fingerprint
    >>> dataset_fingerprint(["a poem", "a text"])
    '0fd62695d6a83eea5bb5ca70'
    >>> dataset_fingerprint(["a" + chr(0) + "tb"]) != dataset_fingerprint(["a", "b"])
    True
    >>> dataset_fingerprint(["a text", "a poem"]) != dataset_fingerprint(["a poem", "a text"])
    True
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

FINGERPRINT_CHARS = 24
# 2: every item, id and column name is length-prefixed (1: separators, which could collide).
FINGERPRINT_SCHEME = 2


def _framed(data: bytes) -> bytes:
    """``data`` with its length in front: concatenations of framed parts never collide."""
    return struct.pack("<Q", len(data)) + data


def dataset_fingerprint(items: Any, ids: Sequence[str] | None = None) -> str:
    """Return a stable hex fingerprint of ``items`` (order matters).

    Args:
        items: a ``datasets.Dataset`` (its Arrow rows are hashed), or a sequence of
            texts, image paths, PIL images or numpy arrays.
        ids: optional record ids, hashed together with the items.

    Raises:
        ValueError: if an item has a type that cannot be fingerprinted.
    """
    content = hashlib.sha256()
    if hasattr(items, "with_format") and hasattr(items, "features"):  # datasets.Dataset
        _update_with_dataset(content, items)
    else:
        for index, item in enumerate(_iter_items(items)):
            content.update(_framed(_item_bytes(item, index)))
    # Fixed-size parts: the items' hash, then the ids' hash (or nothing), never ambiguous.
    digest = hashlib.sha256(f"uaes-fingerprint-{FINGERPRINT_SCHEME}:".encode())
    digest.update(content.digest())
    if ids is not None:
        id_digest = hashlib.sha256()
        for record_id in ids:
            id_digest.update(_framed(str(record_id).encode("utf-8")))
        digest.update(b"ids" + id_digest.digest())
    return digest.hexdigest()[:FINGERPRINT_CHARS]


def _update_with_dataset(digest: Any, dataset: Any, batch_size: int = 1024) -> None:
    """Hash a ``datasets.Dataset``'s rows in order (its Arrow data, IPC-serialised)."""
    import pyarrow as pa

    digest.update(b"datasets:" + _framed(repr(sorted(dataset.features.to_dict().items())).encode()))
    for table in dataset.with_format("arrow").iter(batch_size=batch_size):
        sink = pa.BufferOutputStream()
        table = table.combine_chunks()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        digest.update(_framed(sink.getvalue().to_pybytes()))


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
    digest.update(struct.pack("<Q", n_rows))
    for record_id in ids:
        digest.update(_framed(str(record_id).encode("utf-8")))
    for name in sorted(columns):
        values = list(columns[name])
        if len(values) != n_rows:
            raise ValueError(f"column {name!r} has {len(values)} values for {n_rows} ids")
        digest.update(b"column:" + _framed(name.encode("utf-8")))
        for index, item in enumerate(values):
            digest.update(_framed(_item_bytes(item, index)))
    return digest.hexdigest()[:FINGERPRINT_CHARS]
