"""Listings follow the ledger, through the real CLI against the sandbox's store inventories:
what one marketplace sells the other stops offering, exactly once, never reverting the seller."""

from __future__ import annotations

import json
import sqlite3

import pytest

from support import one_line_error

BL_LOT, BO_LOT = 501, "9001"
IDS = [{"id": "3001", "type": "design_id"}, {"id": "771344-38", "type": "boid"}]


def lot_row(db: str = "marketsync.db", location: str = "A1") -> tuple[int, int]:
    with sqlite3.connect(db) as conn:
        return conn.execute("select quantity, quantity_reserved from inventory where location = ?",
                            [location]).fetchone()


def writes(sb) -> int:
    return sum(n for (provider, endpoint), n in sb.calls.items() if endpoint.split()[0] in ("PUT", "POST"))


def listed(sb) -> tuple[int | None, int | None]:
    bl, bo = sb.bricklink.get_lot(BL_LOT), sb.brickowl.get_lot(BO_LOT)
    return (bl.quantity if bl else None), (bo.qty if bo else None)


@pytest.fixture
def shop(run, creds):
    """One part in bin A1, listed 20 on both marketplaces, the BrickOwl lot linked to the BrickLink one."""
    creds.bricklink.add_lot("3001", 11, 20, remarks="A1", inventory_id=BL_LOT)
    creds.brickowl.add_lot("771344-38", 20, lot_id=BO_LOT, personal_note="A1", external_id=BL_LOT, ids=IDS)
    return creds


def bl_order(sb, pieces: int, status: str = "PAID") -> int:
    return sb.bricklink.add_order(status, lines=[{"inventory_id": BL_LOT, "no": "3001", "color_id": 11,
                                                   "quantity": pieces, "remarks": "A1"}])


def bo_order(sb, pieces: int, status: str = "Payment Received") -> str:
    return sb.brickowl.add_order(status, lines=[{"lot_id": BO_LOT, "boid": "771344-38", "color_id": 38,
                                                 "ordered_quantity": pieces, "personal_note": "A1",
                                                 "bl_lot_id": str(BL_LOT)}])


def push(run, *extra: str):
    result = run("sync", "--push", *extra)
    assert result.exit_code == 0, result.stderr
    return result


# --- the pull counts what is on the shelf -------------------------------------------------------------
@pytest.mark.parametrize("sync_first", [False, True])
def test_pull_counts_pieces_of_open_orders_before_or_after_the_first_sync(run, shop, sync_first):
    bl_order(shop, 3)  # BrickLink takes the 3 off the listing: it lists 17 of 20 on the shelf
    assert listed(shop)[0] == 17
    if sync_first:
        assert run("sync").exit_code == 0
    for _ in range(2):  # and again: a re-pull changes nothing
        result = run("inventory", "pull", "--provider", "bricklink")
        assert result.exit_code == 0, result.stderr
        assert lot_row() == (20, 3)
    assert run("sync").exit_code == 0
    assert lot_row() == (20, 3)
    assert run("reserve", "--check").exit_code == 0


def test_pull_from_brickowl_counts_its_own_open_orders(run, shop):
    shop.brickowl.add_lot("771344-38", 7, lot_id="9002", personal_note="B2", ids=IDS)  # a BrickOwl-only lot
    shop.brickowl.add_id_lookup("3001", ["771344-38", "771344"])
    bo_order(shop, 4)
    result = run("inventory", "pull", "--provider", "brickowl")
    assert result.exit_code == 0, result.stderr
    assert lot_row(location="A1") == (20, 4)
    assert lot_row(location="B2") == (7, 0)


def test_a_lot_no_longer_listed_is_reported_and_zeroed_only_when_asked(run, shop):
    assert run("inventory", "pull").exit_code == 0
    shop.bricklink.lots.pop(BL_LOT)
    kept = run("inventory", "pull")
    assert kept.exit_code == 0 and f"bricklink lot {BL_LOT} is no longer listed" in kept.stderr
    assert lot_row() == (20, 0)
    zeroed = run("inventory", "pull", "--zero-missing")
    assert zeroed.exit_code == 0 and "zeroed" in zeroed.stderr
    assert lot_row() == (0, 0)


# --- pushes ------------------------------------------------------------------------------------------
def onboard(run, sb):
    assert run("inventory", "pull").exit_code == 0
    push(run)
    assert listed(sb) == (20, 20)


def test_a_bricklink_sale_reaches_brickowl_and_a_brickowl_sale_bricklink(run, shop):
    onboard(run, shop)
    bl_order(shop, 3)
    push(run)
    assert listed(shop) == (17, 17) and lot_row() == (20, 3)
    bo_order(shop, 5)
    push(run)
    assert listed(shop) == (12, 12) and lot_row() == (20, 8)
    assert shop.calls[("bricklink", "PUT /inventories/{id}")] == 1
    assert shop.calls[("brickowl", "POST /inventory/update")] == 1


@pytest.mark.parametrize("restock", [True, False])
def test_a_cancellation_restores_both_listings_with_either_restock_behaviour(run, shop, restock):
    shop.bricklink.restock_on_cancel = shop.brickowl.restock_on_cancel = restock
    onboard(run, shop)
    order = bl_order(shop, 3)
    bo = bo_order(shop, 2)
    push(run)
    assert listed(shop) == (15, 15)
    shop.bricklink.set_status(order, "CANCELLED")
    shop.brickowl.set_status(bo, "Cancelled")
    result = push(run)
    assert "held" not in result.stderr
    assert listed(shop) == (20, 20) and lot_row() == (20, 0)
    push(run)  # and nothing more
    assert listed(shop) == (20, 20)


def test_shipping_changes_no_listing(run, shop):
    onboard(run, shop)
    order = bl_order(shop, 3)
    push(run)
    shop.reset_calls()
    shop.bricklink.set_status(order, "SHIPPED")
    push(run)
    assert writes(shop) == 0
    assert listed(shop) == (17, 17) and lot_row() == (17, 0)


def test_an_idle_push_writes_nothing_and_reads_each_listing_once(run, shop):
    onboard(run, shop)
    shop.reset_calls()
    push(run)
    assert writes(shop) == 0
    assert shop.calls[("bricklink", "GET /inventories")] == 1
    assert shop.calls[("brickowl", "GET /inventory/list")] == 1


def test_the_sellers_own_edit_is_reported_held_and_never_reverted(run, shop):
    onboard(run, shop)
    shop.bricklink.set_lot_quantity(BL_LOT, 30)  # new stock, added on BrickLink's website
    shop.reset_calls()
    result = push(run)
    assert f"bricklink lot {BL_LOT}" in result.stderr and "held" in result.stderr
    assert len([l for l in result.stderr.splitlines() if "held" in l]) == 1
    assert writes(shop) == 0 and listed(shop) == (30, 20)
    again = push(run)
    assert "held" not in again.stderr and listed(shop) == (30, 20)  # said once, still held
    held = json.loads(run("stock", "--held", "--json").stdout)
    assert [(r["provider"], r["remote_lot_id"]) for r in held] == [("bricklink", str(BL_LOT))]

    adopted = run("stock", "adopt", f"bricklink:{BL_LOT}")
    assert adopted.exit_code == 0, adopted.stderr
    assert lot_row() == (30, 0)
    push(run)
    assert listed(shop) == (30, 30)
    with sqlite3.connect("marketsync.db") as conn:
        assert conn.execute("select quantity, reason from adjustments").fetchall() == [(10, "adopt")]


def test_override_pushes_ours(run, shop):
    onboard(run, shop)
    shop.brickowl.set_lot_quantity(BO_LOT, 3)
    push(run)
    assert listed(shop) == (20, 3)
    assert run("stock", "override", f"brickowl:{BO_LOT}").exit_code == 0
    push(run)
    assert listed(shop) == (20, 20) and lot_row() == (20, 0)


def test_dry_run_shows_the_change_and_changes_nothing(run, shop):
    onboard(run, shop)
    bl_order(shop, 4)
    assert run("sync").exit_code == 0
    shop.reset_calls()
    dry = run("stock", "push", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    rows = json.loads(dry.stdout)
    assert [(r["provider"], r["remote_lot_id"], r["listed"], r["would_list"]) for r in rows] == [
        ("brickowl", BO_LOT, 20, 16)]
    assert writes(shop) == 0 and listed(shop) == (16, 20)
    assert run("stock", "push").exit_code == 0
    assert listed(shop) == (16, 16)


@pytest.mark.parametrize("fault", ["applied_reset", "applied_500", "500", "reset"])
def test_a_lost_reply_is_read_back_never_sent_twice(run, shop, fault):
    onboard(run, shop)
    bl_order(shop, 3)
    shop.inject("brickowl", "POST /inventory/update", fault, times=1)
    first = run("sync", "--push")
    push(run)
    assert listed(shop) == (17, 17), first.stderr
    push(run)
    assert listed(shop) == (17, 17)
    assert run("reserve", "--check").exit_code == 0


def test_a_lot_sold_to_zero_comes_back_on_cancel(run, shop):
    onboard(run, shop)
    bo = bo_order(shop, 20)
    push(run)
    assert listed(shop) == (0, 0)
    assert shop.bricklink.get_lot(BL_LOT).is_retain  # retained: a release can bring it back
    shop.brickowl.set_status(bo, "Cancelled")
    push(run)
    assert listed(shop) == (20, 20)


def test_an_order_that_lands_mid_read_is_not_put_back_on_sale(run, shop):
    onboard(run, shop)
    store = shop.bricklink
    route = next(r for r in store.routes if r.template == "GET /inventories")
    original = route.handler

    def read_then_sell(req):
        answer = original(req)
        route.handler = original
        bl_order(shop, 3)  # placed right after BrickLink answered the listing read
        return answer

    route.handler = read_then_sell
    shop.reset_calls()
    push(run)
    assert shop.calls[("bricklink", "PUT /inventories/{id}")] == 0  # its 20 was stale: not pushed back up
    assert listed(shop) == (17, 17)
    push(run)
    assert listed(shop) == (17, 17) and lot_row() == (20, 3)


def test_a_refusal_is_one_line_and_the_rest_still_pushes(run, shop):
    onboard(run, shop)
    bl_order(shop, 3)
    shop.inject("brickowl", "POST /inventory/update", "error_string", times=1)
    result = run("sync", "--push")
    assert f"brickowl lot {BO_LOT}" in result.stderr and "refused" in result.stderr
    push(run)
    assert listed(shop) == (17, 17)


def test_dry_run_needs_push(run, shop):
    one_line_error(run("sync", "--dry-run"), 2)


# --- the ledger at the edges -------------------------------------------------------------------------
@pytest.mark.parametrize(("shipped", "reopened"), [("SHIPPED", "PACKED"), ("COMPLETED", "PAID")])
def test_a_shipment_taken_back_returns_its_pieces_once_and_ships_once_more(run, shop, shipped, reopened):
    assert run("inventory", "pull").exit_code == 0
    order = bl_order(shop, 4)
    assert run("sync").exit_code == 0 and lot_row() == (20, 4)
    shop.bricklink.set_status(order, shipped)
    assert run("sync").exit_code == 0 and lot_row() == (16, 0)
    shop.bricklink.set_status(order, reopened)
    back = run("sync")
    assert back.exit_code == 0
    assert [l for l in back.stderr.splitlines() if str(order) in l] == [
        f"bricklink order {order} is {'packed' if reopened == 'PACKED' else 'paid'} again after it shipped: "
        "its 4 shipped piece(s) are back on hand and reserved again"]
    assert lot_row() == (20, 4)
    assert run("sync").stderr == ""  # said once
    shop.bricklink.set_status(order, shipped)
    assert run("sync").exit_code == 0 and lot_row() == (16, 0)  # as a single shipment would leave it
    assert run("reserve", "--check").exit_code == 0
    with sqlite3.connect("marketsync.db") as conn:
        reasons = [r for (r,) in conn.execute("select reason from reservations order by id")]
    assert reasons == ["reserve", "shipped", "unshipped", "reserve", "shipped"]


def test_a_re_pull_after_pushes_in_both_directions_keeps_on_hand_exact(run, shop):
    onboard(run, shop)
    bl_order(shop, 3)
    push(run)
    bo_order(shop, 2)
    push(run)
    assert listed(shop) == (15, 15) and lot_row() == (20, 5)
    for provider in ("bricklink", "brickowl", "bricklink"):
        result = run("inventory", "pull", "--provider", provider)
        assert result.exit_code == 0, result.stderr
        assert lot_row() == (20, 5), provider
    push(run)
    assert listed(shop) == (15, 15)


# --- real payloads: a list that runs ahead of its detail, filed orders ----------------------------
def test_a_brickowl_list_ahead_of_its_view_settles_once_they_agree(run, shop):
    import json as json_

    assert run("inventory", "pull").exit_code == 0
    order = bo_order(shop, 3, status="Processing")
    assert run("sync").exit_code == 0 and lot_row() == (20, 3)
    store = shop.brickowl
    route = next(r for r in store.routes if r.template == "GET /order/view")
    original = route.handler

    def stale_view(req):  # the detail lags: it still says Processing
        answer = original(req)
        body = json_.loads(answer.body)
        body["status"], body["status_id"] = "Processing", "3"
        answer.body = json_.dumps(body).encode()
        return answer

    route.handler = stale_view
    store.set_status(order, "Shipped")
    first = run("sync")
    assert first.exit_code == 0 and lot_row() == (20, 3)  # the stored detail still says processing
    second = run("sync")
    assert f"order {order} is listed as 'Shipped' but its detail still says 'Processing'" in second.stderr
    route.handler = original  # the detail catches up
    assert run("sync").exit_code == 0
    with sqlite3.connect("marketsync.db") as conn:
        status = conn.execute("select status from orders where order_id = ?", [order]).fetchone()[0]
    assert status == "shipped" and lot_row() == (17, 0)
    shop.reset_calls()
    assert run("sync").exit_code == 0
    assert shop.calls[("brickowl", "GET /order/view")] == 0  # settled: never fetched again


def test_filed_orders_are_stored_as_filed(run, shop):
    order = shop.bricklink.add_order("PAID", is_filed=True, lines=[
        {"inventory_id": BL_LOT, "no": "3001", "color_id": 11, "quantity": 1, "remarks": "A1"}])
    other = bl_order(shop, 1)
    assert run("sync").exit_code == 0
    with sqlite3.connect("marketsync.db") as conn:
        filed = dict(conn.execute("select order_id, is_filed from orders"))
    assert filed == {str(order): 1, str(other): 0}


def test_pushes_count_against_the_daily_budget_after_the_orders(run, creds):
    for n in range(3):
        creds.bricklink.add_lot(f"30{n}1", 11, 10, remarks=f"B{n}", inventory_id=600 + n)
        creds.brickowl.add_lot(f"77{n}-38", 10, lot_id=str(9500 + n), personal_note=f"B{n}", external_id=600 + n)
    assert run("inventory", "pull").exit_code == 0
    push(run)
    for n in range(3):
        creds.brickowl.add_order("Payment Received", lines=[{"lot_id": str(9500 + n), "boid": f"77{n}-38",
                                                             "color_id": 38, "ordered_quantity": 1,
                                                             "personal_note": f"B{n}", "bl_lot_id": str(600 + n)}])
    used = json.loads(run("status", "--json").stdout)["providers"][0]["calls_today"]
    # today so far, then this run's order list, lots and second order list, and room for one change
    budget = used + 3 + 1
    creds.reset_calls()
    cut = run("sync", "--push", "--bricklink-budget", str(budget))
    assert cut.exit_code == 0, cut.stderr
    assert "bricklink: daily API budget used up; 2 listing change(s) wait for the next run" in cut.stderr
    assert creds.calls[("bricklink", "PUT /inventories/{id}")] == 1
    assert sorted(creds.bricklink.get_lot(600 + n).quantity for n in range(3)) == [9, 10, 10]
    push(run)  # with budget to spare (the default): the rest follows, nothing twice
    assert [creds.bricklink.get_lot(600 + n).quantity for n in range(3)] == [9, 9, 9]


def test_bricklink_puts_go_a_few_in_flight_each_journaled_before_it_is_sent(run, creds, tmp_path):
    """Eight BrickOwl sales: BrickLink follows with eight PUTs, several at once (never more than
    BrickSync's four), and when each PUT reaches BrickLink its change is already committed as
    intended in the journal (issue 24, item 5)."""
    import threading

    lots = 8
    for n in range(lots):
        creds.bricklink.add_lot(f"p{n}", 11, 10, remarks=f"B{n}", inventory_id=10_000 + n)
        creds.brickowl.add_lot(f"{n + 1}-38", 10, lot_id=str(50_000 + n), personal_note=f"B{n}",
                               external_id=10_000 + n)
    assert run("inventory", "pull").exit_code == 0
    push(run)
    for n in range(lots):
        creds.brickowl.add_order("Payment Received", lines=[{
            "lot_id": str(50_000 + n), "boid": f"{n + 1}-38", "color_id": 38, "ordered_quantity": 1,
            "personal_note": f"B{n}", "bl_lot_id": str(10_000 + n)}])
    store = creds.bricklink  # the store answers under its lock: watch the requests before that
    original, lock, meet = store.handle, threading.Lock(), threading.Barrier(2, timeout=5)
    active, most, journal, met = [0], [0], {}, []

    def watched(req, route):
        if route is None or route.template != "PUT /inventories/{id}":
            return original(req, route)
        lot = req.path.rsplit("/", 1)[-1]
        with sqlite3.connect(tmp_path / "marketsync.db") as conn:  # what is committed, seen from outside
            journal[lot] = [row[0] for row in conn.execute(
                "select state from _listing_changes where remote_lot_id = ?", [lot])]
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        try:
            if len(met) < 2:  # the first two PUTs wait for each other: only PUTs in flight together meet
                met.append(lot)
                try:
                    meet.wait()
                except threading.BrokenBarrierError:
                    pass
            return original(req, route)
        finally:
            with lock:
                active[0] -= 1

    store.handle = watched
    creds.reset_calls()
    push(run)
    del store.handle
    assert creds.calls[("bricklink", "PUT /inventories/{id}")] == lots
    assert not meet.broken and 2 <= most[0] <= 4, most[0]  # a few in flight, within BrickLink's limit
    assert journal == {str(10_000 + n): ["intended"] for n in range(lots)}  # recorded and committed first
    assert all(creds.bricklink.get_lot(10_000 + n).quantity == 9 for n in range(lots))
    with sqlite3.connect(tmp_path / "marketsync.db") as conn:
        assert conn.execute("select state, count(*) from _listing_changes group by state").fetchall() == [
            ("applied", lots)]
