"""The one write path for order lines and their stock: match each line to a lot, store the lines,
and book the ledger deltas their orders' statuses ask for -- for a batch of orders at once, a
single order being a batch of one. ``sync`` books what it fetched, ``reserve`` what is stored.
The caller holds the transaction.
"""

from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass

from marketsync.store import Store

from marketsync.rules import ledger
from marketsync.rules.matching import Lot, LotIndex, Match
from marketsync.model import PRE_SHIPMENT_STATUSES, OrderLine, is_open, is_shipped
from marketsync.store import ledger as stored_ledger
from marketsync.store import orders as stored_orders
from marketsync.store import picks as stored_picks


@dataclass
class OrderState:
    """One order as the booking needs it: its row, its status and its lines as they are now."""

    order_ref: int
    provider: str
    order_id: str
    status: str
    manual_release: bool
    lines: list[OrderLine]
    was_open: bool = False  # stored open before this write: followed, even with nothing matched
    date_ordered: str | None = None  # ISO UTC


@dataclass
class Booked:
    """What booking one order did, for the caller to report."""

    order: OrderState
    matches: list[Match]
    before: dict[str, tuple[int | None, str | None]]  # line_key -> (lot, unmatched reason) as stored before
    deltas: list[ledger.Delta]
    oversold: list[Lot]  # lots this order's reservations took past what is on hand (as they were then)


def book(store: Store, index: LotIndex, orders: list[OrderState]) -> list[Booked]:
    """Match, store and book every order; the index follows the deltas as they are planned, so
    each order matches against what the ones before it took."""
    refs = [order.order_ref for order in orders]
    stored = stored_orders.stored_matches(store, refs)
    held = stored_ledger.holdings(store, refs)
    picked = stored_picks.picked(store, refs)
    # the shortfalls a shipment taken back in this batch may make up (rules.ledger.move_index)
    shipped_from = sorted({lot for order in orders if order.status in PRE_SHIPMENT_STATUSES
                           for h in held.get(order.order_ref, {}).values() for lot in h.consumed_on})
    shorts = stored_ledger.shortfalls(store, shipped_from) if shipped_from else {}
    bookings: list[ledger.Booking] = []
    results = []
    for order in orders:
        booked, made_up = _book_one(index, order, stored.get(order.order_ref, {}), held.get(order.order_ref, {}),
                                    picked, shorts)
        results.append(booked)
        bookings += [ledger.Booking(order.order_ref, order.provider, order.order_id, booked.deltas), *made_up]
        _note_made_up(held, made_up)
    stored_orders.replace_lines(store, [(b.order.order_ref, b.order.lines, b.matches) for b in results])
    stored_ledger.record(store, bookings)
    return results


def _book_one(index: LotIndex, order: OrderState, before: dict[str, tuple[int | None, str | None]],
              holdings: dict[str, ledger.Holding], picked: set[tuple[int, str]],
              shorts: dict[int, list[ledger.Short]]) -> tuple[Booked, list[ledger.Booking]]:
    """Match one order's lines, plan its deltas and move the index by them; with the bookings by
    which it makes up other shipments' shortfalls (``shorts``)."""
    lines = unique_keys(order.lines)
    matches = [index.match(line, before.get(line.line_key, _NOT_STORED)[0]) for line in lines]
    claimed: dict[int, int] = {}
    # Per line only what the plan asks of it: where an open (or picked) line's pieces come from, and
    # whether the order was placed after the lot was counted where the order ships (a backfill's
    # closed orders are most of its lines)
    allocates = bool(picked) or is_open(order.status, order.manual_release)
    ships = is_shipped(order.status) and order.date_ordered is not None
    targets = [ledger.LineTarget(line.line_key, m.inventory_id, line.quantity,
                                 _line_lots(index, order, line, m, holdings.get(line.line_key), picked, claimed)
                                 if allocates else None,
                                 ships and _after_stocked(order, index, m.inventory_id))
               for line, m in zip(lines, matches)]
    deltas = ledger.plan(order.status, order.manual_release, targets, holdings, was_open=order.was_open)
    made_up = ledger.move_index(index, ledger.Booking(order.order_ref, order.provider, order.order_id, deltas), shorts)
    return Booked(order, matches, before, deltas, oversold_by(index, deltas)), made_up


def _note_made_up(held: dict[int, dict[str, ledger.Holding]], made_up: list[ledger.Booking]) -> None:
    """Shortfalls an order made up, added to those lines' holdings: a line later in the batch that
    is taken back returns them, as it would booked on its own."""
    for extra in made_up:
        for d in extra.deltas:
            holding = held.get(extra.order_ref, {}).get(d.line_key)
            if holding is not None and holding.taken_on is not None:
                holding.taken_on[d.inventory_id] = holding.taken_on.get(d.inventory_id, 0) + (d.taken or 0)


def _line_lots(index: LotIndex, order: OrderState, line: OrderLine, match: Match, holding: ledger.Holding | None,
               picked: set[tuple[int, str]], claimed: dict[int, int]) -> dict[int, int] | None:
    """Where the line's open pieces are taken from (None: all on the lot it matched); ``claimed``
    (lot -> pieces the order's lines before it took beyond what they held) grows by what it takes."""
    if (order.order_ref, line.line_key) in picked and holding and holding.held:
        return dict(holding.held)  # picked: its pieces are in the seller's hands, never moved
    if match.inventory_id is None or not is_open(order.status, order.manual_release):
        return None
    held = holding.held if holding else {}
    need = max(0, line.quantity - (holding.consumed if holding else 0))
    lots = index.allocate(match.inventory_id, need, held, claimed)
    for lot, pieces in lots.items():
        claimed[lot] = claimed.get(lot, 0) + pieces - held.get(lot, 0)
    return lots


def _after_stocked(order: OrderState, index: LotIndex, lot_id: int | None) -> bool:
    """Was the order placed after the lot's on hand was last established? (Both are second-precision
    UTC ISO text; the same second counts as after: the count cannot have seen that sale.)"""
    lot = index.by_id.get(lot_id) if lot_id is not None else None
    return bool(lot and lot.stocked_at and order.date_ordered and order.date_ordered >= lot.stocked_at)


def oversold_by(index: LotIndex, deltas: list[ledger.Delta]) -> list[Lot]:
    """Copies of the lots that deltas reserving more left with more reserved than on hand."""
    found: dict[int, Lot] = {}
    for delta in deltas:
        lot = index.by_id.get(delta.inventory_id)
        if delta.quantity > 0 and lot is not None and lot.reserved > lot.quantity and lot.id not in found:
            found[lot.id] = Lot(*_lot_values(lot))  # once: the order's deltas all moved it already
    return list(found.values())


_lot_values = operator.attrgetter(*(f.name for f in dataclasses.fields(Lot)))  # a copy ~8x cheaper than replace()
_NOT_STORED = (None, None)


def unique_keys(lines: list[OrderLine]) -> list[OrderLine]:
    """A line key seen twice in one order (a marketplace's duplicate) gets a ``#n`` suffix."""
    seen: dict[str, int] = {}
    for line in lines:
        if line.line_key in seen:
            seen[line.line_key] += 1
            line.line_key = f"{line.line_key}#{seen[line.line_key]}"
        else:
            seen[line.line_key] = 1
    return lines
