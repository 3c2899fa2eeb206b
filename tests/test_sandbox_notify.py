"""The sandbox's outgoing notifications over real HTTP: BrickLink's ``GET /notifications`` and
callback POSTs, BrickOwl's ``POST /order/notify`` and its GET to ``/brick_owl_order_notify``, the
delivery switches (drop, duplicate, delay, body shape, mark-read), the latency switch.

A tiny stdlib server on 127.0.0.1 receives the callbacks; every wait is
``Sandbox.wait_notifications`` or an event the receiver sets, never a sleep."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from requests_oauthlib import OAuth1

from marketsync.sandbox import Sandbox
from marketsync.sandbox.notify import Delivery


class Hit:
    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes):
        self.method, self.path, self.headers, self.body = method, path, headers, body
        self.at = time.monotonic()

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query)


class Receiver:
    """Records every request it gets; ``gate`` (set by default) holds each answer until set."""

    def __init__(self, status: int = 200):
        self.hits: list[Hit] = []
        self.status = status
        self.gate = threading.Event()
        self.gate.set()
        self.arrived = threading.Event()  # set at each request's arrival
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with outer._lock:
                    outer.hits.append(Hit(self.command, self.path, dict(self.headers.items()), body))
                outer.arrived.set()
                outer.gate.wait(30)
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = _any

            def log_message(self, format, *args):  # noqa: A002 - quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def sb():
    with Sandbox() as sandbox:
        sandbox.brickowl.rate_limit = None
        yield sandbox
    assert not sandbox.errors, sandbox.errors[0]


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


def auth_for(sb: Sandbox) -> OAuth1:
    bl = sb.bricklink
    return OAuth1(bl.consumer_key, bl.consumer_secret, bl.token_value, bl.token_secret)


def notifications(http, sb) -> list[dict]:
    r = http.get(sb.bricklink_url + "/notifications", auth=auth_for(sb), timeout=5)
    assert r.status_code == 200 and r.json()["meta"]["code"] == 200, r.text
    return r.json()["data"]


def bo_post(http, sb, endpoint, **form):
    form.setdefault("key", sb.brickowl.api_key)
    return http.post(sb.brickowl_url + endpoint, data=form, timeout=5)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LINE = {"no": "3001", "color_id": 11, "quantity": 2}


# ---------------------------------------------------------------------- BrickLink: which events
def test_bricklink_notifies_buyer_side_order_events_and_not_the_sellers(sb, http, receiver):
    bl = sb.bricklink
    bl.callback_url = receiver.url + "/bricklink/push"
    lot = bl.add_lot("3001", 11, 20)
    order = bl.add_order(status="PENDING", lines=[{**LINE, "inventory_id": lot}])  # placed: event 1
    bl.set_status(order, "PAID")  # the seller's change: not notified
    bl.set_status(order, "SHIPPED")
    assert sb.wait_notifications(5)
    assert len(receiver.hits) == 1 and len(notifications(http, sb)) == 1
    bl.set_status(order, "RECEIVED", by_buyer=True)  # event 2
    bl.add_batch(order, [{"no": "3002", "color_id": 5, "quantity": 1}])  # event 3
    bl.remove_line(order, 2, bl.orders[order].batches[1][0]["inventory_id"])  # event 4
    assert sb.wait_notifications(5)

    events = notifications(http, sb)
    assert [(e["event_type"], e["resource_id"]) for e in events] == [("Order", order)] * 4
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps) and len(set(stamps)) == 4  # (type, id, timestamp) tells them apart
    assert all(s.endswith("Z") and len(s) == len("2013-12-17T08:20:02.177Z") for s in stamps)
    # every callback: a POST with an EMPTY body (what arrives in practice), to the registered path
    assert [(h.method, h.path, h.body) for h in receiver.hits] == [("POST", "/bricklink/push", b"")] * 4
    assert all(h.headers.get("Content-Length") == "0" for h in receiver.hits)
    assert bl.notify_log == [Delivery(receiver.url + "/bricklink/push", 200)] * 4


def test_bricklink_silent_seeding_and_the_demo_store_notify_nothing(http, receiver):
    with Sandbox(demo=True) as demo:
        demo.bricklink.callback_url = receiver.url
        assert notifications(http, demo) == []  # the demo's history is not news
        order = demo.bricklink.add_order(lines=[LINE], notify=False)
        demo.bricklink.add_batch(order, [LINE], notify=False)
        demo.bricklink.remove_line(order, 2, demo.bricklink.orders[order].batches[1][0]["inventory_id"], notify=False)
        assert demo.wait_notifications(5)
        assert notifications(http, demo) == [] and receiver.hits == [] and demo.bricklink.notify_log == []
        placed = demo.bricklink.add_order(lines=[LINE])
        assert demo.wait_notifications(5)
        assert [e["resource_id"] for e in notifications(http, demo)] == [placed] and len(receiver.hits) == 1
        assert not demo.errors


def test_an_event_without_a_callback_url_is_only_listed(sb, http):
    order = sb.bricklink.add_order(lines=[LINE])
    assert sb.wait_notifications(5)
    assert [e["resource_id"] for e in notifications(http, sb)] == [order]
    assert sb.bricklink.notify_log == []


# ---------------------------------------------------------------------- BrickLink: switches
def test_reading_notifications_keeps_them_by_default_and_marks_them_read_with_the_switch(sb, http):
    bl = sb.bricklink
    assert bl.notifications_mark_read is False
    first = bl.add_order(lines=[LINE])
    assert len(notifications(http, sb)) == 1
    assert len(notifications(http, sb)) == 1  # default: still unread after reading (as before this switch)
    bl.notifications_mark_read = True
    assert [e["resource_id"] for e in notifications(http, sb)] == [first]
    assert notifications(http, sb) == []  # read once, gone
    second = bl.add_order(lines=[LINE])
    bl.set_status(second, "CANCELLED", by_buyer=True)
    assert [e["resource_id"] for e in notifications(http, sb)] == [second, second]
    assert notifications(http, sb) == []


def test_a_lost_answer_to_a_marking_read_still_marks_them_read(sb, http):
    """With the switch on, a read whose answer was lost has consumed the events: why a listener
    must keep polling the orders themselves."""
    sb.bricklink.notifications_mark_read = True
    sb.bricklink.add_order(lines=[LINE])
    sb.inject("bricklink", "GET /notifications", "500")
    r = http.get(sb.bricklink_url + "/notifications", auth=auth_for(sb), timeout=5)
    assert r.status_code == 500
    assert len(notifications(http, sb)) == 1  # a 500 played instead of the store: nothing was read
    sb.bricklink.add_order(lines=[LINE])
    sb.inject("bricklink", "GET /notifications", "malformed")
    r = http.get(sb.bricklink_url + "/notifications", auth=auth_for(sb), timeout=5)
    with pytest.raises(ValueError):
        r.json()
    assert notifications(http, sb) == []  # the store answered (then the answer was cut): marked read


@pytest.mark.parametrize("shape", ["empty", "events", "event"])
def test_the_callback_body_follows_the_switch(sb, receiver, shape):
    bl = sb.bricklink
    assert bl.notify_body == "empty"
    bl.notify_body = shape
    bl.callback_url = receiver.url
    order = bl.add_order(lines=[LINE])
    assert sb.wait_notifications(5)
    [hit] = receiver.hits
    [event] = bl.notifications
    assert event["resource_id"] == order
    if shape == "empty":
        assert hit.body == b"" and "Content-Type" not in hit.headers
    else:
        assert hit.headers["Content-Type"] == "application/json"
        assert json.loads(hit.body) == ([event] if shape == "events" else event)


def test_switch_values_are_checked(sb):
    with pytest.raises(ValueError, match="notify_body"):
        sb.bricklink.notify_body = "list"
    for store in (sb.bricklink, sb.brickowl):
        with pytest.raises(ValueError, match="probability"):
            store.notify_drop = 1.5
        with pytest.raises(ValueError, match="probability"):
            store.notify_duplicate = -0.1
        with pytest.raises(ValueError, match="whole number"):
            store.notify_drop_next = -1
        with pytest.raises(ValueError, match="seconds"):
            store.notify_delay = -1
    with pytest.raises(ValueError, match="latency"):
        sb.latency = -0.5


# ---------------------------------------------------------------------- delivery switches
def test_drop_the_next_n_deliveries_but_keep_listing_the_events(sb, http, receiver):
    bl = sb.bricklink
    bl.callback_url = receiver.url
    bl.notify_drop_next = 2
    orders = [bl.add_order(lines=[LINE]) for _ in range(3)]
    assert sb.wait_notifications(5)
    assert len(receiver.hits) == 1 and bl.notify_drop_next == 0
    assert [d.result for d in bl.notify_log] == ["dropped", "dropped", 200]
    assert [e["resource_id"] for e in notifications(http, sb)] == orders  # the poll still sees them all


def run_with_drop_probability(receiver: Receiver, seed: int) -> list[int | str]:
    with Sandbox(seed=seed) as sandbox:
        sandbox.bricklink.callback_url = receiver.url
        sandbox.bricklink.notify_drop = 0.5
        for _ in range(24):
            sandbox.bricklink.add_order(lines=[LINE])
        assert sandbox.wait_notifications(10)
        return [d.result for d in sandbox.bricklink.notify_log]


def test_a_drop_probability_is_seeded_so_a_run_repeats_itself(receiver):
    first = run_with_drop_probability(receiver, seed=7)
    again = run_with_drop_probability(receiver, seed=7)
    assert first == again  # deterministic
    assert len(first) == 24 and set(first) == {"dropped", 200}  # some dropped, some delivered
    assert len(receiver.hits) == 2 * first.count(200)


def test_duplicates_are_sent_twice(sb, receiver):
    bo, bl = sb.brickowl, sb.bricklink
    bl.callback_url = receiver.url + "/bl"
    bl.notify_duplicate_next = 1
    bl.add_order(lines=[LINE])
    bl.add_order(lines=[LINE])
    assert sb.wait_notifications(5)
    assert [h.path for h in receiver.hits] == ["/bl", "/bl", "/bl"]
    assert [d.result for d in bl.notify_log] == [200, 200, 200]
    bl.notify_duplicate = 1.0  # every one
    bl.add_order(lines=[LINE])
    assert sb.wait_notifications(5) and len(receiver.hits) == 5
    # BrickOwl's GET has the same switches
    bo.notify_ip, bo.notify_port = "127.0.0.1", receiver.port
    bo.notify_duplicate_next = 1
    order = bo.add_order(lines=[{"boid": "487300-38", "ordered_quantity": 1}])
    assert sb.wait_notifications(5)
    assert [h.query["order_id"] for h in receiver.hits[5:]] == [[order], [order]]


def test_a_delay_holds_each_delivery_at_least_that_long(sb, receiver):
    bl = sb.bricklink
    bl.callback_url = receiver.url
    bl.notify_delay = 0.3
    before = time.monotonic()
    bl.add_order(lines=[LINE])
    bl.add_order(lines=[LINE])
    assert sb.wait_notifications(10)
    assert len(receiver.hits) == 2
    assert all(hit.at - before >= 0.3 for hit in receiver.hits)


def test_delivery_never_blocks_the_caller_and_waiting_is_bounded(sb, receiver):
    bl = sb.bricklink
    bl.callback_url, bl.notify_timeout = receiver.url, 60  # (no timeout while the test holds the receiver)
    receiver.gate.clear()  # the receiver takes the POST and does not answer
    order = bl.add_order(lines=[LINE])  # returns while its delivery hangs on the receiver
    assert receiver.arrived.wait(5)
    assert bl.notifications_pending == 1
    assert sb.wait_notifications(0.05) is False  # not done: a bounded wait says so
    second = bl.add_order(lines=[LINE])  # the store is not held by the hanging delivery
    assert sorted(bl.orders) == sorted([order, second])
    receiver.gate.set()
    assert sb.wait_notifications(5) is True
    assert [d.result for d in bl.notify_log] == [200, 200]


def test_an_unreachable_or_slow_callback_is_logged_and_never_raised(sb, http, receiver):
    bl = sb.bricklink
    bl.callback_url = f"http://127.0.0.1:{closed_port()}/gone"
    order = bl.add_order(lines=[LINE])  # no exception here
    assert sb.wait_notifications(5)
    [(url, result)] = bl.notify_log
    assert url.endswith("/gone") and isinstance(result, str) and result.startswith("error: ConnectionRefusedError")
    # a receiver that never answers: each delivery has its own timeout
    bl.callback_url, bl.notify_timeout = receiver.url, 0.2
    receiver.gate.clear()
    bl.set_status(order, "NPX", by_buyer=True)
    assert receiver.arrived.wait(5)
    assert sb.wait_notifications(5)
    assert bl.notify_log[-1].result.startswith("error: TimeoutError")
    receiver.gate.set()
    assert len(notifications(http, sb)) == 2  # the API is unaffected
    assert not sb.errors


def test_nothing_is_ever_sent_off_this_machine(sb):
    bl, bo = sb.bricklink, sb.brickowl
    bl.callback_url = "http://192.0.2.10:8080/push"  # TEST-NET-1: refused before any connection
    bl.add_order(lines=[LINE])
    assert r_status(bo_post(requests, sb, "/order/notify", ip="198.51.100.7")) == {"status": "success"}
    bo.add_order(lines=[{"boid": "487300-38", "ordered_quantity": 1}])
    assert sb.wait_notifications(5)
    for store in (bl, bo):
        [(url, result)] = store.notify_log
        assert isinstance(result, str) and result.startswith("refused:") and "not a loopback" in result


def r_status(r: requests.Response) -> dict:
    assert r.status_code == 200, r.text
    return r.json()


def test_stopping_the_sandbox_abandons_deliveries_still_waiting(receiver):
    sandbox = Sandbox().start()
    sandbox.bricklink.callback_url = receiver.url
    sandbox.bricklink.notify_delay = 30
    sandbox.bricklink.add_order(lines=[LINE])
    sandbox.stop()  # returns at once although the delivery waits 30 s
    assert sandbox.wait_notifications(5)
    assert receiver.hits == []
    assert [d.result for d in sandbox.bricklink.notify_log] == ["error: not sent: the sandbox stopped"]


# ---------------------------------------------------------------------- BrickOwl: order/notify
def test_brickowl_registered_address_gets_a_plain_get_per_placed_order(sb, http, receiver):
    bo = sb.brickowl
    assert bo.notify_port == 42500 and bo.notify_ip is None  # the real, fixed port; off until registered
    bo.notify_port = receiver.port
    assert r_status(bo_post(http, sb, "/order/notify", ip="127.0.0.1")) == {"status": "success"}
    assert bo.notify_ip == "127.0.0.1"
    order = bo.add_order(lines=[{"boid": "487300-38", "ordered_quantity": 2}])
    bo.set_status(order, "Shipped")  # status changes: not notified by default
    assert sb.wait_notifications(5)
    [hit] = receiver.hits
    assert hit.method == "GET" and urlsplit(hit.path).path == "/brick_owl_order_notify"
    assert hit.query == {"order_id": [order], "store_id": [bo.store_id]}
    assert hit.body == b"" and "Authorization" not in hit.headers and "key" not in hit.path  # unsigned, no payload
    view = http.get(sb.brickowl_url + "/order/view", params={"key": bo.api_key, "order_id": order}, timeout=5).json()
    assert view["store_id"] == bo.store_id and view["order_id"] == order
    assert bo.notify_log == [Delivery(f"http://127.0.0.1:{receiver.port}/brick_owl_order_notify?order_id={order}&store_id={bo.store_id}", 200)]


def test_brickowl_an_empty_ip_turns_it_off(sb, http, receiver):
    bo = sb.brickowl
    bo.notify_port = receiver.port
    r_status(bo_post(http, sb, "/order/notify", ip="127.0.0.1"))
    assert r_status(bo_post(http, sb, "/order/notify", ip="")) == {"status": "success"}
    assert bo.notify_ip is None
    bo.add_order(lines=[{"boid": "487300-38", "ordered_quantity": 1}])
    assert sb.wait_notifications(5)
    assert receiver.hits == [] and bo.notify_log == []


@pytest.mark.parametrize("form, message", [
    ({"ip": "127.0.0.1", "key": "WRONG"}, "Invalid API key"),
    ({"ip": "localhost"}, "Invalid ip"),
    ({"ip": "receiver.example.com"}, "Invalid ip"),
    ({"ip": "http://127.0.0.1:42500/"}, "Invalid ip"),
    ({}, "Missing ip"),
])  # fmt: skip
def test_brickowl_order_notify_refusals_register_nothing(sb, http, receiver, form, message):
    bo = sb.brickowl
    bo.notify_port = receiver.port
    r = bo_post(http, sb, "/order/notify", **form)
    assert r.json()["error"]["status"].startswith(message)
    assert bo.notify_ip is None
    bo.add_order(lines=[{"boid": "487300-38", "ordered_quantity": 1}])
    assert sb.wait_notifications(5) and receiver.hits == []


def test_brickowl_key_in_the_query_string_of_the_post_does_not_count(sb, http):
    r = http.post(sb.brickowl_url + "/order/notify", params={"key": sb.brickowl.api_key}, data={"ip": "127.0.0.1"},
                  timeout=5)  # fmt: skip
    assert r.json() == {"error": {"status": "Invalid API key"}} and sb.brickowl.notify_ip is None


def test_brickowl_notify_host_redirects_a_registered_address_to_loopback(sb, http, receiver):
    bo = sb.brickowl
    r_status(bo_post(http, sb, "/order/notify", ip="203.0.113.9"))  # a real-looking address, never contacted
    bo.notify_host, bo.notify_port = "127.0.0.1", receiver.port
    order = bo.add_order(lines=[{"boid": "487300-38", "ordered_quantity": 1}])
    assert sb.wait_notifications(5)
    assert [h.query["order_id"] for h in receiver.hits] == [[order]]
    assert bo.notify_log[0].url.startswith(f"http://127.0.0.1:{receiver.port}/") and bo.notify_ip == "203.0.113.9"


def test_brickowl_status_changes_notify_only_with_the_switch(sb, receiver):
    bo = sb.brickowl
    bo.notify_ip, bo.notify_port = "127.0.0.1", receiver.port
    order = bo.add_order(lines=[{"boid": "487300-38", "ordered_quantity": 1}], notify=False)
    bo.set_status(order, "Processing")
    assert sb.wait_notifications(5) and receiver.hits == []
    bo.notify_status_changes = True
    bo.set_status(order, "Shipped")
    assert sb.wait_notifications(5)
    assert [h.query["order_id"] for h in receiver.hits] == [[order]]


def test_brickowl_drop_next_and_a_refused_write_fault_on_order_notify(sb, http, receiver):
    bo = sb.brickowl
    bo.notify_port = receiver.port
    sb.inject("brickowl", "POST /order/notify", "reset")  # a write fault: NOT applied
    with pytest.raises(requests.ConnectionError):
        bo_post(requests, sb, "/order/notify", ip="127.0.0.1")
    assert bo.notify_ip is None
    sb.inject("brickowl", "POST /order/notify", "applied_reset")  # applied, answer lost
    with pytest.raises(requests.ConnectionError):
        bo_post(requests, sb, "/order/notify", ip="127.0.0.1")
    assert bo.notify_ip == "127.0.0.1"
    bo.notify_drop_next = 1
    first = bo.add_order(lines=[{"boid": "487300-38", "ordered_quantity": 1}])
    second = bo.add_order(lines=[{"boid": "487300-38", "ordered_quantity": 1}])
    assert sb.wait_notifications(5)
    assert [h.query["order_id"] for h in receiver.hits] == [[second]]
    assert [d.result for d in bo.notify_log] == ["dropped", 200] and first != second


# ---------------------------------------------------------------------- latency
def test_latency_is_added_to_every_answer_of_both_marketplaces(sb, http):
    assert sb.latency == 0 and sb.bricklink.latency == 0 and sb.brickowl.latency == 0
    sb.latency = 0.25
    assert sb.bricklink.latency == sb.brickowl.latency == 0.25
    for call in (lambda: http.get(sb.bricklink_url + "/orders", auth=auth_for(sb), timeout=5),
                 lambda: http.get(sb.brickowl_url + "/order/list", params={"key": sb.brickowl.api_key}, timeout=5),
                 lambda: http.get(sb.brickowl_url + "/nowhere", timeout=5)):  # fmt: skip
        started = time.monotonic()
        r = call()
        assert time.monotonic() - started >= 0.25 and r.status_code in (200, 404)
    sb.brickowl.latency = 0  # per store
    assert sb.latency == 0.25
