"""Writes ``picks``: the order lines the seller has taken off the shelf."""

from __future__ import annotations

from marketsync.store.base import Store


from marketsync.model import now_iso


def mark(store: Store, order_ref: int, line_keys: list[str]) -> None:
    db, account = store.db, store.account
    db.conn.executemany(
        "insert into picks (business_account_id, order_ref, line_key, picked_at) values (?, ?, ?, ?) "
        "on conflict (order_ref, line_key) do nothing",
        [(account, order_ref, key, now_iso()) for key in line_keys])


def unmark(store: Store, order_ref: int, line_keys: list[str]) -> None:
    db = store.db
    db.conn.executemany("delete from picks where order_ref = ? and line_key = ?",
                        [(order_ref, key) for key in line_keys])


def picked(store: Store, order_refs: list[int]) -> set[tuple[int, str]]:
    """(order_ref, line_key) of the picked lines of these orders."""
    db = store.db
    found: set[tuple[int, str]] = set()
    for start in range(0, len(order_refs), 500):
        part = order_refs[start:start + 500]
        found.update(db.execute(f"select order_ref, line_key from picks where order_ref in "
                                f"({', '.join('?' for _ in part)})", part).fetchall())
    return found
