"""Writes ``reservations``, the ledger, and moves the lots' counters with it in the same
transaction, so ``inventory.quantity_reserved`` always equals the sum of a lot's ledger rows."""

from __future__ import annotations

from marketsync.store.base import Store


from marketsync.rules.ledger import Booking, Holding, Short
from marketsync.model import now_iso
from marketsync.store import inventory

CHUNK = 500  # bound variables per statement stay far below SQLite's limit


def holdings(store: Store, order_refs: list[int]) -> dict[int, dict[str, Holding]]:
    """What the ledger holds for each line of these orders: order_ref -> line_key -> Holding."""
    db = store.db
    state: dict[int, dict[str, Holding]] = {}
    for start in range(0, len(order_refs), CHUNK):
        part = order_refs[start:start + CHUNK]
        rows = db.execute(
            "select order_ref, line_key, inventory_id, sum(quantity), sum(consumed), sum(taken) from reservations "
            f"where order_ref in ({', '.join('?' for _ in part)}) group by order_ref, line_key, inventory_id",
            part,
        )
        for ref, line_key, lot, held, consumed, taken in rows:
            holding = state.setdefault(ref, {}).setdefault(line_key, Holding({}, 0, {}, {}))
            if held:
                holding.held[lot] = held
            if consumed:
                holding.consumed_on[lot] = consumed
            if taken and holding.taken_on is not None:
                holding.taken_on[lot] = taken
            holding.consumed += consumed or 0
    return state


def shortfalls(store: Store, lot_ids: list[int]) -> dict[int, list[Short]]:
    """lot -> the shortfalls of its shipments since its on hand was last established (``stocked_at``):
    each line's pieces shipped from it beyond what they took off on hand and nobody made up yet
    (``consumed - taken`` of its rows), oldest first."""
    found: dict[int, list[Short]] = {}
    for start in range(0, len(lot_ids), CHUNK):
        part = lot_ids[start:start + CHUNK]
        rows = store.db.execute(
            "select r.inventory_id, r.order_ref, r.provider, r.order_id, r.line_key, "
            "sum(r.consumed) - sum(r.taken) from reservations r join inventory i on i.id = r.inventory_id "
            f"where r.inventory_id in ({', '.join('?' for _ in part)}) and r.created_at >= coalesce(i.stocked_at, '') "
            "group by r.inventory_id, r.order_ref, r.line_key having sum(r.consumed) - sum(r.taken) > 0 "
            "order by min(r.id)", part)
        for lot, ref, provider, order_id, line_key, pieces in rows:
            found.setdefault(lot, []).append(Short(ref, provider, order_id, line_key, pieces))
    return found


def record(store: Store, bookings: list[Booking]) -> None:
    """Every ledger row of the bookings, then each lot's counters moved once by the sum of its
    deltas (``taken`` pieces leave on hand; negative ones, a shipment taken back, return). The
    deltas were bounded in order by ``ledger.move_index``, so the sum is what order by order
    would leave. The caller holds the transaction."""
    db, account = store.db, store.account
    now = now_iso()
    rows: list[tuple] = []
    totals: dict[int, tuple[int, int]] = {}
    for booking in bookings:
        for d in booking.deltas:
            rows.append((account, d.inventory_id, booking.order_ref, booking.provider, booking.order_id, d.line_key,
                         d.quantity, d.consumed, d.taken, d.reason, now))
            reserved, taken = totals.get(d.inventory_id, (0, 0))
            totals[d.inventory_id] = (reserved + d.quantity, taken + (d.taken or 0))
    if not rows:
        return
    db.conn.executemany(
        "insert into reservations (business_account_id, inventory_id, order_ref, provider, order_id, "
        "line_key, quantity, consumed, taken, reason, created_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    inventory.move_counters(store, totals)


def repair_counters(store: Store) -> list[tuple[int, str, int, str, str, int, int]]:
    """Set each lot's ``quantity_reserved`` to the sum of its ledger rows wherever the two differ
    (the ledger is the truth). Returns (lot, part, colour, condition, bin, before, after) of every
    lot changed. On hand is not touched: it cannot be derived from the ledger. The caller holds
    the transaction."""
    db, account = store.db, store.account
    drift = db.execute(
        "select i.id, i.part_number, i.color_id, i.condition, i.location, i.quantity_reserved, "
        "coalesce(sum(r.quantity), 0) from inventory i left join reservations r on r.inventory_id = i.id "
        "where i.business_account_id = ? group by i.id "
        "having i.quantity_reserved != coalesce(sum(r.quantity), 0) order by i.id",
        [account],
    ).fetchall()
    inventory.set_reserved(store, {row[0]: row[6] for row in drift})
    return [tuple(row) for row in drift]
