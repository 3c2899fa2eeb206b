"""The reservation ledger's rules: what each line of an order should hold, as deltas.

Every change of a lot's reservation is a ledger row keyed by (order, line, lot), and the
lot's counter moves by the same amount in the same transaction (:mod:`marketsync.store.ledger`
writes both), so ``inventory.quantity_reserved`` always equals the sum of its ledger rows. A
line's wanted reservation follows from its order's status; only the *difference* from what the
ledger already holds for that line is written, which is what makes every run idempotent.

Pure logic: no SQL, no HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from marketsync.rules.matching import LotIndex
from marketsync.model import PRE_SHIPMENT_STATUSES, Reason, Status, is_open, is_shipped


@dataclass
class LineTarget:
    line_key: str
    inventory_id: int | None  # the lot the line names (matching's choice)
    quantity: int
    lots: dict[int, int] | None = None  # where its open pieces are taken from (a split line); None: all on inventory_id
    after_stocked: bool = False  # the order was placed after the lot's on hand was last established (asked only
    # of an order that ships: booking works it out for those alone)


@dataclass
class Delta:
    inventory_id: int
    line_key: str
    quantity: int  # signed change of quantity_reserved
    consumed: int  # pieces of the line that left the building
    reason: Reason
    taken: int | None = None  # pieces that left on hand (no more than it had); None: all consumed ones

    def __post_init__(self) -> None:
        if self.taken is None:
            self.taken = self.consumed


@dataclass
class Holding:
    held: dict[int, int]  # lot -> reserved pieces
    consumed: int
    consumed_on: dict[int, int] = field(default_factory=dict)  # lot -> pieces shipped from it
    taken_on: dict[int, int] | None = None  # lot -> pieces that left its on hand (None: as consumed_on)


@dataclass
class Booking:
    """The deltas of one order, ready for the ledger table."""

    order_ref: int
    provider: str
    order_id: str
    deltas: list[Delta] = field(default_factory=list)


@dataclass
class Short:
    """A shipment's shortfall: pieces of its line that shipped from a lot whose on hand lacked them
    (the lot was taken to 0). A shipment taken back onto that lot makes them up (:func:`move_index`)."""

    order_ref: int
    provider: str
    order_id: str
    line_key: str
    pieces: int


_NOTHING_HELD = Holding({}, 0)  # a line with no ledger rows (read only, never mutated)

def plan(status: str, manual_release: bool, targets: list[LineTarget], state: dict[str, Holding], *,
         was_open: bool = False) -> list[Delta]:
    """The ledger rows that bring every line of one order to what its status asks for.
    ``was_open``: the order was stored open before (it was followed, even if nothing matched)."""
    # Pieces that ship leave the building whether or not the order was released by hand (a
    # hand-released order that ships anyway takes its pieces off on hand, once).
    shipped = is_shipped(status)
    order = _Order(status, manual_release, is_open(status, manual_release), shipped, bool(state) or was_open)
    if not (state or order.open_ or shipped):
        return []  # holds nothing, ships nothing, and nothing was held: no line has a row to write
    present = {t.line_key: t for t in targets}
    deltas: list[Delta] = []
    for line_key in list(present) + [k for k in state if k not in present]:
        deltas += _plan_line(order, line_key, present.get(line_key), state.get(line_key, _NOTHING_HELD))
    return deltas


@dataclass(frozen=True)
class _Order:
    """What :func:`plan` knows of the order whose lines it plans."""

    status: str
    manual_release: bool
    open_: bool  # it holds stock
    shipped: bool  # its pieces left the building
    followed: bool  # stored open before, or holding ledger rows

    def ships(self, target: LineTarget) -> bool:
        """Does the line's shipment take its pieces off on hand now?"""
        # An order we followed while it was open consumes stock when it ships. One first seen shipped
        # consumes only where it was placed after the lot's on hand was counted (cron did not run
        # while it was placed and shipped); an older one is history the count already reflects.
        return self.shipped and (self.followed or target.after_stocked)

    def takes_back(self, target: LineTarget | None, holding: Holding) -> bool:
        """Did the line ship before, and is its order back before shipment?"""
        return self.open_ and self.status in PRE_SHIPMENT_STATUSES and target is not None and holding.consumed > 0

    def release_reason(self, target: LineTarget | None, wanted: dict[int, int], lot: int) -> Reason:
        """Why a line holds fewer pieces on ``lot`` than it did."""
        if target is None:
            return Reason.LINE_REMOVED
        if self.manual_release:
            return Reason.MANUAL_RELEASE
        if self.status == Status.CANCELLED:
            return Reason.CANCELLED
        if not wanted:
            return Reason.UNMATCHED
        return Reason.REMATCHED if lot not in wanted else Reason.ADJUSTED


def _plan_line(order: _Order, line_key: str, target: LineTarget | None, holding: Holding) -> list[Delta]:
    """The ledger rows of one line: its shipment, or a shipment taken back and its reservation."""
    if target is not None and order.ships(target):
        return _ship(line_key, target, holding)
    deltas: list[Delta] = []
    if order.takes_back(target, holding):
        returned = _unship(line_key, holding)
        deltas += returned
        holding = Holding(dict(holding.held), holding.consumed - sum(-d.consumed for d in returned), {})
    wanted = _wanted(order, target, holding)
    if not holding.held:  # nothing held yet (every line of a new order): a reservation per lot
        return deltas + [Delta(lot, line_key, pieces, 0, Reason.RESERVE) for lot, pieces in wanted.items()]
    for lot in sorted(set(wanted) | set(holding.held)):
        change = wanted.get(lot, 0) - holding.held.get(lot, 0)
        if change:
            reason = Reason.RESERVE if change > 0 else order.release_reason(target, wanted, lot)
            deltas.append(Delta(lot, line_key, change, 0, reason))
    return deltas


def _unship(line_key: str, holding: Holding) -> list[Delta]:
    """A shipment taken back (shipped -> packed, completed -> paid): the pieces return to on hand on
    the lots they left (no more than left them), and are reserved again by the caller."""
    taken_on = holding.consumed_on if holding.taken_on is None else holding.taken_on
    return [Delta(lot, line_key, 0, -pieces, Reason.UNSHIPPED, taken=-taken_on.get(lot, 0))
            for lot, pieces in sorted(holding.consumed_on.items()) if pieces > 0]


def _wanted(order: _Order, target: LineTarget | None, holding: Holding) -> dict[int, int]:
    """Lot -> pieces the line should hold: its open pieces, on the lots it was given (a split
    line) or all on the lot it names; nothing for a line gone, unmatched or of a closed order."""
    if target is None or not order.open_ or target.inventory_id is None:
        return {}
    pieces = max(0, target.quantity - holding.consumed)
    if not pieces:
        return {}
    if target.lots:
        return {lot: n for lot, n in target.lots.items() if n}
    return {target.inventory_id: pieces}


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
        deltas.append(Delta(lot, line_key, -holding.held[lot], used, Reason.SHIPPED))
    if remaining and target.inventory_id is not None:
        deltas.append(Delta(target.inventory_id, line_key, 0, remaining, Reason.SHIPPED))
    return deltas


def move_index(index: LotIndex, booking: Booking, shorts: dict[int, list[Short]] | None = None) -> list[Booking]:
    """The in-memory side of store.ledger.record(): the lots' counters as the booking's deltas
    leave them. Returns the bookings that make up other shipments' shortfalls (see below).

    A shipment takes off on hand no more than the lot has: an oversold lot ends at 0, and the
    pieces it lacked are the shipment's shortfall (``shorts``, lot -> its shortfalls, oldest first;
    the booking's own are added). A shipment taken back returns what it took -- but those pieces
    first make up the lot's shortfalls: a shipment cannot take pieces that were never in the bin,
    so the ones it lacked were these, back in the bin before it left (the marketplaces' statuses
    say only that both happened since the last run, not in which order). Each made-up piece is a
    ``MADE_UP`` row of the short shipment's line (it did take it off on hand, and returns it if it
    is taken back in turn), so on hand ends where the seller's bin does whichever of the two is
    booked first. Each delta's ``taken`` is bounded here, in order, so a batch of orders records
    exactly what they would one by one."""
    shorts = {} if shorts is None else shorts
    made_up: list[Booking] = []
    for d in booking.deltas:
        lot = index.by_id.get(d.inventory_id)
        if lot is None:
            continue
        if d.taken and d.taken > 0:
            d.taken = min(d.taken, max(0, lot.quantity))
            if d.consumed > d.taken:
                shorts.setdefault(lot.id, []).append(
                    Short(booking.order_ref, booking.provider, booking.order_id, d.line_key, d.consumed - d.taken))
        elif d.consumed < 0:  # taken back: its shortfall ends, what it took makes up the others'
            rows = _make_up(lot.id, -(d.taken or 0), shorts, (booking.order_ref, d.line_key))
            lot.quantity -= sum(row.deltas[0].taken or 0 for row in rows)
            made_up += rows
        lot.reserved += d.quantity
        lot.quantity -= d.taken or 0
    return made_up


def make_up(lot: int, added: int, shorts: dict[int, list[Short]]) -> list[Booking]:
    """The rows by which ``added`` pieces the seller declares on ``lot`` (adopted from a listing,
    or pulled) make up its shipments' shortfalls first, oldest first: a shipment cannot have left
    with pieces that were never in the bin, so the ones it lacked were among these."""
    return _make_up(lot, added, shorts, (0, ""))


def _make_up(lot: int, returned: int, shorts: dict[int, list[Short]], line: tuple[int, str]) -> list[Booking]:
    """The rows by which ``returned`` pieces, back on ``lot`` from ``line`` (a shipment taken
    back), make up the lot's shortfalls, oldest first. The line's own shortfall ends with its
    shipment (it returns only what it took)."""
    waiting = [s for s in shorts.get(lot, []) if (s.order_ref, s.line_key) != line]
    bookings: list[Booking] = []
    for short in waiting:
        pieces = min(short.pieces, returned)
        if not pieces:
            break
        short.pieces -= pieces
        returned -= pieces
        bookings.append(Booking(short.order_ref, short.provider, short.order_id,
                                [Delta(lot, short.line_key, 0, 0, Reason.MADE_UP, taken=pieces)]))
    shorts[lot] = [s for s in waiting if s.pieces]
    return bookings
