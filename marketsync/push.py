"""``sync --push`` / ``stock push``: carry the ledger to the marketplaces' listings, exactly once.

Per run: read each marketplace's lots (one call each), read the order lists again and sync what
changed (an order placed while the lots were read must not get its pieces put back on sale: the
lots it touched wait for the next run), link new remote lots to local ones, settle changes a
crashed or cut-off run left unconfirmed, judge every listing (explained, or held for the seller),
and push each explained listing to ``max(0, available)`` by relative changes -- each recorded
before it is sent and confirmed after; a lost answer is settled by reading that one lot back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from sqlite_utils import Database

from marketsync import listings as rules
from marketsync.errors import MarketsyncError
from marketsync.matching import LotIndex
from marketsync.model import Listings, OrderLine, Outcome, QuantityChange, RemoteLot
from marketsync.store import listings as stored
from marketsync.translate import Translator

log = logging.getLogger("marketsync.push")

Resync = Callable[[], set[tuple[str, str]]]  # syncs the orders again; (provider, remote lot) they touched


@dataclass
class Change:
    provider: str
    remote_lot_id: str
    inventory_id: int
    before: int
    after: int
    outcome: str | None = None  # None in a dry run

    def __str__(self) -> str:
        return f"{self.provider} lot {self.remote_lot_id} (lot {self.inventory_id}): {self.before} -> {self.after}"


@dataclass
class PushResult:
    provider: str
    ok: bool = True
    error: str | None = None
    lots_read: int = 0
    changes: list[Change] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def run(db: Database, account: str, adapters: list[Listings], index: LotIndex, *,
        translator: Translator | None = None, resync: Resync | None = None, dry_run: bool = False) -> list[PushResult]:
    results = {adapter.name: PushResult(adapter.name) for adapter in adapters}
    reads: dict[str, list[RemoteLot]] = {}
    for adapter in adapters:
        try:
            reads[adapter.name] = adapter.list_lots()
            results[adapter.name].lots_read = len(reads[adapter.name])
        except MarketsyncError as error:
            results[adapter.name].ok, results[adapter.name].error = False, error.message
    suspect = resync() if resync is not None and reads else set()
    index.reload()  # the re-sync moved reservations
    for adapter in adapters:
        if adapter.name not in reads:
            continue
        result = results[adapter.name]
        try:
            _push_one(db, account, adapter, reads[adapter.name], index, translator, suspect, dry_run, result)
        except MarketsyncError as error:
            result.ok, result.error = False, error.message
    return list(results.values())


def _push_one(db: Database, account: str, adapter: Listings, lots: list[RemoteLot], index: LotIndex,
              translator: Translator | None, suspect: set[tuple[str, str]], dry_run: bool, result: PushResult) -> None:
    provider = adapter.name
    savepoint = db.atomic()
    savepoint.__enter__()
    try:
        planned = _prepare(db, account, provider, lots, index, translator, suspect, result)
        if dry_run:
            result.changes = [Change(provider, p.listing.remote_lot_id, p.listing.inventory_id or 0, p.before, p.after)
                              for p in planned]
            raise _DryRun
    except _DryRun:
        savepoint.__exit__(_DryRun, _DryRun(), None)  # rolled back: a dry run changes nothing
        return
    except BaseException as exc:
        savepoint.__exit__(type(exc), exc, exc.__traceback__)
        raise
    savepoint.__exit__(None, None, None)
    _send(db, account, adapter, planned, result)


class _DryRun(Exception):
    pass


def _prepare(db: Database, account: str, provider: str, lots: list[RemoteLot], index: LotIndex,
             translator: Translator | None, suspect: set[tuple[str, str]], result: PushResult) -> list[rules.Planned]:
    """Links, settled journal entries, observations and holds (caller holds the transaction);
    returns the changes to send."""
    by_remote = {lot.remote_lot_id: lot for lot in lots}
    existing = {row["remote_lot_id"]: row for row in stored.listings(db, account, provider)}
    links = link(provider, lots, existing, index, translator)
    gone = [stored.Link(remote, row["inventory_id"], row["link_method"], "gone",
                        "no longer listed by the marketplace")
            for remote, row in existing.items() if remote not in by_remote and row["link_problem"] != "gone"]
    if links or gone:
        stored.save_links(db, account, provider, links + gone)
    for link_ in links + gone:
        if link_.problem and (existing.get(link_.remote_lot_id) or {}).get("link_problem") != link_.problem:
            result.problems.append(f"{provider} lot {link_.remote_lot_id}: {link_.problem}: {link_.detail}")
    own = stored.own_orders(db, account, provider)
    rows = {row["remote_lot_id"]: row for row in stored.listings(db, account, provider)} if links or gone else existing

    pending = stored.pending_changes(db, account, provider)
    for change in pending:  # a run cut off mid-push
        row = rows[change["remote_lot_id"]]
        remote = by_remote.get(change["remote_lot_id"])
        _settle(db, result, row, own.get(row["remote_lot_id"], rules.NO_ORDERS), change,
                remote.quantity if remote is not None else None)
    if pending:
        rows = {row["remote_lot_id"]: row for row in stored.listings(db, account, provider)}

    available = stored.available(db, account)
    planned, observations = [], []
    for remote_lot_id, row in rows.items():
        if row["inventory_id"] is None:
            continue
        listing = stored.as_listing(row)
        mine = own.get(remote_lot_id, rules.NO_ORDERS)
        remote = by_remote.get(remote_lot_id)
        quantity = remote.quantity if remote is not None else None
        verdict = rules.judge(listing, mine, quantity, (provider, remote_lot_id) in suspect)
        if verdict.kind == "hold":
            stored.hold(db, listing.id, quantity, verdict.reason or "")
            result.problems.append(_held_line(provider, remote_lot_id, listing, verdict.reason))
            continue
        if verdict.kind == "skip" or quantity is None:
            continue
        observations.append((listing.id, quantity, mine))
        listing.listed, listing.taken, listing.placed = quantity, mine.taken, mine.placed
        wanted = rules.plan(listing, mine, quantity, available.get(listing.inventory_id or 0, 0))
        if wanted is not None:
            planned.append(wanted)
    stored.observe(db, observations)
    return planned


def _held_line(provider: str, remote_lot_id: str, listing: rules.Listing, reason: str | None) -> str:
    return (f"{provider} lot {remote_lot_id} (local lot {listing.inventory_id}) changed in a way neither marketsync "
            f"nor {provider}'s orders explain: {reason}; held, nothing is pushed to it until you run "
            f"'marketsync stock adopt {provider}:{remote_lot_id}' (take {provider}'s figure) or "
            f"'marketsync stock override {provider}:{remote_lot_id}' (push ours)")


def _settle(db: Database, result: PushResult, row: dict, own: rules.OwnOrders, change: dict,
            remote: int | None) -> str:
    """A recorded change whose outcome is unknown, against the lot as read now."""
    listing = stored.as_listing(row)
    verdict = rules.resolve(listing, own, remote, change["before"], change["after"])
    if verdict == "applied":
        stored.resolve_change(db, change["id"], "applied", "confirmed by reading the lot back")
        stored.set_listed(db, listing.id, change["after"])
    elif verdict == "not_applied":
        stored.resolve_change(db, change["id"], "not_applied", "not applied: the lot read back unchanged")
    else:
        stored.resolve_change(db, change["id"], "unexplained", f"read back {remote}")
        reason = f"after a change of {change['delta']:+d} whose answer was lost it shows {remote}"
        stored.hold(db, listing.id, remote, reason)
        result.problems.append(_held_line(row["provider"], row["remote_lot_id"], listing, reason))
    return verdict


def _send(db: Database, account: str, adapter: Listings, planned: list[rules.Planned], result: PushResult) -> None:
    provider = adapter.name
    size = max(1, adapter.write_batch_size)
    for start in range(0, len(planned), size):
        batch = planned[start:start + size]
        with db.atomic():  # recorded (and committed) before anything is sent
            ids = stored.record_intents(db, account, provider, [
                (p.listing.id, p.listing.remote_lot_id, p.before, p.after) for p in batch])
        outcomes = adapter.change_quantities([
            QuantityChange(p.listing.remote_lot_id, p.delta, retain=True if p.after == 0 else None) for p in batch])
        not_sent = 0
        for change_id, p, outcome in zip(ids, batch, outcomes):
            with db.atomic():
                state = _record_outcome(db, adapter, change_id, p, outcome.outcome, outcome.detail, result)
            result.changes.append(Change(provider, p.listing.remote_lot_id, p.listing.inventory_id or 0,
                                         p.before, p.after, state))
            not_sent += outcome.outcome == Outcome.NOT_SENT
        if not_sent:  # orders come first: the listings the budget leaves out wait for tomorrow's runs
            waiting = not_sent + len(planned) - start - len(batch)
            result.problems.append(f"{provider}: daily API budget used up; {waiting} listing change(s) wait for "
                                   "the next run")
            return


def _record_outcome(db: Database, adapter: Listings, change_id: int, p: rules.Planned, outcome: str,
                    detail: str | None, result: PushResult) -> str:
    provider = adapter.name
    if outcome == Outcome.APPLIED:
        stored.resolve_change(db, change_id, "applied")
        stored.set_listed(db, p.listing.id, p.after)
        return "applied"
    if outcome == Outcome.REFUSED:
        stored.resolve_change(db, change_id, "refused", detail)
        result.problems.append(f"{provider} lot {p.listing.remote_lot_id}: change {p.delta:+d} refused: {detail}")
        return "refused"
    if outcome == Outcome.NOT_SENT:
        stored.resolve_change(db, change_id, "not_sent", detail)
        return "not_sent"
    # The answer was lost: maybe applied. Never send again blindly: read this one lot back.
    try:
        lot = adapter.read_lot(p.listing.remote_lot_id)
    except MarketsyncError as error:
        result.problems.append(f"{provider} lot {p.listing.remote_lot_id}: the answer to a change of {p.delta:+d} "
                               f"was lost and the lot could not be read back ({error.message}); settled next run")
        return "unknown"
    row = {"id": p.listing.id, "provider": provider, "remote_lot_id": p.listing.remote_lot_id,
           "inventory_id": p.listing.inventory_id, "listed": p.before, "taken": p.listing.taken,
           "placed": p.listing.placed, "held_at": None}
    change = {"id": change_id, "before": p.before, "after": p.after, "delta": p.delta}
    own = rules.OwnOrders(p.listing.taken, p.listing.placed)  # no order was synced since the observation
    verdict = _settle(db, result, row, own, change, lot.quantity if lot is not None else None)
    return {"applied": "applied", "not_applied": "not_applied"}.get(verdict, "unexplained")


# --- linking ------------------------------------------------------------------------------------
def link(provider: str, lots: list[RemoteLot], existing: dict[str, dict], index: LotIndex,
         translator: Translator | None) -> list[stored.Link]:
    """A local lot for each remote lot not linked yet: BrickLink's by its lot id (or the lot key),
    BrickOwl's by the BrickLink lot it names, else by its translated part, colour, condition and
    personal note (= bin). A local lot takes one listing per marketplace."""
    taken = {row["inventory_id"] for row in existing.values() if row["inventory_id"] is not None}
    links = []
    for lot in lots:
        row = existing.get(lot.remote_lot_id)
        if row is not None and row["inventory_id"] is not None:
            continue
        found, method, problem, detail = _find_lot(provider, lot, index, translator)
        if found is not None and found in taken:
            found, problem, detail = None, "ambiguous", f"local lot {found} already has a {provider} listing"
        if found is not None:
            taken.add(found)
        links.append(stored.Link(lot.remote_lot_id, found, method if found is not None else None, problem, detail))
    return links


def _find_lot(provider: str, lot: RemoteLot, index: LotIndex,
              translator: Translator | None) -> tuple[int | None, str | None, str | None, str | None]:
    linked = index.by_link.get(lot.bricklink_lot_id) if lot.bricklink_lot_id else None
    if linked is not None:
        return linked.id, "lot-id" if provider == "bricklink" else "external-id", None, None
    part, colour, condition = lot.part_number, lot.color_id, lot.condition
    if provider != "bricklink" and translator is not None:
        line = OrderLine(provider=provider, order_id="", line_key=lot.remote_lot_id, quantity=0, boid=lot.boid,
                         provider_color_id=lot.provider_color_id, provider_condition=lot.provider_condition,
                         alt_part_numbers=list(lot.alt_part_numbers), location=lot.location, item_type=lot.item_type)
        translator.translate([line])
        if line.unmatched_reason:
            return None, None, "unlinked", line.unmatched_reason
        part, colour, condition = line.part_number, line.color_id, line.condition
    if part is None or colour is None or condition is None:
        return None, None, "unlinked", "no part number, colour or condition"
    candidates = index.candidates(part, colour, condition)
    in_bin = [c for c in candidates if c.location == (lot.location or "")]
    if len(in_bin) == 1:
        return in_bin[0].id, "translated" if provider != "bricklink" else "lot-key", None, None
    what = f"{part} colour {colour} {condition} at {lot.location or 'no bin'}"
    if candidates:
        return None, None, "ambiguous", f"{what}: {len(candidates)} local lots of it, none in that bin"
    return None, None, "unlinked", f"{what}: no local lot"
