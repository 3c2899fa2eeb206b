"""The BrickLink adapter against the loopback sandbox over real HTTP: field mapping, the query
it sends, every error path and fault, and the sync listing."""

from __future__ import annotations

import datetime as dt
import json
import time
from decimal import Decimal

import pytest

from marketsync.config import HttpSettings
from marketsync.errors import (
    AuthError,
    NotFoundError,
    ProviderError,
    RateLimitedError,
    RequestRejectedError,
    TransientError,
)
from marketsync import parse
from marketsync.providers import bricklink, build_adapter
from marketsync.providers.bricklink import BrickLink
from marketsync.providers.http import CallCounter
from marketsync.model import RemoteLot, Order, OrderLine, OrderSummary, SyncListing
from support import is_utc, reading_recorded

UTC = dt.timezone.utc
PLACED = dt.datetime(2023, 9, 29, 16, 21, 57, 923000, tzinfo=UTC)


@pytest.fixture
def sb(sandbox):
    return sandbox  # the conftest fixture fails the test on any emulator error


def make(sb, *, retries=2, timeout=5.0, backoff=0.001, cap=0.01, budget=None, counter=None, environ=None) -> BrickLink:
    settings = HttpSettings(timeout=timeout, retries=retries, backoff=backoff, retry_after_cap=cap,
                            bricklink_daily_budget=budget)
    return build_adapter("bricklink", settings, counter=counter or CallCounter(), environ=environ or sb.env())


def orders_queries(sb):
    return [q for p, m, path, q in sb.requests if p == "bricklink" and path == "/orders"]



def seed_order(sb, **kw) -> int:
    kw.setdefault("lines", [{"no": "3001", "color_id": 11, "quantity": 1, "unit_price": "139.99"}])
    return sb.bricklink.add_order(**{"status": "PAID", "buyer_name": "jaggerous", "date_ordered": PLACED, **kw})


# ---------------------------------------------------------------------- OrderSummary
def test_summary_fields(sb):
    oid = seed_order(sb)
    [head] = make(sb).list_orders()
    assert isinstance(head, OrderSummary)
    assert head.provider == "bricklink"
    assert head.order_id == str(oid) and isinstance(head.order_id, str)
    assert (head.status, head.provider_status) == ("paid", "PAID")
    assert is_utc(head.date_ordered) and head.date_ordered == PLACED  # milliseconds kept
    assert head.raw["order_id"] == oid  # the JSON integer, untouched
    assert head.raw["date_ordered"] == "2023-09-29T16:21:57.923Z"
    assert "buyer_email" not in head.raw  # not part of a summary
    assert head.fingerprint == f"PAID|{head.raw['date_status_changed']}|1|1|143.4900"


def test_fingerprint_changes_with_status_items_and_totals_only(sb):
    oid = seed_order(sb)
    adapter = make(sb)
    first = adapter.list_orders()[0].fingerprint
    assert adapter.list_orders()[0].fingerprint == first  # stable when nothing changed
    sb.bricklink.set_status(oid, "PACKED")
    packed = adapter.list_orders()[0].fingerprint
    assert packed != first
    sb.bricklink.add_batch(oid, [{"no": "3004", "color_id": 5, "quantity": 3}])
    assert adapter.list_orders()[0].fingerprint not in (first, packed)


@pytest.mark.parametrize("raw, unified", [
    ("PENDING", "pending"), ("UPDATED", "pending"), ("PAID-PENDING", "pending"), ("PAID", "paid"),
    ("PROCESSING", "processing"), ("READY", "processing"), ("PACKED", "packed"), ("SHIPPED", "shipped"),
    ("RECEIVED", "completed"), ("COMPLETED", "completed"), ("OCR", "disputed"), ("NPB", "disputed"),
    ("NPX", "disputed"), ("NRS", "disputed"), ("NSS", "disputed"), ("CANCELLED", "cancelled"),
    ("PURGED", "cancelled"), ("HOLOGRAPHIC-HOLD", "unknown"), ("Paid", "paid"),
])  # fmt: skip
def test_every_status_maps_and_unknown_ones_do_not_crash(sb, raw, unified):
    seed_order(sb, status=raw)
    [head] = make(sb).list_orders()
    assert (head.status, head.provider_status) == (unified, raw)
    assert make(sb).fetch(head)[0].status == unified


# ---------------------------------------------------------------------- Order
def test_full_order_fields(sb):
    oid = seed_order(sb, tracking_no="1Z999", shipping_cost=Decimal("3.5000"), buyer_email="j@example.org",
                     remarks="please rush")
    order = make(sb).fetch_order(str(oid))
    assert isinstance(order, Order)
    assert order.provider == "bricklink" and order.order_id == str(oid)
    assert (order.status, order.provider_status) == ("paid", "PAID")
    assert order.date_ordered == PLACED and is_utc(order.date_ordered)
    assert is_utc(order.date_status_changed)
    assert order.buyer_name == "jaggerous"
    assert order.buyer_email == "j@example.org"
    assert order.lot_count == 1 and order.piece_count == 1
    assert type(order.lot_count) is int and type(order.piece_count) is int
    assert order.subtotal == Decimal("139.9900") and str(order.subtotal) == "139.9900"  # never a float
    assert order.grand_total == Decimal("143.4900") and isinstance(order.grand_total, Decimal)
    assert order.currency == "USD"
    assert order.payment_status == "Received"
    assert order.shipping_method == "USPS First Class Package"
    assert order.tracking_number == "1Z999"
    assert order.is_filed is False
    assert order.raw["remarks"] == "please rush" and order.raw["cost"]["subtotal"] == "139.9900"
    assert order.fingerprint == make(sb).list_orders()[0].fingerprint  # same as the summary's


def test_fetch_builds_the_order_from_the_summary_with_one_call_for_items(sb):
    oid = seed_order(sb)
    adapter = make(sb)
    [head] = adapter.list_orders()
    sb.reset_calls()
    order, lines = adapter.fetch(head)
    assert sb.calls == {("bricklink", "GET /orders/{id}/items"): 1}
    assert order.order_id == str(oid) and order.raw == head.raw  # the entry as listed (kept as text)
    assert order.grand_total == Decimal("143.4900") and order.payment_status == "Received"
    assert order.buyer_email is None  # a summary carries no e-mail
    assert [line.part_number for line in lines] == ["3001"]


def test_omitted_nulls_read_as_none(sb):
    oid = seed_order(sb, buyer_name=None, status="PENDING")
    adapter = make(sb)
    [head] = adapter.list_orders()
    assert "buyer_name" not in head.raw  # BrickLink omits nulls rather than sending them
    assert "date_paid" not in head.raw["payment"]
    order = adapter.fetch_order(str(oid))
    assert order.buyer_name is None and order.buyer_email is None and order.tracking_number is None
    assert adapter.fetch(head)[0].buyer_name is None


def test_filed_orders_are_listed_only_when_asked_and_marked_filed(sb):
    unfiled = seed_order(sb)
    filed = seed_order(sb, is_filed=True)
    adapter = make(sb)
    assert [s.order_id for s in adapter.list_orders()] == [str(unfiled)]
    [head] = adapter.list_orders(filed=True)
    assert head.order_id == str(filed)
    assert adapter.fetch(head)[0].is_filed is True
    assert adapter.fetch_order(str(filed)).is_filed is True
    assert orders_queries(sb) == [{"direction": "in", "filed": "false"}, {"direction": "in", "filed": "true"}]


def test_the_order_query_is_exactly_direction_in_and_lowercase_filed(sb):
    adapter = make(sb)
    adapter.list_orders()
    adapter.list_orders(filed=True)
    adapter.list_for_sync(first=True, open_ids=set())
    for query in orders_queries(sb):
        assert query["direction"] == "in"
        assert query["filed"] in ("true", "false")  # lowercase strings, never True/False
        assert "filled" not in query
        assert set(query) == {"direction", "filed"}


# ---------------------------------------------------------------------- OrderLine
def test_items_array_of_arrays_is_flattened_with_batches(sb):
    lot = sb.bricklink.add_lot("3001", 11, 50, remarks="A01", unit_price="0.1500", name="Brick 2 x 4")
    oid = seed_order(sb, lines=[
        {"inventory_id": lot, "no": "3001", "color_id": 11, "quantity": 4, "new_or_used": "N", "unit_price": "0.1500"},
        {"no": "973pb1", "color_id": 0, "quantity": 1, "new_or_used": "U", "type": "MINIFIG", "remarks": None,
         "name": "Torso Ümlaut ☃ (Blue)", "unit_price": "1.2300"},
    ])  # fmt: skip
    sb.bricklink.add_batch(oid, [{"no": "3004", "color_id": 5, "quantity": 2, "remarks": "SB01", "unit_price": "0.07"}])
    lines = make(sb).fetch_lines(str(oid))
    assert [type(x) for x in lines] == [OrderLine] * 3
    first, minifig, later = lines
    inv = [str(x.raw["inventory_id"]) for x in lines]
    assert [x.line_key for x in lines] == [f"1:{inv[0]}", f"1:{inv[1]}", f"2:{inv[2]}"]
    assert [x.batch for x in lines] == [1, 1, 2]
    assert all(x.provider == "bricklink" and x.order_id == str(oid) for x in lines)

    assert first.part_number == "3001" and first.color_id == 11 and first.color_name == "Black"
    assert first.quantity == 4 and type(first.quantity) is int
    assert first.condition == "new" and first.location == "A01"
    assert first.name == "Brick 2 x 4" and first.item_type == "PART"
    assert first.unit_price == Decimal("0.1500") and str(first.unit_price) == "0.1500"
    assert first.currency == "USD"
    assert first.provider_lot_id == first.bricklink_lot_id == str(lot)
    assert first.boid is None and first.alt_part_numbers == [] and first.provider_color_id is None

    assert minifig.condition == "used" and minifig.item_type == "MINIFIG"
    assert minifig.color_id == 0 and type(minifig.color_id) is int  # colourless is 0, not None
    assert "remarks" not in minifig.raw and minifig.location is None
    assert minifig.name == "Torso Ümlaut ☃ (Blue)"  # entities decoded, unicode intact
    assert minifig.raw["item"]["name"] == "Torso Ümlaut ☃ &#40;Blue&#41;"  # raw kept as received

    assert later.location == "SB01" and later.unit_price == Decimal("0.0700") and later.quantity == 2


def test_html_entities_are_decoded_exactly_once(sb):
    oid = seed_order(sb, lines=[
        {"no": "3001", "color_id": 11, "name": "Literally &#40;x&#41; in the name", "description": "It's"},
        {"no": "3002", "color_id": 11, "name": "Tom's (big) <brick> & \"co\""},
    ])  # fmt: skip
    literal, plain = make(sb).fetch_lines(str(oid))
    assert literal.raw["item"]["name"] == "Literally &amp;#40;x&amp;#41; in the name"
    assert literal.name == "Literally &#40;x&#41; in the name"  # &amp;#40; -> &#40;, not '('
    assert plain.raw["item"]["name"] == "Tom&#39;s &#40;big&#41; &lt;brick&gt; &amp; &quot;co&quot;"
    assert plain.name == "Tom's (big) <brick> & \"co\""


def test_an_emptied_batch_keeps_later_batch_numbers(sb):
    oid = seed_order(sb, lines=[{"no": "3001", "color_id": 11, "inventory_id": 777}])
    sb.bricklink.add_batch(oid, [{"no": "3003", "color_id": 1, "inventory_id": 888}])
    sb.bricklink.remove_line(oid, 1, 777)  # batch 1 is now []
    [line] = make(sb).fetch_lines(str(oid))
    assert (line.line_key, line.batch, line.part_number) == ("2:888", 2, "3003")


def test_an_order_with_no_items_has_no_lines(sb):
    oid = seed_order(sb, lines=[])
    assert make(sb).fetch_lines(str(oid)) == []


# ---------------------------------------------------------------------- InventoryLot
def test_inventory_lots(sb):
    sb.bricklink.add_lot("3001", 11, 40, remarks="D14", unit_price="0.1234", name="Brick (2 x 4)", inventory_id=501)
    sb.bricklink.add_lot("973pb1", 0, 2, new_or_used="U", remarks=None, type="MINIFIG", inventory_id=502)
    sb.bricklink.add_lot("3003", 5, 9, new_or_used="X", inventory_id=503)  # no usable condition
    lots = {lot.bricklink_lot_id: lot for lot in make(sb).list_lots()}
    assert set(lots) == {"501", "502", "503"} and lots["503"].condition is None
    brick, fig = lots["501"], lots["502"]
    assert isinstance(brick, RemoteLot) and brick.remote_lot_id == "501"
    assert (brick.part_number, brick.color_id, brick.condition, brick.location, brick.quantity) == ("3001", 11, "new", "D14", 40)
    assert brick.name == "Brick (2 x 4)" and brick.item_type == "PART"
    assert brick.price == Decimal("0.1234") and isinstance(brick.price, Decimal)
    assert (fig.condition, fig.location, fig.color_id, fig.item_type) == ("used", "", 0, "MINIFIG")


# ---------------------------------------------------------------------- auth and refusals
def test_auth_failure_inside_http_200_is_an_auth_error(sb):
    adapter = make(sb, retries=4)
    sb.inject("bricklink", "GET /orders", "auth_in_200", times=None)
    with pytest.raises(AuthError) as caught:
        adapter.list_orders()  # must never read as "no orders"
    assert sb.calls[("bricklink", "GET /orders")] == 1
    assert "SIGNATURE_INVALID" in str(caught.value) and "credentials" in str(caught.value)


def test_token_ip_mismatch_explains_the_0000_fix(sb):
    adapter = make(sb, retries=4)
    sb.inject("bricklink", "GET /orders", "ip_mismatch", times=None)
    with pytest.raises(AuthError) as caught:
        adapter.list_orders()
    message = str(caught.value)
    assert "TOKEN_IP_MISMATCHED" in message and "0.0.0.0" in message and "IP" in message
    assert "\n" not in message
    assert sb.calls[("bricklink", "GET /orders")] == 1


@pytest.mark.parametrize("name, reason", [
    ("BRICKLINK_CONSUMER_SECRET", "SIGNATURE_INVALID"), ("BRICKLINK_TOKEN_SECRET", "SIGNATURE_INVALID"),
    ("BRICKLINK_CONSUMER_KEY", "CONSUMER_KEY_UNKNOWN"), ("BRICKLINK_TOKEN_VALUE", "TOKEN_VALUE_UNKNOWN"),
])  # fmt: skip
@pytest.mark.parametrize("http_status", [200, 401])
def test_wrong_credentials_are_an_auth_error_naming_the_credentials(sb, name, reason, http_status):
    sb.bricklink.auth_error_status = http_status  # both forms are seen in the field
    env = {**sb.env(), name: sb.env()[name][::-1]}
    adapter = make(sb, retries=4, environ=env)
    with pytest.raises(AuthError) as caught:
        adapter.list_orders()
    message = str(caught.value)
    assert reason in message and "BRICKLINK_" in message and "credential" in message
    assert sb.calls[("bricklink", "GET /orders")] == 1  # never retried


def test_signed_query_parameters_are_accepted(sb):
    """Query parameters are part of the OAuth signature: a wrongly signed query is SIGNATURE_INVALID."""
    seed_order(sb, status="PAID")
    seed_order(sb, status="PURGED")
    data = make(sb).client.get("/orders", {"direction": "in", "status": "-purged,-cancelled"})
    assert [o["status"] for o in data] == ["PAID"]


def test_not_found_and_rejected(sb):
    adapter = make(sb, retries=4)
    with pytest.raises(NotFoundError) as caught:
        adapter.fetch_lines("31337")
    assert str(caught.value) == "bricklink: GET /orders/{id}/items refused: RESOURCE_NOT_FOUND / Order not found: 31337"
    with pytest.raises(RequestRejectedError):
        adapter.fetch_order("abc")
    assert sum(sb.calls.values()) == 2


def test_a_rejected_query_is_not_retried(sb):
    adapter = make(sb, retries=4)
    with pytest.raises(RequestRejectedError) as caught:
        adapter.client.get("/orders", {"direction": "in", "filed": "yes"}, endpoint="/orders")
    assert "PARAMETER_MISSING_OR_INVALID" in str(caught.value)
    assert sb.calls[("bricklink", "GET /orders")] == 1


# ---------------------------------------------------------------------- every fault on every endpoint
ENDPOINTS = {
    "GET /orders": lambda a, oid: a.list_orders(),
    "GET /orders/{id}": lambda a, oid: a.fetch_order(oid),
    "GET /orders/{id}/items": lambda a, oid: a.fetch_lines(oid),
}
TRANSIENT = ["500", "html503", "429", "reset", "malformed", "not_json"]


@pytest.mark.parametrize("fault", TRANSIENT)
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_transient_fault_is_retried_then_succeeds(sb, endpoint, fault):
    oid = str(seed_order(sb))
    counter = CallCounter()
    adapter = make(sb, retries=2, counter=counter)
    sb.inject("bricklink", endpoint, fault, times=2)
    result = ENDPOINTS[endpoint](adapter, oid)
    assert result  # the real answer arrived on the third attempt
    assert sb.calls[("bricklink", endpoint)] == 3
    assert counter.totals == {"bricklink": 3}


@pytest.mark.parametrize("fault", TRANSIENT)
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_transient_fault_gives_up_after_retries_plus_one(sb, endpoint, fault):
    oid = str(seed_order(sb))
    adapter = make(sb, retries=2)
    sb.inject("bricklink", endpoint, fault, times=3)
    with pytest.raises(ProviderError) as caught:
        ENDPOINTS[endpoint](adapter, oid)
    assert isinstance(caught.value, (TransientError, RateLimitedError))
    message = str(caught.value)
    assert message.startswith(f"bricklink: {endpoint} ") and message.endswith("(gave up after 3 attempts)")
    assert oid not in message.replace("{id}", "")  # endpoint template, not the URL
    assert sb.calls[("bricklink", endpoint)] == 3


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_hang_times_out_quickly_and_is_retried(sb, endpoint):
    oid = str(seed_order(sb))
    adapter = make(sb, retries=1, timeout=0.25)
    sb.inject("bricklink", endpoint, "hang", times=1, seconds=10)
    assert ENDPOINTS[endpoint](adapter, oid)
    sb.inject("bricklink", endpoint, "hang", times=2, seconds=10)
    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        ENDPOINTS[endpoint](adapter, oid)
    assert time.monotonic() - started < 5  # two 0.25 s timeouts, not the 10 s hang
    assert str(caught.value) == f"bricklink: {endpoint} timed out after 0.25s (gave up after 2 attempts)"
    assert sb.calls[("bricklink", endpoint)] == 4


@pytest.mark.parametrize("fault", ["auth_in_200", "ip_mismatch"])
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_auth_faults_are_not_retried(sb, endpoint, fault):
    oid = str(seed_order(sb))
    adapter = make(sb, retries=4)
    sb.inject("bricklink", endpoint, fault, times=None)
    with pytest.raises(AuthError):
        ENDPOINTS[endpoint](adapter, oid)
    assert sb.calls[("bricklink", endpoint)] == 1


# ---------------------------------------------------------------------- the order list, read entry by entry
def test_an_order_list_is_decoded_entry_by_entry_as_it_is_read(sb, monkeypatch):
    ids = [str(seed_order(sb, buyer_name=f"buyer {n}")) for n in range(300)]
    at_summary, pieces = reading_recorded(monkeypatch, bricklink)
    heads = make(sb).list_orders()
    assert sorted(h.order_id for h in heads) == sorted(ids)
    assert len(pieces) >= 3 and max(pieces) <= parse.LIST_CHUNK  # never the body's text whole
    assert at_summary[0] == 1 and at_summary[-1] == len(pieces)  # the first order made from the first piece
    head = heads[0]
    assert not hasattr(head, "__dict__") and isinstance(head.raw_json, str)  # compact: no dict per entry
    assert head.raw["buyer_name"].startswith("buyer ") and head.raw["order_id"] == int(head.order_id)


def test_an_order_list_cut_short_mid_array_raises_one_line_and_returns_nothing(sb, monkeypatch):
    for n in range(300):
        seed_order(sb, buyer_name=f"buyer {n}")
    at_summary, _ = reading_recorded(monkeypatch, bricklink)
    sb.inject("bricklink", "GET /orders", "malformed", times=None)  # half the body: cut inside the array
    with pytest.raises(TransientError) as caught:
        make(sb, retries=0).list_orders()
    assert len(at_summary) > 100  # entries before the cut were read, and are dropped with the rest
    assert str(caught.value) == "bricklink: GET /orders answered HTTP 200 with a body that is not JSON"


# ---------------------------------------------------------------------- list_for_sync
def test_first_sync_lists_unfiled_and_filed(sb):
    a = seed_order(sb)
    b = seed_order(sb, is_filed=True)
    listing = make(sb).list_for_sync(first=True, open_ids=set())
    assert isinstance(listing, SyncListing)
    assert {s.order_id for s in listing.summaries} == {str(a), str(b)}
    assert listing.warnings == [] and listing.complete
    assert [q["filed"] for q in orders_queries(sb)] == ["false", "true"]


def test_full_sync_lists_filed_too(sb):
    seed_order(sb, is_filed=True)
    listing = make(sb).list_for_sync(first=False, full=True, open_ids=set())
    assert len(listing.summaries) == 1
    assert sb.calls[("bricklink", "GET /orders")] == 2


def test_steady_state_costs_one_call(sb):
    a = seed_order(sb)
    seed_order(sb, is_filed=True, status="COMPLETED")
    listing = make(sb).list_for_sync(first=False, open_ids={str(a)})
    assert [s.order_id for s in listing.summaries] == [str(a)]
    assert sum(sb.calls.values()) == 1
    assert orders_queries(sb) == [{"direction": "in", "filed": "false"}]


def test_an_open_order_that_was_filed_triggers_the_filed_list(sb):
    a = seed_order(sb)
    b = seed_order(sb)
    adapter = make(sb)
    sb.bricklink.set_filed(a)
    sb.bricklink.set_status(a, "SHIPPED")
    listing = adapter.list_for_sync(first=False, open_ids={str(a), str(b)})
    by_id = {s.order_id: s for s in listing.summaries}
    assert set(by_id) == {str(a), str(b)}
    assert by_id[str(a)].status == "shipped" and by_id[str(a)].raw["is_filed"] is True
    assert [q["filed"] for q in orders_queries(sb)] == ["false", "true"]
    assert sb.calls.get(("bricklink", "GET /orders/{id}"), 0) == 0
    assert listing.warnings == []


def test_an_open_order_listed_nowhere_is_fetched_by_id(sb):
    a = seed_order(sb, status="PACKED")
    sb.bricklink.orders[a].is_filed = None  # neither filed nor unfiled: both lists leave it out
    listing = make(sb).list_for_sync(first=False, open_ids={str(a)})
    [head] = listing.summaries
    assert (head.order_id, head.status) == (str(a), "packed")
    assert sb.calls[("bricklink", "GET /orders")] == 2
    assert sb.calls[("bricklink", "GET /orders/{id}")] == 1
    assert listing.warnings == []


def test_an_open_order_gone_from_bricklink_is_a_warning_not_an_error(sb):
    a = seed_order(sb)
    listing = make(sb, retries=4).list_for_sync(first=False, open_ids={str(a), "99999999"})
    assert [s.order_id for s in listing.summaries] == [str(a)]
    assert len(listing.warnings) == 1 and "99999999" in listing.warnings[0]
    assert sb.calls[("bricklink", "GET /orders/{id}")] == 1  # a 404 is not retried


def test_other_failures_while_fetching_a_missing_order_propagate(sb):
    adapter = make(sb, retries=1)
    sb.inject("bricklink", "GET /orders/{id}", "500", times=None)
    with pytest.raises(TransientError):
        adapter.list_for_sync(first=False, open_ids={"99999999"})


def test_an_auth_hint_is_found_by_its_code_word_when_detail_follows():
    import requests

    from marketsync.providers.bricklink import decode

    response = requests.Response()
    response.status_code = 200
    response._content = json.dumps({"meta": {"code": 401, "message": "BAD_OAUTH_REQUEST",
                                             "description": "TOKEN_IP_MISMATCHED: consumer: ABC, ip: 10.1.2.3"}}).encode()
    with pytest.raises(AuthError) as caught:
        decode("GET /orders", response)
    assert "0.0.0.0" in str(caught.value)  # the hint, though the description carries more than the code



# ---------------------------------------------------------------------- tolerant parsing of real captures
@pytest.mark.parametrize("link, number", [
    ("https://tools.usps.com/go/TrackConfirmAction?tLabels=9400111899223197428490", "9400111899223197428490"),
    ("https://www.royalmail.com/track-your-item#/tracking-results/RM123456785GB", "RM123456785GB"),
    ("https://www.ups.com/track?loc=en_US&tracknum=1Z999", "1Z999"),
    ("https://www.dhl.com/en/express/tracking.html?AWB=1234567890&brand=DHL", "1234567890"),
    ("https://t.17track.net/en#nums=LX123456789CN", "LX123456789CN"),
    ("https://parcels.example/shipments/CP123456789DE/", "CP123456789DE"),
])  # fmt: skip
def test_a_tracking_link_without_a_number_gives_the_number_in_it(link, number):
    from marketsync.providers.bricklink import order_from

    raw = {"order_id": 1, "status": "SHIPPED", "shipping": {"tracking_link": link.replace("&", "&amp;")}}
    assert order_from(raw).tracking_number == number  # entities decoded first, as in every BrickLink text


def test_a_tracking_link_with_no_recognisable_number_is_kept_whole_and_a_number_wins():
    from marketsync.providers.bricklink import order_from

    link = "https://carrier.example/track"
    assert order_from({"order_id": 1, "shipping": {"tracking_link": link}}).tracking_number == link
    both = {"order_id": 1, "shipping": {"tracking_no": "1Z999", "tracking_link": "https://x.example/?tracknum=2"}}
    assert order_from(both).tracking_number == "1Z999"
    assert order_from({"order_id": 1, "shipping": {"tracking_link": None}}).tracking_number is None
    assert order_from({"order_id": 1, "shipping": []}).tracking_number is None


def test_lines_without_colour_names_are_named_from_the_colour_table():
    from marketsync.providers.bricklink import line_from

    def named(**raw):
        return line_from("1", 1, 0, {"inventory_id": 5, "item": {"no": "3001", "categoryID": 5}, **raw}).color_name

    assert named(color_id=11) == "Black" and named(color_id="85") == "Dark Bluish Gray"
    assert named(color_id=0) == "(Not Applicable)" and named(color_id=99999) is None
    assert named(color_id=11, color_name="Black &#40;Solid&#41;") == "Black (Solid)"  # what is sent wins


def test_summaries_read_flags_and_currency_tolerantly():
    from marketsync.providers.bricklink import order_from, summary

    assert summary({"order_id": 1, "is_filed": "false"}).is_filed is False
    assert summary({"order_id": 1, "is_filed": "true"}).is_filed is True
    assert summary({"order_id": 1, "is_filed": 1}).is_filed is True
    order = order_from({"order_id": 1, "cost": {"grand_total": "4.1000"}, "payment": {"currency_code": "EUR"}})
    assert order.currency == "EUR" and order.grand_total == Decimal("4.1000")  # no final_total needed


# ---------------------------------------------------------------------- the lot list, decoded as read
def test_a_long_lot_list_is_read_whole_with_its_repeated_values_shared(sb):
    for n in range(3000):  # a body of ~1.5 MB: more than one chunk of the streamed decoding
        sb.bricklink.add_lot(f"{3001 + n % 7}", 1 + n % 5, 1 + n, remarks=f"B{n}", unit_price="0.1000",
                             description="" if n % 3 else "bulk lot", inventory_id=10_000 + n)
    sb.bricklink.add_lot("3001", 1, 5, remarks="S1", inventory_id=99_999, status="S")  # a stockroom: never listed
    lots = make(sb).list_lots()
    assert [lot.remote_lot_id for lot in lots] == [str(10_000 + n) for n in range(3000)]
    assert [lot.quantity for lot in lots] == [1 + n for n in range(3000)]
    assert [lot.location for lot in lots] == [f"B{n}" for n in range(3000)]
    assert {lot.price for lot in lots} == {Decimal("0.1")}
    assert lots[0].description == "bulk lot" and lots[1].description == ""
    assert lots[0].part_number is lots[7].part_number and lots[0].name is lots[7].name  # one object, not 3000


@pytest.mark.parametrize("fault, error", [("auth_in_200", AuthError), ("html503", TransientError),
                                          ("malformed", TransientError), ("not_json", TransientError),
                                          ("500", TransientError)])
def test_a_lot_list_that_is_not_one_raises_what_the_whole_body_says(sb, fault, error):
    sb.bricklink.add_lot("3001", 11, 40, remarks="D14", inventory_id=501)
    sb.inject("bricklink", "GET /inventories", fault, times=None)
    with pytest.raises(error):
        make(sb, retries=0).list_lots()  # never an empty store, never the lots before the cut


@pytest.mark.parametrize("method, url, body", [
    ("GET", "http://127.0.0.1:8080/api/orders?direction=in&filed=false", None),
    ("GET", "https://api.bricklink.com/api/store/v1/orders/123/items", None),
    ("GET", "http://Host.Example:80/a/b?x=1&x=2&y=&z=a+b", None),
    ("GET", "http://h", None),
    ("GET", "http://h/x?a=%20b", None),  # a query to decode: signed by OAuth1 itself
    ("PUT", "http://h/inventories/5", '{"quantity": "+1"}'),  # a body: OAuth1 itself
])
def test_the_signer_signs_as_oauth1_does(monkeypatch, method, url, body):
    """BrickLink's requests are signed with the same Authorization header as requests_oauthlib's
    OAuth1 gives them (same nonce and timestamp), whichever way the signer takes."""
    import oauthlib.common
    import oauthlib.oauth1.rfc5849
    import requests

    for module in (oauthlib.common, oauthlib.oauth1.rfc5849):
        monkeypatch.setattr(module, "generate_nonce", lambda: "18237465091827364501700000000")
        monkeypatch.setattr(module, "generate_timestamp", lambda: "1700000000")
    signer = BrickLink.auth({"BRICKLINK_CONSUMER_KEY": "ck é", "BRICKLINK_CONSUMER_SECRET": "cs&1",
                             "BRICKLINK_TOKEN_VALUE": "tv", "BRICKLINK_TOKEN_SECRET": "t s~"})
    signed = []
    for auth in (signer, signer.full):
        request = requests.PreparedRequest()
        request.prepare(method=method, url=url, headers={"Accept": "application/json"}, data=body, auth=auth)
        signed.append((request.url, request.body, request.headers["Authorization"]))
    assert signed[0] == signed[1]
    assert b'oauth_signature="' in signed[0][2]
