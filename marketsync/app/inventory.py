"""The inventory use cases: import a file of lots, and pull them from a marketplace's listing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from marketsync.app import collector
from marketsync.app.context import Workspace

if TYPE_CHECKING:
    from marketsync.app.listing_pull import PullResult
    from marketsync.app.order_sync import ProviderResult


@dataclass
class Imported:
    inserted: int
    changed: int
    unchanged: int
    warnings: list[str] = field(default_factory=list)  # a lot left oversold, pieces put back that shipped


def import_file(ws: Workspace, path: str, *, wait: float = 0.0) -> Imported:
    """All or nothing. A lot the import raises above what it held although pieces shipped from it
    since it was last counted gets an ``adjustments`` row (those pieces are put back: a count from
    before the shipments?) and a warning; so does a lot the import leaves oversold."""
    from marketsync.inventory_files import read_inventory_file
    from marketsync.model import Adjustment
    from marketsync.store import listings as stored_listings
    from marketsync.store import queries
    from marketsync.store.inventory import lots as stored_lots
    from marketsync.store.inventory import upsert_lots

    lots = read_inventory_file(path)
    with ws.write(wait, create=True) as store, store.atomic():
        def key(lot: Any) -> tuple:
            return lot.part_number, lot.color_id, lot.condition, lot.location or ""

        before = {key(lot): lot for lot in stored_lots(store)}
        shipped = stored_listings.shipped_since(store, [lot.id for lot in before.values()])
        done = Imported(*upsert_lots(store, lots))
        for lot in lots:
            was = before.get(key(lot))
            if was is None or lot.quantity <= was.quantity or not shipped.get(was.id):
                continue
            back = min(lot.quantity - was.quantity, shipped[was.id])
            detail = (f"lot {was.id} ({lot.part_number} colour {lot.color_id} {lot.condition} at "
                      f"{lot.location or 'no location'}): the import sets on hand {was.quantity} -> {lot.quantity}, "
                      f"putting back {back} of the {shipped[was.id]} piece(s) that shipped since it was last counted")
            stored_listings.record_adjustment(store, was.id, back, Adjustment.IMPORT, detail)
            done.warnings.append(f"warning: {detail}; if the file was counted before they shipped, count the bin "
                                 "and import it again")
        touched = {key(lot) for lot in lots}
        done.warnings += [f"oversold: lot {row['id']} ({row['part_number']} colour {row['color_id']} {row['condition']} "
                          f"at {row['location'] or 'no location'}) has {row['quantity_reserved']} reserved but "
                          f"{row['quantity']} on hand after the import" for row in queries.oversold(store)
                          if (row["part_number"], row["color_id"], row["condition"], row["location"] or "") in touched]
    return done


@dataclass
class PullReport:
    results: list[ProviderResult] = field(default_factory=list)  # every configured marketplace's orders, first
    pulled: PullResult | None = None

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.results)


def pull(ws: Workspace, name: str, *, zero_missing: bool = False, wait: float = 0.0,
         new_account: bool = False) -> PullReport:
    """Every configured marketplace's orders first (what the listing shows is judged against all of
    them), then ``name``'s lots into on hand, then lines waiting for a lot matched again: a line is
    reported unmatched only if it still is once the lots are in."""
    from marketsync.app import catalog, listing_pull, reserve
    from marketsync.store.state import known_restocks
    from marketsync.app.sync import refuse_new_account
    from marketsync.config import configured_providers, require_credentials
    from marketsync.store import queries
    from marketsync.store.inventory import lot_index

    require_credentials(name, ws.environ)
    report = PullReport()
    with ws.write(wait, create=True) as store:
        if not new_account:
            refuse_new_account(store)
        marketplaces = ws.marketplaces(store, sorted(set(configured_providers(ws.environ)) | {name}))
        report.results = marketplaces.sync()
        adapter = marketplaces.adapter(name)
        with collector.paused():  # one object per lot and listing, all kept to the end of the pull
            lots = adapter.list_lots()
            settled = []
            if adapter.deletes_empty_lots:  # a lot a relist left open is marketsync's own, never pieces to add
                from marketsync.app import relist

                settled = relist.settle_open(store, name, [lot for lot in lots if lot.for_sale])
            index = lot_index(store, lazy=True)  # a re-pull of known lots may never use it before its end
            translator = marketplaces.translator(index, beyond_inventory=True) \
                if marketplaces.catalog is not None and marketplaces.catalog.name == name else None
            report.pulled = listing_pull.pull(store, name, lots, index, translator,
                                              calls=marketplaces.counter.take_unsaved(), zero_missing=zero_missing,
                                              restocking=known_restocks(store, name, marketplaces.cancel_restocks.get(name)),
                                              deletes_empty_lots=adapter.deletes_empty_lots)
            report.pulled.problems += settled
            # from what is stored: no lookups (nor the lots read again, when no order is open)
            reserve.rematch(store, index, lambda: catalog.translator(store, index))
        still = queries.unmatched_lines(store)
        for result in report.results:
            result.problems = [text for text in result.problems if text not in result.unmatched
                               or (result.provider, *result.unmatched[text]) in still]
    return report
