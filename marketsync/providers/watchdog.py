"""A request's total deadline, kept on the caller's own thread.

A per-read timeout never fires for a server that drips a byte every half second, so a request
with a total deadline is *watched*: :data:`WATCHDOG`, one daemon thread for the process, shuts the
request's socket down when its time is up, which ends the blocked read or write at once with an
error the caller reads as its deadline (:attr:`Watch.expired`). Watching a request costs a heap
push and no thread switch: the request itself never leaves its thread (handing every request to a
worker thread cost a backfill about a tenth of its CPU in thread switches).

The socket is learned from the connection the request uses: :class:`WatchedAdapter` makes
urllib3's connections tell the watch of the calling thread the socket they connect or send on
(and set their sockets' timeouts only when they change: :class:`_SteadySocket`).
"""

from __future__ import annotations

import heapq
import itertools
import socket
import ssl
import threading
import time
from typing import Any, Callable, Iterator
from contextlib import contextmanager

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


class Watch:
    """One request's deadline: the socket it uses, once known, and whether its time ran out."""

    __slots__ = ("ends", "sock", "expired", "done")

    def __init__(self, ends: float):
        self.ends = ends
        self.sock: socket.socket | None = None
        self.expired = False
        self.done = False


class Watchdog:
    """Ends the requests whose time is up (see the module's text)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._sleeps_until = float("inf")  # the deadline the watchdog's thread waits for
        self._local = threading.local()

    @contextmanager
    def watching(self, seconds: float) -> Iterator[Watch]:
        """The calling thread's requests in this block are ended ``seconds`` from now."""
        watch = Watch(self._clock() + seconds)
        with self._lock:
            while self._heap and self._heap[0][2].done:  # requests mostly end in the order they began
                heapq.heappop(self._heap)
            heapq.heappush(self._heap, (watch.ends, next(self._order), watch))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="http-watchdog", daemon=True)
                self._thread.start()
            elif watch.ends < self._sleeps_until:  # rare: requests' deadlines mostly come in order
                self._wake.notify()
        self._local.watch = watch
        try:
            yield watch
        finally:
            self._local.watch = None
            with self._lock:
                watch.done, watch.sock = True, None  # never shut down after this: the socket may be pooled

    def attach(self, sock: socket.socket | None) -> None:
        """The socket the calling thread's watched request connected or sends on (connections call this)."""
        watch = getattr(self._local, "watch", None)
        if watch is None or sock is None:
            return
        with self._lock:
            if watch.expired:
                _shut(sock)
                raise TimeoutError("the request deadline passed while connecting")
            watch.sock = sock

    def _run(self) -> None:
        with self._lock:
            while True:
                self.expire_due()
                now = self._clock()
                self._sleeps_until = self._heap[0][0] if self._heap else float("inf")
                self._wake.wait(self._sleeps_until - now if self._heap else None)

    def expire_due(self) -> None:
        """End the watches whose time is up (the caller holds the lock: the watchdog's thread)."""
        now = self._clock()
        while self._heap and (self._heap[0][2].done or self._heap[0][0] <= now):
            watch = heapq.heappop(self._heap)[2]
            if not watch.done:
                watch.expired = True
                if watch.sock is not None:
                    _shut(watch.sock)


def _shut(sock: socket.socket) -> None:
    """Shut the socket's file descriptor down (a TLS socket's too, under its TLS layer): a read or
    write blocked on it in another thread returns at once."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed or never connected: nothing is blocked on it


WATCHDOG = Watchdog()


class _SteadySocket(socket.socket):
    """A socket whose timeout is set only when it changes: urllib3 sets it twice a request, and
    each time is a system call during which the interpreter is handed to another thread (on a
    fast link, a few percent of a backfill's CPU in thread switches). Same behaviour otherwise."""

    __slots__ = ()

    def settimeout(self, value: float | None) -> None:
        if value != self.gettimeout():
            super().settimeout(value)


class _SteadySSLSocket(ssl.SSLSocket):
    def settimeout(self, value: float | None) -> None:
        if value != self.gettimeout():
            super().settimeout(value)


_STEADY: dict[type, type] = {socket.socket: _SteadySocket, ssl.SSLSocket: _SteadySSLSocket}


def _steady(sock: socket.socket | None) -> None:
    steady = _STEADY.get(type(sock))
    if steady is not None:
        sock.__class__ = steady  # the same object (same layout), its settimeout skipping no-ops


class _WatchedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        WATCHDOG.attach(sock)
        _steady(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        WATCHDOG.attach(self.sock)  # a kept-alive connection: connected before this request
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        WATCHDOG.attach(sock)  # the TCP socket: shutting it down also ends a TLS handshake on it
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        WATCHDOG.attach(self.sock)
        _steady(self.sock)  # the TLS socket, made when the connection was
        super().request(*args, **kwargs)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class WatchedAdapter(HTTPAdapter):
    """requests' adapter whose connections, direct or through a proxy, tell :data:`WATCHDOG`
    their sockets."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager
