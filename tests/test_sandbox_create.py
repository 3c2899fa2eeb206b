"""Creating lots in the sandbox over real HTTP: BrickLink ``POST /inventories`` (one object or an
array) and BrickOwl ``POST /inventory/create`` (alone and inside ``bulk/batch``), every
validation, the ids answered, the switches, and the write faults."""

from __future__ import annotations

import json

import pytest
import requests
from requests_oauthlib import OAuth1

from marketsync.sandbox import BATCH_ANSWER_SHAPES, Sandbox


@pytest.fixture
def sb():
    with Sandbox() as sandbox:
        sandbox.brickowl.rate_limit = None
        sandbox.brickowl.add_catalog_item("487300", "Part")
        yield sandbox
    assert not sandbox.errors, sandbox.errors[0]


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


def auth_for(sb: Sandbox) -> OAuth1:
    bl = sb.bricklink
    return OAuth1(bl.consumer_key, bl.consumer_secret, bl.token_value, bl.token_secret)


def bl_post(http, sb, body, raw: bytes | None = None, content_type: str = "application/json"):
    data = raw if raw is not None else json.dumps(body).encode()
    return http.post(sb.bricklink_url + "/inventories", data=data, headers={"Content-Type": content_type},
                     auth=auth_for(sb), timeout=5)  # fmt: skip


def bl_lot(http, sb, inventory_id):
    r = http.get(f"{sb.bricklink_url}/inventories/{inventory_id}", auth=auth_for(sb), timeout=5)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def bl_lots(http, sb, **params):
    r = http.get(sb.bricklink_url + "/inventories", params=params or None, auth=auth_for(sb), timeout=5)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def refusal(r: requests.Response) -> tuple[int, int, str]:
    body = r.json()
    return r.status_code, body["meta"]["code"], body["meta"]["message"]


BRICK = {"item": {"no": "3001", "type": "PART"}, "color_id": 11, "quantity": 12, "unit_price": "0.2500",
         "new_or_used": "N", "remarks": "A01", "description": "Don't (ever) buy", "is_retain": True}  # fmt: skip


@pytest.fixture
def known(sb):
    """3001 and 3002 are in the sandbox's BrickLink catalogue."""
    sb.bricklink.add_catalog_item("3001", "PART", name="Brick 2 x 4")
    sb.bricklink.add_catalog_item("3002", "PART")
    return sb


# ---------------------------------------------------------------------- BrickLink: one object
def test_bricklink_one_object_creates_the_lot_and_answers_it_with_its_new_id(known, http):
    sb = known
    before = sb.bricklink.add_lot("3001", 11, 5)
    r = bl_post(http, sb, BRICK)
    assert r.status_code == 200 and r.json()["meta"] == {"description": "OK", "message": "OK", "code": 200}
    data = r.json()["data"]
    new_id = data["inventory_id"]
    assert isinstance(new_id, int) and new_id != before and new_id in sb.bricklink.lots
    assert data["item"] == {"no": "3001", "name": "Brick 2 x 4", "type": "PART", "category_id": 0}
    assert (data["color_id"], data["color_name"], data["quantity"], data["unit_price"]) == (11, "Black", 12, "0.2500")
    assert (data["new_or_used"], data["remarks"], data["is_retain"], data["is_stock_room"]) == ("N", "A01", True, False)
    assert data["description"] == "Don&#39;t &#40;ever&#41; buy"  # served with entities, like every lot
    assert "completeness" not in data  # parts have none (null fields omitted)
    assert bl_lot(http, sb, new_id) == data  # the answer is the lot as the store now holds it
    assert [x["inventory_id"] for x in bl_lots(http, sb, status="Y")] == [before, new_id]


def test_bricklink_numbers_as_bricksync_sends_them_and_a_description_kept_byte_for_byte(known, http):
    body = {"item": {"no": "3001", "type": "PART"}, "color_id": 11, "quantity": 3, "unit_price": 0.125,
            "new_or_used": "U", "description": "Rock &amp; roll &#40;used&#41;", "bulk": 1, "is_retain": False,
            "is_stock_room": False, "my_cost": 0.05}  # fmt: skip
    data = bl_post(http, known, body).json()["data"]
    assert (data["unit_price"], data["my_cost"], data["new_or_used"]) == ("0.1250", "0.0500", "U")
    assert data["description"] == "Rock &amp; roll &#40;used&#41;"


def test_bricklink_sets_carry_completeness_and_a_stockroom_lot_is_not_on_sale(known, http):
    sb = known
    sb.bricklink.add_catalog_item("40179-1", "SET", name="Personalised Mosaic Portrait")
    one = bl_post(http, sb, {"item": {"no": "40179-1", "type": "SET"}, "color_id": 0, "quantity": 1,
                             "unit_price": "99.0000", "new_or_used": "N", "completeness": "S"}).json()["data"]  # fmt: skip
    assert one["completeness"] == "S" and one["color_id"] == 0
    default = bl_post(http, sb, {"item": {"no": "40179-1", "type": "set"}, "color_id": 0, "quantity": 1,
                                 "unit_price": "80", "new_or_used": "U"}).json()["data"]  # fmt: skip
    assert default["completeness"] == "C" and default["item"]["type"] == "SET"
    room = bl_post(http, sb, {**BRICK, "is_stock_room": True, "stock_room_id": "B"}).json()["data"]
    assert room["is_stock_room"] is True and room["stock_room_id"] == "B"
    assert room["inventory_id"] not in [x["inventory_id"] for x in bl_lots(http, sb, status="Y")]
    assert [x["inventory_id"] for x in bl_lots(http, sb, status="B")] == [room["inventory_id"]]
    tiers = {"tier_quantity1": 10, "tier_price1": "0.2000", "tier_quantity2": 20, "tier_price2": "0.1500",
             "tier_quantity3": 50, "tier_price3": "0.1000"}  # fmt: skip
    tiered = bl_post(http, sb, {**BRICK, **tiers}).json()["data"]
    assert {k: tiered[k] for k in tiers} == tiers


# ---------------------------------------------------------------------- BrickLink: arrays
def test_bricklink_an_array_creates_each_and_answers_an_empty_data(known, http):
    sb = known
    second = {**BRICK, "item": {"no": "3002", "type": "PART"}, "remarks": "A02", "quantity": 4}
    r = bl_post(http, sb, [BRICK, second])
    assert r.status_code == 200 and r.json() == {"meta": {"description": "OK", "message": "OK", "code": 200}, "data": {}}
    made = {x["remarks"]: x for x in bl_lots(http, sb)}  # the ids must be found again by reading
    assert set(made) == {"A01", "A02"} and made["A02"]["quantity"] == 4 and made["A02"]["item"]["no"] == "3002"
    assert len({x["inventory_id"] for x in made.values()}) == 2
    r = bl_post(http, sb, [BRICK])  # an array of one (what BrickSync sends) answers no id either
    assert r.json()["data"] == {} and len(sb.bricklink.lots) == 3


@pytest.mark.parametrize("mode, created", [("create_none", []), ("create_valid", ["A01"])])
def test_bricklink_an_array_with_a_refused_element_follows_the_switch(known, http, mode, created):
    sb = known
    assert sb.bricklink.array_on_error == "create_none"
    sb.bricklink.array_on_error = mode
    r = bl_post(http, sb, [BRICK, {**BRICK, "quantity": 0, "remarks": "A02"}])
    assert refusal(r) == (400, 400, "PARAMETER_MISSING_OR_INVALID")
    assert "inventory [1]: quantity" in r.json()["meta"]["description"]
    assert [x["remarks"] for x in bl_lots(http, sb)] == created
    with pytest.raises(ValueError):
        sb.bricklink.array_on_error = "half"


# ---------------------------------------------------------------------- BrickLink: validation
def without(key):
    return {k: v for k, v in BRICK.items() if k != key}


REFUSED = [
    ("no item", without("item"), "item.no is required"),
    ("no item number", {**BRICK, "item": {"type": "PART"}}, "item.no is required"),
    ("bad type", {**BRICK, "item": {"no": "3001", "type": "BRICK"}}, "item.type"),
    ("no type", {**BRICK, "item": {"no": "3001"}}, "item.type"),
    ("unknown item", {**BRICK, "item": {"no": "99999zz", "type": "PART"}}, "not in the BrickLink catalog"),
    ("item of another type", {**BRICK, "item": {"no": "3001", "type": "MINIFIG"}}, "not in the BrickLink catalog"),
    ("unknown colour", {**BRICK, "color_id": 99999}, "color_id"),
    ("colour as text", {**BRICK, "color_id": "11"}, "color_id"),
    ("zero quantity", {**BRICK, "quantity": 0}, "quantity"),
    ("negative quantity", {**BRICK, "quantity": -3}, "quantity"),
    ("signed quantity", {**BRICK, "quantity": "+3"}, "quantity"),
    ("boolean quantity", {**BRICK, "quantity": True}, "quantity"),
    ("no quantity", without("quantity"), "quantity"),
    ("zero price", {**BRICK, "unit_price": "0.0000"}, "unit_price"),
    ("negative price", {**BRICK, "unit_price": -1}, "unit_price"),
    ("price as words", {**BRICK, "unit_price": "cheap"}, "unit_price"),
    ("no price", without("unit_price"), "unit_price is required"),
    ("no condition", without("new_or_used"), "new_or_used"),
    ("bad condition", {**BRICK, "new_or_used": "X"}, "new_or_used"),
    ("completeness on a part", {**BRICK, "completeness": "C"}, "completeness is only for sets"),
    ("remarks not text", {**BRICK, "remarks": 12}, "remarks"),
    ("description not text", {**BRICK, "description": ["x"]}, "description"),
    ("is_retain not a flag", {**BRICK, "is_retain": "yes"}, "is_retain"),
    ("stock room without stockroom", {**BRICK, "stock_room_id": "B"}, "stock_room_id is only"),
    ("bad stock room", {**BRICK, "is_stock_room": True, "stock_room_id": "D"}, "stock_room_id"),
    ("some tier fields", {**BRICK, "tier_quantity1": 10, "tier_price1": "0.2"}, "all six"),
]  # fmt: skip


@pytest.mark.parametrize("case, body, message", REFUSED, ids=[c[0] for c in REFUSED])
def test_bricklink_refuses_an_invalid_lot_and_creates_nothing(known, http, case, body, message):
    r = bl_post(http, known, body)
    assert refusal(r) == (400, 400, "PARAMETER_MISSING_OR_INVALID")
    assert message in r.json()["meta"]["description"]
    assert known.bricklink.lots == {}


def test_bricklink_an_unknown_item_answers_404_with_the_switch(known, http):
    sb = known
    assert sb.bricklink.unknown_item_status == 400
    sb.bricklink.unknown_item_status = 404
    r = bl_post(http, sb, {**BRICK, "item": {"no": "99999zz", "type": "PART"}})
    assert refusal(r) == (404, 404, "RESOURCE_NOT_FOUND") and sb.bricklink.lots == {}
    with pytest.raises(ValueError):
        sb.bricklink.unknown_item_status = 500


def test_bricklink_the_body_must_be_json_an_object_or_a_non_empty_array(known, http):
    sb = known
    assert refusal(bl_post(http, sb, None, raw=b"item=3001", content_type="text/plain"))[:2] == (415, 415)
    assert refusal(bl_post(http, sb, None, raw=b"{not json"))[2] == "INVALID_REQUEST_BODY"
    assert refusal(bl_post(http, sb, "3001"))[2] == "INVALID_REQUEST_BODY"
    assert refusal(bl_post(http, sb, [BRICK, "3002"]))[2] == "INVALID_REQUEST_BODY"
    assert refusal(bl_post(http, sb, []))[2] == "PARAMETER_MISSING_OR_INVALID"
    assert sb.bricklink.lots == {}


def test_bricklink_the_catalogue_is_every_item_of_a_lot_or_an_order_plus_what_is_added(sb, http):
    bl = sb.bricklink
    assert refusal(bl_post(http, sb, BRICK))[0] == 400  # an empty store knows nothing
    bl.add_lot("3001", 5, 1, name="Brick 2 x 4")
    assert bl_post(http, sb, BRICK).json()["data"]["item"]["name"] == "Brick 2 x 4"
    bl.add_order(lines=[{"no": "3626cpb0001", "type": "MINIFIG", "color_id": 0, "quantity": 1, "name": "Head"}])
    head = {**BRICK, "item": {"no": "3626cpb0001", "type": "MINIFIG"}, "color_id": 0}
    assert bl_post(http, sb, head).json()["data"]["item"]["name"] == "Head"
    order = bl.add_order(lines=[])
    bl.orders[order].batches = [[bl.make_line({"no": "973pb1", "type": "PART", "quantity": 1})]]
    bl.catalog.clear()  # a line set straight on the batches is still found
    assert bl_post(http, sb, {**BRICK, "item": {"no": "973pb1", "type": "PART"}}).status_code == 200
    with pytest.raises(ValueError):
        bl.add_catalog_item("x", "BRICK")
    bl.add_catalog_item("bb0001", "gear")
    assert bl_post(http, sb, {**BRICK, "item": {"no": "bb0001", "type": "GEAR"}, "color_id": 0}).status_code == 200


def test_bricklink_a_success_can_answer_201_created_with_the_switch(known, http):
    known.bricklink.created_code = 201
    r = bl_post(http, known, BRICK)
    assert r.status_code == 201 and r.json()["meta"]["code"] == 201 and r.json()["meta"]["message"] == "OK_CREATED"
    assert r.json()["data"]["inventory_id"] in known.bricklink.lots
    assert bl_post(http, known, [BRICK]).status_code == 201
    with pytest.raises(ValueError):
        known.bricklink.created_code = 202


def test_bricklink_creation_needs_oauth(known, http):
    r = http.post(known.bricklink_url + "/inventories", json=BRICK, timeout=5)
    assert r.json()["meta"]["code"] == 401 and known.bricklink.lots == {}


# ---------------------------------------------------------------------- BrickOwl: inventory/create
def bo_post(http, sb, endpoint, **form):
    form.setdefault("key", sb.brickowl.api_key)
    return http.post(sb.brickowl_url + endpoint, data=form, timeout=5)


def bo_list(http, sb, **params):
    params.setdefault("key", sb.brickowl.api_key)
    r = http.get(sb.brickowl_url + "/inventory/list", params=params, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


OWL = {"boid": "487300", "color_id": "38", "quantity": "7", "price": "1.23456", "condition": "usedn",
       "external_id": "349372975", "personal_note": "B02"}  # fmt: skip


def test_brickowl_create_answers_the_new_lot_id_and_lists_the_lot(sb, http):
    r = bo_post(http, sb, "/inventory/create", **OWL)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"status", "lot_id"} and body["status"] == "success"
    lot_id = body["lot_id"]
    assert isinstance(lot_id, str) and lot_id.isdigit()
    [lot] = bo_list(http, sb, lot_id=lot_id)
    assert (lot["boid"], lot["type"], lot["qty"], lot["price"]) == ("487300-38", "Part", "7", "1.235")  # 3 decimals
    assert (lot["full_con"], lot["con"], lot["personal_note"], lot["for_sale"]) == ("usedn", "used", "B02", "1")
    assert lot["external_lot_ids"] == {"other": "349372975"}
    assert [x["lot_id"] for x in bo_list(http, sb, external_id_1="349372975")] == [lot_id]
    second = bo_post(http, sb, "/inventory/create", boid="487300-38", quantity="1", price="0.1", condition="new").json()
    assert second["lot_id"] != lot_id and sb.brickowl.get_lot(second["lot_id"]).boid == "487300-38"
    assert sb.brickowl.get_lot(second["lot_id"]).external_id is None


def test_brickowl_color_rules_per_item_type(sb, http):
    bo = sb.brickowl
    bo.add_catalog_item("771344", "Set")
    bo.add_catalog_item("112233", "Gear")
    bo.add_catalog_item("445566", "Minibuild")
    base = {"quantity": "1", "price": "5", "condition": "new"}
    assert bo_post(http, sb, "/inventory/create", boid="771344", **base).json()["status"] == "success"
    refused = bo_post(http, sb, "/inventory/create", boid="771344", color_id="38", **base)
    assert refused.status_code == 400 and "not allowed for a Set" in refused.json()["error"]["status"]
    for boid in ("112233", "445566"):  # optional: with or without
        plain = bo_post(http, sb, "/inventory/create", boid=boid, **base).json()["lot_id"]
        coloured = bo_post(http, sb, "/inventory/create", boid=boid, color_id="38", **base).json()["lot_id"]
        assert (bo.get_lot(plain).boid, bo.get_lot(coloured).boid) == (boid, f"{boid}-38")
    assert bo.get_lot(bo_post(http, sb, "/inventory/create", boid="771344", **base).json()["lot_id"]).type == "Set"


OWL_REFUSED = [
    ("no boid", {"boid": ""}, "Missing boid"),
    ("unknown boid", {"boid": "999999"}, "Invalid boid"),
    ("part without colour", {"color_id": ""}, "color_id is required for Parts"),
    ("unknown colour", {"color_id": "987654"}, "Invalid color_id"),
    ("colour not a number", {"color_id": "black"}, "Invalid color_id"),
    ("colour disagrees with the BOID", {"boid": "487300-38", "color_id": "11"}, "does not match"),
    ("zero quantity", {"quantity": "0"}, "Invalid quantity"),
    ("negative quantity", {"quantity": "-2"}, "Invalid quantity"),
    ("fractional quantity", {"quantity": "1.5"}, "Invalid quantity"),
    ("no quantity", {"quantity": ""}, "Invalid quantity"),
    ("zero price", {"price": "0"}, "Invalid price"),
    ("negative price", {"price": "-1.5"}, "Invalid price"),
    ("price rounding to zero", {"price": "0.0004"}, "Invalid price"),
    ("price as words", {"price": "cheap"}, "Invalid"),
    ("no price", {"price": ""}, "Missing price"),
    ("no condition", {"condition": ""}, "Invalid condition"),
    ("unknown condition", {"condition": "mint"}, "Invalid condition"),
    ("wrong key", {"key": "WRONG"}, "Invalid API key"),
]  # fmt: skip


@pytest.mark.parametrize("case, change, message", OWL_REFUSED, ids=[c[0] for c in OWL_REFUSED])
def test_brickowl_refuses_an_invalid_lot_and_creates_nothing(sb, http, case, change, message):
    r = bo_post(http, sb, "/inventory/create", **{**OWL, **change})
    assert r.json()["error"]["status"].startswith(message) or message in r.json()["error"]["status"]
    assert r.status_code == (200 if case == "wrong key" else 400)
    assert sb.brickowl.lots == {}


def test_brickowl_known_boids_come_from_id_lookup_lots_order_lines_and_seeding(http):
    with Sandbox() as sb:
        bo = sb.brickowl
        form = {"color_id": "38", "quantity": "1", "price": "1", "condition": "new"}
        assert bo_post(http, sb, "/inventory/create", boid="487300", **form).status_code == 400
        bo.add_id_lookup("3069b", ["487300-38", "487300"])
        bo.add_lot("306255-64", 3)
        bo.add_order(lines=[{"boid": "111222-38", "ordered_quantity": 1}])
        for boid in ("487300", "306255", "111222"):
            assert bo_post(http, sb, "/inventory/create", boid=boid, **form).json()["status"] == "success"
        with pytest.raises(ValueError):
            bo.add_catalog_item("1", "Brick")
        assert not sb.errors


# ---------------------------------------------------------------------- BrickOwl: inside bulk/batch
def batch(*subs):
    return json.dumps({"requests": [{"endpoint": e, "request_method": "POST", "params": [p]} for e, p in subs]})


@pytest.mark.parametrize("shape", BATCH_ANSWER_SHAPES)
def test_brickowl_create_inside_a_batch_answers_in_every_shape(sb, http, shape):
    bo = sb.brickowl
    bo.batch_answer_shape = shape
    old = bo.add_lot("487300-38", 10)
    r = bo_post(http, sb, "/bulk/batch", requests=batch(
        ("inventory/create", {"boid": "487300", "color_id": 38, "quantity": 4, "price": 0.5, "condition": "new",
                              "external_id": "55"}),
        ("inventory/create", {"boid": "487300", "quantity": 4, "price": 0.5, "condition": "new"}),  # no colour
        ("inventory/update", {"lot_id": old, "relative_quantity": -3}),
    ))  # fmt: skip
    assert r.status_code == 200
    answer = r.json()
    if shape == "bare":
        bodies, codes = answer, [None, None, None]
    elif shape == "responses":
        bodies = [x["body"] for x in answer["responses"]]
        codes = [x["status_code"] for x in answer["responses"]]
        assert [x["endpoint"] for x in answer["responses"]] == ["inventory/create", "inventory/create", "inventory/update"]
    else:
        bodies, codes = [x["body"] for x in answer], [x["code"] for x in answer]
        first = 1 if shape == "req_num_1" else 0
        assert [x["req_num"] for x in answer] == [first, first + 1, first + 2]
    created, refused, updated = bodies
    assert created["status"] == "success" and created["lot_id"] in bo.lots
    assert "error" in refused and "color_id is required" in refused["error"]["status"]
    assert updated == {"status": "success"}
    if shape != "bare":
        assert codes == [200, 400, 200]
    assert bo.get_lot(created["lot_id"]).external_id == "55" and bo.get_lot(old).qty == 7
    assert len(bo.lots) == 2  # the refused create made nothing; the others applied


def test_brickowl_a_batch_can_create_and_then_update_the_new_lot_by_external_id(sb, http):
    r = bo_post(http, sb, "/bulk/batch", requests=batch(
        ("inventory/create", {**OWL, "quantity": "5"}),
        ("inventory/update", {"external_id": OWL["external_id"], "relative_quantity": "2"}),
    ))  # fmt: skip
    [created, updated] = [x["body"] for x in r.json()]
    assert updated == {"status": "success"} and sb.brickowl.get_lot(created["lot_id"]).qty == 7


# ---------------------------------------------------------------------- faults on the create endpoints
def bricklink_create(sb, timeout=5.0):
    with requests.Session() as http:  # a fresh connection: nothing pooled, nothing retried
        return http.post(sb.bricklink_url + "/inventories", json=BRICK, auth=auth_for(sb), timeout=timeout)


def brickowl_create(sb, timeout=5.0):
    with requests.Session() as http:
        return http.post(sb.brickowl_url + "/inventory/create", data={**OWL, "key": sb.brickowl.api_key}, timeout=timeout)


def brickowl_batch_create(sb, timeout=5.0):
    with requests.Session() as http:
        form = {"key": sb.brickowl.api_key, "requests": batch(("inventory/create", OWL))}
        return http.post(sb.brickowl_url + "/bulk/batch", data=form, timeout=timeout)


CREATES = [("bricklink", "POST /inventories", bricklink_create), ("brickowl", "POST /inventory/create", brickowl_create),
           ("brickowl", "POST /bulk/batch", brickowl_batch_create)]  # fmt: skip


def lot_count(sb, provider):
    return len(sb.bricklink.lots if provider == "bricklink" else sb.brickowl.lots)


@pytest.mark.parametrize("provider, endpoint, create", CREATES, ids=[c[1] for c in CREATES])
def test_an_applied_fault_creates_the_lot_and_loses_the_answer(known, provider, endpoint, create):
    sb = known
    sb.inject(provider, endpoint, "applied_reset")
    with pytest.raises(requests.ConnectionError):
        create(sb)
    assert lot_count(sb, provider) == 1  # created although the client saw nothing
    sb.inject(provider, endpoint, "applied_500")
    assert create(sb).status_code == 500 and lot_count(sb, provider) == 2
    sb.inject(provider, endpoint, "applied_hang", seconds=30)
    with pytest.raises(requests.Timeout):
        create(sb, timeout=0.3)
    assert lot_count(sb, provider) == 3  # (the hung handler is woken when the sandbox stops)


@pytest.mark.parametrize("provider, endpoint, create", CREATES, ids=[c[1] for c in CREATES])
@pytest.mark.parametrize("fault", ["reset", "500", "html503", "malformed", "not_json"])
def test_an_ordinary_fault_on_a_create_creates_nothing(known, provider, endpoint, create, fault):
    sb = known
    sb.inject(provider, endpoint, fault)
    if fault == "reset":
        with pytest.raises(requests.ConnectionError):
            create(sb)
    else:
        r = create(sb)
        assert r.status_code == {"500": 500, "html503": 503}.get(fault, 200)
        if fault != "500" or provider == "brickowl":
            with pytest.raises(ValueError):
                r.json()  # cut short, HTML, BrickOwl's 500 page
        else:
            assert r.json()["meta"]["code"] == 500
    assert lot_count(sb, provider) == 0
    assert create(sb).status_code == 200 and lot_count(sb, provider) == 1  # consumed: the retry creates it


@pytest.mark.parametrize("provider, endpoint, create", CREATES, ids=[c[1] for c in CREATES])
def test_a_late_create_lands_only_when_applied(known, provider, endpoint, create):
    sb = known
    sb.inject(provider, endpoint, "late")
    with pytest.raises(requests.ConnectionError):
        create(sb)
    assert lot_count(sb, provider) == 0
    assert create(sb).status_code == 200 and lot_count(sb, provider) == 1  # the client's retry
    [answer] = sb.apply_late_writes(provider)
    assert answer.status == 200 and lot_count(sb, provider) == 2  # the late one lands too: a duplicate lot
    assert len([w for w in sb.writes if w[1] == endpoint]) == 2
