"""The write side of the data layer: orders, their lines, sync state and call accounting.

Callers hold the transaction (``db.atomic()``); nothing here commits by itself.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any, Iterable

from sqlite_utils import Database

from marketsync.db import iso, now_iso
from marketsync.matching import Match
from marketsync.providers.records import InventoryLot, Order, OrderLine

ORDER_COLUMNS = (
    "business_account_id", "provider", "order_id", "status", "provider_status", "buyer_name", "buyer_email",
    "date_ordered", "date_status_changed", "lot_count", "piece_count", "subtotal", "grand_total", "currency",
    "payment_status", "shipping_method", "tracking_number", "is_filed", "fingerprint", "synced_at", "raw",
)
_UPSERT_ORDER = (
    f"insert into orders ({', '.join(ORDER_COLUMNS)}, first_seen_at) "
    f"values ({', '.join('?' for _ in ORDER_COLUMNS)}, ?) "
    "on conflict (business_account_id, provider, order_id) do update set "
    + ", ".join(f"{c} = excluded.{c}" for c in ORDER_COLUMNS[3:])
    + " returning id, manual_release"
)
LINE_COLUMNS = (
    "order_ref", "business_account_id", "provider", "order_id", "line_key", "batch", "part_number", "color_id",
    "condition", "location", "quantity", "unit_price", "currency", "name", "item_type", "color_name",
    "provider_lot_id", "bricklink_lot_id", "boid", "provider_color_id", "provider_condition", "inventory_id",
    "match_method", "unmatched_reason", "raw",
)
_INSERT_LINE = f"insert into order_items ({', '.join(LINE_COLUMNS)}) values ({', '.join('?' for _ in LINE_COLUMNS)})"


# One encoder for every raw payload (json.dumps with options builds a new one per call), and no
# circular-reference bookkeeping: decoded JSON never refers to itself. ~8% of a sync's write path.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str, check_circular=False)


def to_json(raw: Any) -> str:
    return _ENCODER.encode(raw)


def serialise_payloads(order: Order, lines: list[OrderLine]) -> None:
    """Serialise the raw payloads ahead of the write, in the fetching thread: the writer thread
    is a backfill's bottleneck, the fetching threads mostly wait on the network."""
    order.raw_json = to_json(order.raw)
    for line in lines:
        line.raw_json = to_json(line.raw)


def money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def known_orders(db: Database, account: str, provider: str) -> dict[str, tuple[str | None, str]]:
    """order_id -> (fingerprint, status) of every order held for the provider."""
    rows = db.execute(
        "select order_id, fingerprint, status from orders where business_account_id = ? and provider = ?",
        [account, provider],
    )
    return {order_id: (fingerprint, status) for order_id, fingerprint, status in rows}


def _order_values(account: str, order: Order, now: str) -> tuple:
    return (
        account, order.provider, order.order_id, order.status, order.provider_status, order.buyer_name,
        order.buyer_email, iso(order.date_ordered), iso(order.date_status_changed), order.lot_count,
        order.piece_count, money(order.subtotal), money(order.grand_total), order.currency,
        order.payment_status, order.shipping_method, order.tracking_number, int(order.is_filed),
        order.fingerprint, now, order.raw_json or to_json(order.raw), now,
    )


def upsert_order(db: Database, account: str, order: Order) -> tuple[int, bool]:
    """Insert or update the order row; returns (row id, manual_release flag)."""
    ref, manual_release = db.execute(_UPSERT_ORDER, _order_values(account, order, now_iso())).fetchone()
    return ref, bool(manual_release)


def upsert_orders(db: Database, account: str, orders: list[Order]) -> list[tuple[int, bool]]:
    """upsert_order for a batch: one executemany, then one query for the row ids."""
    now = now_iso()
    db.conn.executemany(_UPSERT_ORDER.rsplit(" returning ", 1)[0], [_order_values(account, o, now) for o in orders])
    found: dict[tuple[str, str], tuple[int, bool]] = {}
    for provider in {o.provider for o in orders}:
        ids = [o.order_id for o in orders if o.provider == provider]
        for ref, order_id, manual_release in db.execute(
            f"select id, order_id, manual_release from orders where business_account_id = ? and provider = ? "
            f"and order_id in ({', '.join('?' for _ in ids)})", [account, provider, *ids],
        ):
            found[(provider, order_id)] = (ref, bool(manual_release))
    return [found[(o.provider, o.order_id)] for o in orders]


def stored_lines(db: Database, order_ref: int) -> dict[str, tuple[int | None, str | None]]:
    """line_key -> (inventory_id, unmatched_reason) as stored now."""
    rows = db.execute("select line_key, inventory_id, unmatched_reason from order_items where order_ref = ?", [order_ref])
    return {key: (lot, reason) for key, lot, reason in rows}


def replace_lines(db: Database, account: str, order_ref: int, lines: list[OrderLine], matches: list[Match]) -> None:
    db.execute("delete from order_items where order_ref = ?", [order_ref])
    db.conn.executemany(_INSERT_LINE, line_rows(account, order_ref, lines, matches))


def line_rows(account: str, order_ref: int, lines: list[OrderLine], matches: list[Match]) -> list[tuple]:
    """The order_items rows of one order's lines (for replace_lines / insert_lines)."""
    return [
        (
            order_ref, account, line.provider, line.order_id, line.line_key, line.batch, line.part_number,
            line.color_id, line.condition, match.location or line.location, line.quantity,
            money(line.unit_price), line.currency, line.name, line.item_type, line.color_name,
            line.provider_lot_id, line.bricklink_lot_id, line.boid, line.provider_color_id,
            line.provider_condition, match.inventory_id, match.method, match.reason, line.raw_json or to_json(line.raw),
        )
        for line, match in zip(lines, matches)
    ]


# --- the same for a batch of orders: a few statements instead of a few per order -------------
def chunks(values: list, size: int = 500) -> Iterable[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def stored_lines_of(db: Database, order_refs: list[int]) -> dict[int, dict[str, tuple[int | None, str | None]]]:
    """stored_lines() of many orders: order_ref -> line_key -> (inventory_id, unmatched_reason)."""
    found: dict[int, dict[str, tuple[int | None, str | None]]] = {}
    for part in chunks(order_refs):
        rows = db.execute(
            f"select order_ref, line_key, inventory_id, unmatched_reason from order_items "
            f"where order_ref in ({', '.join('?' for _ in part)})",
            part,
        )
        for ref, key, lot, reason in rows:
            found.setdefault(ref, {})[key] = (lot, reason)
    return found


def delete_lines(db: Database, order_refs: list[int]) -> None:
    db.conn.executemany("delete from order_items where order_ref = ?", [(ref,) for ref in order_refs])


def insert_lines(db: Database, rows: list[tuple]) -> None:
    db.conn.executemany(_INSERT_LINE, rows)


def update_line_match(db: Database, line_id: int, match: Match, part_number: str | None, color_id: int | None,
                      condition: str | None) -> None:
    db.execute(
        "update order_items set inventory_id = ?, match_method = ?, unmatched_reason = ?, "
        "location = coalesce(?, location), part_number = coalesce(?, part_number), "
        "color_id = coalesce(?, color_id), condition = coalesce(?, condition) where id = ?",
        [match.inventory_id, match.method, match.reason, match.location, part_number, color_id, condition, line_id],
    )


# --- inventory ---------------------------------------------------------------------------
def upsert_lots(db: Database, account: str, lots: Iterable[InventoryLot]) -> tuple[int, int]:
    """Insert or update lots by their unique key (reservations are never touched); returns (inserted, updated)."""
    now = now_iso()
    count = "select count(*) from inventory where business_account_id = ?"
    before = db.execute(count, [account]).fetchone()[0]
    rows = [
        (account, lot.part_number, lot.color_id, lot.condition, lot.location or "", lot.quantity,
         lot.bricklink_lot_id, lot.name, lot.item_type, money(lot.price), now, now)
        for lot in lots
    ]
    db.conn.executemany(
        "insert into inventory (business_account_id, part_number, color_id, condition, location, quantity, "
        "quantity_reserved, bricklink_lot_id, name, item_type, price, created_at, updated_at) "
        "values (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?) "
        "on conflict (business_account_id, part_number, color_id, condition, location) do update set "
        "quantity = excluded.quantity, "
        "bricklink_lot_id = coalesce(excluded.bricklink_lot_id, bricklink_lot_id), "
        "name = coalesce(excluded.name, name), item_type = coalesce(excluded.item_type, item_type), "
        "price = coalesce(excluded.price, price), updated_at = excluded.updated_at",
        rows,
    )
    inserted = db.execute(count, [account]).fetchone()[0] - before
    return inserted, len(rows) - inserted


# --- sync state and call accounting ------------------------------------------------------
def _state(db: Database, account: str, provider: str, **values: Any) -> None:
    columns = ", ".join(values)
    db.execute(
        f"insert into sync_state (business_account_id, provider, {columns}) values (?, ?, {', '.join('?' for _ in values)}) "
        f"on conflict (business_account_id, provider) do update set "
        + ", ".join(f"{c} = excluded.{c}" for c in values),
        [account, provider, *values.values()],
    )


def sync_state(db: Database, account: str, provider: str) -> dict[str, Any]:
    rows = list(db.query("select * from sync_state where business_account_id = ? and provider = ?", [account, provider]))
    return rows[0] if rows else {}


def record_attempt(db: Database, account: str, provider: str, started: dt.datetime) -> None:
    with db.atomic():
        _state(db, account, provider, last_attempt_at=iso(started))


def record_success(db: Database, account: str, provider: str, *, listed_at: dt.datetime, calls: int, changed: int) -> None:
    with db.atomic():
        _state(db, account, provider, last_synced_at=iso(listed_at), list_window_start=iso(listed_at),
               last_error=None, last_error_at=None, last_run_calls=calls, last_run_changed=changed)


def record_failure(db: Database, account: str, provider: str, message: str, *, calls: int) -> None:
    with db.atomic():
        _state(db, account, provider, last_error=message, last_error_at=now_iso(), last_run_calls=calls)


def add_api_calls(db: Database, account: str, counts: dict[str, int], day: str | None = None) -> None:
    day = day or now_iso()[:10]
    db.conn.executemany(
        "insert into _api_calls (business_account_id, provider, day, calls) values (?, ?, ?, ?) "
        "on conflict (business_account_id, provider, day) do update set calls = calls + excluded.calls",
        [(account, provider, day, n) for provider, n in counts.items() if n],
    )


def api_calls_on(db: Database, account: str, provider: str, day: str | None = None) -> int:
    day = day or now_iso()[:10]
    row = db.execute(
        "select calls from _api_calls where business_account_id = ? and provider = ? and day = ?",
        [account, provider, day],
    ).fetchone()
    return row[0] if row else 0
