"""The plain, normalised records every adapter returns. No SQLite, no HTTP here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

PROVIDERS = ("bricklink", "brickowl")

# Unified order lifecycle (shared/marketplace-apis.md, "Mapping both onto one order lifecycle").
OPEN_STATUSES = ("pending", "paid", "processing", "packed", "disputed", "unknown")
SHIPPED_STATUSES = ("shipped", "completed")
CANCELLED_STATUSES = ("cancelled",)
STATUSES = ("pending", "paid", "processing", "packed", "shipped", "completed", "disputed", "cancelled", "unknown")

BRICKLINK_STATUS = {
    "PENDING": "pending",
    "UPDATED": "pending",
    "PAID-PENDING": "pending",
    "PAID": "paid",
    "PROCESSING": "processing",
    "READY": "processing",
    "PACKED": "packed",
    "SHIPPED": "shipped",
    "RECEIVED": "completed",
    "COMPLETED": "completed",
    "OCR": "disputed",
    "NPB": "disputed",
    "NPX": "disputed",
    "NRS": "disputed",
    "NSS": "disputed",
    "CANCELLED": "cancelled",
    "PURGED": "cancelled",
}

BRICKOWL_STATUS = {
    "pending": "pending",
    "payment submitted": "pending",
    "payment received": "paid",
    "processing": "processing",
    "on hold": "processing",
    "processed": "packed",
    "shipped": "shipped",
    "received": "completed",
    "cancelled": "cancelled",
}
BRICKOWL_STATUS_IDS = {
    "0": "Pending",
    "1": "Payment Submitted",
    "2": "Payment Received",
    "3": "Processing",
    "4": "Processed",
    "5": "Shipped",
    "6": "Received",
    "7": "On Hold",
    "8": "Cancelled",
}


def bricklink_status(raw: str | None) -> str:
    return BRICKLINK_STATUS.get((raw or "").strip().upper(), "unknown")


def brickowl_status(name: str | None, status_id: Any = None) -> str:
    unified = BRICKOWL_STATUS.get((name or "").strip().lower())
    if unified is None and status_id is not None:
        by_id = BRICKOWL_STATUS_IDS.get(str(status_id).strip())
        unified = BRICKOWL_STATUS.get(by_id.lower()) if by_id else None
    return unified or "unknown"


@dataclass
class OrderSummary:
    """One entry of a marketplace's order list: enough to decide whether to fetch more."""

    provider: str
    order_id: str
    status: str  # unified
    provider_status: str
    fingerprint: str  # changes whenever anything we store about the order changes
    date_ordered: dt.datetime | None
    raw: dict[str, Any] = field(repr=False, default_factory=dict)


@dataclass
class Order:
    provider: str
    order_id: str
    status: str
    provider_status: str
    fingerprint: str
    date_ordered: dt.datetime | None = None
    date_status_changed: dt.datetime | None = None
    buyer_name: str | None = None
    buyer_email: str | None = None
    lot_count: int | None = None
    piece_count: int | None = None
    subtotal: Decimal | None = None
    grand_total: Decimal | None = None
    currency: str | None = None
    payment_status: str | None = None
    shipping_method: str | None = None
    tracking_number: str | None = None
    is_filed: bool = False
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    raw_json: str | None = field(repr=False, default=None)  # ``raw`` serialised, off the writer's thread


@dataclass
class OrderLine:
    """One line of an order, keyed the BrickLink way where the marketplace allows it.

    ``line_key`` identifies the line durably within its order: BrickLink has no item id, so
    it is ``"<batch>:<inventory_id>"``; BrickOwl's is its ``order_item_id``.
    """

    provider: str
    order_id: str
    line_key: str
    quantity: int
    part_number: str | None = None  # BrickLink item number (None when not translatable yet)
    color_id: int | None = None  # BrickLink colour id
    condition: str | None = None  # 'new' | 'used' | None (BrickOwl 'other')
    location: str | None = None  # BrickLink remarks / BrickOwl personal_note
    name: str | None = None
    item_type: str | None = None
    color_name: str | None = None
    unit_price: Decimal | None = None
    currency: str | None = None
    batch: int | None = None
    provider_lot_id: str | None = None  # BrickLink inventory_id / BrickOwl lot_id
    bricklink_lot_id: str | None = None  # the BrickLink lot this line's lot is linked to
    # BrickOwl identity, kept for translation (see marketsync/identity.py)
    boid: str | None = None
    provider_color_id: int | None = None
    provider_condition: str | None = None
    alt_part_numbers: list[str] = field(default_factory=list)  # ldraw, peeron_id, design_id
    unmatched_reason: str | None = None
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    raw_json: str | None = field(repr=False, default=None)


@dataclass
class InventoryLot:
    """A lot of the seller's own store, as a marketplace lists it."""

    part_number: str
    color_id: int
    condition: str
    location: str
    quantity: int
    bricklink_lot_id: str | None = None
    name: str | None = None
    item_type: str | None = None
    price: Decimal | None = None


@dataclass
class SyncListing:
    """What a marketplace lists for one sync run, with anything the seller should know."""

    summaries: list[OrderSummary]
    warnings: list[str] = field(default_factory=list)
    complete: bool = True  # False when the marketplace may have left orders out
