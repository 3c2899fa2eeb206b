"""``marketsync pick``: the seller took an order's lines off the shelf (they leave the pick list
and their pieces are never moved to another bin again), or found a bin short."""

from __future__ import annotations

from marketsync.app.context import Workspace
from marketsync.store import Store

from marketsync.errors import MarketsyncError, NotFoundLocally
from marketsync.rules.matching import LotIndex
from marketsync.app.reserve import Change, find_order, rematch
from marketsync.model import Adjustment
from marketsync.store import listings as stored_listings
from marketsync.store import orders as stored_orders
from marketsync.store import picks as stored_picks


def pick(store: Store, provider: str, order_id: str, line_keys: list[str], *, undo: bool = False) -> int:
    """Mark the lines picked (all of the order's without ``line_keys``), or unpicked; how many."""
    order = find_order(store, provider, order_id)
    keys = _lines(store, order, line_keys)
    with store.atomic():
        (stored_picks.unmark if undo else stored_picks.mark)(store, order["id"], keys)
    return len(keys)


def short(store: Store, index: LotIndex, provider: str, order_id: str, line_key: str,
          missing: int) -> list[Change]:
    """The bin a line was to be picked from had ``missing`` pieces fewer than it should: on hand
    goes down by that much (an ``adjustments`` row), once, and the line is planned again from the
    other bins of its part. Returns the ledger changes."""
    order = find_order(store, provider, order_id)
    [key] = _lines(store, order, [line_key])
    line = next(l for l in stored_orders.stored_lines(store, order["id"]) if l.line_key == key)
    lot = stored_orders.line_lot(store, order["id"], key)
    if lot is None:
        raise MarketsyncError(f"{provider} order {order_id} line {key} is not matched to a lot")
    with store.atomic():
        stored_listings.adjust_on_hand(store, lot, -missing, Adjustment.SHORT_PICK,
                                       f"{provider} order {order_id} line {key} ({line.part_number}): "
                                       f"{missing} fewer in the bin than recorded")
        index.reload()
        return rematch(store, index, order_ref=order["id"])


def _lines(store: Store, order: dict, line_keys: list[str]) -> list[str]:
    known = [line.line_key for line in stored_orders.stored_lines(store, order["id"])]
    unknown = [k for k in line_keys if k not in known]
    if unknown:
        raise NotFoundLocally(f"{order['provider']} order {order['order_id']} has no line {unknown[0]} "
                              f"(its lines: {', '.join(known) or 'none'})")
    return line_keys or known


def pick_lines(ws: Workspace, provider: str, order_id: str, line_keys: list[str], *, undo: bool = False,
               wait: float = 0.0) -> int:
    with ws.write(wait) as store:
        return pick(store, provider, order_id, line_keys, undo=undo)


def short_pick(ws: Workspace, provider: str, order_id: str, line_key: str, missing: int, *,
               wait: float = 0.0) -> list[Change]:
    from marketsync.store.inventory import lot_index

    with ws.write(wait) as store:
        return short(store, lot_index(store), provider, order_id, line_key, missing)
