"""Where the items to embed come from: a dataset repo folder, a Hub id, or Python lists.

A dataset repo on disk (``README.md`` with ``configs:`` + ``data/<config>/*.parquet``) is
read with ``datasets.load_dataset(folder, config)``; a Hub id with
``load_dataset(repo, config, revision=...)``; a single parquet/JSON/CSV file with the
matching builder. Text models read ``--column`` (default ``text``), vision models the
``image`` column.

Example:
    >>> items = ItemColumn(["a", "b", "c"])
    >>> items.slice(1, 3)
    ['b', 'c']
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

_FILE_BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}


def read_dataset(
    dataset: str,
    config: str | None = None,
    split: str = "train",
    revision: str | None = None,
    limit: int | None = None,
) -> Any:
    """Load one split of a dataset as a ``datasets.Dataset`` (first ``limit`` rows if given).

    Raises:
        ValueError: unknown split, or ``limit`` < 1.
    """
    from datasets import load_dataset

    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    path = Path(dataset).expanduser()
    if path.is_file():
        builder = _FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise ValueError(f"cannot read {path}: expected one of {sorted(_FILE_BUILDERS)}")
        loaded = load_dataset(builder, data_files={split: str(path)}, split=split)
    else:
        target = str(path) if path.is_dir() else dataset
        # datasets 5.2 caches a local repo folder under a key that ignores the folder's
        # location and its files' contents, so another folder (or an edited one) with the
        # same README would return stale rows; key the cache on the files themselves.
        cache = str(_local_cache_dir(path)) if path.is_dir() else None
        try:
            loaded = load_dataset(target, config, split=split, revision=revision, cache_dir=cache)
        except ValueError as err:
            if "split" in str(err).lower():
                raise ValueError(f"{dataset} (config {config!r}) has no split {split!r}") from err
            raise
    if limit is not None and limit < len(loaded):
        loaded = loaded.select(range(limit))
    return loaded


def _local_cache_dir(folder: Path) -> Path:
    """A datasets cache folder specific to this folder's path and its files' size/mtime."""
    import hashlib

    from uaes_hf.paths import cache_dir

    digest = hashlib.sha256(str(folder.resolve()).encode())
    for file in sorted(p for p in folder.rglob("*") if p.is_file() and ".git" not in p.parts):
        stat = file.stat()
        digest.update(f"{file.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return cache_dir("datasets", digest.hexdigest()[:20])


def dataset_key(dataset: str, config: str | None, split: str | None) -> str:
    """The store name of one split of one config of a dataset.

    Example:
        >>> dataset_key("path/to/poems_repo", "aligned_5", "train")
        'path/to/poems_repo@aligned_5:train'
    """
    key = dataset.rstrip("/")
    if config:
        key += f"@{config}"
    if split:
        key += f":{split}"
    return key


class ItemColumn:
    """A read-only, sliceable view of the items to embed (a list or a dataset column).

    Slicing a ``datasets.Dataset`` column decodes only that slice (images stay on disk).
    """

    def __init__(self, items: Any, column: str | None = None) -> None:
        if column is not None:
            names = getattr(items, "column_names", None)
            if names is None:
                raise ValueError("column= is only for datasets.Dataset inputs")
            if column not in names:
                raise ValueError(f"dataset has no column {column!r}; it has {names}")
        elif isinstance(items, (str, bytes)):
            raise ValueError("items must be a sequence (of texts or images), not one string")
        self.items = items
        self.column = column

    def __len__(self) -> int:
        return len(self.items)

    def slice(self, start: int, end: int) -> list[Any]:
        if self.column is not None:
            return list(self.items[start:end][self.column])
        return list(self.items[start:end])

    def is_dataset(self) -> bool:
        return self.column is not None


def as_sequence(items: Sequence[Any] | Any) -> list[Any]:
    """A plain list from a list, tuple, numpy array or iterable of items."""
    if isinstance(items, (str, bytes)):
        raise ValueError("items must be a sequence, not a single string")
    return list(items)
