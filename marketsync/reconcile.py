"""``marketsync reserve``: re-match lines against the current inventory, rewrite only the
ledger deltas, verify every invariant, and release orders by hand."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlite_utils import Database

from marketsync import ledger, store
from marketsync.errors import MarketsyncError
from marketsync.matching import LotIndex
from marketsync.providers import bricklink, brickowl
from marketsync.providers.records import OPEN_STATUSES, OrderLine


@dataclass
class Change:
    provider: str
    order_id: str
    line_key: str
    inventory_id: int
    quantity: int
    reason: str

    def __str__(self) -> str:
        verb = "reserved" if self.quantity > 0 else "released"
        return (f"{self.provider} order {self.order_id} line {self.line_key}: {verb} {abs(self.quantity)} "
                f"on lot {self.inventory_id} ({self.reason})")


def rebuild_line(row: dict) -> OrderLine:
    """The order line as the marketplace sent it (from the stored raw payload)."""
    raw = json.loads(row["raw"] or "{}")
    if row["provider"] == "bricklink":
        line = bricklink.line_from(row["order_id"], row["batch"] or 1, 0, raw)
    else:
        line = brickowl.line_from(row["order_id"], 0, raw)
    line.line_key = row["line_key"]
    return line


def _orders_to_reconcile(db: Database, account: str, only: int | None = None) -> list[dict]:
    where = "o.business_account_id = ?"
    params: list = [account]
    if only is not None:
        where += " and o.id = ?"
        params.append(only)
    return list(db.query(
        f"select o.id, o.provider, o.order_id, o.status, o.manual_release from orders o where {where} and ("
        f"o.status in ({', '.join('?' for _ in OPEN_STATUSES)}) or exists (select 1 from reservations r "
        "where r.order_ref = o.id group by r.line_key, r.inventory_id having sum(r.quantity) != 0)) order by o.id",
        params + list(OPEN_STATUSES),
    ))


def reconcile(db: Database, account: str, index: LotIndex, translator=None, *, order_ref: int | None = None) -> list[Change]:
    """Bring every open line to its reservation; returns the ledger changes written."""
    changes: list[Change] = []
    for order in _orders_to_reconcile(db, account, order_ref):
        with db.atomic():
            rows = list(db.query("select * from order_items where order_ref = ? order by id", [order["id"]]))
            targets = []
            for row in rows:
                line = rebuild_line(row)
                if translator is not None:
                    translator.translate([line])
                match = index.match(line, row["inventory_id"])
                if (match.inventory_id, match.reason) != (row["inventory_id"], row["unmatched_reason"]):
                    store.update_line_match(db, row["id"], match, line.part_number, line.color_id, line.condition)
                targets.append(ledger.LineTarget(row["line_key"], match.inventory_id, row["quantity"]))
            if translator is not None:
                translator.persist()
            deltas = ledger.reconcile_order(
                db, account=account, order_ref=order["id"], provider=order["provider"], order_id=order["order_id"],
                status=order["status"], manual_release=bool(order["manual_release"]), targets=targets, index=index,
            )
        changes += [Change(order["provider"], order["order_id"], d.line_key, d.inventory_id, d.quantity, d.reason)
                    for d in deltas]
    return changes


def find_order(db: Database, account: str, provider: str, order_id: str) -> dict:
    rows = list(db.query(
        "select * from orders where business_account_id = ? and provider = ? and order_id = ?",
        [account, provider, order_id],
    ))
    if not rows:
        raise MarketsyncError(f"no {provider} order {order_id} in the database")
    return rows[0]


def release(db: Database, account: str, index: LotIndex, provider: str, order_id: str) -> list[Change]:
    """Release an order's stock by hand; later syncs keep it released."""
    order = find_order(db, account, provider, order_id)
    with db.atomic():  # the mark and the released stock commit together (reconcile nests a savepoint)
        db.execute("update orders set manual_release = 1 where id = ?", [order["id"]])
        return reconcile(db, account, index, order_ref=order["id"])


def check(db: Database, account: str) -> list[str]:
    """Every violated invariant, one line each (empty when all hold).

    All queries read one snapshot: ``reserve --check`` takes no lock, and an order a running sync
    commits between two of them must not look like a violation.
    """
    own = not db.conn.in_transaction
    if own:
        db.conn.execute("begin")
    try:
        return _check(db, account)
    finally:
        if own:
            db.conn.execute("rollback")


def _check(db: Database, account: str) -> list[str]:
    # a damaged file can read as an empty ledger: SQLite's own structural check comes first
    problems = [f"database: {message}" for (message,) in db.execute("pragma quick_check") if message != "ok"]
    for lot, counter, total in db.execute(
        "select i.id, i.quantity_reserved, coalesce(sum(r.quantity), 0) from inventory i "
        "left join reservations r on r.inventory_id = i.id where i.business_account_id = ? "
        "group by i.id having i.quantity_reserved != coalesce(sum(r.quantity), 0)",
        [account],
    ):
        problems.append(f"lot {lot}: quantity_reserved is {counter} but its ledger rows sum to {total}")
    for lot, quantity, reserved in db.execute(
        "select id, quantity, quantity_reserved from inventory where business_account_id = ? "
        "and (quantity < 0 or quantity_reserved < 0)", [account],
    ):
        problems.append(f"lot {lot}: negative stock (quantity {quantity}, reserved {reserved})")

    held: dict[tuple[int, str], dict[int, int]] = {}
    consumed: dict[tuple[int, str], int] = {}
    for ref, key, lot, total, used in db.execute(
        "select order_ref, line_key, inventory_id, sum(quantity), sum(consumed) from reservations "
        "where business_account_id = ? group by order_ref, line_key, inventory_id", [account],
    ):
        if total < 0:
            problems.append(f"order row {ref} line {key}: lot {lot} holds a negative reservation ({total})")
        if total:
            held.setdefault((ref, key), {})[lot] = total
        consumed[(ref, key)] = consumed.get((ref, key), 0) + (used or 0)

    lines = db.execute(
        "select o.id, o.provider, o.order_id, o.status, o.manual_release, l.line_key, l.inventory_id, l.quantity "
        "from order_items l join orders o on o.id = l.order_ref where o.business_account_id = ?", [account],
    )
    for ref, provider, order_id, status, manual, key, lot, quantity in lines:
        holding = held.pop((ref, key), {})
        wanted = {}
        if status in OPEN_STATUSES and not manual and lot is not None:
            pieces = max(0, quantity - consumed.get((ref, key), 0))
            wanted = {lot: pieces} if pieces else {}
        if holding != wanted:
            problems.append(
                f"{provider} order {order_id} line {key} ({status}): reserved {_fmt(holding)}, expected {_fmt(wanted)}"
            )
    for (ref, key), holding in held.items():
        problems.append(f"order row {ref} line {key}: no such line, yet it holds {_fmt(holding)}")
    return problems


def _fmt(holding: dict[int, int]) -> str:
    return ", ".join(f"{n} on lot {lot}" for lot, n in sorted(holding.items())) or "nothing"
