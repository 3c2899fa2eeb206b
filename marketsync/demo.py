"""``marketsync demo``: a fresh demo database, seeded with the sandbox's demo inventory."""

from __future__ import annotations

import os
from decimal import Decimal

from sqlite_utils import Database

from marketsync.model import InventoryLot
from marketsync.store import open_db
from marketsync.store.inventory import upsert_lots


def recreate(db_path: str, account: str) -> Database:
    """Delete the demo database (and its WAL files), create it anew, import the demo inventory.
    The caller holds the writer lock."""
    from marketsync.sandbox import demo_inventory_rows

    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db_path + suffix):
            os.remove(db_path + suffix)
    db = open_db(db_path)
    lots = [InventoryLot(**{**row, "price": Decimal(row["price"]) if row.get("price") else None})
            for row in demo_inventory_rows()]
    with db.atomic():
        upsert_lots(db, account, lots)
    return db
