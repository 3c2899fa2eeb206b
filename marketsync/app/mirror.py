"""``stock mirror`` (and ``sync --push --mirror``): every local lot for sale on one marketplace and
listed on no other is created there, exactly once, linked, and from then on follows the ledger.

Per run: settle the creations still open (recorded, maybe sent, or their answer lost) against the
lots as read -- the lot is found (linked) or it is not there (not applied: planned again);
plan (:mod:`marketsync.rules.mirror`) from the lots as read and what is stored, asking the
catalogue only what is not cached; then per marketplace record each creation as an intent,
commit, send (BrickOwl up to 50 in a ``bulk/batch``, BrickLink one ``POST`` each within its share
of the daily budget), and settle each answer: created (linked, observed at the quantity sent),
refused (a gap), not sent (the next run), or lost (the lot is looked for at once; not found, the
creation stays open and the next run looks again before anything is sent). A kill -9 anywhere
leaves at most an open intent, which the next run settles the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from marketsync.config import MirrorSettings, mirror_settings
from marketsync.errors import MarketsyncError, NotFoundError, NotFoundLocally, ProviderError, RequestRejectedError
from marketsync.model import ChangeState, Created, Creations, Learned, NewLot, Outcome, RemoteLot, now_iso
from marketsync.registry import Capability, marketplace
from marketsync.rules import listings as listing_rules
from marketsync.rules import mirror as rules
from marketsync.store import catalog as stored_catalog
from marketsync.store import listings as stored_listings
from marketsync.store import mirror as stored
from marketsync.store import state

if TYPE_CHECKING:
    from marketsync.app.context import Marketplaces, Workspace
    from marketsync.store import Store

log = logging.getLogger("marketsync.app.mirror")

LOOKUPS_PER_RUN = 1000  # catalog/id_lookup calls one run may make for mirroring (answers are cached for good)
READ_ALL_AFTER = 5  # lost answers on one marketplace past which its whole lot list is read once, not lot by lot


@dataclass
class Made:
    """One creation sent (or, in a dry run, that would be)."""

    target: str
    lot_id: int
    source: str
    new: NewLot
    state: ChangeState | None = None  # None in a dry run
    remote_lot_id: str | None = None
    detail: str | None = None


@dataclass
class MirrorReport:
    dry_run: bool = False
    made: list[Made] = field(default_factory=list)
    settled: list[tuple[str, str, ChangeState]] = field(default_factory=list)  # (target, creation, state)
    waiting: dict[str, int] = field(default_factory=dict)  # why -> lots
    kept: list[tuple[int, str]] = field(default_factory=list)
    gaps: list[rules.GapRow] = field(default_factory=list)
    gaps_changed: tuple[int, int] | None = None  # (new, gone) when the stored set changed
    problems: list[str] = field(default_factory=list)
    ok: bool = True

    def count(self, state: ChangeState) -> int:
        return sum(made.state == state for made in self.made)


# --- the use cases -------------------------------------------------------------------------------------
def mirror(ws: Workspace, names: list[str], *, to: str | None = None, dry_run: bool = False,
           wait: float = 0.0) -> MirrorReport:
    """``stock mirror``: the writer lock, the marketplaces with credentials, one mirror run."""
    settings = mirror_settings(ws.environ)
    with ws.write(wait) as store:
        marketplaces = ws.marketplaces(store, names)
        return run(store, marketplaces, to=to, dry_run=dry_run, settings=settings)


def keep_only(ws: Workspace, provider: str, remote_lot_id: str, only: bool, *, wait: float = 0.0) -> str:
    """``stock only PROVIDER:LOT``: the listing's lot stays on that marketplace only (``--off`` undoes it)."""
    with ws.write(wait) as store:
        row = stored_listings.find(store, provider, remote_lot_id)
        if row is None or row["inventory_id"] is None:
            raise NotFoundLocally(f"no {provider} listing {remote_lot_id} linked to a lot in the database "
                                  "(see 'marketsync stock')")
        with store.atomic():
            stored_listings.keep_only(store, row["id"], only)
    if only:
        return (f"lot {row['inventory_id']} is kept on {provider} only ({provider}:{remote_lot_id}): mirroring never "
                "creates it on another marketplace")
    return f"lot {row['inventory_id']} may be mirrored again ({provider}:{remote_lot_id})"


def stored_gaps(ws: Workspace) -> list[rules.GapRow]:
    return stored.gaps(ws.read())


# --- one run --------------------------------------------------------------------------------------------
def run(store: Store, marketplaces: Marketplaces, *, to: str | None = None, dry_run: bool = False,
        settings: MirrorSettings | None = None, reads: dict[str, list[RemoteLot]] | None = None) -> MirrorReport:
    """Mirror with the run's adapters; ``reads``: lot lists already read in this run (a push's)."""
    report = MirrorReport(dry_run=dry_run)
    settings = settings or mirror_settings()
    adapters = {a.name: cast(Creations, a) for a in marketplaces.adapters}
    if len(adapters) < 2:
        report.problems.append("mirroring needs two marketplaces with credentials; nothing was mirrored")
        report.ok = False
        return report
    targets = [to] if to else sorted(adapters)
    currencies = {**stored.order_currencies(store), **settings.currencies}
    sides = {name: rules.Side(name, marketplace(name).can(Capability.CATALOG), currencies.get(name))
             for name in adapters}
    for name, lots in (reads or {}).items():
        if name in sides and lots is not None:
            sides[name].lots = {lot.remote_lot_id: lot for lot in lots}

    open_rows = stored.open_creations(store)
    listed = stored.listed(store)
    plan = rules.Plan()
    probe = rules.candidates(stored.local_lots(store), listed, targets,
                             {(row["inventory_id"], row["target"]) for row, _ in open_rows}, rules.Plan())
    # Nothing to mirror and nothing open costs no call; a command of its own reads every list (its gaps are whole)
    _read(adapters, sides, set(adapters) if reads is None or probe or open_rows else set(), report)

    linked = {(row.provider, row.remote_lot_id): row.inventory_id for row in listed if row.inventory_id is not None}
    if not dry_run:
        # a relist (created again on its own marketplace) is settled by the push, before it links
        _settle_open(store, [(row, new) for row, new in open_rows if row["source"] != row["target"]], sides, linked,
                     report)
        open_rows, listed = stored.open_creations(store), stored.listed(store)
        linked = {(r.provider, r.remote_lot_id): r.inventory_id for r in listed if r.inventory_id is not None}
    found = rules.candidates(stored.local_lots(store), listed, targets,
                             {(row["inventory_id"], row["target"]) for row, _ in open_rows}, plan)
    knowledge = _knowledge(store, marketplaces, found, sides, report, dry_run=dry_run)
    rules.plan(found, sides, knowledge, settings, linked, stored.refused(store), into=plan)
    report.kept = plan.kept
    for _, why in plan.waiting:
        report.waiting[why] = report.waiting.get(why, 0) + 1
    gaps = plan.gaps + rules.unlinked_gaps(listed, sides, targets)
    if dry_run:
        report.made = [Made(c.candidate.target, c.candidate.lot.id, c.candidate.source, c.new) for c in plan.creations]
        report.gaps = rules.table(gaps)
        return report
    for target in targets:
        creations = [c for c in plan.creations if c.candidate.target == target]
        if creations:
            gaps += send_creations(store, marketplaces, adapters[target], sides[target], creations, report)
    report.gaps = rules.table(gaps)
    if all(side.lots is not None for side in sides.values()):  # a whole view: the stored set is replaced
        with store.atomic():
            new, gone = stored.replace_gaps(store, report.gaps, targets)
        if new or gone:
            report.gaps_changed = (new, gone)
    with store.atomic():
        state.add_api_calls(store, marketplaces.counter.take_unsaved())
    return report


def _read(adapters: dict[str, Creations], sides: dict[str, rules.Side], needed: set[str],
          report: MirrorReport) -> None:
    for name in sorted(needed):
        if sides[name].lots is not None:
            continue
        try:
            sides[name].lots = {lot.remote_lot_id: lot for lot in adapters[name].list_lots()}
        except MarketsyncError as error:
            report.ok = False
            report.problems.append(f"{name}: its lots could not be read ({error.message}); nothing was mirrored "
                                   "from or to it in this run")


# --- settling what earlier runs left open ---------------------------------------------------------------
def _settle_open(store: Store, open_rows: list[tuple[dict, NewLot]], sides: dict[str, rules.Side],
                 linked: dict[tuple[str, str], int], report: MirrorReport) -> None:
    """Each creation an earlier run left open, against its marketplace's lots as read now: found
    (linked), or not there (not applied: it is planned again)."""
    for row, new in open_rows:
        side = sides[row["target"]]
        if side.lots is None:
            continue
        found = rules.found_again(new, list(side.lots.values()), side.catalog, linked, side.name, row["inventory_id"])
        with store.atomic():
            outcome = _settle(store, row, new, found, "found in the lots read by a later run")
        report.settled.append((side.name, new.ref, outcome))
        if outcome == ChangeState.UNKNOWN:
            report.problems.append(_several(side.name, row["inventory_id"], found))


def _settle(store: Store, row: dict, new: NewLot, found: list[RemoteLot], detail: str) -> ChangeState:
    """(caller holds the transaction)."""
    mine = [x for x in found
            if (stored_listings.find(store, row["target"], x.remote_lot_id) or {}).get("inventory_id")
            == row["inventory_id"]]
    chosen = mine[0] if mine else found[0] if len(found) == 1 else None
    if chosen is not None:
        stored.resolve(store, new.ref, ChangeState.APPLIED, detail, chosen.remote_lot_id)
        _link(store, row["target"], row["inventory_id"], chosen.remote_lot_id, chosen.quantity)
        return ChangeState.APPLIED
    if found:  # several lots look like it: the seller says which
        stored.resolve(store, new.ref, ChangeState.UNKNOWN, f"{len(found)} lots look like it")
        return ChangeState.UNKNOWN
    stored.resolve(store, new.ref, ChangeState.NOT_APPLIED, "not among the lots read by a later run")
    return ChangeState.NOT_APPLIED


def _several(target: str, lot_id: int, found: list[RemoteLot]) -> str:
    ids = ", ".join(x.remote_lot_id for x in found)
    return (f"{target}: lots {ids} all look like the one created for local lot {lot_id}; link the right one with "
            f"'marketsync stock link {target}:LOT {lot_id}'")


def _link(store: Store, target: str, lot_id: int, remote_lot_id: str, quantity: int, method: str = "mirror") -> None:
    """The created lot is a listing of the local lot, observed at what it shows (caller holds the transaction)."""
    stored_listings.save_links(store, target, [stored_listings.Link(remote_lot_id, lot_id, method)])
    row = stored_listings.find(store, target, remote_lot_id)
    if row is not None and row["inventory_id"] == lot_id:
        own = stored_listings.own_orders(store, target).get(remote_lot_id, listing_rules.NO_ORDERS)
        stored_listings.observe(store, [(row["id"], quantity, own)])


# --- the catalogue's answers ---------------------------------------------------------------------------
def _knowledge(store: Store, marketplaces: Marketplaces, found: list[rules.Candidate], sides: dict[str, rules.Side],
               report: MirrorReport, *, dry_run: bool) -> rules.Knowledge:
    """What the catalogue marketplace's terms are known from: the colour table, the seller's pins,
    the cached lookups, and the lookups the candidates still need (asked now, cached unless a dry run)."""
    from marketsync.app.catalog import colour_table

    pins: dict[str, list[str]] = {}
    for mapping in stored_catalog.boid_mappings(store):
        if mapping["source"] == "manual":
            pins.setdefault(mapping["part_number"], []).append(mapping["boid"])
    answers = {key: tuple(boids) for key, boids in stored_catalog.lookup_answers(store).items()}
    knowledge = rules.Knowledge(colour_table(store), pins, answers)
    catalog, learned, asked = marketplaces.catalog, Learned(), 0
    while catalog is not None and asked < LOOKUPS_PER_RUN:
        needed = rules.lookups_needed(found, sides, knowledge)[:LOOKUPS_PER_RUN - asked]
        if not needed:
            break
        for lookup in needed:
            asked += 1
            try:
                boids: tuple[str, ...] = tuple(catalog.id_lookup(lookup.part_number, lookup.item_type))
            except NotFoundError:
                boids = ()
            except RequestRejectedError as error:  # not an answer: asked again next run
                log.info("catalog/id_lookup %s (%s) refused: %s", lookup.part_number, lookup.item_type, error)
                knowledge.answers[(lookup.part_number, lookup.item_type)] = ("?",)  # waits, unasked again this run
                continue
            except ProviderError as error:
                report.problems.append(f"{catalog.name}: catalogue lookups stopped ({error.message}); the lots "
                                       "that need one wait for the next run")
                catalog = None
                break
            knowledge.answers[(lookup.part_number, lookup.item_type)] = boids
            learned.answers[(lookup.part_number, lookup.item_type)] = (boids, now_iso())
    knowledge.answers = {k: v for k, v in knowledge.answers.items() if v != ("?",)}
    if learned and not dry_run:
        with store.atomic():
            stored_catalog.save(store, learned)
    return knowledge


# --- sending ---------------------------------------------------------------------------------------------
def send_creations(store: Store, marketplaces: Marketplaces, adapter: Creations, side: rules.Side,
            creations: list[rules.Creation], report: MirrorReport, method: str = "mirror") -> list[rules.Gap]:
    """Record, send and settle the creations of one marketplace, batch by batch; the gaps its
    refusals make. ``method``: the link of each lot created (``mirror``; ``relist``: app/relist.py)."""
    target, gaps = adapter.name, []
    budget = adapter.budget()
    if budget is not None:
        allowed = rules.creations_allowed(*budget) or 0
        if allowed < len(creations):
            why = (f"{target}'s daily budget: creations use at most {rules.BUDGET_SHARE:.0%} of it, "
                   f"{rules.PER_RUN} a run")
            report.waiting[why] = report.waiting.get(why, 0) + len(creations) - allowed
            creations = creations[:allowed]
    size = max(1, adapter.create_batch_size)
    lost: list[tuple[rules.Creation, Made]] = []
    for start in range(0, len(creations), size):
        batch = creations[start:start + size]
        with store.atomic():  # recorded (and committed) before anything is sent
            refs = stored.record_intents(store, [(c.candidate.lot.id, target, c.candidate.source,
                                                  c.candidate.source_lot_id, c.new) for c in batch])
            state.add_api_calls(store, marketplaces.counter.take_unsaved())
        for creation, ref in zip(batch, refs):
            creation.new.ref = ref
        answers = adapter.create_lots([c.new for c in batch])
        not_sent = False
        with store.atomic():
            for creation, answer in zip(batch, answers):
                made, gap = _answered(store, creation, answer, method)
                report.made.append(made)
                gaps += [gap] if gap is not None else []
                if answer.outcome == Outcome.UNKNOWN:
                    lost.append((creation, made))
                not_sent = not_sent or answer.outcome == Outcome.NOT_SENT
            state.add_api_calls(store, marketplaces.counter.take_unsaved())
        if not_sent:
            left = len(creations) - start - len(batch) + sum(a.outcome == Outcome.NOT_SENT for a in answers)
            report.waiting[f"{target}: not sent in this run (budget or time)"] = left
            break
    if lost:
        _look_again(store, adapter, side, lost, report, method)
    return gaps


def _answered(store: Store, creation: rules.Creation, answer: Created,
              method: str = "mirror") -> tuple[Made, rules.Gap | None]:
    """Settle one answer (caller holds the transaction)."""
    c, new = creation.candidate, creation.new
    made = Made(c.target, c.lot.id, c.source, new, detail=answer.detail)
    if answer.outcome == Outcome.APPLIED and answer.remote_lot_id:
        stored.resolve(store, new.ref, ChangeState.APPLIED, None, answer.remote_lot_id)
        _link(store, c.target, c.lot.id, answer.remote_lot_id, new.quantity, method)
        made.state, made.remote_lot_id = ChangeState.APPLIED, answer.remote_lot_id
        return made, None
    if answer.outcome == Outcome.REFUSED:
        stored.resolve(store, new.ref, ChangeState.REFUSED, answer.detail)
        made.state = ChangeState.REFUSED
        return made, rules.Gap(c.target, rules.Why.REFUSED, f"{rules.describe(new)}: {answer.detail}",
                               rules.refused_fix(c.target, new, marketplace(c.target).can(Capability.CATALOG), c.lot),
                               f"{c.source}:{c.source_lot_id} (lot {c.lot.id})")
    if answer.outcome == Outcome.NOT_SENT:
        stored.resolve(store, new.ref, ChangeState.NOT_SENT, answer.detail)
        made.state = ChangeState.NOT_SENT
        return made, None
    stored.resolve(store, new.ref, ChangeState.UNKNOWN, f"answer lost: {answer.detail}")
    made.state = ChangeState.UNKNOWN
    return made, None


def _look_again(store: Store, adapter: Creations, side: rules.Side, lost: list[tuple[rules.Creation, Made]],
                report: MirrorReport, method: str = "mirror") -> None:
    """Lost answers: each lot looked for at once (its marketplace's whole list when many were
    lost); found, it is linked; not found, the creation stays open for the next run, which looks
    again before anything is sent."""
    everything: list[RemoteLot] | None = None
    if len(lost) >= READ_ALL_AFTER:
        try:
            everything = adapter.list_lots()
        except MarketsyncError as error:
            report.problems.append(f"{side.name}: {len(lost)} creation answers lost and the lots could not be read "
                                   f"back ({error.message}); the next run looks for them before sending anything")
            return
    listed = {(r.provider, r.remote_lot_id): r.inventory_id for r in stored.listed(store) if r.inventory_id is not None}
    for creation, made in lost:
        c = creation.candidate
        try:
            lots = everything if everything is not None else adapter.find_created(creation.new)
        except MarketsyncError as error:
            report.problems.append(f"{side.name}: the answer creating local lot {c.lot.id} was lost and the lot "
                                   f"could not be looked for ({error.message}); the next run looks before sending")
            continue
        found = rules.found_again(creation.new, lots, side.catalog, listed, side.name, c.lot.id)
        if len(found) == 1:
            with store.atomic():
                stored.resolve(store, creation.new.ref, ChangeState.APPLIED, "answer lost; found by reading back",
                               found[0].remote_lot_id)
                _link(store, c.target, c.lot.id, found[0].remote_lot_id, found[0].quantity, method)
            made.state, made.remote_lot_id = ChangeState.APPLIED, found[0].remote_lot_id
        elif found:
            report.problems.append(_several(side.name, c.lot.id, found))
        else:
            report.problems.append(f"{side.name}: the answer creating local lot {c.lot.id} ({rules.describe(creation.new)}) "
                                   "was lost and the lot is not there yet; the next run looks again before sending "
                                   "anything")
