"""``sync --push`` / ``stock push``: carry the ledger to the marketplaces' listings, exactly once.

Per run: read each marketplace's lots (one call each), read the order lists again and sync what
changed (an order placed while the lots were read must not get its pieces put back on sale: the
lots it touched wait for the next run), link new for-sale lots to local ones, judge every listing
against one model (:mod:`marketsync.rules.listings`: its last confirmed figure, its marketplace's orders
since, marketsync's own changes since -- settled, or open and counted as maybe), and bring each
lot's listings on each marketplace to ``max(0, available)`` by relative changes, each recorded
before it is sent and confirmed after; a lost answer is settled by reading that one lot back, or
left open for the next run. A marketplace whose lots or orders could not be read is neither judged
nor changed in that run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

from marketsync.store import Store

from marketsync.rules import listings as rules
from marketsync.errors import BadResponseError, MarketsyncError
from marketsync.rules.listings import Kind
from marketsync.rules.matching import LotIndex
from marketsync.model import ChangeState, Gone, LinkProblem, Listings, OrderLine, Outcome, QuantityChange, RemoteLot
from marketsync.registry import marketplace
from marketsync.store import listings as stored
from marketsync.store import problems as stored_problems
from marketsync.store import state as stored_state
from marketsync.app.translate import Translator

log = logging.getLogger("marketsync.app.listing_push")

# Syncs the orders again: ((provider, remote lot) the new orders touched, marketplaces that failed).
Resync = Callable[[], tuple[set[tuple[str, str]], set[str]]]


@dataclass
class ListingChange:
    provider: str
    remote_lot_id: str
    inventory_id: int
    before: int
    after: int
    outcome: ChangeState | None = None  # None in a dry run

    def __str__(self) -> str:
        return f"{self.provider} lot {self.remote_lot_id} (lot {self.inventory_id}): {self.before} -> {self.after}"


@dataclass
class Waiting:
    """A listing a push leaves as it is although it does not show what is available, and why."""

    provider: str
    remote_lot_id: str
    inventory_id: int
    listed: int
    available: int
    reason: str

    def __str__(self) -> str:
        return (f"{self.provider} lot {self.remote_lot_id} (lot {self.inventory_id}) stays at {self.listed}: "
                f"{self.reason}")


@dataclass
class PushResult:
    provider: str
    ok: bool = True
    error: str | None = None
    lots_read: int = 0
    changes: list[ListingChange] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unconfirmed: int = 0  # answers lost and not confirmed by a read-back: judged next run
    lots: list[RemoteLot] | None = field(default=None, repr=False)  # every lot as read (mirroring plans from it)
    settled: set[int] = field(default_factory=set)  # local lots whose listings here now show what is available
    waiting: list[Waiting] = field(default_factory=list)  # left as they are, and why
    relist: list[int] = field(default_factory=list)  # local lots with nothing for sale here, pieces available and
    # every listing here gone: created again if they sold out (app/relist.py)


@dataclass
class Judgement:
    """What one marketplace's read means, decided before anything is written (a dry run prints
    it and writes nothing)."""

    links: list[stored.Link] = field(default_factory=list)
    gone: list[tuple[int, str, Gone]] = field(default_factory=list)  # listing id, why, and what that means
    back: list[int] = field(default_factory=list)  # listings for sale again
    observations: list[tuple[int, int, rules.OwnOrders]] = field(default_factory=list)
    settled: list[tuple[list[rules.Maybe], tuple[int, ...]]] = field(default_factory=list)
    superseded: list[list[rules.Maybe]] = field(default_factory=list)
    holds: list[tuple[int, int | None, str]] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    planned: list[rules.Planned] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    waiting: list[Waiting] = field(default_factory=list)  # listings left as they are, and why
    learned: list[tuple[bool, str]] = field(default_factory=list)  # (restocks, remote lot): the first read that proved it
    relist: list[int] = field(default_factory=list)  # lots with every listing here gone and pieces available


def run(store: Store, adapters: list[Listings], index: LotIndex, *,
        translator: Translator | None = None, resync: Resync | None = None, dry_run: bool = False,
        only: dict[str, set[int]] | None = None, settings: dict[str, bool] | None = None) -> list[PushResult]:
    """``only`` (a listener's push): per marketplace, the local lots to push there -- each of their
    listings read by itself instead of the whole lot list; a marketplace not named is left alone.
    ``settings``: the seller's word on which marketplaces restock cancelled orders."""
    if only is not None:
        adapters = [adapter for adapter in adapters if only.get(adapter.name)]
    results = {adapter.name: PushResult(adapter.name) for adapter in adapters}
    reads: dict[str, list[RemoteLot]] = {}
    for adapter in adapters:
        try:
            reads[adapter.name] = (adapter.list_lots() if only is None
                                   else _read_listings(store, adapter, only[adapter.name]))
            results[adapter.name].lots_read = len(reads[adapter.name])
            results[adapter.name].lots = reads[adapter.name] if only is None else None
        except MarketsyncError as error:
            results[adapter.name].ok, results[adapter.name].error = False, error.message
    touched, failed = resync() if resync is not None and reads else (set(), set())
    index.reload()  # the re-sync moved reservations
    for adapter in adapters:
        result = results[adapter.name]
        if adapter.name not in reads:
            continue
        if adapter.name in failed:  # its figures may hold orders marketsync has not seen: judge nothing
            result.ok = False
            result.error = (f"{adapter.name}: the order list could not be read again after the lots, so no "
                            f"{adapter.name} listing was judged or changed in this run")
            continue
        try:
            _push_one(store, adapter, reads[adapter.name], index, translator, touched,
                      may_raise=not failed, dry_run=dry_run, result=result,
                      only=None if only is None else only[adapter.name],
                      restocking=stored_state.known_restocks(store, adapter.name, (settings or {}).get(adapter.name)))
        except MarketsyncError as error:
            result.ok, result.error = False, error.message
    return list(results.values())


def _read_listings(store: Store, adapter: Listings, lots: set[int]) -> list[RemoteLot]:
    """The for-sale listings of these lots on one marketplace, each read by itself (one call each)."""
    from marketsync.store.listener import listed_lots

    found = []
    for remote_ids in listed_lots(store, adapter.name, lots).values():
        for remote_lot_id in remote_ids:
            lot = adapter.read_lot(remote_lot_id)
            if lot is not None:
                found.append(lot)
    return found


def _push_one(store: Store, adapter: Listings, lots: list[RemoteLot], index: LotIndex,
              translator: Translator | None, touched: set[tuple[str, str]], *, may_raise: bool, dry_run: bool,
              result: PushResult, only: set[int] | None = None,
              restocking: rules.Restocking = rules.UNKNOWN) -> None:
    provider = adapter.name
    for_sale = {lot.remote_lot_id: lot for lot in lots if lot.for_sale}
    if not dry_run and only is None and adapter.deletes_empty_lots:  # a relist an earlier run left open: its
        from marketsync.app import relist  # lot, if there, is linked as marketsync's own before linking

        result.problems += relist.settle_open(store, provider, list(for_sale.values()))
    rows, link_problems = _linked_rows(store, provider, for_sale, index, translator, dry_run=dry_run)
    if not dry_run:
        with store.atomic():
            stored.remember_reads(store, rows, list(for_sale.values()))
    if only is not None:
        rows = {key: row for key, row in rows.items() if row["inventory_id"] in only}
    judgement = judge(provider, rows, for_sale, stored.own_orders(store, provider),
                      stored.maybe_changes(store, provider), stored.available(store), touched,
                      may_raise=may_raise, deletes_empty_lots=adapter.deletes_empty_lots, restocking=restocking,
                      restored_at=stored.restored_at(store))
    result.waiting = judgement.waiting
    result.relist = judgement.relist if only is None else []
    if dry_run:
        result.problems += link_problems + judgement.problems
        result.changes = [ListingChange(provider, p.listing.remote_lot_id, p.listing.inventory_id or 0, p.before, p.after)
                          for p in judgement.planned if p.delta]
        return
    with store.atomic():  # what a read taught is recorded with the observation that taught it
        judgement.problems += learn(store, provider, judgement.learned)
        record(store, judgement)
        stored_problems.keep(store, judgement.problems)  # a hold said once: kept until the run reports it
    result.problems += link_problems + judgement.problems
    _send(store, adapter, judgement.planned, for_sale, result)
    _close_windows(store, provider, rows, touched, judgement, result)


def _close_windows(store: Store, provider: str, rows: dict[str, dict], touched: set[tuple[str, str]],
                   judgement: Judgement, result: PushResult) -> None:
    """The lots whose listings here now show what is available (judged, not held, every change
    applied): the oversell window of each order seen before closes on this marketplace."""
    from marketsync.store import listener as stored_listener

    by_id = {row["id"]: row["inventory_id"] for row in rows.values()}
    judged = {row["inventory_id"] for row in rows.values() if row["inventory_id"] is not None}
    left = {row["inventory_id"] for row in rows.values() if (provider, row["remote_lot_id"]) in touched}
    held = {by_id.get(listing_id) for listing_id, _, _ in judgement.holds}
    unsettled = {c.inventory_id for c in result.changes if c.outcome != ChangeState.APPLIED}
    result.settled = {lot for lot in judged - left - unsettled if lot not in held}
    if result.settled:
        with store.atomic():
            stored_listener.confirm(store, provider, result.settled)


def _linked_rows(store: Store, provider: str, for_sale: dict[str, RemoteLot], index: LotIndex,
                 translator: Translator | None, *, dry_run: bool) -> tuple[dict[str, dict], list[str]]:
    """The marketplace's listings with new for-sale lots linked (in memory only in a dry run), and
    a line for each link problem that is new."""
    rows = {row["remote_lot_id"]: row for row in stored.listings(store, provider)}
    links = link(provider, list(for_sale.values()), rows, index, translator)
    problems = [f"{provider} lot {ln.remote_lot_id}: {ln.problem}: {ln.detail}" for ln in links
                if ln.problem and ln.problem != LinkProblem.UNLINKED
                and (rows.get(ln.remote_lot_id) or {}).get("link_detail") != ln.detail]
    if dry_run:
        _link_in_memory(rows, links, provider)
    elif links:
        with store.atomic():
            stored.save_links(store, provider, links)
        rows = {row["remote_lot_id"]: row for row in stored.listings(store, provider)}
    return rows, problems


def _link_in_memory(rows: dict[str, dict], links: list[stored.Link], provider: str) -> None:
    """A dry run's links: new listings under made-up ids, nothing written."""
    for number, ln in enumerate(links, start=1):
        row = rows.get(ln.remote_lot_id)
        if row is None:
            rows[ln.remote_lot_id] = {"id": -number, "provider": provider, "remote_lot_id": ln.remote_lot_id,
                                      "inventory_id": ln.inventory_id, "listed": None, "taken": 0, "placed": 0,
                                      "held_at": None, "gone_at": None, "retain_set": 0}
        elif row["inventory_id"] is None:
            row["inventory_id"] = ln.inventory_id


def learn(store: Store, provider: str, learned: list[tuple[bool, str]]) -> list[str]:
    """Record the restock behaviour a read proved (caller holds the transaction that records the
    read); the line that says so, the first time only."""
    if not learned:
        return []
    restocks, remote_lot_id = learned[0]
    order_id = stored.last_cancelled_order(store, provider, remote_lot_id)
    if not stored_state.learn_restocks(store, provider, restocks, order_id, remote_lot_id):
        return []
    declared = marketplace(provider)
    return [f"learned: {declared.title} {'restocks' if restocks else 'does not restock'} cancelled orders (order "
            f"{order_id or '?'}, lot {remote_lot_id}); set {declared.cancel_restocks_var} if wrong"]


def contradiction(provider: str, remote: int, restocking: rules.Restocking) -> str:
    """Why a figure the known restock behaviour does not explain, but the other one would, is held
    (reported, never taken as a reason to change what is known)."""
    declared = marketplace(provider)
    known = "does" if restocking.restocks else "does not"
    other = "does not" if restocking.restocks else "does"
    how = (f"{declared.cancel_restocks_var} says it {known}" if restocking.source == rules.SETTING else
           f"marketsync learned from order {restocking.order_id or '?'} (lot {restocking.remote_lot_id}) that it {known}")
    return (f" -- {remote} is what it would list if {declared.title} {other} put a cancelled order's pieces back, "
            f"but {how}; if it {other}, set {declared.cancel_restocks_var}={'no' if restocking.restocks else 'yes'}")


def restock_unknown(provider: str, remote_lot_id: str, remote: int, parts: tuple[int, int]) -> str:
    """Why adopt and pull ask instead of guessing: the seller's part of a figure depends on whether a
    cancellation since the last read was put back, which nobody has said or shown yet."""
    declared = marketplace(provider)
    return (f"{provider} lot {remote_lot_id} shows {remote}: an order on it was cancelled since marketsync last read it, "
            f"and whether {declared.title} puts a cancelled order's pieces back is not known yet, so the seller's part of "
            f"{remote} cannot be told ({parts[0]:+d} if it does, {parts[1]:+d} if not); set "
            f"{declared.cancel_restocks_var}=yes or =no")


def judge(provider: str, rows: dict[str, dict], for_sale: dict[str, RemoteLot], own: dict[str, rules.OwnOrders],
          maybes: dict[int, list[rules.Maybe]], available: dict[int, int], touched: set[tuple[str, str]], *,
          may_raise: bool = True, deletes_empty_lots: bool = False,
          restocking: rules.Restocking = rules.UNKNOWN, restored_at: str | None = None) -> Judgement:
    """Every linked listing of one marketplace against a fresh read, lot by lot, given whether it
    restocks cancelled orders (unknown: the first read only one behaviour explains teaches it) and
    when the backup the database was restored from was taken (None: never restored)."""
    out = Judgement()
    by_lot: dict[int, list[dict]] = {}
    for row in rows.values():
        if row["inventory_id"] is not None:
            by_lot.setdefault(row["inventory_id"], []).append(row)
    # Listings that cannot have sold out (their orders explain no 0) must be in a good answer.
    present = [row for lot_rows in by_lot.values() for row in lot_rows if row.get("gone_at") is None
               and row["listed"] and not any(e.figure == 0 for e in rules.explanations(
                   stored.as_listing(row), own.get(row["remote_lot_id"], rules.NO_ORDERS), maybes.get(row["id"], []),
                   restocking.restocks))]
    if len(present) >= 2 and not any(row["remote_lot_id"] in for_sale for row in present):
        raise BadResponseError(provider, "the lot list left out every linked lot; no listing was judged or "
                                         "changed (it is read again next run)")
    for lot_id, lot_rows in by_lot.items():
        if any((provider, row["remote_lot_id"]) in touched for row in lot_rows):
            # a figure read before an order marketsync has just synced: next run
            out.waiting += [Waiting(provider, row["remote_lot_id"], lot_id, for_sale[row["remote_lot_id"]].quantity,
                                    available.get(lot_id, 0), "an order on it arrived while the lots were read: "
                                    "judged next run") for row in lot_rows if row["remote_lot_id"] in for_sale]
            continue
        _judge_lot(provider, lot_id, lot_rows, for_sale, own, maybes, available.get(lot_id, 0), out,
                   may_raise=may_raise, deletes_empty_lots=deletes_empty_lots, restocking=restocking,
                   restored_at=restored_at)
    return out


def _judge_lot(provider: str, lot_id: int, lot_rows: list[dict], for_sale: dict[str, RemoteLot],
               own: dict[str, rules.OwnOrders], maybes: dict[int, list[rules.Maybe]], available: int,
               out: Judgement, *, may_raise: bool, deletes_empty_lots: bool, restocking: rules.Restocking,
               restored_at: str | None) -> None:
    lot = _LotJudge(provider, lot_id, available, own, maybes, out, deletes_empty_lots,
                    observed_before=any(row["listed"] is not None for row in lot_rows), restocking=restocking,
                    restored_at=restored_at)
    for row in sorted(lot_rows, key=lambda r: r["id"]):
        lot.listing(stored.as_listing(row), for_sale.get(row["remote_lot_id"]))
    if lot.unexplained:
        lot.hold_or_accept()
        return
    if (not lot.shown and available > 0 and may_raise and deletes_empty_lots
            and not any(own.get(row["remote_lot_id"], rules.NO_ORDERS).elsewhere for row in lot_rows)):
        out.relist.append(lot_id)  # nothing for sale here: created again if what went sold out (app/relist.py)
    lot.plan(for_sale, may_raise=may_raise, deletes_empty_lots=deletes_empty_lots)


@dataclass
class _LotJudge:
    """One lot's listings on one marketplace, judged one by one, then held or planned together."""

    provider: str
    lot_id: int
    available: int
    own: dict[str, rules.OwnOrders]
    maybes: dict[int, list[rules.Maybe]]
    out: Judgement
    deletes_empty_lots: bool
    observed_before: bool
    restocking: rules.Restocking = rules.UNKNOWN
    restored_at: str | None = None  # when the backup this database was restored from was taken
    shown: list[tuple[rules.Listing, int]] = field(default_factory=list)
    unexplained: list[tuple[rules.Listing, int, str]] = field(default_factory=list)
    contradicted: bool = False  # a figure is exactly the other restock behaviour's: the seller's, or news
    elsewhere: int = 0  # pieces of open lines of this marketplace on the lot reserved on no lot of it

    def listing(self, listing: rules.Listing, remote_lot: RemoteLot | None) -> None:
        if listing.gone and remote_lot is None:
            return  # still not for sale
        mine = self.own.get(listing.remote_lot_id, rules.NO_ORDERS)
        open_changes = self.maybes.get(listing.id, [])
        if remote_lot is None:
            self._gone(listing, mine, open_changes)
            return
        remote = remote_lot.quantity
        self.elsewhere += mine.elsewhere
        if listing.gone:
            self.out.back.append(listing.id)
        if listing.listed is None and self.observed_before and not listing.held and not listing.ours:
            self.unexplained.append((listing, remote, (
                f"a new listing of a lot marketsync already counts (listed {remote}); "
                "adopt it to add its pieces to on hand, or override it to list what is available")))
            return
        verdict = rules.judge(listing, mine, remote, open_changes, suspect=False, restocks=self.restocks)
        if verdict.kind is Kind.OBSERVE:
            if verdict.learned is not None and not self.out.learned:
                self.out.learned.append((verdict.learned, listing.remote_lot_id))
            self._observe(listing, remote, mine, open_changes, verdict.explanation)
        else:
            why = verdict.reason or "unexplained"
            self.contradicted |= verdict.contradicts
            self.unexplained.append((listing, remote, why + (contradiction(self.provider, remote, self.restocking)
                                                             if verdict.contradicts else "")))

    @property
    def restocks(self) -> bool | None:
        """Whether cancellations restock: known, or learned by an earlier read of this run."""
        if self.restocking.restocks is not None:
            return self.restocking.restocks
        return self.out.learned[0][0] if self.out.learned else None

    def _gone(self, listing: rules.Listing, mine: rules.OwnOrders, open_changes: list[rules.Maybe]) -> None:
        verdict = rules.judge(listing, mine, None, open_changes, suspect=False, restocks=self.restocks)
        zero = next((e for e in rules.explanations(listing, mine, open_changes, self.restocks) if e.figure == 0), None)
        if zero is not None:
            self.out.settled.append((open_changes, zero.applied))
        elif open_changes:
            self.out.superseded.append(open_changes)
        kind = rules.gone_kind(listing, mine, open_changes, deletes_empty_lots=self.deletes_empty_lots)
        self.out.gone.append((listing.id, verdict.reason or "gone", kind))
        raised = rules.shortfall(listing, mine)
        hint = (f"; it sold {raised} more than marketsync last saw listed, so it was raised on the marketplace: "
                f"'marketsync stock adopt {self.provider}:{listing.remote_lot_id}' adds those {raised} to on hand"
                if raised else "")
        self.out.problems.append(
            f"{self.provider} lot {listing.remote_lot_id} (local lot {self.lot_id}) is no longer for sale "
            f"({verdict.reason}); marketsync stops changing it, and a new listing of that part and bin links in "
            f"its place{hint}" + (f"; sold out and deleted by {self.provider}, it is created again as it was once the "
                                  "lot has pieces available (MARKETSYNC_RELIST)" if kind == Gone.SOLD_OUT else ""))

    def _observe(self, listing: rules.Listing, remote: int, mine: rules.OwnOrders, open_changes: list[rules.Maybe],
                 explanation: rules.Explanation | None) -> None:
        self.out.observations.append((listing.id, remote, mine))
        if open_changes and explanation is not None:
            self.out.settled.append((open_changes, explanation.applied))
        if listing.held:
            self.out.released.append(listing.id)
        listing.listed, listing.taken, listing.placed = remote, mine.taken, mine.placed
        self.shown.append((listing, remote))

    def hold_or_accept(self) -> None:
        """Figures nobody explains: held for the seller -- unless the database was restored from a
        backup taken after those listings were last confirmed and the lot's listings already add up
        to what marketsync would list: its own change from after the backup, which the restored
        database forgot; nothing to hold, nothing to adopt. On a database never restored the same
        figure is somebody's edit like any other (a seller's raise can equal what marketsync would
        list: those pieces are on the shelf). Not so either for a figure that is exactly what the
        restock behaviour marketsync does not know of would give, nor one buyers took more than."""
        total = sum(remote for _, remote in self.shown) + sum(remote for _, remote, _ in self.unexplained)
        # A listing whose buyers took more than it showed was raised by the seller: those pieces are
        # on the shelf whatever the total says, so it is held for the seller to adopt.
        raised = any(rules.shortfall(listing, self.own.get(listing.remote_lot_id, rules.NO_ORDERS))
                     for listing, _, _ in self.unexplained)
        restored = all(rules.before_restore(listing, self.restored_at) for listing, _, _ in self.unexplained)
        if restored and total == max(0, self.available) and not self.contradicted and not raised:
            for listing, remote, _ in self.unexplained:
                self.out.observations.append((listing.id, remote, self.own.get(listing.remote_lot_id, rules.NO_ORDERS)))
                if rules.open_only(self.maybes.get(listing.id, [])):  # a given-up one may still land late
                    self.out.superseded.append(rules.open_only(self.maybes[listing.id]))
                if listing.held:
                    self.out.released.append(listing.id)
            return
        for listing, remote in self.shown:
            self.out.waiting.append(Waiting(self.provider, listing.remote_lot_id, self.lot_id, remote, self.available,
                                            "another listing of this lot is held for your decision"))
        for listing, remote, reason in self.unexplained:
            self.out.waiting.append(Waiting(self.provider, listing.remote_lot_id, self.lot_id, remote, self.available,
                                            f"held: {reason} ('marketsync stock adopt' or 'override' "
                                            f"{self.provider}:{listing.remote_lot_id})"))
            self.out.holds.append((listing.id, remote, reason))
            if not listing.held:
                self.out.problems.append(held_line(self.provider, listing.remote_lot_id, self.lot_id, reason))

    def plan(self, for_sale: dict[str, RemoteLot], *, may_raise: bool, deletes_empty_lots: bool) -> None:
        lot = rules.LotListings(self.available, self.shown, may_raise=may_raise and not self.elsewhere,
                                elsewhere=self.elsewhere)
        planned = rules.plan(lot)
        why = rules.waits(lot)
        if why:
            self.out.waiting += [Waiting(self.provider, listing.remote_lot_id, self.lot_id, remote, self.available, why)
                                 for listing, remote in self.shown]
        for change in planned:
            self.out.planned.append(rules.with_retain(change, _retained(for_sale, change.listing), deletes_empty_lots))
        changed = {change.listing.id for change in planned}
        for listing, remote in self.shown:  # stock again on a lot marketsync kept at 0: the seller's setting back
            if listing.id not in changed and listing.retain_set and remote > 0 and deletes_empty_lots:
                self.out.planned.append(rules.Planned(listing, remote, remote, retain=False))


def _retained(for_sale: dict[str, RemoteLot], listing: rules.Listing) -> bool:
    remote = for_sale.get(listing.remote_lot_id)
    return bool(remote and remote.retained)


def held_line(provider: str, remote_lot_id: str, lot_id: int | None, reason: str | None) -> str:
    return (f"{provider} lot {remote_lot_id} (local lot {lot_id}) changed in a way neither marketsync "
            f"nor {provider}'s orders explain: {reason}; held, nothing is pushed to that lot on {provider} until "
            f"you run 'marketsync stock adopt {provider}:{remote_lot_id}' (take {provider}'s figure) or "
            f"'marketsync stock override {provider}:{remote_lot_id}' (push ours)")


def record(store: Store, judgement: Judgement) -> None:
    """Write what a judgement decided (caller holds the transaction)."""
    for listing_id, reason, kind in judgement.gone:
        stored.mark_gone(store, listing_id, reason, kind)
    for listing_id in judgement.back:
        stored.mark_back(store, listing_id)
    stored.observe(store, judgement.observations)
    for open_changes, applied in judgement.settled:
        stored.settle(store, open_changes, applied, "judged against the lot as read")
    for open_changes in judgement.superseded:
        stored.supersede(store, open_changes, "the listing's figure was taken as it is")
    for listing_id, remote, reason in judgement.holds:
        stored.hold(store, listing_id, remote, reason)
    for listing_id in judgement.released:
        stored.release_hold(store, listing_id)


def _send(store: Store, adapter: Listings, planned: list[rules.Planned],
          read: dict[str, RemoteLot], result: PushResult) -> None:
    provider = adapter.name
    size = max(1, adapter.write_batch_size)
    for start in range(0, len(planned), size):
        batch = planned[start:start + size]
        with store.atomic():  # recorded (and committed) before anything is sent
            ids = stored.record_intents(store, provider, [
                (p.listing.id, p.listing.remote_lot_id, p.before, p.after) for p in batch])
            for p in batch:
                if p.retain is True:
                    stored.set_retain(store, p.listing.id, True)
        outcomes = adapter.change_quantities([
            QuantityChange(p.listing.remote_lot_id, p.delta, retain=p.retain,
                           description=_description(read, p.listing.remote_lot_id)) for p in batch])
        not_sent = 0
        for change_id, p, outcome in zip(ids, batch, outcomes):
            with store.atomic():
                state = _record_outcome(store, adapter, change_id, p, outcome.outcome, outcome.detail, result)
            if p.delta:
                result.changes.append(ListingChange(provider, p.listing.remote_lot_id, p.listing.inventory_id or 0,
                                             p.before, p.after, state))
            not_sent += outcome.outcome == Outcome.NOT_SENT
        if not_sent:  # orders come first: the listings the budget leaves out wait for tomorrow's runs
            waiting = not_sent + len(planned) - start - len(batch)
            result.problems.append(f"{provider}: daily API budget used up; {waiting} listing change(s) wait for "
                                   "the next run")
            return


def _description(read: dict[str, RemoteLot], remote_lot_id: str) -> str | None:
    lot = read.get(remote_lot_id)
    return lot.description if lot is not None else None


def _record_outcome(store: Store, adapter: Listings, change_id: int, p: rules.Planned, outcome: str,
                    detail: str | None, result: PushResult) -> ChangeState:
    provider = adapter.name
    if outcome == Outcome.APPLIED:
        _applied(store, change_id, p, result, None)
        return ChangeState.APPLIED
    if outcome in (Outcome.REFUSED, Outcome.NOT_SENT):
        state = ChangeState.REFUSED if outcome == Outcome.REFUSED else ChangeState.NOT_SENT
        stored.resolve_change(store, change_id, state, detail)
        if p.retain is True:
            stored.set_retain(store, p.listing.id, False)
        if outcome == Outcome.REFUSED:
            result.problems.append(f"{provider} lot {p.listing.remote_lot_id}: change {p.delta:+d} refused: {detail}")
        return state
    # The answer was lost: maybe applied. Never send again blindly: read this one lot back.
    try:
        lot = adapter.read_lot(p.listing.remote_lot_id)
    except MarketsyncError as error:
        lot, detail = None, f"read back failed: {error.message}"
        stored.resolve_change(store, change_id, ChangeState.UNKNOWN, detail)
        result.unconfirmed += 1
        return ChangeState.UNKNOWN
    if rules.confirmed(p.before, p.after, lot.quantity if lot is not None else None):
        _applied(store, change_id, p, result, "confirmed by reading the lot back")
        return ChangeState.APPLIED
    # Not (yet) what it should show: a sale may have raced the read-back, or the write may still
    # land. It stays open and is judged next run, after the orders are synced -- never a hold now.
    stored.resolve_change(store, change_id, ChangeState.UNKNOWN,
                          f"answer lost; read back {lot.quantity if lot else 'gone'}")
    result.unconfirmed += 1
    return ChangeState.UNKNOWN


def _applied(store: Store, change_id: int, p: rules.Planned, result: PushResult, detail: str | None) -> None:
    stored.resolve_change(store, change_id, ChangeState.APPLIED, detail)
    stored.set_listed(store, p.listing.id, p.after)
    if p.retain is False:
        stored.set_retain(store, p.listing.id, False)
    elif p.retain is True:
        result.problems.append(f"{p.listing.provider} lot {p.listing.remote_lot_id}: listed at 0 and kept in the store "
                               "(marketsync set 'retain'); it is put back when the lot has stock again")


# --- linking ------------------------------------------------------------------------------------
def link(provider: str, lots: list[RemoteLot], existing: Mapping[str, Mapping[str, Any]], index: LotIndex,
         translator: Translator | None) -> list[stored.Link]:
    """A local lot for each for-sale remote lot not linked yet: BrickLink's by its lot id (or the
    lot key), BrickOwl's by the BrickLink lot it names, else by its translated part, colour,
    condition and personal note (= bin). A lot may have several listings on one marketplace (two
    lots of a part in one bin at different prices): together they show what is available."""
    links = []
    for lot in lots:
        row = existing.get(lot.remote_lot_id)
        if row is not None and (row["inventory_id"] is not None or row.get("link_method") == stored.UNLINKED_BY_HAND):
            continue
        found, method, problem, detail = _find_lot(provider, lot, index, translator)
        links.append(stored.Link(lot.remote_lot_id, found, method if found is not None else None, problem, detail))
    return links


def local_key(lot: RemoteLot, translator: Translator | None) -> tuple[str, int, str] | str:
    """A remote lot's part, colour and condition in the inventory's terms (a lot named in its
    marketplace's own catalogue is translated), or why it has none."""
    part, colour, condition = lot.part_number, lot.color_id, lot.condition
    if part is None:
        if translator is None:
            return "its marketplace's catalogue is needed to translate it"
        line = OrderLine(provider=lot.provider, order_id="", line_key=lot.remote_lot_id, quantity=0, boid=lot.boid,
                         provider_color_id=lot.provider_color_id, provider_condition=lot.provider_condition,
                         alt_part_numbers=list(lot.alt_part_numbers), location=lot.location,
                         bricklink_lot_id=lot.bricklink_lot_id, item_type=lot.item_type)
        translator.translate([line])
        if line.unmatched_reason:
            return line.unmatched_reason
        part, colour, condition = line.part_number, line.color_id, line.condition
    if not part or colour is None or not condition:
        return "no part number, colour or condition"
    return part, colour, condition


def _find_lot(provider: str, lot: RemoteLot, index: LotIndex,
              translator: Translator | None) -> tuple[int | None, str | None, LinkProblem | None, str | None]:
    linked = index.by_link.get(lot.bricklink_lot_id) if lot.bricklink_lot_id else None
    if linked is not None:
        return linked.id, "lot-id" if lot.part_number is not None else "external-id", None, None
    key = local_key(lot, translator)
    if isinstance(key, str):
        return None, None, LinkProblem.UNLINKED, key
    candidates = index.candidates(*key)
    in_bin = [c for c in candidates if c.location == (lot.location or "")]
    if len(in_bin) == 1:
        return in_bin[0].id, "translated" if lot.part_number is None else "lot-key", None, None
    what = f"{key[0]} colour {key[1]} {key[2]} at {lot.location or 'no bin'}"
    if candidates:
        return None, None, LinkProblem.AMBIGUOUS, f"{what}: {len(candidates)} local lots of it, none in that bin"
    return None, None, LinkProblem.UNLINKED, f"{what}: no local lot"
