"""The open-order rule in SQL, built once from :data:`marketsync.model.OPEN_STATUSES`, and the views
Datasette shows, built from it whenever a database opens (a view is text: one that differs from
what this code would write is replaced, so the rule never drifts between a migration's copy and
the code)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from marketsync.model import CANCELLED_STATUSES, OPEN_STATUSES

if TYPE_CHECKING:  # read-only commands read the views' SQL without loading sqlite-utils
    from sqlite_utils import Database


def _listed(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)  # fixed identifiers of the model, never input


def open_order(alias: str = "o") -> str:
    """An order (``alias``) that holds stock: an open status, not released by hand."""
    prefix = f"{alias}." if alias else ""
    return f"{prefix}status IN ({_listed(OPEN_STATUSES)}) AND {prefix}manual_release = 0"


def open_status(alias: str = "o") -> str:
    """An order in an open status, whether or not it was released by hand."""
    return f"{alias}.status IN ({_listed(OPEN_STATUSES)})"


def cancelled(alias: str = "o") -> str:
    return f"{alias}.status IN ({_listed(CANCELLED_STATUSES)})"


VIEWS = {
    "open_orders": f"""CREATE VIEW open_orders AS
SELECT o.business_account_id, o.provider, o.order_id, o.status, o.provider_status, o.date_ordered,
       o.buyer_name, o.grand_total_amount, o.currency, o.lot_count, o.piece_count,
       (SELECT COALESCE(SUM(r.quantity), 0) FROM reservations r WHERE r.order_ref = o.id) AS pieces_reserved,
       (SELECT COUNT(*) FROM order_items l WHERE l.order_ref = o.id AND l.inventory_id IS NULL) AS unmatched_lines
FROM orders o
WHERE {open_order()}""",
    "lot_stock": """CREATE VIEW lot_stock AS
SELECT i.business_account_id, i.id AS lot, i.location AS bin, i.part_number, i.color_id, i.condition, i.name,
       i.quantity AS on_hand, i.quantity_reserved AS reserved, i.quantity - i.quantity_reserved AS available,
       MAX(0, i.quantity - i.quantity_reserved) AS should_list, i.price_amount
FROM inventory i""",
    "unmatched_lines": f"""CREATE VIEW unmatched_lines AS
SELECT l.business_account_id, l.provider, l.order_id, o.status, l.line_key, l.part_number, l.boid,
       l.color_id, l.color_name, l.condition, l.quantity, l.provider_location AS bin_named,
       l.unmatched_kind, l.unmatched_reason
FROM order_items l JOIN orders o ON o.id = l.order_ref
WHERE l.inventory_id IS NULL AND {open_order()}""",
    # Driven from the open orders, never by scanning the whole ledger's history: CROSS JOIN is SQLite's
    # documented way to keep the left table the outer loop (left to itself, the planner scanned every
    # reservation: 2,000 open orders behind 100,000 shipped took 1.6x as long as with none).
    # ``short``: the pieces of the row its bin cannot give -- the bin's on hand goes to the picked
    # lines first, then to the orders oldest first (first reserved first); what is reserved beyond it is short.
    "pick_list": f"""CREATE VIEW pick_list AS
SELECT business_account_id, bin, part_number, color_id, condition, name, provider, order_id, status, order_ref,
       line_key, inventory_id, quantity, on_hand, MAX(0, MIN(quantity, before_it + quantity - on_hand)) AS short
FROM (
SELECT r.business_account_id, i.location AS bin, i.part_number, i.color_id, i.condition, i.name,
       o.provider, o.order_id, o.status, r.order_ref, r.line_key, r.inventory_id,
       SUM(r.quantity) AS quantity, i.quantity AS on_hand,
       EXISTS (SELECT 1 FROM picks p WHERE p.order_ref = r.order_ref AND p.line_key = r.line_key) AS picked,
       COALESCE(SUM(SUM(r.quantity)) OVER (
           PARTITION BY r.inventory_id
           ORDER BY EXISTS (SELECT 1 FROM picks p WHERE p.order_ref = r.order_ref AND p.line_key = r.line_key) DESC,
                    o.date_ordered, MIN(r.id)
           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before_it
FROM orders o
CROSS JOIN reservations r ON r.order_ref = o.id
JOIN inventory i ON i.id = r.inventory_id
WHERE {open_order()}
GROUP BY r.order_ref, r.line_key, r.inventory_id
HAVING SUM(r.quantity) > 0)
WHERE NOT picked""",
    # The oversell window (``marketsync listen``): each order seen, per other marketplace that lists one
    # of its lots, from placed to that listing's change confirmed (NULL while not confirmed yet).
    "oversell_windows": """CREATE VIEW oversell_windows AS
SELECT s.business_account_id, o.provider AS sold_on, m.provider AS lowered_on, o.order_id, o.status,
       o.date_ordered AS placed_at, s.seen_at, s.seen_by, w.confirmed_at,
       ROUND((julianday(s.seen_at) - julianday(o.date_ordered)) * 86400, 3) AS seen_after_seconds,
       ROUND((julianday(w.confirmed_at) - julianday(o.date_ordered)) * 86400, 3) AS window_seconds
FROM _order_seen s
JOIN orders o ON o.id = s.order_ref
JOIN (SELECT DISTINCT provider FROM listings) m ON m.provider != o.provider
LEFT JOIN _order_lowered w ON w.order_ref = s.order_ref AND w.marketplace = m.provider
WHERE w.order_ref IS NOT NULL OR EXISTS (
    SELECT 1 FROM order_items i JOIN listings l ON l.inventory_id = i.inventory_id
    WHERE i.order_ref = s.order_ref AND l.provider = m.provider AND l.gone_at IS NULL)""",
}


def stale(have: dict[str, str]) -> list[str]:
    """Views missing from ``have`` (a file's views' SQL by name), or different from what :data:`VIEWS` says."""
    return [name for name, sql in VIEWS.items() if have.get(name) != sql]


def ensure(db: Database) -> None:
    """(Re)create the views that are missing or differ (caller holds a write transaction)."""
    have = dict(db.execute("select name, sql from sqlite_master where type = 'view'").fetchall())
    for name in stale(have):
        db.execute(f"DROP VIEW IF EXISTS {name}")
        db.execute(VIEWS[name])
