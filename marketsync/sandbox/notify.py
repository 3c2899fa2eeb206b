"""Outgoing notifications: the HTTP requests a marketplace sends *to* the seller.

BrickLink POSTs to the callback URL registered with the API consumer when an order event happens
(``store.callback_url``); BrickOwl sends a plain GET to ``http://IP:42500/brick_owl_order_notify``
when an order is placed (``POST /order/notify``). Both are best effort and only ever a hint
(marketplace-apis.md "Notifications", "Order notification"), and the sandbox delivers them like
that: on a background thread (the store action or API request that caused one never waits for
it), one at a time, each with a timeout (``store.notify_timeout``, 2 s), and whatever happens is
written to ``store.notify_log`` as ``Delivery(url, result)`` -- ``result`` is the HTTP status
received, ``"dropped"``, ``"refused: ..."`` or ``"error: ..."``. Nothing is ever raised.

Delivery switches (no source says how often deliveries are lost, repeated or late; both docs
only say delivery is not guaranteed), on each store, deterministic for tests:

* ``notify_drop`` -- probability (0..1, default 0) that a delivery is not sent (seeded random:
  the same sequence of events gives the same drops); ``notify_drop_next`` -- the next N
  deliveries are dropped, whatever the probability.
* ``notify_duplicate`` / ``notify_duplicate_next`` -- the same, for a delivery sent twice.
* ``notify_delay`` -- seconds between the event and its delivery (default 0).

``store.wait_notifications(timeout)`` (or ``Sandbox.wait_notifications``) returns once every
delivery queued so far has been sent, dropped or has failed (True), or after ``timeout``
seconds (False): tests wait on it, never on a sleep.

The sandbox only ever sends to loopback (``127.0.0.0/8``, ``::1``, ``localhost``): a target
elsewhere is logged as ``"refused: ..."`` and not contacted (BrickOwl's ``notify_host`` points
the GET at a loopback address whatever IP was registered).
"""

from __future__ import annotations

import collections
import http.client
import ipaddress
import random
import threading
import time
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urlsplit

NOTIFY_TIMEOUT = 2.0  # seconds for one delivery (connect + answer)


class Delivery(NamedTuple):
    """One delivery attempt: the URL and what came of it (an HTTP status, ``"dropped"``,
    ``"refused: ..."`` or ``"error: ..."``)."""

    url: str
    result: int | str


@dataclass
class _Job:
    method: str
    url: str
    body: bytes | None
    headers: dict[str, str]
    due: float  # time.monotonic() at which it may be sent
    copies: int  # 0: dropped, 1, or 2 (duplicated)


def is_loopback(host: str) -> bool:
    """Is ``host`` an address of this machine's loopback (the only place the sandbox sends to)?"""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _probability(name: str, value: float) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{name} is a probability from 0 to 1, not {value!r}")
    return number


def _count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} is a whole number >= 0, not {value!r}")
    return value


class Notifying:
    """Mixin of both stores: queue outgoing notifications and deliver them on a worker thread."""

    notify_timeout: float

    def _init_notify(self, name: str, seed: int) -> None:
        self.notify_timeout = NOTIFY_TIMEOUT
        self.notify_log: list[Delivery] = []
        self._notify_drop = 0.0
        self._notify_drop_next = 0
        self._notify_duplicate = 0.0
        self._notify_duplicate_next = 0
        self._notify_delay = 0.0
        self._notify_rng = random.Random(f"notify:{name}:{seed}")
        self._notify_cond = threading.Condition()
        self._notify_queue: collections.deque[_Job] = collections.deque()
        self._notify_pending = 0  # queued or being delivered
        self._notify_thread: threading.Thread | None = None
        self._notify_closing = threading.Event()
        self._notify_name = name

    # ------------------------------------------------------------------ switches
    @property
    def notify_drop(self) -> float:
        """Probability that a delivery is dropped (seeded; default 0)."""
        return self._notify_drop

    @notify_drop.setter
    def notify_drop(self, value: float) -> None:
        self._notify_drop = _probability("notify_drop", value)

    @property
    def notify_drop_next(self) -> int:
        """How many of the next deliveries are dropped (counts down; default 0)."""
        return self._notify_drop_next

    @notify_drop_next.setter
    def notify_drop_next(self, value: int) -> None:
        with self._notify_cond:
            self._notify_drop_next = _count("notify_drop_next", value)

    @property
    def notify_duplicate(self) -> float:
        """Probability that a delivery is sent twice (seeded; default 0)."""
        return self._notify_duplicate

    @notify_duplicate.setter
    def notify_duplicate(self, value: float) -> None:
        self._notify_duplicate = _probability("notify_duplicate", value)

    @property
    def notify_duplicate_next(self) -> int:
        """How many of the next deliveries are sent twice (counts down; default 0)."""
        return self._notify_duplicate_next

    @notify_duplicate_next.setter
    def notify_duplicate_next(self, value: int) -> None:
        with self._notify_cond:
            self._notify_duplicate_next = _count("notify_duplicate_next", value)

    @property
    def notify_delay(self) -> float:
        """Seconds between an event and its delivery (default 0)."""
        return self._notify_delay

    @notify_delay.setter
    def notify_delay(self, value: float) -> None:
        number = float(value)
        if number < 0:
            raise ValueError(f"notify_delay is a number of seconds >= 0, not {value!r}")
        self._notify_delay = number

    # ------------------------------------------------------------------ queueing
    def _notify_send(self, method: str, url: str, body: bytes | None = None,
                     headers: dict[str, str] | None = None) -> None:
        """Queue one delivery (never blocks, never raises for the target's sake)."""
        with self._notify_cond:
            # decided now, in the order events happen, so a seed gives the same outcome every run
            if self._notify_drop_next > 0:
                self._notify_drop_next -= 1
                copies = 0
            elif self._notify_drop and self._notify_rng.random() < self._notify_drop:
                copies = 0
            elif self._notify_duplicate_next > 0:
                self._notify_duplicate_next -= 1
                copies = 2
            elif self._notify_duplicate and self._notify_rng.random() < self._notify_duplicate:
                copies = 2
            else:
                copies = 1
            due = time.monotonic() + self._notify_delay
            self._notify_queue.append(_Job(method, url, body, dict(headers or {}), due, copies))
            self._notify_pending += 1
            if self._notify_thread is None or not self._notify_thread.is_alive():
                self._notify_closing.clear()
                self._notify_thread = threading.Thread(
                    target=self._notify_worker, name=f"sandbox-notify-{self._notify_name}", daemon=True
                )
                self._notify_thread.start()
            self._notify_cond.notify_all()

    @property
    def notifications_pending(self) -> int:
        """Deliveries queued or under way."""
        with self._notify_cond:
            return self._notify_pending

    def wait_notifications(self, timeout: float = 5.0) -> bool:
        """Wait until every delivery queued so far is done (sent, dropped or failed): True, or
        False when ``timeout`` seconds passed first."""
        deadline = time.monotonic() + timeout
        with self._notify_cond:
            while self._notify_pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._notify_cond.wait(left)
        return True

    def close_notifications(self, timeout: float = 2.0) -> None:
        """Stop the delivery thread; deliveries still queued are logged as not sent."""
        with self._notify_cond:
            thread = self._notify_thread
            self._notify_closing.set()
            self._notify_cond.notify_all()
        if thread is not None:
            thread.join(timeout)

    # ------------------------------------------------------------------ the worker
    def _notify_worker(self) -> None:
        closing = self._notify_closing
        while True:
            with self._notify_cond:
                while not self._notify_queue and not closing.is_set():
                    self._notify_cond.wait()
                if closing.is_set():
                    for job in self._notify_queue:
                        self.notify_log.append(Delivery(job.url, "error: not sent: the sandbox stopped"))
                    self._notify_pending -= len(self._notify_queue)
                    self._notify_queue.clear()
                    self._notify_thread = None
                    self._notify_cond.notify_all()
                    return
                job = self._notify_queue.popleft()
            results: list[int | str] = []
            if job.copies == 0:
                results.append("dropped")
            else:
                wait = job.due - time.monotonic()
                if wait > 0 and closing.wait(wait):
                    results.append("error: not sent: the sandbox stopped")
                else:
                    for _ in range(job.copies):
                        results.append(self._deliver(job))
            with self._notify_cond:
                self.notify_log.extend(Delivery(job.url, result) for result in results)
                self._notify_pending -= 1
                self._notify_cond.notify_all()

    def _deliver(self, job: _Job) -> int | str:
        try:
            parts = urlsplit(job.url)
            host = parts.hostname or ""
            if parts.scheme != "http":
                return f"refused: only plain http:// is sent, not {parts.scheme or 'no scheme'}"
            if not is_loopback(host):
                return f"refused: {host or 'no host'} is not a loopback address (the sandbox sends nothing off this machine)"
            target = parts.path or "/"
            if parts.query:
                target += "?" + parts.query
            conn = http.client.HTTPConnection(host, parts.port or 80, timeout=self.notify_timeout)
            try:
                conn.request(job.method, target, body=job.body, headers=job.headers)
                answer = conn.getresponse()
                answer.read()
                return answer.status
            finally:
                conn.close()
        except Exception as exc:  # best effort: an unreachable or broken receiver is only logged
            return f"error: {type(exc).__name__}: {exc}"
