"""A hard wall-clock deadline for every HTTP request of the chat client.

HTTP libraries time out per operation: a read that waits longer than the read timeout fails,
but a server that trickles one byte a second keeps every read short and never times out.
:class:`DeadlineBackend` wraps the network backend of the ``openai`` package's HTTP stack so
that connecting, sending, and every read of the status line, the headers and the body share
ONE deadline: each operation may wait only for what is left of it, and once it has passed
the next operation fails with the library's own timeout error (which the client classifies
as ``timeout``). The deadline is per thread, so the worker threads of one client, which
share a connection pool, each keep their own.

DNS resolution happens inside the standard library's ``socket.create_connection`` and is not
bounded by it; use an IP address or a resolver that answers.

Example:
    >>> backend = DeadlineBackend()
    >>> with backend.deadline(5.0):
    ...     0 < backend.remaining(None) <= 5.0
    True
    >>> backend.remaining(2.0) == 2.0  # no deadline set: the operation's own timeout
    True
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

try:  # the openai package's HTTP stack (httpx2/httpcore2 for openai >= 3)
    import httpcore2 as httpcore
    import httpx2 as httpx
except ImportError:  # pragma: no cover - older openai releases use httpx/httpcore
    import httpcore  # type: ignore[no-redef]
    import httpx  # type: ignore[no-redef]


class DeadlineBackend(httpcore.NetworkBackend):  # type: ignore[misc]
    """A network backend whose streams stop at the calling thread's deadline."""

    def __init__(self, inner: Any = None) -> None:
        self._inner = inner if inner is not None else httpcore.SyncBackend()
        self._local = threading.local()

    @contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """Every network operation of this thread inside the block ends ``seconds`` from now."""
        previous = getattr(self._local, "at", None)
        self._local.at = time.monotonic() + max(0.0, seconds)
        try:
            yield
        finally:
            self._local.at = previous

    def remaining(
        self, timeout: float | None, error: type[Exception] | None = None
    ) -> float | None:
        """What an operation may wait: its own ``timeout``, cut to what is left of the deadline.

        Raises ``error`` (a timeout class) when the deadline has already passed.
        """
        at = getattr(self._local, "at", None)
        if at is None:
            return timeout
        left = at - time.monotonic()
        if left <= 0:
            raise (error or httpcore.ReadTimeout)("the request's total deadline has passed")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> Any:
        wait = self.remaining(timeout, httpcore.ConnectTimeout)
        stream = self._inner.connect_tcp(host, port, wait, local_address, socket_options)
        return _DeadlineStream(stream, self)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> Any:
        wait = self.remaining(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_unix_socket(path, wait, socket_options), self)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):  # type: ignore[misc]
    def __init__(self, inner: Any, backend: DeadlineBackend) -> None:
        self._inner = inner
        self._backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        wait = self._backend.remaining(timeout, httpcore.ReadTimeout)
        return bytes(self._inner.read(max_bytes, wait))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._backend.remaining(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> Any:
        wait = self._backend.remaining(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._inner.start_tls(ssl_context, server_hostname, wait), self._backend
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


def deadline_http_client(backend: DeadlineBackend, timeout: float) -> Any:
    """The ``openai`` package's default HTTP client, with ``backend`` under every pool.

    Example:
        >>> client = deadline_http_client(DeadlineBackend(), 10.0)
        >>> client.close()
    """
    import openai

    client = openai.DefaultHttpxClient(timeout=httpx.Timeout(timeout))
    pools = [getattr(t, "_pool", None) for t in [client._transport, *client._mounts.values()]]
    pools = [p for p in pools if p is not None]
    if not pools or not all(hasattr(p, "_network_backend") for p in pools):
        client.close()
        raise RuntimeError(
            "this version of the HTTP stack has no pluggable network backend; the chat client "
            "cannot enforce its request deadline (pin the openai version in setup.cfg)"
        )
    for pool in pools:
        pool._network_backend = backend
    return client
