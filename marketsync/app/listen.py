"""The listener's use case (``marketsync listen``): a marketplace hints that an order arrived, and
only that order is synced, then only the lots it touched are pushed to the other marketplaces.

A hint is never trusted beyond an order id: a content-free hint (a callback POST) makes marketsync
list the marketplace's own events (deduplicated by type, resource and timestamp, remembered in
the file only once the orders they name are written, so a crash loses nothing); a hint naming an
order is checked against the seller's store id first (another store's is refused without a call),
and an order the marketplace does not have costs one call and changes nothing. Every sync takes
the writer lock, so a hint during a cron run waits for it (bounded by ``wait``). Cron stays the net.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, cast

from marketsync.app.context import Marketplaces, Workspace
from marketsync.errors import MarketsyncError
from marketsync.model import Catalog, Notification, NotificationList, Notified, NotifyRegistration, now_iso
from marketsync.registry import Capability, marketplace

if TYPE_CHECKING:
    from marketsync.app.listing_push import PushResult
    from marketsync.app.order_sync import ProviderResult
    from marketsync.rules.matching import LotIndex
    from marketsync.store import Store


@dataclass
class Work:
    """What the listener has to do, coalesced from any number of hints."""

    orders: dict[str, set[str]] = field(default_factory=dict)  # marketplace -> order ids a hint named
    events: set[str] = field(default_factory=set)  # marketplaces whose events are to be listed
    full: bool = False  # the local trigger: a listed sync of every marketplace (as cron's)
    hints: dict[str, tuple[str, str]] = field(default_factory=dict)  # marketplace -> (last hint, when)

    def __bool__(self) -> bool:
        return bool(self.full or self.events or any(self.orders.values()))

    def merge(self, other: Work) -> None:
        for name, ids in other.orders.items():
            self.orders.setdefault(name, set()).update(ids)
        self.events |= other.events
        self.full = self.full or other.full
        self.hints.update(other.hints)

    def as_json(self) -> dict:
        return {"orders": {k: sorted(v) for k, v in self.orders.items() if v}, "events": sorted(self.events),
                "full": self.full}

    @classmethod
    def from_json(cls, data: Mapping) -> Work:
        given = data.get("orders")
        orders: dict = given if isinstance(given, dict) else {}
        return cls(orders={str(k): {str(i) for i in v} for k, v in orders.items() if isinstance(v, list)},
                   events={str(e) for e in data.get("events") or []}, full=bool(data.get("full")))


@dataclass
class ListenReport:
    results: list[ProviderResult] = field(default_factory=list)
    pushed: list[PushResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    store_ids: dict[str, str] = field(default_factory=dict)  # learned from the orders written

    @property
    def ok(self) -> bool:
        return not self.problems and all(r.ok for r in self.results) and all(p.ok for p in self.pushed)


def notified(names: list[str]) -> list[str]:
    """The marketplaces among ``names`` that tell a listener about orders."""
    return [name for name in names if marketplace(name).can(Capability.NOTIFICATIONS)]


def known_store_id(ws: Workspace, name: str) -> str | None:
    """The seller's store id on ``name``: ``<NAME>_STORE_ID``, else as its orders named it."""
    environ = ws.environ if ws.environ is not None else os.environ
    given = (environ.get(f"{name.upper()}_STORE_ID") or "").strip()
    if given:
        return given
    try:
        store = ws.read()
    except MarketsyncError:
        return None
    try:
        from marketsync.store.state import sync_state

        return sync_state(store, name).get("store_id") or None
    finally:
        store.close()


def handle(ws: Workspace, names: list[str], work: Work, *, push: bool, wait: float) -> ListenReport:
    """One coalesced batch of hints under the writer lock: the orders named (or listed by their
    events), then (``push``) their lots on every other marketplace."""
    from marketsync.store import state
    from marketsync.store.inventory import lot_index

    report = ListenReport()
    with ws.write(wait, create=True) as store:
        marketplaces = ws.marketplaces(store, names)
        with store.atomic():
            for name, (hint, at) in work.hints.items():
                state.record_hint(store, name, hint, at)
            state.record_listener(store, notified(names), now_iso())
        if work.full:
            report.results += marketplaces.sync()
        index = lot_index(store)
        for adapter in marketplaces.adapters:
            if not marketplace(adapter.name).can(Capability.NOTIFICATIONS):
                continue
            result = _sync_hinted(store, marketplaces, cast(Notified, adapter), work, index, report)
            if result is not None:
                report.results.append(result)
        from marketsync.app.order_sync import replan_short_lines

        replan_short_lines(store, index)
        for result in report.results:
            if result.store_id:
                report.store_ids[result.provider] = result.store_id
        if push:
            report.pushed = _push_touched(store, marketplaces, report.results, index)
        with store.atomic():
            state.add_api_calls(store, marketplaces.counter.take_unsaved())
    return report


def _sync_hinted(store: Store, marketplaces: Marketplaces, adapter: Notified, work: Work, index: LotIndex,
                 report: ListenReport) -> ProviderResult | None:
    from marketsync.app import catalog as catalogue
    from marketsync.app import order_sync
    from marketsync.store import listener as stored
    from marketsync.store import state

    name = adapter.name
    ids = set(work.orders.get(name, ()))
    events: list[Notification] = []
    if name in work.events:
        try:
            events = stored.unhandled(store, name, cast(NotificationList, adapter).notifications())
        except MarketsyncError as error:
            report.problems.append(f"{name}: its notifications could not be read: {error.message}")
            return None
        ids |= {event.resource_id for event in events if event.event_type == "Order"}
    if not ids:
        with store.atomic():
            stored.handled(store, name, events)
        return None
    catalog = cast(Catalog, adapter) if marketplace(name).can(Capability.CATALOG) else None
    translator = catalogue.translator(store, index, catalog) if catalog is not None else None
    result = order_sync.sync_named(store, adapter, ids, counter=marketplaces.counter, index=index,
                                   translator=translator, catalog=catalog,
                                   concurrency=marketplaces.settings.concurrency)
    if result.ok:
        with store.atomic():
            stored.handled(store, name, events)  # only now: a crash before this lists them again
            state.record_hint_sync(store, name, now_iso())
    return result


def _push_touched(store: Store, marketplaces: Marketplaces, results: list[ProviderResult],
                  index: LotIndex) -> list[PushResult]:
    """Only the lots the synced orders touched, each on every marketplace but the order's own (its
    own listing already moved with the sale; cron's push judges it)."""
    from marketsync.app import listing_push
    from marketsync.store import catalog as stored_catalog
    from marketsync.store import listener as stored

    listing = [a.name for a in marketplaces.adapters if marketplace(a.name).can(Capability.LISTINGS)]
    only: dict[str, set[int]] = {}
    for result in results:
        lots = stored.lots_of_orders(store, result.provider, result.order_ids)
        for other in listing:
            if other != result.provider and lots:
                only.setdefault(other, set()).update(lots)
    if not only:
        return []
    index.reload()
    translator = marketplaces.translator(index)
    pushed = listing_push.run(store, list(marketplaces.adapters), index, translator=translator, only=only,
                              settings=marketplaces.cancel_restocks)
    if translator is not None:
        with store.atomic():
            stored_catalog.save(store, translator.take_learned())
    return pushed


def heartbeat(ws: Workspace, names: list[str], *, alive: bool, wait: float = 1.0) -> None:
    """The listener is up (``alive``) or stopped cleanly: ``status --max-age`` watches the first."""
    from marketsync.store import state

    with ws.write(wait, create=True) as store, store.atomic():
        state.record_listener(store, notified(names), now_iso() if alive else None)


def register(ws: Workspace, names: list[str], ip: str) -> list[str]:
    """Tell every marketplace that is told by an API call where to send its hints (an empty ``ip``:
    nowhere). The marketplaces registered."""
    from marketsync.providers import build_adapter
    from marketsync.config import HttpSettings

    done = []
    for name in notified(names):
        hint = marketplace(name).hint
        if hint is None or hint.port is None:
            continue  # registered with the marketplace by hand (a callback URL of one's own)
        adapter = build_adapter(name, ws.settings or HttpSettings(), environ=ws.environ)
        cast(NotifyRegistration, adapter).register_notify(ip)
        done.append(name)
    return done
