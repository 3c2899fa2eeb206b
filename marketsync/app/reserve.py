"""``marketsync reserve``: re-match lines against the current inventory, book only the ledger
deltas, verify every invariant, release orders by hand (and undo that), and repair counters
that drifted from the ledger."""

from __future__ import annotations

from dataclasses import dataclass

from typing import Callable

from marketsync.app.context import Workspace
from marketsync.store import Store

from marketsync.app import booking
from marketsync.errors import MarketsyncError, NotFoundLocally
from marketsync.rules.matching import LotIndex
from marketsync.model import is_open
from marketsync.store import catalog as stored_catalog
from marketsync.store import ledger as stored_ledger
from marketsync.store import orders as stored_orders
from marketsync.store import queries
from marketsync.app.translate import Translator


@dataclass
class ReservationChange:
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


def rematch(store: Store, index: LotIndex, translator: Translator | Callable[[], Translator] | None = None, *,
            order_ref: int | None = None) -> list[ReservationChange]:
    """Bring every open line (of one order, with ``order_ref``) to its reservation, translating
    BrickOwl lines again first; returns the ledger changes written. One transaction per order.
    ``translator`` may be what makes one: it is made for the first order (none: never made)."""
    changes: list[ReservationChange] = []
    for order in stored_orders.orders_holding_or_open(store, order_ref):
        if translator is not None and not isinstance(translator, Translator):
            translator = translator()
        lines = stored_orders.stored_lines(store, order["id"])
        if translator is not None:
            translator.translate(lines)
        with store.atomic():
            (booked,) = booking.book(store, index, [booking.OrderState(
                order["id"], order["provider"], order["order_id"], order["status"], bool(order["manual_release"]),
                lines, date_ordered=order.get("date_ordered"))])
            if translator is not None:
                stored_catalog.save(store, translator.take_learned())
        changes += [ReservationChange(order["provider"], order["order_id"], d.line_key, d.inventory_id, d.quantity, d.reason)
                    for d in booked.deltas]
    return changes


def find_order(store: Store, provider: str, order_id: str) -> dict:
    order = stored_orders.find_order(store, provider, order_id)
    if order is None:
        raise NotFoundLocally(f"no {provider} order {order_id} in the database")
    return order


def release(store: Store, index: LotIndex, provider: str, order_id: str
            ) -> tuple[list[ReservationChange], str | None]:
    """Release an order's stock by hand; later syncs keep it released (``unrelease`` undoes it).

    Returns the ledger changes and, when there was nothing to do, why: a closed order (shipped,
    completed, cancelled) holds no stock and is not marked, and a released one stays released.
    """
    order = find_order(store, provider, order_id)
    if order["manual_release"]:
        return [], (f"{provider} order {order_id} is already released by hand "
                    f"(undo: marketsync reserve --unrelease {provider}:{order_id})")
    if not is_open(order["status"]):
        return [], (f"{provider} order {order_id} is {order['status']}: it holds no stock, nothing was released")
    with store.atomic():  # the mark and the released stock commit together (rematch nests a savepoint)
        stored_orders.set_manual_release(store, order["id"], True)
        return rematch(store, index, order_ref=order["id"]), None


def unrelease(store: Store, index: LotIndex, provider: str, order_id: str
              ) -> tuple[list[ReservationChange], str | None]:
    """Undo a release by hand: clear the mark and book what the order's status asks for (an open
    order is reserved again; one that shipped meanwhile has already taken its pieces off on hand).
    Returns the ledger changes and, when the order was not released by hand, why nothing changed."""
    order = find_order(store, provider, order_id)
    if not order["manual_release"]:
        return [], f"{provider} order {order_id} is not released by hand: nothing to undo"
    with store.atomic():  # the cleared mark and the new reservations commit together
        stored_orders.set_manual_release(store, order["id"], False)
        return rematch(store, index, order_ref=order["id"]), None


# --- counters that drifted from the ledger ------------------------------------------------------
@dataclass
class CounterFix:
    """One lot whose ``quantity_reserved`` was set to what its ledger rows sum to."""

    inventory_id: int
    part_number: str
    color_id: int
    condition: str
    location: str
    before: int
    after: int

    def __str__(self) -> str:
        where = f", bin {self.location}" if self.location else ""
        return (f"lot {self.inventory_id} ({self.part_number} colour {self.color_id} {self.condition}{where}): "
                f"reserved {self.before} -> {self.after}, the sum of its ledger rows")


def require_no_drift(store: Store) -> None:
    """Refuse to book anything while a lot's counter disagrees with its ledger rows: every delta
    would be added to a wrong counter and the drift would only grow (``reserve --repair`` first)."""
    drift = queries.counters_off_ledger(store)
    if drift:
        lot, counter, total = drift[0]
        more = f" and {len(drift) - 1} more" if len(drift) > 1 else ""
        raise MarketsyncError(
            f"the reserved count of lot {lot} is {counter} but its ledger rows sum to {total}{more}; "
            "nothing was changed: run 'marketsync reserve --repair' (the ledger is the truth)")


def repair(store: Store) -> list[CounterFix]:
    """Make every lot's reserved count agree with the ledger, in one transaction; the lots changed."""
    with store.atomic():
        return [CounterFix(*row) for row in stored_ledger.repair_counters(store)]


def check(store: Store) -> list[str]:
    """Every violated invariant, one line each (empty when all hold).

    All queries read one snapshot: ``reserve --check`` takes no lock, and an order a running sync
    commits between two of them must not look like a violation.
    """
    with queries.snapshot(store):
        problems = [f"database: {message}" for message in queries.integrity_problems(store)]
        problems += [f"lot {lot}: quantity_reserved is {counter} but its ledger rows sum to {total}"
                     for lot, counter, total in queries.counters_off_ledger(store)]
        problems += [f"lot {lot}: negative stock (quantity {quantity}, reserved {reserved})"
                     for lot, quantity, reserved in queries.negative_lots(store)]
        held, consumed, negative = _ledger_lines(store)
        problems += negative
        problems += _line_problems(store, held, consumed)
        problems += [f"order row {ref} line {key}: no such line, yet it holds {_fmt(holding)}"
                     for (ref, key), holding in held.items()]
    return problems


def _ledger_lines(store: Store
                  ) -> tuple[dict[tuple[int, str], dict[int, int]], dict[tuple[int, str], int], list[str]]:
    """What the ledger holds per (order row, line): lot -> reserved pieces, and the pieces consumed;
    then one problem per negative reservation."""
    problems = []
    held: dict[tuple[int, str], dict[int, int]] = {}
    consumed: dict[tuple[int, str], int] = {}
    for ref, key, lot, total, used in queries.ledger_by_line(store):
        if total < 0:
            problems.append(f"order row {ref} line {key}: lot {lot} holds a negative reservation ({total})")
        if total:
            held.setdefault((ref, key), {})[lot] = total
        consumed[(ref, key)] = consumed.get((ref, key), 0) + (used or 0)
    return held, consumed, problems


def _line_problems(store: Store, held: dict[tuple[int, str], dict[int, int]],
                   consumed: dict[tuple[int, str], int]) -> list[str]:
    """Every stored line whose reservation is not what its order asks for. Each line's holding is
    taken out of ``held``: what is left there belongs to no line."""
    problems = []
    kinds = queries.lot_keys(store)
    for ref, provider, order_id, status, manual, key, lot, quantity in queries.all_lines(store):
        holding = held.pop((ref, key), {})
        pieces = 0
        if is_open(status, bool(manual)) and lot is not None:
            pieces = max(0, quantity - consumed.get((ref, key), 0))
        # a line may take its pieces from several lots of its part, colour and condition (a split line)
        same_part = all(kinds.get(other) == kinds.get(lot) for other in holding)
        if sum(holding.values()) != pieces or not same_part:
            wanted = f"{pieces} on lot {lot}"  # (or on lots of its part, colour and condition)
            problems.append(f"{provider} order {order_id} line {key} ({status}): reserved {_fmt(holding)}, "
                            f"expected {wanted if pieces else 'nothing'}")
    return problems


def _fmt(holding: dict[int, int]) -> str:
    return ", ".join(f"{n} on lot {lot}" for lot, n in sorted(holding.items())) or "nothing"


@dataclass
class Reconciled:
    fixes: list[CounterFix]
    changes: list[ReservationChange]
    note: str | None = None


def reconcile(ws: Workspace, *, repair_counters: bool = False, release_order: tuple[str, str] | None = None,
              unrelease_order: tuple[str, str] | None = None, confirm: Callable[[str, str], None] | None = None,
              wait: float = 0.0) -> Reconciled:
    """``reserve``: re-match what waits (or release / unrelease one order), after ``--repair`` or a
    drift check. ``confirm(provider, order_id)`` is asked before a release (it raises to stop)."""
    from marketsync.app import catalog
    from marketsync.store.inventory import lot_index

    with ws.write(wait) as store:
        fixes = repair(store) if repair_counters else []
        if not repair_counters:
            require_no_drift(store)
        index = lot_index(store)
        if release_order is not None:
            find_order(store, *release_order)
            if confirm is not None:
                confirm(*release_order)
            return Reconciled(fixes, *release(store, index, *release_order))
        if unrelease_order is not None:
            return Reconciled(fixes, *unrelease(store, index, *unrelease_order))
        return Reconciled(fixes, rematch(store, index, catalog.translator(store, index)))
