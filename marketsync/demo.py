"""``marketsync demo``: a fresh demo database, seeded with the sandbox's demo inventory."""

from __future__ import annotations

import os
from decimal import Decimal

from marketsync.store import Store

from marketsync.errors import ConfigError
from marketsync.model import InventoryLot
from marketsync.store import open_store
from marketsync.store.connection import is_demo_database, mark_demo
from marketsync.store.inventory import upsert_lots


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


def sell_one_on_bricklink(sandbox, store: Store) -> str | None:
    """Place one new BrickLink order for 2 pieces of a lot listed on both marketplaces with pieces
    to spare (the demo's second act); returns what was sold, for the demo to print."""
    from marketsync.store.queries import stock

    rows = [r for r in stock(store, "bricklink") if r["listed"] and r["listed"] > 5 and r["available"] > 5]
    if not rows:
        return None
    row = rows[0]
    sandbox.bricklink.add_order("PAID", buyer_name="demo-buyer", lines=[{
        "inventory_id": int(row["remote_lot_id"]), "no": row["part_number"], "color_id": row["color_id"],
        "quantity": 2, "remarks": row["location"], "new_or_used": "N" if row["condition"] == "new" else "U"}])
    return f"a BrickLink buyer took 2 x {row['part_number']} from bin {row['location']}"
