"""Defect H of issue #20, through the real CLI and the sandbox: a lot oversold across the two
marketplaces, one shipment taken back and another shipped in the same run. On hand follows the
bin (docs/stock-model.md, "The proof"): the returned parcel is what the other shipment left with."""

from __future__ import annotations

import sqlite3

from test_shelf_scenarios import bl_order, bo_order, held, listed, lot_row, onboard, push, shop  # noqa: F401


def made_up() -> list[tuple[str, str, int]]:
    with sqlite3.connect("marketsync.db") as conn:
        return conn.execute("select provider, order_id, taken from reservations where reason = 'made-up'").fetchall()


def test_a_shipment_taken_back_in_the_run_another_ships_leaves_on_hand_at_the_bin(run, shop):  # noqa: F811
    onboard(run, shop)  # 20 in bin A1, listed 20 on both marketplaces
    on_bl, on_bo = bl_order(shop, 20), bo_order(shop, 20)  # both before the next run: 40 ordered, 20 there
    push(run)
    assert lot_row() == (20, 40)
    shop.brickowl.set_status(on_bo, "Shipped")  # the seller sends the bin's 20 to the BrickOwl buyer
    push(run)
    assert lot_row() == (0, 20)

    # Between two runs: the BrickOwl parcel comes back (packed again) and the BrickLink buyer's order
    # leaves with those 20 pieces. The marketplaces sync at once; BrickOwl answering slowly, this run
    # books the BrickLink shipment first, on an empty lot (tests/unit/test_ledger_plan.py: either order).
    shop.brickowl.set_status(on_bo, "Processed")
    shop.bricklink.set_status(on_bl, "SHIPPED")
    shop.brickowl.latency = 0.3
    push(run)
    shop.brickowl.latency = 0
    assert lot_row() == (0, 20)  # the bin is empty; BrickOwl's 20 are reserved again (oversold)
    assert made_up() == [("bricklink", str(on_bl), 20)]  # the BrickLink parcel took them off on hand

    shop.brickowl.set_status(on_bo, "Cancelled")
    push(run)
    assert lot_row() == (0, 0) and listed(shop)[1] == 0 and held() == []  # nothing listed that is not there

    shop.bricklink.set_status(on_bl, "PACKED")  # the BrickLink parcel comes back too: its 20 are in the bin
    push(run)
    assert lot_row() == (20, 20)
    push(run)
    assert lot_row() == (20, 20) and held() == []
    assert run("reserve", "--check").exit_code == 0


def test_adopting_pieces_a_shipment_already_took_makes_up_its_shortfall_first(run, shop):  # noqa: F811
    # The seller puts 3 more in bin A1 and raises BrickLink 20 -> 23; a buyer takes all 23 before the
    # next run and it ships: the bin is empty, marketsync's on hand stops at 0 (3 short). Adopting the
    # raise declares 3 pieces the shipment already took: they make up its shortfall, not on hand.
    onboard(run, shop)
    shop.bricklink.set_lot_quantity(501, 23)
    order = bl_order(shop, 23, status="SHIPPED")
    result = push(run)  # sold out, BrickLink deleted it: the run names the adopt
    assert lot_row() == (0, 0) and "stock adopt bricklink:501' adds those 3" in result.stderr
    adopted = run("stock", "adopt", "bricklink:501")
    assert adopted.exit_code == 0, adopted.stderr
    assert lot_row() == (0, 0) and made_up() == [("bricklink", str(order), 3)]
    push(run)
    assert listed(shop)[1] == 0 and held() == []
    assert run("reserve", "--check").exit_code == 0
