"""Writes ``orders`` and ``order_items``, and reads what the engine and ``reserve`` need of them.

Callers hold the transaction (``db.atomic()``); nothing here commits by itself. Every function
takes a batch: a single order is a batch of one.
"""

from __future__ import annotations

from marketsync.store.base import Store

import functools
import json
from decimal import Decimal
from typing import Any, Iterable, Sequence


from marketsync.rules.matching import Match
from marketsync.model import Order, OrderLine, Unmatched, iso, now_iso
from marketsync.store.views import open_order, open_status

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
    "match_method", "unmatched_reason", "raw", "unmatched_kind", "alt_part_numbers", "provider_location",
)
_INSERT_LINE = f"insert into order_items ({', '.join(LINE_COLUMNS)}) values ({', '.join('?' for _ in LINE_COLUMNS)})"


# One encoder for every raw payload (json.dumps with options builds a new one per call), and no
# circular-reference bookkeeping: decoded JSON never refers to itself. ~8% of a sync's write path.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str, check_circular=False)


def to_json(raw: Any) -> str:
    return _ENCODER.encode(raw)


def serialise_payloads(order: Order, lines: list[OrderLine]) -> None:
    """Serialise the raw payloads ahead of the write, in the fetching thread: the writer thread
    is a backfill's bottleneck, the fetching threads mostly wait on the network. The dicts are let
    go once serialised (only the text is written): an order waiting for the writer holds its
    payloads once, not twice."""
    order.raw_json, order.raw = to_json(order.raw), {}
    for line in lines:
        line.raw_json, line.raw = to_json(line.raw), {}


def money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _in(values: Sequence) -> str:
    return ", ".join(["?"] * len(values))


def chunks(values: list, size: int = 500) -> Iterable[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def known_orders(store: Store, provider: str) -> dict[str, tuple[str | None, str]]:
    """order_id -> (fingerprint, status) of every order held for the provider."""
    db, account = store.db, store.account
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


def open_orders(store: Store, provider: str) -> list[tuple[str, str | None]]:
    """(order_id, date_ordered) of the orders that hold stock."""
    db, account = store.db, store.account
    return db.execute(
        f"select order_id, date_ordered from orders where business_account_id = ? and provider = ? "
        f"and {open_order('')}",
        [account, provider],
    ).fetchall()


def upsert_orders(store: Store, orders: list[Order]) -> list[tuple[int, bool]]:
    """Insert or update the order rows; (row id, manual_release) of each, in order."""
    db, account = store.db, store.account
    now = now_iso()
    db.conn.executemany(_UPSERT_ORDER.rsplit(" returning ", 1)[0], [_order_values(account, o, now) for o in orders])
    found: dict[tuple[str, str], tuple[int, bool]] = {}
    for provider in {o.provider for o in orders}:
        ids = [o.order_id for o in orders if o.provider == provider]
        for part in chunks(ids):
            for ref, order_id, manual_release in db.execute(
                f"select id, order_id, manual_release from orders where business_account_id = ? and provider = ? "
                f"and order_id in ({_in(part)})", [account, provider, *part],
            ):
                found[(provider, order_id)] = (ref, bool(manual_release))
    return [found[(o.provider, o.order_id)] for o in orders]


def stored_open(store: Store, orders: list[Order]) -> set[tuple[str, str]]:
    """(provider, order id) of these orders that the database holds as open now."""
    db, account = store.db, store.account
    found: set[tuple[str, str]] = set()
    for provider in {o.provider for o in orders}:
        ids = [o.order_id for o in orders if o.provider == provider]
        for part in chunks(ids):
            found.update((provider, order_id) for (order_id,) in db.execute(
                f"select order_id from orders where business_account_id = ? and provider = ? and order_id in "
                f"({_in(part)}) and {open_order('')}",
                [account, provider, *part]))
    return found


def mark_details_gone(store: Store, orders: list[Order]) -> set[str]:
    """Orders whose details the marketplace deleted: a stored one keeps its status, lines and
    stock, and takes only the marketplace's word and fingerprint (so it is not fetched again).
    Returns the order ids that were stored."""
    db, account = store.db, store.account
    now, kept = now_iso(), set()
    for order in orders:
        cursor = db.execute(
            "update orders set provider_status = ?, fingerprint = ?, synced_at = ? "
            "where business_account_id = ? and provider = ? and order_id = ?",
            [order.provider_status, order.fingerprint, now, account, order.provider, order.order_id])
        if cursor.rowcount:
            kept.add(order.order_id)
    return kept


def stored_matches(store: Store, order_refs: list[int]) -> dict[int, dict[str, tuple[int | None, str | None]]]:
    """order_ref -> line_key -> (inventory_id, unmatched_reason) as stored now."""
    db = store.db
    found: dict[int, dict[str, tuple[int | None, str | None]]] = {}
    for part in chunks(order_refs):
        rows = db.execute(
            f"select order_ref, line_key, inventory_id, unmatched_reason from order_items where order_ref in ({_in(part)})",
            part,
        )
        for ref, key, lot, reason in rows:
            found.setdefault(ref, {})[key] = (lot, reason)
    return found


def replace_lines(store: Store, orders: list[tuple[int, list[OrderLine], list[Match]]]) -> None:
    """Each order's whole set of lines, as now matched, in place of what was stored -- writing only
    what differs: an order stored with the same line keys in the same order has each changed line
    updated in place (an unchanged one is not written at all); any other stored order has its lines
    replaced whole, and one with nothing stored is inserted."""
    db, account = store.db, store.account
    new = {ref: line_rows(account, ref, lines, matches) for ref, lines, matches in orders}
    stored = _stored_rows(store, list(new))
    replaced, inserts, updates = [], [], []
    for ref, rows in new.items():
        old = stored.get(ref)
        if old is None:
            inserts += rows
        elif [row[4] for row in rows] != [row[4] for _, row in old]:  # line keys (or their order) differ
            replaced.append((ref,))
            inserts += rows
        else:
            updates += [(*row, line_id) for (line_id, before), row in zip(old, rows) if before != row]
    db.conn.executemany("delete from order_items where order_ref = ?", replaced)
    db.conn.executemany(_INSERT_LINE, inserts)
    db.conn.executemany(_UPDATE_LINE, updates)


_UPDATE_LINE = f"update order_items set {', '.join(f'{c} = ?' for c in LINE_COLUMNS)} where id = ?"


def _stored_rows(store: Store, order_refs: list[int]) -> dict[int, list[tuple[int, tuple]]]:
    """order_ref -> its stored lines in order, each (id, the row as ``line_rows`` builds it)."""
    found: dict[int, list[tuple[int, tuple]]] = {}
    for part in chunks(order_refs):
        for line_id, *row in store.db.conn.execute(
                f"select id, {', '.join(LINE_COLUMNS)} from order_items where order_ref in ({_in(part)}) "
                "order by id", part):
            found.setdefault(row[0], []).append((line_id, tuple(row)))
    return found


def line_rows(account: str, order_ref: int, lines: list[OrderLine], matches: list[Match]) -> list[tuple]:
    """The order_items rows of one order's lines."""
    return [
        (
            order_ref, account, line.provider, line.order_id, line.line_key, line.batch, line.part_number,
            line.color_id, line.condition, match.location or line.location, line.quantity,
            None if line.unit_price is None else str(line.unit_price), line.currency, line.name, line.item_type,
            line.color_name, line.provider_lot_id, line.bricklink_lot_id, line.boid, line.provider_color_id,
            line.provider_condition, match.inventory_id, match.method, match.reason, line.raw_json or to_json(line.raw),
            match.kind if match.inventory_id is None else None,
            _alternatives(tuple(line.alt_part_numbers)) if line.alt_part_numbers else None, line.location,
        )
        for line, match in zip(lines, matches)
    ]


@functools.lru_cache(maxsize=4096)
def _alternatives(part_numbers: tuple[str, ...]) -> str:
    """A line's alternative part numbers as stored (JSON): the same few lists recur on thousands of lines."""
    return json.dumps(part_numbers)


def stored_lines(store: Store, order_ref: int) -> list[OrderLine]:
    """An order's lines as the marketplace sent them (translated fields as last worked out), from
    the columns alone: re-matching never needs the raw payload."""
    db = store.db
    lines = []
    for row in db.query("select * from order_items where order_ref = ? order by id", [order_ref]):
        try:
            alternatives = json.loads(row["alt_part_numbers"]) if row["alt_part_numbers"] else []
        except ValueError:
            alternatives = []
        lines.append(OrderLine(
            provider=row["provider"], order_id=row["order_id"], line_key=row["line_key"], quantity=row["quantity"],
            part_number=row["part_number"], color_id=row["color_id"], condition=row["condition"],
            location=row["provider_location"], name=row["name"], item_type=row["item_type"],
            color_name=row["color_name"], unit_price=Decimal(row["unit_price"]) if row["unit_price"] else None,
            currency=row["currency"], batch=row["batch"], provider_lot_id=row["provider_lot_id"],
            bricklink_lot_id=row["bricklink_lot_id"], boid=row["boid"], provider_color_id=row["provider_color_id"],
            provider_condition=row["provider_condition"], alt_part_numbers=alternatives,
            unmatched_reason=row["unmatched_reason"], unmatched_kind=row["unmatched_kind"], raw_json=row["raw"],
        ))
    return lines


def orders_holding_or_open(store: Store, only: int | None = None) -> list[dict[str, Any]]:
    """Orders whose lines ``reserve`` brings to their reservations: the open ones, and any other
    whose ledger still holds pieces -- first come, first served (by when they were placed, then
    by marketplace and number, never by the order two marketplaces' syncs happened to write them)."""
    db, account = store.db, store.account
    where, params = "o.business_account_id = ?", [account]  # type: str, list[Any]
    if only is not None:
        where += " and o.id = ?"
        params.append(only)
    return list(db.query(
        f"select o.id, o.provider, o.order_id, o.status, o.manual_release, o.date_ordered from orders o where {where} and ("
        f"{open_status('o')} or exists (select 1 from reservations r "
        "where r.order_ref = o.id group by r.line_key, r.inventory_id having sum(r.quantity) != 0)) "
        "order by coalesce(o.date_ordered, ''), o.provider, o.order_id",
        params,
    ))


def orders_to_retry(store: Store, provider: str) -> list[int]:
    """Open orders with a line a later run can match by itself (a deferred lookup, a colour newer
    than the table): their fingerprint has not changed, so no listing fetches them again."""
    db, account = store.db, store.account
    return [ref for (ref,) in db.execute(
        "select distinct l.order_ref from order_items l join orders o on o.id = l.order_ref "
        f"where o.business_account_id = ? and o.provider = ? and {open_order('o')} and l.inventory_id is null "
        f"and l.unmatched_kind in ({_in(Unmatched.RETRIED)}) order by l.order_ref",
        [account, provider, *Unmatched.RETRIED],
    )]


def line_lot(store: Store, order_ref: int, line_key: str) -> int | None:
    """The lot a line is matched to (its named bin)."""
    db = store.db
    row = db.execute("select inventory_id from order_items where order_ref = ? and line_key = ?",
                     [order_ref, line_key]).fetchone()
    return row[0] if row else None


def find_order(store: Store, provider: str, order_id: str) -> dict[str, Any] | None:
    db, account = store.db, store.account
    rows = list(db.query(
        "select * from orders where business_account_id = ? and provider = ? and order_id = ?",
        [account, provider, order_id],
    ))
    return rows[0] if rows else None


def set_manual_release(store: Store, order_ref: int, released: bool) -> None:
    db = store.db
    db.execute("update orders set manual_release = ? where id = ?", [int(released), order_ref])
