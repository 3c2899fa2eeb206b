"""``marketsync inventory pull``: what is on the shelf, from a marketplace's listing of the store.

A marketplace takes sold pieces off a lot's listing when the order is placed, so what it lists
is not what is on the shelf. On hand after a pull is the listing plus every piece the listing is
known to exclude (docs/stock-model.md):

* a listing marketsync has observed before (a pull, a push) keeps on hand as it is, moved only
  by what neither marketsync nor that marketplace's orders explain (recorded as an adjustment);
* a listing seen for the first time gives on hand = listed + pieces of that marketplace's open
  orders on it (two lots of one part in one bin are one local lot);
* a lot already stocked from another marketplace's listing keeps its on hand: the new listing is
  linked, and the next push brings it to what is available.

Lots no longer listed are reported, and zeroed only when asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, cast

from marketsync.store import Store

from marketsync.rules import listings as rules
from marketsync.rules.matching import LotIndex
from marketsync.model import Adjustment, Gone, InventoryLot, LinkProblem, RemoteLot
from marketsync.app import on_hand
from marketsync.app.listing_push import learn, link, local_key, restock_unknown
from marketsync.store import inventory, state
from marketsync.store import listings as stored
from marketsync.app.translate import Translator


@dataclass
class PullResult:
    inserted: int = 0
    updated: int = 0
    adjusted: int = 0
    problems: list[str] = field(default_factory=list)


def pull(store: Store, provider: str, lots: list[RemoteLot], index: LotIndex,
         translator: Translator | None, *, calls: dict[str, int], zero_missing: bool = False,
         restocking: rules.Restocking = rules.UNKNOWN, deletes_empty_lots: bool = False) -> PullResult:
    """Store the pulled lots and the calls that fetched them (caller holds the writer lock; one
    transaction). Only lots for sale are pulled: a stockroom or a lot off sale is not on offer.
    ``restocking``: whether the marketplace restocks cancelled orders, as far as it is known."""
    result = PullResult()
    lots = [lot for lot in lots if lot.for_sale]
    with store.atomic():
        own = stored.own_orders(store, provider)
        open_changes = stored.maybe_changes(store, provider)
        available = stored.available(store)
        existing = stored.pull_rows(store, provider)
        fresh: list[RemoteLot] = []
        seen: list[RemoteLot] = []
        for lot in lots:
            (seen if _observed(existing.get(lot.remote_lot_id)) else fresh).append(lot)
        # a lot marketsync created and has not observed yet holds pieces already counted: observed only
        ours = {lot.remote_lot_id: lot for lot in fresh
                if _link_method(existing.get(lot.remote_lot_id)) in stored.OURS}
        listed = {lot.remote_lot_id for lot in lots}
        if len(ours) < len(fresh) or any(remote not in listed and row.inventory_id is not None
                                         and (row.gone_at is None or zero_missing) for remote, row in existing.items()):
            index.ensure_loaded()  # lots to stock, or listings gone now: the lots as they were before this pull
        _pull_observed(store, provider, seen, existing, own, open_changes, available, result, restocking)
        _pull_fresh(store, provider, [lot for lot in fresh if lot.remote_lot_id not in ours], existing, own, index,
                    translator, result)
        _observe_fresh(store, provider, ours, own)
        _report_missing(store, provider, listed, existing, index, zero_missing,
                        result, own, gone_kind=lambda row: rules.gone_kind(
                            stored.as_listing(row), own.get(row["remote_lot_id"], rules.NO_ORDERS),
                            open_changes.get(row["id"], []), deletes_empty_lots=deletes_empty_lots))
        stored.remember_pulled_reads(store, provider, existing, lots)
        state.add_api_calls(store, calls)
    index.forget()  # read again when next used: nothing writes the lots before
    return result


def _observed(row: stored.PullRow | None) -> bool:
    return row is not None and row.inventory_id is not None and row.listed is not None


def _unmoved(row: stored.PullRow, mine: rules.OwnOrders, maybes: list[rules.Maybe], remote: int) -> bool:
    """An observed listing that shows what it showed, with no order of its marketplace's since and
    no change of marketsync's open: nothing to judge (the stock model's figures are all ``listed``,
    whatever the restock behaviour: nothing to learn, hold or adjust). Most of a re-pull."""
    return (not maybes and remote == row.listed and mine.taken == (row.taken or 0)
            and mine.placed == (row.placed or 0))


def _link_method(row: stored.PullRow | None) -> str | None:
    return None if row is None else row["link_method"]


def _pull_observed(store: Store, provider: str, lots: list[RemoteLot], existing: dict[str, stored.PullRow],
                   own: dict[str, rules.OwnOrders], open_changes: dict[int, list[rules.Maybe]],
                   available: dict[int, int], result: PullResult, restocking: rules.Restocking) -> None:
    """Listings observed before keep on hand as it is, moved only by what neither that
    marketplace's orders nor marketsync's changes explain (docs/stock-model.md). A figure that an
    open change of marketsync's leaves uncertain moves nothing; one given up on (maybe late)
    explains a figure it moves by exactly its change, and never makes one uncertain; nor does one a
    cancellation leaves uncertain while the marketplace's restock behaviour is unknown (a figure
    only one behaviour explains teaches it, as in a push)."""
    restored_at = stored.restored_at(store)
    shown: dict[int, int] = {}
    for lot in lots:
        lot_id = cast(int, existing[lot.remote_lot_id].inventory_id)
        shown[lot_id] = shown.get(lot_id, 0) + lot.quantity
    adjustments: list[tuple[int, int, Adjustment, str]] = []  # written in batches, in this order
    observations: list[tuple[int, int, rules.OwnOrders]] = []
    learned: list[tuple[bool, str]] = []
    for lot in lots:
        row = existing[lot.remote_lot_id]
        mine = own.get(lot.remote_lot_id, rules.NO_ORDERS)
        maybes = open_changes.get(row.id, [])
        if _unmoved(row, mine, maybes, lot.quantity):  # on hand stays; the lot is observed again
            adjustments.append((cast(int, row.inventory_id), 0, Adjustment.PULL, ""))
            observations.append((row.id, lot.quantity, mine))
            continue
        listing = stored.as_listing(row)
        restocks = restocking.restocks if restocking.restocks is not None else (learned[0][0] if learned else None)
        uncertain = rules.open_only(maybes)
        parts = None if uncertain else rules.sellers_parts(listing, mine, lot.quantity, restocks)
        if parts is not None:
            restocks = rules.proves(listing, mine, lot.quantity)
            if restocks is None:
                result.problems.append(restock_unknown(provider, lot.remote_lot_id, lot.quantity, parts)
                                       + ", then pull again: on hand left as it is")
                continue
            learned += [] if learned else [(restocks, lot.remote_lot_id)]
        elif not uncertain and restocks is not None and rules.proves(listing, mine, lot.quantity) not in (None, restocks):
            result.problems.append(_contradicted(provider, lot.remote_lot_id, lot.quantity, restocks))
            continue
        change = lot.quantity - rules.nearest(listing, mine, lot.quantity, restocks)
        found = rules.explain(listing, mine, lot.quantity, maybes, restocks) if maybes else None
        if found is None and uncertain:
            result.problems.append(
                f"{provider} lot {lot.remote_lot_id} shows {lot.quantity}, and a change marketsync sent to it has "
                "no known outcome: on hand left as it is. Run 'marketsync sync --push' to settle it, or "
                f"'marketsync stock override {provider}:{lot.remote_lot_id}' to take the figure as it is")
            continue
        if maybes:  # explained (maybe by a given-up change that landed late), or only given-up ones, not shown
            stored.settle(store, maybes, found.applied if found else (), "settled by a pull")
            change = 0 if found else change
        if (change and rules.before_restore(listing, restored_at)
                and shown[listing.inventory_id or 0] == max(0, available.get(listing.inventory_id or 0, 0))):
            change = 0  # already what marketsync would list after a restore: its own change the backup forgot
        adjustments.append((row["inventory_id"], change, Adjustment.PULL,
                            f"{provider} lot {lot.remote_lot_id} lists {lot.quantity}, {change:+d} "
                            "more than its orders and marketsync's changes explain" if change else ""))
        result.adjusted += bool(change)
        observations.append((listing.id, lot.quantity, mine))
    on_hand.adjust(store, adjustments)
    stored.observe(store, observations)
    stored.seen_again(store, [listing_id for listing_id, _, _ in observations])
    result.problems += learn(store, provider, learned)


def _contradicted(provider: str, remote_lot_id: str, remote: int, restocks: bool) -> str:
    from marketsync.registry import marketplace

    declared = marketplace(provider)
    other = "does not" if restocks else "does"
    return (f"{provider} lot {remote_lot_id} shows {remote}: what it would show if {declared.title} {other} put a "
            f"cancelled order's pieces back, which marketsync knows it {'does' if restocks else 'does not'}: on hand left "
            f"as it is. If the pieces are yours, run 'marketsync stock adopt {provider}:{remote_lot_id}'; if "
            f"{declared.title} {other}, set {declared.cancel_restocks_var}={'no' if restocks else 'yes'}")


def _pull_fresh(store: Store, provider: str, fresh: list[RemoteLot], existing: dict[str, stored.PullRow],
                own: dict[str, rules.OwnOrders], index: LotIndex, translator: Translator | None,
                result: PullResult) -> None:
    """Listings seen for the first time: on hand = listed + that marketplace's open orders on them
    (two lots of one part in one bin are one local lot). A lot already stocked from another
    marketplace keeps its on hand (the next push evens its listings out); a new listing of a lot
    this marketplace already lists adds its pieces."""
    if not fresh:  # a re-pull of known lots: nothing to stock, link or observe here
        return
    keyed = _on_shelf_by_key(provider, fresh, own, translator, result)
    _stock_lots(store, provider, keyed, existing, index, result)
    index.reload()
    links = link(provider, fresh, existing, index, translator)
    stored.save_links(store, provider, links)
    _observe_fresh(store, provider, {lot.remote_lot_id: lot for lot in fresh}, own)
    for link_ in links:
        if link_.problem and link_.problem != LinkProblem.UNLINKED:
            result.problems.append(f"{provider} lot {link_.remote_lot_id}: {link_.problem}: {link_.detail}")


def _on_shelf_by_key(provider: str, fresh: list[RemoteLot], own: dict[str, rules.OwnOrders],
                     translator: Translator | None, result: PullResult) -> dict[tuple, InventoryLot]:
    """The pieces on the shelf behind the fresh listings, per local lot key."""
    keyed: dict[tuple, InventoryLot] = {}
    for lot in fresh:
        terms = local_key(lot, translator)
        if isinstance(terms, str):
            result.problems.append(f"{provider} lot {lot.remote_lot_id}: not pulled: {terms}")
            continue
        key = (*terms, lot.location or "")
        on_shelf = lot.quantity + own.get(lot.remote_lot_id, rules.NO_ORDERS).open
        if key in keyed:
            keyed[key].quantity += on_shelf
        else:
            keyed[key] = InventoryLot(*key, quantity=on_shelf, bricklink_lot_id=lot.bricklink_lot_id,
                                      name=lot.name, item_type=lot.item_type, price=lot.price)
    return keyed


def _stock_lots(store: Store, provider: str, keyed: dict[tuple, InventoryLot], existing: dict[str, stored.PullRow],
                index: LotIndex, result: PullResult) -> None:
    observed_here = {row["inventory_id"] for row in existing.values() if _observed(row)}
    observed_anywhere = stored.observed_lots(store)
    local = {(lot.part_number, lot.color_id, lot.condition, lot.location): lot.id for lot in index.by_id.values()}
    new_lots = []
    adjustments: list[tuple[int, int, Adjustment, str]] = []
    for key, found in keyed.items():
        lot_id = local.get(key)
        if lot_id is not None and lot_id in observed_here:
            adjustments.append((lot_id, found.quantity, Adjustment.PULL,
                                f"a new {provider} listing of this lot lists {found.quantity} more"))
            result.adjusted += 1
        elif lot_id not in observed_anywhere:
            new_lots.append(found)
    on_hand.adjust(store, adjustments)
    result.inserted, result.updated, _ = inventory.upsert_lots(store, new_lots)


def _observe_fresh(store: Store, provider: str, by_remote: dict[str, RemoteLot],
                   own: dict[str, rules.OwnOrders]) -> None:
    if not by_remote:  # none to observe (most pulls): not a read of every linked listing for none
        return
    linked = [(listing_id, remote, lot_id) for listing_id, remote, lot_id in stored.linked(store, provider)
              if remote in by_remote]
    stored.observe(store, [(listing_id, by_remote[remote].quantity, own.get(remote, rules.NO_ORDERS))
                           for listing_id, remote, _ in linked])
    stored.seen_again(store, [listing_id for listing_id, _, _ in linked])
    inventory.mark_stocked(store, {lot_id for _, _, lot_id in linked})


def _report_missing(store: Store, provider: str, listed: set[str], existing: dict[str, stored.PullRow],
                    index: LotIndex, zero_missing: bool, result: PullResult, own: dict[str, rules.OwnOrders],
                    gone_kind: Callable[[stored.PullRow], Gone]) -> None:
    adjustments: list[tuple[int, int, Adjustment, str]] = []
    gone: list[tuple[int, str, Gone | None]] = []
    sold_out_raised = _sold_out_raised(store, provider, listed, existing, own)
    for remote, row in existing.items():
        if remote in listed or row["inventory_id"] is None or (row.get("gone_at") is not None and not zero_missing):
            continue
        lot_ = index.by_id.get(row["inventory_id"])
        if zero_missing and lot_ is not None and lot_.quantity:
            adjustments.append((lot_.id, -lot_.quantity, Adjustment.PULL,
                                f"{provider} lot {remote} is no longer listed (--zero-missing)"))
            result.problems.append(f"{provider} lot {remote} is no longer listed; local lot {lot_.id} zeroed")
        else:
            result.problems.append(f"{provider} lot {remote} is no longer listed (local lot {row['inventory_id']}"
                                   f"{f', {lot_.quantity} on hand' if lot_ else ''}); kept as it is "
                                   "(--zero-missing sets it to 0)")
        kind = gone_kind(row) if row.get("gone_at") is None else row.get("gone_kind")  # why it went stays
        gone.append((row["id"], "no longer listed (seen by a pull)", kind))
    stored.adjust_many(store, adjustments)
    stored.mark_gone_many(store, gone)
    result.adjusted += sold_out_raised


def _sold_out_raised(store: Store, provider: str, listed: set[str], existing: dict[str, stored.PullRow],
                     own: dict[str, rules.OwnOrders]) -> int:
    """Listings no longer for sale whose orders took more than marketsync last saw listed: the
    seller raised them on the marketplace, then buyers bought them out -- those pieces were on the
    shelf, and a pull takes them in as ``stock adopt`` does (shortfalls made up first). Observed at
    0 after, so they are taken once. Returns how many listings."""
    shortfalls = [(row, rules.shortfall(stored.as_listing(row), own.get(remote, rules.NO_ORDERS)))
                  for remote, row in existing.items() if remote not in listed and row["inventory_id"] is not None]
    raised = [(row, pieces) for row, pieces in shortfalls if pieces > 0]
    on_hand.adjust(store, [(row["inventory_id"], pieces, Adjustment.PULL,
                            f"{provider} lot {row['remote_lot_id']} sold out after the seller raised it by {pieces}")
                           for row, pieces in raised])
    stored.observe(store, [(row["id"], 0, own.get(row["remote_lot_id"], rules.NO_ORDERS)) for row, _ in raised])
    return len(raised)
