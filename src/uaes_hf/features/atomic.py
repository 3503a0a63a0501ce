"""Folders that appear whole, are replaced atomically, and are computed by one process at a time.

Every cached result (a feature-store entry, a finished pipeline stage) is built in a unique
temporary folder next to its final place and moved there by :func:`replace_directory`:

* if nothing is there, one ``rename``;
* if a folder is there, an atomic exchange (Linux ``renameat2(RENAME_EXCHANGE)``), so the
  final path always names a complete folder; the old one is then deleted. A reader that has
  a file of the old folder open keeps reading it (POSIX unlink semantics); a reader that opens
  a path afterwards gets the new file. Where the exchange is not available, the old folder is
  renamed aside first (a moment with no folder at the path, never a half-written one).

:func:`file_lock` is an advisory ``flock`` on a small lock file: two processes that would
compute the same result take turns, and the second finds the result of the first. The
kernel releases it when its process dies, even by ``kill -9``, so a crash never leaves a
stale lock.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> root = Path(tempfile.mkdtemp())
    >>> for text in ("old", "new"):
    ...     tmp = unique_temp_dir(root / "entry")
    ...     _ = (tmp / "value.txt").write_text(text)
    ...     replace_directory(tmp, root / "entry")
    >>> (root / "entry" / "value.txt").read_text(), sorted(p.name for p in root.iterdir())
    ('new', ['entry'])
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_TEMP_MARK = ".tmp-"
_ASIDE_MARK = ".old-"


def unique_temp_dir(target: Path) -> Path:
    """A new, empty folder next to ``target`` with a name no other process uses.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> target = Path(tempfile.mkdtemp()) / "x"
        >>> unique_temp_dir(target) != unique_temp_dir(target)
        True
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}{_TEMP_MARK}", dir=target.parent))


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False where that is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
        return False  # the filesystem or kernel cannot exchange: use the fallback
    raise OSError(code, f"cannot exchange {a} and {b}: {os.strerror(code)}")


def replace_directory(new: Path, target: Path) -> None:
    """Move the finished folder ``new`` to ``target``, replacing a folder there atomically.

    ``new`` must be on the same filesystem (use :func:`unique_temp_dir`). The previous
    ``target``, if any, is deleted after the swap, never before.
    """
    new, target = Path(new), Path(target)
    for _ in range(100):  # another process may move a folder in between; try again
        try:
            os.rename(new, target)  # nothing there (or an empty folder): done
            return
        except OSError as err:
            if err.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR):
                raise
        if _exchange(new, target):
            shutil.rmtree(new, ignore_errors=True)  # ``new`` now names the old folder
            return
        aside = target.parent / f".{target.name}{_ASIDE_MARK}{uuid.uuid4().hex}"
        try:
            os.rename(target, aside)
        except FileNotFoundError:
            continue
        try:
            os.rename(new, target)
        finally:
            shutil.rmtree(aside, ignore_errors=True)
        return
    raise OSError(f"could not move {new} to {target}: other processes keep replacing it")


def remove_leftovers(target: Path) -> list[Path]:
    """Delete temp and set-aside folders of ``target`` left by killed processes.

    Call it only while holding :func:`file_lock` for ``target`` (no live process of this
    package then writes one). Returns what was removed.
    """
    target = Path(target)
    removed = []
    if not target.parent.is_dir():
        return removed
    prefixes = tuple(f".{target.name}{mark}" for mark in (_TEMP_MARK, _ASIDE_MARK))
    for path in target.parent.iterdir():
        if path.name.startswith(prefixes) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def lock_path(target: Path) -> Path:
    """The lock file of ``target``: a hidden sibling ``.<name>.lock``."""
    target = Path(target)
    return target.parent / f".{target.name}.lock"


@contextlib.contextmanager
def file_lock(target: Path) -> Iterator[bool]:
    """Hold the exclusive lock of ``target`` (blocking); yields whether a lock is held.

    Without ``fcntl`` (Windows) or on a filesystem without ``flock`` it yields False and
    does not lock: results stay correct (atomic replacement), only work may be repeated.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> with file_lock(Path(tempfile.mkdtemp()) / "entry") as held:
        ...     held
        True
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield False
        return
    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+b")  # noqa: SIM115 - held for the whole block
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()
