"""`marketsync inventory import` and `inventory list` through the real CLI and a real SQLite file.

Import is all or nothing: one bad row imports nothing, names the file and the line, exits 1,
and (for a first import) leaves no database behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3

import pytest

from marketsync.cli.inventory import INVENTORY_FIELDS
from marketsync.sandbox import write_demo_inventory_csv
from support import HEADER, one_line_error



def listing(run, *args: str) -> list[dict]:
    result = run("inventory", "list", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def lot_keys(rows):
    return {(r["part_number"], r["color_id"], r["condition"], r["location"]): r for r in rows}


# --- importing -----------------------------------------------------------------------------
def test_csv_import_then_list_json_shows_every_lot(run, tmp_path):
    write(tmp_path / "stock.csv", (
        "part_number,color_id,condition,location,quantity,name,item_type,price,bricklink_lot_id\n"
        "3001,5,N,A01,120,Brick 2 x 4,PART,0.25,111\n"
        "3001,5,used,A02,7,,,,\n"
        "3069b,11,U,B07,40,Tile 1 x 2 with Groove,,0.05,\n"
        "3024,1,NEW,C03,0,,,,\n"
    ))
    result = run("inventory", "import", "stock.csv")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""  # quiet off a terminal

    rows = listing(run)
    assert len(rows) == 4
    assert all(set(row) == set(INVENTORY_FIELDS) for row in rows)
    lots = lot_keys(rows)
    first = lots[("3001", 5, "new", "A01")]
    assert (first["quantity"], first["quantity_reserved"], first["available"]) == (120, 0, 120)
    assert (first["name"], first["item_type"], first["price"], first["bricklink_lot_id"]) == (
        "Brick 2 x 4", "PART", "0.25", "111")
    assert lots[("3001", 5, "used", "A02")]["name"] is None  # empty optional columns stay empty
    assert lots[("3069b", 11, "used", "B07")]["quantity"] == 40
    assert lots[("3024", 1, "new", "C03")]["quantity"] == 0
    assert [r["location"] for r in rows] == sorted(r["location"] for r in rows)  # listed bin by bin


def test_bricklink_xml_is_detected_by_content_and_remarks_are_the_bin(run, tmp_path):
    write(tmp_path / "store-export.txt", """<?xml version="1.0" encoding="UTF-8"?>
<INVENTORY>
  <ITEM>
    <ITEMTYPE>P</ITEMTYPE>
    <ITEMID>3001</ITEMID>
    <COLOR>5</COLOR>
    <QTY>12</QTY>
    <CONDITION>N</CONDITION>
    <REMARKS>A01</REMARKS>
    <PRICE>0.10</PRICE>
    <LOTID>5551</LOTID>
  </ITEM>
  <ITEM>
    <ITEMTYPE>P</ITEMTYPE>
    <ITEMID>3023</ITEMID>
    <COLOR>11</COLOR>
    <QTY>3</QTY>
    <CONDITION>U</CONDITION>
    <REMARKS>Drawer &amp; 4</REMARKS>
  </ITEM>
</INVENTORY>
""")
    result = run("inventory", "import", "store-export.txt")
    assert result.exit_code == 0, result.stderr

    lots = lot_keys(listing(run))
    assert set(lots) == {("3001", 5, "new", "A01"), ("3023", 11, "used", "Drawer & 4")}
    brick = lots[("3001", 5, "new", "A01")]
    assert (brick["quantity"], brick["item_type"], brick["price"], brick["bricklink_lot_id"]) == (
        12, "PART", "0.10", "5551")
    assert lots[("3023", 11, "used", "Drawer & 4")]["quantity"] == 3


def test_reimport_updates_quantities_without_duplicates_and_never_touches_reservations(
        run, demo_creds, tmp_path):
    write_demo_inventory_csv(tmp_path / "stock.csv")
    assert run("inventory", "import", "stock.csv").exit_code == 0
    assert run("sync").exit_code == 0  # real orders reserve real stock
    before = listing(run)
    reserved = {r["id"]: r["quantity_reserved"] for r in before}
    assert sum(reserved.values()) > 0

    # the seller counts again: every lot gains 5, in a file with the rows in another order
    with open(tmp_path / "stock.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row["quantity"] = str(int(row["quantity"]) + 5)
    with open(tmp_path / "recount.csv", "w", newline="", encoding="utf-8") as fh:
        out = csv.DictWriter(fh, fieldnames=list(rows[0]))
        out.writeheader()
        out.writerows(reversed(rows))
    result = run("inventory", "import", "recount.csv")
    assert result.exit_code == 0, result.stderr

    after = listing(run)
    assert len(after) == len(before)  # upserted by part + colour + condition + location
    old = {r["id"]: r for r in before}
    for row in after:
        assert row["quantity"] == old[row["id"]]["quantity"] + 5
        assert row["quantity_reserved"] == reserved[row["id"]]
        assert row["available"] == row["quantity"] - row["quantity_reserved"]


def _fifty_good_rows() -> list[str]:
    return [f"{3000 + n},{n % 10},{'new' if n % 2 else 'used'},BIN{n:02d},{n + 1}" for n in range(50)]


def test_one_bad_row_among_fifty_good_imports_nothing_into_an_existing_database(run, tmp_path):
    write(tmp_path / "first.csv", f"{HEADER}\n3001,5,new,A01,10\n3002,5,new,A01,20\n")
    assert run("inventory", "import", "first.csv").exit_code == 0
    before = listing(run)

    rows = _fifty_good_rows() + ["3001,5,new,A01,999"]  # would update an existing lot...
    rows.insert(30, "3005,1,mint,A09,4")  # ...but line 32 has a condition no marketplace knows
    write(tmp_path / "big.csv", HEADER + "\n" + "\n".join(rows) + "\n")
    result = run("inventory", "import", "big.csv")

    message = one_line_error(result, 1)
    assert "big.csv" in message and "line 32" in message and "'mint'" in message
    assert listing(run) == before  # nothing added, nothing updated


def test_a_failed_first_import_leaves_no_database_behind(run, tmp_path):
    rows = _fifty_good_rows()
    rows.insert(10, "3005,1,new,A09,lots")
    write(tmp_path / "big.csv", HEADER + "\n" + "\n".join(rows) + "\n")
    result = run("inventory", "import", "big.csv")

    message = one_line_error(result, 1)
    assert "big.csv line 12" in message and "quantity 'lots' is not a whole number" in message
    assert sorted(os.listdir(tmp_path)) == ["big.csv"]  # no marketsync.db, -wal, -shm or lock file
    one_line_error(run("inventory", "list"), 1)


def test_bad_xml_item_imports_nothing_and_names_its_line(run, tmp_path):
    write(tmp_path / "store.xml", (
        "<INVENTORY>\n"
        "<ITEM><ITEMTYPE>P</ITEMTYPE><ITEMID>3001</ITEMID><COLOR>5</COLOR><QTY>1</QTY>"
        "<CONDITION>N</CONDITION><REMARKS>A1</REMARKS></ITEM>\n"
        "<ITEM><ITEMTYPE>P</ITEMTYPE><ITEMID>3002</ITEMID><COLOR>5</COLOR><QTY>-3</QTY>"
        "<CONDITION>N</CONDITION><REMARKS>A1</REMARKS></ITEM>\n"
        "</INVENTORY>\n"
    ))
    message = one_line_error(run("inventory", "import", "store.xml"), 1)
    assert "store.xml line 3" in message and "<QTY>" in message and "negative" in message
    assert sorted(os.listdir(tmp_path)) == ["store.xml"]


@pytest.mark.parametrize("content, expected", [
    ("part_number,color_id,condition,quantity\n3001,5,new,1\n", "stock.csv line 1: missing column(s) location"),
    (f"{HEADER}\n3001,5,new,A1,1\n3001,5,N,A1,2\n", "stock.csv line 3: duplicate lot 3001 colour 5 new at A1"),
    (f"{HEADER}\n3001,five,new,A1,1\n", "stock.csv line 2: color_id 'five' is not a whole number"),
    (f"{HEADER}\n3001,5,new,A1,1,extra\n", "stock.csv line 2: has 6 values but the header names 5 columns"),
    ("<INVENTORY><ITEM><ITEMID>3001</ITEM></INVENTORY>", "stock.csv line 1: not well-formed XML"),
    ("", "stock.csv: empty file"),
])
def test_bad_files_are_one_clear_line(run, tmp_path, content, expected):
    write(tmp_path / "stock.csv", content)
    message = one_line_error(run("inventory", "import", "stock.csv"), 1)
    assert expected in message
    assert not (tmp_path / "marketsync.db").exists()


def test_missing_or_unreadable_input_file_is_one_line(run, tmp_path):
    message = one_line_error(run("inventory", "import", "nope.csv"), 1)
    assert "nope.csv" in message and "no such file" in message
    (tmp_path / "adir").mkdir()
    result = run("inventory", "import", "adir")
    assert result.exit_code == 2 and "Traceback" not in result.stderr  # click refuses a directory
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "marketsync.db").exists()


# --- listing -------------------------------------------------------------------------------
@pytest.fixture
def stocked(run, tmp_path):
    write(tmp_path / "stock.csv", (
        "part_number,color_id,condition,location,quantity,name\n"
        "3001,5,new,A01,10,Brick 2 x 4\n"
        "3001,5,used,A01,3,Brick 2 x 4\n"
        "3001,11,new,B02,8,Brick 2 x 4\n"
        "3023,5,new,B02,50,\"Plate 1 x 2, \"\"grooved\"\"\"\n"
        "3069b,1,used,C03,0,Tile\n"
    ))
    assert run("inventory", "import", "stock.csv").exit_code == 0
    return listing(run)


@pytest.mark.parametrize("args, expected", [
    ((), 5),
    (("--part", "3001"), 3),
    (("--color", "5"), 3),
    (("--condition", "USED"), 2),
    (("--location", "B02"), 2),
    (("--part", "3001", "--color", "5", "--condition", "new"), 1),
    (("--location", "Z99"), 0),
])
def test_list_filters_return_exactly_the_matching_lots(run, stocked, args, expected):
    rows = listing(run, *args)
    assert len(rows) == expected
    options = dict(zip(args[::2], args[1::2]))
    for row in rows:
        assert row["part_number"] == options.get("--part", row["part_number"])
        assert str(row["color_id"]) == options.get("--color", str(row["color_id"]))
        assert row["condition"] == options.get("--condition", row["condition"]).lower()
        assert row["location"] == options.get("--location", row["location"])


def test_list_csv_parses_back_to_the_json_rows(run, stocked):
    result = run("inventory", "list", "--csv")
    assert result.exit_code == 0, result.stderr
    reader = csv.DictReader(io.StringIO(result.stdout))
    assert tuple(reader.fieldnames) == INVENTORY_FIELDS
    rows = list(reader)
    assert len(rows) == len(stocked)
    for parsed, row in zip(rows, stocked):
        assert parsed == {k: "" if v is None else str(v) for k, v in row.items()}
    assert 'Plate 1 x 2, "grooved"' in [r["name"] for r in rows]


def test_list_table_shows_bins_parts_and_stock(run, stocked):
    result = run("inventory", "list", "--location", "B02")
    assert result.exit_code == 0, result.stderr
    for header in ("Lot", "Bin", "Part", "Colour", "Cond", "On hand", "Reserved", "Available"):
        assert header in result.stdout
    assert "3023" in result.stdout and "50" in result.stdout and "B02" in result.stdout
    assert "A01" not in result.stdout


def test_reserved_and_oversold_filters_after_a_real_sync(run, demo_creds, tmp_path):
    write_demo_inventory_csv(tmp_path / "stock.csv")
    assert run("inventory", "import", "stock.csv").exit_code == 0
    assert run("sync").exit_code == 0
    everything = listing(run)
    reserved = listing(run, "--reserved")
    oversold = listing(run, "--oversold")
    assert reserved == [r for r in everything if r["quantity_reserved"] > 0] and reserved
    assert oversold == [r for r in everything if r["quantity_reserved"] > r["quantity"]] and oversold
    assert all(r["available"] < 0 for r in oversold)
    csv_rows = list(csv.DictReader(io.StringIO(run("inventory", "list", "--oversold", "--csv").stdout)))
    assert [int(r["id"]) for r in csv_rows] == [r["id"] for r in oversold]


def test_marketplace_style_text_is_shown_literally_never_as_markup(run, tmp_path):
    """Names and bins are data: '[/]' or '[red]' in them must print as typed, not crash rich."""
    write(tmp_path / "stock.csv", f"{HEADER},name\n3001,5,new,[/]shelf,4,[red]Brick[/red] [bold]\n")
    assert run("inventory", "import", "stock.csv").exit_code == 0
    result = run("inventory", "list")
    assert result.exit_code == 0, result.stderr
    assert "[/]shelf" in result.stdout and "[red]Brick[/red] [bold]" in result.stdout


def test_list_without_a_database_is_one_line_and_creates_nothing(run, tmp_path):
    message = one_line_error(run("inventory", "list", "--json"), 1)
    assert "marketsync.db" in message and "does not exist" in message
    assert os.listdir(tmp_path) == []


def test_import_writes_into_the_database_the_listing_reads(run, tmp_path):
    """The listing is no cache: the rows are in the SQLite file for anyone to query."""
    write(tmp_path / "stock.csv", f"{HEADER}\n3001,5,new,A01,10\n")
    assert run("inventory", "import", "stock.csv", "--db", "shop.db").exit_code == 0
    with sqlite3.connect(tmp_path / "shop.db") as conn:
        rows = conn.execute("select business_account_id, part_number, color_id, condition, location, quantity, "
                            "quantity_reserved from inventory").fetchall()
    assert rows == [("default", "3001", 5, "new", "A01", 10, 0)]
