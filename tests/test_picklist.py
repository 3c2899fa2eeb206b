"""The pick list: every open order's reserved pieces, bin by bin in shelf order."""

from __future__ import annotations

import json
import sqlite3

from marketsync.picklist import natural_key

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
    assert csv_rows[0] == "bin,part_number,color_id,color_name,condition,provider,order_id,quantity,total"
    assert len(csv_rows) == 1 + 6
    assert run("picklist", "--printable", "--json").exit_code == 2
