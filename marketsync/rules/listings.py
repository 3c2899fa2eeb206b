"""What moves a listing, and what a push should change (pure logic: no SQL, no HTTP).

One model serves push, pull and adopt (docs/stock-model.md). For each listing marketsync keeps
its last confirmed figure (``listed``) and how many pieces that marketplace's own orders had taken
off the lot then (``taken``: orders not cancelled; ``placed``: all of them). Since then the
figure has moved by

* that marketplace's orders: ``-(taken_now - taken)`` if cancellations restock the lot, or
  ``-(placed_now - placed)`` if they do not (undocumented: both are accepted);
* marketsync's own changes: the settled ones are already in ``listed``; the ones still open
  (recorded, answer lost, not read back yet) are *maybe* applied -- every subset counts;
* whatever is left is somebody else's edit, usually the seller's on the marketplace's website.

A figure that one of those explanations gives is *explained*; anything else is held until the
seller adopts or overrides it, and a hold clears by itself once synced orders or settled changes
explain the figure. A lot's listings on one marketplace together show ``max(0, available)``.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass, field
from typing import Sequence

MAX_MAYBE_SUBSETS = 4  # open changes whose every combination is tried; beyond, all or none


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
    gone: bool = False  # not for sale any more (sold out and deleted, a stockroom, off sale)
    retain_set: bool = False  # marketsync set BrickLink's is_retain to keep it at 0


@dataclass
class OwnOrders:
    """A marketplace's own orders on one of its lots, as the database holds them now."""

    taken: int = 0  # pieces of orders not cancelled
    placed: int = 0  # pieces of all orders
    open: int = 0  # pieces of open orders (still on the shelf, off the listing)
    elsewhere: int = 0  # pieces of open lines on this lot reserved on another lot, or nowhere


NO_ORDERS = OwnOrders()


@dataclass(frozen=True)
class Maybe:
    """A change marketsync recorded whose outcome is not known yet."""

    id: int
    delta: int


@dataclass(frozen=True)
class Explanation:
    figure: int
    applied: tuple[int, ...] = ()  # the open changes this explanation takes as applied
    raw: int | None = None  # before the marketplace's floor at 0: below it, buyers took pieces the seller added

    @property
    def unclamped(self) -> int:
        return self.figure if self.raw is None else self.raw


def explanations(listing: Listing, own: OwnOrders, maybes: Sequence[Maybe] = ()) -> list[Explanation]:
    """Every figure the marketplace may show now, given the last observation, its own orders since
    and the open changes (each applied or not)."""
    if listing.listed is None:
        return []
    if len(maybes) <= MAX_MAYBE_SUBSETS:
        subsets = [c for n in range(len(maybes) + 1) for c in itertools.combinations(maybes, n)]
    else:
        subsets = [(), tuple(maybes)]
    found: list[Explanation] = []
    for subset in subsets:
        moved = listing.listed + sum(m.delta for m in subset)
        for sold in (own.taken - listing.taken, own.placed - listing.placed):
            found.append(Explanation(max(0, moved - sold), tuple(m.id for m in subset), moved - sold))
    return found


def explain(listing: Listing, own: OwnOrders, remote: int, maybes: Sequence[Maybe] = ()) -> Explanation | None:
    """The explanation of ``remote``, preferring the fewest open changes applied; None if none.
    Buyers never take more than a listing shows: a 0 that only the floor explains (orders took
    more than was listed) is the seller's raise, not an explanation."""
    fits = [e for e in explanations(listing, own, maybes) if e.unclamped == remote]
    return min(fits, key=lambda e: len(e.applied)) if fits else None


def nearest(listing: Listing, own: OwnOrders, remote: int) -> int:
    """The figure the orders explain that is closest to ``remote`` (the seller's edit is the rest).
    A listing never observed explains nothing: all of it is the seller's."""
    # Unclamped: a listing of 6 the seller raised to 8, of which a buyer then took 7, shows 1 where
    # the orders alone explain -1 -- the seller's part is 2, not 1.
    if listing.listed is None:
        return 0
    # explanations(listing, own) without open changes, unclamped: by what was taken, by what was placed
    figures = (listing.listed - (own.taken - listing.taken), listing.listed - (own.placed - listing.placed))
    return min(figures, key=lambda f: (abs(remote - f), f))


def shortfall(listing: Listing, own: OwnOrders) -> int:
    """Pieces the marketplace's own orders took beyond the last confirmed figure: the listing must
    have been raised by at least that much (on a lot that then sold out, by exactly that much)."""
    if listing.listed is None:
        return 0
    return max(0, (own.taken - listing.taken) - listing.listed)


class Kind(enum.Enum):
    OBSERVE = "observe"  # explained (or seen for the first time): take the figure as the new observation
    UNEXPLAINED = "unexplained"  # somebody else changed it: hold for the seller
    GONE = "gone"  # no longer for sale; explained (sold out) or not (deleted, taken off sale)
    SKIP = "skip"  # an order on it arrived while the lots were read: judge it next run


@dataclass
class Verdict:
    kind: Kind
    reason: str | None = None
    explanation: Explanation | None = None


def judge(listing: Listing, own: OwnOrders, remote: int | None, maybes: Sequence[Maybe], suspect: bool) -> Verdict:
    """What a fresh read of one linked listing means (``remote`` None: not for sale any more)."""
    if suspect:
        return Verdict(Kind.SKIP, "an order on this lot arrived while the listings were read; next run")
    if remote is None:
        if listing.listed is None or any(e.figure == 0 for e in explanations(listing, own, maybes)):
            return Verdict(Kind.GONE, "sold out")
        return Verdict(Kind.GONE, "deleted or taken off sale on the marketplace")
    if listing.listed is None:
        return Verdict(Kind.OBSERVE, explanation=Explanation(remote))
    found = explain(listing, own, remote, maybes)
    if found is not None:
        return Verdict(Kind.OBSERVE, explanation=found)
    raised = shortfall(listing, own)
    if remote == 0 and raised:
        return Verdict(Kind.UNEXPLAINED, f"its orders took {raised} more than the {listing.listed} marketsync last saw "
                                         "listed: it was raised on the marketplace, then sold out")
    wanted = " or ".join(str(f) for f in sorted({e.figure for e in explanations(listing, own, maybes)}))
    return Verdict(Kind.UNEXPLAINED, f"listed {remote} where marketsync expected {wanted}")


@dataclass
class Planned:
    listing: Listing
    before: int
    after: int
    retain: bool | None = None  # True: set is_retain (kept at 0); False: put the seller's setting back

    @property
    def delta(self) -> int:
        return self.after - self.before


@dataclass
class LotListings:
    """One lot's for-sale listings on one marketplace, each with what it shows now."""

    available: int
    shown: list[tuple[Listing, int]] = field(default_factory=list)
    may_raise: bool = True  # False while an open line of this marketplace is reserved nowhere on the lot
    elsewhere: int = 0  # the pieces of those lines

    @property
    def target(self) -> int:
        return max(0, self.available)

    @property
    def total(self) -> int:
        return sum(remote for _, remote in self.shown)


def plan(lot: LotListings) -> list[Planned]:
    """The changes that make the lot's listings on one marketplace add up to ``max(0, available)``:
    a decrease comes off the fullest listings first, an increase goes to the first listing (the
    one linked first). Raising waits while some of the marketplace's open pieces are reserved on
    no lot (pushing then would put them back on sale); lowering never waits."""
    change = lot.target - lot.total
    if not lot.shown or change == 0 or (change > 0 and not lot.may_raise):
        return []
    if change > 0:
        listing, remote = min(lot.shown, key=lambda s: s[0].id)
        return [Planned(listing, remote, remote + change)]
    planned = []
    for listing, remote in sorted(lot.shown, key=lambda s: (-s[1], s[0].id)):
        cut = min(remote, -change)
        if cut:
            planned.append(Planned(listing, remote, remote - cut))
            change += cut
        if not change:
            break
    return planned


def waits(lot: LotListings) -> str | None:
    """Why :func:`plan` leaves a lot whose listings do not show what is available (None: it does not):
    raising waits while the marketplace has open pieces on it reserved on no lot (they are on the
    shelf, off the listing); lowering never waits."""
    change = lot.target - lot.total
    if not lot.shown or change <= 0 or lot.may_raise:
        return None
    if lot.elsewhere:
        return (f"raising to {lot.target} waits: {lot.elsewhere} piece(s) of open orders on this listing are "
                "reserved on no lot (see the unmatched lines: 'marketsync orders --open')")
    return f"raising to {lot.target} waits: an order list could not be read again after the lots (next run)"


def figures_now(listing: Listing, own: OwnOrders, maybes: Sequence[Maybe] = ()) -> list[int]:
    """What the marketplace may show now without reading it: the last confirmed figure moved by its
    own orders since and by marketsync's open changes (one figure when nothing is uncertain)."""
    return sorted({e.figure for e in explanations(listing, own, maybes)})


def with_retain(planned: Planned, retained_now: bool, deletes_empty_lots: bool) -> Planned:
    """A marketplace that deletes a lot at 0 keeps one marketsync takes to 0 (is_retain set, and
    remembered); the seller's own setting is put back once marketsync lifts it again."""
    if not deletes_empty_lots:
        return planned
    if planned.after == 0 and not retained_now:
        planned.retain = True
    elif planned.after > 0 and planned.listing.retain_set:
        planned.retain = False
    return planned


def confirmed(before: int, after: int, remote: int | None) -> bool:
    """A change whose answer was lost, read back at once (no order synced since): applied only when
    the lot shows exactly what it should. Anything else stays open and is judged next run, after
    the orders are synced (a sale may have raced the read-back, the write may still land)."""
    return remote == after or (remote is None and after == 0)
