"""Writes ``sync_state`` (one row per account and marketplace: when it last synced, failed, was
asked for its colour table), ``_api_calls`` (calls per marketplace per UTC day) and
``_cancel_restocks`` (whether a marketplace restocks cancelled orders, as learned)."""

from __future__ import annotations

from marketsync.store.base import Store

import datetime as dt
from typing import Any


from marketsync.model import iso, now_iso
from marketsync.rules.listings import LEARNED, Restocking, restocking


def _state(store: Store, provider: str, **values: Any) -> None:
    db, account = store.db, store.account
    columns = ", ".join(values)
    db.execute(
        f"insert into sync_state (business_account_id, provider, {columns}) values (?, ?, {', '.join('?' for _ in values)}) "
        f"on conflict (business_account_id, provider) do update set "
        + ", ".join(f"{c} = excluded.{c}" for c in values),
        [account, provider, *values.values()],
    )


def sync_state(store: Store, provider: str) -> dict[str, Any]:
    db, account = store.db, store.account
    rows = list(db.query("select * from sync_state where business_account_id = ? and provider = ?", [account, provider]))
    return rows[0] if rows else {}


def record_attempt(store: Store, provider: str, started: dt.datetime) -> None:
    db = store.db
    with db.atomic():
        _state(store, provider, last_attempt_at=iso(started))


def record_success(store: Store, provider: str, *, listed_at: dt.datetime, calls: int, changed: int) -> None:
    db = store.db
    with db.atomic():
        _state(store, provider, last_synced_at=iso(listed_at), list_window_start=iso(listed_at),
               last_error=None, last_error_at=None, last_run_calls=calls, last_run_changed=changed)


def record_failure(store: Store, provider: str, message: str, *, calls: int) -> None:
    db = store.db
    with db.atomic():
        _state(store, provider, last_error=message, last_error_at=now_iso(), last_run_calls=calls)


def record_catalog_check(store: Store, provider: str) -> None:
    db = store.db
    with db.atomic():
        _state(store, provider, catalog_checked_at=now_iso())


def add_api_calls(store: Store, counts: dict[str, int], day: str | None = None) -> None:
    db, account = store.db, store.account
    day = day or now_iso()[:10]
    db.conn.executemany(
        "insert into _api_calls (business_account_id, provider, day, calls) values (?, ?, ?, ?) "
        "on conflict (business_account_id, provider, day) do update set calls = calls + excluded.calls",
        [(account, provider, day, n) for provider, n in counts.items() if n],
    )


def api_calls_on(store: Store, provider: str, day: str | None = None) -> int:
    db, account = store.db, store.account
    day = day or now_iso()[:10]
    row = db.execute(
        "select calls from _api_calls where business_account_id = ? and provider = ? and day = ?",
        [account, provider, day],
    ).fetchone()
    return row[0] if row else 0


# --- the listener (marketsync listen) -------------------------------------------------------------
def record_store_id(store: Store, provider: str, store_id: str) -> None:
    """The seller's own store id on that marketplace, as its orders say (a hint naming another is refused)."""
    _state(store, provider, store_id=store_id)


def record_hint(store: Store, provider: str, hint: str, at: str) -> None:
    _state(store, provider, last_hint=hint, last_hint_at=at)


def record_hint_sync(store: Store, provider: str, at: str) -> None:
    _state(store, provider, last_hint_sync_at=at)


def record_listener(store: Store, providers: list[str], at: str | None) -> None:
    """The listener's heartbeat per marketplace it serves (None: it stopped cleanly, so a quiet
    listener is no problem for ``status --max-age``)."""
    for provider in providers:
        _state(store, provider, listener_seen_at=at)


# --- whether a marketplace puts a cancelled order's pieces back (docs/stock-model.md) -----------------
def learned_restocks(store: Store) -> dict[str, Restocking]:
    """provider -> what marketsync learned of it (a marketplace it learned nothing of is absent)."""
    return {provider: Restocking(bool(restocks), LEARNED, order_id, remote_lot_id)
            for provider, restocks, order_id, remote_lot_id in store.db.execute(
                "select provider, restocks, order_id, remote_lot_id from _cancel_restocks "
                "where business_account_id = ?", [store.account])}


def known_restocks(store: Store, provider: str, setting: bool | None) -> Restocking:
    """The seller's setting, else what was learned, else unknown."""
    return restocking(setting, learned_restocks(store).get(provider))


def learn_restocks(store: Store, provider: str, restocks: bool, order_id: str | None, remote_lot_id: str) -> bool:
    """Record what a read proved (caller holds the transaction that records the read); the first
    thing learned stays -- a later contradiction is reported, never written over. True if recorded."""
    cursor = store.db.execute(
        "insert into _cancel_restocks (business_account_id, provider, restocks, order_id, remote_lot_id, learned_at) "
        "values (?, ?, ?, ?, ?, ?) on conflict (business_account_id, provider) do nothing",
        [store.account, provider, int(restocks), order_id, remote_lot_id, now_iso()])
    return bool(cursor.rowcount)
