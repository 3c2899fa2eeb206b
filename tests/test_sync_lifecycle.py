"""`marketsync sync` through an order's whole life, on both marketplaces, against the sandbox.

Every test builds a small explicit store in the empty sandbox: an inventory CSV imported with
the real CLI (one lot per bin, so bins name lots in the assertions), orders added to the
emulated marketplaces, then ``marketsync sync`` run in-process. After every sync the ledger
invariants are verified with ``marketsync reserve --check``.
"""

from __future__ import annotations

import datetime as dt

import csv
import json
import sqlite3

import pytest

from marketsync.sandbox.colors import colors

DB = "marketsync.db"

# BrickOwl lines carry BOIDs: each test pins these bases to BrickLink parts with `marketsync map`.
BOIDS = {"3001": "900001", "3003": "900003", "3004": "900004", "3626": "903626"}

BL_STATUS = {
    "pending": "PENDING", "paid": "PAID", "processing": "PROCESSING", "packed": "PACKED", "shipped": "SHIPPED",
    "completed": "COMPLETED", "cancelled": "CANCELLED", "disputed": "NPB", "unknown": "HOLDING",
}  # fmt: skip
BO_STATUS = {
    "pending": "Pending", "paid": "Payment Received", "processing": "Processing", "packed": "Processed",
    "shipped": "Shipped", "completed": "Received", "cancelled": "Cancelled",
}  # fmt: skip


class BrickLinkMarket:
    name = "bricklink"

    def __init__(self, sb):
        self.store = sb.bricklink

    @staticmethod
    def _line(part: str, color: int, qty: int, location: str | None = None, condition: str = "new") -> dict:
        return {"no": part, "color_id": color, "quantity": qty, "new_or_used": "N" if condition == "new" else "U",
                "remarks": location}

    def add_order(self, status: str, lines: list[tuple], placed: dt.datetime | None = None) -> str:
        return str(self.store.add_order(status=BL_STATUS[status], lines=[self._line(*line) for line in lines],
                                        date_ordered=placed))

    def set_status(self, order_id: str, status: str) -> None:
        self.store.set_status(int(order_id), BL_STATUS[status])

    def _lines(self, order_id: str) -> list[tuple[int, dict]]:
        order = self.store.orders[int(order_id)]
        return [(batch_no, line) for batch_no, batch in enumerate(order.batches, 1) for line in batch]

    def line_keys(self, order_id: str) -> list[str]:
        return [f"{batch}:{line['inventory_id']}" for batch, line in self._lines(order_id)]

    def set_quantity(self, order_id: str, index: int, qty: int) -> None:
        """The seller edits a line's quantity on BrickLink (the order's totals follow)."""
        with self.store.lock:
            self._lines(order_id)[index][1]["quantity"] = qty

    def remove_line(self, order_id: str, index: int) -> None:
        batch, line = self._lines(order_id)[index]
        self.store.remove_line(int(order_id), batch, line["inventory_id"])

    def add_line(self, order_id: str, line: tuple) -> None:
        """The buyer comes back for more: BrickLink adds a batch."""
        self.store.add_batch(int(order_id), [self._line(*line)])

    def set_location(self, order_id: str, index: int, location: str) -> None:
        with self.store.lock:
            self._lines(order_id)[index][1]["remarks"] = location


class BrickOwlMarket:
    name = "brickowl"

    def __init__(self, sb):
        self.store = sb.brickowl

    @staticmethod
    def _line(part: str, color: int, qty: int, location: str | None = None, condition: str = "new") -> dict:
        bo_color = colors().bl_to_bo(color)
        boid = f"{BOIDS[part]}-{bo_color}"
        return {"boid": boid, "color_id": bo_color, "ordered_quantity": qty, "personal_note": location or "",
                "full_con": "new" if condition == "new" else "usedg", "ids": [{"id": boid, "type": "boid"}]}

    def add_order(self, status: str, lines: list[tuple], placed: dt.datetime | None = None) -> str:
        return self.store.add_order(status=BO_STATUS[status], lines=[self._line(*line) for line in lines],
                                    order_time=placed)

    def set_status(self, order_id: str, status: str) -> None:
        self.store.set_status(order_id, BO_STATUS[status])

    def line_keys(self, order_id: str) -> list[str]:
        return [line["order_item_id"] for line in self.store.orders[order_id].lines]

    def _current(self, order_id: str) -> list[dict]:
        return [dict(line) for line in self.store.orders[order_id].lines]

    def set_quantity(self, order_id: str, index: int, qty: int) -> None:
        lines = self._current(order_id)
        lines[index]["ordered_quantity"] = qty
        self.store.set_lines(order_id, lines)

    def remove_line(self, order_id: str, index: int) -> None:
        lines = self._current(order_id)
        del lines[index]
        self.store.set_lines(order_id, lines)

    def add_line(self, order_id: str, line: tuple) -> None:
        self.store.set_lines(order_id, self._current(order_id) + [self._line(*line)])

    def set_location(self, order_id: str, index: int, location: str) -> None:
        lines = self._current(order_id)
        lines[index]["personal_note"] = location
        self.store.set_lines(order_id, lines)


MARKETS = {"bricklink": BrickLinkMarket, "brickowl": BrickOwlMarket}


class Shop:
    """The seller's side: inventory, syncs and what the database says."""

    def __init__(self, sb, run, tmp_path):
        self.sb, self.run, self.tmp_path = sb, run, tmp_path
        self.imports = 0
        for base, part in {v: k for k, v in BOIDS.items()}.items():
            result = run("map", base, part)
            assert result.exit_code == 0, result.output

    def import_lots(self, *rows: tuple) -> None:
        """rows: (part, colour, condition, bin, quantity)."""
        self.imports += 1
        path = self.tmp_path / f"inventory{self.imports}.csv"
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["part_number", "color_id", "condition", "location", "quantity"])
            writer.writerows(rows)
        result = self.run("inventory", "import", path)
        assert result.exit_code == 0, result.output

    def sync(self, *args: str, code: int = 0):
        result = self.run("sync", *args)
        assert result.exit_code == code, (result.stdout, result.stderr)
        self.check()
        return result

    def check(self) -> None:
        result = self.run("reserve", "--check")
        assert result.exit_code == 0, result.output

    def query(self, sql: str, params=()) -> list[tuple]:
        with sqlite3.connect(self.tmp_path / DB) as conn:
            return conn.execute(sql, params).fetchall()

    def lot(self, location: str) -> tuple[int, int]:
        """(on hand, reserved) of the lot in ``location``."""
        (row,) = self.query("select quantity, quantity_reserved from inventory where location = ?", [location])
        return row

    def lot_id(self, location: str) -> int:
        return self.query("select id from inventory where location = ?", [location])[0][0]

    def ledger(self, provider: str | None = None, order_id: str | None = None) -> list[tuple]:
        """(line_key, bin, change, consumed, reason) in the order they were written."""
        sql = ("select r.line_key, i.location, r.quantity, r.consumed, r.reason from reservations r "
               "join inventory i on i.id = r.inventory_id")
        params: list = []
        if provider is not None:
            sql += " where r.provider = ? and r.order_id = ?"
            params = [provider, order_id]
        return self.query(sql + " order by r.id", params)

    def ledger_count(self) -> int:
        return self.query("select count(*) from reservations")[0][0]

    def inventory(self) -> list[tuple]:
        return self.query("select location, quantity, quantity_reserved from inventory order by location")

    def lines(self, provider: str, order_id: str) -> list[tuple]:
        """(line_key, bin of the matched lot or None, quantity, match_method, unmatched_reason)."""
        return self.query(
            "select l.line_key, i.location, l.quantity, l.match_method, l.unmatched_reason from order_items l "
            "left join inventory i on i.id = l.inventory_id where l.provider = ? and l.order_id = ? order by l.id",
            [provider, order_id],
        )

    def order(self, provider: str, order_id: str) -> dict | None:
        with sqlite3.connect(self.tmp_path / DB) as conn:
            conn.row_factory = sqlite3.Row
            row = conn.execute("select * from orders where provider = ? and order_id = ?", [provider, order_id]).fetchone()
        return dict(row) if row else None


@pytest.fixture
def shop(creds, run, tmp_path):
    return Shop(creds, run, tmp_path)


@pytest.fixture(params=sorted(MARKETS))
def market(request, creds):
    return MARKETS[request.param](creds)


STOCK = [
    ("3001", 11, "new", "A1", 10),
    ("3003", 5, "used", "B1", 6),
    ("3004", 1, "new", "C1", 8),
]


# --- the first sync ----------------------------------------------------------------------------
def test_first_sync_of_both_marketplaces_stores_orders_and_reserves_their_lines(shop, creds):
    shop.import_lots(*STOCK)
    bl, bo = BrickLinkMarket(creds), BrickOwlMarket(creds)
    bl_id = bl.add_order("paid", [("3001", 11, 3, "A1"), ("3003", 5, 2, "B1", "used")])
    bo_id = bo.add_order("paid", [("3004", 1, 4, "C1"), ("3001", 11, 1, "A1")])

    result = shop.sync()

    assert result.stdout == "" and result.stderr == ""  # off a terminal a clean run prints nothing
    assert shop.order("bricklink", bl_id)["status"] == "paid"
    assert shop.order("bricklink", bl_id)["provider_status"] == "PAID"
    assert shop.order("brickowl", bo_id)["status"] == "paid"
    assert shop.order("brickowl", bo_id)["provider_status"] == "Payment Received"
    assert [(key, where, qty) for key, where, qty, *_ in shop.lines("bricklink", bl_id)] == [
        (key, where, qty) for key, where, qty in zip(bl.line_keys(bl_id), ("A1", "B1"), (3, 2))
    ]
    assert [(key, where, qty) for key, where, qty, *_ in shop.lines("brickowl", bo_id)] == [
        (key, where, qty) for key, where, qty in zip(bo.line_keys(bo_id), ("C1", "A1"), (4, 1))
    ]
    # On hand untouched, reserved = the open lines
    assert shop.inventory() == [("A1", 10, 4), ("B1", 6, 2), ("C1", 8, 4)]
    assert sorted((where, change, reason) for _, where, change, _, reason in shop.ledger()) == [
        ("A1", 1, "reserve"), ("A1", 3, "reserve"), ("B1", 2, "reserve"), ("C1", 4, "reserve"),
    ]
    synced = shop.query("select provider, last_synced_at, last_error from sync_state order by provider")
    assert [(p, bool(at), err) for p, at, err in synced] == [("bricklink", True, None), ("brickowl", True, None)]


def test_orders_are_upserted_by_account_provider_and_order_id(shop, creds):
    """The same order id on both marketplaces is two orders; re-syncing updates rows in place."""
    shop.import_lots(*STOCK)
    bl, bo = BrickLinkMarket(creds), BrickOwlMarket(creds)
    bo_id = bo.add_order("paid", [("3001", 11, 1, "A1")])
    bl_id = str(creds.bricklink.add_order(status="PAID", order_id=int(bo_id), lines=[bl._line("3001", 11, 2, "A1")]))
    assert bl_id == bo_id
    shop.sync()
    rows_before = shop.query("select id, provider, order_id from orders order by id")
    assert sorted((p, o) for _, p, o in rows_before) == [("bricklink", bl_id), ("brickowl", bo_id)]

    bl.set_status(bl_id, "packed")
    bo.set_status(bo_id, "packed")
    shop.sync()
    assert shop.query("select id, provider, order_id from orders order by id") == rows_before
    assert shop.query("select status from orders") == [("packed",), ("packed",)]
    assert shop.lot("A1") == (10, 3)

    other = shop.run("sync", "--account", "shop2", "--new-account")  # another business account in the same file
    assert other.exit_code == 0  # (it has no inventory: its lines are unmatched)
    assert shop.query("select id, provider, order_id from orders where business_account_id = 'default' "
                      "order by id") == rows_before
    assert shop.query("select count(*) from orders where business_account_id = 'shop2'") == [(2,)]
    assert shop.lot("A1") == (10, 3)


# --- lifecycle transitions, both marketplaces --------------------------------------------------
@pytest.mark.parametrize("open_status", ["pending", "paid", "processing", "packed"])
def test_every_open_status_reserves_the_line_quantity(shop, market, open_status):
    shop.import_lots(*STOCK)
    order_id = market.add_order(open_status, [("3001", 11, 3, "A1")])
    shop.sync()
    assert shop.order(market.name, order_id)["status"] == open_status
    assert shop.lot("A1") == (10, 3)
    assert shop.ledger(market.name, order_id) == [(market.line_keys(order_id)[0], "A1", 3, 0, "reserve")]


def test_moving_between_open_statuses_writes_no_ledger_row(shop, market):
    shop.import_lots(*STOCK)
    order_id = market.add_order("pending", [("3001", 11, 3, "A1")])
    shop.sync()
    for status in ("paid", "processing", "packed"):
        market.set_status(order_id, status)
        shop.sync()
        assert shop.order(market.name, order_id)["status"] == status
        assert shop.ledger_count() == 1
        assert shop.lot("A1") == (10, 3)


def test_paid_then_shipped_consumes_the_stock_once(shop, market):
    shop.import_lots(*STOCK)
    order_id = market.add_order("paid", [("3001", 11, 3, "A1"), ("3003", 5, 2, "B1", "used")])
    keys = market.line_keys(order_id)
    shop.sync()
    assert (shop.lot("A1"), shop.lot("B1")) == ((10, 3), (6, 2))

    market.set_status(order_id, "shipped")
    shop.sync()
    assert (shop.lot("A1"), shop.lot("B1")) == ((7, 0), (4, 0))
    assert shop.ledger(market.name, order_id)[2:] == [
        (keys[0], "A1", -3, 3, "shipped"), (keys[1], "B1", -2, 2, "shipped"),
    ]

    for _ in range(2):  # re-syncing a shipped order never consumes again
        shop.sync()
    market.set_status(order_id, "completed")  # shipped -> completed: nothing left to consume
    shop.sync()
    assert shop.order(market.name, order_id)["status"] == "completed"
    assert (shop.lot("A1"), shop.lot("B1")) == ((7, 0), (4, 0))
    assert shop.ledger_count() == 4


def test_paid_straight_to_completed_consumes_once(shop, market):
    shop.import_lots(*STOCK)
    order_id = market.add_order("paid", [("3001", 11, 4, "A1")])
    shop.sync()
    market.set_status(order_id, "completed")
    shop.sync()
    shop.sync()
    assert shop.lot("A1") == (6, 0)
    assert [r[-1] for r in shop.ledger(market.name, order_id)] == ["reserve", "shipped"]


def test_a_shipment_taken_back_returns_its_pieces_and_reserves_them_again(shop, market):
    """A seller who marked an order shipped by mistake steps the status back: the pieces that
    left on hand come back and are reserved again; shipping again takes them once more."""
    shop.import_lots(*STOCK)
    order_id = market.add_order("paid", [("3001", 11, 4, "A1")])
    shop.sync()
    market.set_status(order_id, "shipped")
    shop.sync()
    assert shop.lot("A1") == (6, 0)
    market.set_status(order_id, "packed")
    shop.sync()
    assert shop.lot("A1") == (10, 4)
    assert shop.ledger_count() == 4  # reserve, shipped, unshipped, reserve
    market.set_status(order_id, "shipped")
    shop.sync()
    assert shop.lot("A1") == (6, 0)
    shop.check()


def test_paid_then_cancelled_releases_the_reservation(shop, market):
    shop.import_lots(*STOCK)
    order_id = market.add_order("paid", [("3001", 11, 3, "A1"), ("3004", 1, 5, "C1")])
    keys = market.line_keys(order_id)
    shop.sync()
    market.set_status(order_id, "cancelled")
    shop.sync()
    shop.sync()
    assert (shop.lot("A1"), shop.lot("C1")) == ((10, 0), (8, 0))  # on hand untouched
    assert shop.ledger(market.name, order_id) == [
        (keys[0], "A1", 3, 0, "reserve"), (keys[1], "C1", 5, 0, "reserve"),
        (keys[0], "A1", -3, 0, "cancelled"), (keys[1], "C1", -5, 0, "cancelled"),
    ]


@pytest.mark.parametrize("closed", ["shipped", "completed", "cancelled"])
def test_order_first_seen_closed_is_recorded_without_touching_stock(shop, market, closed):
    """Placed before the stock was counted: history the count already reflects."""
    shop.import_lots(*STOCK)
    last_week = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=7)
    order_id = market.add_order(closed, [("3001", 11, 3, "A1"), ("3004", 1, 2, "C1")], placed=last_week)
    shop.sync()
    assert shop.order(market.name, order_id)["status"] == closed
    assert [(where, qty) for _, where, qty, *_ in shop.lines(market.name, order_id)] == [("A1", 3), ("C1", 2)]
    assert shop.ledger_count() == 0
    assert shop.inventory() == [("A1", 10, 0), ("B1", 6, 0), ("C1", 8, 0)]
    shop.sync()
    assert shop.ledger_count() == 0
    if closed == "shipped":  # shipped -> completed: still nothing was ever reserved here
        market.set_status(order_id, "completed")
        shop.sync()
        assert shop.order(market.name, order_id)["status"] == "completed"
    assert shop.ledger_count() == 0
    assert shop.inventory() == [("A1", 10, 0), ("B1", 6, 0), ("C1", 8, 0)]


def test_quantity_edit_writes_only_the_difference(shop, market):
    shop.import_lots(*STOCK)
    order_id = market.add_order("paid", [("3001", 11, 3, "A1"), ("3004", 1, 2, "C1")])
    keys = market.line_keys(order_id)
    shop.sync()

    market.set_quantity(order_id, 0, 5)
    shop.sync()
    assert shop.lot("A1") == (10, 5)
    assert shop.ledger(market.name, order_id)[-1] == (keys[0], "A1", 2, 0, "reserve")

    market.set_quantity(order_id, 0, 1)
    shop.sync()
    assert shop.lot("A1") == (10, 1)
    assert shop.ledger(market.name, order_id)[-1] == (keys[0], "A1", -4, 0, "adjusted")
    assert shop.lot("C1") == (8, 2)  # the other line untouched
    assert shop.ledger_count() == 4

    market.set_status(order_id, "shipped")  # ships what the order holds now
    shop.sync()
    assert (shop.lot("A1"), shop.lot("C1")) == ((9, 0), (6, 0))


def test_added_items_are_reserved_as_new_lines(shop, market):
    shop.import_lots(*STOCK)
    order_id = market.add_order("paid", [("3001", 11, 3, "A1")])
    shop.sync()
    market.add_line(order_id, ("3001", 11, 2, "A1"))  # BrickLink: a second batch of the same lot
    shop.sync()
    keys = market.line_keys(order_id)
    assert len(keys) == 2
    assert shop.lot("A1") == (10, 5)
    assert shop.ledger(market.name, order_id)[-1] == (keys[1], "A1", 2, 0, "reserve")


def test_items_added_and_shipped_between_two_runs_leave_the_shelf_too(shop, market):
    """The buyer adds a lot and the seller ships before the next sync: the new lot was never
    reserved, but its pieces left the building all the same."""
    shop.import_lots(*STOCK)
    order_id = market.add_order("paid", [("3001", 11, 3, "A1")])
    shop.sync()
    market.add_line(order_id, ("3004", 1, 2, "C1"))
    market.set_status(order_id, "shipped")
    shop.sync()
    keys = market.line_keys(order_id)
    assert (shop.lot("A1"), shop.lot("C1")) == ((7, 0), (6, 0))
    assert shop.ledger(market.name, order_id)[1:] == [
        (keys[0], "A1", -3, 3, "shipped"), (keys[1], "C1", 0, 2, "shipped"),
    ]
    shop.sync()
    assert (shop.lot("A1"), shop.lot("C1")) == ((7, 0), (6, 0))  # once, ever


def test_line_edited_down_while_shipping_consumes_what_shipped(shop, market):
    shop.import_lots(*STOCK)
    order_id = market.add_order("paid", [("3001", 11, 5, "A1")])
    shop.sync()
    market.set_quantity(order_id, 0, 2)
    market.set_status(order_id, "shipped")
    shop.sync()
    assert shop.lot("A1") == (8, 0)


def test_zero_quantity_line_is_matched_but_reserves_nothing(shop, market):
    """A line refunded down to nothing still shows its bin and is not reported as unmatched."""
    shop.import_lots(*STOCK)
    order_id = market.add_order("paid", [("3001", 11, 2, "A1"), ("3004", 1, 1, "C1")])
    shop.sync()
    market.set_quantity(order_id, 1, 0)
    result = shop.sync()
    assert "unmatched" not in result.stderr
    assert [(where, qty) for _, where, qty, *_ in shop.lines(market.name, order_id)] == [("A1", 2), ("C1", 0)]
    assert (shop.lot("A1"), shop.lot("C1")) == ((10, 2), (8, 0))


def test_removed_line_is_released(shop, market):
    shop.import_lots(*STOCK)
    order_id = market.add_order("paid", [("3001", 11, 3, "A1"), ("3004", 1, 2, "C1")])
    removed = market.line_keys(order_id)[1]
    shop.sync()
    market.remove_line(order_id, 1)
    shop.sync()
    shop.sync()
    assert (shop.lot("A1"), shop.lot("C1")) == ((10, 3), (8, 0))
    assert shop.ledger(market.name, order_id)[-1] == (removed, "C1", -2, 0, "line-removed")
    assert [key for key, *_ in shop.lines(market.name, order_id)] == market.line_keys(order_id)
    assert shop.ledger_count() == 3


def test_cancelled_order_that_reopens_is_reserved_again(shop, market):
    shop.import_lots(*STOCK)
    order_id = market.add_order("paid", [("3001", 11, 3, "A1")])
    shop.sync()
    market.set_status(order_id, "cancelled")
    shop.sync()
    market.set_status(order_id, "paid")
    shop.sync()
    assert shop.lot("A1") == (10, 3)
    assert [r[-1] for r in shop.ledger(market.name, order_id)] == ["reserve", "cancelled", "reserve"]


# --- matching ----------------------------------------------------------------------------------
def test_location_names_the_lot_else_most_available_stock(shop, market):
    shop.import_lots(("3001", 11, "new", "A1", 5), ("3001", 11, "new", "A2", 50), ("3001", 11, "new", "A3", 20))
    order_id = market.add_order("paid", [
        ("3001", 11, 1, "A1"),   # the bin names a lot: that one, though A2 has far more
        ("3001", 11, 2, None),   # no bin: the lot with the most available stock
        ("3001", 11, 3, "Z9"),   # a bin that names no lot: as if none were given
    ])  # fmt: skip
    shop.sync()
    lines = shop.lines(market.name, order_id)
    assert [(where, method) for _, where, _, method, _ in lines] == [
        ("A1", "location"), ("A2", "best-stock"), ("A2", "best-stock"),
    ]
    assert (shop.lot("A1"), shop.lot("A2"), shop.lot("A3")) == ((5, 1), (50, 5), (20, 0))


def test_best_stock_counts_what_is_already_reserved(shop, market):
    shop.import_lots(("3001", 11, "new", "A1", 10), ("3001", 11, "new", "A2", 8))
    first = market.add_order("paid", [("3001", 11, 5)])
    shop.sync()
    second = market.add_order("paid", [("3001", 11, 1)])
    shop.sync()
    assert shop.lines(market.name, first)[0][1] == "A1"  # 10 available beats 8
    assert shop.lines(market.name, second)[0][1] == "A2"  # now 5 available on A1 against 8 on A2


def test_a_matched_line_keeps_its_lot_when_the_order_changes(shop, market):
    """Reservations do not hop between bins from one run to the next."""
    shop.import_lots(("3001", 11, "new", "A1", 10), ("3001", 11, "new", "A2", 8))
    order_id = market.add_order("paid", [("3001", 11, 5), ("3004", 1, 1, "C1")])
    shop.import_lots(("3004", 1, "new", "C1", 3))
    shop.sync()
    assert shop.lot("A1") == (10, 5)  # now 5 available on A1, 8 on A2
    market.set_quantity(order_id, 1, 2)  # some other change makes the order re-fetched
    shop.sync()
    assert shop.lines(market.name, order_id)[0][1] == "A1"
    assert (shop.lot("A1"), shop.lot("A2")) == ((10, 5), (8, 0))


@pytest.mark.parametrize("line,reason", [
    (("3626", 11, 2, "A1"), "no inventory lot for 3626 colour 11 new"),       # part not stocked
    (("3001", 5, 2, "A1"), "no inventory lot for 3001 colour 5 new"),         # stocked part, other colour
    (("3001", 11, 2, "A1", "used"), "no inventory lot for 3001 colour 11 used"),  # other condition
])  # fmt: skip
def test_unmatched_lines_are_kept_and_reported_once(shop, creds, line, reason):
    shop.import_lots(*STOCK)
    bl, bo = BrickLinkMarket(creds), BrickOwlMarket(creds)
    bl_id = bl.add_order("paid", [("3001", 11, 1, "A1"), line])
    bo_id = bo.add_order("paid", [line])

    result = shop.sync()

    problems = result.stderr.splitlines()
    assert problems == [
        f"bricklink order {bl_id}: line {bl.line_keys(bl_id)[1]} ({' '.join(map(str, line[:2]))} "
        f"{line[4] if len(line) > 4 else 'new'}) unmatched: {reason}",
        f"brickowl order {bo_id}: line {bo.line_keys(bo_id)[0]} ({' '.join(map(str, line[:2]))} "
        f"{line[4] if len(line) > 4 else 'new'}) unmatched: {reason}",
    ]
    assert shop.lines("bricklink", bl_id)[1] == (bl.line_keys(bl_id)[1], None, 2, None, reason)
    assert shop.lines("brickowl", bo_id) == [(bo.line_keys(bo_id)[0], None, 2, None, reason)]
    assert shop.ledger_count() == 1  # only the matched line
    orders = shop.run("orders", "--json")
    assert sorted(row["unmatched_lines"] for row in json.loads(orders.stdout)) == [1, 1]

    again = shop.sync()
    assert again.stderr == ""  # reported when it appears, not every 15 minutes
    bl.set_status(bl_id, "packed")  # re-fetched but still unmatched the same way: no repeat either
    assert shop.sync().stderr == ""


def test_unmatched_line_on_a_closed_order_is_not_reported(shop, market):
    shop.import_lots(*STOCK)
    market.add_order("shipped", [("3001", 5, 2, "A1")])
    result = shop.sync()
    assert result.stderr == ""
    assert shop.query("select count(*) from order_items where inventory_id is null") == [(1,)]


def test_line_whose_bin_changes_moves_its_reservation(shop, market):
    """The seller re-files a lot: the line's bin (BrickLink remarks / BrickOwl personal note) now
    names another lot. Seen when the order is next re-fetched; the reservation moves with a
    matching pair of ledger rows."""
    shop.import_lots(("3001", 11, "new", "A1", 10), ("3001", 11, "new", "A2", 10))
    order_id = market.add_order("paid", [("3001", 11, 3, "A1")])
    key = market.line_keys(order_id)[0]
    shop.sync()
    market.set_location(order_id, 0, "A2")
    market.set_status(order_id, "packed")
    shop.sync()
    assert (shop.lot("A1"), shop.lot("A2")) == ((10, 0), (10, 3))
    assert shop.ledger(market.name, order_id)[1:] == [(key, "A1", -3, 0, "rematched"), (key, "A2", 3, 0, "reserve")]
    assert shop.lines(market.name, order_id)[0][1:4] == ("A2", 3, "location")
    market.set_status(order_id, "shipped")
    shop.sync()
    assert (shop.lot("A1"), shop.lot("A2")) == ((10, 0), (7, 0))


# --- statuses outside the usual path ----------------------------------------------------------
def test_unknown_status_keeps_stock_reserved_with_one_warning(shop, creds):
    shop.import_lots(*STOCK)
    bl = BrickLinkMarket(creds)
    order_id = bl.add_order("paid", [("3001", 11, 3, "A1")])
    shop.sync()
    creds.bricklink.set_status(int(order_id), "HOLDING")  # a status marketsync has never heard of
    result = shop.sync()
    assert result.stderr.splitlines() == [
        f"bricklink order {order_id} has an unknown status 'HOLDING'; its stock stays reserved"
    ]
    assert shop.order("bricklink", order_id)["status"] == "unknown"
    assert shop.lot("A1") == (10, 3)
    assert shop.ledger_count() == 1
    assert shop.sync().stderr == ""  # unchanged since: nothing new to say

    bl.set_status(order_id, "shipped")
    shop.sync()
    assert shop.lot("A1") == (7, 0)


def test_unknown_status_first_seen_is_reserved(shop, creds):
    shop.import_lots(*STOCK)
    BrickLinkMarket(creds).add_order("unknown", [("3001", 11, 2, "A1")])
    result = shop.sync()
    assert "unknown status 'HOLDING'" in result.stderr and len(result.stderr.splitlines()) == 1
    assert shop.lot("A1") == (10, 2)


def test_disputed_order_stays_reserved_until_it_is_cancelled(shop, creds):
    shop.import_lots(*STOCK)
    bl = BrickLinkMarket(creds)
    order_id = bl.add_order("paid", [("3001", 11, 3, "A1")])
    shop.sync()
    for raw in ("NPB", "OCR", "NSS"):
        creds.bricklink.set_status(int(order_id), raw)
        result = shop.sync()
        assert result.stderr == ""
        assert shop.order("bricklink", order_id)["status"] == "disputed"
        assert shop.lot("A1") == (10, 3)
        assert shop.ledger_count() == 1
    creds.bricklink.set_status(int(order_id), "CANCELLED")
    shop.sync()
    assert shop.order("bricklink", order_id)["status"] == "cancelled"
    assert shop.lot("A1") == (10, 0)
    assert shop.ledger("bricklink", order_id)[-1][-1] == "cancelled"


def test_a_purged_order_keeps_what_was_stored_and_is_never_fetched_again(shop, creds):
    """BrickLink deletes an order's details about six months on (PURGED): the order and its
    lines stay as they were, marked purged, nothing more is fetched, no stock moves, no error."""
    shop.import_lots(*STOCK)
    bl = BrickLinkMarket(creds)
    order_id = bl.add_order("paid", [("3001", 11, 3, "A1")])
    shop.sync()
    creds.bricklink.set_status(int(order_id), "SHIPPED")
    shop.sync()
    assert shop.lot("A1") == (7, 0)
    lines_before = shop.lines("bricklink", order_id)
    creds.bricklink.set_status(int(order_id), "PURGED")
    creds.reset_calls()
    for _ in range(2):
        assert shop.sync().stderr == ""
    assert creds.calls[("bricklink", "GET /orders/{id}/items")] == 0
    stored = shop.order("bricklink", order_id)
    assert (stored["status"], stored["provider_status"]) == ("shipped", "PURGED")
    assert shop.lines("bricklink", order_id) == lines_before and lines_before
    assert shop.lot("A1") == (7, 0)
    first_seen = bl.add_order("paid", [("3001", 11, 1, "A1")])
    creds.bricklink.set_status(int(first_seen), "PURGED")
    assert shop.sync().exit_code == 0
    assert shop.order("bricklink", first_seen)["provider_status"] == "PURGED" and shop.lot("A1") == (7, 0)


def test_an_open_brickowl_order_that_vanishes_is_reported_every_run_until_released(shop, creds):
    shop.import_lots(*STOCK)
    bo = BrickOwlMarket(creds)
    order_id = bo.add_order("paid", [("3001", 11, 3, "A1")])
    shop.sync()
    creds.brickowl.orders.pop(str(order_id))
    for _ in range(2):
        result = shop.sync()
        assert result.stderr.splitlines() == [
            f"brickowl: order {order_id} is open here but BrickOwl no longer has it (not listed, view 404); its "
            f"stock stays reserved until you run 'marketsync reserve --release brickowl:{order_id}'"]
        assert shop.lot("A1") == (10, 3)
    assert shop.run("reserve", "--release", f"brickowl:{order_id}", "--yes").exit_code == 0
    # released: not open any more, so not looked for again
    assert shop.sync().stderr == "" and shop.lot("A1") == (10, 0)


def test_brickowl_on_hold_stays_reserved(shop, creds):
    shop.import_lots(*STOCK)
    bo = BrickOwlMarket(creds)
    order_id = bo.add_order("paid", [("3001", 11, 3, "A1")])
    shop.sync()
    creds.brickowl.set_status(order_id, "On Hold")
    shop.sync()
    assert shop.order("brickowl", order_id)["provider_status"] == "On Hold"
    assert shop.lot("A1") == (10, 3)
    assert shop.ledger_count() == 1


def test_open_bricklink_order_that_gets_filed_is_still_followed(shop, creds):
    """BrickLink hides filed orders from its default list: an open order we hold that leaves it
    is looked for among the filed ones, so its shipping still consumes the stock."""
    shop.import_lots(*STOCK)
    bl = BrickLinkMarket(creds)
    order_id = bl.add_order("paid", [("3001", 11, 3, "A1")])
    shop.sync()
    creds.bricklink.set_filed(int(order_id))
    creds.reset_calls()
    shop.sync()
    assert creds.calls[("bricklink", "GET /orders")] == 2  # unfiled, then filed
    assert shop.lot("A1") == (10, 3)
    bl.set_status(order_id, "shipped")
    shop.sync()
    assert shop.lot("A1") == (7, 0)
    assert shop.order("bricklink", order_id)["status"] == "shipped"


# --- oversold ---------------------------------------------------------------------------------
def test_oversold_lot_is_reported_and_listed(shop, creds, run):
    shop.import_lots(("3001", 11, "new", "A1", 4))
    bl, bo = BrickLinkMarket(creds), BrickOwlMarket(creds)
    bl.add_order("paid", [("3001", 11, 3, "A1")])
    bo.add_order("paid", [("3001", 11, 3, "A1")])
    result = shop.sync()  # both reserve: 6 on 4; still a clean exit, the seller must act
    lot = shop.lot_id("A1")
    assert result.stderr.splitlines() == [
        f"oversold: lot {lot} (3001 colour 11 new at A1) has 6 reserved but 4 on hand"
    ]
    listed = run("inventory", "list", "--oversold", "--json")
    assert [(r["id"], r["available"]) for r in json.loads(listed.stdout)] == [(lot, -2)]
    status = run("status", "--json")
    assert [r["id"] for r in json.loads(status.stdout)["oversold_lots"]] == [lot]
    assert shop.sync().stderr == ""


# --- one provider at a time ---------------------------------------------------------------------
def test_provider_filter_syncs_only_that_marketplace(shop, creds):
    shop.import_lots(*STOCK)
    bl_id = BrickLinkMarket(creds).add_order("paid", [("3001", 11, 3, "A1")])
    bo_id = BrickOwlMarket(creds).add_order("paid", [("3004", 1, 2, "C1")])

    shop.sync("--provider", "brickowl")
    assert {provider for provider, _ in creds.calls} == {"brickowl"}
    assert shop.query("select provider, order_id from orders") == [("brickowl", bo_id)]
    assert shop.query("select provider from sync_state") == [("brickowl",)]
    assert shop.inventory() == [("A1", 10, 0), ("B1", 6, 0), ("C1", 8, 2)]

    creds.reset_calls()
    shop.sync("-p", "bricklink")
    assert {provider for provider, _ in creds.calls} == {"bricklink"}
    assert sorted(shop.query("select provider, order_id from orders")) == [("bricklink", bl_id), ("brickowl", bo_id)]
    assert shop.inventory() == [("A1", 10, 3), ("B1", 6, 0), ("C1", 8, 2)]


def test_provider_filter_needs_that_providers_credentials(shop, monkeypatch):
    monkeypatch.delenv("BRICKOWL_API_KEY")
    result = shop.run("sync", "--provider", "brickowl")
    assert result.exit_code == 2
    assert "BRICKOWL_API_KEY" in result.stderr
    result = shop.run("sync", "--provider", "ebay")
    assert result.exit_code == 2


def test_one_provider_failing_never_stops_the_other(shop, creds):
    shop.import_lots(*STOCK)
    bl_id = BrickLinkMarket(creds).add_order("paid", [("3001", 11, 3, "A1")])
    bo_id = BrickOwlMarket(creds).add_order("paid", [("3004", 1, 2, "C1")])
    creds.inject("bricklink", "GET /orders", "auth_in_200")

    result = shop.sync(code=1)

    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("Error: bricklink:")
    assert shop.query("select provider, order_id from orders") == [("brickowl", bo_id)]
    assert shop.lot("C1") == (8, 2)
    state = dict(shop.query("select provider, last_synced_at from sync_state"))
    assert state["bricklink"] is None and state["brickowl"] is not None

    result = shop.sync()  # the fault is gone: BrickLink catches up, BrickOwl has nothing new
    assert result.stderr == ""
    assert sorted(shop.query("select provider, order_id from orders")) == [("bricklink", bl_id), ("brickowl", bo_id)]
    assert shop.lot("A1") == (10, 3)


def test_orders_written_before_a_provider_fails_are_kept(shop, creds):
    """Each order commits whole: a run stopped part-way (here by the daily call budget) keeps the
    orders it finished, does not advance last_synced_at, and the next run does the rest."""
    shop.import_lots(*STOCK)
    bl = BrickLinkMarket(creds)
    first = bl.add_order("paid", [("3001", 11, 1, "A1")])
    shop.sync("-p", "bricklink")  # 2 list calls (unfiled + filed) and 1 items call
    synced_at = shop.query("select last_synced_at from sync_state")[0][0]
    more = [bl.add_order("paid", [("3004", 1, 1, "C1")]) for _ in range(3)]

    # 3 calls used today: this run may list once and fetch one order's items, then must stop
    result = shop.sync("-p", "bricklink", "--bricklink-budget", "5", "--concurrency", "1", code=1)

    assert result.stderr.splitlines() == [
        "Error: bricklink: daily API budget of 5 calls used up; the rest resumes on the next run after "
        "00:00 UTC (1 orders saved this run)"
    ]
    assert len(shop.query("select order_id from orders")) == 2
    assert shop.lot("C1") == (8, 1)
    state = shop.query("select last_synced_at, last_error from sync_state")[0]
    assert state[0] == synced_at and "budget" in state[1]

    shop.sync("-p", "bricklink")
    assert sorted(o for (o,) in shop.query("select order_id from orders")) == sorted([first, *more])
    assert shop.inventory() == [("A1", 10, 1), ("B1", 6, 0), ("C1", 8, 3)]
    assert shop.ledger_count() == 4
