"""The BrickOwl adapter against the loopback sandbox over real HTTP: field mapping, the query it
sends, error objects inside 2xx, every fault, truncation and the per-status re-listing."""

from __future__ import annotations

import datetime as dt
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
from marketsync.providers import brickowl, build_adapter
from marketsync.providers.brickowl import BrickOwl, OrderList
from marketsync.providers.http import CallCounter
from marketsync.model import Order, OrderLine, OrderSummary, SyncListing
from marketsync.providers.brickowl import unified_status as brickowl_status
from support import is_utc, reading_recorded

UTC = dt.timezone.utc
PLACED = 1398955037  # 2014-05-01T14:37:17Z: British Summer Time, so iso_order_time says +01:00
TILE_IDS = [{"id": "3069", "type": "design_id"}, {"id": "306926", "type": "item_no"},
            {"id": "3069b", "type": "ldraw"}, {"id": "3069b", "type": "peeron_id"},
            {"id": "487300-38", "type": "boid"}]  # fmt: skip
TILE = {"boid": "487300-38", "color_id": 38, "full_con": "new", "ordered_quantity": 3, "refunded_quantity": 1,
        "personal_note": "B02", "base_price": "0.104", "bl_lot_id": "55984791", "ids": TILE_IDS,
        "name": "LEGO Black Tile 1 x 2 with Groove (3069)"}  # fmt: skip
STATUSES = ["Pending", "Payment Submitted", "Payment Received", "Processing", "Processed", "Shipped",
            "Received", "On Hold", "Cancelled"]  # fmt: skip


@pytest.fixture
def sb(sandbox):
    return sandbox  # the conftest fixture fails the test on any emulator error


def make(sb, *, retries=2, timeout=5.0, backoff=0.001, cap=0.01, rate=None, counter=None, environ=None,
         list_limit=None) -> BrickOwl:
    settings = HttpSettings(timeout=timeout, retries=retries, backoff=backoff, retry_after_cap=cap,
                            brickowl_rate_limit=rate)
    adapter = build_adapter("brickowl", settings, counter=counter or CallCounter(), environ=environ or sb.env())
    if list_limit is not None:
        adapter.list_limit = list_limit
    return adapter


def list_queries(sb):
    return [q for p, m, path, q in sb.requests if p == "brickowl" and path == "/order/list"]



def seed_order(sb, **kw) -> str:
    kw.setdefault("lines", [TILE])
    return sb.brickowl.add_order(**{"status": "Payment Received", "buyer_name": "Zoë Ångström",
                                    "order_time": PLACED, **kw})


# ---------------------------------------------------------------------- OrderSummary
def test_summary_fields(sb):
    oid = seed_order(sb)
    listing = make(sb).list_orders()
    assert isinstance(listing, OrderList) and listing.truncated is False
    [head] = listing.summaries
    assert isinstance(head, OrderSummary)
    assert head.provider == "brickowl" and head.order_id == oid and isinstance(head.order_id, str)
    assert (head.status, head.provider_status) == ("paid", "Payment Received")
    assert head.date_ordered == dt.datetime.fromtimestamp(PLACED, UTC) and is_utc(head.date_ordered)
    assert head.raw_json is None and head.raw == {}  # fetching asks for the detail: nothing more of the entry is kept
    assert head.fingerprint == "payment received|3|1|4.81"  # status | pieces | lots | total (0.312 + 4.50)


@pytest.mark.parametrize("index, name", list(enumerate(STATUSES)))
def test_every_status_maps(sb, index, name):
    expected = ["pending", "pending", "paid", "processing", "packed", "shipped", "completed", "processing",
                "cancelled"][index]  # fmt: skip
    seed_order(sb, status=name)
    adapter = make(sb)
    [head] = adapter.list_orders().summaries
    assert (head.status, head.provider_status) == (expected, name)
    assert adapter.fetch_order(head.order_id).status == expected


def test_unknown_statuses_become_unknown():
    assert brickowl_status("Awaiting Teleport", "42") == "unknown"
    assert brickowl_status(None, None) == "unknown"
    assert brickowl_status(None, "8") == "cancelled"  # the id alone is enough
    assert brickowl_status("  on hold ", None) == "processing"


def test_fingerprint_changes_when_the_order_changes(sb):
    oid = seed_order(sb)
    adapter = make(sb)
    before = adapter.list_orders().summaries[0].fingerprint
    assert adapter.list_orders().summaries[0].fingerprint == before
    sb.brickowl.set_status(oid, "Processing")
    processing = adapter.list_orders().summaries[0].fingerprint
    assert processing != before
    sb.brickowl.set_lines(oid, [TILE, {**TILE, "boid": "3001", "color_id": 0}])
    assert adapter.list_orders().summaries[0].fingerprint not in (before, processing)


# ---------------------------------------------------------------------- Order
def test_order_view_fields(sb):
    oid = seed_order(sb, tracking_number="RM123456785GB", updated_time=PLACED + 3600,
                     customer_email="zoe@example.org", base_currency="GBP")
    order = make(sb).fetch_order(oid)
    assert isinstance(order, Order)
    assert order.provider == "brickowl" and order.order_id == oid
    assert (order.status, order.provider_status) == ("paid", "Payment Received")
    # Unix-second strings and the Europe/London iso offset name the same instant
    assert order.raw["order_time"] == str(PLACED) and order.raw["iso_order_time"].endswith("+01:00")
    assert order.date_ordered == dt.datetime.fromisoformat(order.raw["iso_order_time"])
    assert is_utc(order.date_ordered) and order.date_ordered == dt.datetime(2014, 5, 1, 14, 37, 17, tzinfo=UTC)
    assert order.date_status_changed == dt.datetime.fromtimestamp(PLACED + 3600, UTC)
    assert is_utc(order.date_status_changed)
    assert order.buyer_name == "Zoë Ångström"  # unicode intact
    assert order.buyer_email == "zoe@example.org"
    assert order.lot_count == 1 and order.piece_count == 3
    assert type(order.lot_count) is int and type(order.piece_count) is int
    assert order.subtotal == Decimal("0.31") and isinstance(order.subtotal, Decimal)
    assert order.grand_total == Decimal("4.81") and str(order.grand_total) == "4.81"
    assert order.currency == "GBP"
    assert order.shipping_method == "Royal Mail Tracked"
    assert order.tracking_number == "RM123456785GB"
    assert order.payment_status is None and order.is_filed is False
    assert order.raw["processed_time"] is None and order.raw["iso_processed_time"] == "1970-01-01T01:00:00+01:00"
    assert order.fingerprint == "payment received|3|1|4.81"  # the detail's, in the list's form


def test_fetch_keeps_the_list_fingerprint_and_costs_two_calls(sb):
    oid = seed_order(sb)
    adapter = make(sb)
    [head] = adapter.list_orders().summaries
    sb.reset_calls()
    order, lines = adapter.fetch(head)
    assert order.order_id == oid and order.fingerprint == head.fingerprint
    assert [line.boid for line in lines] == ["487300-38"]
    assert sb.calls == {("brickowl", "GET /order/view"): 1, ("brickowl", "GET /order/items"): 1}
    assert [q["order_id"] for p, m, path, q in sb.requests] == [oid, oid]


def test_missing_buyer_name_falls_back_to_the_username(sb):
    oid = seed_order(sb, buyer_name="", customer_username="brickbuyer77")
    assert make(sb).fetch_order(oid).buyer_name == "brickbuyer77"


# ---------------------------------------------------------------------- OrderLine
def test_order_item_fields(sb):
    oid = seed_order(sb, lines=[
        TILE,
        {"boid": "3001", "color_id": 0, "full_con": "other", "lot_id": None, "personal_note": "",
         "ordered_quantity": 1, "base_price": "1.5", "ids": [{"id": "3001", "type": "peeron_id"}],
         "name": "Brick 2 x 4 ☃"},
        {"boid": "3004-21", "full_con": "usedg", "ordered_quantity": 2, "refunded_quantity": 2, "personal_note": "C7"},
        {"boid": "3005-21", "full_con": "news", "bl_lot_id": "", "ids": []},
    ])  # fmt: skip
    lines = make(sb).fetch_lines(oid)
    assert [type(x) for x in lines] == [OrderLine] * 4
    tile, other, refunded, sealed = lines
    assert all(x.provider == "brickowl" and x.order_id == oid for x in lines)
    assert len({x.line_key for x in lines}) == 4

    assert tile.line_key == tile.raw["order_item_id"] and isinstance(tile.line_key, str)
    assert tile.quantity == 2 and type(tile.quantity) is int  # 3 ordered - 1 refunded
    assert tile.condition == "new" and tile.provider_condition == "new"
    assert tile.location == "B02"
    assert tile.name == "LEGO Black Tile 1 x 2 with Groove (3069)" and tile.item_type == "Part"
    assert tile.color_name == "Black"
    assert tile.unit_price == Decimal("0.104") and str(tile.unit_price) == "0.104"
    assert tile.provider_lot_id == tile.raw["lot_id"] and tile.provider_lot_id is not None
    assert tile.bricklink_lot_id == "55984791"
    assert tile.raw["bl_lot_id"] == "55984791" and tile.raw["external_lot_ids"] == {"other": "55984791"}
    assert tile.boid == "487300-38" and tile.provider_color_id == 38 and type(tile.provider_color_id) is int
    assert tile.alt_part_numbers == ["3069b", "3069"]  # ldraw, peeron_id, design_id; duplicates once
    assert tile.part_number is None and tile.color_id is None  # translated later (identity.py)

    assert other.condition is None and other.provider_condition == "other"  # flagged, never guessed
    assert other.raw["color_id"] == 0 and other.provider_color_id == 0  # a raw JSON number on the wire
    assert other.raw["lot_id"] is None and other.provider_lot_id is None
    assert other.raw["external_lot_ids"] == [] and other.raw["bl_lot_id"] is None
    assert other.bricklink_lot_id is None
    assert other.location is None  # an empty personal_note is no location
    assert other.alt_part_numbers == ["3001"]
    assert other.name == "Brick 2 x 4 ☃" and other.unit_price == Decimal("1.500")

    assert refunded.condition == "used" and refunded.quantity == 0 and refunded.location == "C7"
    assert refunded.provider_color_id == 21
    assert sealed.condition == "new" and sealed.provider_condition == "news"
    assert sealed.alt_part_numbers == [] and sealed.bricklink_lot_id is None


def test_html_entities_in_names_are_decoded_exactly_once(sb):
    oid = seed_order(sb, lines=[{**TILE, "name": "Tile &#40;3069&#41;"},
                                {**TILE, "name": "Tile &amp;#40;3069&amp;#41;"}])  # fmt: skip
    once, twice = make(sb).fetch_lines(oid)
    assert once.name == "Tile (3069)"
    assert twice.name == "Tile &#40;3069&#41;"
    assert twice.raw["name"] == "Tile &amp;#40;3069&amp;#41;"


def test_an_order_with_no_items(sb):
    oid = seed_order(sb, lines=[])
    assert make(sb).fetch_lines(oid) == []


# ---------------------------------------------------------------------- the list query and truncation
def test_list_query_sends_the_key_sort_limit_and_window(sb):
    adapter = make(sb)
    adapter.list_orders()
    since = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    adapter.list_orders(since=since, status="3", limit=50)
    plain, windowed = list_queries(sb)
    assert plain == {"key": sb.brickowl.api_key, "list_type": "store", "sort_by": "updated", "limit": "5000"}
    assert windowed["order_time"] == str(int(since.timestamp())) == "1714564800"
    assert (windowed["status"], windowed["limit"], windowed["sort_by"]) == ("3", "50", "updated")


def test_order_time_window_is_on_the_update_time(sb):
    now = int(time.time())
    old = seed_order(sb, order_time=now - 86400 * 30)
    updated = seed_order(sb, order_time=now - 86400 * 30, updated_time=now - 60)
    fresh = seed_order(sb, order_time=now - 10)
    since = dt.datetime.fromtimestamp(now - 3600, UTC)
    ids = [s.order_id for s in make(sb).list_orders(since=since).summaries]
    assert sorted(ids) == sorted([updated, fresh]) and old not in ids


def test_an_order_list_is_decoded_entry_by_entry_as_it_is_read(sb, monkeypatch):
    ids = [seed_order(sb, order_time=PLACED + n, buyer_name=f"buyer {n}") for n in range(1500)]
    at_summary, pieces = reading_recorded(monkeypatch, brickowl)
    listing = make(sb).list_orders(limit=1500)
    assert sorted(h.order_id for h in listing.summaries) == sorted(ids) and listing.truncated is True
    assert len(pieces) >= 3 and max(pieces) <= parse.LIST_CHUNK  # never the body's text whole
    assert at_summary[0] == 1 and at_summary[-1] == len(pieces)  # the first order made from the first piece
    assert not hasattr(listing.summaries[0], "__dict__")  # compact: no dict per entry


def test_an_order_list_cut_short_mid_array_raises_one_line_and_returns_nothing(sb, monkeypatch):
    for n in range(400):
        seed_order(sb, order_time=PLACED + n, buyer_name=f"buyer {n}")
    at_summary, _ = reading_recorded(monkeypatch, brickowl)
    sb.inject("brickowl", "GET /order/list", "malformed", times=None)  # half the body: cut inside the array
    with pytest.raises(TransientError) as caught:
        make(sb, retries=0).list_orders()
    assert len(at_summary) > 100  # entries before the cut were read, and are dropped with the rest
    assert str(caught.value) == "brickowl: GET /order/list answered HTTP 200 with a body that is not JSON"


def test_truncation_is_detected_at_the_limit(sb):
    for i in range(3):
        seed_order(sb, order_time=PLACED + i)
    adapter = make(sb)
    assert adapter.list_orders(limit=2).truncated is True
    assert len(adapter.list_orders(limit=2).summaries) == 2
    assert adapter.list_orders(limit=3).truncated is True  # a full answer may hide more
    assert adapter.list_orders(limit=4).truncated is False


# ---------------------------------------------------------------------- list_for_sync
def test_first_sync_lists_everything_in_one_call(sb):
    a, b = seed_order(sb), seed_order(sb, status="Shipped")
    listing = make(sb).list_for_sync(first=True, since=dt.datetime.now(UTC), open_ids=set())
    assert isinstance(listing, SyncListing) and listing.complete and listing.warnings == []
    assert {s.order_id for s in listing.summaries} == {a, b}
    [query] = list_queries(sb)
    assert "order_time" not in query


def test_steady_state_is_one_windowed_call(sb):
    now = int(time.time())
    seed_order(sb, order_time=now - 86400)
    fresh = seed_order(sb, order_time=now)
    since = dt.datetime.fromtimestamp(now - 60, UTC)
    listing = make(sb).list_for_sync(first=False, since=since, open_ids=set())
    assert [s.order_id for s in listing.summaries] == [fresh]
    assert sum(sb.calls.values()) == 1
    assert list_queries(sb)[0]["order_time"] == str(now - 60)


def test_full_sync_ignores_the_window(sb):
    seed_order(sb, order_time=PLACED)
    listing = make(sb).list_for_sync(first=False, full=True, since=dt.datetime.now(UTC), open_ids=set())
    assert len(listing.summaries) == 1 and "order_time" not in list_queries(sb)[0]


def test_a_truncated_list_is_read_again_status_by_status(sb):
    expected = {seed_order(sb, status=name, order_time=PLACED + i) for i, name in enumerate(STATUSES)}
    listing = make(sb, list_limit=2).list_for_sync(first=True, open_ids=set(), since=None)
    assert {s.order_id for s in listing.summaries} == expected
    assert listing.complete and listing.warnings == []
    queries = list_queries(sb)
    assert len(queries) == 1 + 9
    assert "status" not in queries[0]
    assert [q["status"] for q in queries[1:]] == [str(i) for i in range(9)]
    assert all(q["limit"] == "2" for q in queries)


def test_a_status_still_truncated_is_reported_incomplete(sb):
    for i in range(3):
        seed_order(sb, status="Processing", order_time=PLACED + i)
    seed_order(sb, status="Shipped")
    listing = make(sb, list_limit=3).list_for_sync(first=True, open_ids=set(), since=None)
    assert listing.complete is False
    assert listing.warnings == ["more than 3 Processing orders in the window; older ones were not listed "
                                "(BrickOwl lists at most that many per status); they are read again next run"]
    assert len(listing.summaries) == 4


def test_a_closed_status_cut_short_is_said_and_the_window_counts_as_read(sb):
    """order/list has no paging and no upper time bound: the newest ``limit`` of a status is all it
    can give. Closed history beyond that holds no stock; the window must not stay open for it."""
    for i in range(4):
        seed_order(sb, status="Received", order_time=PLACED + i)
    seed_order(sb, status="Processing")
    listing = make(sb, list_limit=3).list_for_sync(first=True, open_ids=set(), since=None)
    assert listing.complete is True
    assert len(listing.warnings) == 1 and "Received" in listing.warnings[0] and "hold no stock" in listing.warnings[0]
    assert {s.status for s in listing.summaries} >= {"completed", "processing"}


def test_a_list_below_the_limit_is_not_re_read(sb):
    seed_order(sb)
    make(sb, list_limit=2).list_for_sync(first=True, open_ids=set(), since=None)
    assert sb.calls[("brickowl", "GET /order/list")] == 1


# ---------------------------------------------------------------------- errors inside 2xx and refusals
def test_invalid_key_is_an_auth_error_not_an_empty_list(sb):
    for status in (200, 401):
        sb.brickowl.auth_error_status = status
        sb.reset_calls()
        adapter = make(sb, retries=4, environ={**sb.env(), "BRICKOWL_API_KEY": "NOT-THE-KEY"})
        with pytest.raises(AuthError) as caught:
            adapter.list_orders()
        assert str(caught.value) == "brickowl: GET /order/list refused: Invalid API key"
        assert sb.calls[("brickowl", "GET /order/list")] == 1


def test_plain_string_error_inside_200_is_detected(sb):
    adapter = make(sb, retries=4)
    sb.inject("brickowl", "GET /order/list", "error_string", times=None, message="Store is on vacation")
    with pytest.raises(RequestRejectedError) as caught:
        adapter.list_orders()
    assert str(caught.value) == "brickowl: GET /order/list refused: Store is on vacation"
    sb.clear_faults()
    sb.inject("brickowl", "GET /order/list", "error_string", times=None, message="Invalid API key")
    with pytest.raises(AuthError):
        adapter.list_orders()
    assert sb.calls[("brickowl", "GET /order/list")] == 2  # neither was retried


def test_unknown_order_is_not_found(sb):
    adapter = make(sb, retries=4)
    with pytest.raises(NotFoundError) as caught:
        adapter.fetch_order("1234567")
    assert str(caught.value) == "brickowl: GET /order/view refused: Order not found"
    with pytest.raises(NotFoundError):
        adapter.fetch_lines("1234567")
    assert sum(sb.calls.values()) == 2


def test_rejected_parameters_are_not_retried(sb):
    adapter = make(sb, retries=4)
    with pytest.raises(RequestRejectedError) as caught:
        adapter.list_orders(status="Teleporting")
    assert "Invalid status" in str(caught.value)
    assert sb.calls[("brickowl", "GET /order/list")] == 1


# ---------------------------------------------------------------------- every fault on every endpoint
ENDPOINTS = {
    "GET /order/list": lambda a, oid: a.list_orders().summaries,
    "GET /order/view": lambda a, oid: a.fetch_order(oid),
    "GET /order/items": lambda a, oid: a.fetch_lines(oid),
}
TRANSIENT = ["500", "html503", "429", "reset", "malformed", "not_json"]


@pytest.mark.parametrize("fault", TRANSIENT)
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_transient_fault_is_retried_then_succeeds(sb, endpoint, fault):
    oid = seed_order(sb)
    counter = CallCounter()
    adapter = make(sb, retries=2, counter=counter)
    sb.inject("brickowl", endpoint, fault, times=2)
    assert ENDPOINTS[endpoint](adapter, oid)
    assert sb.calls[("brickowl", endpoint)] == 3
    assert counter.totals == {"brickowl": 3}


@pytest.mark.parametrize("fault", TRANSIENT)
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_transient_fault_gives_up_after_retries_plus_one(sb, endpoint, fault):
    oid = seed_order(sb)
    adapter = make(sb, retries=2)
    sb.inject("brickowl", endpoint, fault, times=3)
    with pytest.raises(ProviderError) as caught:
        ENDPOINTS[endpoint](adapter, oid)
    assert isinstance(caught.value, (TransientError, RateLimitedError))
    message = str(caught.value)
    assert message.startswith(f"brickowl: {endpoint} ") and message.endswith("(gave up after 3 attempts)")
    assert oid not in message and sb.brickowl.api_key not in message
    assert sb.calls[("brickowl", endpoint)] == 3


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_hang_times_out_quickly_and_is_retried(sb, endpoint):
    oid = seed_order(sb)
    adapter = make(sb, retries=1, timeout=0.25)
    sb.inject("brickowl", endpoint, "hang", times=1, seconds=10)
    assert ENDPOINTS[endpoint](adapter, oid)
    sb.inject("brickowl", endpoint, "hang", times=2, seconds=10)
    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        ENDPOINTS[endpoint](adapter, oid)
    assert time.monotonic() - started < 5  # two 0.25 s timeouts, not the 10 s hang
    assert str(caught.value) == f"brickowl: {endpoint} timed out after 0.25s (gave up after 2 attempts)"
    assert sb.calls[("brickowl", endpoint)] == 4


@pytest.mark.parametrize("fault, opts, error", [
    ("auth_in_200", {}, AuthError),
    ("error_string", {"message": "Invalid API key"}, AuthError),
    ("error_string", {}, RequestRejectedError),
])  # fmt: skip
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_errors_inside_200_are_not_retried(sb, endpoint, fault, opts, error):
    oid = seed_order(sb)
    adapter = make(sb, retries=4)
    sb.inject("brickowl", endpoint, fault, times=None, **opts)
    with pytest.raises(error):
        ENDPOINTS[endpoint](adapter, oid)
    assert sb.calls[("brickowl", endpoint)] == 1


def test_the_real_rate_limiter_429_is_retried_after_its_retry_after(sb):
    sb.brickowl.rate_limit = (2, 60.0)
    adapter = make(sb, retries=1, cap=0.01)
    adapter.list_orders()
    adapter.list_orders()
    with pytest.raises(RateLimitedError) as caught:
        adapter.list_orders()
    assert caught.value.retry_after is not None and caught.value.retry_after >= 1
    assert sb.brickowl.throttled == 2


# ---------------------------------------------------------------------- tolerant parsing of real captures
def test_color_list_entries_without_an_id_are_keyed_by_the_object_key(sb):
    adapter = make(sb)
    sb.quirks = sb.quirks | {"color_list_placeholders"}
    table = adapter.color_list()
    assert table[38] == ("Black", 11) and table[162][1] is None
    assert table[9001] == ("Speckle Black-Gold", None) and table[9002][1] is None and table[9003][1] is None

    from marketsync.providers import brickowl

    class Canned:
        def get(self, path, params=None, **kw):
            return {"38": {"name": "Black", "bl_ids": ["11"]}, "50": {"id": "50", "bl_ids": "85"},
                    "9": "not an object", "x": {"name": "no id at all"}}

    canned = brickowl.BrickOwl(Canned())  # type: ignore[arg-type, unused-ignore]
    assert canned.color_list() == {38: ("Black", 11), 50: (None, 85)}


def test_a_view_without_unix_times_reads_the_iso_order_time():
    from marketsync.providers.brickowl import order_from

    order = order_from("5", {"status": "Pending", "iso_order_time": "2014-05-01T15:37:17+01:00"})
    assert order.date_ordered == dt.datetime(2014, 5, 1, 14, 37, 17, tzinfo=UTC) and is_utc(order.date_ordered)
    assert order.date_status_changed is None and order.buyer_email is None
    raw = {"status_id": 3, "order_time": 1398955037, "total_quantity": 3, "total_lots": 1, "base_order_total": 4.81,
           "buyer_name": [], "customer_username": "zoe", "tracking_number": [], "base_currency": "GBP",
           "payment_currency": "EUR"}  # fmt: skip
    order = order_from("5", raw)
    assert (order.status, order.piece_count, order.lot_count, order.grand_total) == ("processing", 3, 1, Decimal("4.81"))
    assert (order.buyer_name, order.tracking_number, order.currency) == ("zoe", None, "GBP")
    assert order.fingerprint == "processing|3|1|4.81"


@pytest.mark.parametrize("ids, expected", [
    ([{"type": "design_id", "id": "3069"}, {"type": "ldraw", "id": "3069b"}, {"type": "peeron_id", "id": "3069b"}],
     ["3069b", "3069"]),  # by trust, each once
    ([{"type": "design_id", "id": " 1 "}, {"type": "design_id", "id": "2"}, {"type": "design_id", "id": "1"}],
     ["1", "2"]),  # in the order given within a type
    ([{"type": ["ldraw"], "id": "x"}, {"type": {"a": 1}, "id": "y"}, {"type": 5, "id": "z"}, {"type": "LDRAW", "id": "w"},
      {"type": "ldraw"}, {"type": "ldraw", "id": ""}, {"type": "ldraw", "id": 3001}, "ldraw", None], ["3001"]),
    (None, []), ({"type": "ldraw", "id": "1"}, []), ([], []),
])
def test_alternative_ids(ids, expected):
    from marketsync.providers.brickowl import alternative_ids

    assert alternative_ids(ids) == expected
