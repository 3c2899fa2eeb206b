"""The sandbox behaves like the real marketplaces where tests could otherwise pass by accident:
BrickLink batch additions and line removals, BrickOwl ``order/view`` field names, and
``catalog/id_lookup`` per item type."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from requests_oauthlib import OAuth1

from marketsync.sandbox import Sandbox

UTC = dt.timezone.utc
PLACED = dt.datetime(2023, 9, 29, 16, 21, 57, 923000, tzinfo=UTC)
LINE = {"no": "3001", "color_id": 11, "quantity": 4, "unit_price": "0.1500", "inventory_id": 123}


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


def bl(http, sb, path):
    store = sb.bricklink
    auth = OAuth1(store.consumer_key, store.consumer_secret, store.token_value, store.token_secret)
    r = http.get(sb.bricklink_url + path, auth=auth, timeout=5)
    assert r.status_code == 200 and r.json()["meta"]["code"] == 200, r.text
    return r.json()["data"]


def bo(http, sb, path, **params):
    r = http.get(sb.brickowl_url + path, params={"key": sb.brickowl.api_key, **params}, timeout=5)
    return r


# ---------------------------------------------------------------------- BrickLink: a buyer adds a batch
def test_a_new_batch_makes_the_order_updated_unpaid_and_new(sb, http):
    store = sb.bricklink
    oid = store.add_order(status="PAID", lines=[LINE], date_ordered=PLACED)
    before = bl(http, sb, "/orders")[0]
    assert before["payment"]["status"] == "Received" and before["payment"]["date_paid"] == "2023-09-29T16:28:57.923Z"
    store.add_batch(oid, [dict(LINE, inventory_id=200, quantity=10, unit_price="1")])
    after = bl(http, sb, "/orders")[0]
    assert after["status"] == "UPDATED"
    assert after["payment"]["status"] == "None" and "date_paid" not in after["payment"]
    assert after["date_ordered"] > before["date_ordered"] and after["date_status_changed"] > before["date_status_changed"]
    assert after["date_ordered"] == after["date_status_changed"]  # both reset to the same "now"
    now = dt.datetime.now(UTC)
    assert abs(dt.datetime.fromisoformat(after["date_ordered"].replace("Z", "+00:00")) - now) < dt.timedelta(minutes=1)
    assert (after["total_count"], after["unique_count"], after["cost"]["subtotal"]) == (14, 2, "10.6000")
    full = bl(http, sb, f"/orders/{oid}")
    assert full["status"] == "UPDATED" and "date_paid" not in full["payment"]

    store.set_status(oid, "PAID")  # the buyer pays again
    paid = bl(http, sb, "/orders")[0]["payment"]
    assert paid["status"] == "Received" and paid["date_paid"] >= after["date_status_changed"]


def test_removing_a_line_changes_the_summary(sb, http):
    store = sb.bricklink
    oid = store.add_order(status="PACKED", lines=[LINE, dict(LINE, inventory_id=124, quantity=2, unit_price="2")])
    before = bl(http, sb, "/orders")[0]
    assert (before["total_count"], before["unique_count"], before["cost"]["grand_total"]) == (6, 2, "8.1000")
    store.remove_line(oid, 1, 124)
    after = bl(http, sb, "/orders")[0]
    assert (after["total_count"], after["unique_count"]) == (4, 1)
    assert (after["cost"]["subtotal"], after["cost"]["grand_total"], after["disp_cost"]["grand_total"]) == ("0.6000", "4.1000", "4.1000")
    assert after["date_status_changed"] > before["date_status_changed"]
    assert after["status"] == "PACKED" and after["date_ordered"] == before["date_ordered"]
    assert bl(http, sb, f"/orders/{oid}")["total_weight"] == "3.28"  # 4 x 0.82
    with pytest.raises(KeyError):
        store.remove_line(oid, 1, 124)


# ---------------------------------------------------------------------- BrickOwl: order/view field names
ADAPTER_READS = {  # every field marketsync/providers/brickowl.py reads from order/view
    "order_id", "status", "status_id", "total_quantity", "total_lots", "base_order_total", "order_time",
    "updated_time", "buyer_name", "customer_username", "customer_email", "sub_total", "base_currency",
    "ship_method_name", "tracking_number",
}  # fmt: skip
REAL_NAMES = {
    "customer_user_id", "tax_amount", "coupon_discount", "iso_order_time", "iso_processed_time", "processed_time",
    "store_id", "ship_total", "payment_total", "payment_currency", "weight", "buyer_note", "seller_note",
    "ship_first_name", "ship_last_name", "ship_street_1", "ship_street_2", "ship_city", "ship_post_code",
    "ship_region", "ship_country_code", "ship_country", "ship_phone", "billing_first_name", "billing_last_name",
    "billing_street_1", "billing_city", "billing_post_code", "billing_country_code",
}  # fmt: skip
INVENTED = {"customer_id", "tax_total", "coupon_total", "payment_method", "affiliate_name", "ship_name",
            "billing_name", "ship_company", "billing_company"}  # fmt: skip


def test_brickowl_view_uses_the_real_field_names_only(sb, http):
    oid = sb.brickowl.add_order(buyer_name="Ann Smith", lines=[{"boid": "487300-38", "ordered_quantity": 2}])
    view = bo(http, sb, "/order/view", order_id=oid).json()
    assert view.keys() >= ADAPTER_READS | REAL_NAMES
    assert not view.keys() & INVENTED
    assert (view["ship_first_name"], view["ship_last_name"], view["billing_first_name"]) == ("Ann", "Smith", "Ann")
    assert view["customer_user_id"].isdigit() and view["tax_amount"] == "0.00" and view["coupon_discount"] == "0.00"
    assert all(isinstance(v, (str, type(None))) for v in view.values())  # PHP strings (and nulls), no raw objects


# ---------------------------------------------------------------------- BrickOwl: typed id_lookup
def lookup(http, sb, ident, item_type):
    params = {"id": ident, "id_type": "bl_item_no"}
    if item_type is not None:
        params["type"] = item_type
    return bo(http, sb, "/catalog/id_lookup", **params)


def test_id_lookup_filters_by_type(sb, http):
    store = sb.brickowl
    store.add_id_lookup("970c00", ["111111"], type="Minifigure")
    store.add_id_lookup("3069b", ["487300-38", "487300"])  # default: a Part
    store.add_id_lookup("852743", ["222222"], type="Gear")
    store.add_id_lookup("852743", ["333333"], type="Set")  # the same number under two types
    assert lookup(http, sb, "970c00", "Part").json() == {"boids": []}
    assert lookup(http, sb, "970c00", "Minifigure").json() == {"boids": ["111111"]}
    assert lookup(http, sb, "970c00", "minifigure").json() == {"boids": ["111111"]}
    assert lookup(http, sb, "3069b", "Part").json() == {"boids": ["487300-38", "487300"]}
    assert lookup(http, sb, "3069b", "Set").json() == {"boids": []}
    assert lookup(http, sb, "852743", "Gear").json() == {"boids": ["222222"]}
    assert lookup(http, sb, "852743", "Set").json() == {"boids": ["333333"]}
    assert store.id_lookup["852743"] == ["222222", "333333"]  # every type, for tests that read the table


@pytest.mark.parametrize("item_type, message", [(None, "Missing type"), ("", "Missing type"), ("Brick", "Invalid type")])
def test_id_lookup_needs_a_known_type(sb, http, item_type, message):
    sb.brickowl.add_id_lookup("3069b", ["487300-38"])
    r = lookup(http, sb, "3069b", item_type)
    assert r.status_code == 400 and r.json() == {"error": {"status": message}}


def test_registering_an_unknown_type_is_a_test_bug(sb):
    with pytest.raises(ValueError, match="unknown BrickOwl item type"):
        sb.brickowl.add_id_lookup("3069b", ["487300-38"], type="Brick")
