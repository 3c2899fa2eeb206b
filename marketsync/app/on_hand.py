"""On hand moved by what the seller did on a marketplace (``stock adopt``, ``inventory pull``).

Pieces the seller added first make up what shipments since the lot was last counted lacked: a
shipment that took an oversold lot to 0 left with pieces marketsync did not know of, and those were
among the ones the seller now declares (docs/stock-model.md, "An oversold lot")."""

from __future__ import annotations

from marketsync.model import Adjustment
from marketsync.rules import ledger
from marketsync.store import Store
from marketsync.store import ledger as stored_ledger
from marketsync.store import listings as stored_listings


def adjust(store: Store, changes: list[tuple[int, int, Adjustment, str]]) -> int:
    """Each (lot, change, reason, detail): an ``adjustments`` row and on hand moved by it, less the
    shortfalls a positive change makes up (``made-up`` ledger rows); returns the pieces made up.
    The caller holds the transaction."""
    added = sorted({lot for lot, change, *_ in changes if change > 0})
    shorts = stored_ledger.shortfalls(store, added) if added else {}
    made_up = [row for lot, change, *_ in changes if change > 0 and shorts.get(lot)
               for row in ledger.make_up(lot, change, shorts)]
    stored_listings.adjust_many(store, changes)
    stored_ledger.record(store, made_up)
    return sum(d.taken or 0 for row in made_up for d in row.deltas)
