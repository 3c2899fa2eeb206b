"""List once, sell everywhere: ``stock mirror`` (and ``sync --push --mirror``) through the real CLI
against the sandbox. A lot on one marketplace only is created on the other exactly once, linked,
and then follows sales; a dry run changes nothing; a lot kept on one marketplace is never created;
lost answers never create twice; what cannot be mirrored is one table, said once."""

from __future__ import annotations

import json
import sqlite3

import pytest

BL_LOT = 501
BO_LOT = "9001"
USD = {"MARKETSYNC_CURRENCY_BRICKLINK": "USD", "MARKETSYNC_CURRENCY_BRICKOWL": "USD"}


@pytest.fixture
def shop(creds, monkeypatch):
    """One BrickLink lot (3001 black, bin A1, 20 at 0.25) that BrickOwl's catalogue knows as 771344."""
    for name, value in USD.items():
        monkeypatch.setenv(name, value)
    creds.bricklink.add_lot("3001", 11, 20, remarks="A1", unit_price="0.25", inventory_id=BL_LOT)
    creds.brickowl.add_id_lookup("3001", ["771344-38", "771344"])
    return creds


def ok(result):
    assert result.exit_code == 0, result.stderr
    return result


def onboard(run) -> None:
    ok(run("inventory", "pull", "--provider", "bricklink"))
    ok(run("sync", "--push"))


def query(sql: str, *params) -> list[tuple]:
    with sqlite3.connect("marketsync.db") as conn:
        return conn.execute(sql, params).fetchall()


def bo_lots(sb):
    return [lot for lot in sb.brickowl.all_lots() if lot.for_sale]


def bl_order(sb, pieces: int, lot: int = BL_LOT, no: str = "3001", remarks: str = "A1") -> int:
    return sb.bricklink.add_order("PAID", lines=[{"inventory_id": lot, "no": no, "color_id": 11, "quantity": pieces,
                                                  "remarks": remarks}])


# --- BrickLink -> BrickOwl -----------------------------------------------------------------------------
def test_a_bricklink_only_lot_appears_on_brickowl_linked_and_then_follows_sales(run, shop, monkeypatch):
    monkeypatch.setenv("MARKETSYNC_PRICE_FACTOR_BRICKOWL", "1.1")
    onboard(run)
    ok(run("stock", "mirror"))
    [lot] = bo_lots(shop)
    assert (lot.boid, lot.qty, lot.full_con, lot.personal_note, lot.external_id) == ("771344-38", 20, "new", "A1",
                                                                                       str(BL_LOT))
    assert str(lot.price) == "0.275"  # 0.25 USD times the seller's factor, rounded as BrickOwl keeps it
    assert query("select provider, remote_lot_id, listed, link_method from listings where provider = 'brickowl'") == [
        ("brickowl", lot.lot_id, 20, "mirror")]
    assert query("select state from _mirror_creations") == [("applied",)]
    bl_order(shop, 3)
    ok(run("sync", "--push"))
    assert shop.brickowl.get_lot(lot.lot_id).qty == 17  # it follows the ledger like any listing
    ok(run("stock", "mirror"))
    assert len(bo_lots(shop)) == 1 and query("select count(*) from _mirror_creations") == [(1,)]


def test_a_dry_run_lists_what_would_be_created_and_changes_nothing(run, shop):
    onboard(run)
    before = query("select count(*) from _id_lookups")
    result = ok(run("stock", "mirror", "--dry-run", "--json"))
    [row] = json.loads(result.stdout)
    assert (row["to"], row["item"], row["colour"], row["condition"], row["quantity"], row["price"], row["note"]) == (
        "brickowl", "771344", 38, "new", 20, "0.250", "A1")
    assert bo_lots(shop) == [] and query("select count(*) from _mirror_creations") == [(0,)]
    assert query("select count(*) from _id_lookups") == before  # the lookup it made is not even cached
    assert ("POST", "/inventory/create") not in {tuple(w[1].split(" ", 1)) for w in shop.writes}


def test_sync_mirrors_after_the_push_when_asked(run, shop, monkeypatch):
    onboard(run)
    monkeypatch.setenv("MARKETSYNC_MIRROR", "1")
    ok(run("sync", "--push"))
    assert [lot.qty for lot in bo_lots(shop)] == [20]
    calls = dict(shop.calls)
    ok(run("sync", "--push"))  # nothing left to mirror: no call of its own
    assert shop.calls[("brickowl", "GET /inventory/list")] == calls[("brickowl", "GET /inventory/list")] + 1
    monkeypatch.delenv("MARKETSYNC_PUSH", raising=False)
    assert run("sync").exit_code == 2  # mirroring goes with the push


def test_a_lot_kept_on_one_marketplace_is_never_created(run, shop):
    onboard(run)
    ok(run("stock", "only", f"bricklink:{BL_LOT}"))
    result = ok(run("stock", "mirror", "--dry-run", "--json"))
    assert json.loads(result.stdout) == []
    ok(run("stock", "mirror"))
    assert bo_lots(shop) == []
    assert "kept on bricklink only" in ok(run("stock")).stdout
    ok(run("stock", "only", f"bricklink:{BL_LOT}", "--off"))
    ok(run("stock", "mirror"))
    assert len(bo_lots(shop)) == 1


# --- BrickOwl -> BrickLink -----------------------------------------------------------------------------
def test_a_brickowl_only_lot_whose_number_is_known_appears_on_bricklink(run, creds, monkeypatch):
    for name, value in USD.items():
        monkeypatch.setenv(name, value)
    sb = creds
    sb.brickowl.add_lot("771344-38", 12, lot_id=BO_LOT, personal_note="B7", full_con="usedg", price="0.5")
    sb.bricklink.add_catalog_item("3001")
    ok(run("map", "771344", "3001"))  # the seller's pin: the BrickLink number is known
    ok(run("inventory", "pull", "--provider", "brickowl"))
    ok(run("sync", "--push"))
    ok(run("stock", "mirror", "--to", "bricklink"))
    [lot] = [x for x in sb.bricklink.lots.values()]
    assert (lot.no, lot.color_id, lot.quantity, lot.new_or_used, lot.remarks, str(lot.unit_price)) == (
        "3001", 11, 12, "U", "B7", "0.5000")
    assert query("select remote_lot_id, listed from listings where provider = 'bricklink'") == [
        (str(lot.inventory_id), 12)]
    sb.brickowl.add_order("Payment Received", lines=[{"lot_id": BO_LOT, "boid": "771344-38", "color_id": 38,
                                                      "ordered_quantity": 2, "personal_note": "B7",
                                                      "full_con": "usedg"}])
    ok(run("sync", "--push"))
    assert sb.bricklink.get_lot(lot.inventory_id).quantity == 10


def test_a_brickowl_lot_with_no_known_number_is_reported_never_guessed(run, creds, monkeypatch):
    for name, value in USD.items():
        monkeypatch.setenv(name, value)
    sb = creds
    sb.brickowl.add_lot("555555-38", 4, lot_id=BO_LOT, personal_note="C1", ids=[{"id": "555555-38", "type": "boid"}])
    sb.bricklink.add_lot("3001", 11, 5, remarks="A1", inventory_id=BL_LOT)  # a second marketplace with lots
    ok(run("inventory", "pull"))
    ok(run("sync", "--push"))
    result = ok(run("stock", "mirror"))
    assert "cannot be mirrored" in result.stderr
    rows = json.loads(ok(run("stock", "mirror", "--gaps", "--json")).stdout)
    assert [(r["target"], r["why"]) for r in rows if r["examples"] == f"brickowl:{BO_LOT}"] == [
        ("bricklink", "no number")]
    assert "marketsync map" in [r for r in rows if r["examples"] == f"brickowl:{BO_LOT}"][0]["subject"]
    assert len(sb.bricklink.lots) == 1


# --- prices, conditions and the gaps -------------------------------------------------------------------
def test_a_lot_needing_a_rate_nobody_set_is_reported_once_and_created_once_it_is_set(run, shop, monkeypatch):
    monkeypatch.setenv("MARKETSYNC_CURRENCY_BRICKOWL", "EUR")
    onboard(run)
    first = ok(run("stock", "mirror"))
    assert "1 kind(s) of lot cannot be mirrored (1 new, 0 fixed)" in first.stderr
    [gap] = json.loads(ok(run("stock", "mirror", "--gaps", "--json")).stdout)
    assert (gap["why"], gap["subject"], gap["fix"]) == ("no rate", "USD to EUR",
                                                        "set MARKETSYNC_PRICE_RATE_USD_EUR (1 USD in EUR)")
    assert "cannot be mirrored" not in ok(run("stock", "mirror")).stderr  # the same set: said once
    assert bo_lots(shop) == []
    monkeypatch.setenv("MARKETSYNC_PRICE_RATE_USD_EUR", "0.9")
    second = ok(run("stock", "mirror"))
    assert "0 kind(s) of lot cannot be mirrored (0 new, 1 fixed)" in second.stderr
    [lot] = bo_lots(shop)
    assert str(lot.price) == "0.225"


def test_a_used_bricklink_lot_needs_the_grade_the_seller_names(run, creds, monkeypatch):
    for name, value in USD.items():
        monkeypatch.setenv(name, value)
    creds.bricklink.add_lot("3001", 11, 20, new_or_used="U", remarks="A1", inventory_id=BL_LOT)
    creds.brickowl.add_id_lookup("3001", ["771344-38"])
    onboard(run)
    ok(run("stock", "mirror"))
    [gap] = json.loads(ok(run("stock", "mirror", "--gaps", "--json")).stdout)
    assert gap["why"] == "no condition" and "MARKETSYNC_MIRROR_USED_GRADE" in gap["fix"]
    monkeypatch.setenv("MARKETSYNC_MIRROR_USED_GRADE", "usedg")
    ok(run("stock", "mirror"))
    assert [lot.full_con for lot in bo_lots(creds)] == ["usedg"]


def test_a_catalogue_refusal_is_a_gap_and_not_sent_again(run, creds, monkeypatch):
    for name, value in USD.items():
        monkeypatch.setenv(name, value)
    sb = creds
    sb.brickowl.add_lot("771344-38", 3, lot_id=BO_LOT, personal_note="B7", price="0.5")
    ok(run("map", "771344", "3001x"))  # a pin to a number BrickLink's catalogue does not have
    ok(run("inventory", "pull", "--provider", "brickowl"))
    sb.bricklink.add_lot("3002", 11, 5, remarks="A1")
    ok(run("inventory", "pull", "--provider", "bricklink"))
    ok(run("sync", "--push"))
    ok(run("stock", "mirror", "--to", "bricklink"))
    posts = shop_posts = sb.calls[("bricklink", "POST /inventories")]
    assert posts == 1 and len(sb.bricklink.lots) == 1
    ok(run("stock", "mirror", "--to", "bricklink"))
    assert sb.calls[("bricklink", "POST /inventories")] == shop_posts  # the same lot is not sent again
    [gap] = [g for g in json.loads(ok(run("stock", "mirror", "--gaps", "--json")).stdout) if g["why"] == "refused"]
    assert "3001x" in gap["subject"]


# --- exactly once --------------------------------------------------------------------------------------
@pytest.mark.parametrize("endpoint", ["POST /inventory/create", "POST /bulk/batch"])
@pytest.mark.parametrize("fault", ["applied_reset", "applied_500", "reset", "500"])
def test_a_lost_answer_never_creates_twice(run, shop, endpoint, fault):
    shop.bricklink.add_lot("3001", 11, 7, remarks="A2", unit_price="0.3", inventory_id=502)
    onboard(run)
    if endpoint == "POST /inventory/create":  # one lot: inventory/create; two: bulk/batch
        ok(run("stock", "only", "bricklink:502"))
    shop.inject("brickowl", endpoint, fault)
    ok(run("stock", "mirror"))
    ok(run("stock", "mirror"))
    ok(run("stock", "mirror"))
    lots = bo_lots(shop)
    assert len(lots) == (1 if endpoint == "POST /inventory/create" else 2)
    assert sorted(r[0] for r in query("select remote_lot_id from listings where provider = 'brickowl'")) == sorted(
        lot.lot_id for lot in lots)
    assert query("select count(*) from _mirror_creations where state in ('intended', 'unknown')") == [(0,)]


@pytest.mark.parametrize("fault", ["applied_reset", "late"])
def test_a_lost_bricklink_answer_is_found_by_reading_the_lots_of_that_item(run, creds, monkeypatch, fault):
    for name, value in USD.items():
        monkeypatch.setenv(name, value)
    sb = creds
    sb.brickowl.add_lot("771344-38", 12, lot_id=BO_LOT, personal_note="B7", price="0.5")
    sb.bricklink.add_lot("3002", 11, 5, remarks="A1")
    ok(run("map", "771344", "3001"))
    sb.bricklink.add_catalog_item("3001")
    ok(run("inventory", "pull", "--provider", "bricklink"))
    ok(run("inventory", "pull", "--provider", "brickowl"))
    ok(run("sync", "--push"))
    sb.inject("bricklink", "POST /inventories", fault)
    ok(run("stock", "mirror", "--to", "bricklink"))
    if fault == "late":
        sb.apply_late_writes("bricklink")
    ok(run("stock", "mirror", "--to", "bricklink"))
    ok(run("stock", "mirror", "--to", "bricklink"))
    assert [lot.no for lot in sb.bricklink.lots.values()].count("3001") == 1
    assert query("select state from _mirror_creations order by id") == [("applied",)]


def test_a_pull_after_a_creation_left_open_never_counts_its_pieces_twice(run, shop):
    # The lot a creation made holds pieces already on hand: a pull that reads it before any mirror or
    # push settled the creation adds nothing, and the next mirror settles it without sending again.
    onboard(run)
    store = shop.brickowl
    route = next(r for r in store.routes if r.template == "GET /inventory/list")
    lot_list, reads = route.handler, []

    def first_read_only(req):  # the mirror's own read answers; looking for the lot after the lost answer fails
        reads.append(req)
        return lot_list(req) if len(reads) == 1 else store.fault("500", {})

    route.handler = first_read_only
    shop.inject("brickowl", "POST /inventory/create", "applied_reset")
    try:
        run("stock", "mirror")
    finally:
        route.handler = lot_list
        shop.clear_faults()
    assert len(bo_lots(shop)) == 1 and query("select state from _mirror_creations") != [("applied",)]
    ok(run("inventory", "pull", "--provider", "brickowl"))
    assert query("select quantity from inventory") == [(20,)]
    ok(run("stock", "mirror"))  # settled: found, never sent again
    assert len(bo_lots(shop)) == 1 and query("select state from _mirror_creations") == [("applied",)]
    assert query("select quantity from inventory") == [(20,)]
