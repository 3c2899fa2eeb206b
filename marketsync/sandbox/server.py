"""The HTTP plumbing: two loopback servers, request recording and fault injection.

A :class:`Sandbox` owns one :class:`BrickLinkStore` and one :class:`BrickOwlStore` and serves
each on its own port with ``http.server.ThreadingHTTPServer`` (daemon threads, HTTP/1.1
keep-alive). Every request is counted in ``calls`` and logged in ``requests`` before anything
else happens; then an injected fault (if one matches) is played on the wire; otherwise the
store answers.

Faults on write endpoints (``PUT /inventories/{id}``, ``POST /inventories``, ``POST /inventory/update``,
``POST /inventory/create``, ``POST /bulk/batch``, ``POST /order/notify``) keep a strict meaning: every ordinary fault (``"500"``, ``"reset"``,
``"html503"``, ``"429"``, ``"hang"``, ``"malformed"``, ``"not_json"``, ``"auth_in_200"``,
``"ip_mismatch"``, ``"error_string"``) is played *instead of* the store, so the change is NOT
applied (``"malformed"`` truncates the answer the store would have given, computed without
applying it; ``"hang"`` on a write resets the connection after ``seconds``). The ``applied_*``
faults let the store apply the change and then lose the answer: ``"applied_reset"`` (connection
reset, no byte of response), ``"applied_500"`` (the marketplace's 500 answer), ``"applied_hang"``
(no answer for ``seconds``, then a reset). ``applied_*`` faults only exist for write endpoints;
injected on ``"*"`` they wait for the next write and let reads pass.

``"late"`` (write endpoints only, like ``applied_*``) holds the write back: nothing is applied now
and the connection is dropped without an answer; the store applies it when the test calls
``store.apply_late_writes()`` (or ``Sandbox.apply_late_writes()``) -- a write that lands after the
client gave up on it and perhaps read the lot back.

``"drip"`` is the store's real answer, sent one byte every ``interval`` seconds (default 0.5):
the body only (status line and headers at once), or everything from the status line on with
``headers_too=True``. A read timeout never fires on it; only a total deadline ends it. It stops
(the connection is reset) when the sandbox stops. On a write endpoint the change IS applied:
the answer is real, only slow.

``latency`` (``Sandbox.latency`` or each store's) adds seconds to every answer, before anything
else is played. Outgoing notifications (``marketsync/sandbox/notify.py``) are delivered on each
store's own thread; ``Sandbox.wait_notifications`` waits for them and ``stop()`` abandons those
still queued.

Quirks (``Sandbox(quirks=True)``, or a collection of names from :data:`QUIRKS`, or the
``quirks`` property at any time) make both stores send the shapes of real captured payloads
(``shared/marketplace-apis.md``, "Lessons from the field"); off by default.
"""

from __future__ import annotations

import collections
import email.utils
import functools
import socket
import struct
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable, cast
from urllib.parse import parse_qsl, urlsplit

from marketsync.sandbox.bricklink import QUIRKS as BRICKLINK_QUIRKS
from marketsync.sandbox.bricklink import BrickLinkStore
from marketsync.sandbox.brickowl import QUIRKS as BRICKOWL_QUIRKS
from marketsync.sandbox.brickowl import BrickOwlStore
from marketsync.sandbox.wire import (
    HTML_TYPE,
    JSON_TYPE,
    Request,
    Response,
    Route,
    html_page,
    html_response,
)

PROVIDERS = ("bricklink", "brickowl")
# faults for any endpoint (on a write endpoint: the change is NOT applied)
FAULTS = frozenset(
    {"500", "html503", "429", "reset", "hang", "malformed", "auth_in_200", "ip_mismatch", "error_string", "not_json"}
)
# faults of write endpoints only: the change IS applied, then the answer is lost
APPLIED_FAULTS = frozenset({"applied_reset", "applied_500", "applied_hang"})
# faults of write endpoints only: the change is NOT applied now, the answer is lost, and the store
# applies it when apply_late_writes() is called
LATE_FAULTS = frozenset({"late"})
# faults for any endpoint that play the store's real answer slowly (on a write: applied)
SLOW_FAULTS = frozenset({"drip"})
WRITE_ONLY_FAULTS = APPLIED_FAULTS | LATE_FAULTS
_ONLY_FOR = {"ip_mismatch": "bricklink", "error_string": "brickowl"}
DRIP_INTERVAL = 0.5  # seconds between two bytes of a "drip" answer

# every quirk by name -> (the marketplace that has it, what it does)
QUIRKS: dict[str, tuple[str, str]] = {
    **{name: ("bricklink", text) for name, text in BRICKLINK_QUIRKS.items()},
    **{name: ("brickowl", text) for name, text in BRICKOWL_QUIRKS.items()},
}


def resolve_quirks(value: bool | str | Iterable[str] | None) -> frozenset[str]:
    """``True``: every quirk; ``False``/``None``: none; a name or names from :data:`QUIRKS`."""
    if value is True:
        return frozenset(QUIRKS)
    if not value:
        return frozenset()
    names = frozenset([value] if isinstance(value, str) else value)
    unknown = sorted(names - QUIRKS.keys())
    if unknown:
        raise ValueError(f"unknown quirk(s) {', '.join(map(repr, unknown))}; expected some of {sorted(QUIRKS)}")
    return names


@dataclass
class Fault:
    provider: str
    endpoint: str  # route template ("GET /orders") or "*"
    kind: str
    remaining: int | None  # None: forever
    opts: dict[str, Any] = field(default_factory=dict)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: "Sandbox", store: Any):
        self.sandbox = sandbox
        self.store = store
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _SandboxRequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Wake handler threads blocked on idle keep-alive connections."""
        with self.connections_lock:
            conns = list(self.connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, ValueError)):  # client went away, socket reset, stop()...
            return
        super().handle_error(request, client_address)


class _Headers(dict[str, str]):
    """A request's headers by lower-case name (the first of a repeated one), read like http.server's."""

    def get(self, name: str, default: Any = None) -> Any:
        return dict.get(self, name.lower(), default)


_MAX_HEADERS, _MAX_LINE = 100, 65536  # http.client's limits


class _SandboxRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms delayed-ACK stalls
    server: _Server
    raw_requestline: bytes

    def version_string(self) -> str:
        return "nginx"

    def parse_request(self) -> bool:
        """http.server's, but the headers of a plain HTTP/1.1 request are read straight into a map:
        http.server hands them to email.parser, a quarter of the sandbox's CPU per request. Any other
        request line goes to http.server's own parsing, before a header line is read."""
        words = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n").split()
        if len(words) != 3 or words[2] != "HTTP/1.1":
            return super().parse_request()
        self.requestline = " ".join(words)
        self.command, self.path, self.request_version = words
        if self.path.startswith("//"):
            self.path = "/" + self.path.lstrip("/")  # as http.server does (gh-87389)
        headers = _Headers()
        for _ in range(_MAX_HEADERS + 1):
            line = self.rfile.readline(_MAX_LINE + 1)
            if len(line) > _MAX_LINE:
                self.send_error(431, "Line too long")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            name, sep, value = str(line, "iso-8859-1").partition(":")
            if sep:
                headers.setdefault(name.strip().lower(), value.strip())
        else:
            self.send_error(431, "Too many headers")
            return False
        self.headers = headers  # type: ignore[assignment]
        self.close_connection = headers.get("Connection", "").lower() == "close"
        if headers.get("Expect", "").lower() == "100-continue":
            return self.handle_expect_100()
        return True

    def _dispatch(self) -> None:
        self.server.sandbox._dispatch(self, self.server.store)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _dispatch

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass


class Sandbox:
    """Both marketplaces on loopback. See the package docstring for the full API."""

    def __init__(self, demo: bool = False, seed: int = 1, quirks: bool | str | Iterable[str] = False):
        self.seed = seed
        self.bricklink = BrickLinkStore(seed)
        self.brickowl = BrickOwlStore(seed)
        self.quirks = quirks  # the setter resolves True / False / names
        self.calls: collections.Counter[tuple[str, str]] = collections.Counter()
        self.requests: list[tuple[str, str, str, dict[str, str]]] = []
        # every write request's parsed body: (provider, "PUT /inventories/{id}", path, body)
        # (BrickLink: the JSON body, or None when it was not JSON; BrickOwl: the form fields)
        self.writes: list[tuple[str, str, str, Any]] = []
        self.errors: list[str] = []  # tracebacks of sandbox bugs (answered as 500)
        self.bricklink_url: str | None = None
        self.brickowl_url: str | None = None
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._stopping = threading.Event()
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        if demo:
            from marketsync.sandbox.demo import load_demo

            load_demo(self, seed)

    # ------------------------------------------------------------------ lifecycle
    def start(self, bricklink_port: int = 0, brickowl_port: int = 0, host: str = "127.0.0.1") -> "Sandbox":
        if self._servers:
            return self
        self._stopping.clear()
        try:
            for store, port in ((self.bricklink, bricklink_port), (self.brickowl, brickowl_port)):
                server = _Server((host, port), self, store)
                self._servers.append(server)
                thread = threading.Thread(
                    target=server.serve_forever, kwargs={"poll_interval": 0.02},
                    name=f"sandbox-{store.provider}", daemon=True,
                )  # fmt: skip
                thread.start()
                self._threads.append(thread)
        except BaseException:
            self.stop()
            raise
        bl_port, bo_port = (s.server_address[1] for s in self._servers)
        self.bricklink_url = f"http://{host}:{bl_port}{self.bricklink.prefix}"
        self.brickowl_url = f"http://{host}:{bo_port}{self.brickowl.prefix}"
        return self

    def stop(self) -> None:
        """Stop both servers; hung handlers are woken and their connections reset. Outgoing
        notifications still queued are not sent (logged so in ``notify_log``)."""
        self._stopping.set()
        for store in (self.bricklink, self.brickowl):
            store.close_notifications()
        for server in self._servers:
            server.shutdown()
            server.drop_connections()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=2)
        self._servers.clear()
        self._threads.clear()

    @property
    def running(self) -> bool:
        return bool(self._servers)

    @property
    def latency(self) -> float:
        """Seconds added to every answer of both marketplaces (default 0: a benchmark sets it to
        model a real network; each store's own ``latency`` can differ)."""
        return max(self.bricklink.latency, self.brickowl.latency)

    @latency.setter
    def latency(self, seconds: float) -> None:
        value = float(seconds)
        if value < 0:
            raise ValueError(f"latency is a number of seconds >= 0, not {seconds!r}")
        self.bricklink.latency = self.brickowl.latency = value

    def wait_notifications(self, timeout: float = 5.0) -> bool:
        """Wait until every outgoing notification queued so far (BrickLink callbacks, BrickOwl
        order notifies) has been delivered, dropped or has failed: True, or False when ``timeout``
        seconds passed first. Tests synchronise on this, never on a sleep."""
        deadline = time.monotonic() + timeout
        return all(store.wait_notifications(max(0.0, deadline - time.monotonic()))
                   for store in (self.bricklink, self.brickowl))  # fmt: skip

    @property
    def quirks(self) -> frozenset[str]:
        """The quirks both stores play now (names from :data:`QUIRKS`)."""
        return self.bricklink.quirks | self.brickowl.quirks

    @quirks.setter
    def quirks(self, value: bool | str | Iterable[str]) -> None:
        names = resolve_quirks(value)
        self.bricklink.quirks = frozenset(n for n in names if QUIRKS[n][0] == "bricklink")
        self.brickowl.quirks = frozenset(n for n in names if QUIRKS[n][0] == "brickowl")

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def sell(self, provider: str, remote_lot_id: str, pieces: int, buyer: str = "demo-buyer") -> str:
        """A buyer places a paid order for ``pieces`` of one of the store's lots; the order's id."""
        if provider == "bricklink":
            bl = self.bricklink.get_lot(int(remote_lot_id))
            if bl is None:
                raise KeyError(f"no lot {remote_lot_id} in the BrickLink store")
            return str(self.bricklink.add_order("PAID", buyer_name=buyer, lines=[{
                "inventory_id": bl.inventory_id, "no": bl.no, "color_id": bl.color_id, "quantity": pieces,
                "remarks": bl.remarks, "new_or_used": bl.new_or_used}]))
        bo = self.brickowl.get_lot(remote_lot_id)
        if bo is None:
            raise KeyError(f"no lot {remote_lot_id} in the BrickOwl store")
        return self.brickowl.add_order("Payment Received", buyer_name=buyer, lines=[{
            "lot_id": bo.lot_id, "boid": bo.boid, "ordered_quantity": pieces, "personal_note": bo.personal_note}])

    def env(self) -> dict[str, str]:
        if self.bricklink_url is None or self.brickowl_url is None:
            raise RuntimeError("Sandbox.env() needs a started sandbox: call start() first")
        bl = self.bricklink
        return {
            "BRICKLINK_CONSUMER_KEY": bl.consumer_key,
            "BRICKLINK_CONSUMER_SECRET": bl.consumer_secret,
            "BRICKLINK_TOKEN_VALUE": bl.token_value,
            "BRICKLINK_TOKEN_SECRET": bl.token_secret,
            "BRICKOWL_API_KEY": self.brickowl.api_key,
            "BRICKLINK_API_URL": self.bricklink_url,
            "BRICKOWL_API_URL": self.brickowl_url,
        }

    # ------------------------------------------------------------------ calls and faults
    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()
            self.requests.clear()
            self.writes.clear()

    def inject(self, provider: str, endpoint: str, fault: str, times: int | None = 1, **opts: Any) -> None:
        """Queue ``fault`` for the next ``times`` requests (None: forever) to ``endpoint``.

        ``endpoint`` is a route template such as ``"GET /orders/{id}/items"``,
        ``"PUT /inventories/{id}"``, ``"POST /bulk/batch"``, or ``"*"``. Faults are consumed in
        the order they were injected. On a write endpoint an ordinary fault means the change was
        NOT applied; ``"applied_reset"`` / ``"applied_500"`` / ``"applied_hang"`` apply it and then
        lose the answer (see the module docstring); ``"late"`` applies nothing now, drops the
        connection, and the store applies the write at ``apply_late_writes()``. ``"drip"`` sends the real answer one byte every
        ``interval`` seconds (default 0.5), the body only or, with ``headers_too=True``, from the
        status line on.
        """
        if provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}; expected one of {PROVIDERS}")
        known = FAULTS | APPLIED_FAULTS | LATE_FAULTS | SLOW_FAULTS
        if fault not in known:
            raise ValueError(f"unknown fault {fault!r}; expected one of {sorted(known)}")
        if _ONLY_FOR.get(fault, provider) != provider:
            raise ValueError(f"fault {fault!r} only exists for {_ONLY_FOR[fault]}")
        routes = {r.template: r for r in self._store(provider).routes}
        if endpoint != "*" and endpoint not in routes:
            raise ValueError(f"unknown {provider} endpoint {endpoint!r}; expected '*' or one of {sorted(routes)}")
        if fault in WRITE_ONLY_FAULTS and endpoint != "*" and not routes[endpoint].write:
            writes = sorted(t for t, r in routes.items() if r.write)
            raise ValueError(f"fault {fault!r} only exists for write endpoints: {writes}")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        if fault == "drip" and float(opts.get("interval", DRIP_INTERVAL)) <= 0:
            raise ValueError("a drip's interval must be > 0 seconds")
        with self._lock:
            self._faults.append(Fault(provider, endpoint, fault, times, dict(opts)))

    def apply_late_writes(self, provider: str | None = None) -> list[Response]:
        """Apply the writes a ``"late"`` fault held back (one marketplace's, or both)."""
        providers = PROVIDERS if provider is None else (provider,)
        return [answer for name in providers for answer in self._store(name).apply_late_writes()]

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _store(self, provider: str) -> Any:
        return self.bricklink if provider == "bricklink" else self.brickowl

    def _take_fault(self, provider: str, template: str, write: bool) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind in WRITE_ONLY_FAULTS and not write:
                    continue  # an applied_* or late fault on "*" waits for the next write
                if fault.provider == provider and fault.endpoint in ("*", template):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    # ------------------------------------------------------------------ request handling
    def _dispatch(self, handler: _SandboxRequestHandler, store: Any) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        method = handler.command
        split = urlsplit(handler.path)
        path = split.path
        rel = path[len(store.prefix) :] if path.startswith(store.prefix + "/") else None
        route, params = _match(store.routes, method, rel)
        template = route.template if route else f"{method} {rel if rel is not None else path}"
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        address = cast("tuple[str, int]", handler.server.server_address)
        host = handler.headers.get("Host") or f"{address[0]}:{address[1]}"
        req = Request(method, rel or path, query, split.query, handler.headers, f"http://{host}{path}", params, body)
        write = route is not None and route.write
        with self._lock:
            self.calls[(store.provider, template)] += 1
            self.requests.append((store.provider, method, rel if rel is not None else path, query))
            if write:
                self.writes.append((store.provider, template, rel or path, store.parsed_body(req)))

        latency = float(getattr(store, "latency", 0) or 0)
        if latency > 0 and self._stopping.wait(latency):  # the latency switch: a slow network
            return _reset(handler)
        response = None
        fault = self._take_fault(store.provider, template, write)
        if fault is not None:
            kind, opts = fault.kind, fault.opts
            if kind == "reset":
                return _reset(handler)
            if kind == "hang":
                if self._stopping.wait(float(opts.get("seconds", 5))) or write:
                    return _reset(handler)  # a write that hung was never applied
            elif kind in APPLIED_FAULTS:
                self._serve(store, req, route, rel)  # the store applies the change ...
                if kind == "applied_reset":
                    return _reset(handler)  # ... and the answer is lost
                if kind == "applied_hang":
                    self._stopping.wait(float(opts.get("seconds", 5)))
                    return _reset(handler)
                response = store.fault("500", opts)
            elif kind in LATE_FAULTS:
                store.hold_late_write(functools.partial(self._serve, store, req, route, rel))
                return _reset(handler)  # nothing applied yet, no answer
            elif kind == "drip":
                response = self._serve(store, req, route, rel)
                interval = float(opts.get("interval", DRIP_INTERVAL))
                return self._drip(handler, response, interval, bool(opts.get("headers_too", False)))
            elif kind == "malformed":
                req.dry_run = write  # the answer the store would give, without applying anything
                body = self._serve(store, req, route, rel).body
                response = Response(200, body[: max(1, len(body) // 2)], JSON_TYPE)
            elif kind == "html503":
                response = html_response(503)
            elif kind == "429":
                response = html_response(429, {"Retry-After": str(opts.get("retry_after", 1))})
            elif kind == "not_json":
                response = Response(200, html_page(200, "Down for maintenance"), HTML_TYPE)
            else:
                response = store.fault(kind, opts)
        if response is None:
            response = self._serve(store, req, route, rel)
        _write(handler, response)

    def _serve(self, store: Any, req: Request, route: Route | None, rel: str | None) -> Response:
        try:
            if rel is None:
                return store.unknown_path()
            return store.handle(req, route)
        except Exception:  # a sandbox bug: answer like a real 500 and keep the traceback
            text = traceback.format_exc()
            with self._lock:
                self.errors.append(text)
            print(text, file=sys.stderr)
            return store.fault("500", {})


    def _drip(self, handler: _SandboxRequestHandler, response: Response, interval: float, headers_too: bool) -> None:
        """Send ``response`` one byte every ``interval`` seconds (the head at once unless
        ``headers_too``); reset the connection when the sandbox stops."""
        head = _head(handler, response)
        body = b"" if handler.command == "HEAD" else response.body
        slow = head + body if headers_too else body
        try:
            if not headers_too:
                handler.wfile.write(head)
            for position in range(len(slow)):
                if self._stopping.wait(interval):
                    return _reset(handler)
                handler.wfile.write(slow[position : position + 1])
        except OSError:  # the client gave up (its deadline): nothing more to send
            handler.close_connection = True


def _head(handler: _SandboxRequestHandler, response: Response) -> bytes:
    """The status line and headers :func:`_write` would send, as bytes."""
    reason = handler.responses.get(response.status, ("",))[0]
    lines = [
        f"{handler.protocol_version} {response.status} {reason}",
        f"Server: {handler.version_string()}",
        f"Date: {email.utils.formatdate(usegmt=True)}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        *(f"{name}: {value}" for name, value in response.headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _match(routes: list[Route], method: str, rel: str | None) -> tuple[Route | None, dict[str, str]]:
    if rel is None:
        return None, {}
    for route in routes:
        if route.method == method:
            m = route.pattern.fullmatch(rel)
            if m:
                return route, m.groupdict()
    return None, {}


def _write(handler: _SandboxRequestHandler, response: Response) -> None:
    handler.send_response(response.status)
    handler.send_header("Content-Type", response.content_type)
    handler.send_header("Content-Length", str(len(response.body)))
    for name, value in response.headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(response.body)


def _reset(handler: _SandboxRequestHandler) -> None:
    """Close the connection without a byte of response (RST thanks to SO_LINGER 0)."""
    handler.close_connection = True
    sock = handler.connection
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        handler.rfile.close()  # drop makefile()'s reference so close() really closes the fd
    except OSError:
        pass
    sock.close()
