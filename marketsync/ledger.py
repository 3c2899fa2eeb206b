"""The reservation ledger: the only code that changes ``quantity_reserved``.

Every change of a lot's reservation is a ledger row keyed by (order, line, lot), and the
lot's counter moves by the same amount in the same transaction, so
``inventory.quantity_reserved`` always equals the sum of its ledger rows. A line's wanted
reservation follows from its order's status; only the *difference* from what the ledger
already holds for that line is written, which is what makes every run idempotent.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlite_utils import Database

from marketsync.db import now_iso
from marketsync.matching import LotIndex
from marketsync.providers.records import OPEN_STATUSES, SHIPPED_STATUSES


@dataclass
class LineTarget:
    line_key: str
    inventory_id: int | None
    quantity: int


@dataclass
class Delta:
    inventory_id: int
    line_key: str
    quantity: int  # signed change of quantity_reserved
    consumed: int  # pieces that left the building (on-hand reduced)
    reason: str


@dataclass
class Holding:
    held: dict[int, int]  # lot -> reserved pieces
    consumed: int


_NOTHING_HELD = Holding({}, 0)  # a line with no ledger rows (read only, never mutated)


def holdings(db: Database, order_ref: int) -> dict[str, Holding]:
    state: dict[str, Holding] = defaultdict(lambda: Holding({}, 0))
    rows = db.execute(
        "select line_key, inventory_id, sum(quantity), sum(consumed) from reservations "
        "where order_ref = ? group by line_key, inventory_id",
        [order_ref],
    )
    for line_key, lot, held, consumed in rows:
        holding = state[line_key]
        if held:
            holding.held[lot] = held
        holding.consumed += consumed or 0
    return dict(state)


def plan(status: str, manual_release: bool, targets: list[LineTarget], state: dict[str, Holding]) -> list[Delta]:
    """The ledger rows that bring every line of one order to what its status asks for."""
    is_open = status in OPEN_STATUSES and not manual_release
    shipped = status in SHIPPED_STATUSES and not manual_release
    # Only an order we followed while it was open consumes stock when it ships; one first seen
    # shipped is history the inventory already reflects.
    followed = bool(state)
    deltas: list[Delta] = []
    present = {t.line_key: t for t in targets}
    for line_key in list(present) + [k for k in state if k not in present]:
        target = present.get(line_key)
        holding = state.get(line_key, _NOTHING_HELD)
        if shipped and followed and target is not None:
            deltas += _ship(line_key, target, holding)
            continue
        wanted: dict[int, int] = {}
        if target is not None and is_open and target.inventory_id is not None:
            pieces = max(0, target.quantity - holding.consumed)  # shipped pieces are never re-reserved
            if pieces:
                wanted[target.inventory_id] = pieces
        if not holding.held:  # nothing held yet (every line of a new order): at most one reservation
            deltas += [Delta(lot, line_key, pieces, 0, "reserve") for lot, pieces in wanted.items()]
            continue
        for lot in sorted(set(wanted) | set(holding.held)):
            change = wanted.get(lot, 0) - holding.held.get(lot, 0)
            if not change:
                continue
            if change > 0:
                reason = "reserve"
            elif target is None:
                reason = "line-removed"
            elif manual_release:
                reason = "manual-release"
            elif status == "cancelled":
                reason = "cancelled"
            elif wanted:
                reason = "rematched" if lot not in wanted else "adjusted"
            else:
                reason = "unmatched"
            deltas.append(Delta(lot, line_key, change, 0, reason))
    return deltas


def _ship(line_key: str, target: LineTarget, holding: Holding) -> list[Delta]:
    """Release the line's reservations and take its pieces off the shelf, once ever.

    Pieces come off the lots that held them first; pieces never reserved (a batch added and
    shipped between two runs) come off the matched lot.
    """
    remaining = max(0, target.quantity - holding.consumed)
    deltas = []
    for lot in sorted(holding.held):
        used = min(holding.held[lot], remaining)
        remaining -= used
        deltas.append(Delta(lot, line_key, -holding.held[lot], used, "shipped"))
    if remaining and target.inventory_id is not None:
        deltas.append(Delta(target.inventory_id, line_key, 0, remaining, "shipped"))
    return deltas


def apply(
    db: Database,
    *,
    account: str,
    order_ref: int,
    provider: str,
    order_id: str,
    deltas: list[Delta],
    index: LotIndex | None = None,
) -> None:
    """Write the ledger rows and move the lot counters; the caller holds the transaction."""
    if not deltas:
        return
    now = now_iso()
    db.conn.executemany(
        "insert into reservations (business_account_id, inventory_id, order_ref, provider, order_id, "
        "line_key, quantity, consumed, reason, created_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(account, d.inventory_id, order_ref, provider, order_id, d.line_key, d.quantity, d.consumed, d.reason, now)
         for d in deltas],
    )
    db.conn.executemany(
        "update inventory set quantity_reserved = quantity_reserved + ?, "
        "quantity = max(0, quantity - ?), updated_at = ? where id = ?",
        [(d.quantity, d.consumed, now, d.inventory_id) for d in deltas],
    )
    if index is not None:
        move_index(index, deltas)


def move_index(index: LotIndex, deltas: list[Delta]) -> None:
    """The in-memory side of apply(): the lots' counters as the deltas leave them."""
    for d in deltas:
        lot = index.by_id.get(d.inventory_id)
        if lot is not None:
            lot.reserved += d.quantity
            lot.quantity = max(0, lot.quantity - d.consumed)


def holdings_of(db: Database, order_refs: list[int]) -> dict[int, dict[str, Holding]]:
    """holdings() of many orders at once: order_ref -> line_key -> Holding."""
    state: dict[int, dict[str, Holding]] = {}
    for start in range(0, len(order_refs), 500):
        part = order_refs[start:start + 500]
        rows = db.execute(
            "select order_ref, line_key, inventory_id, sum(quantity), sum(consumed) from reservations "
            f"where order_ref in ({', '.join('?' for _ in part)}) group by order_ref, line_key, inventory_id",
            part,
        )
        for ref, line_key, lot, held, consumed in rows:
            holding = state.setdefault(ref, {}).setdefault(line_key, Holding({}, 0))
            if held:
                holding.held[lot] = held
            holding.consumed += consumed or 0
    return state


def apply_many(db: Database, *, account: str, booked: list[tuple[int, str, str, list[Delta]]]) -> None:
    """apply() for a batch of orders, (order_ref, provider, order_id, deltas) each, whose deltas are
    already in the index (move_index): every ledger row, then each lot's counters moved once by
    the sum of its deltas -- the same end state as order by order, since consumed is never
    negative (max(0, q - a - b) == max(0, max(0, q - a) - b)). The caller holds the transaction."""
    now = now_iso()
    rows, totals = [], {}
    for order_ref, provider, order_id, deltas in booked:
        for d in deltas:
            rows.append((account, d.inventory_id, order_ref, provider, order_id, d.line_key, d.quantity,
                         d.consumed, d.reason, now))
            total = totals.setdefault(d.inventory_id, [0, 0])
            total[0] += d.quantity
            total[1] += d.consumed
    if not rows:
        return
    db.conn.executemany(
        "insert into reservations (business_account_id, inventory_id, order_ref, provider, order_id, "
        "line_key, quantity, consumed, reason, created_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    db.conn.executemany(
        "update inventory set quantity_reserved = quantity_reserved + ?, "
        "quantity = max(0, quantity - ?), updated_at = ? where id = ?",
        [(reserved, consumed, now, lot) for lot, (reserved, consumed) in totals.items()],
    )


def reconcile_order(
    db: Database,
    *,
    account: str,
    order_ref: int,
    provider: str,
    order_id: str,
    status: str,
    manual_release: bool,
    targets: list[LineTarget],
    index: LotIndex | None = None,
) -> list[Delta]:
    deltas = plan(status, manual_release, targets, holdings(db, order_ref))
    apply(db, account=account, order_ref=order_ref, provider=provider, order_id=order_id, deltas=deltas, index=index)
    return deltas
