"""The shelf is the truth, defect C of issue #20: a BrickLink lot that buyers sold out (and BrickLink
deleted: it was not retained) comes back when its pieces come back on the shelf -- a plain ``sync
--push`` creates it again, exactly as it was (price, description, remarks), linked in place of the
gone one, exactly once under lost answers and kill -9; a lot the seller deleted or took off sale
while it still had pieces is never created again. Through the real CLI against the sandbox
(docs/stock-model.md, "Sold out and deleted")."""

from __future__ import annotations

import os
import sqlite3

import pytest

from reliability.helpers import kill9, start
from support import wait_for
from test_shelf_scenarios import BL_LOT, BO_LOT, IDS, bl_order, held, listed, lot_row, push

DESCRIPTION = "Tan & clean (no marks)"
SERVED: dict = {}  # the shop's BrickLink lot as GET /inventories serves it


@pytest.fixture
def shop(run, creds):
    """One part in bin A1, listed 20 on both marketplaces (BrickLink at 0.2500 with a description,
    not retained); BrickLink does not restock a cancelled order."""
    creds.bricklink.add_lot("3001", 11, 20, remarks="A1", inventory_id=BL_LOT, description=DESCRIPTION,
                            unit_price="0.2500")
    creds.brickowl.add_lot("771344-38", 20, lot_id=BO_LOT, personal_note="A1", external_id=BL_LOT, ids=IDS)
    creds.bricklink.restock_on_cancel = False
    SERVED.clear()
    SERVED.update(creds.bricklink.get_lot(BL_LOT).to_json())  # the lot as BrickLink serves it (entities and all)
    assert run("inventory", "pull").exit_code == 0
    push(run)
    assert listed(creds) == (20, 20)
    return creds


def query(sql: str, *params) -> list[tuple]:
    with sqlite3.connect("marketsync.db") as conn:
        return conn.execute(sql, params).fetchall()


def bricklink_lots(sb) -> list:
    """The BrickLink lots of part 3001 in bin A1 buyers can see."""
    return [lot for lot in sb.bricklink.all_lots() if lot.status == "Y" and (lot.no, lot.remarks) == ("3001", "A1")]


def sold_out_then_cancelled(run, sb) -> int:
    """A buyer takes all 20 (BrickLink deletes the lot), a push sees it sold out, the order is
    cancelled and BrickLink does not restock: the 20 are on the shelf and listed nowhere on BrickLink."""
    order = bl_order(sb, 20)
    assert sb.bricklink.get_lot(BL_LOT) is None
    result = push(run)
    assert "no longer for sale (sold out)" in result.stderr
    assert lot_row() == (20, 20) and listed(sb) == (None, 0) and bricklink_lots(sb) == []
    sb.bricklink.set_status(order, "CANCELLED")
    return order


def assert_relisted_once(sb) -> None:
    [lot] = bricklink_lots(sb)
    assert lot.inventory_id != BL_LOT and lot.quantity == 20
    body = lot.to_json()
    fields = ("description", "unit_price", "remarks", "new_or_used", "color_id", "item")
    assert [body[f] for f in fields] == [SERVED[f] for f in fields]  # as the sold-out lot was read: nothing invented
    assert (body["unit_price"], body["remarks"]) == ("0.2500", "A1") and "clean" in body["description"]
    assert query("select remote_lot_id, link_method, listed from listings where provider = 'bricklink' "
                 "and gone_at is null") == [(str(lot.inventory_id), "relist", 20)]
    assert query("select state, source, source_lot_id, remote_lot_id from _mirror_creations "
                 "where state not in ('not_applied', 'not_sent')") == [
        ("applied", "bricklink", str(BL_LOT), str(lot.inventory_id))]  # one creation made it; none is open
    assert lot_row() == (20, 0) and sb.brickowl.get_lot(BO_LOT).qty == 20 and held() == []


def test_a_lot_sold_out_and_deleted_is_created_again_as_it_was_when_a_cancellation_puts_its_pieces_back(run, shop):
    sold_out_then_cancelled(run, shop)
    result = push(run)  # a plain sync --push: no --mirror
    [lot] = bricklink_lots(shop)
    assert f"bricklink lot {BL_LOT} (local lot 1) sold out and was deleted; created again as bricklink lot " \
           f"{lot.inventory_id} with 20" in result.stderr
    assert_relisted_once(shop)
    push(run)
    assert_relisted_once(shop)  # never created twice
    bl_order(shop, 3, lot=lot.inventory_id)  # and from then on it follows the ledger like any listing
    push(run)
    assert listed(shop) == (None, 17) and shop.bricklink.get_lot(lot.inventory_id).quantity == 17
    assert lot_row() == (20, 3) and held() == []


@pytest.mark.parametrize("how", ["deleted", "taken off sale"])
def test_a_lot_the_seller_deleted_while_it_had_pieces_is_never_created_again(run, shop, how, monkeypatch):
    for provider in ("BRICKLINK", "BRICKOWL"):  # mirroring could price it
        monkeypatch.setenv(f"MARKETSYNC_CURRENCY_{provider}", "USD")
    with shop.bricklink.lock:
        if how == "deleted":
            del shop.bricklink.lots[BL_LOT]
        else:
            shop.bricklink.lots[BL_LOT].status = "N"
    result = push(run)
    assert "no longer for sale (deleted or taken off sale on the marketplace)" in result.stderr
    push(run)
    assert run("sync", "--push", "--mirror").exit_code == 0  # nor does mirroring put it back from BrickOwl
    assert bricklink_lots(shop) == [] and query("select count(*) from _mirror_creations") == [(0,)]
    assert shop.brickowl.get_lot(BO_LOT).qty == 20 and held() == []


def test_a_lot_sold_out_while_retained_by_the_seller_and_then_deleted_is_not_created_again(run, shop):
    shop.bricklink.set_lot_retain(BL_LOT, True)
    push(run)  # read retained
    bl_order(shop, 20)  # at 0 and kept: BrickLink deletes nothing
    push(run)
    with shop.bricklink.lock:  # then the seller deletes it by hand
        del shop.bricklink.lots[BL_LOT]
    push(run)
    order = query("select order_id from orders where provider = 'bricklink'")[0][0]
    shop.bricklink.set_status(int(order), "CANCELLED")
    push(run)
    assert bricklink_lots(shop) == [] and query("select count(*) from _mirror_creations") == [(0,)]


def test_the_seller_can_turn_relisting_off(run, shop, monkeypatch):
    sold_out_then_cancelled(run, shop)
    monkeypatch.setenv("MARKETSYNC_RELIST", "0")
    push(run)
    assert bricklink_lots(shop) == [] and shop.brickowl.get_lot(BO_LOT).qty == 20
    monkeypatch.delenv("MARKETSYNC_RELIST")
    push(run)
    assert_relisted_once(shop)


def test_a_recount_brings_a_sold_out_and_shipped_lot_back(run, shop):
    order = bl_order(shop, 20)
    shop.bricklink.set_status(order, "SHIPPED")
    push(run)
    assert lot_row() == (0, 0) and bricklink_lots(shop) == []
    with open("count.csv", "w", encoding="utf-8") as count:  # six more found in the bin
        count.write("part_number,color_id,condition,location,quantity\n3001,11,new,A1,6\n")
    assert run("inventory", "import", "count.csv").exit_code == 0
    push(run)
    [lot] = bricklink_lots(shop)
    assert lot.quantity == 6 and lot.to_json()["description"] == SERVED["description"]
    assert listed(shop) == (None, 6) and held() == []


@pytest.mark.parametrize("fault", ["applied_reset", "applied_500", "reset", "500"])
def test_a_lost_answer_never_creates_it_twice(run, shop, fault):
    sold_out_then_cancelled(run, shop)
    shop.inject("bricklink", "POST /inventories", fault)
    assert run("sync", "--push").exit_code in (0, 1)
    push(run)
    push(run)
    assert_relisted_once(shop)
    assert query("select count(*) from _mirror_creations where state in ('intended', 'unknown')") == [(0,)]


@pytest.mark.parametrize("then", ["sync --push", "inventory pull"])
def test_a_lost_answer_not_found_at_once_is_found_by_the_next_run_and_never_held(run, shop, then):
    sold_out_then_cancelled(run, shop)
    store = shop.bricklink
    route = next(r for r in store.routes if r.template == "GET /inventories")
    lot_list = route.handler  # the look-back (the lots of that type and colour) fails; the lot list does not
    route.handler = lambda req: store.fault("500", {}) if req.query.get("item_type") else lot_list(req)
    shop.inject("bricklink", "POST /inventories", "applied_reset")
    try:
        run("sync", "--push")
    finally:
        route.handler = lot_list
        shop.clear_faults()
    assert query("select state from _mirror_creations") == [("unknown",)]
    assert len(bricklink_lots(shop)) == 1
    if then == "inventory pull":  # the lot it made holds pieces already on hand: never added again
        assert run("inventory", "pull", "--provider", "bricklink").exit_code == 0
        assert lot_row() == (20, 0) and query("select state from _mirror_creations") == [("applied",)]
    push(run)  # found among the lots read and linked as marketsync's own before linking: never held as new
    assert_relisted_once(shop)


@pytest.mark.parametrize("when", ["before it is sent", "after it was applied"])
def test_kill_9_while_creating_it_again_never_creates_it_twice(run, shop, tmp_path, when):
    sold_out_then_cancelled(run, shop)
    shop.inject("bricklink", "POST /inventories", "hang" if when == "before it is sent" else "applied_hang",
                times=None, seconds=30)
    proc = start("sync", "--push", "--wait", "5", cwd=tmp_path, env=dict(os.environ))
    try:
        if when == "before it is sent":
            wait_for(lambda: shop.calls[("bricklink", "POST /inventories")] == 1, what="the creation sent", proc=proc)
        else:
            wait_for(lambda: len(bricklink_lots(shop)) == 1, what="the lot created", proc=proc)
    finally:
        kill9(proc)
        shop.clear_faults()
    assert query("select state from _mirror_creations") == [("intended",)]  # recorded before it was sent
    push(run)
    push(run)
    assert_relisted_once(shop)
