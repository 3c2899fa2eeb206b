"""Writes ``_problems``: the problem lines a run stored together with the data that caused them,
until the run has reported them. A run interrupted before its report (SIGINT, kill -9, a reboot)
leaves them; the next run (under the same writer lock) reports them."""

from __future__ import annotations

import secrets
from typing import Iterable

from marketsync.model import now_iso
from marketsync.store.base import Store


def begin(store: Store) -> tuple[list[str], set[int]]:
    """Keep this run's problems from now on; (the lines, the oversold lots) that runs which ended
    before reporting them left behind, oldest first."""
    rows = store.db.execute("select problem, lot_id from _problems where business_account_id = ? order by id",
                            [store.account]).fetchall()
    store.run = secrets.token_hex(8)
    lines = list(dict.fromkeys(problem for problem, _ in rows if problem))
    return lines, {lot for _, lot in rows if lot is not None}


def keep(store: Store, lines: Iterable[str], lots: Iterable[int] = ()) -> None:
    """Store problem lines (and oversold lots, said at the run's end) with the data that caused them
    (caller holds the transaction); nothing unless the run keeps its problems."""
    if store.run is None:
        return
    now = now_iso()
    rows: list[tuple[str, str, str | None, int | None, str]] = [
        (store.account, store.run, line, None, now) for line in lines]
    rows += [(store.account, store.run, None, lot, now) for lot in lots]
    if rows:
        store.db.conn.executemany(
            "insert into _problems (business_account_id, run, problem, lot_id, created_at) values (?, ?, ?, ?, ?)", rows)


def reported(store: Store) -> None:
    """The run has its report, the leftovers of earlier runs included: nothing is kept any more."""
    with store.atomic():
        store.db.execute("delete from _problems where business_account_id = ?", [store.account])
    store.run = None
