"""The live marketplaces' write rules, adapters against the sandbox over real HTTP.

Each rule here has a source outside this project (docs/sandbox-rules.md): BrickLink refuses a
quantity change without the lot's description since 2024-02-01 and an empty one wipes it
(BrickSync issues #40/#41); only ``status=Y`` lots are for sale (BrickSync's bsfetchinv.c); a
BrickOwl lot can be listed with ``for_sale`` "0"; ``bulk/batch`` answers come in shapes nobody
documents, so anything but an explicit success is unknown, never applied. What no source decides
is a sandbox switch, and the adapters are run under every value of it.
"""

from __future__ import annotations

import json

import pytest
import requests
from requests_oauthlib import OAuth1

from marketsync.config import HttpSettings
from marketsync.model import Outcome, QuantityChange
from marketsync.providers import build_adapter
from marketsync.providers.bricklink import BrickLink
from marketsync.providers.bricklink import remote_lot as bl_remote_lot
from marketsync.providers.brickowl import BrickOwl, batch_outcomes
from marketsync.providers.brickowl import remote_lot as bo_remote_lot
from marketsync.providers.http import CallCounter
from marketsync.sandbox import BATCH_ANSWER_SHAPES, BELOW_ZERO, LATE_FAULTS

# what BrickLink serves for a seller who typed  Don't (open) & "mint"  (every capture carries entities)
TYPED = """Don't (open) & "mint" <b>"""
SERVED = "Don&#39;t &#40;open&#41; &amp; &quot;mint&quot; &lt;b&gt;"
BL_LOT, BO_LOT = 501, "9001"


def bl(sb, retries: int = 0) -> BrickLink:
    settings = HttpSettings(timeout=5, retries=retries, backoff=0.001, retry_after_cap=0.01)
    return build_adapter("bricklink", settings, counter=CallCounter(), environ=sb.env())


def bo(sb, retries: int = 0) -> BrickOwl:
    settings = HttpSettings(timeout=5, retries=retries, backoff=0.001, retry_after_cap=0.01, brickowl_rate_limit=None)
    return build_adapter("brickowl", settings, counter=CallCounter(), environ=sb.env())


def bl_auth(sb) -> OAuth1:
    store = sb.bricklink
    return OAuth1(store.consumer_key, store.consumer_secret, store.token_value, store.token_secret)


def bl_get_lot(sb, lot: int) -> requests.Response:
    return requests.get(f"{sb.bricklink_url}/inventories/{lot}", auth=bl_auth(sb), timeout=5)


def bl_put(sb, lot: int, body: dict) -> requests.Response:
    return requests.put(f"{sb.bricklink_url}/inventories/{lot}", json=body, auth=bl_auth(sb), timeout=5)


def puts(sb) -> list[dict]:
    return [body for provider, endpoint, _, body in sb.writes if endpoint == "PUT /inventories/{id}"]


def outcomes(results) -> list[str]:
    return [r.outcome for r in results]


# ---------------------------------------------------------------------- BrickLink: the description
def test_the_adapter_reads_the_description_exactly_as_served(sandbox):
    sandbox.bricklink.add_lot("3001", 11, 10, description=TYPED, inventory_id=BL_LOT, is_retain=True)
    [lot] = bl(sandbox).list_lots()
    assert bl_get_lot(sandbox, BL_LOT).json()["data"]["description"] == SERVED
    assert lot.description == SERVED  # no unescaping, no stripping
    assert lot.retained is True and lot.for_sale is True
    assert bl_remote_lot({"inventory_id": 7, "quantity": 1}).description == ""  # absent: ""
    assert bl_remote_lot({"inventory_id": 7, "description": "  x &#41; "}).description == "  x &#41; "


def test_every_quantity_put_carries_the_lots_own_description_read_first_when_not_given(sandbox):
    sandbox.bricklink.add_lot("3001", 11, 10, description=TYPED, inventory_id=BL_LOT)
    adapter = bl(sandbox)
    sandbox.reset_calls()
    [result] = adapter.change_quantities([QuantityChange(str(BL_LOT), -3)])
    assert result.outcome == Outcome.APPLIED, result.detail
    assert sandbox.calls[("bricklink", "GET /inventories/{id}")] == 1  # read, to learn the description
    assert puts(sandbox) == [{"quantity": "-3", "description": SERVED}]  # is_retain left out: retain=None
    after = bl_get_lot(sandbox, BL_LOT).json()["data"]
    assert (after["quantity"], after["description"]) == (7, SERVED)  # byte-for-byte what it was

    sandbox.reset_calls()
    [result] = adapter.change_quantities([QuantityChange(str(BL_LOT), 2, description=SERVED)])
    assert result.outcome == Outcome.APPLIED
    assert sandbox.calls[("bricklink", "GET /inventories/{id}")] == 0  # given: not read again
    assert puts(sandbox)[-1] == {"quantity": "+2", "description": SERVED}
    assert bl_get_lot(sandbox, BL_LOT).json()["data"]["description"] == SERVED


def test_the_sandbox_refuses_a_quantity_change_without_a_description_as_bricklink_does(sandbox):
    sandbox.bricklink.add_lot("3001", 11, 10, description=TYPED, inventory_id=BL_LOT)
    for body in ({"quantity": "-1"}, {"quantity": "-1", "description": None}):
        r = bl_put(sandbox, BL_LOT, body)
        assert r.status_code == 400
        assert r.json()["meta"] == {"description": "String input must not be null",
                                    "message": "PARAMETER_MISSING_OR_INVALID", "code": 400}
    lot = sandbox.bricklink.get_lot(BL_LOT)
    assert (lot.quantity, bl_get_lot(sandbox, BL_LOT).json()["data"]["description"]) == (10, SERVED)


def test_an_empty_description_wipes_the_public_one(sandbox):
    sandbox.bricklink.add_lot("3001", 11, 10, description=TYPED, inventory_id=BL_LOT)
    [result] = bl(sandbox).change_quantities([QuantityChange(str(BL_LOT), -1, description="")])
    assert result.outcome == Outcome.APPLIED
    data = bl_get_lot(sandbox, BL_LOT).json()["data"]
    assert (data["quantity"], data["description"]) == (9, "")  # what a client sending "" does to a seller
    assert sandbox.bricklink.get_lot(BL_LOT).description == ""


def test_a_description_sent_in_plain_text_is_served_with_entities(sandbox):
    """What a client that unescaped would send: BrickLink serves it back encoded, so the round trip
    through GET cannot tell -- only the PUT's own body can (asserted above)."""
    sandbox.bricklink.add_lot("3001", 11, 10, inventory_id=BL_LOT)
    assert bl_put(sandbox, BL_LOT, {"quantity": "+0", "description": TYPED}).json()["data"]["description"] == SERVED
    assert bl_put(sandbox, BL_LOT, {"quantity": "+0", "description": SERVED}).json()["data"]["description"] == SERVED


@pytest.mark.parametrize("retain, sent, stays", [(True, True, True), (False, False, False), (None, None, False)])
def test_retain_is_set_put_back_or_left_out(sandbox, retain, sent, stays):
    was_retained = retain is False  # putting it back only means something on a retained lot
    sandbox.bricklink.add_lot("3001", 11, 2, description=TYPED, inventory_id=BL_LOT, is_retain=was_retained)
    [result] = bl(sandbox).change_quantities([QuantityChange(str(BL_LOT), -2, retain=retain)])
    assert result.outcome == Outcome.APPLIED
    [body] = puts(sandbox)
    assert body.get("is_retain", "absent") == (sent if sent is not None else "absent")
    assert body["description"] == SERVED
    lot = sandbox.bricklink.get_lot(BL_LOT)
    assert (lot is not None) is stays  # at 0: kept only while retained
    if stays:
        assert lot.quantity == 0 and lot.is_retain is True


def test_a_change_of_zero_only_puts_retain_back(sandbox):
    sandbox.bricklink.add_lot("3001", 11, 4, description=TYPED, inventory_id=BL_LOT, is_retain=True)
    [result] = bl(sandbox).change_quantities([QuantityChange(str(BL_LOT), 0, retain=False, description=SERVED)])
    assert result.outcome == Outcome.APPLIED
    assert puts(sandbox) == [{"description": SERVED, "is_retain": False}]
    lot = sandbox.bricklink.get_lot(BL_LOT)
    assert (lot.quantity, lot.is_retain, bl_get_lot(sandbox, BL_LOT).json()["data"]["description"]) == (4, False, SERVED)


def test_a_lot_gone_before_its_description_is_read_is_refused_and_nothing_is_sent(sandbox):
    sandbox.bricklink.add_lot("3001", 11, 5, inventory_id=BL_LOT)
    sandbox.bricklink.add_lot("3003", 5, 5, inventory_id=502, status="S")  # in stockroom A
    [gone, stockroom] = bl(sandbox).change_quantities([QuantityChange("999", -1), QuantityChange("502", -1)])
    assert gone.outcome == Outcome.REFUSED and "gone from BrickLink" in gone.detail
    assert stockroom.outcome == Outcome.REFUSED and "stockroom" in stockroom.detail
    assert puts(sandbox) == [] and sandbox.bricklink.get_lot(502).quantity == 5


# ---------------------------------------------------------------------- BrickLink: only lots for sale
def test_list_lots_asks_for_status_y_and_never_returns_stockroom_unavailable_or_reserved_lots(sandbox):
    for number, status in enumerate(("Y", "S", "B", "C", "N", "R")):
        sandbox.bricklink.add_lot("3001", 11, 10, remarks="A1", inventory_id=600 + number, status=status)
    lots = bl(sandbox).list_lots()
    assert [lot.remote_lot_id for lot in lots] == ["600"] and lots[0].for_sale
    queries = [q for provider, method, path, q in sandbox.requests if path == "/inventories"]
    assert queries == [{"status": "Y"}]
    # a single lot read may be a stockroom lot: it is marked, never for sale
    assert bl(sandbox).read_lot("601").for_sale is False
    assert bl_remote_lot({"inventory_id": 1, "is_stock_room": True, "stock_room_id": "B"}).for_sale is False


# ---------------------------------------------------------------------- the real CLI
@pytest.fixture
def shop(run, creds):
    """One part in bin A1, listed 20 on both marketplaces; the BrickLink lot has a description with entities."""
    creds.bricklink.add_lot("3001", 11, 20, remarks="A1", inventory_id=BL_LOT, description=TYPED)
    creds.brickowl.add_lot("771344-38", 20, lot_id=BO_LOT, personal_note="A1", external_id=BL_LOT,
                           ids=[{"id": "3001", "type": "design_id"}, {"id": "771344-38", "type": "boid"}])
    return creds


def test_a_push_through_the_cli_leaves_the_description_byte_for_byte(run, shop):
    before = bl_get_lot(shop, BL_LOT).json()["data"]["description"]
    assert before == SERVED
    assert run("inventory", "pull").exit_code == 0
    result = run("sync", "--push")
    assert result.exit_code == 0, result.stderr
    shop.brickowl.add_order("Payment Received", lines=[{"lot_id": BO_LOT, "boid": "771344-38", "color_id": 38,
                                                        "ordered_quantity": 5, "personal_note": "A1",
                                                        "bl_lot_id": str(BL_LOT)}])
    result = run("sync", "--push")
    assert result.exit_code == 0, result.stderr
    assert shop.bricklink.get_lot(BL_LOT).quantity == 15  # the BrickOwl sale reached BrickLink ...
    assert puts(shop) and all(body["description"] == SERVED for body in puts(shop))  # ... with its description
    assert bl_get_lot(shop, BL_LOT).json()["data"]["description"] == before


# ---------------------------------------------------------------------- BrickOwl: for_sale
def test_a_brickowl_lot_not_for_sale_is_read_as_such(sandbox):
    sandbox.brickowl.add_lot("771344-38", 7, lot_id="9001", for_sale=False)
    sandbox.brickowl.add_lot("771344-38", 7, lot_id="9002")
    lots = {lot.remote_lot_id: lot for lot in bo(sandbox).list_lots()}
    assert (lots["9001"].for_sale, lots["9002"].for_sale) == (False, True)
    assert bo(sandbox).read_lot("9001").for_sale is False


@pytest.mark.parametrize("value, for_sale", [("1", True), ("0", False), (1, True), (0, False), (True, True),
                                             (False, False), ("true", True), ("false", False), (None, True)])
def test_for_sale_is_read_tolerantly(value, for_sale):
    raw = {"lot_id": "1", "boid": "771344-38", "qty": "3"}
    if value is not None:
        raw["for_sale"] = value
    assert bo_remote_lot(raw).for_sale is for_sale


# ---------------------------------------------------------------------- BrickOwl: bulk/batch answers
@pytest.mark.parametrize("shape", BATCH_ANSWER_SHAPES)
@pytest.mark.parametrize("refusal", ["unknown lot", "below zero"])
def test_every_batch_answer_shape_gives_applied_and_refused(sandbox, shape, refusal):
    sandbox.brickowl.batch_answer_shape = shape
    good = sandbox.brickowl.add_lot("771344-38", 10, lot_id="9001")
    small = sandbox.brickowl.add_lot("3001-38", 2, lot_id="9002")
    bad = QuantityChange("4040", -1) if refusal == "unknown lot" else QuantityChange(small, -5)
    results = bo(sandbox).change_quantities([QuantityChange(good, -3), bad, QuantityChange(small, -1)])
    assert outcomes(results) == [Outcome.APPLIED, Outcome.REFUSED, Outcome.APPLIED], [r.detail for r in results]
    assert results[1].detail  # the marketplace's reason
    assert (sandbox.brickowl.get_lot(good).qty, sandbox.brickowl.get_lot(small).qty) == (7, 1)
    assert sandbox.calls[("brickowl", "POST /bulk/batch")] == 1


def mangle(sandbox, change):
    """Let bulk/batch apply the changes, then rewrite its answer with ``change`` (a function of the
    parsed JSON) before it is sent."""
    store = sandbox.brickowl
    route = next(r for r in store.routes if r.template == "POST /bulk/batch")
    original = route.handler

    def handler(req):
        answer = original(req)
        answer.body = json.dumps(change(json.loads(answer.body))).encode()
        return answer

    route.handler = handler


@pytest.mark.parametrize("shape, change, expected", [
    ("req_num_1", lambda a: [a[0], {"req_num": 2, "result": "ok"}], [Outcome.APPLIED, Outcome.UNKNOWN]),
    ("req_num_1", lambda a: [a[0], {**a[1], "code": 503}], [Outcome.APPLIED, Outcome.UNKNOWN]),
    ("req_num_1", lambda a: [a[1]], [Outcome.UNKNOWN, Outcome.APPLIED]),  # the first answer missing
    # the last one missing: req_num 1 alone could be either's (numbered from 0 or from 1)
    ("req_num_1", lambda a: [a[0]], [Outcome.UNKNOWN, Outcome.UNKNOWN]),
    ("req_num_1", lambda a: [{**x, "code": "OK"} for x in a], [Outcome.UNKNOWN, Outcome.UNKNOWN]),
    ("req_num_0", lambda a: [a[1]], [Outcome.UNKNOWN, Outcome.UNKNOWN]),  # req_num 1 alone: whose is it?
    ("responses", lambda a: {"responses": a["responses"][:1]}, [Outcome.UNKNOWN, Outcome.UNKNOWN]),
    ("responses", lambda a: {"responses": [a["responses"][0], {"endpoint": "inventory/update"}]},
     [Outcome.APPLIED, Outcome.UNKNOWN]),
    ("bare", lambda a: [a[0], {}], [Outcome.APPLIED, Outcome.UNKNOWN]),
    ("bare", lambda a: [a[0], {"code": 200}], [Outcome.APPLIED, Outcome.UNKNOWN]),  # not a body, not numbered
    ("bare", lambda a: {"results": a}, [Outcome.UNKNOWN, Outcome.UNKNOWN]),
    ("bare", lambda a: [a[0], {"req_num": 2, "code": 200, "body": {}}], [Outcome.UNKNOWN, Outcome.UNKNOWN]),
    ("bare", lambda a: [], [Outcome.UNKNOWN, Outcome.UNKNOWN]),
])  # fmt: skip
def test_an_answer_not_recognised_is_unknown_never_applied(sandbox, shape, change, expected):
    sandbox.brickowl.batch_answer_shape = shape
    one = sandbox.brickowl.add_lot("771344-38", 10, lot_id="9001")
    two = sandbox.brickowl.add_lot("3001-38", 10, lot_id="9002")
    mangle(sandbox, change)
    results = bo(sandbox).change_quantities([QuantityChange(one, -1), QuantityChange(two, -1)])
    assert outcomes(results) == expected, [r.detail for r in results]
    assert all(r.detail for r in results if r.outcome == Outcome.UNKNOWN)
    # both were applied all along: an unknown outcome is what makes the core read them back
    assert (sandbox.brickowl.get_lot(one).qty, sandbox.brickowl.get_lot(two).qty) == (9, 9)


def test_batch_outcomes_classify_each_element_strictly():
    ok, refused = {"status": "success"}, {"error": {"status": "Lot not found"}}
    assert batch_outcomes([{"req_num": 1, "code": 200, "body": ok}, {"req_num": 2, "code": 404, "body": refused}], 2) == [
        (Outcome.APPLIED, None), (Outcome.REFUSED, "Lot not found")]
    assert batch_outcomes([{"req_num": 1, "code": 404, "body": refused}, {"req_num": 0, "code": 200, "body": ok}], 2) == [
        (Outcome.APPLIED, None), (Outcome.REFUSED, "Lot not found")]  # counted from 0, any order
    assert batch_outcomes([{"req_num": 1, "code": 200, "body": {"error": "Invalid"}}], 1) == [(Outcome.REFUSED, "Invalid")]
    assert batch_outcomes([{"req_num": 1, "body": ok}], 1) == [(Outcome.APPLIED, None)]  # no code: the body says
    assert batch_outcomes({"responses": [{"status_code": 201, "body": {}}, {"status_code": 422, "body": {}}]}, 2) == [
        (Outcome.APPLIED, None), (Outcome.REFUSED, "answered 422")]
    for odd in ([{"req_num": 1, "code": 302, "body": ok}], [{"req_num": 1, "code": None, "body": {}}],
                [{"req_num": 1, "code": 200, "body": ok}, {"req_num": 1, "code": 200, "body": ok}],
                [{"req_num": 5, "code": 200, "body": ok}], ["success"], [None], None, "OK", {"status": "success"},
                {"responses": [{"endpoint": "inventory/create", "status_code": 200, "body": ok}]}):
        assert {outcome for outcome, _ in batch_outcomes(odd, 1)} == {Outcome.UNKNOWN}, odd


def test_a_single_change_answered_oddly_is_unknown(sandbox):
    lot = sandbox.brickowl.add_lot("771344-38", 10, lot_id="9001")
    route = next(r for r in sandbox.brickowl.routes if r.template == "POST /inventory/update")
    original = route.handler

    def handler(req):
        answer = original(req)
        answer.body = b'{"status": "queued"}'
        return answer

    route.handler = handler
    [result] = bo(sandbox).change_quantities([QuantityChange(lot, -1)])
    assert result.outcome == Outcome.UNKNOWN and "queued" in result.detail


# ---------------------------------------------------------------------- below zero (undocumented: both ways)
@pytest.mark.parametrize("mode", BELOW_ZERO)
def test_bricklink_below_zero_refused_or_clamped_both_read_sanely(sandbox, mode):
    sandbox.bricklink.below_zero = mode
    sandbox.bricklink.add_lot("3001", 11, 3, description=TYPED, inventory_id=BL_LOT, is_retain=True)
    [result] = bl(sandbox).change_quantities([QuantityChange(str(BL_LOT), -5, description=SERVED)])
    lot = sandbox.bricklink.get_lot(BL_LOT)
    if mode == "refuse":
        assert result.outcome == Outcome.REFUSED and "below 0" in result.detail and lot.quantity == 3
    else:
        assert result.outcome == Outcome.APPLIED and lot.quantity == 0  # retained: kept at 0
    assert bl(sandbox).read_lot(str(BL_LOT)).quantity == lot.quantity  # what a read-back would see


@pytest.mark.parametrize("mode", BELOW_ZERO)
def test_bricklink_adapter_never_sends_a_change_it_knows_goes_below_zero(sandbox, mode):
    sandbox.bricklink.below_zero = mode
    sandbox.bricklink.add_lot("3001", 11, 3, description=TYPED, inventory_id=BL_LOT)
    [result] = bl(sandbox).change_quantities([QuantityChange(str(BL_LOT), -5)])  # read first: it holds 3
    assert result.outcome == Outcome.REFUSED and "below 0" in result.detail
    assert puts(sandbox) == [] and sandbox.bricklink.get_lot(BL_LOT).quantity == 3


@pytest.mark.parametrize("mode", BELOW_ZERO)
@pytest.mark.parametrize("batched", [False, True])
def test_brickowl_below_zero_refused_or_clamped_both_read_sanely(sandbox, mode, batched):
    sandbox.brickowl.below_zero = mode
    lot = sandbox.brickowl.add_lot("771344-38", 3, lot_id="9001")
    other = sandbox.brickowl.add_lot("3001-38", 10, lot_id="9002")
    changes = [QuantityChange(lot, -5)] + ([QuantityChange(other, -1)] if batched else [])
    results = bo(sandbox).change_quantities(changes)
    qty = sandbox.brickowl.get_lot(lot).qty
    if mode == "refuse":
        assert results[0].outcome == Outcome.REFUSED and "below 0" in results[0].detail and qty == 3
    else:
        assert results[0].outcome == Outcome.APPLIED and qty == 0
    assert outcomes(results[1:]) == [Outcome.APPLIED] * len(results[1:])
    assert bo(sandbox).read_lot(lot).quantity == qty


def test_the_switches_take_only_their_values(sandbox):
    for store in (sandbox.bricklink, sandbox.brickowl):
        assert store.below_zero == "refuse"  # the default
        with pytest.raises(ValueError):
            store.below_zero = "ignore"
    assert sandbox.brickowl.batch_answer_shape == "req_num_1"  # the default: the only mock found counts from 1
    with pytest.raises(ValueError):
        sandbox.brickowl.batch_answer_shape = "xml"


# ---------------------------------------------------------------------- a write that lands late
def test_a_late_bricklink_write_is_unknown_then_lands_when_applied(sandbox):
    assert LATE_FAULTS == {"late"}
    sandbox.bricklink.add_lot("3001", 11, 10, description=TYPED, inventory_id=BL_LOT)
    adapter = bl(sandbox)
    sandbox.inject("bricklink", "PUT /inventories/{id}", "late")
    [result] = adapter.change_quantities([QuantityChange(str(BL_LOT), -4, description=SERVED)])
    assert result.outcome == Outcome.UNKNOWN  # no answer came
    assert adapter.read_lot(str(BL_LOT)).quantity == 10  # the read-back sees nothing yet ...
    assert sandbox.bricklink.late_writes == 1
    [answer] = sandbox.bricklink.apply_late_writes()
    assert answer.status == 200 and json.loads(answer.body)["meta"]["code"] == 200
    assert adapter.read_lot(str(BL_LOT)).quantity == 6  # ... and then it lands
    assert sandbox.bricklink.late_writes == 0 and sandbox.bricklink.apply_late_writes() == []
    assert bl_get_lot(sandbox, BL_LOT).json()["data"]["description"] == SERVED


@pytest.mark.parametrize("batched", [False, True])
def test_a_late_brickowl_write_is_unknown_then_lands_when_applied(sandbox, batched):
    one = sandbox.brickowl.add_lot("771344-38", 10, lot_id="9001")
    two = sandbox.brickowl.add_lot("3001-38", 10, lot_id="9002")
    sandbox.inject("brickowl", "*", "late")  # waits for the next write
    adapter = bo(sandbox)
    changes = [QuantityChange(one, -2)] + ([QuantityChange(two, -3)] if batched else [])
    results = adapter.change_quantities(changes)
    assert outcomes(results) == [Outcome.UNKNOWN] * len(changes)
    assert adapter.read_lot(one).quantity == 10 and adapter.read_lot(two).quantity == 10
    assert len(sandbox.apply_late_writes()) == 1  # one request held, whatever it carried
    assert (adapter.read_lot(one).quantity, adapter.read_lot(two).quantity) == (8, 7 if batched else 10)
