"""Writes ``_mirror_creations`` (each creation of a lot on another marketplace, recorded as an
intent before it is sent and settled after) and ``_mirror_gaps`` (what the last mirror run could
not mirror); reads what mirroring plans from."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marketsync.model import ChangeState, NewLot, now_iso
from marketsync.rules.mirror import GapRow, Listed, LocalLot
from marketsync.store.base import Store
from marketsync.store.listings import read_as

OPEN_STATES = (ChangeState.INTENDED.value, ChangeState.UNKNOWN.value)  # maybe created


def local_lots(store: Store) -> dict[int, LocalLot]:
    rows = store.db.execute(
        "select id, part_number, color_id, condition, location, item_type, quantity - quantity_reserved "
        "from inventory where business_account_id = ?", [store.account])
    return {row[0]: LocalLot(row[0], row[1], row[2], row[3], row[4] or "", row[5], row[6]) for row in rows}


def listed(store: Store) -> list[Listed]:
    rows = store.db.execute(
        "select id, provider, remote_lot_id, inventory_id, gone_at is not null, kept_only, link_detail, link_method, "
        "gone_kind, read_as from listings where business_account_id = ? order by id", [store.account])
    return [Listed(row[0], row[1], row[2], row[3], bool(row[4]), bool(row[5]), row[6], row[7] == "unlinked-by-hand",
                   row[8], read_as(row[9])) for row in rows]


def order_currencies(store: Store) -> dict[str, str]:
    """Each marketplace's currency as its latest order states it."""
    rows = store.db.execute(
        "select provider, currency from orders where business_account_id = ? and currency is not null "
        "and currency != '' order by coalesce(date_ordered, '') , id", [store.account])
    return {provider: currency.upper() for provider, currency in rows}


def _new_lot(row: dict[str, Any]) -> NewLot:
    return NewLot(str(row["id"]), row["item_no"], row["item_type"], row["color_id"], row["condition"],
                  row["quantity"], Decimal(row["price"]), row["note"] or "", row["completeness"], row["external_id"],
                  row.get("description"))


def open_creations(store: Store) -> list[tuple[dict[str, Any], NewLot]]:
    """Creations maybe made (recorded and maybe sent, or their answer lost), oldest first."""
    rows = store.db.query(
        f"select * from _mirror_creations where business_account_id = ? and state in ({', '.join('?' * 2)}) "
        "order by id", [store.account, *OPEN_STATES])
    return [(row, _new_lot(row)) for row in rows]


def refused(store: Store) -> dict[tuple[int, str], tuple[NewLot, str]]:
    """(lot, target) -> its last creation, when the marketplace refused it."""
    last: dict[tuple[int, str], dict[str, Any]] = {}
    for row in store.db.query("select * from _mirror_creations where business_account_id = ? order by id",
                              [store.account]):
        last[(row["inventory_id"], row["target"])] = row
    return {key: (_new_lot(row), row["detail"] or "refused") for key, row in last.items()
            if row["state"] == ChangeState.REFUSED}


def record_intents(store: Store, creations: list[tuple[int, str, str, str, NewLot]]) -> list[str]:
    """(lot, target, source, source lot, the lot to create) of each creation about to be sent
    (caller commits before sending); their journal ids, which become each lot's ``ref``."""
    db, account, now = store.db, store.account, now_iso()
    refs = []
    for lot_id, target, source, source_lot_id, new in creations:
        cursor = db.execute(
            "insert into _mirror_creations (business_account_id, inventory_id, target, source, source_lot_id, item_no, "
            "item_type, color_id, condition, completeness, quantity, price, note, external_id, description, state, "
            "created_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [account, lot_id, target, source, source_lot_id, new.item_no, new.item_type, new.color_id, new.condition,
             new.completeness, new.quantity, str(new.price), new.note, new.external_id, new.description,
             ChangeState.INTENDED, now])
        refs.append(str(cursor.lastrowid))
    return refs


def resolve(store: Store, ref: str, state: ChangeState, detail: str | None = None,
            remote_lot_id: str | None = None) -> None:
    store.db.execute("update _mirror_creations set state = ?, detail = ?, remote_lot_id = coalesce(?, remote_lot_id), "
                     "resolved_at = ? where id = ?", [state, detail, remote_lot_id, now_iso(), int(ref)])


def creations(store: Store, limit: int = 100) -> list[dict[str, Any]]:
    return list(store.db.query("select * from _mirror_creations where business_account_id = ? order by id desc "
                               "limit ?", [store.account, limit]))


def gaps(store: Store) -> list[GapRow]:
    return [GapRow(row["target"], row["why"], row["subject"], row["fix"], row["lots"], row["examples"])
            for row in store.db.query("select * from _mirror_gaps where business_account_id = ? "
                                      "order by target, why, subject", [store.account])]


def replace_gaps(store: Store, rows: list[GapRow], targets: list[str]) -> tuple[int, int]:
    """The last run's gaps of mirroring onto ``targets``; (new, gone) compared with the run before."""
    db, account, now = store.db, store.account, now_iso()
    before = {f"{r.target}|{r.why}|{r.subject}": r for r in gaps(store) if r.target in targets}
    after = {row.key: row for row in rows}
    first_seen = dict(db.execute("select target || '|' || why || '|' || subject, first_seen_at from _mirror_gaps "
                                 "where business_account_id = ?", [account]).fetchall())
    db.execute(f"delete from _mirror_gaps where business_account_id = ? and target in ({', '.join('?' * len(targets))})",
               [account, *targets])
    db.conn.executemany(
        "insert into _mirror_gaps (business_account_id, target, why, subject, fix, lots, examples, first_seen_at) "
        "values (?, ?, ?, ?, ?, ?, ?, ?)",
        [(account, r.target, r.why, r.subject, r.fix, r.lots, r.examples, first_seen.get(r.key, now)) for r in rows])
    return len(after.keys() - before.keys()), len(before.keys() - after.keys())
