"""What moves a listing, and what a push should change (pure logic: no SQL, no HTTP).

One model serves push, pull and adopt (docs/stock-model.md). For each listing marketsync keeps
its last confirmed figure (``listed``) and how many pieces that marketplace's own orders had taken
off the lot then (``taken``: orders not cancelled; ``placed``: all of them). Since then the
figure has moved by

* that marketplace's orders: ``-(taken_now - taken)`` if cancellations restock the lot, or
  ``-(placed_now - placed)`` if they do not (undocumented: a per-marketplace fact, ``restocks``:
  the seller's setting, else learned from a read only one of the two explains, else unknown --
  and then both are accepted);
* marketsync's own changes: the settled ones are already in ``listed``; the ones still open
  (recorded, answer lost, not read back yet) are *maybe* applied -- every subset counts; and one
  read as not applied is *maybe late* for a while (:func:`given_up`): a marketplace may apply a
  write whose answer was lost at any later moment, so it still explains a figure it moves by
  exactly its change (it landed late: the next push corrects the listing), and only becomes final
  (not applied) after :data:`LATE_READS` reads and :data:`LATE_WINDOW`;
* whatever is left is somebody else's edit, usually the seller's on the marketplace's website.

A figure that one of those explanations gives is *explained*; anything else is held until the
seller adopts or overrides it, and a hold clears by itself once synced orders or settled changes
explain the figure. A lot's listings on one marketplace together show ``max(0, available)``.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
from dataclasses import dataclass, field
from typing import Sequence

from marketsync.model import ChangeState, Gone

MAX_MAYBE_SUBSETS = 4  # open changes whose every combination is tried; beyond, all or none
# A change read as not applied may still land (it sat in the marketplace's queue): it stays a
# candidate explanation until that many reads did not show it AND that long since it was sent --
# reads, so that a laptop asleep for a day still gets to see it land; time, so that cron running
# every few minutes does not give up on a queue of a few minutes.
LATE_READS = 3
LATE_WINDOW = dt.timedelta(hours=1)


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
    retained: bool = False  # the lot was retained (is_retain) when last read: its marketplace keeps it at 0
    ours: bool = False  # created by marketsync (mirrored or relisted): never the seller's new pieces
    observed_at: str | None = None  # when ``listed`` was confirmed (ISO UTC)


@dataclass
class OwnOrders:
    """A marketplace's own orders on one of its lots, as the database holds them now."""

    taken: int = 0  # pieces of orders not cancelled
    placed: int = 0  # pieces of all orders
    open: int = 0  # pieces of open orders (still on the shelf, off the listing)
    elsewhere: int = 0  # pieces of open lines on this lot reserved on another lot, or nowhere


NO_ORDERS = OwnOrders()


@dataclass(frozen=True)
class Restocking:
    """Whether a marketplace puts a cancelled order's pieces back on the listing (``restocks``
    None: not known yet), and how marketsync knows: the seller's setting, or learned from a read
    (``order_id``, ``remote_lot_id``: the cancellation and the listing it was learned from)."""

    restocks: bool | None = None
    source: str | None = None  # SETTING | LEARNED
    order_id: str | None = None
    remote_lot_id: str | None = None


SETTING, LEARNED = "setting", "learned"
UNKNOWN = Restocking()


def restocking(setting: bool | None, learned: Restocking | None) -> Restocking:
    """The seller's setting wins; else what was learned; else unknown."""
    if setting is not None:
        return Restocking(setting, SETTING)
    return learned if learned is not None and learned.restocks is not None else UNKNOWN


@dataclass(frozen=True)
class Maybe:
    """A change marketsync recorded whose outcome is not known yet: open (recorded, answer lost,
    never read back as not applied), or given up on (``late``: read as not applied, but it may
    still land; see :func:`given_up`)."""

    id: int
    delta: int
    late: bool = False
    unseen: int = 0  # reads since it was sent that did not show it
    sent_at: dt.datetime | None = None


def open_only(maybes: Sequence[Maybe]) -> list[Maybe]:
    """The changes whose outcome is open (not the ones given up on, which may only land late)."""
    return [m for m in maybes if not m.late]


def given_up(maybe: Maybe, shown: bool, now: dt.datetime) -> ChangeState:
    """What a read makes of one of marketsync's changes whose outcome was not known: applied when
    the read shows it (the explanation takes it as applied, late or not); otherwise *maybe late* --
    never sent again as such, but still an explanation of a figure it moves by exactly its change
    -- until :data:`LATE_READS` reads did not show it and :data:`LATE_WINDOW` has passed since it
    was sent: then not applied, final."""
    if shown:
        return ChangeState.APPLIED
    sent_at = maybe.sent_at or now
    if maybe.unseen + 1 >= LATE_READS and now - sent_at >= LATE_WINDOW:
        return ChangeState.NOT_APPLIED
    return ChangeState.MAYBE_LATE


@dataclass(frozen=True)
class Explanation:
    figure: int
    applied: tuple[int, ...] = ()  # the open changes this explanation takes as applied
    raw: int | None = None  # before the marketplace's floor at 0: below it, buyers took pieces the seller added

    @property
    def unclamped(self) -> int:
        return self.figure if self.raw is None else self.raw


def _sold(listing: Listing, own: OwnOrders, restocks: bool | None) -> tuple[int, ...]:
    """The pieces the marketplace's own orders took off the listing since it was observed: by the
    orders not cancelled if cancellations restock it, by all of them if not; both while unknown."""
    taken, placed = own.taken - listing.taken, own.placed - listing.placed
    if restocks is None:
        return (taken, placed)
    return (taken,) if restocks else (placed,)


def explanations(listing: Listing, own: OwnOrders, maybes: Sequence[Maybe] = (),
                 restocks: bool | None = None) -> list[Explanation]:
    """Every figure the marketplace may show now, given the last observation, its own orders since,
    the open changes (each applied or not) and whether cancellations restock (None: unknown)."""
    if listing.listed is None:
        return []
    if len(maybes) <= MAX_MAYBE_SUBSETS:
        subsets = [c for n in range(len(maybes) + 1) for c in itertools.combinations(maybes, n)]
    else:
        subsets = [(), tuple(open_only(maybes)), tuple(maybes)]
    found: list[Explanation] = []
    for subset in subsets:
        moved = listing.listed + sum(m.delta for m in subset)
        for sold in _sold(listing, own, restocks):
            found.append(Explanation(max(0, moved - sold), tuple(m.id for m in subset), moved - sold))
    return found


def explain(listing: Listing, own: OwnOrders, remote: int, maybes: Sequence[Maybe] = (),
            restocks: bool | None = None) -> Explanation | None:
    """The explanation of ``remote``, preferring the fewest changes landed late, then the fewest
    open changes applied; None if none. Buyers never take more than a listing shows: a 0 that only
    the floor explains (orders took more than was listed) is the seller's raise, not an explanation
    -- unless a decrease of marketsync's it takes as applied met the floor (a sale raced it)."""
    lowered = {m.id for m in maybes if m.delta < 0}
    fits = [e for e in explanations(listing, own, maybes, restocks)
            if e.unclamped == remote or (e.figure == remote and lowered.intersection(e.applied))]
    late = {m.id for m in maybes if m.late}
    return min(fits, key=lambda e: (len(late.intersection(e.applied)), len(e.applied))) if fits else None


def nearest(listing: Listing, own: OwnOrders, remote: int, restocks: bool | None = None) -> int:
    """The figure the orders explain that is closest to ``remote`` (the seller's edit is the rest).
    A listing never observed explains nothing: all of it is the seller's."""
    # Unclamped: a listing of 6 the seller raised to 8, of which a buyer then took 7, shows 1 where
    # the orders alone explain -1 -- the seller's part is 2, not 1.
    if listing.listed is None:
        return 0
    # explanations(listing, own) without open changes, unclamped: one figure per restock behaviour held possible
    figures = [listing.listed - sold for sold in _sold(listing, own, restocks)]
    return min(figures, key=lambda f: (abs(remote - f), f))


def restock_figures(listing: Listing, own: OwnOrders) -> tuple[Explanation, Explanation] | None:
    """(what the listing shows now if cancellations restock it, what it shows if not), when an
    order cancelled (or un-cancelled) since the listing was observed makes the two differ."""
    if listing.listed is None:
        return None
    restocked, kept = (Explanation(max(0, listing.listed - sold), (), listing.listed - sold)
                       for sold in (own.taken - listing.taken, own.placed - listing.placed))
    return (restocked, kept) if restocked.figure != kept.figure else None


def proves(listing: Listing, own: OwnOrders, remote: int | None, maybes: Sequence[Maybe] = ()) -> bool | None:
    """The restock behaviour a read proves (True: cancellations restock), or None. Only a read
    with nothing else uncertain proves anything: a listing observed before and not held (a hold is
    a figure nobody explained), no change of marketsync's with an open outcome, an order
    cancelled since the observation making the two behaviours' figures differ, and the figure
    exactly one of them -- and not one the marketplace's floor at 0 made (buyers took more than that
    behaviour leaves listed: somebody raised it meanwhile)."""
    if remote is None or listing.held or maybes:
        return None
    figures = restock_figures(listing, own)
    fits = [e for e in figures or () if e.figure == remote and e.unclamped >= 0]  # below 0: it was raised meanwhile
    if figures is None or len(fits) != 1:
        return None
    return fits[0] is figures[0]


def sellers_parts(listing: Listing, own: OwnOrders, remote: int, restocks: bool | None) -> tuple[int, int] | None:
    """While the restock behaviour is unknown and a cancellation since the last observation makes
    it matter: the seller's part of ``remote`` if cancellations restock, and if they do not (None
    when the behaviour is known or makes no difference). Nobody can tell which: adopt and pull
    ask for the setting instead of guessing."""
    figures = restock_figures(listing, own) if restocks is None else None
    if figures is None:
        return None
    return remote - figures[0].unclamped, remote - figures[1].unclamped


def before_restore(listing: Listing, restored_at: str | None) -> bool:
    """Confirmed before the backup this database was restored from was taken (``restored_at``):
    marketsync's own changes since may be unknown to it, so a figure that already is what it would
    list is taken as one of them. Never on a database that was not restored: there, such a figure
    is somebody's edit (held) like any other -- the seller's raise that happens to equal it too."""
    return restored_at is not None and listing.listed is not None and (listing.observed_at or "") <= restored_at


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
    learned: bool | None = None  # OBSERVE: the restock behaviour this read proves (it was unknown)
    contradicts: bool = False  # UNEXPLAINED: the figure is exactly what the other restock behaviour gives


def gone_kind(listing: Listing, own: OwnOrders, maybes: Sequence[Maybe] = (), *,
              deletes_empty_lots: bool) -> Gone:
    """Why a listing that is no longer for sale went. **Sold out** only where its marketplace
    deletes a lot that reaches 0 by itself (BrickLink, unless ``is_retain``), the lot was not
    retained (by the seller, as last read, nor by marketsync) and its own orders (with marketsync's
    open changes, each applied or not) explain a 0; anything else -- a lot deleted or taken off
    sale while it still had pieces, a retained lot that vanished, a lot never observed, a
    marketplace that keeps lots at 0 -- somebody **removed** it, and it is never created again."""
    if (deletes_empty_lots and listing.listed is not None and not listing.retained and not listing.retain_set
            and any(e.figure == 0 for e in explanations(listing, own, maybes))):
        return Gone.SOLD_OUT
    return Gone.REMOVED


def judge(listing: Listing, own: OwnOrders, remote: int | None, maybes: Sequence[Maybe], suspect: bool,
          restocks: bool | None = None) -> Verdict:
    """What a fresh read of one linked listing means (``remote`` None: not for sale any more),
    given whether cancellations restock (None: unknown -- then a read only one behaviour explains
    teaches it)."""
    if suspect:
        return Verdict(Kind.SKIP, "an order on this lot arrived while the listings were read; next run")
    if remote is None:
        if listing.listed is None or any(e.figure == 0 for e in explanations(listing, own, maybes, restocks)):
            return Verdict(Kind.GONE, "sold out")
        return Verdict(Kind.GONE, "deleted or taken off sale on the marketplace")
    if listing.listed is None:
        return Verdict(Kind.OBSERVE, explanation=Explanation(remote))
    found = explain(listing, own, remote, maybes, restocks)
    if found is not None:
        return Verdict(Kind.OBSERVE, explanation=found,
                       learned=proves(listing, own, remote, maybes) if restocks is None else None)
    raised = shortfall(listing, own)
    if remote == 0 and raised:
        return Verdict(Kind.UNEXPLAINED, f"its orders took {raised} more than the {listing.listed} marketsync last saw "
                                         "listed: it was raised on the marketplace, then sold out")
    wanted = " or ".join(str(f) for f in sorted({e.figure for e in explanations(listing, own, maybes, restocks)}))
    other = proves(listing, own, remote, maybes)
    return Verdict(Kind.UNEXPLAINED, f"listed {remote} where marketsync expected {wanted}",
                   contradicts=restocks is not None and other is not None and other != restocks)


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


def figures_now(listing: Listing, own: OwnOrders, maybes: Sequence[Maybe] = (),
                restocks: bool | None = None) -> list[int]:
    """What the marketplace may show now without reading it: the last confirmed figure moved by its
    own orders since and by marketsync's open changes (one figure when nothing is uncertain; a
    change given up on is not expected to land)."""
    return sorted({e.figure for e in explanations(listing, own, open_only(maybes), restocks)})


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
