"""Writes ``inventory``: lots from imports and pulls (:func:`upsert_lots`) and the stock counters
the ledger moves (:func:`move_counters`, called by :mod:`marketsync.store.ledger` only)."""

from __future__ import annotations

from marketsync.store.base import Store

from typing import Iterable


from marketsync.rules.matching import Lot, LotIndex
from marketsync.model import InventoryLot, now_iso
from marketsync.store.orders import money


def upsert_lots(store: Store, lots: Iterable[InventoryLot]) -> tuple[int, int, int]:
    """Insert or update lots by their unique key (reservations are never touched); returns
    (inserted, changed, unchanged): a lot whose figures are the same is left alone."""
    db, account = store.db, store.account
    now = now_iso()
    rows = [
        (account, lot.part_number, lot.color_id, lot.condition, lot.location or "", lot.quantity,
         lot.bricklink_lot_id, lot.name, lot.item_type, money(lot.price), now, now, now)
        for lot in lots
    ]
    count = "select count(*) from inventory where business_account_id = ?"
    before, changes = db.execute(count, [account]).fetchone()[0], db.conn.total_changes
    db.conn.executemany(
        "insert into inventory (business_account_id, part_number, color_id, condition, location, quantity, "
        "quantity_reserved, bricklink_lot_id, name, item_type, price, created_at, updated_at, stocked_at) "
        "values (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?) "
        "on conflict (business_account_id, part_number, color_id, condition, location) do update set "
        "quantity = excluded.quantity, "
        "stocked_at = case when quantity is not excluded.quantity then excluded.stocked_at else stocked_at end, "
        "bricklink_lot_id = coalesce(excluded.bricklink_lot_id, bricklink_lot_id), "
        "name = coalesce(excluded.name, name), item_type = coalesce(excluded.item_type, item_type), "
        "price = coalesce(excluded.price, price), updated_at = excluded.updated_at "
        "where quantity is not excluded.quantity "
        "or bricklink_lot_id is not coalesce(excluded.bricklink_lot_id, bricklink_lot_id) "
        "or name is not coalesce(excluded.name, name) or item_type is not coalesce(excluded.item_type, item_type) "
        "or price is not coalesce(excluded.price, price)",
        rows,
    )
    inserted = db.execute(count, [account]).fetchone()[0] - before
    changed = db.conn.total_changes - changes - inserted
    return inserted, changed, len(rows) - inserted - changed


def lots(store: Store) -> list[Lot]:
    """Every lot of the account; the values many lots repeat (part, condition, the time a pull
    stocked them all) are one object each, not one per lot (a store of 100,000 lots)."""
    db, account = store.db, store.account
    rows = db.execute(
        "select id, part_number, color_id, condition, location, quantity, quantity_reserved, bricklink_lot_id, "
        "stocked_at from inventory where business_account_id = ? order by id",
        [account],
    )
    seen: dict[str, str] = {}
    return [Lot(lot_id, seen.setdefault(part, part), color, seen.setdefault(condition, condition), location,
                quantity, reserved, link, stocked_at if stocked_at is None else seen.setdefault(stocked_at, stocked_at))
            for lot_id, part, color, condition, location, quantity, reserved, link, stocked_at in rows]


def lot_index(store: Store, *, lazy: bool = False) -> LotIndex:
    """The account's lots in memory for one run, reloadable after a rolled-back transaction
    (``lazy``: read when first used, see :class:`LotIndex`)."""
    return LotIndex(lambda: lots(store), lazy=lazy)


def has_lot(store: Store, lot_id: int) -> bool:
    return bool(store.db.execute("select 1 from inventory where business_account_id = ? and id = ?",
                                 [store.account, lot_id]).fetchone())


def mark_stocked(store: Store, lot_ids: Iterable[int]) -> None:
    """These lots' on hand was established now (a count, a pull, an adopted figure)."""
    db = store.db
    now = now_iso()
    db.conn.executemany("update inventory set stocked_at = ? where id = ?", [(now, lot) for lot in lot_ids])


def move_counters(store: Store, totals: dict[int, tuple[int, int]]) -> None:
    """lot -> (change of quantity_reserved, pieces taken off on hand): negative ones return."""
    db = store.db
    now = now_iso()
    db.conn.executemany(
        "update inventory set quantity_reserved = quantity_reserved + ?, "
        "quantity = max(0, quantity - ?), updated_at = ? where id = ?",
        [(reserved, consumed, now, lot) for lot, (reserved, consumed) in totals.items()],
    )


def move_on_hand(store: Store, moves: list[tuple[int, int]]) -> None:
    """(lot, change of on hand) in this order, each clamped at 0 as :func:`move_counters` does."""
    now = now_iso()
    store.db.conn.executemany("update inventory set quantity = max(0, quantity + ?), updated_at = ? where id = ?",
                              [(change, now, lot) for lot, change in moves])


def set_reserved(store: Store, reserved: dict[int, int]) -> None:
    """lot -> its new ``quantity_reserved``: only ``reserve --repair`` sets a counter outright
    (through :func:`marketsync.store.ledger.repair_counters`, to what the ledger sums to)."""
    db = store.db
    now = now_iso()
    db.conn.executemany("update inventory set quantity_reserved = ?, updated_at = ? where id = ?",
                        [(value, now, lot) for lot, value in reserved.items()])
