"""Content-addressed artifacts of the retrieval study (features, trained projections, ...).

An artifact lives at ``<root>/<kind>/<key>/``, where ``key`` hashes everything that changes
its numbers: the inputs (their own keys or content hashes), every option and the source code
of the modules that compute it (:func:`code_fingerprint`). Writes go to a temporary sibling
that is renamed into place, so a kill -9 at any line leaves either the old state or the new
one; two runs computing the same key at once write the same bytes, and the last rename wins.

Example:
    >>> import tempfile
    >>> cache = ArtifactCache(tempfile.mkdtemp())
    >>> key = stable_hash({"n": 3, "model": "m"})
    >>> cache.load_arrays("demo", key) is None
    True
    >>> import numpy as np
    >>> _ = cache.save_arrays("demo", key, {"x": np.arange(3)}, {"note": "hi"})
    >>> cache.load_arrays("demo", key)["x"].tolist(), cache.load_meta("demo", key)["note"]
    ([0, 1, 2], 'hi')
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

_ARRAYS = "arrays.npz"
_META = "meta.json"


def stable_hash(value: Any, length: int = 20) -> str:
    """Hex digest of ``value`` as canonical JSON (sorted keys); tuples hash like lists.

    Example:
        >>> stable_hash({"b": 1, "a": [1, 2]}) == stable_hash({"a": (1, 2), "b": 1})
        True
    """
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=_json_default)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()
    raise TypeError(f"cannot hash a {type(value).__name__} in a cache key")


def code_fingerprint(modules: Sequence[str]) -> str:
    """Hash of the source files of ``modules`` (dotted names): a code change is a new key.

    Example:
        >>> len(code_fingerprint(["uaes_hf.retrieval.cache"]))
        16
    """
    digest = hashlib.sha256()
    for name in sorted(set(modules)):
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin or not Path(spec.origin).is_file():
            raise ValueError(f"cannot fingerprint module {name!r}: source not found")
        digest.update(name.encode())
        digest.update(Path(spec.origin).read_bytes())
    return digest.hexdigest()[:16]


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a fsynced temporary file and an atomic rename.

    Example:
        >>> import tempfile, pathlib
        >>> p = atomic_write_bytes(pathlib.Path(tempfile.mkdtemp()) / "a.txt", b"ok")
        >>> p.read_bytes()
        b'ok'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some file systems do not allow opening a directory
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ArtifactCache:
    """Arrays (``.npz``) and JSON metadata under ``root/kind/key``; see the module doc."""

    def __init__(self, root: str | Path | None = None) -> None:
        if root is None:
            from uaes_hf.paths import uaes_home

            root = uaes_home() / "retrieval"
        self.root = Path(root)

    def path(self, kind: str, key: str) -> Path:
        """Folder of one artifact (it may not exist)."""
        for name, value in (("kind", kind), ("key", key)):
            if not value or "/" in value or value.startswith("."):
                raise ValueError(f"artifact {name} must be a plain non-empty name, got {value!r}")
        return self.root / kind / key

    def exists(self, kind: str, key: str) -> bool:
        """Whether a complete artifact is stored (its metadata is written last)."""
        return (self.path(kind, key) / _META).is_file()

    def save_arrays(
        self,
        kind: str,
        key: str,
        arrays: Mapping[str, Any],
        meta: Mapping[str, Any] | None = None,
    ) -> Path:
        """Store ``arrays`` and ``meta`` as one artifact (atomically, folder by folder)."""
        target = self.path(kind, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=target.parent))
        try:
            with (scratch / _ARRAYS).open("wb") as handle:
                np.savez(handle, **{name: np.asarray(v) for name, v in arrays.items()})
                handle.flush()
                os.fsync(handle.fileno())
            text = json.dumps(dict(meta or {}), indent=2, default=_json_default)
            atomic_write_bytes(scratch / _META, text.encode("utf-8"))
            if target.exists():  # an identical artifact written by a concurrent run
                shutil.rmtree(scratch)
                return target
            try:
                os.replace(scratch, target)
            except OSError:  # lost a race to a concurrent writer of the same key
                shutil.rmtree(scratch, ignore_errors=True)
            _fsync_dir(target.parent)
        finally:
            if scratch.exists():
                shutil.rmtree(scratch, ignore_errors=True)
        return target

    def load_arrays(self, kind: str, key: str) -> dict[str, np.ndarray] | None:
        """The stored arrays, or ``None`` when the artifact is missing."""
        if not self.exists(kind, key):
            return None
        with np.load(self.path(kind, key) / _ARRAYS, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}

    def load_meta(self, kind: str, key: str) -> dict[str, Any] | None:
        """The stored metadata, or ``None`` when the artifact is missing."""
        if not self.exists(kind, key):
            return None
        return json.loads((self.path(kind, key) / _META).read_text(encoding="utf-8"))
