"""``marketsync inventory pull``: the seller's store lots as a marketplace lists them, into the
local inventory."""

from __future__ import annotations

from typing import Iterable

from sqlite_utils import Database

from marketsync.model import InventoryLot
from marketsync.store import inventory, state


def merge_duplicate_lots(lots: Iterable[InventoryLot]) -> list[InventoryLot]:
    """BrickLink allows two lots of the same part in the same bin: one local lot holds both."""
    merged: dict[tuple, InventoryLot] = {}
    for lot in lots:
        key = (lot.part_number, lot.color_id, lot.condition, lot.location)
        if key in merged:
            merged[key].quantity += lot.quantity
        else:
            merged[key] = lot
    return list(merged.values())


def store_pulled(db: Database, account: str, provider: str, lots: Iterable[InventoryLot], calls: int) -> tuple[int, int]:
    """The pulled lots and the calls that fetched them, in one transaction; (inserted, updated)."""
    with db.atomic():
        counts = inventory.upsert_lots(db, account, merge_duplicate_lots(lots))
        state.add_api_calls(db, account, {provider: calls})
    return counts
