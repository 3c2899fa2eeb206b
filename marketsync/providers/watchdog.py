"""A request's read timeout and total deadline, kept on the caller's own thread.

A per-read timeout never fires for a server that drips a byte every half second, so a request
with a total deadline is *watched*: :data:`WATCHDOG`, one daemon thread for the process, shuts the
request's socket down when its time is up, which ends the blocked read or write at once with an
error the caller reads as its deadline (:attr:`Watch.expired`). The watchdog keeps the request's
read timeout too (any one read or write that waits longer: :attr:`Watch.timed_out`), so its
socket can block plainly: a socket with a timeout polls before every read and write, and every
such system call hands the interpreter to another thread -- on a fast link a backfill's fetching
threads spent a fifth of their CPU in those switches. Watching costs no thread switch: the
request never leaves its thread, and the watchdog looks at the live requests a few times a
second while there are any (``tick``), then sleeps until the next one.

The socket is learned from the connection the request uses: :class:`WatchedAdapter` makes
urllib3's connections tell the watch of the calling thread the socket they connect or send on,
and their sockets (:class:`_WatchedSocket`) report each read and write to it.
"""

from __future__ import annotations

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
    """One request: its deadline, the socket it uses once known, its read timeout once its
    connection sets one, since when it waits in a read or write, and whether it was ended."""

    __slots__ = ("ends", "sock", "read_timeout", "waiting_since", "expired", "timed_out", "done")

    def __init__(self, ends: float):
        self.ends = ends
        self.sock: socket.socket | None = None
        self.read_timeout: float | None = None
        self.waiting_since: float | None = None
        self.expired = False
        self.timed_out = False  # ended by its read timeout (retryable), not by its deadline
        self.done = False


class Watchdog:
    """Ends the requests whose time is up (see the module's text)."""

    LINGER = 1.0  # seconds without a request before the watchdog's thread sleeps until the next

    def __init__(self, clock: Callable[[], float] = time.monotonic, tick: float = 0.05):
        self._clock, self.tick = clock, tick
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._live: set[Watch] = set()
        self._thread: threading.Thread | None = None
        self._asleep = False
        self._local = threading.local()

    def current(self) -> Watch | None:
        """The calling thread's watched request, if it is in one."""
        return getattr(self._local, "watch", None)

    @contextmanager
    def watching(self, seconds: float) -> Iterator[Watch]:
        """The calling thread's request in this block is ended ``seconds`` from now at the latest."""
        watch = Watch(self._clock() + seconds)
        with self._lock:
            self._live.add(watch)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="http-watchdog", daemon=True)
                self._thread.start()
            elif self._asleep:  # only after a second without requests
                self._wake.notify()
        self._local.watch = watch
        try:
            yield watch
        finally:
            self._local.watch = None
            with self._lock:
                watch.done, watch.sock = True, None  # never shut down after this: the socket may be pooled
                self._live.discard(watch)

    def attach(self, sock: socket.socket | None) -> None:
        """The socket the calling thread's watched request connected or sends on (connections call this)."""
        watch = self.current()
        if watch is None or sock is None:
            return
        with self._lock:
            if watch.expired:
                _shut(sock)
                raise TimeoutError("the request deadline passed while connecting")
            watch.sock = sock

    def _run(self) -> None:
        with self._lock:
            busy = self._clock()
            while True:
                if self._live:
                    busy = self._clock()
                    self.expire_due()
                elif self._clock() - busy >= self.LINGER:
                    self._asleep = True
                    self._wake.wait()
                    self._asleep = False
                    busy = self._clock()
                    continue
                self._wake.wait(self.tick)

    def expire_due(self) -> None:
        """End the watched requests past their deadline, or waiting in one read or write longer than
        their read timeout (the caller holds the lock: the watchdog's thread)."""
        now = self._clock()
        for watch in [w for w in self._live if not w.done]:
            waited = watch.waiting_since
            timed_out = (waited is not None and watch.read_timeout is not None
                         and now - waited >= watch.read_timeout)
            if now < watch.ends and not timed_out:
                continue
            watch.expired, watch.timed_out = True, timed_out and now < watch.ends
            self._live.discard(watch)
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


class _Watching:
    """Sockets (plain or TLS) that, while their thread's request is watched, block plainly and leave
    the read timeout to the watchdog (each read and write says when it starts waiting and when it
    is done); otherwise ordinary sockets, whose timeout is set only when it changes."""

    __slots__ = ()

    def settimeout(self, value: float | None) -> None:
        value = _watched_timeout(value)
        if value != self.gettimeout():  # type: ignore[attr-defined]
            super().settimeout(value)  # type: ignore[misc]

    def recv_into(self, *args: Any) -> int:
        return _waiting(super().recv_into, *args)  # type: ignore[misc]

    def recv(self, *args: Any) -> bytes:
        return _waiting(super().recv, *args)  # type: ignore[misc]

    def sendall(self, *args: Any) -> None:
        return _waiting(super().sendall, *args)  # type: ignore[misc]

    def send(self, *args: Any) -> int:
        return _waiting(super().send, *args)  # type: ignore[misc]


class _WatchedSocket(_Watching, socket.socket):
    __slots__ = ()


class _WatchedSSLSocket(_Watching, ssl.SSLSocket):
    pass


def _watched_timeout(value: float | None) -> float | None:
    """The timeout the socket itself gets: none while its request is watched (the watchdog keeps it)."""
    watch = WATCHDOG.current()
    if watch is None:
        return value
    watch.read_timeout = value
    return None


def _waiting(call: Callable[..., Any], *args: Any) -> Any:
    """``call(*args)``, a read or write that may wait, timed by the watchdog if the request is watched."""
    watch = WATCHDOG.current()
    if watch is None:
        return call(*args)
    watch.waiting_since = time.monotonic()
    try:
        return call(*args)
    finally:
        watch.waiting_since = None


_WATCHED: dict[type, type] = {socket.socket: _WatchedSocket, ssl.SSLSocket: _WatchedSSLSocket}


def _watched(sock: socket.socket | None) -> None:
    watched = _WATCHED.get(type(sock))
    if watched is not None:
        sock.__class__ = watched  # the same object (same layout), now reporting to the watchdog


class _WatchedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        WATCHDOG.attach(sock)
        _watched(sock)
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
        _watched(self.sock)  # the TLS socket, made when the connection was
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
