"""Issue 12, items 5 and 6: a hand release has a way back and a shipment still consumes; counters
that drifted from the ledger are repaired from it, and plain `reserve` never books over drift."""

from __future__ import annotations

import sqlite3

import pytest
from support import one_line_error

from test_sync_lifecycle import MARKETS, STOCK, BrickLinkMarket, Shop

DB = "marketsync.db"


@pytest.fixture
def shop(creds, run, tmp_path):
    return Shop(creds, run, tmp_path)


@pytest.fixture(params=sorted(MARKETS))
def market(request, creds):
    return MARKETS[request.param](creds)


@pytest.fixture
def bl(creds):
    return BrickLinkMarket(creds)


def execute(sql: str, params=()) -> None:
    with sqlite3.connect(DB) as conn:
        conn.execute(sql, params)


def release(shop, ref: str):
    return shop.run("reserve", "--release", ref, "--yes")


# --- item 5: a hand release, then a shipment ------------------------------------------------------
def test_a_hand_released_order_that_ships_takes_its_pieces_off_on_hand_once(shop, market):
    """The issue's measurement: 100/4 -> release -> 100/0 -> shipped must end 96/0, as a normal order does."""
    shop.import_lots(("3001", 11, "new", "A1", 100), ("3004", 1, "new", "C1", 100))
    released = market.add_order("paid", [("3001", 11, 4, "A1")])
    normal = market.add_order("paid", [("3004", 1, 4, "C1")])
    shop.sync()
    assert (shop.lot("A1"), shop.lot("C1")) == ((100, 4), (100, 4))
    assert release(shop, f"{market.name}:{released}").exit_code == 0
    assert shop.lot("A1") == (100, 0)

    market.set_status(released, "shipped")
    market.set_status(normal, "shipped")
    shop.sync()

    assert (shop.lot("A1"), shop.lot("C1")) == ((96, 0), (96, 0))
    assert shop.ledger(market.name, released)[-1] == (market.line_keys(released)[0], "A1", 0, 4, "shipped")
    rows = shop.ledger_count()
    shop.sync()  # once: neither a second sync, nor reserve, nor completing the order takes them again
    assert shop.run("reserve").stdout == ""
    market.set_status(released, "completed")
    shop.sync()
    assert shop.lot("A1") == (96, 0)
    assert shop.ledger_count() == rows
    assert shop.order(market.name, released)["manual_release"] == 1


def test_release_of_a_closed_order_says_so_and_changes_nothing(shop, bl):
    shop.import_lots(*STOCK)
    shipped = bl.add_order("paid", [("3001", 11, 3, "A1")])
    cancelled = bl.add_order("paid", [("3004", 1, 2, "C1")])
    shop.sync()
    bl.set_status(shipped, "shipped")
    bl.set_status(cancelled, "cancelled")
    shop.sync()
    before = (shop.ledger(), shop.inventory())

    for order_id, status in ((shipped, "shipped"), (cancelled, "cancelled")):
        result = release(shop, f"bricklink:{order_id}")
        assert (result.exit_code, result.stdout) == (0, "")
        assert result.stderr == f"bricklink order {order_id} is {status}: it holds no stock, nothing was released\n"
        assert shop.order("bricklink", order_id)["manual_release"] == 0

    assert (shop.ledger(), shop.inventory()) == before
    shop.check()


def test_release_twice_says_it_is_already_released(shop, bl):
    shop.import_lots(*STOCK)
    order_id = bl.add_order("paid", [("3001", 11, 3, "A1")])
    shop.sync()
    assert release(shop, f"bricklink:{order_id}").stdout != ""
    rows = shop.ledger_count()
    again = release(shop, f"bricklink:{order_id}")
    assert (again.exit_code, again.stdout) == (0, "")
    assert "already released by hand" in again.stderr and f"--unrelease bricklink:{order_id}" in again.stderr
    assert shop.ledger_count() == rows


def test_unrelease_reserves_an_open_order_again_and_later_syncs_keep_it(shop, market):
    shop.import_lots(*STOCK)
    order_id = market.add_order("paid", [("3001", 11, 3, "A1")])
    key = market.line_keys(order_id)[0]
    shop.sync()
    assert release(shop, f"{market.name}:{order_id}").exit_code == 0
    assert shop.lot("A1") == (10, 0)

    result = shop.run("reserve", "--unrelease", f"{market.name}:{order_id}")

    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == f"{market.name} order {order_id} line {key}: reserved 3 on lot {shop.lot_id('A1')} (reserve)\n"
    assert shop.lot("A1") == (10, 3)
    assert shop.order(market.name, order_id)["manual_release"] == 0
    shop.check()
    rows = shop.ledger_count()
    shop.sync()
    assert shop.ledger_count() == rows and shop.lot("A1") == (10, 3)

    again = shop.run("reserve", "--unrelease", f"{market.name}:{order_id}")
    assert (again.exit_code, again.stdout) == (0, "")
    assert again.stderr == f"{market.name} order {order_id} is not released by hand: nothing to undo\n"
    market.set_status(order_id, "shipped")  # followed again: shipping consumes as for any order
    shop.sync()
    assert shop.lot("A1") == (7, 0)


def test_unrelease_after_the_order_shipped_takes_nothing_more(shop, bl):
    shop.import_lots(*STOCK)
    order_id = bl.add_order("paid", [("3001", 11, 3, "A1")])
    shop.sync()
    release(shop, f"bricklink:{order_id}")
    bl.set_status(order_id, "shipped")
    shop.sync()
    assert shop.lot("A1") == (7, 0)
    rows = shop.ledger_count()

    result = shop.run("reserve", "--unrelease", f"bricklink:{order_id}")

    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert shop.order("bricklink", order_id)["manual_release"] == 0
    assert shop.lot("A1") == (7, 0) and shop.ledger_count() == rows
    shop.check()


def test_unrelease_of_an_unknown_or_malformed_order_and_with_other_options(shop, bl):
    shop.import_lots(*STOCK)
    order_id = bl.add_order("paid", [("3001", 11, 3, "A1")])
    shop.sync()
    assert "no bricklink order 404" in one_line_error(shop.run("reserve", "--unrelease", "bricklink:404"), 1)
    one_line_error(shop.run("reserve", "--unrelease", "ebay:1"), 2)
    both = one_line_error(shop.run("reserve", "--release", f"bricklink:{order_id}", "--unrelease",
                                   f"bricklink:{order_id}", "--yes"), 2)
    assert "--unrelease" in both
    one_line_error(shop.run("reserve", "--repair", "--check"), 2)
    assert shop.lot("A1") == (10, 3)


# --- item 6: counters that drifted from the ledger --------------------------------------------------
@pytest.fixture
def drifted(shop, bl):
    """One ledger row deleted by hand: lot C1 counts 4 reserved, its ledger rows sum to 0."""
    shop.import_lots(*STOCK)
    shop.kept = bl.add_order("paid", [("3001", 11, 3, "A1")])
    shop.victim = bl.add_order("paid", [("3004", 1, 4, "C1")])
    shop.key = bl.line_keys(shop.victim)[0]
    shop.sync()
    execute("delete from reservations where order_id = ?", [shop.victim])
    return shop


def test_plain_reserve_refuses_to_book_over_drift_and_changes_nothing(drifted):
    lot = drifted.lot_id("C1")
    before = (drifted.ledger(), drifted.inventory())
    for args in (["reserve"], ["reserve", "--release", f"bricklink:{drifted.kept}", "--yes"],
                 ["reserve", "--unrelease", f"bricklink:{drifted.kept}"]):
        line = one_line_error(drifted.run(*args), 1)
        assert f"lot {lot} is 4 but its ledger rows sum to 0" in line and "marketsync reserve --repair" in line
        assert (drifted.ledger(), drifted.inventory()) == before  # before the fix: 8 reserved, drift for ever


def test_repair_sets_counters_from_the_ledger_then_books_what_is_missing(drifted):
    lot = drifted.lot_id("C1")
    result = drifted.run("reserve", "--repair")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        f"lot {lot} (3004 colour 1 new, bin C1): reserved 4 -> 0, the sum of its ledger rows",
        f"bricklink order {drifted.victim} line {drifted.key}: reserved 4 on lot {lot} (reserve)",
    ]
    assert drifted.lot("C1") == (8, 4) and drifted.lot("A1") == (10, 3)
    drifted.check()

    rows = drifted.ledger_count()
    again = drifted.run("reserve", "--repair")
    assert (again.exit_code, again.stdout, again.stderr) == (0, "", "")
    assert drifted.ledger_count() == rows
    assert drifted.run("reserve").exit_code == 0  # and plain reserve works again


def test_repair_of_a_tampered_counter_names_each_lot_once(shop, bl):
    shop.import_lots(*STOCK)
    bl.add_order("paid", [("3001", 11, 3, "A1"), ("3004", 1, 2, "C1")])
    shop.sync()
    a1, c1 = shop.lot_id("A1"), shop.lot_id("C1")
    execute("update inventory set quantity_reserved = quantity_reserved + 5 where id = ?", [a1])
    execute("update inventory set quantity_reserved = 0 where id = ?", [c1])
    ledger = shop.ledger()

    result = shop.run("reserve", "--repair")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"lot {a1} (3001 colour 11 new, bin A1): reserved 8 -> 3, the sum of its ledger rows",
        f"lot {c1} (3004 colour 1 new, bin C1): reserved 0 -> 2, the sum of its ledger rows",
    ]
    assert (shop.lot("A1"), shop.lot("C1")) == ((10, 3), (8, 2))
    assert shop.ledger() == ledger  # the ledger is the truth: not one row written
    shop.check()


def test_repair_of_a_missing_database_is_one_line(run):
    assert "does not exist" in one_line_error(run("reserve", "--repair"), 1)
