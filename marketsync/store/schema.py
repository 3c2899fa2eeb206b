"""The database schema, declared in one place as sqlite-utils migrations.

Public tables (documented in the README, queried with sqlite3 or Datasette): ``inventory``,
``orders``, ``order_items``, ``reservations``, ``sync_state``. Plumbing tables start with ``_``.
Never edit a released migration: add a new one.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.db import DescIndex
from sqlite_utils.migrations import Migrations

migrations = Migrations("marketsync")


@migrations()
def m001_initial(db: Database) -> None:
    db.table("inventory").create(
        {
            "id": int,
            "business_account_id": str,
            "part_number": str,
            "color_id": int,
            "condition": str,
            "location": str,
            "quantity": int,
            "quantity_reserved": int,
            "bricklink_lot_id": str,
            "name": str,
            "item_type": str,
            "price": str,
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
        not_null=[
            "business_account_id", "part_number", "color_id", "condition", "location",
            "quantity", "quantity_reserved",
        ],
        defaults={"location": "", "quantity": 0, "quantity_reserved": 0},
    )
    db.table("inventory").create_index(
        ["business_account_id", "part_number", "color_id", "condition", "location"],
        index_name="inventory_lot_key",
        unique=True,
    )
    db.table("inventory").create_index(["business_account_id", "bricklink_lot_id"], index_name="inventory_bricklink_lot")

    db.table("orders").create(
        {
            "id": int,
            "business_account_id": str,
            "provider": str,
            "order_id": str,
            "status": str,
            "provider_status": str,
            "buyer_name": str,
            "buyer_email": str,
            "date_ordered": str,
            "date_status_changed": str,
            "lot_count": int,
            "piece_count": int,
            "subtotal": str,
            "grand_total": str,
            "currency": str,
            "payment_status": str,
            "shipping_method": str,
            "tracking_number": str,
            "is_filed": int,
            "manual_release": int,
            "fingerprint": str,
            "first_seen_at": str,
            "synced_at": str,
            "raw": str,
        },
        pk="id",
        not_null=["business_account_id", "provider", "order_id", "status", "manual_release", "is_filed"],
        defaults={"manual_release": 0, "is_filed": 0},
    )
    db.table("orders").create_index(
        ["business_account_id", "provider", "order_id"], index_name="orders_key", unique=True
    )
    db.table("orders").create_index(
        ["business_account_id", DescIndex("date_ordered")], index_name="orders_by_date"
    )
    db.table("orders").create_index(["business_account_id", "status"], index_name="orders_by_status")

    db.table("order_items").create(
        {
            "id": int,
            "order_ref": int,
            "business_account_id": str,
            "provider": str,
            "order_id": str,
            "line_key": str,
            "batch": int,
            "part_number": str,
            "color_id": int,
            "condition": str,
            "location": str,
            "quantity": int,
            "unit_price": str,
            "currency": str,
            "name": str,
            "item_type": str,
            "color_name": str,
            "provider_lot_id": str,
            "bricklink_lot_id": str,
            "boid": str,
            "provider_color_id": int,
            "provider_condition": str,
            "inventory_id": int,
            "match_method": str,
            "unmatched_reason": str,
            "raw": str,
        },
        pk="id",
        foreign_keys=[("order_ref", "orders", "id"), ("inventory_id", "inventory", "id")],
        not_null=["order_ref", "business_account_id", "provider", "order_id", "line_key", "quantity"],
    )
    db.table("order_items").create_index(["order_ref", "line_key"], index_name="order_items_line", unique=True)
    db.table("order_items").create_index(["inventory_id"], index_name="order_items_by_lot")
    db.table("order_items").create_index(["order_ref", "inventory_id"], index_name="order_items_unmatched")

    db.table("reservations").create(
        {
            "id": int,
            "business_account_id": str,
            "inventory_id": int,
            "order_ref": int,
            "provider": str,
            "order_id": str,
            "line_key": str,
            "quantity": int,
            "consumed": int,
            "reason": str,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("inventory_id", "inventory", "id"), ("order_ref", "orders", "id")],
        not_null=["business_account_id", "inventory_id", "order_ref", "provider", "order_id", "line_key",
                  "quantity", "consumed", "reason", "created_at"],
        defaults={"consumed": 0},
    )
    db.table("reservations").create_index(["order_ref", "line_key"], index_name="reservations_by_line")
    db.table("reservations").create_index(["inventory_id"], index_name="reservations_by_lot")

    db.table("sync_state").create(
        {
            "business_account_id": str,
            "provider": str,
            "last_synced_at": str,
            "last_attempt_at": str,
            "last_error": str,
            "last_error_at": str,
            "last_run_calls": int,
            "last_run_changed": int,
            "list_window_start": str,
        },
        pk=("business_account_id", "provider"),
    )

    # Plumbing
    db.table("_api_calls").create(
        {"business_account_id": str, "provider": str, "day": str, "calls": int},
        pk=("business_account_id", "provider", "day"),
        not_null=["calls"],
        defaults={"calls": 0},
    )
    db.table("_brickowl_colors").create(
        {
            "brickowl_color_id": int,
            "brickowl_color_name": str,
            "bricklink_color_id": int,
            "source": str,
            "refreshed_at": str,
        },
        pk="brickowl_color_id",
    )
    db.table("_boid_map").create(
        {
            "business_account_id": str,
            "boid": str,
            "part_number": str,
            "source": str,
            "created_at": str,
        },
        pk=("business_account_id", "boid"),
    )
    db.table("_id_lookups").create(
        {"business_account_id": str, "part_number": str, "boids": str, "looked_up_at": str},
        pk=("business_account_id", "part_number"),
    )


@migrations()
def m002_catalog_checked_at(db: Database) -> None:
    """When BrickOwl's colour table was last fetched (or refused), so it is asked weekly at most."""
    db.table("sync_state").add_column("catalog_checked_at", str)


@migrations()
def m003_lines_without_raw_payloads(db: Database) -> None:
    """Why a line is unmatched, as a code logic can key on; the alternative part numbers of a
    BrickOwl line and each line's own bin as the marketplace sent it (``location`` is the matched
    lot's), so re-matching needs no raw payload. Rows of older versions are filled in once."""
    import html
    import json

    db.table("order_items").add_column("unmatched_kind", str)
    db.table("order_items").add_column("alt_part_numbers", str)
    db.table("order_items").add_column("provider_location", str)
    db.table("order_items").create_index(["business_account_id", "unmatched_kind"], index_name="order_items_by_unmatched_kind")
    kinds = (  # the messages of versions before this migration, read once here and never again
        ("not in the colour table yet", "colour_unknown"), ("id lookup deferred", "lookup_deferred"),
        ("has no BrickLink equivalent", "colour_none"), ("no BrickLink condition", "condition_unknown"),
        ("cannot be translated", "unreadable"), ("no inventory lot for", "no_lot"),
    )
    updates = []
    for row_id, provider, reason, raw in db.execute(
        "select id, provider, unmatched_reason, raw from order_items"
    ).fetchall():
        kind = None
        if reason:
            kind = next((k for needle, k in kinds if needle in reason), "no_part")
        try:
            payload = json.loads(raw or "{}")
        except ValueError:
            payload = {}
        payload = payload if isinstance(payload, dict) else {}
        note = payload.get("remarks" if provider == "bricklink" else "personal_note")
        location = html.unescape(str(note).strip()) if isinstance(note, (str, int)) and str(note).strip() else None
        alternatives: list[str] = []
        if provider == "brickowl":
            ids = payload.get("ids")
            for id_type in ("ldraw", "peeron_id", "design_id"):
                for entry in ids if isinstance(ids, list) else []:
                    if not isinstance(entry, dict) or entry.get("type") != id_type:
                        continue
                    value = str(entry.get("id") or "").strip()
                    if value and value not in alternatives:
                        alternatives.append(value)
        updates.append((kind, json.dumps(alternatives) if alternatives else None, location, row_id))
    db.conn.executemany(
        "update order_items set unmatched_kind = ?, alt_part_numbers = ?, provider_location = ? where id = ?", updates
    )


@migrations()
def m004_listings(db: Database) -> None:
    """Each local lot's listing on each marketplace, the journal of changes pushed to them, and
    on-hand adjustments that no order explains (adopted marketplace figures, pulls)."""
    db.table("listings").create(
        {
            "id": int,
            "business_account_id": str,
            "provider": str,
            "remote_lot_id": str,
            "inventory_id": int,
            "link_method": str,  # 'lot-id' | 'external-id' | 'translated'
            "link_problem": str,  # 'unlinked' | 'ambiguous' (then inventory_id is null)
            "link_detail": str,
            "listed": int,  # what the marketplace showed at the last observation (read, or confirmed write)
            "taken": int,  # pieces of its own not-cancelled orders on this lot at that observation
            "placed": int,  # pieces of all its own orders on this lot (cancelled ones too) at that observation
            "observed_at": str,
            "held_at": str,  # set while an unexplained change waits for the seller (adopt / override)
            "held_listed": int,
            "held_reason": str,
            "updated_at": str,
        },
        pk="id",
        foreign_keys=[("inventory_id", "inventory", "id")],
        not_null=["business_account_id", "provider", "remote_lot_id"],
    )
    db.table("listings").create_index(["business_account_id", "provider", "remote_lot_id"], index_name="listings_key",
                                unique=True)
    db.table("listings").create_index(["inventory_id"], index_name="listings_by_lot")
    # one listing per lot and marketplace; unlinked rows (no lot) are many
    db.execute("CREATE UNIQUE INDEX listings_one_per_lot ON listings (business_account_id, provider, inventory_id) "
               "WHERE inventory_id IS NOT NULL")

    db.table("_listing_changes").create(
        {
            "id": int,
            "listing_id": int,
            "business_account_id": str,
            "provider": str,
            "remote_lot_id": str,
            "delta": int,
            "before": int,  # the listing as marketsync believed it when it decided
            "after": int,  # ... and as it will be once the change is applied
            "state": str,  # 'intended' (recorded, sent or not) | 'applied' | 'refused' | 'not_sent' | 'superseded'
            "detail": str,
            "created_at": str,
            "resolved_at": str,
        },
        pk="id",
        foreign_keys=[("listing_id", "listings", "id")],
        not_null=["listing_id", "business_account_id", "provider", "remote_lot_id", "delta", "state", "created_at"],
    )
    db.table("_listing_changes").create_index(["business_account_id", "state"], index_name="listing_changes_by_state")

    db.table("adjustments").create(
        {
            "id": int,
            "business_account_id": str,
            "inventory_id": int,
            "quantity": int,  # signed change of on hand
            "reason": str,  # 'adopt' | 'pull'
            "detail": str,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("inventory_id", "inventory", "id")],
        not_null=["business_account_id", "inventory_id", "quantity", "reason", "created_at"],
    )
    db.table("adjustments").create_index(["inventory_id"], index_name="adjustments_by_lot")


@migrations()
def m005_pick_list(db: Database) -> None:
    """What to pick for every open order: each order line's reserved pieces per lot, with its bin
    (a view, so Datasette shows the same rows as ``marketsync picklist``)."""
    open_statuses = "'pending', 'paid', 'processing', 'packed', 'disputed', 'unknown'"  # model.OPEN_STATUSES
    db.execute(f"""
        CREATE VIEW pick_list AS
        SELECT r.business_account_id, i.location AS bin, i.part_number, i.color_id, i.condition, i.name,
               o.provider, o.order_id, o.status, r.order_ref, r.line_key, r.inventory_id,
               SUM(r.quantity) AS quantity
        FROM reservations r
        JOIN orders o ON o.id = r.order_ref
        JOIN inventory i ON i.id = r.inventory_id
        WHERE o.status IN ({open_statuses}) AND o.manual_release = 0
        GROUP BY r.order_ref, r.line_key, r.inventory_id
        HAVING SUM(r.quantity) > 0
    """)


@migrations()
def m006_id_lookups_per_item_type(db: Database) -> None:
    """``catalog/id_lookup`` answers per item type: BrickOwl's lookup is asked with the line's own
    type (Part, Minifigure, Set...), so a cached answer is keyed by the type asked too. Every
    answer cached before was asked as a Part."""
    db.table("_id_lookups").add_column("item_type", str, not_null_default="Part")
    db.table("_id_lookups").transform(pk=("business_account_id", "part_number", "item_type"),
                                      column_order=["business_account_id", "part_number", "item_type"])


@migrations()
def m007_reservations_taken(db: Database) -> None:
    """``taken``: the pieces a ledger row took off on hand, which a shipment from an oversold lot
    leaves below ``consumed`` (the line's pieces shipped); a shipment taken back returns exactly
    what it took. Rows before this migration took what they consumed."""
    db.table("reservations").add_column("taken", int, not_null_default=0)
    db.execute("update reservations set taken = consumed")


@migrations()
def m008_datasette_money_and_views(db: Database) -> None:
    """Money Datasette can sort and sum (numbers beside the exact decimal text the marketplaces
    sent), and views for the questions sellers ask: open orders with what they hold, each lot's
    available stock, unmatched lines of open orders."""
    for table, column in (("orders", "subtotal"), ("orders", "grand_total"), ("order_items", "unit_price"),
                          ("inventory", "price")):
        db.execute(f"ALTER TABLE {table} ADD COLUMN {column}_amount REAL "
                   f"GENERATED ALWAYS AS (CAST({column} AS REAL)) VIRTUAL")
    open_statuses = "'pending', 'paid', 'processing', 'packed', 'disputed', 'unknown'"  # model.OPEN_STATUSES
    db.execute(f"""
        CREATE VIEW open_orders AS
        SELECT o.business_account_id, o.provider, o.order_id, o.status, o.provider_status, o.date_ordered,
               o.buyer_name, o.grand_total_amount, o.currency, o.lot_count, o.piece_count,
               (SELECT COALESCE(SUM(r.quantity), 0) FROM reservations r WHERE r.order_ref = o.id) AS pieces_reserved,
               (SELECT COUNT(*) FROM order_items l WHERE l.order_ref = o.id AND l.inventory_id IS NULL)
                   AS unmatched_lines
        FROM orders o
        WHERE o.status IN ({open_statuses}) AND o.manual_release = 0
    """)
    db.execute("""
        CREATE VIEW lot_stock AS
        SELECT i.business_account_id, i.id AS lot, i.location AS bin, i.part_number, i.color_id, i.condition, i.name,
               i.quantity AS on_hand, i.quantity_reserved AS reserved, i.quantity - i.quantity_reserved AS available,
               MAX(0, i.quantity - i.quantity_reserved) AS should_list, i.price_amount
        FROM inventory i
    """)
    db.execute(f"""
        CREATE VIEW unmatched_lines AS
        SELECT l.business_account_id, l.provider, l.order_id, o.status, l.line_key, l.part_number, l.boid,
               l.color_id, l.color_name, l.condition, l.quantity, l.provider_location AS bin_named,
               l.unmatched_kind, l.unmatched_reason
        FROM order_items l JOIN orders o ON o.id = l.order_ref
        WHERE l.inventory_id IS NULL AND o.status IN ({open_statuses}) AND o.manual_release = 0
    """)


@migrations()
def m009_picks(db: Database) -> None:
    """Order lines the seller has picked (they leave the pick list; their pieces are never moved
    to another bin again), kept apart from ``order_items``, whose rows a re-sync replaces."""
    db.table("picks").create(
        {"id": int, "business_account_id": str, "order_ref": int, "line_key": str, "picked_at": str},
        pk="id", foreign_keys=[("order_ref", "orders", "id")],
        not_null=["business_account_id", "order_ref", "line_key", "picked_at"],
    )
    db.table("picks").create_index(["order_ref", "line_key"], index_name="picks_line", unique=True)
    open_statuses = "'pending', 'paid', 'processing', 'packed', 'disputed', 'unknown'"  # model.OPEN_STATUSES
    db.execute("DROP VIEW pick_list")
    db.execute(f"""
        CREATE VIEW pick_list AS
        SELECT r.business_account_id, i.location AS bin, i.part_number, i.color_id, i.condition, i.name,
               o.provider, o.order_id, o.status, r.order_ref, r.line_key, r.inventory_id,
               SUM(r.quantity) AS quantity
        FROM reservations r
        JOIN orders o ON o.id = r.order_ref
        JOIN inventory i ON i.id = r.inventory_id
        WHERE o.status IN ({open_statuses}) AND o.manual_release = 0
          AND NOT EXISTS (SELECT 1 FROM picks p WHERE p.order_ref = r.order_ref AND p.line_key = r.line_key)
        GROUP BY r.order_ref, r.line_key, r.inventory_id
        HAVING SUM(r.quantity) > 0
    """)


@migrations()
def m010_shelf_truth(db: Database) -> None:
    """Several listings of one lot on one marketplace (two lots of a part in one bin at different
    prices), listings that are no longer for sale (sold out and deleted, moved to a stockroom,
    taken off sale), the BrickLink ``is_retain`` marketsync set (to put it back), and when each
    lot's on hand was last established (a count, a pull, an adopted figure): an order first seen
    shipped takes its pieces off on hand only when it was placed after that."""
    db.execute("DROP INDEX IF EXISTS listings_one_per_lot")
    listings = db.table("listings")
    listings.add_column("gone_at", str)  # not for sale any more: deleted, sold out, a stockroom, off sale
    listings.add_column("gone_reason", str)
    listings.add_column("retain_set", int, not_null_default=0)  # marketsync set BrickLink's is_retain
    inventory = db.table("inventory")
    inventory.add_column("stocked_at", str)
    db.execute("UPDATE inventory SET stocked_at = created_at")
    db.execute("UPDATE listings SET gone_at = updated_at, gone_reason = link_detail, link_problem = NULL, "
               "link_detail = NULL WHERE link_problem = 'gone'")


@migrations()
def m011_listener(db: Database) -> None:
    """The listener (``marketsync listen``): BrickLink notifications already acted on (deduplicated
    by type, resource and timestamp), the seller's store id on a marketplace (a hint naming another
    is refused), the listener's last hint and heartbeat per marketplace, and the oversell window:
    when marketsync first saw each order and when each other marketplace's listing change for it
    was confirmed."""
    db.table("_notifications").create(
        {"business_account_id": str, "provider": str, "event_type": str, "resource_id": str, "timestamp": str,
         "handled_at": str},
        pk=("business_account_id", "provider", "event_type", "resource_id", "timestamp"),
    )
    sync_state = db.table("sync_state")
    for column in ("store_id", "listener_seen_at", "last_hint_at", "last_hint", "last_hint_sync_at"):
        sync_state.add_column(column, str)
    db.table("_order_seen").create(
        {"order_ref": int, "business_account_id": str, "seen_at": str, "seen_by": str},
        pk="order_ref", foreign_keys=[("order_ref", "orders", "id")], not_null=["seen_at"],
    )
    db.table("_order_seen").create_index(["business_account_id", "seen_at"], index_name="order_seen_by_time")
    db.table("_order_lowered").create(
        {"order_ref": int, "marketplace": str, "business_account_id": str, "confirmed_at": str},
        pk=("order_ref", "marketplace"), foreign_keys=[("order_ref", "orders", "id")], not_null=["confirmed_at"],
    )


@migrations()
def m012_mirror(db: Database) -> None:
    """Mirroring (``stock mirror``): each creation of a lot on another marketplace, journaled as an
    intent before it is sent and settled after (a lost answer by finding the lot again); the gaps
    of the last mirror run (what cannot be mirrored, with the fix), so that cron says a line only
    when they change; and listings the seller keeps on their marketplace only (never created elsewhere)."""
    db.table("_mirror_creations").create(
        {
            "id": int,
            "business_account_id": str,
            "inventory_id": int,
            "target": str,  # the marketplace the lot is created on
            "source": str,  # ... and the one whose listing it mirrors
            "source_lot_id": str,
            "item_no": str,  # in the target's terms: BrickLink item number / BrickOwl base BOID
            "item_type": str,
            "color_id": int,
            "condition": str,
            "completeness": str,
            "quantity": int,
            "price": str,
            "note": str,  # the bin
            "external_id": str,
            "state": str,  # 'intended' (recorded, maybe sent) | 'unknown' (answer lost) | 'applied' | 'not_applied'
                           # | 'refused' | 'not_sent' | 'superseded'
            "remote_lot_id": str,  # the lot created
            "detail": str,
            "created_at": str,
            "resolved_at": str,
        },
        pk="id",
        foreign_keys=[("inventory_id", "inventory", "id")],
        not_null=["business_account_id", "inventory_id", "target", "source", "item_no", "state", "created_at"],
    )
    db.table("_mirror_creations").create_index(["business_account_id", "state"], index_name="mirror_creations_by_state")
    db.table("_mirror_creations").create_index(["inventory_id", "target"], index_name="mirror_creations_by_lot")
    db.table("_mirror_gaps").create(
        {"business_account_id": str, "target": str, "why": str, "subject": str, "fix": str, "lots": int,
         "examples": str, "first_seen_at": str},
        pk=("business_account_id", "target", "why", "subject"),
    )
    db.table("listings").add_column("kept_only", int, not_null_default=0)  # the seller keeps the lot here only


@migrations()
def m013_everyday(db: Database) -> None:
    """Problems a run stored with the data that caused them (an unmatched line, an order that
    oversold a lot, a held listing), kept until the run has reported them: a run interrupted before
    it could (SIGINT, kill -9, a reboot) leaves them for the next run to report."""
    db.table("_problems").create(
        {"id": int, "business_account_id": str, "run": str, "problem": str, "lot_id": int, "created_at": str},
        pk="id", not_null=["business_account_id", "run", "created_at"],
    )
    db.table("_problems").create_index(["business_account_id", "run"], index_name="problems_by_run")


@migrations()
def m014_cancel_restocks(db: Database) -> None:
    """Whether each marketplace puts a cancelled order's pieces back on the listing, as marketsync
    learned it from a read that only one behaviour explains (the seller's setting, when given,
    wins over it): the cancelled order and the listing it was learned from."""
    db.table("_cancel_restocks").create(
        {"business_account_id": str, "provider": str, "restocks": int, "order_id": str, "remote_lot_id": str,
         "learned_at": str},
        pk=("business_account_id", "provider"), not_null=["restocks"],
    )


@migrations()
def m015_relist_sold_out(db: Database) -> None:
    """A listing sold out and deleted by its marketplace is created again once its lot has pieces
    (docs/stock-model.md, "Sold out and deleted"): why each listing went (``gone_kind``: sold out,
    removed, replaced; NULL for listings gone before this release, which are never relisted), what
    was read of it when last seen for sale (``read_as``, JSON: the terms a relist copies -- item,
    colour, condition, completeness, price, description, remarks, whether it was retained), and the
    description each creation sends."""
    listings = db.table("listings")
    listings.add_column("gone_kind", str)
    listings.add_column("read_as", str)
    db.table("_mirror_creations").add_column("description", str)


@migrations()
def m016_late_writes(db: Database) -> None:
    """A listing change read as not applied may still land late (its answer was lost; the
    marketplace may have queued it): it stays a candidate explanation (``maybe_late``) until enough
    reads did not show it (``unseen_reads``) and enough time has passed (docs/stock-model.md)."""
    db.table("_listing_changes").add_column("unseen_reads", int, not_null_default=0)


@migrations()
def m017_backup_marks(db: Database) -> None:
    """A copy made by ``marketsync backup`` (and the daily and pre-upgrade backups) carries the
    moment it was taken: a database that carries one was restored from a backup, so marketsync's
    own changes to listings after that moment are unknown to it (docs/stock-model.md, "After a
    restore"). The live database never carries one of its own."""
    db.table("_backup_marks").create({"taken_at": str}, pk="taken_at")
