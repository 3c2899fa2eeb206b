"""``marketsync demo``: a fresh demo database, seeded with the sandbox's demo inventory."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from marketsync.store import Store

from marketsync.errors import ConfigError
from marketsync.model import InventoryLot
from marketsync.store import open_store
from marketsync.store.connection import is_demo_database, mark_demo
from marketsync.store.inventory import upsert_lots

if TYPE_CHECKING:
    from marketsync.app.listing_push import PushResult
    from marketsync.app.order_sync import ProviderResult


def refuse_unless_demo(db_path: str, force: bool = False) -> None:
    if os.path.exists(db_path) and not force and not is_demo_database(db_path):
        raise ConfigError(f"{db_path} is not a marketsync demo database; refusing to replace it "
                          "(use another --db, or --force to replace it)")


def recreate(db_path: str, account: str, *, force: bool = False) -> Store:
    """Delete the demo database (and its WAL files), create it anew, import the demo inventory.
    Any other file is refused unless ``force``: `--db real.db` must never replace a real database.
    The caller holds the writer lock."""
    from marketsync.sandbox import demo_inventory_rows

    refuse_unless_demo(db_path, force)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db_path + suffix):
            os.remove(db_path + suffix)
    store = open_store(db_path, account)
    mark_demo(store)
    lots = [InventoryLot(**{**row, "price": Decimal(row["price"]) if row.get("price") else None})
            for row in demo_inventory_rows()]
    with store.atomic():
        upsert_lots(store, lots)
    return store


@dataclass
class DemoReport:
    results: list[ProviderResult] = field(default_factory=list)
    pushed: list[PushResult] = field(default_factory=list)
    sale: str | None = None  # what the demo's buyer took
    followed: list[PushResult] = field(default_factory=list)  # the push that carried the sale
    orders: list[dict[str, Any]] = field(default_factory=list)


def run(db_path: str, *, force: bool = False) -> DemoReport:
    """The demo: a fresh database, the sandbox's demo stores synced and pushed, then one sale on the
    first marketplace carried to the others. No credentials, no network."""
    from marketsync.app.context import Workspace
    from marketsync.config import DEFAULT_ACCOUNT, HttpSettings
    from marketsync.registry import NAMES
    from marketsync.sandbox import Sandbox
    from marketsync.store.lock import writer_lock
    from marketsync.store.queries import orders

    refuse_unless_demo(db_path, force)  # before a lock file is left beside someone's file
    report = DemoReport()
    with writer_lock(db_path), Sandbox(demo=True) as sandbox:
        sandbox.brickowl.rate_limit = None  # a demo need not wait out BrickOwl's per-minute pacing
        store = recreate(db_path, DEFAULT_ACCOUNT, force=force)
        ws = Workspace(db_path, DEFAULT_ACCOUNT, HttpSettings(timeout=10, backoff=0.1, brickowl_rate_limit=None),
                       environ=sandbox.env())
        marketplaces = ws.marketplaces(store, list(NAMES))
        report.results = marketplaces.sync()
        report.pushed, _ = marketplaces.push(dry_run=False)
        report.sale = sell_one(sandbox, store, NAMES[0])
        if report.sale:
            report.followed, _ = marketplaces.push(dry_run=False)
        report.orders = orders(store)
        store.close()
    return report


def sell_one(sandbox: Any, store: Store, provider: str) -> str | None:
    """One new order for 2 pieces of a lot listed everywhere with pieces to spare (the demo's second
    act); what was sold, for the demo to print."""
    from marketsync.registry import marketplace
    from marketsync.store.queries import stock

    rows = [r for r in stock(store, provider) if r["listed"] and r["listed"] > 5 and r["available"] > 5]
    if not rows:
        return None
    sandbox.sell(provider, rows[0]["remote_lot_id"], 2)
    title = marketplace(provider).title
    return f"a {title} buyer took 2 x {rows[0]['part_number']} from bin {rows[0]['location']}"
