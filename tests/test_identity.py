"""BrickOwl -> BrickLink translation (marketsync.app.translate, marketsync.app.catalog) against a real DB, a real LotIndex and the
real BrickOwl adapter over HTTP (the loopback sandbox; a tiny server for custom colour lists)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from marketsync.app import catalog, translate
from marketsync.store import Store, open_store
from marketsync.errors import AuthError, PermissionDeniedError
from marketsync.app.catalog import colour_table as color_table
from marketsync.app.catalog import mappings, pin, unpin
from marketsync.store import catalog as stored_catalog
from marketsync.store.inventory import lot_index
from marketsync.providers import brickowl
from marketsync.providers.http import HttpClient, RetryPolicy
from marketsync.model import OrderLine
from marketsync.sandbox import Sandbox

ACCOUNT = "acct-1"
BLACK_BO, BLACK_BL = 38, 11  # BrickOwl 38 "Black" is BrickLink 11
DSG_BO, DBG_BL = 50, 85
WHITE_BO, WHITE_BL = 92, 1  # BrickOwl "Dark Stone Gray" is BrickLink "Dark Bluish Gray" 85


def Translator(db, catalog_adapter=None, **options):
    """A translator as a run builds one: from the stored catalogue data, over the account's lots."""
    return translate.Translator(catalog.known(db), lot_index(db), catalog_adapter, **options)


def persist(db, translator) -> None:
    with db.atomic():
        stored_catalog.save(db, translator.take_learned())


def refresh_colors(db, adapter) -> int:
    catalog.refresh_colours(db, adapter)
    return db.db["_brickowl_colors"].count


# --- fixtures and helpers --------------------------------------------------------------------
@pytest.fixture
def sb():
    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def db(tmp_path):
    store = open_store(tmp_path / "t.db", ACCOUNT)
    yield store
    store.close()


def make_adapter(base_url: str, key: str, retries: int = 0) -> brickowl.BrickOwl:
    client = HttpClient("brickowl", base_url, brickowl.decode, timeout=5, fixed_params={"key": key},
                        secrets=(key,), retry=RetryPolicy(retries=retries, backoff=0.01))
    return brickowl.BrickOwl(client)


@pytest.fixture
def adapter(sb):
    return make_adapter(sb.brickowl_url, sb.brickowl.api_key)


def lookups(sb) -> Counter:
    """id_lookup calls per BrickLink number, as the server saw them."""
    return Counter(q.get("id") for provider, _m, path, q in sb.requests
                   if provider == "brickowl" and path == "/catalog/id_lookup")


def add_lots(db, *lots, account=ACCOUNT):
    """lots: (part, colour, condition, location[, bricklink_lot_id])."""
    rows = []
    for lot in lots:
        part, color, cond, location, *link = lot
        rows.append({
            "business_account_id": account, "part_number": part, "color_id": color, "condition": cond,
            "location": location, "quantity": 10, "quantity_reserved": 0,
            "bricklink_lot_id": link[0] if link else None,
        })
    db.db["inventory"].insert_all(rows)


_keys = iter(range(1, 1_000_000))


def bo_line(boid="487300-38", color_id=BLACK_BO, full_con="new", ids=None, bl_lot_id=None, **extra) -> OrderLine:
    """A line as the real adapter parses a documented order/items entry."""
    raw = {
        "order_item_id": str(next(_keys)), "lot_id": "2726913", "boid": boid, "type": "Part",
        "name": "LEGO Tile 1 x 2 with Groove", "color_id": None if color_id is None else str(color_id),
        "condition": "New", "full_con": full_con, "ordered_quantity": "2", "refunded_quantity": "0",
        "base_price": "0.104", "personal_note": "B02",
        "bl_lot_id": bl_lot_id or "", "external_lot_ids": {"other": bl_lot_id} if bl_lot_id else [],
        "ids": ids if ids is not None else [{"id": "3069", "type": "design_id"}, {"id": "3069b", "type": "ldraw"},
                                            {"id": "3069b", "type": "peeron_id"}, {"id": boid, "type": "boid"}],
        **extra,
    }
    return brickowl.line_from("9277759", 0, raw)


def ids(design=None, ldraw=None, peeron=None):
    out = []
    for value, kind in ((design, "design_id"), (ldraw, "ldraw"), (peeron, "peeron_id")):
        if value:
            out.append({"id": value, "type": kind})
    return out


def translated(line: OrderLine):
    return line.part_number, line.color_id, line.condition, line.unmatched_reason


# --- colours ---------------------------------------------------------------------------------
def test_colour_normal_zero_negative_unknown_and_boid_fallback(db, sb, adapter):
    add_lots(db, ("3069b", BLACK_BL, "new", "A1"), ("3069b", DBG_BL, "new", "A2"), ("970c00", 0, "new", "A3"))
    sb.brickowl.add_id_lookup("3069b", ["487300-38", "487300-50", "487300"])
    sb.brickowl.add_id_lookup("970c00", ["111111"])
    t = Translator(db, adapter)

    normal = bo_line()
    stone = bo_line(boid="487300-50", color_id=DSG_BO)
    suffix_only = bo_line(color_id=None)  # colour from the BOID suffix
    colourless = bo_line(boid="111111", color_id=0, ids=ids(design="970c00"))
    bare_no_colour = bo_line(boid="111111", color_id=None, ids=ids(design="970c00"))
    negative = bo_line(boid="487300-162", color_id=162, color_name="Transparent Fire Yellow")
    unknown = bo_line(boid="487300-999", color_id=999)
    t.translate([normal, stone, suffix_only, colourless, bare_no_colour, negative, unknown])

    assert translated(normal) == ("3069b", BLACK_BL, "new", None)
    assert translated(stone) == ("3069b", DBG_BL, "new", None)
    assert translated(suffix_only) == ("3069b", BLACK_BL, "new", None)
    assert translated(colourless) == ("970c00", 0, "new", None)
    assert translated(bare_no_colour) == ("970c00", 0, "new", None)
    assert negative.color_id is None and negative.part_number == "3069b"
    assert negative.unmatched_reason == "BrickOwl colour 162 (Transparent Fire Yellow) has no BrickLink equivalent"
    assert unknown.color_id is None
    assert unknown.unmatched_reason == "BrickOwl colour 999 is not in the colour table yet"
    assert t.unknown_colours == {999}  # the sync fetches BrickOwl's table for it


def test_color_table_packaged_defaults(db):
    table = color_table(db)
    assert table[BLACK_BO] == BLACK_BL
    assert table[0] == 0
    assert table[162] is None  # "-9" placeholder in the CSV
    assert 999 not in table


# --- conditions ------------------------------------------------------------------------------
@pytest.mark.parametrize("code, expected", [
    ("new", "new"), ("news", "new"), ("newc", "new"), ("newi", "new"),
    ("usedc", "used"), ("usedi", "used"), ("usedn", "used"), ("usedg", "used"), ("useda", "used"),
])
def test_condition_codes(db, code, expected):
    add_lots(db, ("3069b", BLACK_BL, expected, "A1"))
    line = bo_line(full_con=code, ids=ids(ldraw="3069b"))
    Translator(db).translate([line])
    assert translated(line) == ("3069b", BLACK_BL, expected, None)


def test_condition_other_is_flagged_never_guessed(db):
    add_lots(db, ("3069b", BLACK_BL, "new", "A1"), ("3069b", BLACK_BL, "used", "A2"))
    pin(db, "487300", "3069b")
    line = bo_line(full_con="other")
    Translator(db).translate([line])
    assert line.condition is None
    assert line.part_number == "3069b" and line.color_id == BLACK_BL
    assert line.unmatched_reason == "BrickOwl condition 'other' has no BrickLink equivalent"


# --- part-number routes ----------------------------------------------------------------------
def test_manual_pin_wins_over_lot_link_and_lookup(db, sb, adapter):
    add_lots(db, ("3069b", BLACK_BL, "new", "A1", "55984791"), ("3069bpr0001", BLACK_BL, "new", "A2"))
    sb.brickowl.add_id_lookup("3069b", ["487300-38"])
    pin(db, "487300-38", "3069bpr0001")  # stored under the base BOID
    t = Translator(db, adapter)
    line = bo_line(bl_lot_id="55984791")
    t.translate([line])
    assert translated(line) == ("3069bpr0001", BLACK_BL, "new", None)
    assert t.routes == Counter({"manual": 1})
    assert sum(lookups(sb).values()) == 0
    persist(db, t)
    assert [(m["boid"], m["part_number"], m["source"]) for m in mappings(db)] == \
        [("487300", "3069bpr0001", "manual")]


def test_lot_link_is_authoritative_and_cached(db, sb, adapter):
    add_lots(db, ("3070b", BLACK_BL, "used", "A1", "55984791"))
    t = Translator(db, adapter)
    # untranslatable colour and condition: the linked lot supplies both
    line = bo_line(boid="900100-999", color_id=999, full_con="other", bl_lot_id="55984791",
                   ids=ids(design="3070"))
    line.unmatched_reason = "stale reason from an earlier run"
    t.translate([line])
    assert translated(line) == ("3070b", BLACK_BL, "used", None)
    assert sum(lookups(sb).values()) == 0
    persist(db, t)
    rows = {m["boid"]: (m["part_number"], m["source"]) for m in mappings(db)}
    assert rows == {"900100": ("3070b", "lot-link")}
    # a link to a lot the inventory lacks is ignored
    stray = bo_line(boid="900200-38", bl_lot_id="1", ids=[])
    t.translate([stray])
    assert stray.part_number is None
    assert stray.unmatched_reason == ("BrickOwl item 900200 (no alternative ids) has no BrickLink part number in the "
                                      "inventory; pin it with 'marketsync map 900200 PART_NUMBER'")
    assert sum(lookups(sb).values()) == 0  # no part of the inventory is black and new: nothing to ask about


def test_cached_map_needs_no_call(db, sb, adapter):
    add_lots(db, ("3069b", BLACK_BL, "new", "A1"))
    db.db["_boid_map"].insert({"business_account_id": ACCOUNT, "boid": "487300", "part_number": "3069b",
                            "source": "id_lookup", "created_at": "2024-01-01T00:00:00Z"})
    db.db["_boid_map"].insert({"business_account_id": "other-account", "boid": "555", "part_number": "x",
                            "source": "id_lookup", "created_at": "2024-01-01T00:00:00Z"})
    t = Translator(db, adapter)
    line = bo_line(ids=[])  # nothing to look up with: only the cache can answer
    other = bo_line(boid="555-38", ids=[])
    t.translate([line])
    assert translated(line) == ("3069b", BLACK_BL, "new", None)
    assert sum(lookups(sb).values()) == 0 and t.lookups_made == 0
    t.translate([other])
    assert other.part_number is None  # another account's mapping is not ours ...
    # ... and the only part in stock in its colour and condition is asked about, not taken on trust
    assert lookups(sb) == Counter({"3069b": 2}) and t.stock_lookups_made == 2


def test_id_lookup_design_id_prefix_and_one_call_serves_many(db, sb, adapter):
    add_lots(db, ("3069b", BLACK_BL, "new", "A1"), ("3069b", 1, "new", "A2"),
             ("30690", BLACK_BL, "new", "A3"), ("3001", BLACK_BL, "new", "A4"))
    sb.brickowl.add_id_lookup("3069b", ["487300-38", "487300-92", "487300"])
    t = Translator(db, adapter)
    black = bo_line(ids=ids(design="3069"))  # BrickOwl's design id is not the BrickLink number
    white = bo_line(boid="487300-92", color_id=WHITE_BO, ids=ids(design="3069"))
    t.translate([black, white])
    assert translated(black) == ("3069b", BLACK_BL, "new", None)
    assert translated(white) == ("3069b", WHITE_BL, "new", None)
    # only the plausible inventory number was asked about: not 30690, not 3001, not 3069 (not held)
    assert lookups(sb) == Counter({"3069b": 1})
    assert t.lookups_made == 1 and t.routes["id_lookup"] == 2
    persist(db, t)
    assert {m["boid"]: m["source"] for m in mappings(db)} == {"487300": "id_lookup"}
    assert json.loads(db.db["_id_lookups"].get((ACCOUNT, "3069b", "Part"))["boids"]) == \
        ["487300-38", "487300-92", "487300"]


def test_id_lookup_query_is_the_documented_one(db, sb, adapter):
    add_lots(db, ("3069b", BLACK_BL, "new", "A1"))
    sb.brickowl.add_id_lookup("3069b", ["487300-38"])
    Translator(db, adapter).translate([bo_line()])
    [(_p, method, path, query)] = [r for r in sb.requests if r[2] == "/catalog/id_lookup"]
    assert (method, query["id"], query["type"], query["id_type"]) == ("GET", "3069b", "Part", "bl_item_no")


def test_ids_fallback_cached_only_when_inventory_confirms(db, sb, adapter):
    add_lots(db, ("2412b", DBG_BL, "used", "A1"), ("3023", BLACK_BL, "new", "A2"))
    t = Translator(db, adapter)  # sandbox knows no BrickLink numbers
    grille = bo_line(boid="600100-50", color_id=DSG_BO, full_con="usedg", ids=ids(design="2412", ldraw="2412b"))
    wrong_colour = bo_line(boid="600200-92", color_id=WHITE_BO, ids=ids(design="3023", ldraw="3023"))
    t.translate([grille, wrong_colour])
    assert translated(grille) == ("2412b", DBG_BL, "used", None)
    assert t.routes["ids"] == 1
    assert wrong_colour.part_number is None
    assert wrong_colour.unmatched_reason == ("BrickOwl item 600200 (ids 3023) has no BrickLink part number in the "
                                             "inventory; pin it with 'marketsync map 600200 PART_NUMBER'")
    # asked once each as a Part and, both unknown (a miss), once as the fallback type Minibuild
    assert lookups(sb) == Counter({"2412b": 2, "3023": 2})
    persist(db, t)
    assert {m["boid"]: (m["part_number"], m["source"]) for m in mappings(db)} == \
        {"600100": ("2412b", "ids")}
    assert json.loads(db.db["_id_lookups"].get((ACCOUNT, "3023", "Part"))["boids"]) == []
    assert json.loads(db.db["_id_lookups"].get((ACCOUNT, "3023", "Minibuild"))["boids"]) == []


def test_ids_fallback_refused_when_brickowl_maps_the_number_elsewhere(db, sb, adapter):
    add_lots(db, ("3069b", BLACK_BL, "new", "A1"))
    sb.brickowl.add_id_lookup("3069b", ["487300-38"])
    line = bo_line(boid="777000-38")  # ldraw says 3069b, BrickOwl's catalog says 3069b is 487300
    Translator(db, adapter).translate([line])
    assert line.part_number is None
    assert "BrickOwl maps 3069b to other items" in line.unmatched_reason


def test_prefix_candidates_are_bounded(db, sb, adapter):
    # design id '30' must not sweep '3001', '3020', ... (another part whenever a digit follows)
    add_lots(db, *[(f"30{n:02d}", BLACK_BL, "new", f"B{n}") for n in range(30)], ("30b", BLACK_BL, "new", "C1"))
    t = Translator(db, adapter)
    line = bo_line(boid="123-38", ids=ids(design="30"))
    t.translate([line])
    asked = lookups(sb)
    assert asked["30b"] == 2  # the only extension of '30' (as a Part, then Minibuild on the miss)
    # the stock route then asks about the line's colour and condition, within the line's bound
    assert t.stock_lookups_made == translate.STOCK_LOOKUPS_PER_LINE
    assert sum(asked.values()) == 2 + translate.STOCK_LOOKUPS_PER_LINE
    assert line.part_number is None and line.unmatched_kind == "no_part"


# --- caches across runs, budget, errors -----------------------------------------------------
def test_second_translator_uses_the_caches(db, sb, adapter):
    add_lots(db, ("3069b", BLACK_BL, "new", "A1"), ("3023", BLACK_BL, "new", "A2"))
    sb.brickowl.add_id_lookup("3069b", ["487300-38"])
    lines = lambda: [bo_line(), bo_line(boid="600200-38", ids=ids(design="3023x", ldraw="3023"))]  # noqa: E731
    first = Translator(db, adapter)
    run1 = lines()
    first.translate(run1)
    with db.atomic():
        persist(db, first)
    assert first.lookups_made == 3 and sum(lookups(sb).values()) == 3  # 3069b; 3023 as Part, then Minibuild

    second = Translator(db, adapter)
    run2 = lines()
    second.translate(run2)
    assert [translated(a) for a in run1] == [translated(b) for b in run2]
    assert run2[0].part_number == "3069b" and run2[1].part_number == "3023"
    assert second.lookups_made == 0 and sum(lookups(sb).values()) == 3
    # an empty answer is cached too: a new BOID whose only candidate was already asked costs nothing
    third = bo_line(boid="600300-38", ids=ids(ldraw="3023"))
    second.translate([third])
    assert second.lookups_made == 0 and third.part_number == "3023"


def test_mapping_rebuilt_from_cached_answers_after_unpin(db, sb, adapter):
    add_lots(db, ("3069b", BLACK_BL, "new", "A1"), ("3069bpr0001", BLACK_BL, "new", "A2"))
    sb.brickowl.add_id_lookup("3069b", ["487300-38"])
    t = Translator(db, adapter)
    t.translate([bo_line()])
    with db.atomic():
        persist(db, t)
    pin(db, "487300", "3069bpr0001")  # overrides the learned row
    assert mappings(db)[0]["source"] == "manual"
    assert unpin(db, "487300-38") is True
    assert unpin(db, "487300") is False
    assert mappings(db) == []
    again = Translator(db, adapter)
    line = bo_line()
    again.translate([line])
    assert line.part_number == "3069b" and again.lookups_made == 0  # from the cached _id_lookups answer


def test_persist_never_overwrites_a_manual_pin(db, sb, adapter):
    add_lots(db, ("3069b", BLACK_BL, "new", "A1"))
    sb.brickowl.add_id_lookup("3069b", ["487300-38"])
    t = Translator(db, adapter)
    t.translate([bo_line()])
    pin(db, "487300", "3069c")  # the seller pins while the run is going
    with db.atomic():
        persist(db, t)
    assert [(m["part_number"], m["source"]) for m in mappings(db)] == [("3069c", "manual")]


def test_lookup_budget(db, sb, adapter):
    parts = ["3001", "3002", "3003"]
    add_lots(db, *[(p, BLACK_BL, "new", f"A{i}") for i, p in enumerate(parts)])
    for i, p in enumerate(parts):
        sb.brickowl.add_id_lookup(p, [f"{i + 1}00-38"])

    t = Translator(db, adapter, lookup_budget=1)
    # condition 'other' rules out the ids fallback: only id_lookup can name the part
    lines = [bo_line(boid=f"{i + 1}00-38", ids=ids(ldraw=p), full_con="other") for i, p in enumerate(parts)]
    t.translate(lines)
    assert t.lookups_made == 1 and sum(lookups(sb).values()) == 1
    assert lines[0].part_number == "3001"
    assert "id lookup deferred to a later run" in lines[1].unmatched_reason
    assert "id lookup deferred to a later run" in lines[2].unmatched_reason
    assert t.lookups_deferred == 2
    with db.atomic():
        persist(db, t)

    later = Translator(db, adapter, lookup_budget=5)
    retry = [bo_line(boid=f"{i + 1}00-38", ids=ids(ldraw=p), full_con="other") for i, p in enumerate(parts)]
    later.translate(retry)
    assert [line.part_number for line in retry] == parts
    assert later.lookups_made == 2 and lookups(sb) == Counter({"3001": 1, "3002": 1, "3003": 1})


def test_rejected_lookup_is_not_cached_as_an_answer(db, sb, adapter):
    # A plain-string refusal is not an answer: caching it as "no BOIDs" for ever would leave lines
    # unmatched for good after one bad moment (tests/reliability/test_faults.py found that).
    add_lots(db, ("3069b", BLACK_BL, "new", "A1"))
    sb.inject("brickowl", "GET /catalog/id_lookup", "error_string", message="Invalid ID")
    t = Translator(db, adapter)
    line = bo_line(boid="487300-38", ids=ids(ldraw="3069b"))
    t.translate([line])  # does not raise
    assert translated(line) == ("3069b", BLACK_BL, "new", None)  # the ids fallback still applies
    persist(db, t)
    assert db.db["_id_lookups"].count == 0


def test_auth_error_propagates(db, sb):
    add_lots(db, ("3069b", BLACK_BL, "new", "A1"))
    bad = make_adapter(sb.brickowl_url, "WRONGKEY")
    t = Translator(db, bad)
    with pytest.raises(AuthError) as caught:
        t.translate([bo_line()])
    assert "WRONGKEY" not in str(caught.value)
    persist(db, t)
    assert db.db["_id_lookups"].count == 0  # a failed call caches nothing


def test_transient_failure_defers_without_caching(db, sb, adapter):
    add_lots(db, ("3069b", BLACK_BL, "new", "A1"), ("3023", BLACK_BL, "new", "A2"))
    sb.brickowl.add_id_lookup("3069b", ["487300-38"])
    sb.inject("brickowl", "GET /catalog/id_lookup", "500", times=None)
    t = Translator(db, adapter)
    first, second = bo_line(ids=ids(design="3069")), bo_line(boid="600200-38", ids=ids(ldraw="3023"))
    t.translate([first, second])
    assert first.part_number is None and "deferred" in first.unmatched_reason
    assert second.part_number == "3023"  # inventory-confirmed fallback still works
    assert sum(lookups(sb).values()) == 1  # stopped asking after the outage
    assert t.lookup_error and "500" in t.lookup_error
    persist(db, t)
    assert db.db["_id_lookups"].count == 0
    sb.clear_faults()
    retry = bo_line(ids=ids(design="3069"))
    Translator(db, adapter).translate([retry])
    assert retry.part_number == "3069b"


def test_odd_lines_get_a_reason_and_never_raise(db, sb, adapter):
    add_lots(db, ("3069b", BLACK_BL, "new", "A1"))
    t = Translator(db, adapter)
    nothing = OrderLine(provider="brickowl", order_id="1", line_key="1", quantity=1)
    garbage = OrderLine(provider="brickowl", order_id="1", line_key="2", quantity=1, boid="  ",
                        provider_color_id="x", provider_condition="weird", alt_part_numbers=None)
    garbage.provider_color_id = "x"  # not even an int
    listed = OrderLine(provider="brickowl", order_id="1", line_key="3", quantity=1, boid="-38",
                       provider_color_id=38, provider_condition="new", condition="new",
                       alt_part_numbers=[None, "", {"a": 1}])
    bricklink = OrderLine(provider="bricklink", order_id="2", line_key="1:1", quantity=1, part_number="3001",
                          color_id=5, condition="new", unmatched_reason="keep")
    t.translate([nothing, garbage, listed, bricklink])
    assert nothing.part_number is None and nothing.unmatched_reason == (
        "BrickOwl line has no colour; BrickOwl line has no condition; "
        "BrickOwl line without a BOID (no alternative ids) has no BrickLink part number in the inventory")
    assert garbage.unmatched_reason.startswith("BrickOwl line has no colour; BrickOwl condition 'weird'")
    assert listed.part_number is None and listed.color_id == BLACK_BL and listed.unmatched_reason
    assert (bricklink.part_number, bricklink.color_id, bricklink.unmatched_reason) == ("3001", 5, "keep")
    # only the line with a BOID, a colour and a condition had the part in stock asked about (and not
    # named by BrickOwl, so not taken)
    assert lookups(sb) == Counter({"3069b": 2}) and t.lookups_made == t.stock_lookups_made == 2


def test_translate_lines_fetched_from_the_marketplace(db, sb, adapter):
    add_lots(db, ("3069b", BLACK_BL, "new", "A1"), ("3001", DBG_BL, "used", "A2", "4242"))
    sb.brickowl.add_id_lookup("3069b", ["487300-38"])
    order_id = sb.brickowl.add_order(lines=[
        {"boid": "487300-38", "ids": ids(design="3069", ldraw="3069b")},
        {"boid": "500500-50", "full_con": "useda", "bl_lot_id": "4242", "ids": ids(design="3001")},
        {"boid": "487300-38", "full_con": "other", "ids": ids(design="3069")},
    ])
    lines = adapter.fetch_lines(order_id)
    Translator(db, adapter).translate(lines)
    assert [translated(line)[:3] for line in lines] == [
        ("3069b", BLACK_BL, "new"), ("3001", DBG_BL, "used"), ("3069b", BLACK_BL, None)]
    assert lines[2].unmatched_reason == "BrickOwl condition 'other' has no BrickLink equivalent"


# --- threads ---------------------------------------------------------------------------------
def test_concurrent_translate_looks_each_part_up_once(db, sb, adapter):
    parts = [f"4{n:03d}b" for n in range(12)]
    add_lots(db, *[(p, BLACK_BL, "new", f"A{i}") for i, p in enumerate(parts)])
    for i, p in enumerate(parts):
        sb.brickowl.add_id_lookup(p, [f"{700 + i}-38", f"{700 + i}-92"])
    [route] = [r for r in sb.brickowl.routes if r.template == "GET /catalog/id_lookup"]
    original = route.handler

    def slow(req):  # widen the race window
        time.sleep(0.01)
        return original(req)

    route.handler = slow
    t = Translator(db, adapter)
    batches = [[bo_line(boid=f"{700 + i}-38", ids=ids(design=p[:-1])) for i, p in enumerate(parts)]
               for _ in range(8)]
    errors: list[BaseException] = []

    def work(batch):
        try:
            t.translate(batch)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):  # the main thread persists meanwhile
        with db.atomic():
            persist(db, t)
        time.sleep(0.005)
    for thread in threads:
        thread.join()
    with db.atomic():
        persist(db, t)
    assert errors == []
    for batch in batches:
        assert [line.part_number for line in batch] == parts
        assert all(line.unmatched_reason is None for line in batch)
    assert lookups(sb) == Counter({p: 1 for p in parts})
    assert t.lookups_made == len(parts)
    assert {m["boid"] for m in mappings(db)} == {str(700 + i) for i in range(len(parts))}
    assert db.db["_id_lookups"].count == len(parts)


# --- colour table refresh --------------------------------------------------------------------
class _ColorServer:
    """A tiny BrickOwl stand-in answering /v1/catalog/color_list (or 403) and counting calls."""

    def __init__(self, body, status=200):
        self.calls = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.calls += 1
                ok = self.path.startswith("/v1/catalog/color_list") and "key=K3Y" in self.path
                payload = body if ok else {"error": {"status": "Invalid method"}}
                data = json.dumps(payload).encode()
                self.send_response(status if ok else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_refresh_colors_stores_the_api_table_and_color_table_prefers_it(db):
    body = {
        "0": {"id": "0", "name": "Not Applicable", "bl_ids": []},  # colourless stays BrickLink 0
        "38": {"id": "38", "name": "Black", "bl_ids": ["11"]},
        "50": {"id": "50", "name": "Dark Stone Gray", "bl_ids": ["86"]},  # differs from the CSV's 85
        "162": {"id": "162", "name": "Transparent Fire Yellow", "bl_ids": ["-9"]},
        "500": {"id": "500", "name": "Brand New Colour", "bl_ids": [None, "250"]},
    }
    with _ColorServer(body) as url:
        count = refresh_colors(db, make_adapter(url, "K3Y"))
    assert count == 5
    stored = {r["brickowl_color_id"]: (r["bricklink_color_id"], r["source"]) for r in db.db["_brickowl_colors"].rows}
    assert stored == {0: (None, "api"), 38: (11, "api"), 50: (86, "api"), 162: (None, "api"), 500: (250, "api")}
    table = color_table(db)
    assert table[0] == 0
    assert table[50] == 86 and table[500] == 250 and table[162] is None
    assert table[3] == 23  # colours the API did not list keep the packaged value

    add_lots(db, ("3069b", 86, "new", "A1"))
    pin(db, "487300", "3069b")
    line = bo_line(boid="487300-50", color_id=50)
    Translator(db).translate([line])
    assert translated(line) == ("3069b", 86, "new", None)


def test_refresh_colors_permission_denied_propagates(db):
    with _ColorServer({"error": {"status": "No permission"}}, status=403) as url:
        with pytest.raises(PermissionDeniedError):
            refresh_colors(db, make_adapter(url, "K3Y"))
    assert db.db["_brickowl_colors"].count == 0
    assert color_table(db)[BLACK_BO] == BLACK_BL  # packaged table still serves


def test_refresh_colors_with_the_sandbox_table(db, sb, adapter):
    count = refresh_colors(db, adapter)
    assert count == len(catalog.packaged_colours()) and count > 100
    assert sb.calls[("brickowl", "GET /catalog/color_list")] == 1
    assert color_table(db)[BLACK_BO] == BLACK_BL


# --- pins ------------------------------------------------------------------------------------
def test_pin_unpin_mappings(db):
    pin(db, "487300-38", "3069b")
    pin(db, "487300-1", "3069bpr9")  # same base BOID: replaces
    other_account = Store(db.db, "someone-else")
    pin(other_account, "487300", "zzz")
    [row] = mappings(db)
    assert (row["boid"], row["part_number"], row["source"]) == ("487300", "3069bpr9", "manual")
    assert row["created_at"].endswith("Z")
    with pytest.raises(ValueError):
        pin(db, "", "3001")
    assert unpin(db, "487300") is True
    assert mappings(db) == [] and len(mappings(other_account)) == 1


def test_split_boid():
    assert translate.split_boid("487300-38") == ("487300", 38)
    assert translate.split_boid("487300") == ("487300", None)
    assert translate.split_boid(487300) == ("487300", None)
    assert translate.split_boid("-38") == ("-38", None)
    assert translate.split_boid(None) == (None, None)


# --- issue 13: item types, candidates from stock, conditions from display text -----------------
def typed_lookups(sb) -> list[tuple[str, str]]:
    """(BrickLink number, type) of every id_lookup the server answered, in order."""
    return [(q.get("id"), q.get("type")) for provider, _m, path, q in sb.requests
            if provider == "brickowl" and path == "/catalog/id_lookup"]


@pytest.mark.parametrize("line_type, listed_as, asked", [
    ("Part", "Minibuild", [("10197", "Part"), ("10197", "Minibuild")]),
    ("Minifigure", "Minibuild", [("10197", "Minifigure"), ("10197", "Minibuild")]),
    ("Set", "Gear", [("10197", "Set"), ("10197", "Gear")]),
    ("Gear", "Set", [("10197", "Gear"), ("10197", "Set")]),
    ("Minifigure", "Minifigure", [("10197", "Minifigure")]),
    ("minifigure", "Minifigure", [("10197", "Minifigure")]),  # asked in BrickOwl's spelling
])
def test_id_lookup_asks_with_the_line_type_then_its_fallback(db, sb, adapter, line_type, listed_as, asked):
    add_lots(db, ("10197", 0, "new", "A1"))
    sb.brickowl.add_id_lookup("10197", ["610610"], type=listed_as)
    line = bo_line(boid="610610", color_id=0, ids=ids(ldraw="10197"), type=line_type)
    t = Translator(db, adapter)
    t.translate([line])
    assert typed_lookups(sb) == asked
    assert translated(line) == ("10197", 0, "new", None) and t.routes == Counter({"id_lookup": 1})


def test_a_type_without_fallback_is_asked_once_and_a_line_without_type_as_a_part(db, sb, adapter):
    add_lots(db, ("10197", 0, "new", "A1"), ("3069b", BLACK_BL, "new", "A2"))
    sb.brickowl.add_id_lookup("3069b", ["487300-38"])
    sticker = bo_line(boid="610610", color_id=0, ids=ids(ldraw="10197"), type="Sticker", full_con="other")
    untyped = bo_line(type=None)
    Translator(db, adapter).translate([sticker, untyped])
    assert typed_lookups(sb) == [("10197", "Sticker"), ("3069b", "Part")]
    assert untyped.part_number == "3069b" and sticker.part_number is None


def test_answers_are_cached_per_type(db, sb, adapter):
    add_lots(db, ("sw0001", 0, "used", "M01"))
    sb.brickowl.add_id_lookup("sw0001", ["547141"], type="Minifigure")
    first = Translator(db, adapter)
    part_line = bo_line(boid="990001", color_id=0, ids=ids(ldraw="sw0001"), full_con="other")  # a Part line
    first.translate([part_line])
    persist(db, first)
    stored = {(r["part_number"], r["item_type"]): json.loads(r["boids"]) for r in db.db["_id_lookups"].rows}
    assert stored == {("sw0001", "Part"): [], ("sw0001", "Minibuild"): []}

    # The answers cached for a Part do not answer for a Minifigure: asked again with its own type.
    second = Translator(db, adapter)
    figure = bo_line(boid="547141", color_id=0, ids=ids(ldraw="sw0001"), full_con="usedn", type="Minifigure")
    second.translate([figure])
    assert translated(figure) == ("sw0001", 0, "used", None)
    assert typed_lookups(sb)[2:] == [("sw0001", "Minifigure")] and second.lookups_made == 1
    persist(db, second)

    third = Translator(db, adapter)  # a later run: every answer is cached, per type
    again = [bo_line(boid="547141", color_id=0, ids=ids(ldraw="sw0001"), full_con="usedn", type="Minifigure"),
             bo_line(boid="990001", color_id=0, ids=ids(ldraw="sw0001"), full_con="other")]
    third.translate(again)
    assert third.lookups_made == 0 and len(typed_lookups(sb)) == 3
    assert again[0].part_number == "sw0001" and again[1].part_number is None


def test_answers_cached_before_item_types_mean_part(tmp_path):
    """A database of the version before: its _id_lookups rows were all asked as a Part."""
    from sqlite_utils import Database
    from sqlite_utils.migrations import Migrations
    from marketsync.store import schema

    path = tmp_path / "old.db"
    old = Database(path)
    before = Migrations("marketsync")
    before._migrations = [m for m in schema.migrations._migrations if m.name < "m006"]
    before.apply(old)
    old["_id_lookups"].insert({"business_account_id": ACCOUNT, "part_number": "3069b",
                               "boids": json.dumps(["487300-38"]), "looked_up_at": "2024-01-01T00:00:00Z"})
    old.conn.close()
    db = open_store(path, ACCOUNT)  # migrates
    try:
        assert stored_catalog.lookup_answers(db) == {("3069b", "Part"): ["487300-38"]}
        assert db.db["_id_lookups"].pks == ["business_account_id", "part_number", "item_type"]
        add_lots(db, ("3069b", BLACK_BL, "new", "A1"))
        line = bo_line(ids=[])
        t = Translator(db)
        t.translate([line])
        assert line.part_number == "3069b" and t.lookups_made == 0
    finally:
        db.db.conn.close()


def test_stock_candidates_bin_first_confirmed_and_stored(db, sb, adapter):
    add_lots(db, ("3024", BLACK_BL, "new", "B07"), ("3023", BLACK_BL, "new", "B07"), ("3023", BLACK_BL, "used", "B07"),
             ("3020", BLACK_BL, "new", "B08"), ("3023", WHITE_BL, "new", "B07"))
    sb.brickowl.add_id_lookup("3024", ["771600-38"])
    sb.brickowl.add_id_lookup("3023", ["771500-38", "771500-92", "771500"])
    sb.brickowl.add_id_lookup("3020", ["771500-38"])  # would also "confirm"; never reached: the bin comes first
    t = Translator(db, adapter)
    line = bo_line(boid="771500-38", ids=ids(design="28653"), personal_note="B07", name="LEGO Black Plate 1 x 2 (3023)")
    white = bo_line(boid="771500-92", color_id=WHITE_BO, ids=ids(design="28653"), personal_note="B07")
    t.translate([line, white])
    # the name's 3023 ranks it before the bin's other black new part: one call
    assert typed_lookups(sb) == [("3023", "Part")]
    assert translated(line) == ("3023", BLACK_BL, "new", None) and translated(white) == ("3023", WHITE_BL, "new", None)
    assert t.routes == Counter({"stock": 1, "id_lookup": 1}) and t.stock_lookups_made == 1
    persist(db, t)
    assert {m["boid"]: (m["part_number"], m["source"]) for m in mappings(db)} == \
        {"771500": ("3023", "id_lookup")}
    assert json.loads(db.db["_id_lookups"].get((ACCOUNT, "3023", "Part"))["boids"]) == \
        ["771500-38", "771500-92", "771500"]


def test_a_line_without_full_con_takes_its_condition_from_the_display_text(db, sb, adapter):
    """Real captures lack ``full_con`` at times; the display text ("Used (Good)") then decides."""
    add_lots(db, ("3069b", BLACK_BL, "new", "A1"), ("3069b", BLACK_BL, "used", "A2"))
    sb.brickowl.add_id_lookup("3069b", ["487300-38"])
    sb.quirks = {"no_full_con"}  # order items carry only the display text
    order_id = sb.brickowl.add_order(lines=[{"boid": "487300-38", "full_con": "usedg", "ids": ids(ldraw="3069b")},
                                            {"boid": "487300-38", "full_con": "newc", "ids": ids(ldraw="3069b")}])
    used, new = adapter.fetch_lines(order_id)
    assert "full_con" not in used.raw and used.raw["condition"] == "Used (Good)"
    assert (used.provider_condition, used.condition) == ("Used (Good)", "used")
    assert (new.provider_condition, new.condition) == ("New (Complete)", "new")
    Translator(db, adapter).translate([used, new])
    assert translated(used) == ("3069b", BLACK_BL, "used", None)
    assert translated(new) == ("3069b", BLACK_BL, "new", None)


def test_line_from_reads_the_display_text_when_full_con_is_missing_or_null():
    for raw in ({"condition": "Used (Good)"}, {"condition": "Used (Good)", "full_con": None},
                {"condition": "Used (Good)", "full_con": ""}):
        line = brickowl.line_from("1", 0, {"order_item_id": "1", "boid": "487300-38", **raw})
        assert (line.provider_condition, line.condition) == ("Used (Good)", "used")
    line = brickowl.line_from("1", 0, {"order_item_id": "1", "boid": "487300-38", "condition": "Used (Good)",
                                       "full_con": "newc"})
    assert (line.provider_condition, line.condition) == ("newc", "new")  # full_con wins when present
