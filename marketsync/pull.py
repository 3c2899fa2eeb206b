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

from sqlite_utils import Database

from marketsync import listings as rules
from marketsync.matching import LotIndex
from marketsync.model import InventoryLot, OrderLine, RemoteLot
from marketsync.push import link
from marketsync.store import inventory, state
from marketsync.store import listings as stored
from marketsync.translate import Translator


@dataclass
class PullResult:
    inserted: int = 0
    updated: int = 0
    adjusted: int = 0
    problems: list[str] = field(default_factory=list)


def pull(db: Database, account: str, provider: str, lots: list[RemoteLot], index: LotIndex,
         translator: Translator | None, *, calls: dict[str, int], zero_missing: bool = False) -> PullResult:
    """Store the pulled lots and the calls that fetched them (caller holds the writer lock; one
    transaction)."""
    result = PullResult()
    with db.atomic():
        own = stored.own_orders(db, account, provider)
        existing = {row["remote_lot_id"]: row for row in stored.listings(db, account, provider)}
        observed_lots = {row["inventory_id"] for row in stored.listings(db, account)
                         if row["inventory_id"] is not None and row["listed"] is not None}
        fresh: list[RemoteLot] = []
        for lot in lots:
            row = existing.get(lot.remote_lot_id)
            if row is None or row["inventory_id"] is None or row["listed"] is None:
                fresh.append(lot)
                continue
            listing, mine = stored.as_listing(row), own.get(lot.remote_lot_id, rules.NO_ORDERS)
            change = lot.quantity - rules.nearest_expected(listing, mine, lot.quantity)
            if change:
                stored.adjust_on_hand(db, account, row["inventory_id"], change, "pull",
                                      f"{provider} lot {lot.remote_lot_id} lists {lot.quantity}, {change:+d} "
                                      "more than its orders and marketsync's changes explain")
                result.adjusted += 1
            stored.observe(db, [(listing.id, lot.quantity, mine)])
            stored.release_hold(db, listing.id)

        keyed: dict[tuple, InventoryLot] = {}
        for lot in fresh:
            key_lot = _local_terms(lot, translator)
            if isinstance(key_lot, str):
                result.problems.append(f"{provider} lot {lot.remote_lot_id}: not pulled: {key_lot}")
                continue
            key = (key_lot.part_number, key_lot.color_id, key_lot.condition, key_lot.location)
            on_shelf = lot.quantity + own.get(lot.remote_lot_id, rules.NO_ORDERS).open
            if key in keyed:
                keyed[key].quantity += on_shelf
            else:
                keyed[key] = InventoryLot(*key, quantity=on_shelf, bricklink_lot_id=key_lot.bricklink_lot_id,
                                          name=lot.name, item_type=lot.item_type, price=lot.price)
        stocked = {(l.part_number, l.color_id, l.condition, l.location): l.id
                   for l in index.by_id.values() if l.id in observed_lots}
        new_lots = [l for key, l in keyed.items() if key not in stocked]
        result.inserted, result.updated, _ = inventory.upsert_lots(db, account, new_lots)
        index.reload()

        links = link(provider, fresh, existing, index, translator)
        by_remote = {lot.remote_lot_id: lot for lot in fresh}
        stored.save_links(db, account, provider, links)
        for row in stored.listings(db, account, provider):
            seen = by_remote.get(row["remote_lot_id"])
            if seen is not None and row["inventory_id"] is not None:
                stored.observe(db, [(row["id"], seen.quantity, own.get(seen.remote_lot_id, rules.NO_ORDERS))])
        for link_ in links:
            if link_.problem and link_.problem != "unlinked":
                result.problems.append(f"{provider} lot {link_.remote_lot_id}: {link_.problem}: {link_.detail}")

        listed = {lot.remote_lot_id for lot in lots}
        for remote, row in existing.items():
            if remote in listed or row["inventory_id"] is None:
                continue
            lot_ = index.by_id.get(row["inventory_id"])
            if zero_missing and lot_ is not None and lot_.quantity:
                stored.adjust_on_hand(db, account, lot_.id, -lot_.quantity, "pull",
                                      f"{provider} lot {remote} is no longer listed (--zero-missing)")
                result.problems.append(f"{provider} lot {remote} is no longer listed; local lot {lot_.id} zeroed")
            else:
                result.problems.append(f"{provider} lot {remote} is no longer listed (local lot {row['inventory_id']}"
                                       f"{f', {lot_.quantity} on hand' if lot_ else ''}); kept as it is "
                                       "(--zero-missing sets it to 0)")
        state.add_api_calls(db, account, calls)
    index.reload()
    return result


def _local_terms(lot: RemoteLot, translator: Translator | None) -> InventoryLot | str:
    """The local lot's key for a remote lot (BrickOwl's translated), or why there is none."""
    part, colour, condition, link_id = lot.part_number, lot.color_id, lot.condition, lot.bricklink_lot_id
    if lot.provider != "bricklink":
        if translator is None:
            return "BrickOwl lots need the catalogue to translate"
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
    return InventoryLot(part, colour, condition, lot.location or "", 0, bricklink_lot_id=link_id)
