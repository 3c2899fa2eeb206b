"""The sandbox's store lots over real HTTP: BrickLink ``GET/PUT /inventories/{id}``, BrickOwl
``inventory/list``, ``inventory/update`` and ``bulk/batch``, and orders acting on the lots."""

from __future__ import annotations

import json

import pytest
import requests
from requests_oauthlib import OAuth1

from marketsync.sandbox import BATCH_ANSWER_SHAPES, BELOW_ZERO, Sandbox


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


def auth_for(sb: Sandbox, **kwargs) -> OAuth1:
    bl = sb.bricklink
    args = {"consumer_key": bl.consumer_key, "consumer_secret": bl.consumer_secret,
            "token_value": bl.token_value, "token_secret": bl.token_secret}  # fmt: skip
    args.update({k: kwargs.pop(k) for k in list(kwargs) if k in args})
    return OAuth1(args["consumer_key"], args["consumer_secret"], args["token_value"], args["token_secret"], **kwargs)


def bl_get(http, sb, path, **params):
    return http.get(sb.bricklink_url + path, params=params or None, auth=auth_for(sb), timeout=5)


def bl_put(http, sb, inventory_id, body, auth=None):
    return http.put(f"{sb.bricklink_url}/inventories/{inventory_id}", json=body, auth=auth or auth_for(sb), timeout=5)


def bl_quantity(http, sb, inventory_id):
    """The lot's quantity read over HTTP, or None when the lot is gone (404)."""
    r = bl_get(http, sb, f"/inventories/{inventory_id}")
    if r.json()["meta"]["code"] == 404:
        assert r.status_code == 404 and r.json()["meta"]["message"] == "RESOURCE_NOT_FOUND"
        return None
    assert r.status_code == 200, r.text
    return r.json()["data"]["quantity"]


def bo_list(http, sb, **params):
    params.setdefault("key", sb.brickowl.api_key)
    r = http.get(sb.brickowl_url + "/inventory/list", params=params, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def bo_post(http, sb, endpoint, **form):
    form.setdefault("key", sb.brickowl.api_key)
    return http.post(sb.brickowl_url + endpoint, data=form, timeout=5)


def bo_qty(http, sb, lot_id):
    [lot] = bo_list(http, sb, lot_id=lot_id, active_only=0)
    return int(lot["qty"])


def batch(*params, endpoint="inventory/update", method="POST"):
    return json.dumps({"requests": [{"endpoint": endpoint, "request_method": method, "params": [p]} for p in params]})


# ---------------------------------------------------------------------- BrickLink: PUT /inventories/{id}
def test_bricklink_quantity_is_always_a_change(sb, http):
    lot = sb.bricklink.add_lot("3001", 11, 10, remarks="A01")
    answers = [bl_put(http, sb, lot, {"quantity": change, "description": ""}) for change in ("+3", "-2", 17, "5")]
    assert [r.status_code for r in answers] == [200] * 4
    assert [r.json()["meta"]["code"] for r in answers] == [200] * 4
    assert [r.json()["data"]["quantity"] for r in answers] == [13, 11, 28, 33]  # a plain 17 ADDS 17
    assert bl_quantity(http, sb, lot) == 33 == sb.bricklink.get_lot(lot).quantity
    assert answers[0].json()["data"]["inventory_id"] == lot and answers[0].json()["data"]["remarks"] == "A01"
    assert [w[3]["quantity"] for w in sb.writes] == ["+3", "-2", 17, "5"]
    assert sb.calls[("bricklink", "PUT /inventories/{id}")] == 4


def test_bricklink_change_below_zero_is_refused_and_changes_nothing(sb, http):
    lot = sb.bricklink.add_lot("3001", 11, 4, remarks="A01")
    r = bl_put(http, sb, lot, {"quantity": "-5", "description": "", "remarks": "B02", "is_retain": True})
    assert r.status_code == 400
    assert r.json()["meta"]["code"] == 400 and r.json()["meta"]["message"] == "PARAMETER_MISSING_OR_INVALID"
    assert "below 0" in r.json()["meta"]["description"]  # refused for going below 0, not for anything else
    kept = sb.bricklink.get_lot(lot)
    assert (kept.quantity, kept.remarks, kept.is_retain) == (4, "A01", False)
    assert bl_quantity(http, sb, lot) == 4


@pytest.mark.parametrize("bad", [{"quantity": 1.5}, {"quantity": True}, {"quantity": "three"}, {"quantity": "+-3"},
                                 {"is_retain": "yes"}, {"unit_price": "-1"}, {"stock_room_id": "D"}])  # fmt: skip
def test_bricklink_invalid_fields_are_refused(sb, http, bad):
    lot = sb.bricklink.add_lot("3001", 11, 4, unit_price="0.1000")
    r = bl_put(http, sb, lot, {"remarks": "ZZ", "description": "", **bad})
    assert r.status_code == 400 and r.json()["meta"]["message"] == "PARAMETER_MISSING_OR_INVALID"
    assert sb.bricklink.get_lot(lot).remarks == "" and sb.bricklink.get_lot(lot).quantity == 4


def test_bricklink_lot_vanishes_at_zero_unless_retained(sb, http):
    store = sb.bricklink
    plain = store.add_lot("3001", 11, 3)
    kept = store.add_lot("3003", 5, 3)
    r = bl_put(http, sb, plain, {"quantity": "-3", "description": ""})
    assert r.status_code == 200 and r.json()["data"]["quantity"] == 0  # the answer still shows the lot
    assert bl_quantity(http, sb, plain) is None and store.get_lot(plain) is None
    assert plain not in [x["inventory_id"] for x in bl_get(http, sb, "/inventories").json()["data"]]
    assert bl_put(http, sb, plain, {"quantity": "+1", "description": ""}).json()["meta"]["code"] == 404  # gone for good

    r = bl_put(http, sb, kept, {"quantity": "-3", "description": "", "is_retain": True})  # retain in the same call
    assert r.json()["data"]["quantity"] == 0 and r.json()["data"]["is_retain"] is True
    assert bl_quantity(http, sb, kept) == 0
    assert [x.inventory_id for x in store.all_lots()] == [kept]
    assert bl_put(http, sb, kept, {"quantity": "+2", "description": ""}).json()["data"]["quantity"] == 2  # a release brings it back
    r = bl_put(http, sb, kept, {"quantity": "-2", "description": "", "is_retain": False})  # retain put back at 0
    assert r.json()["data"]["is_retain"] is False and bl_quantity(http, sb, kept) is None


def test_bricklink_put_stores_other_fields_and_ignores_unknown_ones(sb, http):
    lot = sb.bricklink.add_lot("3001", 11, 4, remarks="A01", unit_price="0.1000")
    body = {"unit_price": "0.2500", "remarks": "Z9", "description": "It's new", "is_stock_room": True,
            "stock_room_id": "B", "my_cost": 0.05, "no_such_field": [1, 2]}  # fmt: skip
    data = bl_put(http, sb, lot, body).json()["data"]
    assert (data["unit_price"], data["remarks"], data["description"]) == ("0.2500", "Z9", "It&#39;s new")
    assert (data["is_stock_room"], data["stock_room_id"], data["my_cost"], data["quantity"]) == (True, "B", "0.0500", 4)
    assert "no_such_field" not in data
    assert [x["inventory_id"] for x in bl_get(http, sb, "/inventories", status="B").json()["data"]] == [lot]
    assert bl_get(http, sb, "/inventories", status="Y").json()["data"] == []
    assert bl_put(http, sb, lot, {"is_stock_room": False}).json()["data"]["is_stock_room"] is False


def test_bricklink_get_one_lot(sb, http):
    lot = sb.bricklink.add_lot("3069b", 11, 80, remarks="B02", unit_price="0.104")
    data = bl_get(http, sb, f"/inventories/{lot}").json()["data"]
    assert (data["inventory_id"], data["quantity"], data["remarks"], data["unit_price"]) == (lot, 80, "B02", "0.1040")
    for missing in ("999", "abc"):
        r = bl_get(http, sb, f"/inventories/{missing}")
        assert r.status_code == 404
        assert r.json()["meta"] == {"description": f"Inventory not found: {missing}", "message": "RESOURCE_NOT_FOUND", "code": 404}


def test_bricklink_put_checks_oauth_and_the_body_type(sb, http):
    lot = sb.bricklink.add_lot("3001", 11, 4)
    r = bl_put(http, sb, lot, {"quantity": "+1", "description": ""}, auth=auth_for(sb, token_secret="wrong"))
    assert r.status_code == 200 and r.json()["meta"]["description"] == "SIGNATURE_INVALID"
    r = http.put(f"{sb.bricklink_url}/inventories/{lot}", json={"quantity": "+1", "description": ""}, timeout=5)  # unsigned
    assert r.json()["meta"]["code"] == 401
    # a JSON text sent without a JSON content type is not accepted
    r = http.put(f"{sb.bricklink_url}/inventories/{lot}", data='{"quantity": "+1", "description": ""}', auth=auth_for(sb), timeout=5)
    assert r.status_code == 415 and r.json()["meta"]["code"] == 415
    r = http.put(f"{sb.bricklink_url}/inventories/{lot}", data="{not json", auth=auth_for(sb), timeout=5,
                 headers={"Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 400 and r.json()["meta"]["message"] == "INVALID_REQUEST_BODY"
    assert sb.bricklink.get_lot(lot).quantity == 4


def test_bricklink_body_hash_must_match_when_sent(sb, http):
    lot = sb.bricklink.add_lot("3001", 11, 4)
    signed = auth_for(sb, force_include_body=True)  # oauthlib then adds oauth_body_hash for the JSON body
    prep = http.prepare_request(requests.Request("PUT", f"{sb.bricklink_url}/inventories/{lot}", json={"quantity": "+1", "description": ""}, auth=signed))
    assert "oauth_body_hash" in prep.headers["Authorization"].decode()
    prep.body = b'{"quantity": "+9", "description": ""}'  # tampered after signing
    prep.headers["Content-Length"] = str(len(prep.body))
    assert http.send(prep, timeout=5).json()["meta"]["description"] == "SIGNATURE_INVALID"
    assert sb.bricklink.get_lot(lot).quantity == 4
    r = http.put(f"{sb.bricklink_url}/inventories/{lot}", json={"quantity": "+1", "description": ""}, auth=auth_for(sb, force_include_body=True), timeout=5)
    assert r.json()["meta"]["code"] == 200 and sb.bricklink.get_lot(lot).quantity == 5


# ---------------------------------------------------------------------- BrickLink: orders act on lots
def test_bricklink_order_placement_reduces_the_listing(sb, http):
    store = sb.bricklink
    lot = store.add_lot("3001", 11, 10)
    store.add_order(lines=[{"inventory_id": lot, "no": "3001", "color_id": 11, "quantity": 4},
                           {"inventory_id": 424242, "no": "3002", "quantity": 1}])  # a lot the store lacks: ignored
    assert bl_quantity(http, sb, lot) == 6
    store.add_order(lines=[{"no": "3001", "color_id": 11, "quantity": 1}])  # matched to the lot by part+colour
    assert bl_quantity(http, sb, lot) == 5
    store.add_order(lines=[{"inventory_id": lot, "quantity": 2}], reduce_stock=False)
    assert bl_quantity(http, sb, lot) == 5


@pytest.mark.parametrize("restock", [True, False])
def test_bricklink_cancel_restocks_per_switch(sb, http, restock):
    store = sb.bricklink
    assert store.restock_on_cancel is True  # the default
    store.restock_on_cancel = restock
    lot = store.add_lot("3001", 11, 10)
    oid = store.add_order(status="PAID", lines=[{"inventory_id": lot, "quantity": 4}])
    store.set_status(oid, "SHIPPED")  # shipping changes no listing
    assert bl_quantity(http, sb, lot) == 6
    store.set_status(oid, "CANCELLED")
    assert bl_quantity(http, sb, lot) == (10 if restock else 6)
    store.set_status(oid, "CANCELLED")  # cancelling twice gives nothing back twice
    assert bl_quantity(http, sb, lot) == (10 if restock else 6)
    store.add_order(status="CANCELLED", lines=[{"inventory_id": lot, "quantity": 1}])  # placed, then cancelled
    assert bl_quantity(http, sb, lot) == (10 if restock else 5)


def test_bricklink_sold_out_lot_vanishes_and_a_restock_brings_it_back(sb, http):
    store = sb.bricklink
    lot = store.add_lot("3001", 11, 3, remarks="C3")
    oid = store.add_order(lines=[{"inventory_id": lot, "quantity": 5}])  # more than listed: takes what there is
    assert bl_quantity(http, sb, lot) is None
    assert store.orders[oid].taken == {lot: 3}
    store.set_status(oid, "CANCELLED")
    assert bl_quantity(http, sb, lot) == 3 and store.get_lot(lot).remarks == "C3"
    store.set_status(oid, "PAID")  # un-cancelled: the pieces leave again
    assert bl_quantity(http, sb, lot) is None


def test_bricklink_retained_lot_stays_at_zero_after_a_sale(sb, http):
    lot = sb.bricklink.add_lot("3001", 11, 2, is_retain=True)
    sb.bricklink.add_order(lines=[{"inventory_id": lot, "quantity": 2}])
    assert bl_quantity(http, sb, lot) == 0
    assert [x.quantity for x in sb.bricklink.all_lots()] == [0]


def test_bricklink_batches_and_line_removal_act_on_lots(sb, http):
    store = sb.bricklink
    a, b = store.add_lot("3001", 11, 10), store.add_lot("3003", 5, 10)
    oid = store.add_order(lines=[{"inventory_id": a, "quantity": 2}])
    store.add_batch(oid, [{"inventory_id": b, "quantity": 3}])
    assert (bl_quantity(http, sb, a), bl_quantity(http, sb, b)) == (8, 7)
    store.remove_line(oid, 2, b)
    assert (bl_quantity(http, sb, a), bl_quantity(http, sb, b)) == (8, 10)


def test_bricklink_seller_edits_by_hand(sb, http):
    store = sb.bricklink
    lot = store.add_lot("3001", 11, 10)
    store.set_lot_quantity(lot, 25)
    assert bl_quantity(http, sb, lot) == 25
    store.set_lot_quantity(lot, 0)
    assert bl_quantity(http, sb, lot) is None
    with pytest.raises(KeyError):
        store.set_lot_quantity(lot, 1)
    kept = store.add_lot("3003", 5, 1)
    store.set_lot_retain(kept)
    store.set_lot_quantity(kept, 0)
    assert bl_quantity(http, sb, kept) == 0
    with pytest.raises(ValueError):
        store.set_lot_quantity(kept, -1)


# ---------------------------------------------------------------------- BrickOwl: inventory/list
def seed_bo(sb):
    store = sb.brickowl
    return (
        store.add_lot("487300-38", 5, personal_note="B02", price="0.104", external_id="55984791",
                      ids=[{"id": "3069", "type": "design_id"}]),  # fmt: skip
        store.add_lot("771344-50", 0, full_con="usedg"),
        store.add_lot("111111", 3, type="Minifigure", for_sale=False, external_id="4242"),
    )


def test_brickowl_lot_format(sb, http):
    tile, empty, fig = seed_bo(sb)
    listed = {x["lot_id"]: x for x in bo_list(http, sb, active_only=0)}
    assert listed[tile] == {
        "lot_id": tile, "boid": "487300-38", "type": "Part", "con": "new", "full_con": "new", "qty": "5",
        "price": "0.104", "for_sale": "1", "personal_note": "B02", "public_note": "",
        "external_lot_ids": {"other": "55984791"}, "ids": [{"id": "3069", "type": "design_id"}],
    }  # fmt: skip
    assert listed[empty]["external_lot_ids"] == [] and listed[empty]["qty"] == "0"
    assert (listed[empty]["con"], listed[empty]["full_con"]) == ("used", "usedg")
    assert listed[fig]["for_sale"] == "0" and listed[fig]["type"] == "Minifigure"


def test_brickowl_active_only_defaults_to_1(sb, http):
    tile, empty, fig = seed_bo(sb)
    assert [x["lot_id"] for x in bo_list(http, sb)] == [tile]  # qty 0 and not-for-sale lots are missing
    assert [x["lot_id"] for x in bo_list(http, sb, active_only=1)] == [tile]
    assert [x["lot_id"] for x in bo_list(http, sb, active_only=0)] == [tile, empty, fig]


def test_brickowl_lot_id_and_external_id_filters(sb, http):
    tile, empty, fig = seed_bo(sb)
    assert [x["lot_id"] for x in bo_list(http, sb, lot_id=tile)] == [tile]
    assert bo_list(http, sb, lot_id=empty) == []  # inactive: hidden unless active_only=0
    assert [x["lot_id"] for x in bo_list(http, sb, lot_id=empty, active_only=0)] == [empty]
    assert [x["lot_id"] for x in bo_list(http, sb, external_id_1="55984791")] == [tile]
    assert [x["lot_id"] for x in bo_list(http, sb, external_id_1="4242", active_only=0)] == [fig]
    assert bo_list(http, sb, external_id_1="0000", active_only=0) == []
    assert bo_list(http, sb, lot_id="999", active_only=0) == []


# ---------------------------------------------------------------------- BrickOwl: inventory/update
def test_brickowl_update_changes(sb, http):
    tile, empty, fig = seed_bo(sb)
    ok = {"status": "success"}
    assert bo_post(http, sb, "/inventory/update", lot_id=tile, relative_quantity="-2").json() == ok
    assert bo_qty(http, sb, tile) == 3
    assert bo_post(http, sb, "/inventory/update", external_id="55984791", relative_quantity="+4").json() == ok
    assert bo_qty(http, sb, tile) == 7
    assert bo_post(http, sb, "/inventory/update", lot_id=empty, absolute_quantity="12").json() == ok
    assert bo_qty(http, sb, empty) == 12 and empty in [x["lot_id"] for x in bo_list(http, sb)]  # active again
    assert bo_post(http, sb, "/inventory/update", lot_id=tile, for_sale="0", personal_note="C9", price="0.2").json() == ok
    [lot] = bo_list(http, sb, lot_id=tile, active_only=0)
    assert (lot["for_sale"], lot["personal_note"], lot["price"], lot["qty"]) == ("0", "C9", "0.200", "7")
    assert tile not in [x["lot_id"] for x in bo_list(http, sb)]
    assert sb.writes[0] == ("brickowl", "POST /inventory/update", "/inventory/update",
                            {"key": sb.brickowl.api_key, "lot_id": tile, "relative_quantity": "-2"})  # fmt: skip


@pytest.mark.parametrize("form, status", [
    ({"relative_quantity": "-1"}, 400),  # no identifier
    ({"lot_id": "L", "external_id": "55984791", "relative_quantity": "-1"}, 400),  # two identifiers
    ({"lot_id": "L"}, 400),  # nothing to change
    ({"lot_id": "L", "relative_quantity": "-6"}, 400),  # below 0
    ({"lot_id": "L", "relative_quantity": "-1", "absolute_quantity": "3"}, 400),
    ({"lot_id": "L", "absolute_quantity": "-3"}, 400),
    ({"lot_id": "L", "relative_quantity": "a lot"}, 400),
    ({"lot_id": "L", "for_sale": "maybe"}, 400),
    ({"lot_id": "999", "relative_quantity": "-1"}, 404),
    ({"external_id": "0000", "relative_quantity": "-1"}, 404),
])  # fmt: skip
def test_brickowl_update_refusals_change_nothing(sb, http, form, status):
    tile, _, _ = seed_bo(sb)
    form = {k: tile if v == "L" else v for k, v in form.items()}
    r = bo_post(http, sb, "/inventory/update", **form)
    assert r.status_code == status
    assert set(r.json()) == {"error"} and r.json()["error"]["status"]
    assert bo_qty(http, sb, tile) == 5 and sb.brickowl.get_lot(tile).for_sale is True


def test_brickowl_post_key_is_a_form_field(sb, http):
    tile, _, _ = seed_bo(sb)
    for form in ({}, {"key": "wrong"}):
        r = http.post(sb.brickowl_url + "/inventory/update", data={"lot_id": tile, "relative_quantity": "-1", **form}, timeout=5)
        assert r.json() == {"error": {"status": "Invalid API key"}}
    r = http.post(sb.brickowl_url + "/inventory/update", params={"key": sb.brickowl.api_key},
                  data={"lot_id": tile, "relative_quantity": "-1"}, timeout=5)  # fmt: skip
    assert r.json() == {"error": {"status": "Invalid API key"}}  # a POST's key in the URL does not count
    assert bo_qty(http, sb, tile) == 5


# ---------------------------------------------------------------------- BrickOwl: bulk/batch
def test_brickowl_batch_mixed_success(sb, http):
    tile, empty, fig = seed_bo(sb)
    subs = [
        {"lot_id": tile, "relative_quantity": -2},  # JSON numbers inside a batch
        {"lot_id": tile, "relative_quantity": -4},  # 5 - 2 - 4 < 0: refused, the others still apply
        {"lot_id": "999", "relative_quantity": -1},
        {"external_id": "4242", "for_sale": 1},
        {"lot_id": empty, "absolute_quantity": "9"},
    ]
    r = bo_post(http, sb, "/bulk/batch", requests=batch(*subs))
    assert r.status_code == 200
    answers = r.json()
    assert [a["req_num"] for a in answers] == [1, 2, 3, 4, 5]  # the default shape numbers from 1
    assert [a["code"] for a in answers] == [200, 400, 404, 200, 200]
    assert answers[0]["body"] == {"status": "success"} and "error" in answers[1]["body"] and "error" in answers[2]["body"]
    assert (bo_qty(http, sb, tile), bo_qty(http, sb, empty)) == (3, 9)
    assert sb.brickowl.get_lot(fig).for_sale is True
    assert sb.calls[("brickowl", "POST /bulk/batch")] == 1


@pytest.mark.parametrize("shape", BATCH_ANSWER_SHAPES)
def test_brickowl_batch_answers_in_the_shape_switched_on(sb, http, shape):
    tile, _, _ = seed_bo(sb)
    sb.brickowl.batch_answer_shape = shape
    subs = [{"lot_id": tile, "relative_quantity": -2}, {"lot_id": "999", "relative_quantity": -1}]
    answer = bo_post(http, sb, "/bulk/batch", requests=batch(*subs)).json()
    ok, missing = {"status": "success"}, {"error": {"status": "Lot not found"}}
    expected = {
        "req_num_1": [{"req_num": 1, "code": 200, "body": ok}, {"req_num": 2, "code": 404, "body": missing}],
        "req_num_0": [{"req_num": 0, "code": 200, "body": ok}, {"req_num": 1, "code": 404, "body": missing}],
        "responses": {"responses": [{"endpoint": "inventory/update", "status_code": 200, "body": ok},
                                    {"endpoint": "inventory/update", "status_code": 404, "body": missing}]},
        "bare": [ok, missing],
    }[shape]
    assert answer == expected
    assert bo_qty(http, sb, tile) == 3  # applied whatever the shape


@pytest.mark.parametrize("mode", BELOW_ZERO)
def test_below_zero_is_refused_or_clamped_on_both_stores(sb, http, mode):
    sb.bricklink.below_zero = sb.brickowl.below_zero = mode
    plain = sb.bricklink.add_lot("3001", 11, 3)
    kept = sb.bricklink.add_lot("3003", 5, 3, is_retain=True)
    tile, _, _ = seed_bo(sb)  # 5 pieces
    for lot in (plain, kept):
        r = bl_put(http, sb, lot, {"quantity": "-9", "description": ""})
        assert r.status_code == (400 if mode == "refuse" else 200)
    one = bo_post(http, sb, "/inventory/update", lot_id=tile, relative_quantity="-9").json()
    many = bo_post(http, sb, "/bulk/batch", requests=batch({"lot_id": tile, "relative_quantity": -9})).json()
    if mode == "refuse":
        assert "error" in one and many[0]["code"] == 400
        assert (bl_quantity(http, sb, plain), bl_quantity(http, sb, kept), bo_qty(http, sb, tile)) == (3, 3, 5)
    else:
        assert one == {"status": "success"} and many[0]["code"] == 200
        # at 0: the BrickLink lot goes unless retained, the BrickOwl lot stays
        assert (bl_quantity(http, sb, plain), bl_quantity(http, sb, kept), bo_qty(http, sb, tile)) == (None, 0, 0)


def test_brickowl_batch_bad_sub_requests_are_answered_one_by_one(sb, http):
    tile, _, _ = seed_bo(sb)
    raw = json.dumps({"requests": [
        {"endpoint": "inventory/delete", "request_method": "POST", "params": [{"lot_id": tile}]},
        {"endpoint": "inventory/update", "request_method": "GET", "params": [{"lot_id": tile, "relative_quantity": -1}]},
        {"endpoint": "inventory/update", "request_method": "POST", "params": {"lot_id": tile, "relative_quantity": -1}},
        "nonsense",
        {"endpoint": "inventory/update", "request_method": "POST", "params": [{"lot_id": tile, "relative_quantity": -1}]},
    ]})  # fmt: skip
    codes = [a["code"] for a in bo_post(http, sb, "/bulk/batch", requests=raw).json()]
    assert codes[:4] != [200] * 4 and all(c >= 400 for c in codes[:4]) and codes[4] == 200
    assert bo_qty(http, sb, tile) == 4


def test_brickowl_batch_of_more_than_50_is_refused_whole(sb, http):
    lot = sb.brickowl.add_lot("487300-38", 100)
    r = bo_post(http, sb, "/bulk/batch", requests=batch(*[{"lot_id": lot, "relative_quantity": -1}] * 51))
    assert r.status_code == 400 and "error" in r.json()
    assert bo_qty(http, sb, lot) == 100
    answers = bo_post(http, sb, "/bulk/batch", requests=batch(*[{"lot_id": lot, "relative_quantity": -1}] * 50)).json()
    assert len(answers) == 50 and {a["code"] for a in answers} == {200}
    assert bo_qty(http, sb, lot) == 50


@pytest.mark.parametrize("raw", ["not json", json.dumps([{"endpoint": "inventory/update"}]), json.dumps({"requests": 3})])
def test_brickowl_batch_needs_a_requests_object(sb, http, raw):
    r = bo_post(http, sb, "/bulk/batch", requests=raw)
    assert r.status_code == 400 and "error" in r.json()


def test_brickowl_batch_has_its_own_rate_limit(sb, http):
    lot = sb.brickowl.add_lot("487300-38", 10)
    sb.brickowl.batch_rate_limit = (2, 60)
    codes = [bo_post(http, sb, "/bulk/batch", requests=batch({"lot_id": lot, "relative_quantity": -1})).status_code
             for _ in range(3)]  # fmt: skip
    assert codes == [200, 200, 429]
    assert bo_qty(http, sb, lot) == 8  # the throttled batch did nothing; plain calls are not throttled
    assert bo_post(http, sb, "/inventory/update", lot_id=lot, relative_quantity="-1").json() == {"status": "success"}


# ---------------------------------------------------------------------- BrickOwl: orders act on lots
def test_brickowl_order_placement_reduces_the_lot(sb, http):
    store = sb.brickowl
    lot = store.add_lot("487300-38", 10)
    store.add_order(lines=[{"boid": "487300-38", "lot_id": lot, "ordered_quantity": 4}, {"boid": "3001", "lot_id": "5"}])
    assert bo_qty(http, sb, lot) == 6
    oid = store.add_order(lines=[{"boid": "487300-38", "lot_id": lot, "ordered_quantity": 6}])
    assert bo_qty(http, sb, lot) == 0
    assert bo_list(http, sb) == []  # at 0 the lot stays, inactive
    assert [x["qty"] for x in bo_list(http, sb, active_only=0)] == ["0"]
    items = http.get(sb.brickowl_url + "/order/items", params={"key": store.api_key, "order_id": oid}, timeout=5).json()
    assert items[0]["remaining_quantity"] == "0"  # the lot's quantity now
    store.add_order(lines=[{"boid": "487300-38", "lot_id": lot, "ordered_quantity": 1}], reduce_stock=False)
    assert bo_qty(http, sb, lot) == 0


@pytest.mark.parametrize("restock", [False, True])
def test_brickowl_cancel_restocks_per_switch(sb, http, restock):
    store = sb.brickowl
    assert store.restock_on_cancel is False  # the default (BrickLink's is True)
    store.restock_on_cancel = restock
    lot = store.add_lot("487300-38", 10)
    oid = store.add_order(status="Payment Received", lines=[{"boid": "487300-38", "lot_id": lot, "ordered_quantity": 4}])
    store.set_status(oid, "Shipped")
    assert bo_qty(http, sb, lot) == 6  # shipping changes nothing
    store.set_status(oid, "Cancelled")
    assert bo_qty(http, sb, lot) == (10 if restock else 6)
    store.set_status(oid, "Processing")  # un-cancelled
    assert bo_qty(http, sb, lot) == 6


def test_brickowl_changed_lines_move_pieces(sb, http):
    store = sb.brickowl
    lot = store.add_lot("487300-38", 10)
    other = store.add_lot("3001", 10)
    oid = store.add_order(lines=[{"boid": "487300-38", "lot_id": lot, "ordered_quantity": 4}])
    store.set_lines(oid, [{"boid": "487300-38", "lot_id": lot, "ordered_quantity": 1},
                          {"boid": "3001", "lot_id": other, "ordered_quantity": 2}])  # fmt: skip
    assert (bo_qty(http, sb, lot), bo_qty(http, sb, other)) == (9, 8)
    store.set_lot_quantity(other, 30)  # the seller's own edit
    assert bo_qty(http, sb, other) == 30
    store.set_lot_for_sale(other, False)
    assert [x["lot_id"] for x in bo_list(http, sb)] == [lot]
