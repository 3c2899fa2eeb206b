"""The inventory use cases: import a file of lots, and pull them from a marketplace's listing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from marketsync.app.context import Workspace

if TYPE_CHECKING:
    from marketsync.app.listing_pull import PullResult
    from marketsync.app.order_sync import ProviderResult


def import_file(ws: Workspace, path: str, *, wait: float = 0.0) -> tuple[int, int, int]:
    """All or nothing; (inserted, changed, unchanged)."""
    from marketsync.inventory_files import read_inventory_file
    from marketsync.store.inventory import upsert_lots

    lots = read_inventory_file(path)
    with ws.write(wait, create=True) as store, store.atomic():
        return upsert_lots(store, lots)


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
        lots = marketplaces.adapter(name).list_lots()
        index = lot_index(store)
        translator = marketplaces.translator(index, beyond_inventory=True) \
            if marketplaces.catalog is not None and marketplaces.catalog.name == name else None
        report.pulled = listing_pull.pull(store, name, lots, index, translator,
                                          calls=marketplaces.counter.take_unsaved(), zero_missing=zero_missing)
        reserve.rematch(store, index, catalog.translator(store, index))  # from what is stored: no lookups
        still = queries.unmatched_lines(store)
        for result in report.results:
            result.problems = [text for text in result.problems if text not in result.unmatched
                               or (result.provider, *result.unmatched[text]) in still]
    return report
