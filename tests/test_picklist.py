"""The pick list: every open order's reserved pieces, bin by bin in shelf order."""

from __future__ import annotations

import json
import sqlite3

from marketsync.app.picklist import natural_key

BINS = ["B-10-1", "A10", "B-3-02", "A2", "a3"]


def test_bins_sort_naturally():
    assert sorted(BINS, key=natural_key) == ["A2", "a3", "A10", "B-3-02", "B-10-1"]
    assert sorted(["", "A1"], key=natural_key) == ["A1", ""]


def shop(run, sb, tmp_path):
    rows = "\n".join(f"30{n}1,11,new,{bin_},20" for n, bin_ in enumerate(BINS))
    (tmp_path / "inv.csv").write_text("part_number,color_id,condition,location,quantity\n" + rows + "\n")
    assert run("inventory", "import", tmp_path / "inv.csv").exit_code == 0
    paid = sb.bricklink.add_order("PAID", lines=[{"no": f"30{n}1", "color_id": 11, "quantity": n + 1,
                                                  "remarks": bin_} for n, bin_ in enumerate(BINS)])
    packed = sb.bricklink.add_order("PACKED", lines=[{"no": "3011", "color_id": 11, "quantity": 4, "remarks": "A10"}])
    shipped = sb.bricklink.add_order("PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 2, "remarks": "B-10-1"}])
    assert run("sync").exit_code == 0
    sb.bricklink.set_status(shipped, "SHIPPED")
    assert run("sync").exit_code == 0
    return paid, packed


def test_the_pick_list_groups_bins_in_shelf_order_and_totals_the_open_reservations(run, creds, tmp_path):
    paid, packed = shop(run, creds, tmp_path)
    picks = json.loads(run("picklist", "--json").stdout)
    assert [p["bin"] for p in picks] == ["A2", "a3", "A10", "B-3-02", "B-10-1"]
    a10 = next(p for p in picks if p["bin"] == "A10")
    assert a10["total"] == 6 and a10["color_name"] == "Black"
    assert sorted((o["order_id"], o["quantity"]) for o in a10["orders"]) == sorted([(str(paid), 2), (str(packed), 4)])
    with sqlite3.connect("marketsync.db") as conn:
        reserved = conn.execute("select sum(quantity_reserved) from inventory").fetchone()[0]
        view = conn.execute("select sum(quantity) from pick_list").fetchone()[0]
    assert sum(p["total"] for p in picks) == reserved == view  # the shipped order is not on it
    only = json.loads(run("picklist", "--json", "--status", "packed").stdout)
    assert [(p["bin"], p["total"]) for p in only] == [("A10", 4)]
    one = json.loads(run("picklist", "--json", "--order", f"bricklink:{packed}").stdout)
    assert [p["orders"][0]["order_id"] for p in one] == [str(packed)]


def test_the_pick_list_prints_and_exports(run, creds, tmp_path):
    paid, _ = shop(run, creds, tmp_path)
    page = run("picklist", "--printable").stdout
    assert page.index("Bin A2") < page.index("Bin a3") < page.index("Bin A10") < page.index("Bin B-10-1")
    assert f"-> bricklink:{paid}" in page and "[ ]" in page
    csv_rows = run("picklist", "--csv").stdout.splitlines()
    assert csv_rows[0] == "bin,part_number,color_id,color_name,condition,provider,order_id,quantity,total,short,line_keys"
    assert len(csv_rows) == 1 + 6
    assert run("picklist", "--printable", "--json").exit_code == 2


def test_a_line_larger_than_its_bin_is_reserved_across_two_bins_and_never_oversold(run, creds, tmp_path):
    (tmp_path / "inv.csv").write_text("part_number,color_id,condition,location,quantity\n"
                                      "3001,11,new,A1,3\n3001,11,new,A9,4\n3001,11,new,B2,2\n")
    assert run("inventory", "import", tmp_path / "inv.csv").exit_code == 0
    other = creds.bricklink.add_order("PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 4, "remarks": "A9"}])
    order = creds.bricklink.add_order("PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 5, "remarks": "A1"}])
    first = run("sync")
    assert first.exit_code == 0
    stock = {r["location"]: (r["quantity"], r["quantity_reserved"]) for r in json.loads(run("inventory", "list", "--json").stdout)}
    assert stock == {"A1": (3, 3), "A9": (4, 4), "B2": (2, 2)}  # 9 pieces for 9 ordered: nothing oversold
    assert "oversold" not in first.stderr
    shown = run("orders", "show", f"bricklink:{order}").stdout
    assert "A1 x3, " in shown  # each part of the split line with its bin: its own bin first
    picks = json.loads(run("picklist", "--json", "--order", f"bricklink:{order}").stdout)
    assert picks[0]["bin"] == "A1" and picks[0]["total"] == 3 and sum(p["total"] for p in picks) == 5
    assert len(picks) == 2

    # another order beyond the whole stock of the part:
    bigger = creds.bricklink.add_order("PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 3, "remarks": "B2"}])
    short = run("sync")
    assert "oversold: lot" in short.stderr  # only now: the whole stock of the part cannot cover it
    creds.bricklink.set_status(other, "CANCELLED")  # ... until another order releases its pieces
    assert run("sync").exit_code == 0
    stock = {r["location"]: (r["quantity"], r["quantity_reserved"]) for r in json.loads(run("inventory", "list", "--json").stdout)}
    assert all(reserved <= on_hand for on_hand, reserved in stock.values()), stock
    assert sum(r for _, r in stock.values()) == 5 + 3
    assert run("reserve", "--check").exit_code == 0
    assert bigger


def test_picked_lines_leave_the_list_and_a_short_pick_adjusts_once_and_replans(run, creds, tmp_path):
    (tmp_path / "inv.csv").write_text("part_number,color_id,condition,location,quantity\n"
                                      "3001,11,new,A1,5\n3001,11,new,B7,10\n3004,11,new,C1,5\n")
    assert run("inventory", "import", tmp_path / "inv.csv").exit_code == 0
    order = creds.bricklink.add_order("PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 4, "remarks": "A1"},
                                                     {"no": "3004", "color_id": 11, "quantity": 2, "remarks": "C1"}])
    assert run("sync").exit_code == 0
    keys = [l["line_key"] for l in json.loads(run("orders", "show", f"bricklink:{order}", "--json").stdout)["lines"]]
    line_3001 = next(k for k in keys if json.loads(run("orders", "show", f"bricklink:{order}", "--json").stdout)[
        "lines"][keys.index(k)]["part_number"] == "3001")

    short = run("pick", f"bricklink:{order}", line_3001, "--short", "2")  # A1 had only 3 of its 5
    assert short.exit_code == 0, short.stderr
    stock = {r["location"]: (r["quantity"], r["quantity_reserved"]) for r in json.loads(run("inventory", "list", "--json").stdout)}
    assert stock["A1"] == (3, 3) and stock["B7"] == (10, 1)  # on hand down by 2 once; 1 more from B7
    with sqlite3.connect("marketsync.db") as conn:
        assert conn.execute("select quantity, reason from adjustments").fetchall() == [(-2, "short-pick")]
    assert run("reserve", "--check").exit_code == 0

    other = next(k for k in keys if k != line_3001)
    assert run("pick", f"bricklink:{order}", other).exit_code == 0
    picks = json.loads(run("picklist", "--json").stdout)
    assert {p["bin"] for p in picks} == {"A1", "B7"}  # C1's line was picked: off the list
    assert "1/2" in run("orders").stdout  # picking progress
    assert run("pick", f"bricklink:{order}", other, "--undo").exit_code == 0
    assert {p["bin"] for p in json.loads(run("picklist", "--json").stdout)} == {"A1", "B7", "C1"}
    assert run("pick", f"bricklink:{order}").exit_code == 0
    assert json.loads(run("picklist", "--json").stdout) == []
    # picked pieces are in the seller's hands: a stock change never moves them to another bin
    (tmp_path / "inv.csv").write_text("part_number,color_id,condition,location,quantity\n3001,11,new,A1,0\n")
    assert run("inventory", "import", tmp_path / "inv.csv").exit_code == 0
    assert run("reserve").stdout == ""
    stock = {r["location"]: r["quantity_reserved"] for r in json.loads(run("inventory", "list", "--json").stdout)}
    assert (stock["A1"], stock["B7"]) == (3, 1)
    bad = run("pick", f"bricklink:{order}", "no-such-line")
    assert bad.exit_code == 1 and "has no line no-such-line" in bad.stderr


def test_the_pick_list_is_driven_from_the_open_orders_not_the_ledgers_history(tmp_path):
    """Its cost follows the open orders: SQLite's plan looks reservations up by order (an index),
    never scans the ledger, whose shipped history only grows (the benchmark times it: 'local')."""
    from marketsync.store import open_db

    db = open_db(tmp_path / "shop.db")
    plan = [row[3] for row in db.execute("explain query plan select * from pick_list where business_account_id = ?",
                                         ["default"])]
    assert any(step.startswith("SEARCH r USING INDEX reservations_by_line (order_ref=?)") for step in plan), plan
    assert not any(step.startswith("SCAN r") for step in plan), plan
