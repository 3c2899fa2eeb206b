"""Issue 5 end to end: BrickOwl lines land on BrickLink-keyed lots through every route, via the real CLI."""

from __future__ import annotations

import json
import sqlite3

INVENTORY = """part_number,color_id,condition,location,quantity,bricklink_lot_id
3069b,11,new,B02,50,55984791
3001,85,used,C01,40,
3001,85,new,C02,30,
2412b,5,new,D01,25,
3020,86,new,E01,10,
"""

LINK = {"boid": "487300-38", "color_id": 38, "full_con": "new", "ordered_quantity": 2, "personal_note": "",
        "bl_lot_id": "55984791", "ids": [{"id": "3069", "type": "design_id"}], "name": "Tile 1 x 2 with Groove"}
LOOKUP = {"boid": "771344-50", "color_id": 50, "full_con": "usedg", "ordered_quantity": 3, "personal_note": "",
          "ids": [{"id": "3001", "type": "design_id"}], "name": "Brick 2 x 4"}
IDS = {"boid": "999001-81", "color_id": 81, "full_con": "new", "ordered_quantity": 4, "personal_note": "",
       "ids": [{"id": "2412b", "type": "ldraw"}, {"id": "2412", "type": "design_id"}], "name": "Tile Grille"}
OTHER = {"boid": "771344-50", "color_id": 50, "full_con": "other", "ordered_quantity": 1, "name": "Brick 2 x 4"}
NO_COLOUR = {"boid": "771344-162", "color_id": 162, "full_con": "new", "ordered_quantity": 1, "name": "Brick 2 x 4"}
UNKNOWN = {"boid": "123456-64", "color_id": 64, "full_con": "new", "ordered_quantity": 5,
           "ids": [{"id": "3020x", "type": "design_id"}], "name": "Plate 2 x 4"}


def lines(db_path, order_id):
    db = sqlite3.connect(db_path)
    db.row_factory = sqlite3.Row
    rows = db.execute(
        "select l.boid, l.part_number, l.color_id, l.condition, l.inventory_id, l.unmatched_reason, i.location "
        "from order_items l left join inventory i on i.id = l.inventory_id where l.order_id = ? order by l.id",
        [order_id]).fetchall()
    return [dict(r) for r in rows]


def reserved(db_path, location):
    db = sqlite3.connect(db_path)
    return db.execute("select quantity_reserved from inventory where location = ?", [location]).fetchone()[0]


def setup_store(run, sandbox, tmp_path):
    (tmp_path / "inv.csv").write_text(INVENTORY)
    assert run("inventory", "import", "inv.csv").exit_code == 0
    sandbox.brickowl.add_id_lookup("3001", ["771344-50", "771344"])


def test_each_route_lands_on_the_right_lot(run, creds, tmp_path):
    setup_store(run, creds, tmp_path)
    order = creds.brickowl.add_order(status="Payment Received", lines=[LINK, LOOKUP, IDS, OTHER, NO_COLOUR])
    result = run("sync", "--provider", "brickowl")
    assert result.exit_code == 0, result.stderr

    got = {(r["boid"], r["condition"]): r for r in lines("marketsync.db", order)}
    assert got[("487300-38", "new")]["location"] == "B02"  # lot link
    assert got[("487300-38", "new")]["part_number"] == "3069b"
    assert got[("771344-50", "used")]["location"] == "C01"  # catalog lookup, BrickOwl 'usedg' -> used
    assert got[("771344-50", "used")]["color_id"] == 85  # BrickOwl Dark Stone Gray -> BrickLink 85
    assert got[("999001-81", "new")]["location"] == "D01"  # ldraw id confirmed by the inventory
    assert got[("999001-81", "new")]["color_id"] == 5

    other = got[("771344-50", None)]
    assert other["inventory_id"] is None and "'other'" in other["unmatched_reason"]
    no_colour = got[("771344-162", "new")]
    assert no_colour["inventory_id"] is None and "no BrickLink equivalent" in no_colour["unmatched_reason"]

    assert (reserved("marketsync.db", "B02"), reserved("marketsync.db", "C01"), reserved("marketsync.db", "D01")) == (2, 3, 4)
    assert reserved("marketsync.db", "C02") == 0  # the new 3001 lot is not touched by a used line
    # untranslatable lines are reported, one line each, without failing the sync
    problems = [line for line in result.stderr.splitlines() if "unmatched" in line]
    assert len(problems) == 2
    assert run("reserve", "--check").exit_code == 0


def test_the_cache_saves_calls_on_the_next_run(run, creds, tmp_path):
    setup_store(run, creds, tmp_path)
    creds.brickowl.add_order(lines=[LOOKUP])
    assert run("sync").exit_code == 0
    first = creds.calls[("brickowl", "GET /catalog/id_lookup")]
    assert first >= 1

    creds.reset_calls()
    creds.brickowl.add_order(lines=[LOOKUP, dict(LOOKUP, full_con="new", boid="771344-50")])
    result = run("sync")
    assert result.exit_code == 0
    assert creds.calls[("brickowl", "GET /catalog/id_lookup")] == 0  # cached in the database
    assert creds.calls[("brickowl", "GET /order/view")] == 1
    assert reserved("marketsync.db", "C02") == 3  # the new-condition line found the new lot


def test_pinned_mapping_and_reserve_pick_up_waiting_lines(run, creds, tmp_path):
    setup_store(run, creds, tmp_path)
    order = creds.brickowl.add_order(lines=[UNKNOWN])
    result = run("sync")
    assert result.exit_code == 0
    assert "unmatched" in result.stderr and "123456" in result.stderr
    assert lines("marketsync.db", order)[0]["inventory_id"] is None

    assert run("map", "123456", "3020").exit_code == 0
    listed = json.loads(run("map", "--json").stdout)
    assert {"boid": "123456", "part_number": "3020", "source": "manual"}.items() <= listed[0].items()

    result = run("reserve")
    assert result.exit_code == 0
    assert "reserved 5 on lot" in result.stdout
    assert lines("marketsync.db", order)[0]["location"] == "E01"
    assert reserved("marketsync.db", "E01") == 5
    assert run("reserve").stdout == ""  # idempotent
    assert run("reserve", "--check").exit_code == 0

    assert run("map", "123456", "--remove").exit_code == 0
    assert json.loads(run("map", "--json").stdout) == []
    missing = run("map", "123456", "--remove")
    assert missing.exit_code == 1 and "no mapping" in missing.stderr


def test_inventory_pull_imports_a_bricklink_store(run, creds):
    creds.bricklink.add_lot("3001", 11, 120, new_or_used="N", remarks="A01", inventory_id=111)
    creds.bricklink.add_lot("3069b", 85, 40, new_or_used="U", remarks="Drawer (top)", inventory_id=222)
    creds.bricklink.add_lot("3001", 11, 5, new_or_used="N", remarks="A01", inventory_id=333)  # same bin twice
    result = run("inventory", "pull", "--provider", "bricklink")
    assert result.exit_code == 0, result.stderr
    lots = {(l["part_number"], l["location"]): l for l in json.loads(run("inventory", "list", "--json").stdout)}
    assert lots[("3001", "A01")]["quantity"] == 125
    assert lots[("3001", "A01")]["condition"] == "new"
    assert lots[("3069b", "Drawer (top)")]["condition"] == "used"
    assert lots[("3069b", "Drawer (top)")]["bricklink_lot_id"] == "222"
    assert creds.calls[("bricklink", "GET /inventories")] == 1
    # pulling again updates, never duplicates
    assert run("inventory", "pull").exit_code == 0
    assert len(json.loads(run("inventory", "list", "--json").stdout)) == 2


def test_a_colour_newer_than_the_table_fetches_brickowls_table_once(run, creds, tmp_path):
    """BrickOwl adds colour 990 (BrickLink 11); the packaged table does not know it yet."""
    setup_store(run, creds, tmp_path)
    creds.brickowl.add_color(990, "Black Metallic", 11)
    order = creds.brickowl.add_order(lines=[dict(LINK, boid="487300-990", color_id=990, bl_lot_id=None,
                                                 ids=[{"id": "3069b", "type": "ldraw"}])])
    result = run("sync")
    assert result.exit_code == 0, result.stderr
    assert creds.calls[("brickowl", "GET /catalog/color_list")] == 1
    assert lines("marketsync.db", order)[0]["location"] == "B02"  # matched once the table knew 990
    assert reserved("marketsync.db", "B02") == 2
    assert "unmatched" not in result.stderr

    # Another unknown colour in the same week: no second fetch, the line waits with its reason.
    other = creds.brickowl.add_order(lines=[dict(LINK, boid="487300-991", color_id=991, bl_lot_id=None)])
    result = run("sync")
    assert result.exit_code == 0
    assert creds.calls[("brickowl", "GET /catalog/color_list")] == 1
    assert "not in the colour table yet" in lines("marketsync.db", other)[0]["unmatched_reason"]
    assert [line for line in result.stderr.splitlines() if "991" in line] == [
        "brickowl: colour 991 is not in the colour table yet; its lines wait unmatched until it is "
        "(the table is fetched from BrickOwl at most weekly)"]
    assert run("reserve", "--check").exit_code == 0


def test_colours_the_table_knows_never_cost_a_call(run, creds, tmp_path):
    setup_store(run, creds, tmp_path)
    creds.brickowl.add_order(lines=[LINK, LOOKUP, NO_COLOUR])  # 38, 50 and the placeholder 162
    assert run("sync").exit_code == 0
    assert creds.calls[("brickowl", "GET /catalog/color_list")] == 0
