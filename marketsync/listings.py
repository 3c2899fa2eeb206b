"""The rules that keep every listing of a lot showing what is really available (pure logic).

For each listing marketsync remembers its last *observation*: what the marketplace showed
(``listed``) and how many pieces that marketplace's own orders had taken off that lot then
(``taken``: orders not cancelled; ``placed``: all of them). A marketplace removes its own sold
pieces from a lot when the order is placed, and may or may not put them back when the order is
cancelled (undocumented), so a later figure is *explained* when it equals

    listed - (taken_now - taken)     (cancellations restock), or
    listed - (placed_now - placed)   (they do not).

Anything else is a change nobody here made -- usually the seller on the marketplace's website --
and the listing is held until the seller adopts or overrides it. An explained listing is pushed
to ``max(0, available)`` by a relative change.

docs/stock-model.md states the model in words.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Listing:
    id: int
    provider: str
    remote_lot_id: str
    inventory_id: int | None
    listed: int | None  # None: never observed
    taken: int
    placed: int
    held: bool = False


@dataclass
class OwnOrders:
    """A marketplace's own orders on one of its lots, as the database holds them now."""

    taken: int = 0  # pieces of orders not cancelled
    placed: int = 0  # pieces of all orders
    open: int = 0  # pieces of open orders (still on the shelf, off the listing)
    elsewhere: int = 0  # pieces of open lines on this lot reserved on another lot, or nowhere


NO_ORDERS = OwnOrders()


def expected(listing: Listing, own: OwnOrders, listed: int | None = None) -> set[int]:
    """What the marketplace may show now, given the observation (``listed`` overrides it: the
    figure a recorded change would have left)."""
    base = listing.listed if listed is None else listed
    if base is None:
        return set()
    return {max(0, base - (own.taken - listing.taken)), max(0, base - (own.placed - listing.placed))}


def nearest_expected(listing: Listing, own: OwnOrders, remote: int) -> int:
    """The explanation closest to what the marketplace shows (for an adjustment's size)."""
    return min(expected(listing, own), key=lambda e: (abs(remote - e), e))


@dataclass
class Verdict:
    kind: str  # 'observe' | 'hold' | 'skip'
    reason: str | None = None


def judge(listing: Listing, own: OwnOrders, remote: int | None, suspect: bool) -> Verdict:
    """What a fresh read of one linked listing means."""
    if listing.held:
        return Verdict("skip", "held")
    if suspect:
        return Verdict("skip", "an order on this lot arrived while the listings were read; next run")
    if remote is None:
        if listing.listed is None or 0 in expected(listing, own):
            return Verdict("hold", "the lot is gone from the marketplace (sold out and not retained, or deleted)")
        return Verdict("hold", "the lot was deleted on the marketplace")
    if listing.listed is None or remote in expected(listing, own):
        return Verdict("observe")
    wanted = " or ".join(str(e) for e in sorted(expected(listing, own)))
    return Verdict("hold", f"listed {remote} where marketsync expected {wanted}")


@dataclass
class Planned:
    listing: Listing
    before: int
    after: int

    @property
    def delta(self) -> int:
        return self.after - self.before


def plan(listing: Listing, own: OwnOrders, remote: int, available: int) -> Planned | None:
    """The change that makes an observed, explained listing show ``max(0, available)``; None
    when it already does, or while some of its own marketplace's open pieces are not reserved on
    its lot (pushing then would put them back on sale)."""
    if own.elsewhere:
        return None
    target = max(0, available)
    return Planned(listing, remote, target) if target != remote else None


def resolve(listing: Listing, own: OwnOrders, remote: int | None, before: int, after: int) -> str:
    """Was a recorded change applied? 'applied', 'not_applied' or 'unexplained', from the lot as
    read back."""
    if remote is None:
        return "applied" if after == 0 else "unexplained"
    if remote in expected(listing, own, listed=after):
        return "applied"
    if remote in expected(listing, own, listed=before):
        return "not_applied"
    return "unexplained"
