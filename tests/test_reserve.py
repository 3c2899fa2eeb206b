"""`marketsync reserve`: re-matching after inventory changes, --check, --release and --ledger."""

from __future__ import annotations

import json
import sqlite3

import pytest

from test_sync_lifecycle import STOCK, BrickLinkMarket, BrickOwlMarket, Shop

DB = "marketsync.db"


@pytest.fixture
def shop(creds, run, tmp_path):
    return Shop(creds, run, tmp_path)


@pytest.fixture
def bl(creds):
    return BrickLinkMarket(creds)


@pytest.fixture
def bo(creds):
    return BrickOwlMarket(creds)


def execute(sql: str, params=()) -> None:
    with sqlite3.connect(DB) as conn:
        conn.execute(sql, params)


# --- re-matching -------------------------------------------------------------------------------
def test_reserve_matches_lines_left_unmatched_once_the_inventory_has_them(shop, bl, bo):
    shop.import_lots(*STOCK)
    bl_id = bl.add_order("paid", [("3001", 11, 1, "A1"), ("3626", 11, 2, "H1")])
    bo_id = bo.add_order("packed", [("3626", 11, 3)])
    shop.sync()
    assert shop.query("select count(*) from order_items where inventory_id is null") == [(2,)]

    shop.import_lots(("3626", 11, "new", "H1", 9))
    lot = shop.lot_id("H1")
    result = shop.run("reserve")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"bricklink order {bl_id} line {bl.line_keys(bl_id)[1]}: reserved 2 on lot {lot} (reserve)",
        f"brickowl order {bo_id} line {bo.line_keys(bo_id)[0]}: reserved 3 on lot {lot} (reserve)",
    ]
    assert shop.lot("H1") == (9, 5)
    assert shop.lines("bricklink", bl_id)[1] == (bl.line_keys(bl_id)[1], "H1", 2, "location", None)
    assert shop.lines("brickowl", bo_id) == [(bo.line_keys(bo_id)[0], "H1", 3, "best-stock", None)]
    shop.check()

    ledger = shop.ledger_count()
    again = shop.run("reserve")
    assert (again.exit_code, again.stdout) == (0, "")
    assert shop.ledger_count() == ledger
    assert shop.sync().stderr == ""  # a later sync leaves the new matches alone
    assert shop.ledger_count() == ledger


def test_reserve_with_nothing_to_do_prints_and_writes_nothing(shop, bl, bo):
    shop.import_lots(*STOCK)
    bl.add_order("paid", [("3001", 11, 1, "A1")])
    bo.add_order("paid", [("3004", 1, 2, "C1")])
    shop.sync()
    before = (shop.ledger(), shop.inventory())
    for _ in range(2):
        result = shop.run("reserve")
        assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert (shop.ledger(), shop.inventory()) == before


def test_reserve_moves_a_line_to_the_lot_its_bin_names_once_imported(shop, bl):
    """The remark named a bin the inventory did not have: best stock meanwhile, the named lot
    as soon as it exists."""
    shop.import_lots(("3001", 11, "new", "A1", 10))
    order_id = bl.add_order("paid", [("3001", 11, 3, "D4")])
    key = bl.line_keys(order_id)[0]
    shop.sync()
    assert shop.lines("bricklink", order_id)[0][1] == "A1"

    shop.import_lots(("3001", 11, "new", "D4", 5))
    result = shop.run("reserve")

    a1, d4 = shop.lot_id("A1"), shop.lot_id("D4")
    assert result.stdout.splitlines() == [
        f"bricklink order {order_id} line {key}: released 3 on lot {a1} (rematched)",
        f"bricklink order {order_id} line {key}: reserved 3 on lot {d4} (reserve)",
    ]
    assert (shop.lot("A1"), shop.lot("D4")) == ((10, 0), (5, 3))
    assert shop.lines("bricklink", order_id)[0][1:4] == ("D4", 3, "location")
    shop.check()
    assert shop.run("reserve").stdout == ""


def test_reserve_leaves_closed_orders_alone(shop, bl, bo):
    shop.import_lots(*STOCK)
    bl.add_order("shipped", [("3626", 11, 2)])
    bo.add_order("cancelled", [("3626", 11, 2)])
    shop.sync()
    shop.import_lots(("3626", 11, "new", "H1", 9))
    result = shop.run("reserve")
    assert (result.exit_code, result.stdout) == (0, "")
    assert shop.lot("H1") == (9, 0)
    assert shop.ledger_count() == 0


def test_reserve_matches_brickowl_lines_after_the_boid_is_pinned(shop, creds, run):
    shop.import_lots(*STOCK)
    order_id = creds.brickowl.add_order(status="Payment Received", lines=[
        {"boid": "777777-38", "color_id": 38, "ordered_quantity": 2, "ids": [{"id": "777777-38", "type": "boid"}]},
    ])  # fmt: skip
    result = shop.sync()
    assert "unmatched: BrickOwl item 777777" in result.stderr
    assert run("map", "777777", "3001").exit_code == 0
    result = run("reserve")
    assert result.stdout.splitlines() == [
        f"brickowl order {order_id} line {creds.brickowl.orders[order_id].lines[0]['order_item_id']}: "
        f"reserved 2 on lot {shop.lot_id('A1')} (reserve)"
    ]
    assert shop.lot("A1") == (10, 2)
    assert shop.query("select part_number, color_id, condition from order_items") == [("3001", 11, "new")]
    shop.check()


def test_reserve_keeps_matched_lines_on_their_lot_while_it_has_the_pieces(shop, bl):
    """Two lots of a part: a line stays on its lot while that lot covers it; when stock moves away
    it takes the rest from the other bin instead of overselling (issue 14), and comes back."""
    shop.import_lots(("3001", 11, "new", "A1", 10), ("3001", 11, "new", "A2", 4))
    bl.add_order("paid", [("3001", 11, 3)])
    shop.sync()
    shop.import_lots(("3001", 11, "new", "A1", 9), ("3001", 11, "new", "A2", 40))
    assert shop.run("reserve").stdout == ""  # A1 still covers it: nothing hops
    shop.import_lots(("3001", 11, "new", "A1", 1), ("3001", 11, "new", "A2", 40))
    assert shop.run("reserve").exit_code == 0
    assert (shop.lot("A1"), shop.lot("A2")) == ((1, 1), (40, 2))  # split across both bins, nothing oversold
    shop.check()
    shop.import_lots(("3001", 11, "new", "A1", 10), ("3001", 11, "new", "A2", 40))
    assert shop.run("reserve").exit_code == 0
    assert (shop.lot("A1"), shop.lot("A2")) == ((10, 3), (40, 0))  # stock arrived in its own bin: back there
    shop.check()


# --- reserve --check ---------------------------------------------------------------------------
@pytest.fixture
def synced(shop, bl, bo):
    """Open, shipped and cancelled orders on both marketplaces, synced; --check passes."""
    shop.import_lots(*STOCK)
    ids = {
        "open": bl.add_order("paid", [("3001", 11, 3, "A1"), ("3003", 5, 2, "B1", "used")]),
        "bo_open": bo.add_order("paid", [("3004", 1, 4, "C1")]),
        "shipped": bl.add_order("paid", [("3001", 11, 1, "A1")]),
        "cancelled": bo.add_order("paid", [("3001", 11, 2, "A1")]),
    }
    shop.sync()
    bl.set_status(ids["shipped"], "shipped")
    bo.set_status(ids["cancelled"], "cancelled")
    shop.sync()
    result = shop.run("reserve", "--check")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    shop.ids = ids
    return shop


def check_fails(shop) -> list[str]:
    result = shop.run("reserve", "--check")
    assert result.exit_code == 1
    problems = result.stdout.splitlines()
    assert result.stderr == f"Error: {len(problems)} invariant violation(s)\n"
    return problems


def test_check_catches_a_tampered_counter(synced):
    lot = synced.lot_id("A1")
    execute("update inventory set quantity_reserved = quantity_reserved + 1 where id = ?", [lot])
    assert check_fails(synced) == [f"lot {lot}: quantity_reserved is 4 but its ledger rows sum to 3"]


def test_check_catches_a_tampered_ledger_row(synced):
    order_id = synced.ids["open"]
    execute("update reservations set quantity = quantity + 2 where order_id = ? and reason = 'reserve' "
            "and inventory_id = ?", [order_id, synced.lot_id("B1")])
    problems = check_fails(synced)
    lot = synced.lot_id("B1")
    assert f"lot {lot}: quantity_reserved is 2 but its ledger rows sum to 4" in problems
    assert any(p.startswith(f"bricklink order {order_id} line ") and f"reserved 4 on lot {lot}, expected 2 on lot {lot}"
               in p for p in problems)


def test_check_catches_a_deleted_ledger_row(synced):
    execute("delete from reservations where order_id = ? and reason = 'reserve'", [synced.ids["bo_open"]])
    problems = check_fails(synced)
    lot = synced.lot_id("C1")
    assert f"lot {lot}: quantity_reserved is 4 but its ledger rows sum to 0" in problems
    assert any(f"brickowl order {synced.ids['bo_open']} line" in p and f"reserved nothing, expected 4 on lot {lot}" in p
               for p in problems)


def test_check_catches_negative_stock(synced):
    execute("update inventory set quantity = -1 where location = 'C1'")
    assert f"lot {synced.lot_id('C1')}: negative stock (quantity -1, reserved 4)" in check_fails(synced)


def test_check_catches_a_closed_order_that_still_holds_stock(synced):
    order_id = synced.ids["open"]
    execute("update orders set status = 'completed' where order_id = ? and provider = 'bricklink'", [order_id])
    problems = check_fails(synced)
    assert len(problems) == 2
    assert all(p.startswith(f"bricklink order {order_id} line ") and "(completed)" in p and "expected nothing" in p
               for p in problems)


def test_check_catches_an_open_line_that_is_not_reserved(synced):
    order_id = synced.ids["bo_open"]
    execute("update order_items set quantity = 6 where order_id = ? and provider = 'brickowl'", [order_id])
    (problem,) = check_fails(synced)
    lot = synced.lot_id("C1")
    assert problem.endswith(f"(paid): reserved 4 on lot {lot}, expected 6 on lot {lot}")


def test_check_catches_reservations_of_a_line_that_does_not_exist(synced):
    execute("delete from order_items where order_id = ? and provider = 'brickowl'", [synced.ids["bo_open"]])
    (problem,) = check_fails(synced)
    assert problem.endswith(f"holds 4 on lot {synced.lot_id('C1')}") and "no such line" in problem


def test_check_of_a_missing_database_fails_clearly(run):
    result = run("reserve", "--check")
    assert result.exit_code == 1
    assert "does not exist" in result.stderr


# --- reserve --release ---------------------------------------------------------------------------
def test_release_frees_an_orders_stock_and_later_syncs_keep_it_released(shop, bl):
    shop.import_lots(*STOCK)
    order_id = bl.add_order("paid", [("3001", 11, 3, "A1"), ("3004", 1, 2, "C1")])
    keys = bl.line_keys(order_id)
    shop.sync()

    result = shop.run("reserve", "--release", f"bricklink:{order_id}", "--yes")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"bricklink order {order_id} line {keys[0]}: released 3 on lot {shop.lot_id('A1')} (manual-release)",
        f"bricklink order {order_id} line {keys[1]}: released 2 on lot {shop.lot_id('C1')} (manual-release)",
    ]
    assert (shop.lot("A1"), shop.lot("C1")) == ((10, 0), (8, 0))
    assert shop.order("bricklink", order_id)["manual_release"] == 1
    shop.check()

    bl.set_quantity(order_id, 0, 5)  # the order changes on BrickLink: still released
    shop.sync()
    assert shop.run("reserve").stdout == ""
    bl.set_status(order_id, "shipped")  # shipped anyway: its pieces leave on hand, once (issue 12)
    shop.sync()
    assert (shop.lot("A1"), shop.lot("C1")) == ((5, 0), (6, 0))
    assert shop.run("reserve", "--release", f"bricklink:{order_id}", "--yes").stdout == ""
    assert shop.ledger_count() == 6


def test_release_needs_yes_off_a_terminal_and_a_known_order(shop, bo):
    shop.import_lots(*STOCK)
    order_id = bo.add_order("paid", [("3001", 11, 3, "A1")])
    shop.sync()
    result = shop.run("reserve", "--release", f"brickowl:{order_id}")
    assert result.exit_code == 2 and "--yes" in result.stderr
    assert shop.lot("A1") == (10, 3)
    unknown = shop.run("reserve", "--release", "brickowl:404", "--yes")
    assert unknown.exit_code == 1 and "no brickowl order 404" in unknown.stderr
    malformed = shop.run("reserve", "--release", "ebay:1", "--yes")
    assert malformed.exit_code == 2
    both = shop.run("reserve", "--check", "--release", f"brickowl:{order_id}")
    assert both.exit_code == 2
    assert shop.lot("A1") == (10, 3)


# --- reserve --ledger ----------------------------------------------------------------------------
def test_ledger_lists_every_change_newest_first_or_one_orders(shop, bl, bo):
    shop.import_lots(*STOCK)
    bl_id = bl.add_order("paid", [("3001", 11, 3, "A1")])
    shop.sync()
    bo_id = bo.add_order("paid", [("3004", 1, 2, "C1")])
    shop.sync()  # one run writes both marketplaces' orders as they arrive: this one is the newer
    bl.set_status(bl_id, "shipped")
    shop.sync()

    everything = json.loads(shop.run("reserve", "--ledger", "--json").stdout)
    assert [(r["provider"], r["order_id"], r["quantity"], r["consumed"], r["reason"]) for r in everything] == [
        ("bricklink", bl_id, -3, 3, "shipped"),
        ("brickowl", bo_id, 2, 0, "reserve"),
        ("bricklink", bl_id, 3, 0, "reserve"),
    ]
    one = json.loads(shop.run("reserve", "--ledger", f"brickowl:{bo_id}", "--json").stdout)
    assert [(r["line_key"], r["location"], r["part_number"], r["quantity"]) for r in one] == [
        (bo.line_keys(bo_id)[0], "C1", "3004", 2)
    ]
    table = shop.run("reserve", "--ledger", f"bricklink:{bl_id}")
    assert table.exit_code == 0 and "shipped" in table.stdout and "A1" in table.stdout


def test_release_is_all_or_nothing(shop, bl, monkeypatch):
    """The manual-release mark and the released reservations commit together: a failure (or a
    kill) in between must not leave an order marked released that still holds its stock."""
    import marketsync.store.ledger

    shop.import_lots(*STOCK)
    order_id = bl.add_order("paid", [("3001", 11, 3, "A1")])
    shop.sync()

    def failing_record(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as patch:
        patch.setattr(marketsync.store.ledger, "record", failing_record)
        result = shop.run("reserve", "--release", f"bricklink:{order_id}", "--yes")
    assert result.exit_code == 1 and "disk I/O error" in result.stderr

    assert shop.order("bricklink", order_id)["manual_release"] == 0
    assert shop.lot("A1") == (10, 3)
    shop.check()
    assert shop.run("reserve", "--release", f"bricklink:{order_id}", "--yes").exit_code == 0
    assert shop.lot("A1") == (10, 0)
    shop.check()
