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
    assert other["inventory_id"] is None and "'other'" in other["unmatched_reason"].lower()  # code or display text
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


# --- issue 13: lines that name no BrickLink number; lookups per item type ----------------------
STOCK = INVENTORY + """3024,11,new,B07,80,
3023,11,new,B07,60,
sw0001,0,used,M01,2,
75192-1,0,new,S01,1,
5005257,0,new,G01,3,
"""

# BrickLink 3023 is LEGO design 28653: the line's ids carry only that and an item number.
DESIGN_ONLY = {"boid": "771500-38", "color_id": 38, "full_con": "new", "ordered_quantity": 6, "personal_note": "B07",
               "name": "Plate 1 x 2", "ids": [{"id": "28653", "type": "design_id"}, {"id": "4211398", "type": "item_no"},
                                              {"id": "771500-38", "type": "boid"}]}


def id_lookups(sandbox) -> list[tuple[str, str]]:
    """(BrickLink number, type) of every catalog/id_lookup the sandbox answered, in order."""
    return [(q.get("id"), q.get("type")) for provider, _m, path, q in sandbox.requests
            if provider == "brickowl" and path == "/catalog/id_lookup"]


def lot_reserved(db_path, part, location):
    db = sqlite3.connect(db_path)
    return db.execute("select quantity_reserved from inventory where part_number = ? and location = ?",
                      [part, location]).fetchone()[0]


def line_rows(db_path, order_id):
    db = sqlite3.connect(db_path)
    db.row_factory = sqlite3.Row
    return [dict(r) for r in db.execute(
        "select boid, part_number, inventory_id, unmatched_kind, unmatched_reason from order_items "
        "where order_id = ? order by id", [order_id])]


def test_a_design_id_only_line_lands_on_the_lot_in_its_bin_through_a_confirmed_lookup(run, creds, tmp_path):
    (tmp_path / "inv.csv").write_text(STOCK)
    assert run("inventory", "import", "inv.csv").exit_code == 0
    creds.brickowl.add_id_lookup("3024", ["771600-38", "771600"])  # the bin's other black part: another item
    creds.brickowl.add_id_lookup("3023", ["771500-38", "771500-1", "771500"])
    order = creds.brickowl.add_order(lines=[DESIGN_ONLY])

    result = run("sync", "--provider", "brickowl")
    assert result.exit_code == 0, result.stderr
    [line] = lines("marketsync.db", order)
    assert (line["part_number"], line["color_id"], line["condition"], line["location"]) == ("3023", 11, "new", "B07")
    assert lot_reserved("marketsync.db", "3023", "B07") == 6
    assert lot_reserved("marketsync.db", "3024", "B07") == 0  # asked first (more pieces), refused by BrickOwl
    # only the bin's two black new parts were asked about, each once, as the line's type
    assert id_lookups(creds) == [("3024", "Part"), ("3023", "Part")]
    assert "unmatched" not in result.stderr
    mapped = {m["boid"]: (m["part_number"], m["source"]) for m in json.loads(run("map", "--json").stdout)}
    assert mapped["771500"] == ("3023", "id_lookup") and mapped["771600"] == ("3024", "id_lookup")

    # The next run, and an order of the same item in it, cost no lookup.
    creds.reset_calls()
    again = creds.brickowl.add_order(lines=[dict(DESIGN_ONLY, ordered_quantity=2)])
    assert run("sync", "--provider", "brickowl").exit_code == 0
    assert id_lookups(creds) == []
    assert lines("marketsync.db", again)[0]["location"] == "B07"
    assert lot_reserved("marketsync.db", "3023", "B07") == 8
    assert run("reserve", "--check").exit_code == 0


def test_minifigure_set_and_gear_lines_are_looked_up_with_their_own_type(run, creds, tmp_path):
    (tmp_path / "inv.csv").write_text(STOCK)
    assert run("inventory", "import", "inv.csv").exit_code == 0
    shop = creds.brickowl
    shop.quirks = shop.quirks - {"no_type"}  # these lines carry their type
    shop.add_id_lookup("sw0001", ["547141"], type="Minifigure")
    shop.add_id_lookup("sw0001", ["990001"], type="Part")  # asked as a Part, BrickOwl would name another item
    shop.add_id_lookup("75192-1", ["889900"], type="Set")
    shop.add_id_lookup("5005257", ["700700"], type="Set")  # a Gear line whose number BrickOwl lists as a Set
    order = shop.add_order(lines=[
        {"boid": "547141", "type": "Minifigure", "full_con": "usedn", "personal_note": "M01", "name": "Luke"},
        {"boid": "889900", "type": "Set", "full_con": "news", "personal_note": "S01", "name": "Falcon"},
        {"boid": "700700", "type": "Gear", "full_con": "new", "personal_note": "G01", "name": "Key Chain"},
    ])
    result = run("sync", "--provider", "brickowl")
    assert result.exit_code == 0, result.stderr
    got = {r["boid"]: (r["part_number"], r["color_id"], r["condition"], r["location"])
           for r in lines("marketsync.db", order)}
    assert got == {"547141": ("sw0001", 0, "used", "M01"), "889900": ("75192-1", 0, "new", "S01"),
                   "700700": ("5005257", 0, "new", "G01")}
    # each asked with its own type; the Gear miss falls back to Set (Set <-> Gear); never as a Part
    assert sorted(id_lookups(creds)) == [("5005257", "Gear"), ("5005257", "Set"), ("75192-1", "Set"),
                                         ("sw0001", "Minifigure")]
    db = sqlite3.connect("marketsync.db")
    cached = {(part, kind): json.loads(boids) for part, kind, boids in
              db.execute("select part_number, item_type, boids from _id_lookups")}
    assert cached == {("sw0001", "Minifigure"): ["547141"], ("75192-1", "Set"): ["889900"],
                      ("5005257", "Gear"): [], ("5005257", "Set"): ["700700"]}
    assert (lot_reserved("marketsync.db", "sw0001", "M01"), lot_reserved("marketsync.db", "75192-1", "S01"),
            lot_reserved("marketsync.db", "5005257", "G01")) == (1, 1, 1)


def many_black_parts(tmp_path, run, count=12):
    """An inventory with ``count`` black new parts in bins X00.. that BrickOwl's catalog does not know."""
    rows = "".join(f"99{n:02d},11,new,X{n:02d},{10 + n},\n" for n in range(count))
    (tmp_path / "inv.csv").write_text("part_number,color_id,condition,location,quantity,bricklink_lot_id\n" + rows)
    assert run("inventory", "import", "inv.csv").exit_code == 0


def unknown_line(boid, bin_):
    return {"boid": f"{boid}-38", "color_id": 38, "full_con": "new", "ordered_quantity": 1, "personal_note": bin_,
            "name": "Mystery Plate", "ids": [{"id": "51234", "type": "design_id"}]}


def test_stock_lookups_stay_within_the_line_bound_and_a_second_run_makes_none(run, creds, tmp_path):
    from marketsync.app.translate import STOCK_LOOKUPS_PER_LINE

    many_black_parts(tmp_path, run)
    order = creds.brickowl.add_order(lines=[unknown_line(880001, "X03")])
    result = run("sync", "--provider", "brickowl")
    assert result.exit_code == 0, result.stderr
    asked = id_lookups(creds)
    # design id 51234 names no inventory part: only the stock route asks, the line's bin first
    assert len(asked) == STOCK_LOOKUPS_PER_LINE == 5
    assert asked[:2] == [("9903", "Part"), ("9903", "Minibuild")]  # unknown as a Part: the fallback type too
    [line] = line_rows("marketsync.db", order)
    assert line["inventory_id"] is None and line["unmatched_kind"] == "no_part"  # never guessed
    assert "marketsync map 880001 PART_NUMBER" in line["unmatched_reason"]
    assert sum(lot_reserved("marketsync.db", f"99{n:02d}", f"X{n:02d}") for n in range(12)) == 0

    creds.reset_calls()
    result = run("sync", "--provider", "brickowl")
    assert result.exit_code == 0
    assert id_lookups(creds) == []  # the line waits for a pin; nothing is asked again
    assert result.stderr == ""


def test_the_run_bound_defers_the_rest_to_later_runs(run, creds, tmp_path, monkeypatch):
    from marketsync.app import translate

    monkeypatch.setattr(translate, "STOCK_LOOKUPS_PER_RUN", 7)
    many_black_parts(tmp_path, run)
    order = creds.brickowl.add_order(lines=[unknown_line(880001, "X01"), unknown_line(880002, "X02"),
                                            unknown_line(880003, "X03")])
    per_run, kinds, asked = [], [], []
    for _ in range(4):
        creds.reset_calls()
        assert run("sync", "--provider", "brickowl").exit_code == 0
        per_run.append(len(id_lookups(creds)))
        asked += id_lookups(creds)
        kinds.append([r["unmatched_kind"] for r in line_rows("marketsync.db", order)])
    # 5 for the first line (its share), 2 for the second (the run's bound), none for the third;
    # the deferred lines go on in the next runs, and once every line is settled no call is made.
    assert per_run == [7, 7, 5, 0]
    assert kinds[0] == ["no_part", "lookup_deferred", "lookup_deferred"]
    assert kinds[1] == ["no_part", "no_part", "lookup_deferred"]
    assert kinds[2] == kinds[3] == ["no_part", "no_part", "no_part"]
    assert len(set(asked)) == len(asked) == 19  # no (number, type) is ever asked twice


def test_a_wrong_candidate_is_never_taken_without_brickowls_confirmation(run, creds, tmp_path):
    (tmp_path / "inv.csv").write_text(STOCK)
    assert run("inventory", "import", "inv.csv").exit_code == 0
    creds.brickowl.add_id_lookup("3024", ["771600-38", "771600"])
    creds.brickowl.add_id_lookup("3023", ["771500-38", "771500"])
    # The bin holds black new 3024 and 3023; BrickOwl names neither for item 123123.
    order = creds.brickowl.add_order(lines=[dict(DESIGN_ONLY, boid="123123-38")])
    result = run("sync", "--provider", "brickowl")
    assert result.exit_code == 0, result.stderr
    [line] = line_rows("marketsync.db", order)
    assert (line["part_number"], line["inventory_id"], line["unmatched_kind"]) == (None, None, "no_part")
    assert lot_reserved("marketsync.db", "3024", "B07") == lot_reserved("marketsync.db", "3023", "B07") == 0
    assert "123123" not in {m["boid"] for m in json.loads(run("map", "--json").stdout)}
    # ... the answers still map every BOID they name
    assert {m["boid"] for m in json.loads(run("map", "--json").stdout)} >= {"771500", "771600"}


def test_an_outage_of_the_catalog_defers_the_line_and_takes_no_candidate(run, creds, tmp_path):
    (tmp_path / "inv.csv").write_text(STOCK)
    assert run("inventory", "import", "inv.csv").exit_code == 0
    creds.brickowl.add_id_lookup("3023", ["771500-38", "771500"])
    creds.inject("brickowl", "GET /catalog/id_lookup", "500", times=None)
    order = creds.brickowl.add_order(lines=[DESIGN_ONLY])
    result = run("sync", "--provider", "brickowl")
    assert result.exit_code == 0, result.stderr
    [line] = line_rows("marketsync.db", order)
    assert (line["inventory_id"], line["unmatched_kind"]) == (None, "lookup_deferred")
    assert lot_reserved("marketsync.db", "3023", "B07") == 0

    creds.clear_faults()
    creds.reset_calls()
    assert run("sync", "--provider", "brickowl").exit_code == 0  # the waiting line is retried
    assert line_rows("marketsync.db", order)[0]["part_number"] == "3023"
    assert lot_reserved("marketsync.db", "3023", "B07") == 6


def test_the_unmatched_report_names_an_unknown_boid_once_per_run(run, creds, tmp_path):
    setup_store(run, creds, tmp_path)
    first = creds.brickowl.add_order(lines=[UNKNOWN, dict(UNKNOWN, boid="123456-86", color_id=86)])
    second = creds.brickowl.add_order(lines=[UNKNOWN, dict(UNKNOWN, boid="654321-64")])
    result = run("sync", "--provider", "brickowl")
    assert result.exit_code == 0, result.stderr
    report = [line for line in result.stderr.splitlines() if "unmatched" in line]
    assert len(report) == 2  # one per unknown item, not one per line (four lines wait)
    assert sum("'marketsync map 123456 PART_NUMBER'" in line for line in report) == 1
    assert sum("'marketsync map 654321 PART_NUMBER'" in line for line in report) == 1
    rows = line_rows("marketsync.db", first) + line_rows("marketsync.db", second)
    assert [r["unmatched_kind"] for r in rows] == ["no_part"] * 4
    assert len({r["unmatched_reason"] for r in rows if r["boid"].startswith("123456")}) == 1  # the same reason

    third = creds.brickowl.add_order(lines=[UNKNOWN, UNKNOWN])  # a new run names the item once again
    result = run("sync", "--provider", "brickowl")
    report = [line for line in result.stderr.splitlines() if "unmatched" in line]
    assert len(report) == 1 and f"order {third}" in report[0] and "marketsync map 123456" in report[0]
