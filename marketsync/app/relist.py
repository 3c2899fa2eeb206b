"""A listing sold out and deleted, created again: part of every push (``sync --push``, ``stock
push``; ``MARKETSYNC_RELIST=0`` turns it off).

BrickLink deletes a lot that reaches 0 unless ``is_retain`` is set. marketsync sets it when it takes
a lot to 0 itself, but buyers can buy a lot out before any push: the listing is then gone, sold out
(``listings.gone_kind``, decided by :func:`marketsync.rules.listings.gone_kind`). When its lot has
pieces available again (a cancellation the marketplace does not restock, a recount, a shipment
taken back) and nothing else of it is for sale there, the lot is created again exactly as it was
last read -- item, colour, condition, price, description, remarks (:func:`marketsync.rules.mirror.relisted`)
-- through the mirror's journaled creations (:mod:`marketsync.app.mirror`): recorded before it is
sent, linked (``link_method`` ``relist``) in place of the gone one, never sent twice. A listing
deleted or taken off sale by the seller is never created again.

A relist an earlier run left open (a kill -9, a lost answer not found at once) is settled by the
next push **before it links** the lots it read (:func:`settle_open`): found, it is linked as
marketsync's own (never held as the seller's new listing); not there, it is planned again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, cast

from marketsync.app import mirror
from marketsync.model import ChangeState, Creations, RemoteLot
from marketsync.rules import mirror as rules
from marketsync.store import listings as stored_listings
from marketsync.store import mirror as stored

if TYPE_CHECKING:
    from marketsync.app.context import Marketplaces
    from marketsync.app.listing_push import PushResult
    from marketsync.store import Store

log = logging.getLogger("marketsync.app.relist")

METHOD = "relist"  # link_method of a lot created again in place of one sold out and deleted


def settle_open(store: Store, provider: str, lots: list[RemoteLot]) -> list[str]:
    """The relists on ``provider`` an earlier run left open, against its lots as read now (before
    the push links them): the lot it made, if there, is linked (not observed: the push takes its
    figure as marketsync's own); several candidates are for the seller; none, it is planned again.
    The problems to report."""
    open_rows = [(row, new) for row, new in stored.open_creations(store)
                 if row["target"] == provider and row["source"] == provider]
    if not open_rows:
        return []
    known = {r.remote_lot_id for r in stored.listed(store) if r.provider == provider}
    problems = []
    for row, new in open_rows:
        # the lot a relist made is new to marketsync: never a listing it already knows (the old one back)
        found = [lot for lot in lots if lot.remote_lot_id not in known and rules.matches(new, lot, catalog=False)]
        with store.atomic():
            if len(found) == 1:
                stored.resolve(store, new.ref, ChangeState.APPLIED, "found in the lots read by a later run",
                               found[0].remote_lot_id)
                stored_listings.save_links(store, provider, [
                    stored_listings.Link(found[0].remote_lot_id, row["inventory_id"], METHOD)])
                known.add(found[0].remote_lot_id)
            elif found:
                stored.resolve(store, new.ref, ChangeState.UNKNOWN, f"{len(found)} lots look like it")
                problems.append(f"{provider}: lots {', '.join(x.remote_lot_id for x in found)} all look like the one "
                                f"created again for local lot {row['inventory_id']}; link the right one with "
                                f"'marketsync stock link {provider}:LOT {row['inventory_id']}'")
            else:
                stored.resolve(store, new.ref, ChangeState.NOT_APPLIED, "not among the lots read by a later run")
    return problems


def run(store: Store, marketplaces: Marketplaces, results: list[PushResult]) -> None:
    """After the push: each marketplace's lots with nothing for sale there, pieces available and
    every listing there gone (``PushResult.relist``) are created again where what went sold out."""
    for result in results:
        if result.relist and result.ok and result.lots is not None:
            adapter = cast(Creations, marketplaces.adapter(result.provider))
            result.problems += _relist(store, marketplaces, adapter, result.relist, result.lots)


def _relist(store: Store, marketplaces: Marketplaces, adapter: Creations, lot_ids: list[int],
            read: list[RemoteLot]) -> list[str]:
    provider, problems = adapter.name, []
    listed = stored.listed(store)
    linked = {(r.provider, r.remote_lot_id): r.inventory_id for r in listed if r.inventory_id is not None}
    local = stored.local_lots(store)  # available as the push leaves it
    still_open = {(row["inventory_id"], row["target"]) for row, _ in stored.open_creations(store)}
    refused = stored.refused(store)
    for_sale = [lot for lot in read if lot.for_sale]
    creations = []
    for lot_id in lot_ids:
        lot, source = local.get(lot_id), rules.relist_source(listed, provider, lot_id)
        if lot is None or source is None or source.read_as is None or (lot_id, provider) in still_open:
            continue  # not sold out (removed by the seller, replaced), or a creation of it is still open
        new = rules.relisted(lot, source.read_as)
        if isinstance(new, str):
            log.info("%s lot %s (local lot %s) is not created again: %s", provider, source.remote_lot_id, lot_id, new)
            continue
        last = refused.get((lot_id, provider))
        if last is not None and rules.same_lot(last[0], new):
            continue  # refused before (said then): not sent again until something about it changes
        there = [x for x in for_sale if rules.matches(new, x, catalog=False)
                 and linked.get((provider, x.remote_lot_id)) in (None, lot_id)]
        if there:
            problems.append(f"{provider} lot {there[0].remote_lot_id} looks like lot {source.remote_lot_id} that sold "
                            f"out (local lot {lot_id}) but is linked to no lot: not created again; link it with "
                            f"'marketsync stock link {provider}:{there[0].remote_lot_id} {lot_id}'")
            continue
        creations.append(rules.Creation(rules.Candidate(lot, provider, source.remote_lot_id, provider), new))
    if not creations:
        return problems
    report = mirror.MirrorReport()
    side = rules.Side(provider, catalog=False, lots={lot.remote_lot_id: lot for lot in read})
    mirror.send_creations(store, marketplaces, adapter, side, creations, report, METHOD)
    was = {c.candidate.lot.id: c.candidate.source_lot_id for c in creations}
    for made in report.made:
        if made.state == ChangeState.APPLIED:
            problems.append(f"{provider} lot {was[made.lot_id]} (local lot {made.lot_id}) sold out and was deleted; "
                            f"created again as {provider} lot {made.remote_lot_id} with {made.new.quantity}, as it was")
        elif made.state == ChangeState.REFUSED:
            problems.append(f"{provider} refused to create lot {was[made.lot_id]} (local lot {made.lot_id}) again: "
                            f"{made.detail}; it is not sent again until the lot changes")
    problems += report.problems + [f"{provider}: {n} lot(s) sold out wait to be created again: {why}"
                                   for why, n in report.waiting.items()]
    return problems
