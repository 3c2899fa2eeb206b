"""Writes ``_notifications`` (the events a listener acted on), ``_order_seen`` (when marketsync
first saw an order, and which path saw it) and ``_order_lowered`` (when another marketplace's
listing change for it was confirmed); reads the oversell window they measure."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Iterable

from marketsync.model import Notification, iso, utcnow
from marketsync.store.base import Store

KEEP_DAYS = 60  # events handled, remembered this long (BrickLink keeps unread ones; they repeat)


def precise(moment: dt.datetime | None = None) -> str:
    """UTC with milliseconds and a ``Z``: the window is measured in seconds."""
    value = (moment or utcnow()).astimezone(dt.timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


# --- notifications ---------------------------------------------------------------------------------
def unhandled(store: Store, provider: str, events: Iterable[Notification]) -> list[Notification]:
    """The events not acted on before (the same type, resource and timestamp), each once."""
    db, account = store.db, store.account
    out: list[Notification] = []
    for event in dict.fromkeys(events):
        row = db.execute(
            "select 1 from _notifications where business_account_id = ? and provider = ? and event_type = ? "
            "and resource_id = ? and timestamp = ?",
            [account, provider, event.event_type, event.resource_id, event.timestamp]).fetchone()
        if row is None:
            out.append(event)
    return out


def handled(store: Store, provider: str, events: Iterable[Notification]) -> None:
    """Remember the events acted on (caller holds the transaction); old ones are forgotten."""
    db, account = store.db, store.account
    now = utcnow()
    db.conn.executemany(
        "insert or ignore into _notifications (business_account_id, provider, event_type, resource_id, timestamp, "
        "handled_at) values (?, ?, ?, ?, ?, ?)",
        [(account, provider, e.event_type, e.resource_id, e.timestamp, iso(now)) for e in events])
    db.execute("delete from _notifications where business_account_id = ? and handled_at < ?",
               [account, iso(now - dt.timedelta(days=KEEP_DAYS))])


# --- the oversell window ---------------------------------------------------------------------------
def new_order_ids(store: Store, provider: str, order_ids: list[str]) -> set[str]:
    """Which of these orders the file does not hold yet."""
    db, account = store.db, store.account
    held: set[str] = set()
    for start in range(0, len(order_ids), 500):
        chunk = order_ids[start:start + 500]
        held |= {r[0] for r in db.execute(
            f"select order_id from orders where business_account_id = ? and provider = ? "
            f"and order_id in ({', '.join('?' for _ in chunk)})", [account, provider, *chunk])}
    return set(order_ids) - held


def seen(store: Store, refs: Iterable[int], seen_by: str, at: dt.datetime | None = None) -> None:
    """The first time these orders were seen (caller holds the transaction; a second call keeps the first)."""
    db, account = store.db, store.account
    moment = precise(at)
    db.conn.executemany(
        "insert or ignore into _order_seen (order_ref, business_account_id, seen_at, seen_by) values (?, ?, ?, ?)",
        [(ref, account, moment, seen_by) for ref in refs])


def confirm(store: Store, marketplace: str, settled_lots: Iterable[int], at: dt.datetime | None = None) -> int:
    """Orders of other marketplaces seen before now whose every lot listed on ``marketplace`` was
    just brought to what is available there (judged and settled by a push): their window on that
    marketplace closes now. Returns how many closed (caller holds the transaction)."""
    lots = sorted(set(settled_lots))
    if not lots:
        return 0
    db, account = store.db, store.account
    listed = ("select 1 from order_items i join listings l on l.inventory_id = i.inventory_id "
              "and l.provider = :m and l.gone_at is null where i.order_ref = s.order_ref")
    cursor = db.execute(
        f"""insert or ignore into _order_lowered (order_ref, marketplace, business_account_id, confirmed_at)
        select s.order_ref, :m, s.business_account_id, :now from _order_seen s join orders o on o.id = s.order_ref
        where s.business_account_id = :account and o.provider != :m and s.seen_at >= :since
          and not exists (select 1 from _order_lowered w where w.order_ref = s.order_ref and w.marketplace = :m)
          and exists ({listed} and i.inventory_id in (select value from json_each(:lots)))
          and not exists ({listed} and i.inventory_id not in (select value from json_each(:lots)))""",
        {"m": marketplace, "now": precise(at), "account": account, "lots": json.dumps(lots),
         "since": precise(utcnow() - dt.timedelta(days=KEEP_DAYS))})
    return cursor.rowcount or 0


def windows(store: Store, *, since: dt.datetime | None = None,
            order: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    """Rows of the ``oversell_windows`` view: every order seen since ``since``, or one order
    (marketplace, order id)."""
    db, account = store.db, store.account
    where: list[str] = ["business_account_id = ?"]
    args: list[Any] = [account]
    if since is not None:
        where.append("seen_at >= ?")
        args.append(precise(since))
    if order is not None:
        where.append("sold_on = ? and order_id = ?")
        args += list(order)
    return list(db.query(f"select * from oversell_windows where {' and '.join(where)} "
                         "order by seen_at, lowered_on", args))


def lots_of_orders(store: Store, provider: str, order_ids: Iterable[str]) -> set[int]:
    """The local lots the orders' lines are matched to or reserve stock on."""
    db, account = store.db, store.account
    ids = json.dumps(sorted(set(order_ids)))
    rows = db.execute(
        """select i.inventory_id from order_items i join orders o on o.id = i.order_ref
           where o.business_account_id = ? and o.provider = ? and o.order_id in (select value from json_each(?))
             and i.inventory_id is not null
           union
           select r.inventory_id from reservations r join orders o on o.id = r.order_ref
           where o.business_account_id = ? and o.provider = ? and o.order_id in (select value from json_each(?))""",
        [account, provider, ids, account, provider, ids])
    return {row[0] for row in rows}


def listed_lots(store: Store, marketplace: str, lots: Iterable[int]) -> dict[int, list[str]]:
    """The listings (remote lot ids) of these local lots on ``marketplace`` that are still for sale."""
    db, account = store.db, store.account
    out: dict[int, list[str]] = {}
    for lot, remote in db.execute(
            "select inventory_id, remote_lot_id from listings where business_account_id = ? and provider = ? "
            "and gone_at is null and inventory_id in (select value from json_each(?)) order by id",
            [account, marketplace, json.dumps(sorted(set(lots)))]):
        out.setdefault(lot, []).append(remote)
    return out


LISTENER_COLUMNS = ("listener_seen_at", "last_hint_at", "last_hint", "last_hint_sync_at")


def listener_state(store: Store) -> dict[str, dict[str, Any]]:
    """Per marketplace: the listener's heartbeat, its last hint and its last sync from a hint."""
    db, account = store.db, store.account
    return {row["provider"]: {c: row[c] for c in LISTENER_COLUMNS} for row in db.query(
        f"select provider, {', '.join(LISTENER_COLUMNS)} from sync_state where business_account_id = ?", [account])}
