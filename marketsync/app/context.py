"""Where a use case works: the database file and account, how to talk to the marketplaces, and the
marketplaces of one run (their adapters over one call counter)."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, cast

from marketsync.config import HttpSettings
from marketsync.model import Catalog, MarketplaceAdapter
from marketsync.registry import Capability, marketplace
from marketsync.store import Store

if TYPE_CHECKING:
    from marketsync.app.listing_push import PushResult
    from marketsync.app.order_sync import Progress, ProviderResult
    from marketsync.app.translate import Translator
    from marketsync.rules.matching import LotIndex


@dataclass
class Workspace:
    """One database file and account, and the HTTP settings for the marketplaces (``environ``:
    where credentials and API addresses are read; the process environment by default)."""

    db_path: str
    account: str
    settings: HttpSettings | None = None
    environ: Mapping[str, str] | None = None
    cancel_restocks: dict[str, bool] | None = None  # the seller's settings; None: read from ``environ``

    def restock_settings(self) -> dict[str, bool]:
        """marketplace -> whether it restocks cancelled orders, as the seller set it (absent: not set)."""
        from marketsync.config import cancel_restocks

        return dict(self.cancel_restocks) if self.cancel_restocks is not None else cancel_restocks(self.environ)

    def read(self) -> Store:
        """The store for reading (a missing file is an error, never created)."""
        from marketsync.store import open_store

        return open_store(self.db_path, self.account, create=False)

    def read_only(self) -> Store:
        """The store for a command that only queries it (``status``): the same checks as
        :meth:`read`, without loading sqlite-utils when the file is current. Its ``db`` reads, never writes."""
        from marketsync.store.reader import open_reader

        return open_reader(self.db_path, self.account)

    @contextmanager
    def write(self, wait: float = 0.0, *, create: bool = False,
              before_open: Callable[[], None] | None = None) -> Iterator[Store]:
        """The store under the writer lock (one writer at a time: cron, a listener, a command);
        ``before_open`` runs under the lock before the file is opened (sync's daily backup)."""
        from marketsync.store.lock import writer_lock

        if not create:
            self.read().close()  # a missing or unusable database fails before a lock file is left beside it
        with writer_lock(self.db_path, wait):
            from marketsync.app.backup import refuse_if_damaged

            refuse_if_damaged(self.db_path)  # a database a check found damaged is never written
            if before_open is not None:
                before_open()
            from marketsync.store import open_store

            store = open_store(self.db_path, self.account, create=create)
            try:
                yield store
            finally:
                store.close()

    def marketplaces(self, store: Store, names: list[str]) -> Marketplaces:
        return Marketplaces(store, names, self.settings or HttpSettings(), self.environ,
                            cancel_restocks=self.restock_settings())


class Marketplaces:
    """One run's adapters over one call counter, and the jobs that use several of them."""

    def __init__(self, store: Store, names: list[str], settings: HttpSettings,
                 environ: Mapping[str, str] | None = None, *, cancel_restocks: dict[str, bool] | None = None):
        from marketsync.providers import build_adapters
        from marketsync.store.state import api_calls_on

        self.store, self.settings = store, settings
        self.cancel_restocks = dict(cancel_restocks or {})  # the seller's settings (docs/stock-model.md)
        self.oversold_said: set[int] = set()  # lots the run has said are oversold
        adapters, self.counter = build_adapters(names, settings, environ=environ,
                                                calls_today=lambda name: api_calls_on(store, name))
        self.adapters: list[MarketplaceAdapter] = adapters
        self.catalog: Catalog | None = next((cast(Catalog, a) for a in self.adapters
                                             if marketplace(a.name).can(Capability.CATALOG)), None)

    def adapter(self, name: str) -> MarketplaceAdapter:
        return next(a for a in self.adapters if a.name == name)

    def translator(self, index: LotIndex, *, beyond_inventory: bool = False) -> Translator | None:
        """The translator of lines and lots named in a marketplace's own catalogue (None when no
        marketplace of the run has one)."""
        from marketsync.app import catalog

        return catalog.translator(self.store, index, self.catalog, beyond_inventory=beyond_inventory) \
            if self.catalog is not None else None

    def sync(self, *, full: bool = False, progress: Progress | None = None,
             report_oversold: bool = True) -> list[ProviderResult]:
        """The orders of every marketplace; a lot they oversold is said at the end (with
        ``report_oversold`` False, when the caller calls :meth:`report_oversold` at its run's end)."""
        from marketsync.app import order_sync

        results = order_sync.run(self.store, list(self.adapters), self.counter, full=full,
                                 concurrency=self.settings.concurrency, progress=progress or order_sync.NoProgress())
        if report_oversold:
            self.report_oversold(results)
        return results

    def report_oversold(self, results: list[ProviderResult]) -> None:
        """A line on ``results`` for each lot their orders oversold that is still oversold now,
        with its figures now -- once per run (a lot the push's re-sync oversells again is not said twice)."""
        from marketsync.app import order_sync

        order_sync.oversold_lines(self.store, results, self.oversold_said)

    def push(self, *, dry_run: bool, resync: bool = True, progress: Progress | None = None,
             report_oversold: bool = True, relist: bool = True) -> tuple[list[PushResult], list[ProviderResult]]:
        """The listings pushed (after the orders synced again for the bracket), then (``relist``)
        the lots buyers sold out and their marketplace deleted created again where their lot has
        pieces (app/relist.py); (push results, resync results)."""
        from marketsync.app import listing_push
        from marketsync.store import catalog as stored_catalog
        from marketsync.store.inventory import lot_index
        from marketsync.store.state import add_api_calls

        again: list[Any] = []

        def sync_again() -> tuple[set[tuple[str, str]], set[str]]:
            again.extend(self.sync(progress=progress, report_oversold=False))
            return (set().union(*(result.touched for result in again)),
                    {result.provider for result in again if not result.ok})

        index = lot_index(self.store)
        translator = self.translator(index)
        results = listing_push.run(self.store, list(self.adapters), index, translator=translator,
                                   resync=sync_again if resync else None, dry_run=dry_run,
                                   settings=self.cancel_restocks)
        if relist and not dry_run:  # creations wait behind the orders and every marketplace's push
            from marketsync.app import relist as relisting

            relisting.run(self.store, self, results)
        with self.store.atomic():
            if translator is not None and not dry_run:
                stored_catalog.save(self.store, translator.take_learned())
            add_api_calls(self.store, self.counter.take_unsaved())
        if report_oversold:
            self.report_oversold(again)
        return results, again
