"""The read side of the data layer: what the listing commands show and ``reserve --check`` verifies."""

from __future__ import annotations

from marketsync.store.base import Store

import datetime as dt
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Sequence


from marketsync.model import iso
from marketsync.store.views import open_order

ORDER_FIELDS = (
    "provider", "order_id", "date_ordered", "buyer_name", "status", "provider_status", "lot_count",
    "piece_count", "grand_total", "currency", "unmatched_lines",
)



class Rows(list[dict[str, Any]]):
    """Query rows (dicts) that know their column names: a CSV of no rows still has its header."""

    def __init__(self, rows: Iterable[dict[str, Any]] = (), fields: Sequence[str] = ()):
        super().__init__(rows)
        self.fields = list(fields)


def _rows(store: Store, sql: str, params: Sequence[Any]) -> Rows:
    cursor = store.db.execute(sql, list(params))
    names = [column[0] for column in cursor.description]
    return Rows((dict(zip(names, row)) for row in cursor), names)

def _in(values: Iterable[Any]) -> str:
    return ", ".join("?" for _ in values)


def _filter(prefix: str, account: str, providers: tuple[str, ...],
            statuses: tuple[str, ...]) -> tuple[list[str], list[Any]]:
    """The where-clauses (and their values) the listings share: account, marketplaces, statuses."""
    where, params = [f"{prefix}business_account_id = ?"], [account]  # type: list[str], list[Any]
    if providers:
        where.append(f"{prefix}provider in ({_in(providers)})")
        params += providers
    if statuses:
        where.append(f"{prefix}status in ({_in(statuses)})")
        params += statuses
    return where, params


def orders(
    store: Store,
    *,
    providers: tuple[str, ...] = (),
    statuses: tuple[str, ...] = (),
    since: dt.datetime | None = None,
    open_only: bool = False,
    limit: int | None = None,
    count: bool = False,
) -> list[dict[str, Any]]:
    """The orders matching the filters, newest first (``count``: one row, ``{"count": n}``)."""
    db, account = store.db, store.account
    where, params = _filter("o.", account, providers, statuses)
    if open_only:
        where.append(open_order("o"))
    if since is not None:
        where.append("o.date_ordered >= ?")
        params.append(iso(since))
    if count:
        return list(db.query(f"select count(*) as count from orders o where {' and '.join(where)}", params))
    return list(iter_orders(store, providers=providers, statuses=statuses, since=since, open_only=open_only,
                            limit=limit))


def iter_orders(
    store: Store,
    *,
    providers: tuple[str, ...] = (),
    statuses: tuple[str, ...] = (),
    since: dt.datetime | None = None,
    open_only: bool = False,
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    """:func:`orders`, one row at a time from the cursor (``orders --json/--csv`` of every order
    in flat memory: never the whole result set at once)."""
    db, account = store.db, store.account
    where, params = _filter("o.", account, providers, statuses)
    if open_only:
        where.append(open_order("o"))
    if since is not None:
        where.append("o.date_ordered >= ?")
        params.append(iso(since))
    sql = _ORDERS_SQL.format(where=" and ".join(where))
    if limit:
        sql += " limit ?"
        params.append(limit)
    cursor = db.execute(sql, params)
    names = [column[0] for column in cursor.description]
    for row in cursor:
        yield dict(zip(names, row))


_ORDERS_SQL = (
    "select o.provider, o.order_id, o.date_ordered, o.buyer_name, o.status, o.provider_status, o.lot_count, "
    "o.piece_count, o.grand_total, o.currency, "
    "(select count(*) from order_items l where l.order_ref = o.id and l.inventory_id is null) as unmatched_lines, "
    "(select count(*) from picks p where p.order_ref = o.id) as picked_lines, "
    "(select count(*) from order_items l where l.order_ref = o.id) as line_count "
    "from orders o where {where} order by o.date_ordered desc, o.id desc"
)


def order_detail(store: Store, provider: str, order_id: str) -> dict[str, Any] | None:
    db, account = store.db, store.account
    rows = list(db.query(
        "select * from orders where business_account_id = ? and provider = ? and order_id = ?",
        [account, provider, order_id],
    ))
    if not rows:
        return None
    order = rows[0]
    order.pop("raw", None)
    order["lines"] = _rows(store, (
        "select l.line_key, l.part_number, l.color_id, l.color_name, l.condition, l.name, l.quantity, l.unit_price, "
        "l.inventory_id, l.match_method, l.unmatched_reason, l.boid, "
        "coalesce(i.location, l.location) as location, "
        "(select coalesce(sum(r.quantity), 0) from reservations r where r.order_ref = l.order_ref "
        " and r.line_key = l.line_key) as reserved, "
        "(select group_concat(bin || ' x' || held, ', ') from (select ri.location as bin, sum(r.quantity) as held "
        " from reservations r join inventory ri on ri.id = r.inventory_id where r.order_ref = l.order_ref "
        " and r.line_key = l.line_key group by r.inventory_id having sum(r.quantity) > 0 order by ri.location)) "
        " as reserved_in "
        "from order_items l left join inventory i on i.id = l.inventory_id where l.order_ref = ? "
        "order by coalesce(i.location, l.location, ''), l.part_number, l.id"),
        [order["id"]],
    )
    return order


def inventory(
    store: Store,
    *,
    part: str | None = None,
    color_id: int | None = None,
    condition: str | None = None,
    location: str | None = None,
    reserved_only: bool = False,
    oversold_only: bool = False,
) -> list[dict[str, Any]]:
    return list(iter_inventory(store, part=part, color_id=color_id, condition=condition, location=location,
                               reserved_only=reserved_only, oversold_only=oversold_only))


def iter_inventory(
    store: Store,
    *,
    part: str | None = None,
    color_id: int | None = None,
    condition: str | None = None,
    location: str | None = None,
    reserved_only: bool = False,
    oversold_only: bool = False,
) -> Iterator[dict[str, Any]]:
    """:func:`inventory`, one row at a time from the cursor (``inventory list --json/--csv``)."""
    sql, params = _inventory_query(store.account, part, color_id, condition, location, reserved_only, oversold_only)
    cursor = store.db.execute(sql, params)
    names = [column[0] for column in cursor.description]
    for row in cursor:
        yield dict(zip(names, row))


def _inventory_query(account: str, part: str | None, color_id: int | None, condition: str | None,
                     location: str | None, reserved_only: bool, oversold_only: bool) -> tuple[str, list[Any]]:
    where, params = ["business_account_id = ?"], [account]  # type: list[str], list[Any]
    for column, value in (("part_number", part), ("color_id", color_id), ("condition", condition),
                          ("location", location)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if reserved_only:
        where.append("quantity_reserved > 0")
    if oversold_only:
        where.append("quantity_reserved > quantity")
    return (
        "select id, part_number, color_id, condition, location, quantity, quantity_reserved, "
        "quantity - quantity_reserved as available, name, item_type, price, bricklink_lot_id "
        f"from inventory where {' and '.join(where)} order by location, part_number, color_id, condition",
        params,
    )


def ledger(store: Store, provider: str | None = None, order_id: str | None = None,
           limit: int | None = None) -> list[dict[str, Any]]:
    account = store.account
    where, params = ["r.business_account_id = ?"], [account]  # type: list[str], list[Any]
    if provider is not None:
        where.append("r.provider = ? and r.order_id = ?")
        params += [provider, order_id]
    sql = (
        "select r.id, r.created_at, r.provider, r.order_id, r.line_key, r.inventory_id, i.part_number, i.color_id, "
        "i.condition, i.location, r.quantity, r.consumed, r.reason from reservations r "
        f"left join inventory i on i.id = r.inventory_id where {' and '.join(where)} order by r.id desc"
    )
    if limit:
        sql += " limit ?"
        params.append(limit)
    return _rows(store, sql, params)


def status(store: Store, providers: tuple[str, ...], today: str) -> list[dict[str, Any]]:
    db, account = store.db, store.account
    # Driven from the status index, whatever ANALYZE says: it counts a file's statuses as if evenly
    # spread, so the open ones look like most orders and the planner would read every order instead.
    counts = {provider: (open_orders, unmatched) for provider, open_orders, unmatched in db.execute(
        "select o.provider, count(distinct o.id), count(l.id) from orders o indexed by orders_by_status "
        "left join order_items l on l.order_ref = o.id and l.inventory_id is null "
        f"where o.business_account_id = ? and {open_order('o')} group by o.provider", [account])}
    report = []
    for provider in providers:
        state = next(iter(db.query(
            "select * from sync_state where business_account_id = ? and provider = ?", [account, provider])), {})
        calls = db.execute(
            "select calls from _api_calls where business_account_id = ? and provider = ? and day = ?",
            [account, provider, today]).fetchone()
        open_orders, unmatched = counts.get(provider, (0, 0))
        report.append({
            "provider": provider,
            "last_synced_at": state.get("last_synced_at"),
            "last_attempt_at": state.get("last_attempt_at"),
            "last_error": state.get("last_error"),
            "last_error_at": state.get("last_error_at"),
            "last_run_calls": state.get("last_run_calls"),
            "calls_today": calls[0] if calls else 0,
            "open_orders": open_orders,
            "unmatched_open_lines": unmatched,
        })
    return report


def oversold(store: Store) -> list[dict[str, Any]]:
    return inventory(store, oversold_only=True)


# --- reserve --check: the invariants' raw material ---------------------------------------------
@contextmanager
def snapshot(store: Store) -> Iterator[None]:
    """Every query inside reads one snapshot of the file (a read transaction, rolled back)."""
    db = store.db
    own = not db.conn.in_transaction
    if own:
        db.conn.execute("begin")
    try:
        yield
    finally:
        if own:
            db.conn.execute("rollback")


def integrity_problems(store: Store) -> list[str]:
    """SQLite's own structural check: a damaged file can read as an empty ledger."""
    db = store.db
    return [message for (message,) in db.execute("pragma quick_check") if message != "ok"]


def counters_off_ledger(store: Store) -> list[tuple[int, int, int]]:
    """(lot, quantity_reserved, sum of its ledger rows) wherever the two differ."""
    db, account = store.db, store.account
    return db.execute(
        "select i.id, i.quantity_reserved, coalesce(sum(r.quantity), 0) from inventory i "
        "left join reservations r on r.inventory_id = i.id where i.business_account_id = ? "
        "group by i.id having i.quantity_reserved != coalesce(sum(r.quantity), 0)",
        [account],
    ).fetchall()


def negative_lots(store: Store) -> list[tuple[int, int, int]]:
    db, account = store.db, store.account
    return db.execute(
        "select id, quantity, quantity_reserved from inventory where business_account_id = ? "
        "and (quantity < 0 or quantity_reserved < 0)", [account],
    ).fetchall()


def ledger_by_line(store: Store) -> list[tuple[int, str, int, int, int]]:
    """(order_ref, line_key, lot, reserved, consumed) summed over the ledger."""
    db, account = store.db, store.account
    return db.execute(
        "select order_ref, line_key, inventory_id, sum(quantity), sum(consumed) from reservations "
        "where business_account_id = ? group by order_ref, line_key, inventory_id", [account],
    ).fetchall()


def all_lines(store: Store) -> list[tuple]:
    """(order_ref, provider, order_id, status, manual_release, line_key, lot, quantity) of every line."""
    db, account = store.db, store.account
    return db.execute(
        "select o.id, o.provider, o.order_id, o.status, o.manual_release, l.line_key, l.inventory_id, l.quantity "
        "from order_items l join orders o on o.id = l.order_ref where o.business_account_id = ?", [account],
    ).fetchall()


# --- listings --------------------------------------------------------------------------------
def stock(store: Store, provider: str | None = None, held_only: bool = False,
          problems_only: bool = False) -> list[dict[str, Any]]:
    """Each listing with its local lot: what the marketplace showed last, what is available, and
    why it is held or no longer for sale (:func:`marketsync.app.stock.with_pending` adds the change a
    push would make)."""
    account = store.account
    where, params = ["li.business_account_id = ?"], [account]  # type: list[str], list[Any]
    if provider:
        where.append("li.provider = ?")
        params.append(provider)
    if held_only:
        where.append("li.held_at is not null")
    if problems_only:
        where.append("(li.link_problem is not null or li.inventory_id is null or li.gone_at is not null)")
    rows = _rows(store, (
        "select li.id, li.provider, li.remote_lot_id, li.inventory_id, i.part_number, i.color_id, i.condition, "
        "i.location, i.quantity as on_hand, i.quantity_reserved as reserved, "
        "i.quantity - i.quantity_reserved as available, li.listed, li.observed_at, li.held_reason, li.held_listed, "
        "li.link_method, li.link_problem, li.link_detail, li.gone_at, li.gone_reason, li.kept_only "
        f"from listings li left join inventory i on i.id = li.inventory_id where {' and '.join(where)} "
        "order by i.location, i.part_number, li.provider, li.remote_lot_id"),
        params,
    )
    return rows


def providers_with_history(store: Store) -> list[str]:
    """Marketplaces this database has synced or holds orders of."""
    db, account = store.db, store.account
    return [p for (p,) in db.execute(
        "select provider from sync_state where business_account_id = ? and last_synced_at is not null "
        "union select distinct provider from orders where business_account_id = ? order by 1", [account, account])]


def pick_list(store: Store, *, providers: tuple[str, ...] = (), statuses: tuple[str, ...] = (),
              orders: tuple[tuple[str, str], ...] = ()) -> list[dict[str, Any]]:
    """The ``pick_list`` view's rows: reserved pieces per open order line and lot, with the bin."""
    db, account = store.db, store.account
    where, params = _filter("", account, providers, statuses)
    if orders:
        where.append("(" + " or ".join("(provider = ? and order_id = ?)" for _ in orders) + ")")
        params += [value for pair in orders for value in pair]
    return list(db.query(f"select * from pick_list where {' and '.join(where)}", params))


def orders_short_of_stock(store: Store) -> list[int]:
    """Open orders holding pieces on a lot that has more reserved than on hand: re-planned, they
    may take the rest from another bin of the part (or from stock that arrived)."""
    db, account = store.db, store.account
    return [ref for (ref,) in db.execute(
        "select distinct r.order_ref from reservations r join inventory i on i.id = r.inventory_id "
        "join orders o on o.id = r.order_ref where i.business_account_id = ? and i.quantity_reserved > i.quantity "
        f"and {open_order('o')} order by r.order_ref",
        [account])]


def orders_short_with_stock_elsewhere(store: Store) -> list[int]:
    """The open orders of :func:`orders_short_of_stock` that a re-plan can help: a lot of the same
    part, colour and condition has pieces free (re-planning one with no free bin of its part changes
    nothing, so an idle run re-plans nothing however many orders are short)."""
    db, account = store.db, store.account
    # The short lots with a free sibling first (one pass over the lots), only then their ledger rows.
    return [ref for (ref,) in db.execute(
        "with helped as materialized (select i.id from inventory i where i.business_account_id = ? "
        "and i.quantity_reserved > i.quantity and exists (select 1 from inventory f where f.business_account_id "
        "= i.business_account_id and f.part_number = i.part_number and f.color_id = i.color_id "
        "and f.condition = i.condition and f.quantity > f.quantity_reserved)) "
        "select distinct r.order_ref from helped h join reservations r on r.inventory_id = h.id "
        f"join orders o on o.id = r.order_ref where {open_order('o')} order by r.order_ref",
        [account])]


def lot_keys(store: Store) -> dict[int, tuple[str, int, str]]:
    """lot -> (part, colour, condition)."""
    db, account = store.db, store.account
    return {lot: (part, colour, condition) for lot, part, colour, condition in db.execute(
        "select id, part_number, color_id, condition from inventory where business_account_id = ?", [account])}


def other_accounts(store: Store) -> list[str]:
    """The accounts other than the store's that hold lots or orders in the file."""
    return [account for (account,) in store.db.execute(
        "select business_account_id from inventory where business_account_id != ? union "
        "select business_account_id from orders where business_account_id != ? order by 1",
        [store.account, store.account])]


def holds_anything(store: Store) -> bool:
    """The account has lots, orders or a sync behind it in the file."""
    return bool(store.db.execute(
        "select exists (select 1 from inventory where business_account_id = ?) "
        "or exists (select 1 from orders where business_account_id = ?) "
        "or exists (select 1 from sync_state where business_account_id = ? and last_synced_at is not null)",
        [store.account] * 3).fetchone()[0])


def unmatched_lines(store: Store) -> set[tuple[str, str, str]]:
    """(provider, order id, line key) of every line matched to no lot."""
    return set(store.db.execute(
        "select o.provider, o.order_id, l.line_key from order_items l join orders o on o.id = l.order_ref "
        "where o.business_account_id = ? and l.inventory_id is null", [store.account]).fetchall())
