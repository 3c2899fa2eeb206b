"""The listener's HTTP side (stdlib ``http.server``): every request is answered at once and turned
into :class:`~marketsync.app.listen.Work` for one worker thread, which coalesces whatever arrived
while it was busy into one targeted sync.

Routes: the callback of a marketplace whose hint is content-free (``POST /<token>``, the secret
path of the callback URL registered with it); the GET of a marketplace whose hint names the order
(its fixed path and port, ``order_id`` and ``store_id`` in the query); and the local trigger
``POST /sync`` (loopback only, refused when a proxy forwarded it). Nothing but an order id is
read from a request; bodies over :data:`MAX_BODY` are refused; every other path is 404.

Pending work is kept in a spool file beside the database until it has been done, so a listener
killed mid-sync picks it up when it starts again (and cron's run catches anything else).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from marketsync.app.listen import Work
from marketsync.model import now_iso
from marketsync.registry import marketplace

MAX_BODY = 4096  # bytes: BrickLink's callback is empty in practice, a list of events at most
MAX_TARGET = 2048  # characters of a request's path and query
REQUEST_TIMEOUT = 10.0  # seconds a client may take to send its request
ORDER_ID = re.compile(r"[0-9A-Za-z-]{1,32}")
HEARTBEAT_SECONDS = 60.0
RETRY_SECONDS = 5.0  # after a batch that could not take the writer lock


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class Queue:
    """Work waiting for the worker (coalesced), mirrored to a spool file with the batch in flight."""

    def __init__(self, spool: str | None = None):
        self.cond = threading.Condition()
        self.pending = Work()
        self.inflight = Work()
        self.spool = spool
        if spool and os.path.exists(spool):
            try:
                with open(spool, encoding="utf-8") as handle:
                    self.pending.merge(Work.from_json(json.load(handle)))
            except (OSError, ValueError):
                pass  # a damaged spool: cron's run is the net

    def add(self, work: Work) -> None:
        with self.cond:
            self.pending.merge(work)
            self._save()
            self.cond.notify_all()

    def take(self, timeout: float) -> Work | None:
        """Everything pending (it becomes the batch in flight), or None after ``timeout``."""
        with self.cond:
            if not self.pending:
                self.cond.wait(timeout)
            if not self.pending:
                return None
            work, self.pending = self.pending, Work()
            self.inflight = work
            return work

    def done(self, put_back: bool = False) -> None:
        with self.cond:
            if put_back:
                self.pending.merge(self.inflight)
            self.inflight = Work()
            self._save()

    def _save(self) -> None:
        if not self.spool:
            return
        both = Work()
        both.merge(self.pending)
        both.merge(self.inflight)
        try:
            if not both:
                if os.path.exists(self.spool):
                    os.unlink(self.spool)
                return
            temporary = f"{self.spool}.tmp"
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(both.as_json(), handle)
            os.replace(temporary, self.spool)
        except OSError:
            pass  # the spool is a convenience; cron is the net


@dataclass
class Routes:
    """What one port serves."""

    callback_token: str | None = None  # POST /<token>: list the events of ``callback``
    callback: list[str] = field(default_factory=list)
    trigger: bool = False  # POST /sync
    order_hints: dict[str, str] = field(default_factory=dict)  # path -> marketplace whose hint names the order


class Listener:
    """The servers, the queue and the worker. ``process(work)`` does one batch (the use case);
    ``log(line)`` prints one line per hint; ``store_ids`` are the seller's own store ids."""

    def __init__(self, host: str, ports: list[tuple[int, Routes]], queue: Queue, process: Callable[[Work], bool],
                 log: Callable[[str], None], store_ids: dict[str, str | None],
                 beat: Callable[[], None] | None = None):
        self.queue, self.process, self.log, self.store_ids, self.beat = queue, process, log, store_ids, beat
        self.stopping = threading.Event()
        self.servers: list[ThreadingHTTPServer] = []
        for port, routes in ports:
            server = ThreadingHTTPServer((host, port), _handler(self, routes))
            server.daemon_threads = True
            self.servers.append(server)
        self.threads: list[threading.Thread] = []
        self.busy = threading.Event()

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [(str(s.server_address[0]), int(s.server_address[1])) for s in self.servers]

    def start(self) -> None:
        for server in self.servers:
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
                                      name=f"listen-{server.server_address[1]}")
            thread.start()
            self.threads.append(thread)
        worker = threading.Thread(target=self._work, name="listen-worker", daemon=True)
        worker.start()
        self.threads.append(worker)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking requests; the batch under way finishes (bounded by ``timeout``)."""
        self.stopping.set()
        with self.queue.cond:
            self.queue.cond.notify_all()
        for server in self.servers:
            server.shutdown()
            server.server_close()
        for thread in self.threads:
            thread.join(timeout)

    def hint(self, work: Work, line: str) -> None:
        self.log(line)
        self.queue.add(work)

    def _work(self) -> None:
        last_beat = 0.0
        while not self.stopping.is_set():
            if self.beat is not None and time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
                last_beat = time.monotonic()
                try:
                    self.beat()
                except Exception:  # noqa: BLE001 - a busy file misses one heartbeat, never the listener
                    pass
            work = self.queue.take(timeout=1.0)
            if work is None:
                continue
            self.busy.set()
            try:
                ok = self.process(work)
            except Exception as exc:  # noqa: BLE001 - one batch's trouble never stops the listener
                self.log(f"error: {type(exc).__name__}: {exc}")
                ok = True  # not retried here: cron's run is the net
            finally:
                self.busy.clear()
            self.queue.done(put_back=not ok)
            if not ok:
                self.stopping.wait(RETRY_SECONDS)


class _NotificationHandler(BaseHTTPRequestHandler):
    listener: Listener
    routes: Routes
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT
    server_version = "marketsync-listen"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._route("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._route("PUT")

    def do_HEAD(self) -> None:  # noqa: N802
        self._route("HEAD")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: one line per hint, ours
        pass

    def _answer(self, status: int, text: str = "") -> None:
        body = (text + "\n").encode() if text else b""
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if status >= 400:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _body_ok(self) -> bool:
        """Read (and drop) a small body; refuse a large or unbounded one."""
        if self.headers.get("Transfer-Encoding"):
            self._answer(411, "length required")
            return False
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self._answer(413, "too large")
            return False
        if length:
            self.rfile.read(length)
        return True

    def _route(self, method: str) -> None:
        if len(self.path) > MAX_TARGET:
            self._answer(414, "too long")
            return
        if not self._body_ok():
            return
        parts = urlsplit(self.path)
        path, client = parts.path, self.client_address[0]
        if self.routes.trigger and path == "/sync":
            self._trigger(method, client)
        elif self.routes.callback_token and path.startswith("/") and hmac.compare_digest(
                path[1:].encode(), self.routes.callback_token.encode()):
            self._callback(method, client)
        elif path in self.routes.order_hints:
            self._order_hint(method, self.routes.order_hints[path], parse_qs(parts.query), client)
        else:
            self._answer(404, "not found")

    def _trigger(self, method: str, client: str) -> None:
        if method != "POST":
            self._answer(405, "POST only")
        elif not is_loopback(client) or self.headers.get("Forwarded") or self.headers.get("X-Forwarded-For"):
            self.listener.log(f"refused: POST /sync from {client} (the local trigger answers loopback only)")
            self._answer(403, "loopback only")
        else:
            self._answer(202, "ok")
            self.listener.hint(Work(full=True, hints={}), f"hint: local trigger (POST /sync from {client})")

    def _callback(self, method: str, client: str) -> None:
        if method != "POST":
            self._answer(405, "POST only")
            return
        self._answer(200, "ok")
        at = now_iso()
        self.listener.hint(Work(events=set(self.routes.callback), hints={n: ("callback", at) for n in self.routes.callback}),
                      f"hint: {', '.join(self.routes.callback)} callback (from {client})")

    def _order_hint(self, method: str, name: str, query: dict[str, list[str]], client: str) -> None:
        if method not in ("GET", "POST"):
            self._answer(405, "GET only")
            return
        order_id = (query.get("order_id") or [""])[0].strip()
        store_id = (query.get("store_id") or [""])[0].strip()
        if not ORDER_ID.fullmatch(order_id):
            self.listener.log(f"refused: {name} hint without a usable order id (from {client})")
            self._answer(400, "order_id")
            return
        own = self.listener.store_ids.get(name)
        if own and store_id != own:
            self.listener.log(f"refused: {name} hint for order {order_id} names store {store_id[:32]!r}, "
                         f"not this seller's (from {client})")
            self._answer(403, "store_id")
            return
        self._answer(200, "ok")
        self.listener.hint(Work(orders={name: {order_id}}, hints={name: (f"order {order_id}", now_iso())}),
                      f"hint: {name} order {order_id} (from {client})")


def _handler(listener: Listener, routes: Routes) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_NotificationHandler,), {"listener": listener, "routes": routes})


def plan_ports(names: list[str], *, port: int | None, token: str | None, order_ports: dict[str, int]
               ) -> list[tuple[int, Routes]]:
    """Which port serves what: ``port`` the callbacks (at ``/<token>``) and the local trigger; each
    marketplace whose hint names the order its own port (``order_ports``, its fixed one by default).
    A port of 0 is any free port (tests), one server each; a number given twice is one server."""
    served: list[tuple[int, Routes]] = []

    def routes_for(number: int) -> Routes:
        found = next((routes for n, routes in served if n == number and number != 0), None)
        if found is None:
            found = Routes()
            served.append((number, found))
        return found

    if port is not None:
        main = routes_for(port)
        main.trigger = True
        callback = [n for n in names if (h := marketplace(n).hint) is not None and h.path is None]
        if token and callback:
            main.callback_token, main.callback = token, callback
    for name in names:
        hint = marketplace(name).hint
        if hint is None or hint.path is None:
            continue
        routes_for(order_ports.get(name, hint.port or 0)).order_hints[hint.path] = name
    return served
