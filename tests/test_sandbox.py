"""The loopback marketplace sandbox, exercised over real HTTP with requests."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import html
import json
import socket
import subprocess
import sys
import time
from collections import Counter

import pytest
import requests
from requests_oauthlib import OAuth1

from marketsync.providers.bricklink import STATUS as BRICKLINK_STATUS
from marketsync.providers.brickowl import STATUS_IDS as BRICKOWL_STATUS_IDS
from marketsync.sandbox import Sandbox, demo_inventory_rows, generate_store, write_demo_inventory_csv
from marketsync.sandbox.demo import IDS_ONLY_PARTS, demo_lots

LINE = {"no": "3001", "color_id": 11, "quantity": 4, "new_or_used": "N", "remarks": "A01",
        "unit_price": "0.1500", "inventory_id": 123, "name": "Brick 2 x 4", "type": "PART"}  # fmt: skip
BO_LINE = {"boid": "487300-38", "color_id": 38, "full_con": "new", "ordered_quantity": 2, "personal_note": "B02",
           "base_price": "0.104", "bl_lot_id": "55984791", "ids": [{"id": "3069", "type": "design_id"}]}  # fmt: skip


@pytest.fixture
def sb():
    with Sandbox() as sandbox:
        yield sandbox
    assert not sandbox.errors, sandbox.errors[0]


@pytest.fixture(scope="module")
def demo():
    with Sandbox(demo=True, seed=1) as sandbox:
        yield sandbox


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


def auth_for(sb: Sandbox, **kwargs) -> OAuth1:
    e = sb.env()
    args = [e["BRICKLINK_CONSUMER_KEY"], e["BRICKLINK_CONSUMER_SECRET"], e["BRICKLINK_TOKEN_VALUE"], e["BRICKLINK_TOKEN_SECRET"]]
    for i, name in enumerate(("consumer_key", "consumer_secret", "token_value", "token_secret")):
        if name in kwargs:
            args[i] = kwargs.pop(name)
    return OAuth1(*args, **kwargs)


def bl(http, sb, path, params=None, auth=None, **kw):
    return http.get(sb.bricklink_url + path, params=params, auth=auth or auth_for(sb), timeout=5, **kw)


def bo(http, sb, path, **params):
    params.setdefault("key", sb.brickowl.api_key)
    return http.get(sb.brickowl_url + path, params=params, timeout=5)


# ---------------------------------------------------------------------- BrickLink: OAuth
def test_env_and_urls(sb):
    env = sb.env()
    assert env["BRICKLINK_API_URL"].startswith("http://127.0.0.1:") and env["BRICKLINK_API_URL"].endswith("/api/store/v1")
    assert env["BRICKOWL_API_URL"].endswith("/v1") and env["BRICKOWL_API_URL"] != env["BRICKLINK_API_URL"]
    assert all(env.values())
    assert Sandbox().bricklink.consumer_secret != sb.bricklink.consumer_secret  # random per instance


def test_oauth_accepts_signed_query_params(sb, http):
    sb.bricklink.add_order(status="PAID", lines=[LINE])
    sb.bricklink.add_order(status="SHIPPED", lines=[LINE])
    r = bl(http, sb, "/orders", params={"status": "-purged,-shipped", "filed": "false"})
    assert r.status_code == 200
    body = r.json()
    assert body["meta"] == {"description": "OK", "message": "OK", "code": 200}
    assert [o["status"] for o in body["data"]] == ["PAID"]


def _prepared(http, sb, params, auth):
    return http.prepare_request(requests.Request("GET", sb.bricklink_url + "/orders", params=params, auth=auth))


@pytest.mark.parametrize("how", ["tampered_query", "query_added_after_signing", "wrong_consumer_secret", "wrong_token_secret"])
def test_oauth_rejects_bad_signature_inside_http_200(sb, http, how):
    auth = auth_for(sb)
    if how == "wrong_consumer_secret":
        auth = auth_for(sb, consumer_secret="nope")
    if how == "wrong_token_secret":
        auth = auth_for(sb, token_secret="nope")
    if how == "query_added_after_signing":  # the classic bug: query left out of the signature
        prep = _prepared(http, sb, None, auth)
        prep.url += "?filed=true"
    else:
        prep = _prepared(http, sb, {"filed": "false"}, auth)
        if how == "tampered_query":
            prep.url = prep.url.replace("filed=false", "filed=true")
    r = http.send(prep, timeout=5)
    assert r.status_code == 200
    assert r.json() == {"meta": {"description": "SIGNATURE_INVALID", "message": "BAD_OAUTH_REQUEST", "code": 401}, "data": {}}


def test_oauth_other_rejections(sb, http):
    def reason(r):
        assert r.status_code == 200 and r.json()["meta"]["code"] == 401
        assert r.json()["meta"]["message"] == "BAD_OAUTH_REQUEST"
        return r.json()["meta"]["description"]

    assert reason(bl(http, sb, "/orders", auth=auth_for(sb, consumer_key="other"))) == "CONSUMER_KEY_UNKNOWN"
    assert reason(bl(http, sb, "/orders", auth=auth_for(sb, token_value="other"))) == "TOKEN_VALUE_UNKNOWN"
    stale = str(int(time.time()) - 3600)
    assert reason(bl(http, sb, "/orders", auth=auth_for(sb, timestamp=stale))) == "TIMESTAMP_REJECTED"
    assert reason(http.get(sb.bricklink_url + "/orders", timeout=5)) == "BAD_OAUTH_REQUEST"
    now = str(int(time.time()))
    assert bl(http, sb, "/orders", auth=auth_for(sb, nonce="n0nce", timestamp=now)).json()["meta"]["code"] == 200
    assert reason(bl(http, sb, "/orders", auth=auth_for(sb, nonce="n0nce", timestamp=now))) == "NONCE_USED"
    sb.bricklink.auth_error_status = 401
    assert bl(http, sb, "/orders", auth=auth_for(sb, token_secret="x")).status_code == 401


def _raw(url: str, request: bytes) -> bytes:
    host, port = url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("version", ["HTTP/1.1", "HTTP/1.0"])
def test_headers_are_read_whatever_their_case_and_the_first_of_a_repeated_one_counts(sb, version):
    """The sandbox reads a plain HTTP/1.1 request's headers itself (http.server's own parsing for
    anything else): names in any case, the first of a repeated header."""
    from oauthlib.oauth1 import Client

    e = sb.env()
    url = e["BRICKLINK_API_URL"] + "/orders"
    client = Client(e["BRICKLINK_CONSUMER_KEY"], client_secret=e["BRICKLINK_CONSUMER_SECRET"],
                    resource_owner_key=e["BRICKLINK_TOKEN_VALUE"], resource_owner_secret=e["BRICKLINK_TOKEN_SECRET"])
    _, headers, _ = client.sign(url)
    netloc, path = url.split("//")[1].split("/", 1)
    answer = _raw(url, (f"GET /{path} {version}\r\nhOsT: {netloc}\r\naUtHoRiZaTiOn: {headers['Authorization']}\r\n"
                        f"Authorization: OAuth oauth_nonce=\"x\"\r\nConnection: close\r\n\r\n").encode())
    status, _, rest = answer.partition(b"\r\n")
    assert status.split()[1] == b"200", answer[:300]
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["meta"]["code"] == 200
    refused = _raw(url, f"GET /{path} {version}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    assert json.loads(refused.partition(b"\r\n\r\n")[2])["meta"]["code"] == 401


def test_too_many_header_lines_are_refused_with_431(sb):
    url = sb.env()["BRICKOWL_API_URL"] + "/order/list"
    lines = "".join(f"X-{i}: y\r\n" for i in range(101))
    answer = _raw(url, f"GET /v1/order/list HTTP/1.1\r\nHost: x\r\n{lines}Connection: close\r\n\r\n".encode())
    assert answer.split()[1] == b"431"


def test_a_nonce_is_refused_within_the_window_and_forgotten_after_it():
    from marketsync.sandbox.bricklink import NONCE_WINDOW, TIMESTAMP_TOLERANCE, BrickLinkStore

    assert NONCE_WINDOW >= 2 * TIMESTAMP_TOLERANCE  # a replay older than this has a refused timestamp anyway
    store = BrickLinkStore()
    start = 1_700_000_000.0
    assert store.remember_nonce("a", start) is True
    for step in range(1, 30_000):  # far past the old 10,000-entry threshold, all within the window
        assert store.remember_nonce(f"n{step}", start + step * 0.01)
    assert store.remember_nonce("a", start + 300) is False  # replayed within the window
    assert store.remember_nonce("n29999", start + 301) is False
    assert store.remember_nonce("a", start + NONCE_WINDOW + 1) is True  # past the window: forgotten
    assert len(store._nonces) == len(store._nonce_order) < 30_000  # the old ones were dropped


def test_nonce_bookkeeping_never_rebuilds_its_table():
    """The table used to be rebuilt on every request once it held 10,000 nonces (quadratic: minutes
    for 100,000 calls). Now each call appends one nonce and drops only the ones that left the window:
    the same table and queue throughout, each nonce dropped once. (That 100,000 calls take linear
    time is measured by ``benchmarks/run.py nonces``, not here.)"""
    from marketsync.sandbox.bricklink import NONCE_WINDOW, BrickLinkStore

    store = BrickLinkStore()
    table, queue = store._nonces, store._nonce_order
    start, calls, step = 1_700_000_000.0, 50_000, 0.1  # 5,000 s of calls: the window fills, then slides
    for i in range(calls):
        assert store.remember_nonce(f"nonce-{i}", start + i * step)
    assert store._nonces is table and store._nonce_order is queue  # never rebuilt
    within = sum(1 for i in range(calls) if start + i * step > start + (calls - 1) * step - NONCE_WINDOW)
    assert len(table) == len(queue) == within < calls  # each nonce that left the window dropped once


# ---------------------------------------------------------------------- BrickLink: orders
def test_orders_filed_and_status_filters(sb, http):
    store = sb.bricklink
    paid = store.add_order(status="PAID", lines=[LINE])
    filed = store.add_order(status="COMPLETED", lines=[LINE], is_filed=True)
    store.add_order(status="PURGED", lines=[LINE])

    def ids(**params):
        r = bl(http, sb, "/orders", params=params)
        assert r.status_code == 200, r.text
        return {o["order_id"] for o in r.json()["data"]}

    assert filed not in ids() and paid in ids()
    assert ids(filed="true") == {filed}
    assert ids(status="paid") == {paid}
    assert paid not in ids(status="-Paid,-purged")
    assert ids(filled="true") == ids()  # unknown parameters are ignored, like the real API
    assert ids(direction="out") == set()
    assert ids(filed="True") == {filed} and ids(filed="False") == ids()  # what Python clients send: accepted
    for bad in ("1", "yes", ""):
        r = bl(http, sb, "/orders", params={"filed": bad})
        assert r.status_code == 400
        assert r.json()["meta"] == {"description": "filed must be 'true' or 'false'", "message": "PARAMETER_MISSING_OR_INVALID", "code": 400}
    assert ("bricklink", "GET", "/orders", {"filed": "true"}) in sb.requests


def test_summary_and_full_order_formats(sb, http):
    store = sb.bricklink
    oid = store.add_order(status="PAID", buyer_name=None, lines=[LINE, dict(LINE, inventory_id=124, quantity=1, unit_price="2")])
    summary = bl(http, sb, "/orders").json()["data"][0]
    assert summary["order_id"] == oid and isinstance(summary["order_id"], int)
    assert "buyer_name" not in summary  # nulls are omitted, never sent as null
    assert "buyer_email" not in summary and "shipping" not in summary
    assert (summary["total_count"], summary["unique_count"]) == (5, 2)
    assert summary["cost"]["subtotal"] == "2.6000" and summary["cost"]["grand_total"] == "6.1000"
    assert summary["payment"]["status"] == "Received"
    assert summary["date_ordered"].endswith("Z") and len(summary["date_ordered"]) == 24
    full = bl(http, sb, f"/orders/{oid}").json()["data"]
    assert full["shipping"]["address"]["country_code"] == "US" and full["cost"]["shipping"] == "3.5000"
    assert full["total_weight"].count(".") == 1 and len(full["total_weight"].split(".")[1]) == 2
    assert "tracking_no" not in full["shipping"] and "null" not in bl(http, sb, f"/orders/{oid}").text

    before = summary["date_status_changed"]
    store.set_status(oid, "PACKED")
    after = bl(http, sb, "/orders").json()["data"][0]
    assert after["status"] == "PACKED" and after["date_status_changed"] > before

    r = bl(http, sb, "/orders/999")
    assert r.status_code == 404 and r.json()["meta"]["message"] == "RESOURCE_NOT_FOUND" and r.json()["meta"]["code"] == 404


def test_items_array_of_arrays_batches_and_entities(sb, http):
    store = sb.bricklink
    oid = store.add_order(lines=[dict(LINE, name="Slope 30 (Cheese) Don't", remarks=None, description="It's (new)")])
    data = bl(http, sb, f"/orders/{oid}/items").json()["data"]
    assert isinstance(data, list) and len(data) == 1 and isinstance(data[0], list)
    item = data[0][0]
    assert item["item"] == {"no": "3001", "name": "Slope 30 &#40;Cheese&#41; Don&#39;t", "type": "PART", "category_id": 0}
    assert html.unescape(item["description"]) == "It's (new)"
    assert "remarks" not in item and "completeness" not in item
    assert item["unit_price"] == item["unit_price_final"] == item["disp_unit_price"] == "0.1500"
    assert (item["color_id"], item["color_name"], item["inventory_id"]) == (11, "Black", 123)
    assert set(item) >= {"order_cost", "currency_code", "disp_currency_code", "weight", "quantity", "new_or_used"}

    first_date = bl(http, sb, "/orders").json()["data"][0]["date_ordered"]
    store.add_batch(oid, [dict(LINE, inventory_id=200, quantity=10)])
    data = bl(http, sb, f"/orders/{oid}/items").json()["data"]
    assert [[i["inventory_id"] for i in batch] for batch in data] == [[123], [200]]
    summary = bl(http, sb, "/orders").json()["data"][0]
    assert (summary["total_count"], summary["unique_count"]) == (14, 2)
    assert summary["date_ordered"] > first_date  # not immutable: resets when a batch is added
    assert summary["status"] == "UPDATED" and summary["payment"]["status"] == "None"  # and payment is cleared

    store.remove_line(oid, 2, 200)
    assert bl(http, sb, f"/orders/{oid}/items").json()["data"] == [[data[0][0]], []]
    assert bl(http, sb, "/orders").json()["data"][0]["total_count"] == 4


def test_inventories(sb, http):
    sb.bricklink.add_lot("3069b", 11, 80, remarks="B02", unit_price="0.104", name="Tile 1 x 2 with Groove", inventory_id=55984791)
    sb.bricklink.add_lot("3001", 5, 10, remarks="C01", status="S")
    lots = bl(http, sb, "/inventories").json()["data"]
    assert {lot["remarks"] for lot in lots} == {"B02", "C01"}
    tile = next(lot for lot in lots if lot["inventory_id"] == 55984791)
    assert tile["unit_price"] == "0.1040" and tile["item"]["no"] == "3069b" and tile["is_stock_room"] is False
    assert [lot["inventory_id"] for lot in bl(http, sb, "/inventories", params={"status": "Y"}).json()["data"]] == [55984791]
    assert bl(http, sb, "/inventories/55984791").json()["data"]["quantity"] == 80


# ---------------------------------------------------------------------- BrickOwl
def test_brickowl_key_check(sb, http):
    for params in ({}, {"key": "wrong"}):
        r = http.get(sb.brickowl_url + "/order/list", params=params, timeout=5)
        assert r.status_code == 200 and r.json() == {"error": {"status": "Invalid API key"}}
    sb.brickowl.auth_error_status = 401
    assert bo(http, sb, "/order/list", key="wrong").status_code == 401
    assert bo(http, sb, "/order/list").json() == []


def test_brickowl_items_format(sb, http):
    oid = sb.brickowl.add_order(lines=[BO_LINE, dict(BO_LINE, boid="3001", color_id=0, bl_lot_id=None, full_con="usedg", lot_id=None)])
    items = bo(http, sb, "/order/items", order_id=oid).json()
    assert items[0]["external_lot_ids"] == {"other": "55984791"} and items[0]["bl_lot_id"] == "55984791"
    assert items[1]["external_lot_ids"] == [] and items[1]["bl_lot_id"] is None
    assert items[0]["color_id"] == "38" and items[0]["color_name"] == "Black"
    assert items[1]["color_id"] == 0 and items[1]["lot_id"] is None  # raw number / null quirks
    assert items[0]["base_price"] == "0.104" and items[0]["ordered_quantity"] == "2"
    assert (items[1]["condition"], items[1]["full_con"]) == ("Used (Good)", "usedg")
    assert items[0]["personal_note"] == "B02" and items[0]["ids"] == BO_LINE["ids"]
    assert items[0]["order_item_id"] != items[1]["order_item_id"]
    assert set(items[0]) == {"order_item_id", "lot_id", "boid", "type", "name", "color_id", "color_name", "condition",
                             "full_con", "ordered_quantity", "refunded_quantity", "remaining_quantity", "base_price",
                             "weight", "personal_note", "public_note", "bl_lot_id", "external_lot_ids", "ids"}  # fmt: skip
    assert bo(http, sb, "/order/items", order_id="1").json() == {"error": {"status": "Order not found"}}


def test_brickowl_order_list_filters(sb, http):
    store = sb.brickowl
    t0 = 1_700_000_000
    a = store.add_order(status="Pending", lines=[BO_LINE], order_time=t0)
    b = store.add_order(status=2, lines=[BO_LINE, BO_LINE], order_time=t0 + 100)
    c = store.add_order(status="Shipped", lines=[BO_LINE], order_time=t0 + 200)
    listing = bo(http, sb, "/order/list").json()
    assert [o["order_id"] for o in listing] == [c, b, a]  # newest first
    assert listing[1] == {"order_id": b, "order_date": str(t0 + 100), "total_quantity": "4", "total_lots": "2",
                          "base_order_total": "4.92", "status": "Payment Received", "status_id": "2"}  # fmt: skip
    ids = lambda **p: [o["order_id"] for o in bo(http, sb, "/order/list", **p).json()]  # noqa: E731
    assert ids(status="Payment Received") == [b] == ids(status="2") == ids(status="payment received")
    assert ids(order_time=t0 + 100) == [c, b]
    assert ids(limit=2) == [c, b]
    store.set_status(a, "Processing")  # updated_time becomes now
    assert ids(sort_by="updated") == [a, c, b]
    assert ids(sort_by="updated", order_time=t0 + 150) == [a, c]
    assert ids(list_type="customer") == []
    assert "error" in bo(http, sb, "/order/list", status="Nope").json()
    assert len({a, b, c}) == 3 and all(x.isdigit() for x in (a, b, c))


def test_brickowl_view(sb, http):
    oid = sb.brickowl.add_order(status="Payment Received", buyer_name="Ann Smith", lines=[BO_LINE],
                                order_time=dt.datetime(2024, 7, 1, 12, 0, tzinfo=dt.timezone.utc))  # fmt: skip
    view = bo(http, sb, "/order/view", order_id=oid).json()
    assert view["order_time"] == "1719835200" and view["iso_order_time"] == "2024-07-01T13:00:00+01:00"
    assert view["processed_time"] is None and view["iso_processed_time"] == "1970-01-01T01:00:00+01:00"
    assert (view["sub_total"], view["ship_total"], view["base_order_total"]) == ("0.21", "4.50", "4.71")
    assert view["status"] == "Payment Received" and view["status_id"] == "2"
    assert view["buyer_name"] == "Ann Smith" and view["ship_first_name"] == "Ann" and "billing_city" in view
    assert "customer_user_id" in view and "customer_id" not in view  # the real names (test_sandbox_strict.py)
    sb.brickowl.set_status(oid, "Processed")
    view = bo(http, sb, "/order/view", order_id=oid).json()
    assert view["processed_time"] is not None and view["status_id"] == "4"
    assert int(view["updated_time"]) > 1719835200


def test_brickowl_catalog(sb, http):
    colors = bo(http, sb, "/catalog/color_list").json()
    assert colors["38"] == {"id": "38", "name": "Black", "bl_ids": ["11"]}
    assert colors["50"]["bl_ids"] == ["85"] and colors["162"]["bl_ids"] == ["-9"]
    sb.brickowl.add_id_lookup("3069b", ["487300-38", "487300"])
    assert bo(http, sb, "/catalog/id_lookup", id="3069b", type="Part", id_type="bl_item_no").json() == {"boids": ["487300-38", "487300"]}
    assert bo(http, sb, "/catalog/id_lookup", id="nope", type="Part", id_type="bl_item_no").json() == {"boids": []}


def test_brickowl_rate_limit(sb, http):
    sb.brickowl.rate_limit = (3, 60)
    statuses = [bo(http, sb, "/order/list").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    r = bo(http, sb, "/order/list")
    assert r.headers["Content-Type"].startswith("text/html") and "<html>" in r.text
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert sb.brickowl.throttled == 3
    assert sb.calls[("brickowl", "GET /order/list")] == 6
    sb.brickowl.rate_limit = None
    assert bo(http, sb, "/order/list").status_code == 200


# ---------------------------------------------------------------------- faults
def _call(sb, http, provider, timeout=5):
    if provider == "bricklink":
        return http.get(sb.bricklink_url + "/orders", auth=auth_for(sb), timeout=timeout)
    return http.get(sb.brickowl_url + "/order/list", params={"key": sb.brickowl.api_key}, timeout=timeout)


ENDPOINT = {"bricklink": "GET /orders", "brickowl": "GET /order/list"}


@pytest.mark.parametrize("provider", ["bricklink", "brickowl"])
def test_http_faults_on_the_wire(sb, http, provider):
    inject = lambda fault, **o: sb.inject(provider, ENDPOINT[provider], fault, **o)  # noqa: E731
    inject("500")
    r = _call(sb, http, provider)
    assert r.status_code == 500
    if provider == "bricklink":
        assert r.json()["meta"]["code"] == 500
    else:
        assert r.headers["Content-Type"].startswith("text/html")
    inject("html503")
    r = _call(sb, http, provider)
    assert r.status_code == 503 and "503 Service Temporarily Unavailable" in r.text and "nginx" in r.text
    inject("429", retry_after=7)
    r = _call(sb, http, provider)
    assert r.status_code == 429 and r.headers["Retry-After"] == "7" and "<html>" in r.text
    inject("malformed")
    r = _call(sb, http, provider)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.text)
    inject("not_json")
    r = _call(sb, http, provider)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    inject("auth_in_200")
    r = _call(sb, http, provider)
    assert r.status_code == 200
    if provider == "bricklink":
        assert r.json() == {"meta": {"description": "SIGNATURE_INVALID", "message": "BAD_OAUTH_REQUEST", "code": 401}}
    else:
        assert r.json() == {"error": {"status": "Invalid API key"}}
    inject("reset")
    with pytest.raises(requests.ConnectionError):
        _call(sb, http, provider)
    assert _call(sb, http, provider).status_code == 200  # faults are consumed
    assert sb.calls[(provider, ENDPOINT[provider])] == 8


def test_provider_specific_faults(sb, http):
    sb.inject("bricklink", "*", "ip_mismatch")
    assert _call(sb, http, "bricklink").json() == {
        "meta": {"description": "TOKEN_IP_MISMATCHED", "message": "BAD_OAUTH_REQUEST", "code": 401}, "data": {}}  # fmt: skip
    sb.inject("brickowl", "*", "error_string")
    r = _call(sb, http, "brickowl")
    assert r.status_code == 200 and r.json() == {"error": "Some plain string"}
    with pytest.raises(ValueError):
        sb.inject("brickowl", "*", "ip_mismatch")
    with pytest.raises(ValueError):
        sb.inject("bricklink", "GET /orderz", "500")
    with pytest.raises(ValueError):
        sb.inject("bricklink", "*", "explode")


def test_hang_times_out_and_stop_does_not_wait():
    sandbox = Sandbox().start()
    with requests.Session() as http:
        sandbox.inject("brickowl", "*", "hang", seconds=30)
        with pytest.raises(requests.Timeout):
            _call(sandbox, http, "brickowl", timeout=0.2)
        started = time.monotonic()
        sandbox.stop()
    assert time.monotonic() - started < 2


def _raw_get(sb: Sandbox, path: str) -> socket.socket:
    """A GET to BrickOwl on a plain socket (to watch the bytes arrive)."""
    assert sb.brickowl_url is not None
    host, port = sb.brickowl_url.split("//")[1].split("/")[0].split(":")
    conn = socket.create_connection((host, int(port)), timeout=5)
    conn.sendall(f"GET /v1{path}?key={sb.brickowl.api_key} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return conn


def _read_until(conn: socket.socket, marker: bytes, got: bytearray) -> float:
    """Read into ``got`` until ``marker`` is in it; the moment it arrived."""
    while marker not in got:
        chunk = conn.recv(65536)
        assert chunk, f"connection closed before {marker!r}: {bytes(got)!r}"
        got += chunk
    return time.monotonic()


@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "headers-too"])
def test_drip_sends_the_real_answer_one_byte_at_a_time(sb, http, headers_too):
    sb.brickowl.add_order(lines=[BO_LINE])
    expected = bo(http, sb, "/order/list").content
    interval = 0.01
    sb.inject("brickowl", "GET /order/list", "drip", interval=interval, headers_too=headers_too)
    started = time.monotonic()
    with _raw_get(sb, "/order/list") as conn:
        got = bytearray()
        head_at = _read_until(conn, b"\r\n\r\n", got)
        head = bytes(got).split(b"\r\n\r\n")[0] + b"\r\n\r\n"
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        while len(got) < len(head) + length:
            chunk = conn.recv(65536)
            assert chunk, "the drip stopped early"
            got += chunk
        done_at = time.monotonic()
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and bytes(got[len(head):]) == expected  # the real answer
    assert length == len(expected) > 50
    if headers_too:  # from the status line on, a byte per interval: never faster
        assert head_at - started >= (len(head) - 1) * interval * 0.9
        assert done_at - started >= (len(head) + length - 1) * interval * 0.9
    else:  # the head at once, then the body a byte per interval
        assert done_at - head_at >= (length - 1) * interval * 0.9
        assert head_at - started < (done_at - head_at) / 2
    assert bo(http, sb, "/order/list").content == expected  # one fault, then plain answers


def test_a_drip_ends_when_the_sandbox_stops():
    sandbox = Sandbox().start()
    sandbox.brickowl.add_order(lines=[BO_LINE])
    with requests.Session() as http:
        full = len(bo(http, sandbox, "/order/list").content)
    sandbox.inject("brickowl", "*", "drip", times=None)  # one byte every 0.5 s: over a minute for this answer
    with _raw_get(sandbox, "/order/list") as conn:
        got = bytearray()
        _read_until(conn, b"\r\n\r\n", got)
        started = time.monotonic()
        sandbox.stop()
        with contextlib.suppress(ConnectionResetError):  # reset, or closed: either way it ended
            while chunk := conn.recv(65536):
                got += chunk
        assert time.monotonic() - started < 3
    body = bytes(got).split(b"\r\n\r\n", 1)[1]
    assert full > 100 and len(body) < 10  # a few bytes at most: cut off, not finished
    assert not sandbox.errors


def test_a_drip_on_a_write_applies_the_change(sb):
    lot = sb.brickowl.add_lot("487300-38", 10)
    sb.inject("brickowl", "POST /inventory/update", "drip", interval=0.001)
    r = requests.post(sb.brickowl_url + "/inventory/update", timeout=5,
                      data={"key": sb.brickowl.api_key, "lot_id": lot, "relative_quantity": "-3"})
    assert r.json() == {"status": "success"} and sb.brickowl.get_lot(lot).qty == 7
    with pytest.raises(ValueError, match="interval"):
        sb.inject("brickowl", "*", "drip", interval=0)


def test_delete_order_bricklink(sb, http):
    store = sb.bricklink
    kept = store.add_order(lines=[LINE])
    gone = store.add_order(lines=[dict(LINE, inventory_id=store.add_lot("3001", 11, 10))])
    filed = store.add_order(lines=[LINE], is_filed=True)
    lots_before = [(x.inventory_id, x.quantity) for x in store.all_lots()]
    store.delete_order(gone)
    store.delete_order(filed)
    assert [o["order_id"] for o in bl(http, sb, "/orders").json()["data"]] == [kept]
    assert bl(http, sb, "/orders", params={"filed": "true"}).json()["data"] == []
    for path in (f"/orders/{gone}", f"/orders/{gone}/items", f"/orders/{filed}"):
        r = bl(http, sb, path)
        assert r.status_code == 404 and r.json()["meta"]["message"] == "RESOURCE_NOT_FOUND"
    assert [(x.inventory_id, x.quantity) for x in store.all_lots()] == lots_before  # lots are left alone
    with pytest.raises(KeyError):
        store.delete_order(gone)


def test_delete_order_brickowl(sb, http):
    store = sb.brickowl
    kept = store.add_order(lines=[BO_LINE])
    gone = store.add_order(lines=[BO_LINE])
    store.delete_order(gone)
    assert [o["order_id"] for o in bo(http, sb, "/order/list").json()] == [kept]
    for path in ("/order/view", "/order/items"):
        r = bo(http, sb, path, order_id=gone)
        assert r.status_code == 404 and r.json() == {"error": {"status": "Order not found"}}
    assert bo(http, sb, "/order/view", order_id=kept).json()["order_id"] == kept
    with pytest.raises(KeyError):
        store.delete_order(gone)


def test_hang_then_answers(sb, http):
    sb.inject("brickowl", "*", "hang", seconds=0.05)
    assert _call(sb, http, "brickowl").json() == []


def test_fault_order_times_and_clear(sb, http):
    sb.bricklink.add_order(lines=[LINE])
    oid = next(iter(sb.bricklink.orders))
    sb.inject("bricklink", "GET /orders/{id}/items", "500", times=2)
    sb.inject("bricklink", "*", "html503", times=None)
    items = f"{sb.bricklink_url}/orders/{oid}/items"
    codes = [http.get(items, auth=auth_for(sb), timeout=5).status_code for _ in range(3)]
    assert codes == [500, 500, 503]
    assert _call(sb, http, "bricklink").status_code == 503
    sb.clear_faults()
    assert _call(sb, http, "bricklink").status_code == 200
    assert sb.calls[("bricklink", "GET /orders/{id}/items")] == 3
    assert sb.calls[("bricklink", "GET /orders")] == 2


def test_call_counting_includes_rejections(sb, http):
    oid = sb.bricklink.add_order(lines=[LINE])
    bl(http, sb, f"/orders/{oid}")
    bl(http, sb, f"/orders/{oid}", auth=auth_for(sb, token_secret="bad"))
    bo(http, sb, "/order/list", key="bad")
    bo(http, sb, "/order/view", order_id="42")
    assert sb.calls == Counter({("bricklink", "GET /orders/{id}"): 2, ("brickowl", "GET /order/list"): 1,
                                ("brickowl", "GET /order/view"): 1})  # fmt: skip
    assert sb.requests[-1] == ("brickowl", "GET", "/order/view", {"key": sb.brickowl.api_key, "order_id": "42"})
    sb.reset_calls()
    assert not sb.calls and not sb.requests


# ---------------------------------------------------------------------- demo store
def test_demo_inventory_rows_and_csv(tmp_path):
    rows = demo_inventory_rows(1)
    assert 60 <= len(rows) <= 80
    assert rows == demo_inventory_rows(1) and rows != demo_inventory_rows(2)
    assert all(set(r) == {"part_number", "color_id", "condition", "location", "quantity", "name", "bricklink_lot_id", "price"} for r in rows)
    assert {r["condition"] for r in rows} == {"new", "used"}
    keys = Counter((r["part_number"], r["color_id"], r["condition"]) for r in rows)
    assert any(n > 1 for n in keys.values())  # some parts in two locations
    assert len({r["location"] for r in rows}) == len(rows)
    assert 3 <= sum(1 for r in rows if r["bricklink_lot_id"]) <= 12
    path = write_demo_inventory_csv(tmp_path / "inv.csv")
    with path.open() as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["part_number", "color_id", "condition", "location", "quantity", "name", "bricklink_lot_id", "price"]
        assert len(list(reader)) == len(rows)


def test_demo_bricklink_orders(demo, http):
    unfiled = bl(http, demo, "/orders").json()["data"]
    filed = bl(http, demo, "/orders", params={"filed": "true"}).json()["data"]
    assert len(filed) == 1 and 25 <= len(unfiled) + len(filed) <= 35
    statuses = {o["status"] for o in unfiled + filed}
    assert statuses >= set(BRICKLINK_STATUS) and "HOLDING" in statuses
    rows = demo_inventory_rows(1)
    locations = {(r["part_number"], r["color_id"], "N" if r["condition"] == "new" else "U"): set() for r in rows}
    for r in rows:
        locations[(r["part_number"], r["color_id"], "N" if r["condition"] == "new" else "U")].add(r["location"])
    matched = unmatched = wrong_bin = 0
    batches, names = [], []
    for order in unfiled + filed:
        data = bl(http, demo, f"/orders/{order['order_id']}/items").json()["data"]
        batches.append(len(data))
        for item in (i for batch in data for i in batch):
            key = (item["item"]["no"], item["color_id"], item["new_or_used"])
            if key not in locations:
                unmatched += 1
            elif item.get("remarks") in locations[key]:
                matched += 1
            else:
                wrong_bin += 1
        names += [item["item"]["name"] for batch in data for item in batch]
    assert max(batches) >= 2 and matched > 3 * (unmatched + wrong_bin) and unmatched >= 2 and wrong_bin >= 2
    assert any("&#40;" in name for name in names) and any("&#39;" in name for name in names)
    assert all("(" not in name and "'" not in name for name in names)


def test_demo_brickowl_orders(demo, http):
    orders = bo(http, demo, "/order/list").json()
    assert 25 <= len(orders) <= 35 and {o["status_id"] for o in orders} == set(BRICKOWL_STATUS_IDS)
    ids = [int(o["order_id"]) for o in orders]
    assert ids != sorted(ids, reverse=True)  # newest first, but ids are not chronological
    lots = demo_lots(1)
    linked = {x.bricklink_lot_id for x in lots if x.bricklink_lot_id}
    parts = {x.part_number for x in lots}
    routes = Counter()
    for o in orders:
        for item in bo(http, demo, "/order/items", order_id=o["order_id"]).json():
            base = item["boid"].split("-")[0]
            if item["bl_lot_id"]:
                assert item["bl_lot_id"] in linked and item["external_lot_ids"] == {"other": item["bl_lot_id"]}
                routes["link"] += 1
            alt = {i["id"] for i in item["ids"] if i["type"] in ("ldraw", "peeron_id", "design_id")} & parts
            if any(base in demo.brickowl.id_lookup.get(p, []) for p in parts):
                routes["lookup"] += 1
            elif alt & set(IDS_ONLY_PARTS):
                routes["ids"] += 1
            else:
                routes["unknown"] += 1
            routes["other_con"] += item["full_con"] == "other"
            routes["no_bl_colour"] += item["color_id"] == "162"
    assert routes["link"] >= 3 and routes["lookup"] >= 20 and routes["ids"] >= 3
    assert routes["unknown"] >= 1 and routes["other_con"] >= 1 and routes["no_bl_colour"] >= 1
    boids = bo(http, demo, "/catalog/id_lookup", id="3069b", type="Part", id_type="bl_item_no").json()["boids"]
    assert "487300" in boids and any(b.startswith("487300-") for b in boids)


def test_demo_is_deterministic():
    a, b = Sandbox(demo=True, seed=1), Sandbox(demo=True, seed=1)
    assert [o.lines for o in a.bricklink.orders.values()] == [o.lines for o in b.bricklink.orders.values()]
    assert [o.status for o in a.bricklink.orders.values()] == [o.status for o in b.bricklink.orders.values()]
    assert list(a.brickowl.orders) == list(b.brickowl.orders)
    strip = lambda lines: [{k: v for k, v in x.items() if k != "order_item_id"} for x in lines]  # noqa: E731
    assert [strip(o.lines) for o in a.brickowl.orders.values()] == [strip(o.lines) for o in b.brickowl.orders.values()]


def test_generate_store_is_lazy_and_stable(http):
    with Sandbox() as sandbox:
        sandbox.brickowl.rate_limit = None
        made = generate_store(sandbox, 300, 8, seed=3, open_fraction=0.3)
        assert len(made["bricklink"]) == len(sandbox.bricklink.orders) == 300 and len(made["brickowl"]) == 300
        summaries = bl(http, sandbox, "/orders").json()["data"]
        assert len(summaries) == 300 and all(s["unique_count"] == 8 for s in summaries)
        open_count = sum(s["status"] in ("PENDING", "PAID", "PROCESSING", "READY", "PACKED") for s in summaries)
        assert 40 < open_count < 160
        oid = made["bricklink"][7]
        first = bl(http, sandbox, f"/orders/{oid}/items").text
        assert first == bl(http, sandbox, f"/orders/{oid}/items").text
        total = sum(i["quantity"] for i in json.loads(first)["data"][0])
        assert next(s for s in summaries if s["order_id"] == oid)["total_count"] == total
        assert sandbox.bricklink.orders[oid]._batches is None  # still lazy
        boid = made["brickowl"][5]
        items = bo(http, sandbox, "/order/items", order_id=boid).json()
        assert items == bo(http, sandbox, "/order/items", order_id=boid).json() and len(items) == 8
        assert len(bo(http, sandbox, "/order/list").json()) == 300
        assert len(bo(http, sandbox, "/order/list", limit=5000).json()) == 300
        assert not sandbox.errors


def test_module_entry_point_prints_env_and_serves():
    proc = subprocess.Popen([sys.executable, "-m", "marketsync.sandbox"], stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    try:
        env = {}
        while "BRICKOWL_API_URL" not in env:
            line = proc.stdout.readline()
            assert line, "sandbox exited early"
            name, _, value = line.strip().partition("=")
            env[name] = value
        assert set(env) >= {"BRICKLINK_CONSUMER_KEY", "BRICKOWL_API_KEY", "BRICKLINK_API_URL"}
        r = requests.get(env["BRICKOWL_API_URL"] + "/order/list", params={"key": env["BRICKOWL_API_KEY"]}, timeout=5)
        assert len(r.json()) >= 25
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        proc.stdout.close()
