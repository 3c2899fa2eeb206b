"""``marketsync pick``: the seller took an order's lines off the shelf (they leave the pick list
and their pieces are never moved to another bin again), or found a bin short."""

from __future__ import annotations

from marketsync.app.context import Workspace
from marketsync.store import Store

from dataclasses import dataclass, field

from marketsync.errors import MarketsyncError, NotFoundLocally, NotSafe
from marketsync.rules.matching import LotIndex
from marketsync.app.reserve import ReservationChange, find_order, rematch
from marketsync.model import Adjustment, is_open
from marketsync.store import listings as stored_listings
from marketsync.store import orders as stored_orders
from marketsync.store import picks as stored_picks


@dataclass
class ShortPick:
    """What a short pick did: the lot's on hand before and after, and the ledger changes."""

    provider: str
    order_id: str
    line_key: str
    lot_id: int
    location: str
    before: int
    after: int
    changes: list[ReservationChange] = field(default_factory=list)

    def __str__(self) -> str:
        where = f"bin {self.location}" if self.location else "its lot (no bin)"
        return (f"{self.provider} order {self.order_id} line {self.line_key}: {where} (lot {self.lot_id}) on hand "
                f"{self.before} -> {self.after} ({self.before - self.after} short), "
                f"{len(self.changes)} reservation change(s)")


def pick(store: Store, provider: str, order_id: str, line_keys: list[str], *, undo: bool = False
         ) -> tuple[int, str | None]:
    """Mark the lines picked (all of the order's without ``line_keys``), or unpicked: (how many,
    why nothing was done). An order no longer open (its pieces left the shelf, or never will) is
    nothing to do."""
    order = find_order(store, provider, order_id)
    keys = _lines(store, order, line_keys)
    if not is_open(order["status"]):
        return 0, f"{provider} order {order_id} is {order['status']}: nothing to pick, nothing was changed"
    with store.atomic():
        (stored_picks.unmark if undo else stored_picks.mark)(store, order["id"], keys)
    return len(keys), None


def short(store: Store, index: LotIndex, provider: str, order_id: str, line_key: str,
          missing: int) -> ShortPick:
    """The bin a line was to be picked from had ``missing`` pieces fewer than it should: on hand
    goes down by that much (an ``adjustments`` row), once, and the line is planned again from the
    other bins of its part. A bin holding fewer than ``missing`` on record is refused (naming what
    it holds): the adjustment records exactly what changed."""
    order = find_order(store, provider, order_id)
    [key] = _lines(store, order, [line_key])
    if not is_open(order["status"]):
        raise NotSafe(f"{provider} order {order_id} is {order['status']}: its pieces are no longer on the shelf, "
                      "a short pick does not apply (count the bin: marketsync inventory import)")
    line = next(l for l in stored_orders.stored_lines(store, order["id"]) if l.line_key == key)
    lot_id = stored_orders.line_lot(store, order["id"], key)
    if lot_id is None:
        raise MarketsyncError(f"{provider} order {order_id} line {key} is not matched to a lot")
    lot = index.by_id[lot_id]
    where = f"bin {lot.location}" if lot.location else f"lot {lot_id} (no bin)"
    if missing > lot.quantity:
        raise NotSafe(f"--short {missing} is more than {where} holds on record ({lot.quantity} on hand); "
                      f"nothing was changed: give at most --short {lot.quantity}, or count the bin "
                      "(marketsync inventory import)")
    done = ShortPick(provider, order_id, key, lot_id, lot.location, lot.quantity, lot.quantity - missing)
    with store.atomic():
        stored_listings.adjust_on_hand(store, lot_id, -missing, Adjustment.SHORT_PICK,
                                       f"{provider} order {order_id} line {key} ({line.part_number}): "
                                       f"{missing} fewer in the bin than recorded")
        index.reload()
        done.changes = rematch(store, index, order_ref=order["id"])
    return done


def _lines(store: Store, order: dict, line_keys: list[str]) -> list[str]:
    known = [line.line_key for line in stored_orders.stored_lines(store, order["id"])]
    unknown = [k for k in line_keys if k not in known]
    if unknown:
        raise NotFoundLocally(f"{order['provider']} order {order['order_id']} has no line {unknown[0]} "
                              f"(its lines: {', '.join(known) or 'none'})")
    return line_keys or known


def pick_lines(ws: Workspace, provider: str, order_id: str, line_keys: list[str], *, undo: bool = False,
               wait: float = 0.0) -> tuple[int, str | None]:
    with ws.write(wait) as store:
        return pick(store, provider, order_id, line_keys, undo=undo)


def short_pick(ws: Workspace, provider: str, order_id: str, line_key: str, missing: int, *,
               wait: float = 0.0) -> ShortPick:
    from marketsync.store.inventory import lot_index

    with ws.write(wait) as store:
        return short(store, lot_index(store), provider, order_id, line_key, missing)
